//! Deep supervision: one loss over a network's K heads at several scales (nnU-Net,
//! MONAI's `DynUNet`, any U-Net with auxiliary outputs), against one full-resolution
//! target that is downsampled to each head's size on the GPU.
//!
//! The default downsampling is [`Pooling::Area`]: a coarse cell's target is the fraction
//! of each class among the target pixels it covers (PyTorch's `adaptive_avg_pool` cells,
//! ignored and masked-out pixels left out of the mean, a cell with none kept masked out):
//! a soft label that keeps a structure smaller than the stride, where nearest-neighbour
//! downsampling drops it (nnU-Net issue 1226). Soft targets need the soft formulation
//! ([`crate::Formulation::Soft`]) to be unbiased. [`Pooling::NearestExact`] is MONAI's
//! `DeepSupervisionLoss` (PyTorch's `nearest-exact`), for parity.
//!
//! The total is `Σ_k w_k · loss_k` (MONAI's sum, not a mean), the gradient of head k is
//! `w_k · d loss_k / d head_k`; the weights are MONAI's `weight_mode` or explicit
//! ([`Weights`]).
//!
//! ```
//! # fn main() -> segloss::Result<()> {
//! use segloss::deep::{DeepSupervision, DeepTarget, Head, Pooling, Weights};
//! use segloss::{Context, Formulation, LossOptions, Shape};
//! let ctx = Context::new_or_cpu();
//! let ds = DeepSupervision::new(&ctx, LossOptions::dice().formulation(Formulation::Soft))?
//!     .pooling(Pooling::Area)
//!     .weights(Weights::Exp);
//! let full = Shape::new(&[1, 2, 4, 4])?; // the target's [B, C, S...]
//! let half = Shape::new(&[1, 2, 2, 2])?;
//! let (x0, x1) = (vec![0.0f32; 32], vec![0.0f32; 8]);
//! let labels: Vec<u32> = (0..16).map(|i| u32::from(i == 5)).collect(); // one pixel
//! let heads = [Head { shape: &full, input: &x0 }, Head { shape: &half, input: &x1 }];
//! let out = ds.forward_backward(&heads, &full, DeepTarget::Index(&labels), None)?;
//! assert_eq!(out.losses.len(), 2);
//! assert_eq!(out.weights, [1.0, 0.5]);
//! assert!((out.loss - (out.losses[0] + 0.5 * out.losses[1])).abs() < 1e-6);
//! # Ok(())
//! # }
//! ```

mod host;
mod pool;
mod run;

pub use pool::pool_host;

use crate::api::Loss;
use crate::context::{Context, Inner};
use crate::error::{Error, Result};
use crate::options::LossOptions;
use crate::shape::Shape;

/// How the full-resolution target becomes a coarse head's target.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Pooling {
    /// The mean of the one-hot (or soft) target over the pixels each cell covers:
    /// PyTorch's `adaptive_avg_pool` cell `[⌊i·I/O⌋, ⌈(i+1)·I/O⌉)` per axis, for any
    /// ratio; ignored and masked-out pixels are left out of the mean, and a cell with no
    /// kept pixel is masked out.
    #[default]
    Area,
    /// The target pixel `min(⌊(i + ½)·I/O⌋, I − 1)` per axis (the scale in f32), as
    /// `F.interpolate(mode="nearest-exact")` and MONAI's `DeepSupervisionLoss`.
    NearestExact,
}

/// Each head's weight in the total (head 0 first, usually the full resolution).
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Weights {
    /// 1 each (MONAI `weight_mode="same"`).
    Same,
    /// max(0.5^k, 0.0625): 1, 0.5, 0.25, 0.125, 0.0625, 0.0625, … (MONAI's default
    /// `"exp"`).
    #[default]
    Exp,
    /// 1, then 0.5 each (MONAI `"two"`).
    Two,
    /// One finite weight ≥ 0 per head, exactly as many as heads.
    Explicit(Vec<f32>),
    /// MONAI's rule for explicit weights: the first K of these when there are at least
    /// as many as the K heads, else the other weights.
    Prefix(Vec<f32>, Box<Weights>),
}

impl Weights {
    /// The weights of `heads` heads.
    pub fn of(&self, heads: usize) -> Result<Vec<f32>> {
        Ok(match self {
            Weights::Same => vec![1.0; heads],
            Weights::Exp => (0..heads)
                .map(|k| 0.5f32.powi(k.min(30) as i32).max(0.0625))
                .collect(),
            Weights::Two => (0..heads).map(|k| if k == 0 { 1.0 } else { 0.5 }).collect(),
            Weights::Explicit(w) => {
                if w.len() != heads {
                    return Err(Error::option(
                        "weights",
                        format!("{} weights for {heads} heads", w.len()),
                    ));
                }
                if let Some(k) = w.iter().position(|v| !(v.is_finite() && *v >= 0.0)) {
                    let weight = format!("{} is not a finite weight ≥ 0", w[k]);
                    return Err(in_head(k)(Error::option("weights", weight)));
                }
                w.clone()
            }
            Weights::Prefix(w, _) if w.len() >= heads => {
                Weights::Explicit(w[..heads].to_vec()).of(heads)?
            }
            Weights::Prefix(_, otherwise) => otherwise.of(heads)?,
        })
    }
}

/// One head's output: `[B, C, S_k...]` logits (or probabilities, as the options say).
#[derive(Clone, Copy, Debug)]
pub struct Head<'a> {
    /// `[B, C, S_k...]`, the same B and C as the target's, no axis larger.
    pub shape: &'a Shape,
    /// Its values.
    pub input: &'a [f32],
}

/// The full-resolution target.
#[derive(Clone, Copy, Debug)]
pub enum DeepTarget<'a> {
    /// Class indices `[B, S...]` (the options' `ignore_index` applies).
    Index(&'a [u32]),
    /// Soft labels `[B, C, S...]` in [0, 1].
    Soft(&'a [f32]),
}

/// A deep-supervision call's results.
#[derive(Clone, Debug, PartialEq)]
pub struct DeepOutput {
    /// `Σ_k w_k · losses[k]`.
    pub loss: f32,
    /// Each head's loss, unweighted (for logging).
    pub losses: Vec<f32>,
    /// The weights applied.
    pub weights: Vec<f32>,
    /// `w_k · d loss_k / d head_k`, one per head (empty for [`DeepSupervision::forward`]).
    pub grads: Vec<Vec<f32>>,
}

/// A deep-supervision loss: one [`LossOptions`] applied at every head.
#[derive(Debug)]
pub struct DeepSupervision {
    /// The loss at the target's resolution (index targets with `ignore_index`).
    full: Loss,
    /// The loss of pooled heads: soft targets with a keep-mask, no `ignore_index`.
    coarse: Loss,
    pooling: Pooling,
    weights: Weights,
}

impl DeepSupervision {
    /// A deep-supervision loss with `options` at every head ([`Pooling::Area`],
    /// [`Weights::Exp`] by default).
    pub fn new(ctx: &Context, options: LossOptions) -> Result<Self> {
        let mut coarse = options.clone();
        coarse.ignore_index = None;
        Ok(DeepSupervision {
            full: Loss::new(ctx, options)?,
            coarse: Loss::new(ctx, coarse)?,
            pooling: Pooling::Area,
            weights: Weights::Exp,
        })
    }

    /// The same with another downsampling.
    pub fn pooling(mut self, pooling: Pooling) -> Self {
        self.pooling = pooling;
        self
    }

    /// The same with other weights (checked against the number of heads at each call).
    pub fn weights(mut self, weights: Weights) -> Self {
        self.weights = weights;
        self
    }

    /// The weights of `heads` heads.
    pub fn weights_of(&self, heads: usize) -> Result<Vec<f32>> {
        self.weights.of(heads)
    }

    /// The options applied at every head.
    pub fn options(&self) -> &LossOptions {
        self.full.options()
    }

    /// The total loss and each head's.
    pub fn forward(
        &self,
        heads: &[Head<'_>],
        target_shape: &Shape,
        target: DeepTarget<'_>,
        mask: Option<&[bool]>,
    ) -> Result<DeepOutput> {
        self.call(heads, target_shape, target, mask, false)
    }

    /// The total loss, each head's, and each head's weighted gradient.
    pub fn forward_backward(
        &self,
        heads: &[Head<'_>],
        target_shape: &Shape,
        target: DeepTarget<'_>,
        mask: Option<&[bool]>,
    ) -> Result<DeepOutput> {
        self.call(heads, target_shape, target, mask, true)
    }

    fn call(
        &self,
        heads: &[Head<'_>],
        target_shape: &Shape,
        target: DeepTarget<'_>,
        mask: Option<&[bool]>,
        with_grad: bool,
    ) -> Result<DeepOutput> {
        let weights = self.check(heads, target_shape, target, mask)?;
        let (losses, grads) = match &*self.full.context().inner {
            Inner::Cpu => self.on_host(heads, target_shape, target, mask, with_grad)?,
            Inner::Gpu(gpu) => {
                #[cfg(target_arch = "wasm32")]
                return Err(Error::WouldBlock(
                    "DeepSupervision::forward_backward".into(),
                ));
                let s = run::submit(self, gpu, heads, (target_shape, target, mask), with_grad)?;
                let bufs = s.pending.wait()?;
                run::finish(self, heads, target_shape, (&s.results, s.n_grads), bufs)?
            }
        };
        Ok(weighted(losses, grads, weights))
    }

    /// [`DeepSupervision::forward`] without blocking (the browser's form).
    pub async fn forward_async(
        &self,
        heads: &[Head<'_>],
        target_shape: &Shape,
        target: DeepTarget<'_>,
        mask: Option<&[bool]>,
    ) -> Result<DeepOutput> {
        self.call_async(heads, target_shape, target, mask, false)
            .await
    }

    /// [`DeepSupervision::forward_backward`] without blocking (the browser's form).
    pub async fn forward_backward_async(
        &self,
        heads: &[Head<'_>],
        target_shape: &Shape,
        target: DeepTarget<'_>,
        mask: Option<&[bool]>,
    ) -> Result<DeepOutput> {
        self.call_async(heads, target_shape, target, mask, true)
            .await
    }

    async fn call_async(
        &self,
        heads: &[Head<'_>],
        target_shape: &Shape,
        target: DeepTarget<'_>,
        mask: Option<&[bool]>,
        with_grad: bool,
    ) -> Result<DeepOutput> {
        let weights = self.check(heads, target_shape, target, mask)?;
        let (losses, grads) = match &*self.full.context().inner {
            Inner::Cpu => self.on_host(heads, target_shape, target, mask, with_grad)?,
            Inner::Gpu(gpu) => {
                let s = run::submit(self, gpu, heads, (target_shape, target, mask), with_grad)?;
                let bufs = s.pending.wait_async().await?;
                run::finish(self, heads, target_shape, (&s.results, s.n_grads), bufs)?
            }
        };
        Ok(weighted(losses, grads, weights))
    }
}

/// Wraps an error as head `k`'s.
pub(crate) fn in_head(k: usize) -> impl Fn(Error) -> Error {
    move |e| Error::InHead {
        head: k,
        source: Box::new(e),
    }
}

/// The weighted total and gradients.
fn weighted(losses: Vec<f32>, mut grads: Vec<Vec<f32>>, weights: Vec<f32>) -> DeepOutput {
    for (g, w) in grads.iter_mut().zip(&weights) {
        g.iter_mut().for_each(|v| *v *= w);
    }
    let loss = losses.iter().zip(&weights).map(|(l, w)| l * w).sum();
    DeepOutput {
        loss,
        losses,
        weights,
        grads,
    }
}
