//! Host calls on arrays larger than one storage binding, streamed through the device a
//! window of whole tiles at a time, so that any batch that fits in host memory works and
//! the device never holds more than a few chunks of it.
//!
//! Pass 1 writes each window's pixels of every row (input, labels, mask) into pooled
//! chunk buffers and runs `tile_sums` on them; `item_sums` and `finalize` follow, and the
//! loss is read back. Pass 2 (gradient) writes each window again, runs `grad` into a
//! chunk buffer and copies it into the window's pixels of every row of the host
//! gradient. Two sets of chunk buffers, taken once per call, alternate, so the host fills
//! one while the device computes on the other. Every tile's partial sum sees the same pixels in the same order
//! as on the direct path (see [`crate::plan`]): the result is bit-identical to it.
//!
//! Memory: on the device, the per-call buffers plus two sets of chunks of at most
//! [`STREAM_CAP`] bytes per array; on the host, the gradient output. The input and
//! target cross the bus twice for loss+grad (once per pass) instead of once.

use crate::context::Gpu;
use crate::error::Result;
use crate::options::LossOptions;
use crate::output::check_status;
use crate::plan::{bytes_of_words as words, mask_stride, Binding, Phase, Plan, Targets};
use crate::pool::Pooled;
use crate::readback::{wait_for, Pending};
use crate::record::{prefix, Bound, Call, Window};
use crate::shape::{index_from_i64, Batch, Target};
use crate::transfer::{fill, grad_buffer, read_back, whole, writable};

/// Whether a host batch must be streamed: its largest array (the input) exceeds one
/// storage binding or one buffer.
pub(crate) fn needed(gpu: &Gpu, batch: &Batch<'_>) -> bool {
    words(batch.shape.len()) > one_array(&gpu.device.limits())
}

/// The most bytes one array can take on the device: one binding, and one buffer (a
/// device's `max_buffer_size` may be below its binding limit).
fn one_array(limits: &wgpu::Limits) -> u64 {
    limits
        .max_storage_buffer_binding_size
        .min(limits.max_buffer_size)
}

/// Largest chunk buffer of a streamed call, per array. Two windows' chunks (input,
/// labels, gradient: 192 MiB) are all the device holds of the batch; smaller chunks
/// would add submissions (one per window and pass) for no gain in speed.
const STREAM_CAP: u64 = 32 << 20;

/// Chunk sets, and so windows in flight on the device.
const IN_FLIGHT: usize = 2;

/// Rows of a chunk: images B, input rows B·C, label rows (B for index targets, B·C for
/// soft ones).
fn chunk_rows(batch: &Batch<'_>) -> (usize, usize, usize) {
    let (b, rows) = (
        batch.shape.batch(),
        batch.shape.batch() * batch.shape.classes(),
    );
    (b, rows, if batch.target.is_index() { b } else { rows })
}

/// One set of chunk buffers, sized for the largest window (`run` pixels): `[B·C, len]`
/// input, `[B·C, len]` soft or `[B, len]` index labels, `[B, mask_stride(len)]` mask
/// bytes.
struct Chunk {
    x: Pooled,
    y: Pooled,
    mask: Option<Pooled>,
    /// The last submission that used the set.
    used: Option<wgpu::SubmissionIndex>,
}

impl Chunk {
    fn new(gpu: &Gpu, batch: &Batch<'_>, run: usize) -> Self {
        let (b, rows, labels) = chunk_rows(batch);
        let storage = wgpu::BufferUsages::STORAGE;
        Chunk {
            x: writable(gpu, "segloss.chunk_input", storage, words(rows * run)),
            y: writable(gpu, "segloss.chunk_target", storage, words(labels * run)),
            mask: batch.mask.map(|_| {
                let bytes = (b * mask_stride(run)) as u64;
                writable(gpu, "segloss.chunk_mask", storage, bytes)
            }),
            used: None,
        }
    }

    /// Back to the pool, idle: the caller has waited for the set's last window.
    fn done(self) {
        self.x.done();
        self.y.done();
        if let Some(m) = self.mask {
            m.done();
        }
    }

    /// Waits until the device is done with the set's last window.
    fn wait(&mut self, gpu: &Gpu) -> Result<()> {
        match self.used.take() {
            Some(idx) => wait_for(&gpu.device, idx),
            None => Ok(()),
        }
    }

    /// Writes window `w` of the batch into the set.
    fn fill(
        &mut self,
        gpu: &Gpu,
        options: &LossOptions,
        batch: &Batch<'_>,
        w: &Window,
    ) -> Result<()> {
        let shape = batch.shape;
        let (b, n, len) = (shape.batch(), shape.pixels(), w.len());
        let rows = b * shape.classes();
        // Row r's window, as bytes at its packed offset.
        fn rows_of<'a, T: bytemuck::Pod>(
            a: &'a [T],
            rows: usize,
            n: usize,
            w: &Window,
        ) -> Vec<(u64, &'a [u8])> {
            (0..rows)
                .map(|r| {
                    let row = &a[r * n + w.n0()..r * n + w.n0() + w.len()];
                    (words(r * w.len()), bytemuck::cast_slice(row))
                })
                .collect()
        }
        fill(gpu, &mut self.x, &rows_of(batch.input, rows, n, w))?;
        match batch.target {
            Target::Soft(t) => fill(gpu, &mut self.y, &rows_of(t, rows, n, w))?,
            Target::Index(t) => fill(gpu, &mut self.y, &rows_of(t, b, n, w))?,
            Target::IndexI64(t) => {
                let mut mapped = Vec::with_capacity(b * len);
                for i in 0..b {
                    let start = i * n + w.n0();
                    let row = &t[start..start + len];
                    let classes = shape.classes();
                    mapped.extend(index_from_i64(row, options.ignore_index, classes, start)?);
                }
                fill(gpu, &mut self.y, &[(0, bytemuck::cast_slice(&mapped))])?;
            }
        }
        if let (Some(m), Some(buf)) = (batch.mask, self.mask.as_mut()) {
            let stride = mask_stride(len);
            let mut bytes = vec![0u8; b * stride];
            for i in 0..b {
                let row = &m[i * n + w.n0()..i * n + w.n0() + len];
                for (d, &k) in bytes[i * stride..i * stride + len].iter_mut().zip(row) {
                    *d = u8::from(k);
                }
            }
            fill(gpu, buf, &[(0, &bytes)])?;
        }
        Ok(())
    }

    /// The set's bindings for window `w`: exactly the bytes the window fills (pooled
    /// buffers may be larger, even larger than a binding may be).
    fn bound<'a>(&'a self, call: &'a Call<'_>, batch: &Batch<'_>, w: &Window) -> Bound<'a> {
        let (b, rows, labels) = chunk_rows(batch);
        Bound {
            x: prefix(&self.x, words(rows * w.len())),
            y: prefix(&self.y, words(labels * w.len())),
            mask: self.mask.as_ref().map_or_else(
                || call.placeholder(),
                |m| prefix(m, (b * mask_stride(w.len())) as u64),
            ),
        }
    }
}

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
    let targets = Targets {
        index: batch.target.is_index(),
        ignore,
        mask: batch.mask.is_some(),
    };
    let limits = gpu.device.limits();
    let cap = one_array(&limits).min(STREAM_CAP);
    let geometry = gpu.kernels.geometry();
    let plan = Plan::new(
        options,
        shape,
        targets,
        Phase::Whole,
        geometry,
        &limits,
        Binding::Packed,
        cap,
    )?;
    let run = plan.widest_window();
    let call = Call::new(gpu, options, plan, None)?;
    let windows = call.windows()?;
    let mut sets: Vec<Chunk> = (0..IN_FLIGHT)
        .map(|_| Chunk::new(gpu, batch, run))
        .collect();

    // Pass 1: statistics.
    for (k, w) in windows.iter().enumerate() {
        let set = &mut sets[k % IN_FLIGHT];
        set.wait(gpu)?;
        set.fill(gpu, options, batch, w)?;
        let mut encoder = gpu.encoder("segloss.stream_stats");
        if k == 0 {
            call.begin(&mut encoder);
        }
        call.tile_sums(&mut encoder, w, &set.bound(&call, batch, w));
        set.used = Some(gpu.queue.submit([encoder.finish()]));
    }
    let mut encoder = gpu.encoder("segloss.stream_finalize");
    call.finalize(&mut encoder, &windows[0]);
    let out = read_back(gpu, encoder, vec![whole(call.out())]).wait()?;
    let out = out.into_iter().next().unwrap_or_default();
    check_status(&out, shape.classes())?;
    let Some(grad) = grad else {
        // The readback waited for every window: the chunks are free at once.
        sets.into_iter().for_each(Chunk::done);
        return Ok(out);
    };

    // Pass 2: the gradient, into one gradient chunk per set. A readback left pending by
    // an error may still map one: they are then dropped, not pooled.
    let rows = shape.batch() * shape.classes();
    let mut grads: Vec<Pooled> = (0..IN_FLIGHT)
        .map(|_| grad_buffer(gpu, rows * run))
        .collect();
    let plan = (&call, windows.as_slice());
    let r = grad_pass(gpu, options, batch, plan, &mut sets, &grads, grad);
    if r.is_err() {
        grads.iter_mut().for_each(Pooled::poison);
        return r.map(|()| out);
    }
    // Every window's readback has been waited for: the chunks are free at once.
    sets.into_iter().for_each(Chunk::done);
    grads.into_iter().for_each(Pooled::done);
    Ok(out)
}

/// Pass 2 of a streamed call: each window's gradient, computed into its set's chunk and
/// copied into the window's pixels of every row of `grad`.
fn grad_pass(
    gpu: &Gpu,
    options: &LossOptions,
    batch: &Batch<'_>,
    (call, windows): (&Call<'_>, &[Window]),
    sets: &mut [Chunk],
    grads: &[Pooled],
    grad: &mut [f32],
) -> Result<()> {
    let shape = batch.shape;
    let (rows, n) = (shape.batch() * shape.classes(), shape.pixels());
    // The window's gradient, `[rows, len]`, straight from the mapping into each row.
    let mut scatter = |w: &Window, pending: Pending| -> Result<()> {
        pending.wait_each(|_, chunk| {
            for (r, src) in chunk.chunks_exact(w.len()).take(rows).enumerate() {
                grad[r * n + w.n0()..r * n + w.n0() + w.len()].copy_from_slice(src);
            }
        })
    };
    let mut reads: Vec<Option<(usize, Pending)>> = (0..sets.len()).map(|_| None).collect();
    for (k, w) in windows.iter().enumerate() {
        let slot = k % sets.len();
        // Waiting for the set's last readback also waits for its last window.
        if let Some((j, pending)) = reads[slot].take() {
            scatter(&windows[j], pending)?;
        }
        let set = &mut sets[slot];
        set.wait(gpu)?;
        set.fill(gpu, options, batch, w)?;
        let g = &grads[slot];
        let bytes = words(rows * w.len());
        let mut encoder = gpu.encoder("segloss.stream_grad");
        call.grad(
            &mut encoder,
            w,
            &set.bound(call, batch, w),
            prefix(g, bytes),
        );
        // The set keeps the buffer; the readback maps (or copies) it.
        let read = (Pooled::owned((**g).clone()), bytes);
        reads[slot] = Some((k, read_back(gpu, encoder, vec![read])));
    }
    let mut last: Vec<(usize, Pending)> = reads.into_iter().flatten().collect();
    last.sort_by_key(|(j, _)| *j);
    for (j, pending) in last {
        scatter(&windows[j], pending)?;
    }
    Ok(())
}
