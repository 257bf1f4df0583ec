//! The zero-copy path: segloss's kernels on burn's own wgpu device, reading burn's
//! buffers in place and writing the gradient into a buffer that becomes a burn tensor.
//!
//! It is a burn backend extension ([`SegLossOps`]): implemented for cubecl's backend
//! ([`CubeBackend`]), lifted to burn's fused backend by the extension macro (the op is
//! queued in the fusion stream like any other), and given its own backward on
//! `Autodiff<B>`: the gradient g computed in the forward pass is the state, and the
//! backward step registers `g · dL_out` for the logits.
//!
//! On the device, for one call: cubecl hands out each tensor's `wgpu::Buffer` with its
//! offset (`Client::get_resource`, which also pins the allocation while it is held),
//! cubecl's pending work is flushed to the queue, and segloss records its kernels on
//! those ranges plus a 4-byte copy of the loss into a fresh cubecl allocation, and
//! submits on the same queue. Nothing is read back to the host.

use std::sync::{Arc, Mutex};

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::Dispatch;
use burn::backend::{backend_extension, Autodiff, AutodiffBackend, Backend};
use burn::tensor::{DType, FloatDType, IntDType, Shape as BurnShape, Tensor, TensorData};
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::CubeBackend;
use cubecl::wgpu::{AutoCompiler, WgpuResource, WgpuServer};
use segloss::wgpu::util::DeviceExt;
use segloss::{wgpu, GpuBatch, GpuTarget, Loss, Shape};

use crate::Targets;

/// What one zero-copy call needs besides its tensors: the loss (on a segloss context
/// that shares burn's wgpu device), the optional keep-mask (uploaded by segloss), and a
/// slot for an error that the deferred op cannot return.
#[derive(Clone, Debug)]
pub struct GpuCall {
    pub(crate) loss: Loss,
    pub(crate) mask: Option<wgpu::Buffer>,
    pub(crate) error: Arc<Mutex<Option<segloss::Error>>>,
}

/// segloss's loss and gradient as a burn backend operation.
#[backend_extension(Cube, Fusion, Autodiff)]
pub trait SegLossOps: Backend {
    /// The loss (`[1]`) and its gradient (the logits' shape) against soft targets.
    #[fusion(meta = |logits, _target, _call| (loss_spec(), logits.clone()))]
    fn segloss_soft(
        logits: FloatTensor<Self>,
        target: FloatTensor<Self>,
        call: GpuCall,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// The loss (`[1]`) and its gradient (the logits' shape) against i32 class indices.
    #[fusion(meta = |logits, _target, _call| (loss_spec(), logits.clone()))]
    fn segloss_index(
        logits: FloatTensor<Self>,
        target: IntTensor<Self>,
        call: GpuCall,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
}

fn loss_spec() -> burn::backend::fusion::custom::TensorSpec {
    burn::backend::fusion::custom::TensorSpec::new(BurnShape::new([1]), DType::F32)
}

impl SegLossOps for CubeBackend {
    fn segloss_soft(
        logits: CubeTensor,
        target: CubeTensor,
        call: GpuCall,
    ) -> (CubeTensor, CubeTensor) {
        run(logits, target, false, call)
    }

    fn segloss_index(
        logits: CubeTensor,
        target: CubeTensor,
        call: GpuCall,
    ) -> (CubeTensor, CubeTensor) {
        run(logits, target, true, call)
    }
}

/// Runs one call on cubecl tensors; on an error (recorded in the call's slot) the loss
/// is NaN and the gradient zero, as for invalid data on the GPU.
fn run(
    logits: CubeTensor,
    target: CubeTensor,
    index: bool,
    call: GpuCall,
) -> (CubeTensor, CubeTensor) {
    let logits = contiguous(logits);
    let target = contiguous(target);
    let (client, device) = (logits.client.clone(), logits.device.clone());
    let dims = logits.meta.shape().clone();
    let len = dims.num_elements();
    let grad = client.empty(4 * len);
    let loss = client.empty(4);
    let grad = CubeTensor::new_contiguous(
        client.clone(),
        device.clone(),
        dims.clone(),
        grad,
        DType::F32,
    );
    let loss = CubeTensor::new_contiguous(
        client,
        device.clone(),
        BurnShape::new([1]),
        loss,
        DType::F32,
    );
    match record(&logits, &target, index, &grad, &loss, &call) {
        Ok(()) => (loss, grad),
        Err(e) => {
            if let Ok(mut slot) = call.error.lock() {
                *slot = Some(e);
            }
            let nan = TensorData::new(vec![f32::NAN], [1]);
            (
                CubeBackend::float_from_data(nan, &device),
                CubeBackend::float_zeros(dims, &device, burn::tensor::FloatDType::F32),
            )
        }
    }
}

fn contiguous(t: CubeTensor) -> CubeTensor {
    if t.is_contiguous() {
        t
    } else {
        burn_cubecl::kernel::into_contiguous(t)
    }
}

type Resource = cubecl_runtime::storage::ManagedResource<WgpuResource>;

fn resource(t: &CubeTensor) -> segloss::Result<Resource> {
    t.client
        .get_resource::<WgpuServer<AutoCompiler>>(t.handle.clone())
        .map_err(|e| segloss::Error::InvalidBuffer {
            name: "tensor",
            reason: format!("not a wgpu tensor segloss can bind: {e:?}"),
        })
}

/// `bytes` bytes of a cubecl tensor's buffer, from its offset.
fn slice(r: &Resource, bytes: u64) -> wgpu::BufferSlice<'_> {
    let r = r.resource();
    r.buffer.slice(r.offset..r.offset + bytes)
}

fn record(
    logits: &CubeTensor,
    target: &CubeTensor,
    index: bool,
    grad: &CubeTensor,
    loss_out: &CubeTensor,
    call: &GpuCall,
) -> segloss::Result<()> {
    let dims: Vec<usize> = logits.meta.shape().iter().copied().collect();
    let shape = Shape::new(&dims)?;
    if logits.dtype != DType::F32 || (!index && target.dtype != DType::F32) {
        return Err(segloss::Error::InvalidBuffer {
            name: "tensor",
            reason: format!(
                "f32 tensors expected, got {:?} and {:?}",
                logits.dtype, target.dtype
            ),
        });
    }
    if index && !matches!(target.dtype, DType::I32 | DType::U32) {
        return Err(segloss::Error::InvalidBuffer {
            name: "target",
            reason: format!("32-bit class indices expected, got {:?}", target.dtype),
        });
    }
    // Pins every allocation while it is bound, and runs cubecl's pending work on them.
    let (x, y, g, l) = (
        resource(logits)?,
        resource(target)?,
        resource(grad)?,
        resource(loss_out)?,
    );
    logits
        .client
        .flush()
        .map_err(|e| segloss::Error::InvalidBuffer {
            name: "tensor",
            reason: format!("cubecl could not flush its pending work: {e:?}"),
        })?;
    let len_bytes = 4 * shape.len() as u64;
    let label_bytes = 4 * if index { shape.map_len() } else { shape.len() } as u64;
    let batch = GpuBatch {
        shape: &shape,
        input: slice(&x, len_bytes),
        target: if index {
            GpuTarget::Index(slice(&y, label_bytes))
        } else {
            GpuTarget::Soft(slice(&y, label_bytes))
        },
        mask: call.mask.as_ref().map(|m| m.slice(..)),
    };
    let ctx = call.loss.context();
    let (Some(dev), Some(queue)) = (ctx.device(), ctx.queue()) else {
        return Err(segloss::Error::NotOnGpu);
    };
    let mut encoder = dev.create_command_encoder(&wgpu::CommandEncoderDescriptor {
        label: Some("segloss-burn"),
    });
    let result = call
        .loss
        .encode(&mut encoder, &batch, Some(slice(&g, len_bytes)))?;
    let lr = l.resource();
    encoder.copy_buffer_to_buffer(result.buffer(), 0, &lr.buffer, lr.offset, 4);
    queue.submit([encoder.finish()]);
    Ok(())
}

/// The backward step: the gradient computed in the forward pass, scaled by the
/// incoming gradient of the (one-element) loss.
#[derive(Debug)]
struct SegLossBackward;

impl<B: Backend> Backward<B, 1> for SegLossBackward {
    type State = FloatTensor<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let upstream = grads.consume::<B>(&ops.node);
        if let Some(node) = node {
            let g = ops.state;
            let rank = burn::backend::TensorMetadata::shape(&g).num_dims();
            let ones: BurnShape = vec![1usize; rank].into();
            let upstream = B::float_reshape(upstream, ones);
            grads.register::<B>(node.id, B::float_mul(g, upstream));
        }
    }
}

/// A loss tensor and the gradient tensor of one call.
type LossAndGrad<B> = (FloatTensor<B>, FloatTensor<B>);

/// Registers the forward pass `(loss, grad)` of the inner backend with autodiff.
fn tracked<B: Backend, C: CheckpointStrategy>(
    logits: &<Autodiff<B, C> as burn::backend::BackendTypes>::FloatTensorPrimitive,
    (loss, grad): (FloatTensor<B>, FloatTensor<B>),
) -> LossAndGrad<Autodiff<B, C>> {
    let loss = match SegLossBackward
        .prepare::<C>([logits.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(grad.clone(), loss),
        OpsKind::UnTracked(prep) => prep.finish(loss),
    };
    (loss, <Autodiff<B, C> as AutodiffBackend>::from_inner(grad))
}

impl<B: Backend + SegLossOps, C: CheckpointStrategy> SegLossOps for Autodiff<B, C> {
    fn segloss_soft(
        logits: FloatTensor<Self>,
        target: FloatTensor<Self>,
        call: GpuCall,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let out = B::segloss_soft(logits.primitive().clone(), target.into_primitive(), call);
        tracked::<B, C>(&logits, out)
    }

    fn segloss_index(
        logits: FloatTensor<Self>,
        target: IntTensor<Self>,
        call: GpuCall,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let out = B::segloss_index(logits.primitive().clone(), target, call);
        tracked::<B, C>(&logits, out)
    }
}

/// A zero-copy call: the loss tensor of the extension op on `logits`' device.
pub(crate) fn forward<const D: usize, const DI: usize>(
    loss: Loss,
    error: &Arc<Mutex<Option<segloss::Error>>>,
    logits: Tensor<D>,
    targets: Targets<D, DI>,
    mask: Option<&[bool]>,
) -> segloss::Result<Tensor<1>> {
    let mask = match mask {
        Some(m) => {
            let Some(dev) = loss.context().device() else {
                return Err(segloss::Error::NotOnGpu);
            };
            let mut bytes: Vec<u8> = m.iter().map(|&k| u8::from(k)).collect();
            bytes.resize(bytes.len().div_ceil(4) * 4, 0);
            Some(dev.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("segloss-burn.mask"),
                contents: &bytes,
                usage: wgpu::BufferUsages::STORAGE,
            }))
        }
        None => None,
    };
    let call = GpuCall {
        loss,
        mask,
        error: error.clone(),
    };
    let logits = if logits.dtype() == DType::F32 {
        logits
    } else {
        logits.cast(FloatDType::F32)
    };
    let (value, _grad) = match targets {
        Targets::Soft(t) => {
            let t = if t.dtype() == DType::F32 {
                t
            } else {
                t.cast(FloatDType::F32)
            };
            <Dispatch as SegLossOps>::segloss_soft(
                logits.into_dispatch(),
                t.detach().into_dispatch(),
                call,
            )
        }
        Targets::Index(t) => {
            let t = if matches!(t.dtype(), DType::I32 | DType::U32) {
                t
            } else {
                t.cast(IntDType::I32)
            };
            <Dispatch as SegLossOps>::segloss_index(logits.into_dispatch(), t.into_dispatch(), call)
        }
    };
    Ok(Tensor::<1>::from_dispatch(value))
}
