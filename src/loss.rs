//! The public loss object: host API (slices in, results out; blocking and async) and
//! GPU-resident API (caller buffers in, results left on the GPU).

use std::future::Future;

use crate::call::words;
use crate::context::{Gpu, Inner};
use crate::gpu::{encode, Encoded, GpuBatch, GpuLoss, GpuStats, GpuTarget, Phase};
use crate::pool::Pooled;
use crate::readback::Pending;
use crate::reference::{self, RefBatch, RefTarget};
use crate::shape::Target;
use crate::stats::{Held, Stats};
use crate::stream;
use crate::transfer::{grad_buffer, read_back, whole, write};
use crate::{Batch, Context, Error, LossOptions, Result, Shape};

/// What a host call returns.
#[derive(Clone, Debug, PartialEq)]
pub struct LossOutput {
    /// The scalar loss (for `Reduction::None`, the sum of `values`).
    pub loss: f32,
    /// Per-item values for `Reduction::None`: `[C']` (dataset level) or `[B, C']`.
    pub values: Option<Vec<f32>>,
    /// d(loss)/d(input) `[B, C, S...]`, when asked for.
    pub grad: Option<Vec<f32>>,
}

/// A validated loss bound to a context. `Send + Sync`; share it across threads.
///
/// ```
/// use segloss::{Batch, Context, Loss, LossOptions, Shape};
/// let ctx = Context::new_or_cpu();
/// let loss = Loss::new(&ctx, LossOptions::dice()).unwrap();
/// let shape = Shape::new(&[1, 2, 4]).unwrap();
/// let logits = [2.0, -1.0, 0.5, 0.0, -2.0, 1.0, 0.5, 0.0];
/// let target = [1.0, 0.0, 0.5, 0.5, 0.0, 1.0, 0.5, 0.5];
/// let out = loss.forward_backward(&Batch::soft(&shape, &logits, &target)).unwrap();
/// assert!(out.loss > 0.0);
/// assert_eq!(out.grad.unwrap().len(), 8);
/// ```
#[derive(Clone, Debug)]
pub struct Loss {
    ctx: Context,
    options: LossOptions,
}

impl Loss {
    /// Validates `options` and binds them to `ctx`.
    pub fn new(ctx: &Context, options: LossOptions) -> Result<Self> {
        options.validate()?;
        Ok(Loss {
            ctx: ctx.clone(),
            options,
        })
    }

    /// The options of this loss.
    pub fn options(&self) -> &LossOptions {
        &self.options
    }

    /// The context this loss runs on.
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// The loss (and per-item values) of one batch, without the gradient.
    pub fn forward(&self, batch: &Batch<'_>) -> Result<LossOutput> {
        self.evaluate(batch, false)
    }

    /// The loss and d(loss)/d(input).
    pub fn forward_backward(&self, batch: &Batch<'_>) -> Result<LossOutput> {
        self.evaluate(batch, true)
    }

    /// Blocking host call: uploads, computes in one submission, reads back.
    pub fn evaluate(&self, batch: &Batch<'_>, with_grad: bool) -> Result<LossOutput> {
        let mut owned = None;
        let batch = &self.prepared(batch, &mut owned)?;
        if let Inner::Cpu = &*self.ctx.inner {
            return self.evaluate_cpu(batch, with_grad);
        }
        if !with_grad {
            return self.evaluate_into(batch, None);
        }
        // Zeroed pages come from the allocator untouched: filled once, by the readback.
        let mut grad = vec![0.0f32; batch.shape.len()];
        let out = self.evaluate_into(batch, Some(&mut grad))?;
        Ok(LossOutput {
            grad: Some(grad),
            ..out
        })
    }

    /// The loss, with d(loss)/d(input) written into `grad` (`[B, C, S...]`, the input's
    /// length) rather than into a new vector: for training loops that keep one gradient
    /// buffer, or write straight into a framework's tensor. The returned
    /// [`LossOutput::grad`] is `None`. On error `grad` may be partly written.
    ///
    /// ```
    /// use segloss::{Batch, Context, Loss, LossOptions, Shape};
    /// let ctx = Context::new_or_cpu();
    /// let loss = Loss::new(&ctx, LossOptions::dice()).unwrap();
    /// let shape = Shape::new(&[1, 2, 2]).unwrap();
    /// let mut grad = vec![0.0; 4];
    /// for step in 0..3 {
    ///     let x = [0.5, -0.5 * step as f32, 0.25, 1.0];
    ///     let out = loss
    ///         .forward_backward_into(&Batch::soft(&shape, &x, &[1.0, 0.0, 0.0, 1.0]), &mut grad)
    ///         .unwrap();
    ///     assert!(out.loss > 0.0 && out.grad.is_none());
    /// }
    /// ```
    pub fn forward_backward_into(&self, batch: &Batch<'_>, grad: &mut [f32]) -> Result<LossOutput> {
        let mut owned = None;
        let batch = &self.prepared(batch, &mut owned)?;
        crate::shape::check_len("grad", grad.len(), batch.shape.len())?;
        if let Inner::Cpu = &*self.ctx.inner {
            let out = self.evaluate_cpu(batch, true)?;
            if let Some(g) = &out.grad {
                grad.copy_from_slice(g);
            }
            return Ok(LossOutput { grad: None, ..out });
        }
        self.evaluate_into(batch, Some(grad))
    }

    /// A blocking GPU host call whose gradient, when wanted, lands in `grad` (of the
    /// input's length); the output's `grad` is `None`.
    fn evaluate_into(&self, batch: &Batch<'_>, grad: Option<&mut [f32]>) -> Result<LossOutput> {
        let mut grad = grad;
        let out = self.compute_into(batch, grad.as_deref_mut())?;
        if grad.is_some_and(|g| !all_finite(g)) {
            return Err(overflow());
        }
        Ok(out)
    }

    fn compute_into(&self, batch: &Batch<'_>, grad: Option<&mut [f32]>) -> Result<LossOutput> {
        let gpu = self.ctx.gpu()?;
        if stream::needed(gpu, batch) {
            return self.evaluate_streamed(gpu, batch, grad);
        }
        let (pending, values_len) = self.submit(gpu, batch, grad.is_some())?;
        let mut out = Vec::new();
        let mut grad = grad;
        pending.wait_each(|i, mapped| match (i, grad.as_deref_mut()) {
            (0, _) => out = mapped.to_vec(),
            (_, Some(g)) => g.copy_from_slice(&mapped[..g.len()]),
            _ => {}
        })?;
        parse(vec![out], values_len, batch.shape.classes())
    }

    /// Split-phase API, local phase: the statistics of this worker's batch (its shard
    /// of a global batch), for [`Loss::finish`] after the caller has summed
    /// [`Stats::shared`] over all workers. The batch is kept (on the GPU, uploaded) for
    /// the gradient; the borrowed slices are free when this returns. Being kept whole,
    /// a shard's arrays must each fit one device buffer (`max_buffer_size`, else
    /// [`Error::TooLarge`]); the one-call host API has no such limit.
    ///
    /// ```
    /// use segloss::{Batch, Context, Loss, LossOptions, Shape};
    /// let ctx = Context::new_or_cpu();
    /// let loss = Loss::new(&ctx, LossOptions::dice()).unwrap();
    /// let shape = Shape::new(&[1, 2, 2]).unwrap();
    /// let (x1, y1) = ([1.0, 0.0, -1.0, 0.5], [1.0, 0.0, 0.0, 1.0]);
    /// let (x2, y2) = ([0.2, 0.3, 0.1, -0.5], [0.5, 1.0, 0.5, 0.0]);
    /// // Two workers, each with one image of a batch of two.
    /// let mut a = loss.stats(&Batch::soft(&shape, &x1, &y1)).unwrap();
    /// let mut b = loss.stats(&Batch::soft(&shape, &x2, &y2)).unwrap();
    /// let sum: Vec<f32> = a.shared().iter().zip(b.shared()).map(|(u, v)| u + v).collect();
    /// a.shared_mut().copy_from_slice(&sum);
    /// b.shared_mut().copy_from_slice(&sum);
    /// let (la, lb) = (loss.finish(&a, true).unwrap(), loss.finish(&b, true).unwrap());
    /// assert_eq!(la.loss, lb.loss); // the loss of the whole batch, on both workers
    /// ```
    pub fn stats(&self, batch: &Batch<'_>) -> Result<Stats> {
        let mut owned = None;
        let batch = &self.prepared(batch, &mut owned)?;
        match &*self.ctx.inner {
            Inner::Cpu => {
                batch.check_lengths()?;
                self.options.validate_for(batch.shape.classes())?;
                let host = HostBatch::new(batch);
                let rb = host.as_ref();
                let px = reference::Pixels::new(&self.options, &rb)?;
                let items = reference::stats(&self.options, &rb, &px);
                let shared = reference::summarize(&self.options, batch.shape, &items);
                Ok(Stats {
                    shared: shared.iter().map(|&v| v as f32).collect(),
                    items: items
                        .iter()
                        .take(batch.shape.batch() * batch.shape.classes())
                        .map(|r| r.map(|v| v as f32))
                        .collect(),
                    shape: batch.shape.clone(),
                    options: self.options.clone(),
                    held: Held::Cpu { batch: host, items },
                })
            }
            Inner::Gpu(gpu) => {
                let up = self.upload_batch(gpu, batch)?;
                let (pending, st) = scoped(gpu, || {
                    let (encoder, enc) =
                        self.record_uploaded(gpu, &up, None, Phase::Stats, "segloss.stats")?;
                    let bufs = vec![whole(&enc.out), whole(&enc.items), whole(&enc.shared)];
                    let pending = read_back(gpu, encoder, bufs);
                    Ok((
                        pending,
                        enc.into_stats(&up.shape, &self.options, &gpu.device),
                    ))
                })?;
                let mut bufs = pending.wait()?;
                let (shared, items) = (bufs.pop().unwrap_or_default(), bufs.pop());
                parse(bufs, 0, batch.shape.classes())?;
                Ok(Stats {
                    shared,
                    items: items
                        .unwrap_or_default()
                        .chunks_exact(4)
                        .take(batch.shape.batch() * batch.shape.classes())
                        .map(|r| [r[0], r[1], r[2], r[3]])
                        .collect(),
                    shape: batch.shape.clone(),
                    options: self.options.clone(),
                    held: Held::Gpu(Box::new((up, st))),
                })
            }
        }
    }

    /// Split-phase API, global phase: the loss from `stats` whose shared block holds
    /// the sum over all workers (or this worker's own, for one worker), and, when
    /// `with_grad`, the gradient of this worker's batch. Equal to [`Loss::evaluate`] of
    /// the whole global batch (its gradient restricted to this shard), within f32
    /// rounding; bit-identical to it for one worker.
    pub fn finish(&self, stats: &Stats, with_grad: bool) -> Result<LossOutput> {
        stats.check(&self.options)?;
        let classes = stats.shape.classes();
        match (&*self.ctx.inner, &stats.held) {
            (Inner::Cpu, Held::Cpu { batch, items }) => {
                let rb = batch.as_ref();
                let shared: Vec<f64> = stats.shared.iter().map(|&v| f64::from(v)).collect();
                let fin = reference::finish(&self.options, &stats.shape, items, &shared);
                let px = reference::Pixels::new(&self.options, &rb)?;
                let grad = with_grad
                    .then(|| reference::grad(&self.options, &rb, &px, &fin.coef, fin.pixel_scale));
                finite(LossOutput {
                    loss: fin.loss as f32,
                    values: fin.values.map(narrow),
                    grad: grad.map(narrow),
                })
            }
            (Inner::Gpu(gpu), Held::Gpu(held)) => {
                let (batch, st) = &**held;
                gpu.check_alive()?;
                let (pending, values_len) = scoped(gpu, || {
                    let grad = with_grad.then(|| grad_buffer(gpu, stats.shape.len()));
                    // Recording checks the statistics (device, shape, options) first;
                    // the summed block is written before the submission runs.
                    let (encoder, enc) = self.record_uploaded(
                        gpu,
                        batch,
                        grad.as_deref(),
                        Phase::Finish(st),
                        "segloss.finish",
                    )?;
                    gpu.queue
                        .write_buffer(&st.shared, 0, bytemuck::cast_slice(&stats.shared));
                    let bytes = words(stats.shape.len());
                    let bufs = std::iter::once(whole(&enc.out))
                        .chain(grad.map(|g| (g, bytes)))
                        .collect();
                    Ok((read_back(gpu, encoder, bufs), enc.values_len))
                })?;
                parse(pending.wait()?, values_len, classes)
            }
            _ => Err(Error::InvalidStats(
                "statistics from a context of another kind (CPU vs GPU)".into(),
            )),
        }
    }

    /// Split-phase GPU-resident API, local phase: records the statistics of `batch`
    /// into `encoder`. After the submission, sum [`GpuStats::shared_buffer`] over the
    /// workers ([`Loss::read_shared`], your all-reduce, [`Loss::write_shared`], or your
    /// own device-side copies), and call [`Loss::encode_finish`] with the same batch
    /// buffers.
    pub fn encode_stats(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        batch: &GpuBatch<'_>,
    ) -> Result<GpuStats> {
        let enc = self.record(encoder, batch, None, Phase::Stats)?;
        Ok(enc.into_stats(batch.shape, &self.options, &self.ctx.gpu()?.device))
    }

    /// Split-phase GPU-resident API: reads the shared block of a submitted local phase
    /// back to the host (blocking) for an all-reduce, and turns invalid data (its status)
    /// into an error.
    pub fn read_shared(&self, stats: &GpuStats) -> Result<Vec<f32>> {
        let gpu = self.ctx.gpu()?;
        let pending = scoped(gpu, || {
            Ok(read_back(
                gpu,
                gpu.encoder("segloss.read_shared"),
                vec![whole(&stats.out), whole(&stats.shared)],
            ))
        })?;
        let mut bufs = pending.wait()?;
        let shared = bufs.pop().unwrap_or_default();
        parse(bufs, 0, stats.shape.classes())?;
        Ok(shared)
    }

    /// Split-phase GPU-resident API: writes the summed shared block back (through the
    /// queue, so it lands before the next submission).
    pub fn write_shared(&self, stats: &GpuStats, shared: &[f32]) -> Result<()> {
        let gpu = self.ctx.gpu()?;
        let want = Stats::shared_len(stats.shape.classes());
        if shared.len() != want {
            return Err(Error::InvalidStats(format!(
                "a shared block of {} words, {want} expected",
                shared.len()
            )));
        }
        stats.check_device(&gpu.device)?;
        scoped(gpu, || {
            gpu.queue
                .write_buffer(&stats.shared, 0, bytemuck::cast_slice(shared));
            Ok(())
        })
    }

    /// Split-phase GPU-resident API, global phase: records the loss (from the summed
    /// shared block in `stats`) and, when `grad` is given, this worker's gradient.
    pub fn encode_finish(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        batch: &GpuBatch<'_>,
        stats: &GpuStats,
        grad: Option<&wgpu::Buffer>,
    ) -> Result<GpuLoss> {
        let enc = self.record(encoder, batch, grad, Phase::Finish(stats))?;
        Ok(enc.into_loss(batch.shape.classes()))
    }

    /// Async host call. The data is uploaded and the work submitted before this returns,
    /// so the borrowed slices are free at once and several calls can be in flight; the
    /// future resolves when the GPU is done (a helper thread waits on the device, so no
    /// executor thread blocks).
    pub fn evaluate_async(
        &self,
        batch: &Batch<'_>,
        with_grad: bool,
    ) -> impl Future<Output = Result<LossOutput>> + Send + 'static {
        let classes = batch.shape.classes();
        let mut owned = None;
        let prepared = self.prepared(batch, &mut owned);
        let submitted = match (&*self.ctx.inner, prepared) {
            (_, Err(e)) => Err(Err(e)),
            (inner, Ok(batch)) => match inner {
                Inner::Gpu(gpu) if !stream::needed(gpu, &batch) => {
                    Ok(self.submit(gpu, &batch, with_grad))
                }
                // The CPU reference, and streamed batches (their passes need the slices),
                // compute before returning.
                _ => Err(self.evaluate(&batch, with_grad)),
            },
        };
        async move {
            match submitted {
                Err(cpu) => cpu,
                Ok(Err(e)) => Err(e),
                Ok(Ok((pending, values_len))) => {
                    parse(pending.wait_async().await?, values_len, classes)
                }
            }
        }
    }

    /// GPU-resident API: records the whole call into the caller's `encoder` (nothing is
    /// submitted or read back). The gradient, when `grad` is given (f32 `[B, C, S...]`,
    /// usage `STORAGE`), is written there; the loss stays in the returned [`GpuLoss`].
    ///
    /// Data errors (non-finite input, soft targets outside [0, 1], class indices out of
    /// range) cannot be seen before the GPU runs: they set the status word of the result
    /// (and make the loss NaN and the gradient 0), and [`Loss::read`] reports them.
    ///
    /// ```
    /// use segloss::{Context, GpuBatch, GpuTarget, Loss, LossOptions, Shape};
    /// let ctx = Context::new_or_cpu();
    /// # // The GPU-resident API needs a GPU context; the CPU fallback has no buffers.
    /// if let (Some(dev), Some(queue)) = (ctx.device(), ctx.queue()) {
    ///     let shape = Shape::new(&[1, 2, 8]).unwrap();
    ///     let storage = |data: &[f32]| {
    ///         let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST;
    ///         let b = dev.create_buffer(&wgpu::BufferDescriptor {
    ///             label: None, size: 4 * data.len() as u64, usage, mapped_at_creation: false,
    ///         });
    ///         queue.write_buffer(&b, 0, bytemuck::cast_slice(data));
    ///         b
    ///     };
    ///     let logits = storage(&[0.5; 16]);
    ///     let target = storage(&[1.0, 0.0, 0.5, 0.5, 1.0, 0.0, 0.25, 0.75, 0.0, 1.0, 0.5, 0.5, 0.0, 1.0, 0.75, 0.25]);
    ///     let grad = storage(&[0.0; 16]);
    ///     let loss = Loss::new(&ctx, LossOptions::dice()).unwrap();
    ///     let batch = GpuBatch { shape: &shape, input: &logits, target: GpuTarget::Soft(&target), mask: None };
    ///     let mut encoder = dev.create_command_encoder(&Default::default());
    ///     let result = loss.encode(&mut encoder, &batch, Some(&grad)).unwrap();
    ///     queue.submit([encoder.finish()]);
    ///     // `grad` now holds d loss / d logits; read the loss only when it is wanted.
    ///     let out = loss.read(&result).unwrap();
    ///     assert!(out.loss > 0.0 && out.loss < 1.0);
    /// }
    /// ```
    pub fn encode(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        batch: &GpuBatch<'_>,
        grad: Option<&wgpu::Buffer>,
    ) -> Result<GpuLoss> {
        let enc = self.record(encoder, batch, grad, Phase::Whole)?;
        Ok(enc.into_loss(batch.shape.classes()))
    }

    /// The batch a host call computes: every length and option checked before anything
    /// is allocated (a valid huge shape with short slices is an error, not an
    /// allocation of the shape's size), and `ignore_index`'s soft-target rule folded into
    /// the keep-mask (held by `owned`).
    fn prepared<'a>(
        &self,
        batch: &Batch<'a>,
        owned: &'a mut Option<Vec<bool>>,
    ) -> Result<Batch<'a>> {
        batch.check_lengths()?;
        self.options.validate_for(batch.shape.classes())?;
        *owned = batch.soft_ignore_mask(self.options.ignore_index)?;
        let owned: &'a Option<Vec<bool>> = owned;
        Ok(match owned {
            Some(m) => Batch {
                mask: Some(m.as_slice()),
                ..*batch
            },
            None => *batch,
        })
    }

    /// Records `phase` of a GPU-resident call on caller buffers.
    fn record(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        batch: &GpuBatch<'_>,
        grad: Option<&wgpu::Buffer>,
        phase: Phase<'_>,
    ) -> Result<Encoded> {
        let gpu = self.ctx.gpu()?;
        gpu.check_alive()?;
        if let (GpuTarget::Soft(_), Some(_)) = (batch.target, self.options.ignore_index) {
            return Err(Error::option(
                "ignore_index",
                "with soft targets it applies on the host API only (the rule reads every \
                 channel of a pixel): pass a keep-mask to the GPU-resident API instead",
            ));
        }
        let ignore = self.gpu_ignore();
        encode(gpu, &self.options, batch, ignore, grad, encoder, phase)
    }

    /// The ignore value as the kernels see it in a caller's u32 target buffer.
    fn gpu_ignore(&self) -> Option<u32> {
        self.options
            .ignore_index
            .and_then(|i| u32::try_from(i).ok())
    }

    /// GPU-resident API: [`Loss::encode`] into a fresh encoder and submit it. wgpu
    /// validation and out-of-memory errors (e.g. a buffer of another device, or one the
    /// caller has mapped) are returned, not raised.
    pub fn run(&self, batch: &GpuBatch<'_>, grad: Option<&wgpu::Buffer>) -> Result<GpuLoss> {
        let gpu = self.ctx.gpu()?;
        scoped(gpu, || {
            let mut encoder = gpu.encoder("segloss.run");
            let out = self.encode(&mut encoder, batch, grad)?;
            gpu.queue.submit([encoder.finish()]);
            Ok(out)
        })
    }

    /// Reads a [`GpuLoss`] back to the host (blocking), turning its status into an error.
    pub fn read(&self, result: &GpuLoss) -> Result<LossOutput> {
        let gpu = self.ctx.gpu()?;
        let pending = scoped(gpu, || {
            Ok(read_back(
                gpu,
                gpu.encoder("segloss.read"),
                vec![whole(&result.buffer)],
            ))
        })?;
        parse(pending.wait()?, result.values_len, result.classes)
    }

    fn evaluate_cpu(&self, batch: &Batch<'_>, with_grad: bool) -> Result<LossOutput> {
        batch.check_lengths()?;
        let host = HostBatch::new(batch);
        let out = reference::evaluate(&self.options, &host.as_ref(), with_grad)?;
        finite(LossOutput {
            loss: out.loss as f32,
            values: out.values.map(narrow),
            grad: out.grad.map(narrow),
        })
    }

    /// A host call on a batch over the binding limit, streamed (see [`crate::stream`]).
    fn evaluate_streamed(
        &self,
        gpu: &Gpu,
        batch: &Batch<'_>,
        grad: Option<&mut [f32]>,
    ) -> Result<LossOutput> {
        gpu.check_alive()?;
        batch.check_lengths()?;
        let shape = batch.shape;
        self.options.validate_for(shape.classes())?;
        let out = scoped(gpu, || {
            stream::evaluate(gpu, &self.options, batch, self.gpu_ignore(), grad)
        })?;
        let values_len = match self.options.reduction {
            crate::Reduction::None => self.options.values_len(shape.batch(), shape.classes()),
            _ => 0,
        };
        parse(vec![out], values_len, shape.classes())
    }

    /// Uploads a host batch, records the whole call and the copies to staging, submits.
    fn submit(&self, gpu: &Gpu, batch: &Batch<'_>, with_grad: bool) -> Result<(Pending, usize)> {
        let up = self.upload_batch(gpu, batch)?;
        scoped(gpu, || {
            let len = batch.shape.len();
            let grad = with_grad.then(|| grad_buffer(gpu, len));
            let (encoder, enc) =
                self.record_uploaded(gpu, &up, grad.as_deref(), Phase::Whole, "segloss.evaluate")?;
            let bufs = std::iter::once(whole(&enc.out))
                .chain(grad.map(|g| (g, words(len))))
                .collect();
            Ok((read_back(gpu, encoder, bufs), enc.values_len))
        })
    }

    /// Records `phase` of a host call on its uploaded batch into a fresh encoder.
    fn record_uploaded(
        &self,
        gpu: &Gpu,
        up: &Uploaded,
        grad: Option<&wgpu::Buffer>,
        phase: Phase<'_>,
        label: &str,
    ) -> Result<(wgpu::CommandEncoder, Encoded)> {
        let mut encoder = gpu.encoder(label);
        let enc = encode(
            gpu,
            &self.options,
            &up.batch(),
            up.ignore,
            grad,
            &mut encoder,
            phase,
        )?;
        Ok((encoder, enc))
    }

    /// Checks a host batch and uploads it (input, target, mask).
    fn upload_batch(&self, gpu: &Gpu, batch: &Batch<'_>) -> Result<Uploaded> {
        gpu.check_alive()?;
        batch.check_lengths()?;
        let shape = batch.shape;
        let opts = &self.options;
        opts.validate_for(shape.classes())?;
        // The largest array (input, soft target, gradient) must fit one buffer.
        let (bytes, max) = (words(shape.len()), gpu.device.limits().max_buffer_size);
        if bytes > max {
            return Err(Error::TooLarge(format!(
                "a {bytes}-byte array exceeds the device's max_buffer_size of {max} bytes \
                 (the split-phase API keeps the batch on the device; the one-call host \
                 API streams batches of any size)"
            )));
        }
        scoped(gpu, || {
            // Pooled buffers (see `transfer`). COPY_SRC: arrays over the binding limit
            // are copied in chunks.
            let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
            let upload = |label: &str, bytes: &[u8]| {
                write(gpu, label, usage, bytes.len() as u64, &[(0, bytes)])
            };
            let input = upload("segloss.input", bytemuck::cast_slice(batch.input))?;
            // Index targets: the ignore value as the kernel will see it. i64 maps are
            // converted here, the ignore value (possibly negative) becoming u32::MAX.
            let (labels, ignore) = match batch.target {
                Target::Soft(t) => (upload("segloss.target", bytemuck::cast_slice(t))?, None),
                Target::Index(t) => (
                    upload("segloss.target", bytemuck::cast_slice(t))?,
                    self.gpu_ignore(),
                ),
                Target::IndexI64(t) => {
                    let mapped = index_from_i64(t, opts.ignore_index, shape.classes(), 0)?;
                    let ignore = opts.ignore_index.map(|_| u32::MAX);
                    (
                        upload("segloss.target", bytemuck::cast_slice(&mapped))?,
                        ignore,
                    )
                }
            };
            let mask = match batch.mask {
                Some(m) => {
                    // Whole words: a write's length is a multiple of 4.
                    let mut bytes: Vec<u8> = m.iter().map(|&k| u8::from(k)).collect();
                    bytes.resize(bytes.len().div_ceil(4) * 4, 0);
                    Some(upload("segloss.mask", &bytes)?)
                }
                None => None,
            };
            Ok(Uploaded {
                shape: shape.clone(),
                input,
                labels,
                index_target: batch.target.is_index(),
                mask,
                ignore,
            })
        })
    }
}

/// A host batch uploaded to the device (kept by [`Stats`] for the gradient).
#[derive(Debug)]
pub(crate) struct Uploaded {
    pub shape: Shape,
    input: Pooled,
    labels: Pooled,
    index_target: bool,
    mask: Option<Pooled>,
    /// The ignore value as the kernel sees it in `labels`.
    pub ignore: Option<u32>,
}

impl Uploaded {
    pub fn batch(&self) -> GpuBatch<'_> {
        GpuBatch {
            shape: &self.shape,
            input: &self.input,
            target: if self.index_target {
                GpuTarget::Index(&self.labels)
            } else {
                GpuTarget::Soft(&self.labels)
            },
            mask: self.mask.as_deref(),
        }
    }
}

/// A host batch widened to f64 / i64 for the CPU reference (kept by [`Stats`] for the
/// gradient).
#[derive(Debug)]
pub(crate) struct HostBatch {
    shape: Shape,
    input: Vec<f64>,
    soft: Vec<f64>,
    index: Vec<i64>,
    index_target: bool,
    mask: Option<Vec<bool>>,
}

impl HostBatch {
    fn new(batch: &Batch<'_>) -> Self {
        let (soft, index) = match batch.target {
            Target::Soft(t) => (t.iter().map(|&v| f64::from(v)).collect(), Vec::new()),
            Target::Index(t) => (Vec::new(), t.iter().map(|&v| i64::from(v)).collect()),
            Target::IndexI64(t) => (Vec::new(), t.to_vec()),
        };
        HostBatch {
            shape: batch.shape.clone(),
            input: batch.input.iter().map(|&v| f64::from(v)).collect(),
            soft,
            index,
            index_target: batch.target.is_index(),
            mask: batch.mask.map(<[bool]>::to_vec),
        }
    }

    fn as_ref(&self) -> RefBatch<'_> {
        RefBatch {
            shape: &self.shape,
            input: &self.input,
            target: if self.index_target {
                RefTarget::Index(&self.index)
            } else {
                RefTarget::Soft(&self.soft)
            },
            mask: self.mask.as_deref(),
        }
    }
}

/// A CPU result whose f32 rounding overflowed is an error, as on the GPU: no `Ok` carries
/// a NaN or ±Inf that the (finite, checked) input did not.
fn finite(out: LossOutput) -> Result<LossOutput> {
    let bad = |v: &Option<Vec<f32>>| v.iter().flatten().any(|x| !x.is_finite());
    if !out.loss.is_finite() || bad(&out.values) || bad(&out.grad) {
        return Err(overflow());
    }
    Ok(out)
}

/// f64 reference results rounded to f32.
fn narrow(v: Vec<f64>) -> Vec<f32> {
    v.into_iter().map(|x| x as f32).collect()
}

/// Runs `f` inside validation and out-of-memory error scopes, returning the first wgpu
/// error as a segloss error instead of letting wgpu's default handler panic.
fn scoped<T>(gpu: &Gpu, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let oom = gpu.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let validation = gpu.device.push_error_scope(wgpu::ErrorFilter::Validation);
    let r = f();
    let v = pollster::block_on(validation.pop());
    let o = pollster::block_on(oom.pop());
    // Out of memory first: the buffers it left invalid then fail validation too. The
    // pool's free buffers go back to the driver, so that a retry has the room.
    if o.is_some() {
        gpu.pool.clear();
    }
    if let Some(e) = o.or(v) {
        return Err(Error::from_wgpu(e));
    }
    gpu.check_alive()?;
    r
}

/// i64 class map → u32, ignore value → u32::MAX; values outside 0..C are errors (their
/// position counted from `base`: `t` may be a slice of the whole map).
pub(crate) fn index_from_i64(
    t: &[i64],
    ignore: Option<i64>,
    classes: usize,
    base: usize,
) -> Result<Vec<u32>> {
    t.iter()
        .enumerate()
        .map(|(j, &v)| {
            if Some(v) == ignore {
                Ok(u32::MAX)
            } else if v >= 0 && (v as u64) < classes as u64 {
                Ok(v as u32)
            } else {
                Err(Error::ClassIndexOutOfRange {
                    value: Some(v),
                    classes,
                    position: Some(base + j),
                })
            }
        })
        .collect()
}

/// Decodes `[loss, status, values…]` (+ the gradient bytes) into a [`LossOutput`].
/// `bufs` is `[out]` or `[out, grad]` as read back; the gradient is moved, not copied.
fn parse(mut bufs: Vec<Vec<f32>>, values_len: usize, classes: usize) -> Result<LossOutput> {
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
    Ok(LossOutput {
        loss,
        values,
        grad: bufs.pop().filter(|_| with_grad),
    })
}

/// The status word of a result (`[loss, status, …]`) as an error.
pub(crate) fn check_status(out: &[f32], classes: usize) -> Result<()> {
    let status = out[1].to_bits();
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

fn all_finite(v: &[f32]) -> bool {
    v.iter().all(|x| x.is_finite())
}

fn overflow() -> Error {
    Error::NonFiniteResult(
        "an option is too large for f32 arithmetic (weights, α, β, smoothing, γ)".into(),
    )
}

// Compile-time check: losses and contexts are shared across threads.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Loss>();
    send_sync::<Context>();
};
