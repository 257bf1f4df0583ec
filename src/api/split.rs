//! The split-phase (data-parallel) API: each worker's local phase, an all-reduce of the
//! shared block by the caller, then the global phase — on the host ([`Stats`]) or on
//! the GPU ([`GpuStats`]).

use std::future::Future;

use super::{scoped, Loss};
use crate::context::Inner;
use crate::cpu;
use crate::error::{Error, Result};
use crate::output::{guard, parse, LossOutput};
use crate::plan::{bytes_of_words as words, Phase};
use crate::readback::Pending;
use crate::resident::Uploaded;
use crate::resident::{GpuBatch, GpuResult, GpuStats};
use crate::shape::Batch;
use crate::shape::Shape;
use crate::split::{Held, Stats};
use crate::transfer::{grad_buffer, read_back, whole};

impl Loss {
    /// Split-phase API, local phase: the statistics of this worker's batch (its shard
    /// of a global batch), for [`Loss::finish`] after the caller has summed
    /// [`Stats::shared`] over all workers. The batch is kept (on the GPU, uploaded) for
    /// the gradient; the borrowed slices are free when this returns. Being kept whole,
    /// a shard's arrays must each fit one device buffer (`max_buffer_size`, else
    /// [`Error::TooLarge`]); the one-call host API has no such limit.
    ///
    /// ```
    /// # fn main() -> segloss::Result<()> {
    /// use segloss::{Batch, Context, Loss, LossOptions, Shape};
    /// let ctx = Context::new_or_cpu();
    /// let loss = Loss::new(&ctx, LossOptions::dice())?;
    /// let shape = Shape::new(&[1, 2, 2])?;
    /// let (x1, y1) = ([1.0, 0.0, -1.0, 0.5], [1.0, 0.0, 0.0, 1.0]);
    /// let (x2, y2) = ([0.2, 0.3, 0.1, -0.5], [0.5, 1.0, 0.5, 0.0]);
    /// // Two workers, each with one image of a batch of two.
    /// let mut a = loss.stats(&Batch::soft(&shape, &x1, &y1))?;
    /// let mut b = loss.stats(&Batch::soft(&shape, &x2, &y2))?;
    /// let sum: Vec<f32> = a.shared().iter().zip(b.shared()).map(|(u, v)| u + v).collect();
    /// a.shared_mut().copy_from_slice(&sum);
    /// b.shared_mut().copy_from_slice(&sum);
    /// let (la, lb) = (loss.finish(&a, true)?, loss.finish(&b, true)?);
    /// assert_eq!(la.loss, lb.loss); // the loss of the whole batch, on both workers
    /// # Ok(())
    /// # }
    /// ```
    pub fn stats(&self, batch: &Batch<'_>) -> Result<Stats> {
        match self.submit_stats(batch)? {
            Submitted::Ready(stats) => Ok(stats),
            Submitted::Gpu((pending, held)) => held.then(pending.wait()?),
        }
    }

    /// Async form of [`Loss::stats`]: the batch is uploaded and the local phase
    /// submitted before this returns (the slices are free at once); the future resolves
    /// when the statistics are read back. Nothing blocks in the browser (wasm32); on
    /// native backends, as [`Loss::forward_async`].
    pub fn stats_async(
        &self,
        batch: &Batch<'_>,
    ) -> impl Future<Output = Result<Stats>> + Send + 'static {
        let submitted = self.submit_stats(batch);
        async move {
            match submitted? {
                Submitted::Ready(stats) => Ok(stats),
                Submitted::Gpu((pending, held)) => held.then(pending.wait_async().await?),
            }
        }
    }

    /// The local phase, computed (CPU) or submitted (GPU).
    fn submit_stats(&self, batch: &Batch<'_>) -> Result<Submitted<Stats, (Pending, StatsHeld)>> {
        let mut owned = None;
        let batch = &self.prepared(batch, &mut owned)?;
        match &*self.ctx.inner {
            Inner::Cpu => {
                let local = cpu::stats(&self.options, batch)?;
                Ok(Submitted::Ready(Stats {
                    shared: local.shared,
                    items: local.items,
                    shape: batch.shape.clone(),
                    options: self.options.clone(),
                    held: Held::Cpu {
                        batch: local.batch,
                        items: local.items_f64,
                    },
                }))
            }
            Inner::Gpu(gpu) => {
                let up = self.upload_batch(gpu, batch)?;
                let (pending, st) = scoped(gpu, || {
                    let (encoder, enc) = self.record_uploaded(
                        gpu,
                        &up,
                        None,
                        (Phase::Stats, None),
                        "segloss.stats",
                    )?;
                    let bufs = vec![whole(&enc.out), whole(&enc.items), whole(&enc.shared)];
                    let pending = read_back(gpu, encoder, bufs);
                    Ok((
                        pending,
                        GpuStats::from_encoded(enc, &up.shape, &self.options, &gpu.device),
                    ))
                })?;
                let held = StatsHeld {
                    held: (up, st),
                    shape: batch.shape.clone(),
                    options: self.options.clone(),
                };
                Ok(Submitted::Gpu((pending, held)))
            }
        }
    }

    /// Split-phase API, global phase: the loss from `stats` whose shared block holds
    /// the sum over all workers (or this worker's own, for one worker), and, when
    /// `with_grad`, the gradient of this worker's batch. Equal to [`Loss::forward_backward`] of
    /// the whole global batch (its gradient restricted to this shard), within f32
    /// rounding; bit-identical to it for one worker.
    pub fn finish(&self, stats: &Stats, with_grad: bool) -> Result<LossOutput> {
        match self.submit_finish(stats, with_grad)? {
            Submitted::Ready(out) => Ok(out),
            Submitted::Gpu((pending, values_len)) => guard(
                &self.options,
                parse(pending.wait()?, values_len, stats.shape.classes())?,
            ),
        }
    }

    /// Async form of [`Loss::finish`]: recorded and submitted before this returns; the
    /// future resolves when the loss (and gradient) are read back. Nothing blocks in the
    /// browser (wasm32); on native backends, as [`Loss::forward_async`].
    pub fn finish_async(
        &self,
        stats: &Stats,
        with_grad: bool,
    ) -> impl Future<Output = Result<LossOutput>> + Send + 'static {
        let submitted = self.submit_finish(stats, with_grad);
        let (options, classes) = (self.options.clone(), stats.shape.classes());
        async move {
            match submitted? {
                Submitted::Ready(out) => Ok(out),
                Submitted::Gpu((pending, values_len)) => {
                    let bufs = pending.wait_async().await?;
                    guard(&options, parse(bufs, values_len, classes)?)
                }
            }
        }
    }

    /// The global phase, computed (CPU) or submitted (GPU, with its values' length).
    fn submit_finish(
        &self,
        stats: &Stats,
        with_grad: bool,
    ) -> Result<Submitted<LossOutput, (Pending, usize)>> {
        stats.check(&self.options)?;
        match (&*self.ctx.inner, &stats.held) {
            (Inner::Cpu, Held::Cpu { batch, items }) => Ok(Submitted::Ready(cpu::finish(
                &self.options,
                &stats.shared,
                batch,
                items,
                with_grad,
            )?)),
            (Inner::Gpu(gpu), Held::Gpu(held)) => {
                let (batch, st) = &**held;
                gpu.check_alive()?;
                // One write of the shared block per submission (see GpuStats::write).
                let _write = st.write_lock();
                scoped(gpu, || {
                    let grad = with_grad.then(|| grad_buffer(gpu, stats.shape.len()));
                    // Recording checks the statistics (device, shape, options) first;
                    // the summed block is written before the submission runs.
                    let (encoder, enc) = self.record_uploaded(
                        gpu,
                        batch,
                        grad.as_deref(),
                        (Phase::Finish, Some(st)),
                        "segloss.finish",
                    )?;
                    gpu.queue
                        .write_buffer(&st.shared, 0, bytemuck::cast_slice(&stats.shared));
                    let bytes = words(stats.shape.len());
                    let bufs = std::iter::once(whole(&enc.out))
                        .chain(grad.map(|g| (g, bytes)))
                        .collect();
                    Ok(Submitted::Gpu((
                        read_back(gpu, encoder, bufs),
                        enc.values_len,
                    )))
                })
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
        let enc = self.record(encoder, batch, (None, None), Phase::Stats, None)?;
        let device = &self.ctx.gpu()?.device;
        Ok(GpuStats::from_encoded(
            enc,
            batch.shape,
            &self.options,
            device,
        ))
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

    /// Split-phase GPU-resident API: writes the summed shared block back. The write is
    /// submitted before this returns (an empty submission flushes it), so two calls on
    /// one statistics never leave two unordered copies into one buffer.
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
        let _guard = stats.write_lock();
        scoped(gpu, || {
            gpu.queue
                .write_buffer(&stats.shared, 0, bytemuck::cast_slice(shared));
            gpu.queue.submit([]);
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
        grad: Option<wgpu::BufferSlice<'_>>,
    ) -> Result<GpuResult> {
        self.record_result(encoder, batch, (grad, None), Phase::Finish, Some(stats))
    }

    /// [`Loss::encode_finish`] with the gradient multiplied by the f32 at `scale` on the
    /// device (see [`Loss::encode_scaled`]). With one worker, `encode_stats` then
    /// `encode_finish` (no gradient) gives a framework's forward pass its loss, and this
    /// call in the backward pass gives the gradient already scaled by the incoming one:
    /// the statistics pass is not repeated.
    pub fn encode_finish_scaled(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        batch: &GpuBatch<'_>,
        stats: &GpuStats,
        grad: wgpu::BufferSlice<'_>,
        scale: wgpu::BufferSlice<'_>,
    ) -> Result<GpuResult> {
        let grads = (Some(grad), Some(scale));
        self.record_result(encoder, batch, grads, Phase::Finish, Some(stats))
    }
}

/// A phase computed at once (the CPU reference) or submitted to the GPU (its readback
/// still to be waited for or awaited).
enum Submitted<T, P> {
    Ready(T),
    Gpu(P),
}

/// What [`Stats`] keeps of a submitted local phase.
struct StatsHeld {
    held: (Uploaded, GpuStats),
    shape: Shape,
    options: crate::options::LossOptions,
}

impl StatsHeld {
    /// The statistics from the read-back result, items and shared block.
    fn then(self, mut bufs: Vec<Vec<f32>>) -> Result<Stats> {
        let (shared, items) = (bufs.pop().unwrap_or_default(), bufs.pop());
        parse(bufs, 0, self.shape.classes())?;
        let items = items
            .unwrap_or_default()
            .chunks_exact(4)
            .take(self.shape.batch() * self.shape.classes())
            .map(|r| [r[0], r[1], r[2], r[3]])
            .collect();
        Ok(Stats {
            shared,
            items,
            shape: self.shape,
            options: self.options,
            held: Held::Gpu(Box::new(self.held)),
        })
    }
}
