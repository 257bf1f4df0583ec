//! The host API's GPU side: uploads into pooled buffers, one submission, the readback
//! (or the streamed path for arrays over one binding), and the async variant.

use std::future::Future;

use super::{scoped, Loss};
use crate::context::{Gpu, Inner};
use crate::error::{Error, Result};
use crate::output::{all_finite, guard, overflow, parse, LossOutput};
use crate::plan::{bytes_of_words as words, Phase};
use crate::readback::Pending;
use crate::record::Encoded;
use crate::resident::{encode, GpuStats, Request, Uploaded};
use crate::shape::{ignore_u32, index_from_i64, mask_bytes, Batch, Target};
use crate::stream;
use crate::transfer::{grad_buffer, read_back, whole, write};

impl Loss {
    /// A blocking GPU host call whose gradient, when wanted, lands in `grad` (of the
    /// input's length); the output's `grad` is `None`.
    pub(super) fn evaluate_into(
        &self,
        batch: &Batch<'_>,
        grad: Option<&mut [f32]>,
    ) -> Result<LossOutput> {
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
        guard(
            &self.options,
            parse(vec![out], values_len, batch.shape.classes())?,
        )
    }

    /// Async host call. The data is uploaded and the work submitted before this returns,
    /// so the borrowed slices are free at once and several calls can be in flight; the
    /// future resolves when the GPU is done (a helper thread waits on the device, so no
    /// executor thread blocks).
    pub(super) fn host_async(
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
                _ => Err(self.run_prepared(&batch, with_grad)),
            },
        };
        let options = self.options.clone();
        async move {
            match submitted {
                Err(cpu) => cpu,
                Ok(Err(e)) => Err(e),
                Ok(Ok((pending, values_len))) => {
                    let out = parse(pending.wait_async().await?, values_len, classes)?;
                    guard(&options, out)
                }
            }
        }
    }

    /// A host call on a batch over the binding limit, streamed (see [`crate::stream`]).
    fn evaluate_streamed(
        &self,
        gpu: &Gpu,
        batch: &Batch<'_>,
        grad: Option<&mut [f32]>,
    ) -> Result<LossOutput> {
        // Lengths and options were checked by `Loss::prepared`.
        gpu.check_alive()?;
        let shape = batch.shape;
        let out = scoped(gpu, || {
            stream::evaluate(
                gpu,
                &self.options,
                batch,
                ignore_u32(self.options.ignore_index),
                grad,
            )
        })?;
        let values_len = match self.options.reduction {
            crate::Reduction::None => self.options.values_len(shape.batch(), shape.classes()),
            _ => 0,
        };
        guard(
            &self.options,
            parse(vec![out], values_len, shape.classes())?,
        )
    }

    /// Uploads a host batch, records the whole call and the copies to staging, submits.
    pub(super) fn submit(
        &self,
        gpu: &Gpu,
        batch: &Batch<'_>,
        with_grad: bool,
    ) -> Result<(Pending, usize)> {
        let up = self.upload_batch(gpu, batch)?;
        scoped(gpu, || {
            let len = batch.shape.len();
            let grad = with_grad.then(|| grad_buffer(gpu, len));
            let (encoder, enc) = self.record_uploaded(
                gpu,
                &up,
                grad.as_deref(),
                (Phase::Whole, None),
                "segloss.evaluate",
            )?;
            let bufs = std::iter::once(whole(&enc.out))
                .chain(grad.map(|g| (g, words(len))))
                .collect();
            Ok((read_back(gpu, encoder, bufs), enc.values_len))
        })
    }

    /// Records `phase` of a host call on its uploaded batch into a fresh encoder (a
    /// finishing phase continues `from`).
    pub(super) fn record_uploaded(
        &self,
        gpu: &Gpu,
        up: &Uploaded,
        grad: Option<&wgpu::Buffer>,
        (phase, from): (Phase, Option<&GpuStats>),
        label: &str,
    ) -> Result<(wgpu::CommandEncoder, Encoded)> {
        let mut encoder = gpu.encoder(label);
        let batch = up.batch();
        let request = Request {
            batch: &batch,
            ignore: up.ignore,
            grad: grad.map(|g| g.slice(..)),
            scale: None,
            phase,
            from,
            caller_buffers: false,
        };
        let enc = encode(gpu, &self.options, request, &mut encoder)?;
        Ok((encoder, enc))
    }

    /// Uploads a host batch (input, target, mask) whose lengths and options
    /// `Loss::prepared` has checked.
    pub(super) fn upload_batch(&self, gpu: &Gpu, batch: &Batch<'_>) -> Result<Uploaded> {
        gpu.check_alive()?;
        let shape = batch.shape;
        let opts = &self.options;
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
                    ignore_u32(self.options.ignore_index),
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
                // Whole words: a write's length is a multiple of 4.
                Some(m) => Some(upload("segloss.mask", &mask_bytes(m))?),
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
