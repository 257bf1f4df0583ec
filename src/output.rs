//! What a host call returns, and the decoding of a result buffer (`[loss, status,
//! values…]`) into it: the status word becomes a typed error, and no `Ok` carries a NaN
//! or ±Inf.

use crate::error::{Error, Result};
use crate::options::{LossOptions, SoftLabelGuard};

/// What a host call returns.
#[derive(Clone, Debug, PartialEq)]
pub struct LossOutput {
    /// The scalar loss (for `Reduction::None`, the sum of `values`).
    pub loss: f32,
    /// Per-item values for `Reduction::None`: `[C']` (dataset level) or `[B, C']`.
    pub values: Option<Vec<f32>>,
    /// d(loss)/d(input) `[B, C, S...]`, when asked for.
    pub grad: Option<Vec<f32>>,
    /// The soft-label guard ([`crate::SoftLabelGuard`]): the formulation is `Classic`
    /// and a kept target value lies strictly between 0 and 1, where the classic losses
    /// are biased (use `Formulation::Soft`). Always `false` for other formulations and
    /// for index targets.
    pub soft_targets_with_classic: bool,
}

/// Decodes `[loss, status, values…]` (+ the gradient bytes) into a [`LossOutput`].
/// `bufs` is `[out]` or `[out, grad]` as read back; the gradient is moved, not copied.
pub(crate) fn parse(
    mut bufs: Vec<Vec<f32>>,
    values_len: usize,
    classes: usize,
) -> Result<LossOutput> {
    let with_grad = bufs.len() > 1;
    let out = &bufs[0];
    check_status(out, classes)?;
    if with_grad && !bufs.last().is_some_and(|g| all_finite(g)) {
        return Err(overflow());
    }
    let (loss, values) = (
        out[0],
        (values_len > 0).then(|| out[2..2 + values_len].to_vec()),
    );
    let status = out[1].to_bits();
    Ok(LossOutput {
        loss,
        values,
        grad: bufs.pop().filter(|_| with_grad),
        soft_targets_with_classic: status & STATUS_SOFT_CLASSIC != 0,
    })
}

/// The status bit of the soft-label guard (`shaders/shared/common.wgsl`): a notice, not
/// invalid data.
pub(crate) const STATUS_SOFT_CLASSIC: u32 = 32;

/// The soft-label guard at the end of a call: a result whose guard fired becomes
/// [`Error::SoftTargetsWithClassic`] when the options ask for it, else it is returned
/// after one `log` warning per process.
pub(crate) fn guard(options: &LossOptions, out: LossOutput) -> Result<LossOutput> {
    if !out.soft_targets_with_classic {
        return Ok(out);
    }
    if options.soft_label_guard == SoftLabelGuard::Error {
        return Err(Error::SoftTargetsWithClassic);
    }
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| {
        log::warn!(
            target: "segloss",
            "soft targets with the classic formulation: its optimum is biased (a pixel \
             labelled 0.5 pulls its prediction to 1); use Formulation::Soft (MONAI \
             soft_label=True). LossOutput::soft_targets_with_classic reports it per call; \
             SoftLabelGuard::Error makes it an error. Logged once per process."
        );
    });
    Ok(out)
}

/// The status bit a result buffer and a fresh status word start with (`Call::new`),
/// until a submitted call overwrites the one and clears the other: kernels treat it as
/// invalid data (NaN loss, zero gradient), the host as [`Error::NotSubmitted`].
pub(crate) const STATUS_NOT_RUN: u32 = 1 << 31;

/// The status word of a result (`[loss, status, …]`) as an error.
pub(crate) fn check_status(out: &[f32], classes: usize) -> Result<()> {
    let status = out.get(1).map_or(STATUS_NOT_RUN, |s| s.to_bits());
    if status & STATUS_NOT_RUN != 0 {
        return Err(Error::NotSubmitted);
    }
    if status & 1 != 0 {
        return Err(Error::NonFiniteInput { position: None });
    }
    if status & 2 != 0 {
        return Err(Error::SoftTargetOutOfRange { position: None });
    }
    if status & 4 != 0 {
        return Err(Error::ClassIndexOutOfRange {
            value: None,
            classes,
            position: None,
        });
    }
    if status & 8 != 0 {
        return Err(Error::ProbabilityOutOfRange { position: None });
    }
    if status & 16 != 0 || !out[0].is_finite() {
        return Err(overflow());
    }
    Ok(())
}

pub(crate) fn all_finite(v: &[f32]) -> bool {
    v.iter().all(|x| x.is_finite())
}

pub(crate) fn overflow() -> Error {
    Error::NonFiniteResult(
        "an option is too large for f32 arithmetic (weights, α, β, smoothing, γ)".into(),
    )
}

/// A CPU result whose f32 rounding overflowed is an error, as on the GPU: no `Ok` carries
/// a NaN or ±Inf that the (finite, checked) input did not.
pub(crate) fn finite(out: LossOutput) -> Result<LossOutput> {
    let bad = |v: &Option<Vec<f32>>| v.iter().flatten().any(|x| !x.is_finite());
    if !out.loss.is_finite() || bad(&out.values) || bad(&out.grad) {
        return Err(overflow());
    }
    Ok(out)
}

/// f64 reference results rounded to f32.
pub(crate) fn narrow(v: Vec<f64>) -> Vec<f32> {
    v.into_iter().map(|x| x as f32).collect()
}
