//! The CPU backend: a context without a GPU computes with the f64 reference, on the
//! batch widened to f64 / i64, and rounds the results to f32.

use crate::error::{Error, Result};
use crate::options::{Formulation, LossOptions};
use crate::output::{finite, guard, narrow, LossOutput};
use crate::reference::{self, RefBatch, RefTarget};
use crate::shape::{Batch, Shape, Target};

/// A host batch widened to f64 / i64 for the CPU reference (kept by [`Stats`] for the
/// gradient).
#[derive(Debug)]
pub(crate) struct HostBatch {
    shape: Shape,
    input: Vec<f64>,
    soft: Vec<f64>,
    index: Vec<i64>,
    index_target: bool,
    mask: Option<Vec<bool>>,
}

impl HostBatch {
    pub fn new(batch: &Batch<'_>) -> Self {
        let (soft, index) = match batch.target {
            Target::Soft(t) => (t.iter().map(|&v| f64::from(v)).collect(), Vec::new()),
            Target::Index(t) => (Vec::new(), t.iter().map(|&v| i64::from(v)).collect()),
            Target::IndexI64(t) => (Vec::new(), t.to_vec()),
        };
        HostBatch {
            shape: batch.shape.clone(),
            input: batch.input.iter().map(|&v| f64::from(v)).collect(),
            soft,
            index,
            index_target: batch.target.is_index(),
            mask: batch.mask.map(<[bool]>::to_vec),
        }
    }

    pub fn as_ref(&self) -> RefBatch<'_> {
        RefBatch {
            shape: &self.shape,
            input: &self.input,
            target: if self.index_target {
                RefTarget::Index(&self.index)
            } else {
                RefTarget::Soft(&self.soft)
            },
            mask: self.mask.as_deref(),
        }
    }
}

/// A host call on the CPU reference (lengths and options checked by the caller).
pub(crate) fn evaluate(
    options: &LossOptions,
    batch: &Batch<'_>,
    with_grad: bool,
) -> Result<LossOutput> {
    let host = HostBatch::new(batch);
    let out = reference::evaluate(options, &host.as_ref(), with_grad)?;
    let out = finite(LossOutput {
        loss: out.loss as f32,
        values: out.values.map(narrow),
        grad: out.grad.map(narrow),
        soft_targets_with_classic: soft_targets_with_classic(options, &host.as_ref()),
    })?;
    guard(options, out)
}

/// An input-data error the kernels reported by kind only (their status word holds one
/// bit per kind), located by the CPU reference's own validation of the host data: the
/// first offending element, and an index target's value. Runs on the error path only;
/// any other error comes back unchanged.
pub(crate) fn locate(options: &LossOptions, batch: &Batch<'_>, e: Error) -> Error {
    let unlocated = matches!(
        e,
        Error::NonFiniteInput { position: None }
            | Error::SoftTargetOutOfRange { position: None }
            | Error::ProbabilityOutOfRange { position: None }
            | Error::ClassIndexOutOfRange { position: None, .. }
    );
    if !unlocated {
        return e;
    }
    let host = HostBatch::new(batch);
    reference::Pixels::new(options, &host.as_ref())
        .err()
        .unwrap_or(e)
}

/// The soft-label guard on the CPU reference: the classic formulation and a kept soft
/// target strictly inside (0, 1) (the GPU's statistics kernel raises a status bit).
pub(crate) fn soft_targets_with_classic(options: &LossOptions, batch: &RefBatch<'_>) -> bool {
    let RefTarget::Soft(t) = batch.target else {
        return false;
    };
    if options.formulation != Formulation::Classic {
        return false;
    }
    let (b_all, c_all, n) = (
        batch.shape.batch(),
        batch.shape.classes(),
        batch.shape.pixels(),
    );
    (0..b_all).any(|b| {
        (0..c_all).any(|c| {
            (0..n).any(|i| {
                let kept = batch.mask.is_none_or(|m| m[b * n + i]);
                let y = t[(b * c_all + c) * n + i];
                kept && y > 0.0 && y < 1.0
            })
        })
    })
}

/// The split-phase local phase on the CPU reference: the shared block, this worker's
/// item statistics (f32, as reported), the widened batch and its f64 item statistics
/// (kept for the gradient).
pub(crate) struct Local {
    pub shared: Vec<f32>,
    pub items: Vec<[f32; 4]>,
    pub batch: HostBatch,
    pub items_f64: Vec<[f64; 4]>,
}

/// The local phase of `batch`.
pub(crate) fn stats(options: &LossOptions, batch: &Batch<'_>) -> Result<Local> {
    let host = HostBatch::new(batch);
    let rb = host.as_ref();
    let px = reference::Pixels::new(options, &rb)?;
    let items = reference::stats(options, &rb, &px);
    let shared = reference::summarize(options, batch.shape, &items);
    Ok(Local {
        shared: shared.iter().map(|&v| v as f32).collect(),
        items: items
            .iter()
            .take(batch.shape.batch() * batch.shape.classes())
            .map(|r| r.map(|v| v as f32))
            .collect(),
        batch: host,
        items_f64: items,
    })
}

/// The global phase from the (summed) `shared` block.
pub(crate) fn finish(
    options: &LossOptions,
    shared: &[f32],
    batch: &HostBatch,
    items: &[[f64; 4]],
    with_grad: bool,
) -> Result<LossOutput> {
    let rb = batch.as_ref();
    let shared: Vec<f64> = shared.iter().map(|&v| f64::from(v)).collect();
    let fin = reference::finish(options, rb.shape, items, &shared);
    let px = reference::Pixels::new(options, &rb)?;
    let grad = with_grad.then(|| reference::grad(options, &rb, &px, &fin.coef, fin.pixel_scale));
    let out = finite(LossOutput {
        loss: fin.loss as f32,
        values: fin.values.map(narrow),
        grad: grad.map(narrow),
        soft_targets_with_classic: soft_targets_with_classic(options, &rb),
    })?;
    guard(options, out)
}
