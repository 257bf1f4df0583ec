//! # segloss-burn
//!
//! segloss's soft-label-correct Dice / Jaccard / Tversky (and Generalized Dice, and their
//! compound CE / focal terms) as burn 0.22 losses with autodiff: `forward(logits,
//! targets)` returns the loss as a one-element burn tensor whose backward is segloss's
//! analytic gradient.
//!
//! ## Two paths, one API
//!
//! - **Zero-copy** (burn's wgpu backend, fused or not): on a device set up by
//!   [`init_default_wgpu`] (or [`init_wgpu`], [`register_wgpu`]), burn and segloss share
//!   one `wgpu::Device`. The loss is a burn backend extension ([`SegLossOps`]) queued in
//!   burn's stream: segloss's kernels read the logits and targets in burn's own buffers,
//!   write the gradient into a buffer that becomes a burn tensor, and leave the loss on
//!   the device. Nothing is copied to or from the host. The forward op runs segloss's
//!   statistics pass and keeps the statistics on the device; the backward pass is a
//!   custom autodiff step that runs segloss's gradient pass with the loss's incoming
//!   gradient as a factor read on the device (no extra pass over the gradient).
//! - **Host path** (every other device: ndarray, flex, candle, tch, cuda, or a wgpu device
//!   burn created on its own): the logits and targets are copied out, segloss runs on its
//!   own context (the first GPU adapter, else its f64 CPU reference), and the gradient is
//!   copied back. The returned tensor is `L + Σ(g ⊙ logits) − detach(Σ(g ⊙ logits))`:
//!   value L exactly, derivative g exactly.
//!
//! ```no_run
//! use burn::tensor::{Device, Int, Tensor};
//! use segloss_burn::{SegLossConfig, Targets};
//! # fn main() -> segloss::Result<()> {
//! // Before the model: burn's default wgpu device, shared with segloss.
//! let device = segloss_burn::init_default_wgpu()?.autodiff();
//! let logits = Tensor::<4>::zeros([2, 3, 8, 8], &device).require_grad();
//! let labels = Tensor::<3, Int>::zeros([2, 8, 8], &device);
//! let loss = SegLossConfig::new(segloss::LossOptions::jaccard()).init()?;
//! let l = loss.forward(logits.clone(), Targets::Index(labels))?;
//! let grads = l.backward();
//! let g = logits.grad(&grads); // segloss's d loss / d logits
//! # Ok(())
//! # }
//! ```

mod cube;
mod host;
mod shared;
mod zero_copy;

pub use shared::{init_default_wgpu, init_wgpu, register_wgpu, shared_context};
pub use zero_copy::{GpuCall, SegLossOps};

use zero_copy::Last;

use std::sync::{Arc, Mutex};

use burn::tensor::{Int, Tensor};
use segloss::{Context, Loss, LossOptions, Shape};

/// What a loss is computed against.
#[derive(Clone, Debug)]
pub enum Targets<const D: usize, const DI: usize> {
    /// Soft (or one-hot) labels `[B, C, S...]`, values in [0, 1] (no gradient flows
    /// to them).
    Soft(Tensor<D>),
    /// Class indices `[B, S...]` (the options' `ignore_index` applies; on the zero-copy
    /// path they are read as 32-bit integers, other int dtypes cast on the device).
    Index(Tensor<DI, Int>),
}

/// A segloss loss's configuration: any [`LossOptions`] (the MONAI and JDTLoss
/// constructors of `segloss` produce them).
#[derive(Clone, Debug, PartialEq)]
pub struct SegLossConfig {
    /// The loss options.
    pub options: LossOptions,
}

impl SegLossConfig {
    /// A configuration of `options`.
    pub fn new(options: LossOptions) -> Self {
        SegLossConfig { options }
    }

    /// The loss. Zero-copy on devices set up by [`init_wgpu`] and friends; elsewhere
    /// the host path on segloss's own context (the first GPU adapter, else the f64 CPU
    /// reference), created on first use.
    pub fn init(&self) -> segloss::Result<SegLoss> {
        Loss::new(&Context::cpu(), self.options.clone())?;
        Ok(SegLoss {
            options: self.options.clone(),
            host: Arc::new(Mutex::new(None)),
            error: Arc::new(Mutex::new(None)),
            last: Arc::new(Mutex::new(None)),
        })
    }

    /// The loss, its host path on a given segloss context.
    pub fn init_on(&self, ctx: &Context) -> segloss::Result<SegLoss> {
        let loss = Loss::new(ctx, self.options.clone())?;
        Ok(SegLoss {
            options: self.options.clone(),
            host: Arc::new(Mutex::new(Some(loss))),
            error: Arc::new(Mutex::new(None)),
            last: Arc::new(Mutex::new(None)),
        })
    }
}

/// A segloss loss for burn tensors.
#[derive(Clone, Debug)]
pub struct SegLoss {
    options: LossOptions,
    /// The host path's loss, on its own context (created on first use).
    host: Arc<Mutex<Option<Loss>>>,
    /// An error of a deferred zero-copy op (see [`SegLoss::take_error`]).
    error: Arc<Mutex<Option<segloss::Error>>>,
    /// The last call that has run (see [`SegLoss::soft_targets_with_classic`]).
    last: Arc<Mutex<Option<Last>>>,
}

impl SegLoss {
    /// The loss of `logits` `[B, C, S...]` against `targets` as a one-element tensor on
    /// the logits' device. Differentiable with respect to `logits` when they track
    /// gradients (segloss's analytic gradient).
    pub fn forward<const D: usize, const DI: usize>(
        &self,
        logits: Tensor<D>,
        targets: Targets<D, DI>,
    ) -> segloss::Result<Tensor<1>> {
        self.forward_masked(logits, targets, None)
    }

    /// [`SegLoss::forward`] with a keep-mask `[B, S...]` (`false` pixels are ignored).
    pub fn forward_masked<const D: usize, const DI: usize>(
        &self,
        logits: Tensor<D>,
        targets: Targets<D, DI>,
        mask: Option<&[bool]>,
    ) -> segloss::Result<Tensor<1>> {
        let dims = logits.shape().to_vec();
        let shape = Shape::new(&dims)?;
        check_targets(&shape, &targets, mask)?;
        // Soft targets with `ignore_index` follow MONAI's channel rule, which the
        // GPU-resident kernels do not implement: the host path takes them.
        let monai_rule = matches!(targets, Targets::Soft(_)) && self.options.ignore_index.is_some();
        match shared_context(&logits.device()).filter(|_| !monai_rule) {
            Some(ctx) => {
                let loss = Loss::new(&ctx, self.options.clone())?;
                loss.check_shape(&shape)?;
                zero_copy::forward(loss, (&self.error, &self.last), logits, targets, mask)
            }
            None => {
                let mut host = self.host.lock().unwrap_or_else(|e| e.into_inner());
                let loss = match host.as_ref() {
                    Some(l) => l.clone(),
                    None => {
                        let l = Loss::new(&Context::new_or_cpu(), self.options.clone())?;
                        *host = Some(l.clone());
                        l
                    }
                };
                drop(host);
                let (value, soft_classic) = host::forward(&loss, logits, targets, mask)?;
                if let Ok(mut last) = self.last.lock() {
                    *last = Some(Last::Host(soft_classic));
                }
                Ok(value)
            }
        }
    }

    /// Whether calls on tensors of `device` take the zero-copy path (soft targets with
    /// `ignore_index` take the host path on every device: MONAI's channel rule is
    /// host-only).
    pub fn is_zero_copy(&self, device: &burn::tensor::Device) -> bool {
        shared_context(device).is_some()
    }

    /// The options of this loss.
    pub fn options(&self) -> &LossOptions {
        &self.options
    }

    /// Replaces the options for the following calls: a schedule-driven loss, e.g.
    /// `seg.set_options(schedule.options_at(step))?` each step of a training loop with a
    /// [`segloss::Schedule`]. Validated first (on error nothing changes). Pipelines are
    /// cached per context, so a step inside a ramp (weights only) compiles nothing. The
    /// host path's context is kept; clones made earlier keep their options.
    pub fn set_options(&mut self, options: LossOptions) -> segloss::Result<()> {
        let host = self.host.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let host = match host {
            Some(l) => Some(Loss::new(l.context(), options.clone())?),
            None => {
                Loss::new(&Context::cpu(), options.clone())?;
                None
            }
        };
        self.host = Arc::new(Mutex::new(host));
        self.options = options;
        Ok(())
    }

    /// The error of a zero-copy call, if one failed since the last call of this method.
    ///
    /// A zero-copy call is queued in burn's stream and runs when burn runs it, after
    /// `forward` has returned: shapes and options are checked in `forward`, but an error
    /// on the device (a lost device, a buffer segloss cannot bind) can only make that
    /// call's loss NaN and its gradient zero, and is kept here. Invalid data (NaN logits,
    /// soft targets outside [0, 1], class indices out of range) also makes the loss NaN
    /// and the gradient zero, with no error here: the check is on the device, and reading
    /// it back each step would cost the readback zero-copy avoids.
    pub fn take_error(&self) -> Option<segloss::Error> {
        self.error.lock().ok().and_then(|mut e| e.take())
    }

    /// The soft-label guard (segloss's SPEC §8) for burn: whether the last call of this
    /// loss (or of a clone) that has run saw the classic formulation meet a kept soft
    /// target strictly between 0 and 1, where the classic losses are biased (use
    /// `Formulation::Soft`). `Ok(None)` when no call has run yet, or the last one failed
    /// ([`SegLoss::take_error`]).
    ///
    /// The host path has the flag on the host already. On the zero-copy path it is a bit
    /// of the status word segloss's statistics kernel writes into the forward op's result
    /// on the device; this method reads that result back (a few bytes, blocking until
    /// the op has run on the GPU), so a training loop pays for it only when it asks —
    /// after the first step, say. A zero-copy call runs when burn runs its queue (a read
    /// of the loss, the backward pass): one only queued is not "the last that has run".
    /// The read also reports that call's data errors (NaN logits, targets outside
    /// [0, 1]) as errors. The zero-copy path cannot refuse a call whose guard fires (it
    /// has run by the time anyone can know): with `SoftLabelGuard::Error` this method
    /// returns `Ok(Some(true))` like with `Warn`, while the host path's `forward` returns
    /// `Error::SoftTargetsWithClassic`. With `Warn`, a `true` read here logs segloss's
    /// one-time warning.
    pub fn soft_targets_with_classic(&self) -> segloss::Result<Option<bool>> {
        let last = self.last.lock().ok().and_then(|l| l.clone());
        match last {
            None => Ok(None),
            Some(Last::Host(fired)) => Ok(Some(fired)),
            Some(Last::Device(call)) => match call.0.read(&call.1) {
                Ok(out) => Ok(Some(out.soft_targets_with_classic)),
                Err(segloss::Error::SoftTargetsWithClassic) => Ok(Some(true)),
                Err(e) => Err(e),
            },
        }
    }
}

/// The targets' (and mask's) shapes against the logits' `shape`.
fn check_targets<const D: usize, const DI: usize>(
    shape: &Shape,
    targets: &Targets<D, DI>,
    mask: Option<&[bool]>,
) -> segloss::Result<()> {
    let dims = shape.dims();
    let (what, got, want): (_, Vec<usize>, Vec<usize>) = match targets {
        Targets::Soft(t) => ("target", t.shape().to_vec(), dims.to_vec()),
        Targets::Index(t) => {
            let want = std::iter::once(dims[0])
                .chain(dims[2..].iter().copied())
                .collect();
            ("target", t.shape().to_vec(), want)
        }
    };
    if got != want {
        return Err(segloss::Error::LengthMismatch {
            what,
            actual: got.iter().product(),
            expected: want.iter().product(),
        });
    }
    if let Some(m) = mask.filter(|m| m.len() != shape.map_len()) {
        return Err(segloss::Error::LengthMismatch {
            what: "mask",
            actual: m.len(),
            expected: shape.map_len(),
        });
    }
    Ok(())
}
