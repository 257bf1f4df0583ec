//! The GPU-resident API: caller buffers in, results left on the device.

use std::future::Future;

use super::{scoped, Loss};
use crate::error::{Error, Result};
use crate::output::{guard, parse, LossOutput};
use crate::plan::Phase;
use crate::readback::Pending;
use crate::record::Encoded;
use crate::resident::{encode, GpuBatch, GpuResult, GpuStats, GpuTarget, Request};
use crate::shape::ignore_word;
use crate::transfer::{read_back, whole};

impl Loss {
    /// GPU-resident API: records the whole call into the caller's `encoder` (nothing is
    /// submitted or read back). The gradient, when `grad` is given (f32 `[B, C, S...]`,
    /// usage `STORAGE`; a whole buffer or a range of one, as [`GpuBatch`]'s arrays), is
    /// written there; the loss stays in the returned [`GpuResult`]. A gradient range in
    /// the same wgpu buffer as an input range (disjoint bytes; overlapping ones are an
    /// error) is written through a scratch buffer and one device-side copy (wgpu forbids
    /// one buffer read-only and read-write in one dispatch); it then needs `COPY_DST`.
    ///
    /// Data errors (non-finite input, soft targets outside [0, 1], class indices out of
    /// range) cannot be seen before the GPU runs: they set the status word of the result
    /// (and make the loss NaN and the gradient 0), and [`Loss::read`] reports them.
    ///
    /// ```
    /// # fn main() -> segloss::Result<()> {
    /// use segloss::{Context, GpuBatch, GpuTarget, Loss, LossOptions, Shape};
    /// let ctx = Context::new_or_cpu();
    /// # // The GPU-resident API needs a GPU context; the CPU fallback has no buffers.
    /// if let (Some(dev), Some(queue)) = (ctx.device(), ctx.queue()) {
    ///     let shape = Shape::new(&[1, 2, 8])?;
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
    ///     let loss = Loss::new(&ctx, LossOptions::dice())?;
    ///     let batch = GpuBatch { shape: &shape, input: logits.slice(..), target: GpuTarget::Soft(target.slice(..)), mask: None };
    ///     let mut encoder = dev.create_command_encoder(&Default::default());
    ///     let result = loss.encode(&mut encoder, &batch, Some(grad.slice(..)))?;
    ///     queue.submit([encoder.finish()]);
    ///     // `grad` now holds d loss / d logits; read the loss only when it is wanted.
    ///     let out = loss.read(&result)?;
    ///     assert!(out.loss > 0.0 && out.loss < 1.0);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn encode(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        batch: &GpuBatch<'_>,
        grad: Option<wgpu::BufferSlice<'_>>,
    ) -> Result<GpuResult> {
        self.record_result(encoder, batch, (grad, None), Phase::Whole, None)
    }

    /// [`Loss::encode`] with the gradient multiplied by the f32 at `scale`, read on the
    /// device (a 4-byte range, usage `COPY_SRC`): a framework's incoming gradient of the
    /// loss (burn's or PyTorch's backward), applied inside the kernels instead of by one
    /// more pass over the gradient. The loss and the values are not scaled.
    pub fn encode_scaled(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        batch: &GpuBatch<'_>,
        grad: wgpu::BufferSlice<'_>,
        scale: wgpu::BufferSlice<'_>,
    ) -> Result<GpuResult> {
        let grads = (Some(grad), Some(scale));
        self.record_result(encoder, batch, grads, Phase::Whole, None)
    }

    /// [`Loss::record`] of a finishing phase, as the [`GpuResult`] it leaves.
    pub(super) fn record_result(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        batch: &GpuBatch<'_>,
        grads: (Option<wgpu::BufferSlice<'_>>, Option<wgpu::BufferSlice<'_>>),
        phase: Phase,
        from: Option<&GpuStats>,
    ) -> Result<GpuResult> {
        let enc = self.record(encoder, batch, grads, phase, from)?;
        Ok(GpuResult::from_encoded(enc, batch.shape.classes()))
    }

    /// Records `phase` of a GPU-resident call on caller buffers (a finishing phase
    /// continues `from`).
    pub(super) fn record(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        batch: &GpuBatch<'_>,
        (grad, scale): (Option<wgpu::BufferSlice<'_>>, Option<wgpu::BufferSlice<'_>>),
        phase: Phase,
        from: Option<&GpuStats>,
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
        let request = Request {
            batch,
            ignore: ignore_word(self.options.ignore_index),
            grad,
            scale,
            phase,
            from,
            caller_buffers: true,
        };
        encode(gpu, &self.options, request, encoder)
    }

    /// GPU-resident API: [`Loss::encode`] into a fresh encoder and submit it. wgpu
    /// validation and out-of-memory errors (e.g. a buffer of another device, or one the
    /// caller has mapped) are returned, not raised.
    pub fn run(
        &self,
        batch: &GpuBatch<'_>,
        grad: Option<wgpu::BufferSlice<'_>>,
    ) -> Result<GpuResult> {
        let gpu = self.ctx.gpu()?;
        scoped(gpu, || {
            let mut encoder = gpu.encoder("segloss.run");
            let out = self.encode(&mut encoder, batch, grad)?;
            gpu.queue.submit([encoder.finish()]);
            Ok(out)
        })
    }

    /// Reads a [`GpuResult`] back to the host (blocking), turning its status into an error.
    pub fn read(&self, result: &GpuResult) -> Result<LossOutput> {
        let pending = self.request_read(result)?;
        guard(
            &self.options,
            parse(pending.wait()?, result.values_len, result.classes)?,
        )
    }

    /// Async form of [`Loss::read`] (the one that works in the browser, wasm32): the
    /// copy is submitted before this returns; the future resolves when it is mapped.
    pub fn read_async(
        &self,
        result: &GpuResult,
    ) -> impl Future<Output = Result<LossOutput>> + Send + 'static {
        let pending = self.request_read(result);
        let (options, values_len, classes) =
            (self.options.clone(), result.values_len, result.classes);
        async move {
            let bufs = pending?.wait_async().await?;
            guard(&options, parse(bufs, values_len, classes)?)
        }
    }

    /// Submits the copy of a result to a mapped buffer.
    fn request_read(&self, result: &GpuResult) -> Result<Pending> {
        let gpu = self.ctx.gpu()?;
        scoped(gpu, || {
            Ok(read_back(
                gpu,
                gpu.encoder("segloss.read"),
                vec![whole(&result.buffer)],
            ))
        })
    }
}
