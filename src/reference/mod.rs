//! The CPU reference in f64: the same SPEC as the GPU kernels, shaped like them
//! (`stats` ↔ `tile_sums` + `item_sums`; `summarize` ↔ `row_sums` + `finalize`'s first
//! phase; `finish` ↔ `finalize`'s second phase + `coef`; `grad` ↔ `norm` +
//! `softmax_dot` + `grad`). The tests check the GPU
//! against it, and a [`crate::Context`] without a GPU computes with it.
//!
//! ```
//! # fn main() -> segloss::Result<()> {
//! use segloss::{reference, LossOptions, Shape};
//! let shape = Shape::new(&[1, 2, 3])?;
//! let input = [0.5, -1.0, 2.0, 0.1, 0.3, -0.2];
//! let target = [1.0, 0.0, 0.5, 0.0, 1.0, 0.5];
//! let batch = reference::RefBatch::soft(&shape, &input, &target);
//! let out = reference::evaluate(&LossOptions::dice(), &batch, true)?;
//! assert!(out.loss > 0.0 && out.grad.map(|g| g.len()) == Some(6));
//! # Ok(())
//! # }
//! ```

mod finalize;
mod grad;
pub mod pixel;
mod stats;

pub use finalize::{finalize, finish, shared_len, summarize, Finalized, SHARED_HEADER, SHARED_ROW};
pub use grad::grad;
pub use stats::{present, stats};

use crate::options::{Activation, Formulation, LossOptions};
use crate::shape::check_len;
use crate::{Error, Result, Shape};

/// Target of a reference call.
#[derive(Clone, Copy, Debug)]
pub enum RefTarget<'a> {
    /// Soft labels `[B, C, S...]`.
    Soft(&'a [f64]),
    /// Class indices `[B, S...]`.
    Index(&'a [i64]),
}

/// One reference call's data, in f64.
#[derive(Clone, Copy, Debug)]
pub struct RefBatch<'a> {
    /// `[B, C, S...]`.
    pub shape: &'a Shape,
    /// Logits or probabilities `[B, C, S...]`.
    pub input: &'a [f64],
    /// Soft or index target.
    pub target: RefTarget<'a>,
    /// Keep-mask `[B, S...]`.
    pub mask: Option<&'a [bool]>,
}

impl<'a> RefBatch<'a> {
    /// Soft targets, no mask.
    pub fn soft(shape: &'a Shape, input: &'a [f64], target: &'a [f64]) -> Self {
        RefBatch {
            shape,
            input,
            target: RefTarget::Soft(target),
            mask: None,
        }
    }
}

/// Result of a reference call.
#[derive(Clone, Debug, PartialEq)]
pub struct Output {
    /// The scalar loss (for `Reduction::None`, the sum of `values`).
    pub loss: f64,
    /// Per-item values for `Reduction::None`.
    pub values: Option<Vec<f64>>,
    /// d(loss)/d(input), when asked for.
    pub grad: Option<Vec<f64>>,
}

/// Loss (and gradient when `with_grad`) of one batch: `stats` → `finalize` → `grad`.
pub fn evaluate(options: &LossOptions, batch: &RefBatch<'_>, with_grad: bool) -> Result<Output> {
    options.validate()?;
    options.validate_for(batch.shape.classes())?;
    let pixels = Pixels::new(options, batch)?;
    let st = stats(options, batch, &pixels);
    let fin = finalize(options, batch.shape, &st);
    let grad = with_grad.then(|| grad(options, batch, &pixels, &fin.coef, fin.pixel_scale));
    Ok(Output {
        loss: fin.loss,
        values: fin.values,
        grad,
    })
}

/// Per-pixel facts shared by the `stats` and `grad` twins: whether the pixel is kept
/// (mask, ignore_index) and its class index (index targets). Building it validates the
/// data (SPEC §1), reporting the first offending flat index.
#[derive(Clone, Debug)]
pub struct Pixels {
    keep: Vec<bool>,
    class: Vec<usize>,
}

impl Pixels {
    /// Validates `batch` and records, per pixel `[B, N]`, keep and class index.
    pub fn new(options: &LossOptions, batch: &RefBatch<'_>) -> Result<Self> {
        let s = batch.shape;
        let (c_all, map_len) = (s.classes(), s.map_len());
        check_len("input", batch.input.len(), s.len())?;
        if let Some(i) = batch.input.iter().position(|x| !x.is_finite()) {
            return Err(Error::NonFiniteInput { position: Some(i) });
        }
        if options.checks_probabilities() {
            if let Some(i) = batch.input.iter().position(|x| !(0.0..=1.0).contains(x)) {
                return Err(Error::ProbabilityOutOfRange { position: Some(i) });
            }
        }
        let mut keep = match batch.mask {
            Some(m) => {
                check_len("mask", m.len(), map_len)?;
                m.to_vec()
            }
            None => vec![true; map_len],
        };
        let mut class = Vec::new();
        match batch.target {
            RefTarget::Soft(t) => {
                check_len("target", t.len(), s.len())?;
                if let Some(i) = t.iter().position(|y| !(0.0..=1.0).contains(y)) {
                    return Err(Error::SoftTargetOutOfRange { position: Some(i) });
                }
            }
            RefTarget::Index(t) => {
                check_len("target", t.len(), map_len)?;
                class = vec![0; map_len];
                for (j, &v) in t.iter().enumerate() {
                    if options.ignore_index == Some(v) {
                        keep[j] = false;
                    } else if v < 0 || v as u64 >= c_all as u64 {
                        return Err(Error::ClassIndexOutOfRange {
                            value: Some(v),
                            classes: c_all,
                            position: Some(j),
                        });
                    } else {
                        class[j] = v as usize;
                    }
                }
            }
        }
        Ok(Pixels { keep, class })
    }
}

/// Probabilities of every class at pixel `i` of image `b` (SPEC §2.1), into `p`.
pub(crate) fn activate(act: Activation, batch: &RefBatch<'_>, b: usize, i: usize, p: &mut [f64]) {
    let (c_all, n) = (batch.shape.classes(), batch.shape.pixels());
    for (c, pc) in p.iter_mut().enumerate() {
        *pc = batch.input[(b * c_all + c) * n + i];
    }
    match act {
        Activation::Softmax => {
            let m = p.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mut s = 0.0;
            for pc in p.iter_mut() {
                *pc = (*pc - m).exp();
                s += *pc;
            }
            p.iter_mut().for_each(|pc| *pc /= s);
        }
        Activation::Sigmoid => p.iter_mut().for_each(|pc| *pc = 1.0 / (1.0 + (-*pc).exp())),
        Activation::None => {}
    }
}

/// Logits, probabilities and (softmax) log-probabilities of every class at pixel `i` of
/// image `b`.
pub(crate) fn pixel_data(
    act: Activation,
    batch: &RefBatch<'_>,
    b: usize,
    i: usize,
    x: &mut [f64],
    p: &mut [f64],
    logp: &mut [f64],
) {
    let (c_all, n) = (batch.shape.classes(), batch.shape.pixels());
    for (c, xc) in x.iter_mut().enumerate() {
        *xc = batch.input[(b * c_all + c) * n + i];
    }
    activate(act, batch, b, i, p);
    if act == Activation::Softmax {
        let m = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let lse = m + x.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
        for (l, xc) in logp.iter_mut().zip(x.iter()) {
            *l = xc - lse;
        }
    }
}

/// Target of class `c` at a kept pixel.
pub(crate) fn target(batch: &RefBatch<'_>, px: &Pixels, b: usize, c: usize, i: usize) -> f64 {
    let s = batch.shape;
    match batch.target {
        RefTarget::Soft(t) => t[(b * s.classes() + c) * s.pixels() + i],
        RefTarget::Index(_) => f64::from(u8::from(px.class[b * s.pixels() + i] == c)),
    }
}

/// sgn with sgn(0) = 0 (PyTorch's convention; `f64::signum(0.0)` is 1).
pub(crate) fn sgn(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// One element's (tp, fp, fn) by formulation (SPEC §2.4; twin of `contribution`).
pub(crate) fn contribution(f: Formulation, p: f64, y: f64) -> [f64; 3] {
    match f {
        Formulation::Soft => {
            let tp = 0.5 * (p.abs() + y.abs() - (p - y).abs());
            [tp, p.abs() - tp, y.abs() - tp]
        }
        Formulation::Squared => [p * y, p * (p - y), y * (y - p)],
        Formulation::Classic => [p * y, p * (1.0 - y), y * (1.0 - p)],
    }
}

/// d loss/d p from the item coefficients g = d loss/d(tp, fp, fn) (SPEC §3; twin of
/// `prob_grad`).
pub(crate) fn prob_grad(f: Formulation, g: [f64; 3], p: f64, y: f64) -> f64 {
    match f {
        Formulation::Soft => {
            let dtp = 0.5 * (sgn(p) - sgn(p - y));
            g[0] * dtp + g[1] * (sgn(p) - dtp) - g[2] * dtp
        }
        Formulation::Squared => g[0] * y + g[1] * (2.0 * p - y) - g[2] * y,
        Formulation::Classic => g[0] * y + g[1] * (1.0 - y) - g[2] * y,
    }
}
