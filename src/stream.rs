//! Host calls on arrays larger than one storage binding, streamed through the device a
//! window of whole tiles at a time, so that any batch that fits in host memory works and
//! the device never holds more than a few chunks of it.
//!
//! Pass 1 writes each window's pixels of every row (input, labels, mask) into pooled
//! chunk buffers and runs `stats` on them; `stats_reduce` and `finalize` follow, and the
//! loss is read back. Pass 2 (gradient) writes each window again, runs `grad` into a
//! chunk buffer and copies it into the window's pixels of every row of the host
//! gradient. Two sets of chunk buffers alternate, so the host fills one while the device
//! computes on the other. Every tile's partial sum sees the same pixels in the same order
//! as on the direct path (see [`crate::call`]): the result is bit-identical to it.
//!
//! Memory: on the device, the per-call buffers plus two sets of chunks of at most
//! [`STREAM_CAP`] bytes per array; on the host, the gradient output. The input and
//! target cross the bus twice for loss+grad (once per pass) instead of once.

use std::collections::VecDeque;

use crate::call::{mask_stride, words, Binding, Bound, Call, Window};
use crate::context::Gpu;
use crate::gpu::Phase;
use crate::loss::{check_status, index_from_i64};
use crate::pool::Pooled;
use crate::readback::Pending;
use crate::shape::Target;
use crate::transfer::{grad_buffer, read_back, whole, write};
use crate::{Batch, LossOptions, Result};

/// Whether a host batch must be streamed: its largest array (the input) exceeds one
/// storage binding.
pub(crate) fn needed(gpu: &Gpu, batch: &Batch<'_>) -> bool {
    words(batch.shape.len()) > gpu.device.limits().max_storage_buffer_binding_size
}

/// Chunk buffers of one window.
struct Chunk {
    x: Pooled,
    y: Pooled,
    mask: Option<Pooled>,
}

impl Chunk {
    fn bound<'a>(&'a self, call: &'a Call<'_>) -> Bound<'a> {
        Bound {
            x: self.x.as_entire_binding(),
            y: self.y.as_entire_binding(),
            mask: self
                .mask
                .as_ref()
                .map_or_else(|| call.no_mask(), |m| m.as_entire_binding()),
        }
    }
}

/// Largest chunk buffer of a streamed call, per array. Two windows' chunks (input,
/// labels, gradient: 192 MiB) are all the device holds of the batch; smaller chunks
/// would add submissions (one per window and pass) for no gain in speed.
const STREAM_CAP: u64 = 32 << 20;

/// Windows in flight on the device, at most two.
const IN_FLIGHT: usize = 2;

/// A streamed host call: the result words `[loss, status, values…]`, and the gradient
/// written into `grad` (the input's length) when given. `ignore` is the ignore value of
/// u32 index targets as the kernel sees it.
pub(crate) fn evaluate(
    gpu: &Gpu,
    options: &LossOptions,
    batch: &Batch<'_>,
    ignore: Option<u32>,
    grad: Option<&mut [f32]>,
) -> Result<Vec<f32>> {
    let shape = batch.shape;
    // i64 maps are converted chunk by chunk, the ignore value becoming u32::MAX.
    let ignore = match batch.target {
        Target::IndexI64(_) => options.ignore_index.map(|_| u32::MAX),
        _ => ignore,
    };
    let index_target = batch.target.is_index();
    let has_mask = batch.mask.is_some();
    let call = Call::new(
        gpu,
        options,
        shape,
        ignore,
        index_target,
        has_mask,
        &Phase::Whole,
    )?;
    let cap = gpu
        .device
        .limits()
        .max_storage_buffer_binding_size
        .min(STREAM_CAP);
    let run = call.run(Binding::Packed, cap)?;
    let windows = call.windows(run, Binding::Packed)?;
    let fill = |w: &Window| fill(gpu, options, batch, w);

    // Pass 1: statistics.
    let mut flight: VecDeque<(wgpu::SubmissionIndex, Chunk)> = VecDeque::new();
    for w in &windows {
        if flight.len() == IN_FLIGHT {
            // Its buffers go back to the pool done with, so the next fill maps at once.
            let (idx, _) = flight.pop_front().unwrap_or_else(|| unreachable!());
            wait(gpu, idx)?;
        }
        let chunk = fill(w)?;
        let mut encoder = new_encoder(gpu, "segloss.stream_stats");
        call.stats(&mut encoder, w, &chunk.bound(&call));
        flight.push_back((gpu.queue.submit([encoder.finish()]), chunk));
    }
    drop(flight);
    let mut encoder = new_encoder(gpu, "segloss.stream_finalize");
    call.finalize(&mut encoder, &windows[0]);
    let out = read_back(gpu, encoder, vec![whole(call.out())]).wait()?;
    let out = out.into_iter().next().unwrap_or_default();
    check_status(&out, shape.classes())?;
    let Some(grad) = grad else {
        return Ok(out);
    };

    // Pass 2: the gradient, window by window into the host array.
    let (rows, n) = (shape.batch() * shape.classes(), shape.pixels());
    let mut flight: VecDeque<(&Window, Pending, Chunk)> = VecDeque::new();
    // The window's gradient, `[rows, len]`, straight from the mapping into each row.
    let mut scatter = |w: &Window, pending: Pending| -> Result<()> {
        pending.wait_each(|_, chunk| {
            for (r, src) in chunk.chunks_exact(w.len).take(rows).enumerate() {
                grad[r * n + w.n0..r * n + w.n0 + w.len].copy_from_slice(src);
            }
        })
    };
    for w in &windows {
        if flight.len() == IN_FLIGHT {
            let (w0, pending, _) = flight.pop_front().unwrap_or_else(|| unreachable!());
            scatter(w0, pending)?;
        }
        let chunk = fill(w)?;
        let g = grad_buffer(gpu, rows * w.len);
        let mut encoder = new_encoder(gpu, "segloss.stream_grad");
        call.grad(&mut encoder, w, &chunk.bound(&call), g.as_entire_binding());
        let pending = read_back(gpu, encoder, vec![(g, words(rows * w.len))]);
        flight.push_back((w, pending, chunk));
    }
    for (w, pending, _) in flight {
        scatter(w, pending)?;
    }
    Ok(out)
}

fn new_encoder(gpu: &Gpu, label: &str) -> wgpu::CommandEncoder {
    gpu.device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) })
}

/// Blocks until submission `idx` is done.
fn wait(gpu: &Gpu, idx: wgpu::SubmissionIndex) -> Result<()> {
    gpu.device
        .poll(wgpu::PollType::Wait {
            submission_index: Some(idx),
            timeout: None,
        })
        .map(|_| ())
        .map_err(|e| crate::Error::DeviceLost(e.to_string()))
}

/// Writes window `w` of the batch into pooled chunk buffers: `[B·C, len]` input, `[B·C,
/// len]` soft or `[B, len]` index labels, `[B, mask_stride(len)]` mask bytes.
fn fill(gpu: &Gpu, options: &LossOptions, batch: &Batch<'_>, w: &Window) -> Result<Chunk> {
    let shape = batch.shape;
    let (b, n, len) = (shape.batch(), shape.pixels(), w.len);
    let rows = b * shape.classes();
    let storage = wgpu::BufferUsages::STORAGE;
    // Row r's window, as bytes at its packed offset.
    fn rows_of<'a, T: bytemuck::Pod>(
        a: &'a [T],
        rows: usize,
        n: usize,
        w: &Window,
    ) -> Vec<(u64, &'a [u8])> {
        (0..rows)
            .map(|r| {
                let row = &a[r * n + w.n0..r * n + w.n0 + w.len];
                ((r * w.len * 4) as u64, bytemuck::cast_slice(row))
            })
            .collect()
    }
    let x = write(
        gpu,
        "segloss.chunk_input",
        storage,
        words(rows * len),
        &rows_of(batch.input, rows, n, w),
    )?;
    let y = match batch.target {
        Target::Soft(t) => write(
            gpu,
            "segloss.chunk_target",
            storage,
            words(rows * len),
            &rows_of(t, rows, n, w),
        )?,
        Target::Index(t) => write(
            gpu,
            "segloss.chunk_target",
            storage,
            words(b * len),
            &rows_of(t, b, n, w),
        )?,
        Target::IndexI64(t) => {
            let mut mapped = Vec::with_capacity(b * len);
            for i in 0..b {
                let start = i * n + w.n0;
                let row = &t[start..start + len];
                mapped.extend(index_from_i64(
                    row,
                    options.ignore_index,
                    shape.classes(),
                    start,
                )?);
            }
            let bytes: &[u8] = bytemuck::cast_slice(&mapped);
            write(
                gpu,
                "segloss.chunk_target",
                storage,
                words(b * len),
                &[(0, bytes)],
            )?
        }
    };
    let mask = match batch.mask {
        Some(m) => {
            let stride = mask_stride(len);
            let mut bytes = vec![0u8; b * stride];
            for i in 0..b {
                let row = &m[i * n + w.n0..i * n + w.n0 + len];
                for (d, &k) in bytes[i * stride..i * stride + len].iter_mut().zip(row) {
                    *d = u8::from(k);
                }
            }
            Some(write(
                gpu,
                "segloss.chunk_mask",
                storage,
                bytes.len() as u64,
                &[(0, &bytes)],
            )?)
        }
        None => None,
    };
    Ok(Chunk { x, y, mask })
}
