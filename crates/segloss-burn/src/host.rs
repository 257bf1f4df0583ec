//! The host path: copy the tensors out, run segloss on its own context, and return the
//! loss as `L + Σ(g ⊙ x) − detach(Σ(g ⊙ x))`, whose value is L and whose gradient is g.

use burn::tensor::{Tensor, TensorData};
use segloss::{Batch, Loss, Shape, Target};

use crate::Targets;

/// The loss tensor, and whether the call saw soft targets with the classic formulation.
pub(crate) fn forward<const D: usize, const DI: usize>(
    loss: &Loss,
    logits: Tensor<D>,
    targets: Targets<D, DI>,
    mask: Option<&[bool]>,
) -> segloss::Result<(Tensor<1>, bool)> {
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
            loss.forward_backward(&batch)?
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
            loss.forward_backward(&batch)?
        }
    };
    let grad = out.grad.unwrap_or_default();
    let g = Tensor::<D>::from_data(TensorData::new(grad, dims), &device);
    let value = Tensor::<1>::from_data(TensorData::new(vec![out.loss], [1]), &device);
    // Σ(g ⊙ x) − detach(Σ(g ⊙ x)) is 0 in value and has the gradient g.
    let linear = logits.mul(g).sum();
    // Parenthesised: L + (a − a) is exactly L; (L + a) − a would round.
    Ok((
        value + (linear.clone() - linear.detach()),
        out.soft_targets_with_classic,
    ))
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
