//! The zero-copy path: segloss's kernels on burn's own wgpu device, reading burn's
//! buffers in place and writing the gradient into a buffer that becomes a burn tensor.
//!
//! It is a burn backend extension ([`SegLossOps`]): implemented for cubecl's backend
//! (`CubeBackend`, in `cube.rs`), lifted to burn's fused backend by the extension macro
//! (the ops are queued in the fusion stream like any other), and given its own backward
//! on `Autodiff<B>`. The forward op runs segloss's statistics pass and its loss, and
//! keeps the statistics on the device; the backward op runs segloss's gradient pass with
//! the loss's incoming gradient as a device-side factor (`Loss::encode_finish_scaled`),
//! so that the gradient costs no pass beyond segloss's own.

use std::sync::{Arc, Mutex};

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{backend_extension, Autodiff, AutodiffBackend, Backend, Dispatch};
use burn::tensor::{DType, FloatDType, IntDType, Shape as BurnShape, Tensor};
use segloss::wgpu::util::DeviceExt;
use segloss::{wgpu, GpuResult, GpuStats, Loss};

use crate::Targets;

/// What one zero-copy call needs besides its tensors: the loss (on a segloss context
/// that shares burn's wgpu device), the optional keep-mask (uploaded by segloss), the
/// statistics the forward op leaves for the backward op, and slots for an error that
/// a deferred op cannot return and for the result it leaves on the device.
#[derive(Clone, Debug)]
pub struct GpuCall {
    pub(crate) loss: Loss,
    pub(crate) mask: Option<wgpu::Buffer>,
    pub(crate) error: Arc<Mutex<Option<segloss::Error>>>,
    pub(crate) stats: Arc<Mutex<Option<Arc<GpuStats>>>>,
    pub(crate) last: Arc<Mutex<Option<Last>>>,
}

/// The last call of a loss that has run, for `SegLoss::soft_targets_with_classic`.
#[derive(Clone, Debug)]
pub(crate) enum Last {
    /// A zero-copy forward op's result, left on the device (`[loss, status, …]`), with
    /// the loss that reads it back.
    Device(Arc<(Loss, GpuResult)>),
    /// A host-path call's guard flag (already on the host).
    Host(bool),
}

impl GpuCall {
    /// Keeps the forward op's statistics for the backward op.
    pub(crate) fn keep_stats(&self, stats: GpuStats) {
        if let Ok(mut s) = self.stats.lock() {
            *s = Some(Arc::new(stats));
        }
    }

    /// The forward op's statistics, if it ran.
    pub(crate) fn stats(&self) -> Option<Arc<GpuStats>> {
        self.stats.lock().ok().and_then(|s| s.clone())
    }

    /// Records an error of a deferred op (see `SegLoss::take_error`); the call leaves no
    /// result.
    pub(crate) fn fail(&self, e: segloss::Error) {
        if let Ok(mut slot) = self.error.lock() {
            *slot = Some(e);
        }
        if let Ok(mut last) = self.last.lock() {
            *last = None;
        }
    }

    /// Keeps the forward op's result (submitted) for `SegLoss::soft_targets_with_classic`.
    pub(crate) fn keep_result(&self, result: GpuResult) {
        if let Ok(mut last) = self.last.lock() {
            *last = Some(Last::Device(Arc::new((self.loss.clone(), result))));
        }
    }
}

/// segloss's loss and gradient as burn backend operations.
#[backend_extension(Cube, Fusion, Autodiff)]
pub trait SegLossOps: Backend {
    /// The loss (`[1]`) against soft targets.
    #[fusion(meta = |_logits, _target, _call| loss_spec())]
    fn segloss_soft(
        logits: FloatTensor<Self>,
        target: FloatTensor<Self>,
        call: GpuCall,
    ) -> FloatTensor<Self>;

    /// The loss (`[1]`) against 32-bit class indices.
    #[fusion(meta = |_logits, _target, _call| loss_spec())]
    fn segloss_index(
        logits: FloatTensor<Self>,
        target: IntTensor<Self>,
        call: GpuCall,
    ) -> FloatTensor<Self>;

    /// d loss / d logits (soft targets) times `upstream` (`[1]`).
    #[fusion(meta = |logits, _target, _upstream, _call| logits.clone())]
    fn segloss_soft_grad(
        logits: FloatTensor<Self>,
        target: FloatTensor<Self>,
        upstream: FloatTensor<Self>,
        call: GpuCall,
    ) -> FloatTensor<Self>;

    /// d loss / d logits (class indices) times `upstream` (`[1]`).
    #[fusion(meta = |logits, _target, _upstream, _call| logits.clone())]
    fn segloss_index_grad(
        logits: FloatTensor<Self>,
        target: IntTensor<Self>,
        upstream: FloatTensor<Self>,
        call: GpuCall,
    ) -> FloatTensor<Self>;
}

fn loss_spec() -> burn::backend::fusion::custom::TensorSpec {
    burn::backend::fusion::custom::TensorSpec::new(BurnShape::new([1]), DType::F32)
}

/// The backward step against soft targets: segloss's gradient pass, scaled on the
/// device by the loss's incoming gradient.
#[derive(Debug)]
struct SoftBackward;

impl<B: Backend + SegLossOps> Backward<B, 1> for SoftBackward {
    type State = (FloatTensor<B>, FloatTensor<B>, GpuCall);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let upstream = grads.consume::<B>(&ops.node);
        if let Some(node) = node {
            let (x, t, call) = ops.state;
            grads.register::<B>(node.id, B::segloss_soft_grad(x, t, upstream, call));
        }
    }
}

/// The backward step against class indices.
#[derive(Debug)]
struct IndexBackward;

impl<B: Backend + SegLossOps> Backward<B, 1> for IndexBackward {
    type State = (FloatTensor<B>, IntTensor<B>, GpuCall);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let upstream = grads.consume::<B>(&ops.node);
        if let Some(node) = node {
            let (x, t, call) = ops.state;
            grads.register::<B>(node.id, B::segloss_index_grad(x, t, upstream, call));
        }
    }
}

impl<B: Backend + SegLossOps, C: CheckpointStrategy> SegLossOps for Autodiff<B, C> {
    fn segloss_soft(
        logits: FloatTensor<Self>,
        target: FloatTensor<Self>,
        call: GpuCall,
    ) -> FloatTensor<Self> {
        let (x, t) = (logits.primitive().clone(), target.into_primitive());
        match SoftBackward
            .prepare::<C>([logits.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let loss = B::segloss_soft(x.clone(), t.clone(), call.clone());
                prep.finish((x, t, call), loss)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::segloss_soft(x, t, call)),
        }
    }

    fn segloss_index(
        logits: FloatTensor<Self>,
        target: IntTensor<Self>,
        call: GpuCall,
    ) -> FloatTensor<Self> {
        let x = logits.primitive().clone();
        match IndexBackward
            .prepare::<C>([logits.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let loss = B::segloss_index(x.clone(), target.clone(), call.clone());
                prep.finish((x, target, call), loss)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::segloss_index(x, target, call)),
        }
    }

    fn segloss_soft_grad(
        logits: FloatTensor<Self>,
        target: FloatTensor<Self>,
        upstream: FloatTensor<Self>,
        call: GpuCall,
    ) -> FloatTensor<Self> {
        let g = B::segloss_soft_grad(
            logits.into_primitive(),
            target.into_primitive(),
            upstream.into_primitive(),
            call,
        );
        <Self as AutodiffBackend>::from_inner(g)
    }

    fn segloss_index_grad(
        logits: FloatTensor<Self>,
        target: IntTensor<Self>,
        upstream: FloatTensor<Self>,
        call: GpuCall,
    ) -> FloatTensor<Self> {
        let g = B::segloss_index_grad(
            logits.into_primitive(),
            target,
            upstream.into_primitive(),
            call,
        );
        <Self as AutodiffBackend>::from_inner(g)
    }
}

/// Where a zero-copy call leaves its outcome: the error of its op, if any, and the last
/// call that ran (for `SegLoss::soft_targets_with_classic`).
pub(crate) type Outcome<'a> = (
    &'a Arc<Mutex<Option<segloss::Error>>>,
    &'a Arc<Mutex<Option<Last>>>,
);

/// A zero-copy call: the loss tensor of the extension op on `logits`' device.
pub(crate) fn forward<const D: usize, const DI: usize>(
    loss: Loss,
    (error, last): Outcome<'_>,
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
        stats: Arc::new(Mutex::new(None)),
        last: last.clone(),
    };
    let logits = if logits.dtype() == DType::F32 {
        logits
    } else {
        logits.cast(FloatDType::F32)
    };
    let value = match targets {
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
