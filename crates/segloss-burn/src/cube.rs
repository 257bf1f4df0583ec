//! [`SegLossOps`] on cubecl's backend: segloss records its kernels on the tensors' own
//! wgpu buffer ranges and submits on the queue it shares with burn.
//!
//! For one op: cubecl hands out each tensor's `wgpu::Buffer` with its offset
//! (`Client::get_resource`, which also runs cubecl's pending work on it and pins the
//! allocation while it is held), cubecl's queued work is flushed, and segloss's
//! commands follow on the same queue. Nothing is read back to the host.

use burn::backend::ops::FloatTensorOps;
use burn::tensor::{DType, FloatDType, Shape as BurnShape, TensorData};
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::CubeBackend;
use cubecl::wgpu::{AutoCompiler, WgpuResource, WgpuServer};
use segloss::{wgpu, GpuBatch, GpuTarget, Shape};

use crate::zero_copy::{GpuCall, SegLossOps};

impl SegLossOps for CubeBackend {
    fn segloss_soft(logits: CubeTensor, target: CubeTensor, call: GpuCall) -> CubeTensor {
        forward(logits, target, false, call)
    }

    fn segloss_index(logits: CubeTensor, target: CubeTensor, call: GpuCall) -> CubeTensor {
        forward(logits, target, true, call)
    }

    fn segloss_soft_grad(
        logits: CubeTensor,
        target: CubeTensor,
        upstream: CubeTensor,
        call: GpuCall,
    ) -> CubeTensor {
        gradient(logits, target, upstream, false, call)
    }

    fn segloss_index_grad(
        logits: CubeTensor,
        target: CubeTensor,
        upstream: CubeTensor,
        call: GpuCall,
    ) -> CubeTensor {
        gradient(logits, target, upstream, true, call)
    }
}

/// A fresh f32 cubecl tensor of `dims` (uninitialised: segloss writes all of it).
fn empty(like: &CubeTensor, dims: BurnShape) -> CubeTensor {
    let handle = like.client.empty(4 * dims.num_elements());
    CubeTensor::new_contiguous(
        like.client.clone(),
        like.device.clone(),
        dims,
        handle,
        DType::F32,
    )
}

/// The loss `[1]`: segloss's statistics pass and its loss, kept on the device; the
/// statistics are kept in the call for the backward op.
fn forward(logits: CubeTensor, target: CubeTensor, index: bool, call: GpuCall) -> CubeTensor {
    let (logits, target) = (contiguous(logits), contiguous(target));
    let loss = empty(&logits, BurnShape::new([1]));
    let mut result = None;
    let done = with_batch(
        &logits,
        &target,
        &[&loss],
        index,
        &call,
        |enc, batch, _, held| {
            let stats = call.loss.encode_stats(enc, batch)?;
            let out = call.loss.encode_finish(enc, batch, &stats, None)?;
            let l = held[0].resource();
            enc.copy_buffer_to_buffer(out.buffer(), 0, &l.buffer, l.offset, 4);
            call.keep_stats(stats);
            result = Some(out);
            Ok(())
        },
    );
    match done {
        Ok(()) => {
            // Submitted: its status word (the soft-label guard's bit among others) can
            // be read back on demand.
            if let Some(r) = result {
                call.keep_result(r);
            }
            loss
        }
        Err(e) => {
            call.fail(e);
            let nan = TensorData::new(vec![f32::NAN], [1]);
            CubeBackend::float_from_data(nan, &logits.device)
        }
    }
}

/// d loss / d logits times the incoming gradient `upstream` (`[1]`, read on the device
/// by the kernels), from the statistics the forward op kept.
fn gradient(
    logits: CubeTensor,
    target: CubeTensor,
    upstream: CubeTensor,
    index: bool,
    call: GpuCall,
) -> CubeTensor {
    let (logits, target) = (contiguous(logits), contiguous(target));
    let dims = logits.meta.shape().clone();
    let grad = empty(&logits, dims.clone());
    let extra = [&grad, &upstream];
    let done = with_batch(
        &logits,
        &target,
        &extra,
        index,
        &call,
        |enc, batch, len, held| {
            if upstream.dtype != DType::F32 {
                return Err(segloss::Error::InvalidBuffer {
                    name: "upstream",
                    reason: format!(
                        "an f32 incoming gradient expected, got {:?}",
                        upstream.dtype
                    ),
                });
            }
            let stats = match call.stats() {
                Some(s) => s,
                // The forward op failed or its statistics were taken: compute them again.
                None => std::sync::Arc::new(call.loss.encode_stats(enc, batch)?),
            };
            let (g, u) = (slice(&held[0], len), slice(&held[1], 4));
            call.loss.encode_finish_scaled(enc, batch, &stats, g, u)?;
            Ok(())
        },
    );
    match done {
        Ok(()) => grad,
        Err(e) => {
            call.fail(e);
            CubeBackend::float_zeros(dims, &logits.device, FloatDType::F32)
        }
    }
}

/// Row-major (`into_contiguous` returns a tensor already in that layout as it is, and
/// untiles a storage-tiled one).
fn contiguous(t: CubeTensor) -> CubeTensor {
    burn_cubecl::kernel::into_contiguous(t)
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

/// Binds `logits` and `target` as a segloss batch, takes the `extra` tensors' buffers
/// too, runs `record` into a fresh encoder and submits it after cubecl's pending work on
/// all of them.
fn with_batch(
    logits: &CubeTensor,
    target: &CubeTensor,
    extra: &[&CubeTensor],
    index: bool,
    call: &GpuCall,
    record: impl FnOnce(
        &mut wgpu::CommandEncoder,
        &GpuBatch<'_>,
        u64,
        &[Resource],
    ) -> segloss::Result<()>,
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
    // Pins the allocations while they are bound, and runs cubecl's pending work on them.
    let (x, y) = (resource(logits)?, resource(target)?);
    let held = extra
        .iter()
        .map(|t| resource(t))
        .collect::<segloss::Result<Vec<_>>>()?;
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
    record(&mut encoder, &batch, len_bytes, &held)?;
    queue.submit([encoder.finish()]);
    Ok(())
}
