//! The public loss object: host API (slices in, results out; blocking and async) and
//! GPU-resident API (caller buffers in, results left on the GPU).

use std::future::Future;

use crate::context::{Gpu, Inner};
use crate::gpu::{encode, upload, GpuBatch, GpuLoss};
use crate::readback::Pending;
use crate::reference::{self, RefBatch, RefTarget};
use crate::shape::Target;
use crate::{Batch, Context, Error, LossOptions, Result};

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
        match &*self.ctx.inner {
            Inner::Cpu => self.evaluate_cpu(batch, with_grad),
            Inner::Gpu(gpu) => {
                let (pending, values_len) = self.submit(gpu, batch, with_grad, false)?;
                parse(pending.wait()?, values_len, batch.shape.classes())
            }
        }
    }

    /// The per-(b, c) statistics of one batch, `[B, C]` rows of `[tp, fp, fn, present]`
    /// over all C classes (SPEC §2.4): plain sums over the kept pixels, so statistics of
    /// several shards of a batch can be added. `present` counts pixels whose target
    /// exceeds the present(threshold) rule's threshold (0 under `ActiveClasses::All`).
    pub fn stats(&self, batch: &Batch<'_>) -> Result<Vec<[f32; 4]>> {
        match &*self.ctx.inner {
            Inner::Cpu => {
                batch.check_lengths()?;
                let (input, soft, index) = widen(batch);
                let rb = ref_batch(batch, &input, &soft, &index);
                let px = reference::Pixels::new(&self.options, &rb)?;
                let st = reference::stats(&self.options, &rb, &px);
                Ok(st.iter().map(|r| r.map(|v| v as f32)).collect())
            }
            Inner::Gpu(gpu) => {
                let (pending, values_len) = self.submit(gpu, batch, false, true)?;
                let mut bufs = pending.wait()?;
                let stats = bufs.pop().unwrap_or_default();
                parse(bufs, values_len, batch.shape.classes())?;
                Ok(stats
                    .chunks_exact(4)
                    .map(|r| [r[0], r[1], r[2], r[3]])
                    .collect())
            }
        }
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
        let submitted = match &*self.ctx.inner {
            Inner::Cpu => Err(self.evaluate_cpu(batch, with_grad)),
            Inner::Gpu(gpu) => Ok(self.submit(gpu, batch, with_grad, false)),
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
        let gpu = self.ctx.gpu()?;
        gpu.check_alive()?;
        let ignore = self
            .options
            .ignore_index
            .and_then(|i| u32::try_from(i).ok());
        encode(gpu, &self.options, batch, ignore, grad, encoder)
    }

    /// GPU-resident API: [`Loss::encode`] into a fresh encoder and submit it. wgpu
    /// validation and out-of-memory errors (e.g. a buffer of another device, or one the
    /// caller has mapped) are returned, not raised.
    pub fn run(&self, batch: &GpuBatch<'_>, grad: Option<&wgpu::Buffer>) -> Result<GpuLoss> {
        let gpu = self.ctx.gpu()?;
        scoped(gpu, || {
            let mut encoder = gpu
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("segloss.run"),
                });
            let out = self.encode(&mut encoder, batch, grad)?;
            gpu.queue.submit([encoder.finish()]);
            Ok(out)
        })
    }

    /// Reads a [`GpuLoss`] back to the host (blocking), turning its status into an error.
    pub fn read(&self, result: &GpuLoss) -> Result<LossOutput> {
        let gpu = self.ctx.gpu()?;
        let pending = scoped(gpu, || {
            let staging = staging(gpu, result.buffer.size());
            let mut encoder = gpu
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("segloss.read"),
                });
            encoder.copy_buffer_to_buffer(&result.buffer, 0, &staging, 0, result.buffer.size());
            let idx = gpu.queue.submit([encoder.finish()]);
            Ok(Pending::new(&gpu.device, vec![staging], idx))
        })?;
        parse(pending.wait()?, result.values_len, result.classes)
    }

    fn evaluate_cpu(&self, batch: &Batch<'_>, with_grad: bool) -> Result<LossOutput> {
        batch.check_lengths()?;
        let (input, soft, index) = widen(batch);
        let rb = ref_batch(batch, &input, &soft, &index);
        let out = reference::evaluate(&self.options, &rb, with_grad)?;
        let f = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect::<Vec<f32>>();
        Ok(LossOutput {
            loss: out.loss as f32,
            values: out.values.map(f),
            grad: out.grad.map(f),
        })
    }

    /// Uploads a host batch, records the call and the copies to staging, submits.
    fn submit(
        &self,
        gpu: &Gpu,
        batch: &Batch<'_>,
        with_grad: bool,
        with_stats: bool,
    ) -> Result<(Pending, usize)> {
        gpu.check_alive()?;
        batch.check_lengths()?;
        let shape = batch.shape;
        let opts = &self.options;
        opts.validate_for(shape.classes())?;
        // The largest array (input, soft target, gradient) must fit one buffer.
        let (bytes, max) = (4 * shape.len() as u64, gpu.device.limits().max_buffer_size);
        if bytes > max {
            return Err(Error::TooLarge(format!(
                "a {bytes}-byte array exceeds the device's max_buffer_size of {max} bytes"
            )));
        }
        scoped(gpu, || {
            let dev = &gpu.device;
            // COPY_SRC: arrays over the binding limit are copied in chunks.
            let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
            let upload = |label: &str, bytes: &[u8]| upload(dev, label, bytes, usage);
            let input = upload("segloss.input", bytemuck::cast_slice(batch.input))?;
            // Index targets: the ignore value as the kernel will see it. i64 maps are
            // converted here, the ignore value (possibly negative) becoming u32::MAX.
            let (labels, ignore) = match batch.target {
                Target::Soft(t) => (upload("segloss.target", bytemuck::cast_slice(t))?, None),
                Target::Index(t) => {
                    let ignore = opts.ignore_index.and_then(|i| u32::try_from(i).ok());
                    (upload("segloss.target", bytemuck::cast_slice(t))?, ignore)
                }
                Target::IndexI64(t) => {
                    let mapped = index_from_i64(t, opts.ignore_index, shape.classes())?;
                    let ignore = opts.ignore_index.map(|_| u32::MAX);
                    (
                        upload("segloss.target", bytemuck::cast_slice(&mapped))?,
                        ignore,
                    )
                }
            };
            let mask = match batch.mask {
                Some(m) => {
                    let bytes: Vec<u8> = m.iter().map(|&k| u8::from(k)).collect();
                    Some(upload("segloss.mask", &bytes)?)
                }
                None => None,
            };
            let grad = with_grad.then(|| {
                dev.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("segloss.grad"),
                    size: 4 * shape.len() as u64,
                    usage: wgpu::BufferUsages::STORAGE
                        | wgpu::BufferUsages::COPY_SRC
                        | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            });
            let target = if batch.target.is_index() {
                crate::GpuTarget::Index(&labels)
            } else {
                crate::GpuTarget::Soft(&labels)
            };
            let gb = GpuBatch {
                shape,
                input: &input,
                target,
                mask: mask.as_ref(),
            };
            let mut encoder = dev.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("segloss.evaluate"),
            });
            let result = encode(gpu, opts, &gb, ignore, grad.as_ref(), &mut encoder)?;
            let mut read = vec![staging(gpu, result.buffer.size())];
            encoder.copy_buffer_to_buffer(&result.buffer, 0, &read[0], 0, result.buffer.size());
            for src in grad.iter().chain(with_stats.then_some(&result.stats)) {
                let st = staging(gpu, src.size());
                encoder.copy_buffer_to_buffer(src, 0, &st, 0, src.size());
                read.push(st);
            }
            let idx = gpu.queue.submit([encoder.finish()]);
            Ok((Pending::new(dev, read, idx), result.values_len))
        })
    }
}

/// The batch's data in f64 / i64 for the CPU reference (soft, index: one is empty).
fn widen(batch: &Batch<'_>) -> (Vec<f64>, Vec<f64>, Vec<i64>) {
    let input = batch.input.iter().map(|&v| f64::from(v)).collect();
    match batch.target {
        Target::Soft(t) => (input, t.iter().map(|&v| f64::from(v)).collect(), Vec::new()),
        Target::Index(t) => (input, Vec::new(), t.iter().map(|&v| i64::from(v)).collect()),
        Target::IndexI64(_) => (input, Vec::new(), Vec::new()),
    }
}

fn ref_batch<'a>(
    batch: &Batch<'a>,
    input: &'a [f64],
    soft: &'a [f64],
    index: &'a [i64],
) -> RefBatch<'a> {
    RefBatch {
        shape: batch.shape,
        input,
        target: match batch.target {
            Target::Soft(_) => RefTarget::Soft(soft),
            Target::Index(_) => RefTarget::Index(index),
            Target::IndexI64(t) => RefTarget::Index(t),
        },
        mask: batch.mask,
    }
}

/// A `MAP_READ | COPY_DST` buffer: the only kind the host may map for reading.
fn staging(gpu: &Gpu, size: u64) -> wgpu::Buffer {
    gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("segloss.staging"),
        size,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

/// Runs `f` inside validation and out-of-memory error scopes, returning the first wgpu
/// error as a segloss error instead of letting wgpu's default handler panic.
fn scoped<T>(gpu: &Gpu, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let oom = gpu.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let validation = gpu.device.push_error_scope(wgpu::ErrorFilter::Validation);
    let r = f();
    let v = pollster::block_on(validation.pop());
    let o = pollster::block_on(oom.pop());
    // Out of memory first: the buffers it left invalid then fail validation too.
    if let Some(e) = o.or(v) {
        return Err(Error::from_wgpu(e));
    }
    gpu.check_alive()?;
    r
}

/// i64 class map → u32, ignore value → u32::MAX; values outside 0..C are errors.
fn index_from_i64(t: &[i64], ignore: Option<i64>, classes: usize) -> Result<Vec<u32>> {
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
                    position: Some(j),
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

// Compile-time check: losses and contexts are shared across threads.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Loss>();
    send_sync::<Context>();
};
