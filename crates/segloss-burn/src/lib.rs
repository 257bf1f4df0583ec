//! # segloss-burn
//!
//! segloss's soft-label-correct Dice / Jaccard / Tversky (and Generalized Dice, and their
//! compound CE / focal terms) as burn 0.22 losses with autodiff: `forward(logits,
//! targets)` returns the loss as a one-element burn tensor whose backward is segloss's
//! analytic gradient.
//!
//! **How the gradient reaches burn's autodiff.** segloss computes the loss L and its
//! gradient g = dL/dlogits in one call. The returned tensor is
//! `L + Σ(g ⊙ logits) − detach(Σ(g ⊙ logits))`: its value is L exactly (a − a = 0 in
//! floating point), and its derivative with respect to `logits` is g exactly, whatever
//! the backend. Every burn backend works this way (the **host path**: the logits and
//! targets are copied out, segloss runs on its own context — the GPU when there is one —
//! and the gradient is copied back as a tensor). Running on burn's own wgpu buffers
//! without a copy (zero-copy) is not built yet.
//!
//! ```no_run
//! use burn::tensor::{Device, Int, Tensor};
//! use segloss_burn::{SegLossConfig, Targets};
//! let device = Device::default().autodiff();
//! let logits = Tensor::<4>::zeros([2, 3, 8, 8], &device).require_grad();
//! let labels = Tensor::<3, Int>::zeros([2, 8, 8], &device);
//! let loss = SegLossConfig::new(segloss::LossOptions::jaccard()).init().unwrap();
//! let l = loss.forward(logits.clone(), Targets::Index(labels)).unwrap();
//! let grads = l.backward();
//! let g = logits.grad(&grads).unwrap(); // segloss's d loss / d logits
//! ```

use burn::tensor::{Int, Tensor, TensorData};
use segloss::{Batch, Context, Loss, LossOptions, Shape, Target};

/// What a loss is computed against.
#[derive(Clone, Debug)]
pub enum Targets<const D: usize, const DI: usize> {
    /// Soft (or one-hot) labels `[B, C, S...]`, values in [0, 1].
    Soft(Tensor<D>),
    /// Class indices `[B, S...]` (the options' `ignore_index` applies).
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

    /// The loss, computing on segloss's own context: the first GPU adapter, else the
    /// f64 CPU reference.
    pub fn init(&self) -> segloss::Result<SegLoss> {
        self.init_on(&Context::new_or_cpu())
    }

    /// The loss on a given segloss context.
    pub fn init_on(&self, ctx: &Context) -> segloss::Result<SegLoss> {
        Ok(SegLoss {
            loss: Loss::new(ctx, self.options.clone())?,
        })
    }
}

/// A segloss loss for burn tensors.
#[derive(Clone, Debug)]
pub struct SegLoss {
    loss: Loss,
}

impl SegLoss {
    /// The loss of `logits` `[B, C, S...]` against `targets`, with an optional keep-mask
    /// `[B, S...]`, as a one-element tensor on the logits' device. Differentiable with
    /// respect to `logits` when they track gradients (segloss's analytic gradient).
    pub fn forward<const D: usize, const DI: usize>(
        &self,
        logits: Tensor<D>,
        targets: Targets<D, DI>,
    ) -> segloss::Result<Tensor<1>> {
        self.forward_masked(logits, targets, None)
    }

    /// [`SegLoss::forward`] with a keep-mask (`false` pixels are ignored).
    pub fn forward_masked<const D: usize, const DI: usize>(
        &self,
        logits: Tensor<D>,
        targets: Targets<D, DI>,
        mask: Option<&[bool]>,
    ) -> segloss::Result<Tensor<1>> {
        let device = logits.device();
        let dims = logits.shape().to_vec();
        let shape = Shape::new(&dims)?;
        let x = host_f32(&logits)?;
        let out = match targets {
            Targets::Soft(t) => {
                let y = host_f32(&t)?;
                let batch = Batch {
                    shape: &shape,
                    input: &x,
                    target: Target::Soft(&y),
                    mask,
                };
                self.loss.forward_backward(&batch)?
            }
            Targets::Index(t) => {
                let data = t.to_data_as::<i64>();
                let y = data.as_slice::<i64>().map_err(data_error)?;
                let batch = Batch {
                    shape: &shape,
                    input: &x,
                    target: Target::IndexI64(y),
                    mask,
                };
                self.loss.forward_backward(&batch)?
            }
        };
        let grad = out.grad.unwrap_or_default();
        let g = Tensor::<D>::from_data(TensorData::new(grad, dims), &device);
        let value = Tensor::<1>::from_data(TensorData::new(vec![out.loss], [1]), &device);
        // Σ(g ⊙ x) − detach(Σ(g ⊙ x)) is 0 in value and has the gradient g.
        let linear = logits.mul(g).sum();
        Ok(value + linear.clone() - linear.detach())
    }

    /// The segloss loss behind it.
    pub fn loss(&self) -> &Loss {
        &self.loss
    }
}

fn data_error(e: impl std::fmt::Debug) -> segloss::Error {
    segloss::Error::InvalidBuffer {
        name: "tensor",
        reason: format!("cannot read the tensor's data: {e:?}"),
    }
}

/// A float tensor's values in f32 on the host.
fn host_f32<const D: usize>(t: &Tensor<D>) -> segloss::Result<Vec<f32>> {
    let data = t.to_data_as::<f32>();
    Ok(data.as_slice::<f32>().map_err(data_error)?.to_vec())
}
