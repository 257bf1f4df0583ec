//! Segmentation metrics on the GPU: mIoU and Dice at dataset, image and class level,
//! worst-case over the lowest q % (Wang & Blaschko, *Revisiting Evaluation Metrics for
//! Semantic Segmentation*, NeurIPS 2023, as JDTLosses implements them), per class and per
//! image, accumulated over a dataset.
//!
//! A [`Metrics`] accumulator takes batches of hard predictions — label maps `[B, S...]`,
//! or scores `[B, C, S...]` whose argmax is taken in the shader — against label maps
//! (with `ignore_index` and a keep-mask), and counts per (image, class) the true
//! positives, predicted and labelled pixels, exactly (u32 counts, integer atomics). On a
//! GPU context the counts stay on the device until [`Metrics::result`]; on the CPU
//! context they are counted on the host.
//!
//! ```
//! # fn main() -> segloss::Result<()> {
//! use segloss::metrics::{Labels, Metrics, Prediction};
//! use segloss::{Context, Shape};
//! let ctx = Context::new_or_cpu();
//! let mut m = Metrics::new(&ctx, 3, Some(255))?;
//! let shape = Shape::new(&[1, 3, 4])?; // [B, C, S...]
//! let pred = [0u32, 1, 2, 2];
//! let label = [0u32, 1, 1, 255];
//! m.update(&shape, Prediction::Labels(&pred), Labels::U32(&label), None)?;
//! let r = m.result()?;
//! // class 0: IoU 1; class 1: 1/2; class 2: 0/1 → mIoU^D = 0.5
//! assert!((r.miou_d - 0.5).abs() < 1e-12);
//! # Ok(())
//! # }
//! ```

mod count;
mod gpu;
pub mod monai;
mod read;
mod result;
pub mod smp;
mod soft;
mod state;

pub use count::{Counting, Labels, Prediction};
pub use result::{ImageScore, MetricsResult, WorstCase};
pub use state::{ImageCounts, MetricsState};

use crate::context::{Context, Gpu, Inner};
use crate::error::{Error, Result};
use crate::shape::{check_len, ignore_u32, index_from_i64, mask_bytes, Shape};
use crate::transfer::upload;
use gpu::{CountInput, DeviceCounts, PredKind};
pub use gpu::{GpuLabels, GpuMetricBatch, GpuPrediction};

/// Records and submits one batch's counting.
fn submit(gpu: &Gpu, input: &CountInput<'_>) -> Result<DeviceCounts> {
    let mut encoder = gpu.encoder("segloss.metrics");
    let counts = gpu::record(gpu, &mut encoder, input)?;
    gpu.queue.submit([encoder.finish()]);
    Ok(counts)
}

/// Accumulates per-(image, class) counts over batches and computes the metrics.
pub struct Metrics {
    ctx: Context,
    classes: usize,
    ignore_index: Option<i64>,
    state: MetricsState,
    pending: Vec<DeviceCounts>,
    counting: Counting,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("classes", &self.classes)
            .field("ignore_index", &self.ignore_index)
            .field("images", &(self.state.images.len() + self.pending_images()))
            .finish()
    }
}

impl Metrics {
    /// An empty accumulator for `classes` classes; label pixels equal to `ignore_index`
    /// are left out.
    pub fn new(ctx: &Context, classes: usize, ignore_index: Option<i64>) -> Result<Self> {
        if classes == 0 {
            return Err(Error::option("classes", "at least one class"));
        }
        Ok(Metrics {
            ctx: ctx.clone(),
            classes,
            ignore_index,
            state: MetricsState::new(classes),
            pending: Vec::new(),
            counting: Counting::Auto,
        })
    }

    /// Where [`Metrics::update`] counts host slices on a GPU context (default
    /// [`Counting::Auto`]). GPU-resident batches ([`Metrics::encode`], [`Metrics::run`])
    /// are always counted on their device.
    pub fn with_counting(mut self, counting: Counting) -> Self {
        self.counting = counting;
        self
    }

    /// The number of classes C.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// The label value that counts nowhere.
    pub fn ignore_index(&self) -> Option<i64> {
        self.ignore_index
    }

    /// Whether [`Metrics::update`] counts host slices on the host: the CPU context, or
    /// [`Counting::Host`], or [`Counting::Auto`] on a CPU adapter.
    pub fn counts_on_host(&self) -> bool {
        match &*self.ctx.inner {
            Inner::Cpu => true,
            Inner::Gpu(gpu) => self.counting.on_host(&gpu.info),
        }
    }

    fn pending_images(&self) -> usize {
        self.pending.iter().map(|p| p.batch).sum()
    }

    fn check_shape(&self, shape: &Shape) -> Result<()> {
        if shape.classes() != self.classes {
            return Err(Error::InvalidShape {
                shape: shape.dims().to_vec(),
                reason: format!(
                    "C = {}, the metrics count {} classes",
                    shape.classes(),
                    self.classes
                ),
            });
        }
        Ok(())
    }

    /// Adds a batch from host slices: `shape` is `[B, C, S...]`, `pred` a label map
    /// `[B, S...]` or scores `[B, C, S...]`, `target` a label map `[B, S...]`, `mask` a
    /// keep-mask `[B, S...]`. Labels outside `0..C` (other than the ignore index) are
    /// errors.
    pub fn update(
        &mut self,
        shape: &Shape,
        pred: Prediction<'_>,
        target: Labels<'_>,
        mask: Option<&[bool]>,
    ) -> Result<()> {
        self.check_shape(shape)?;
        let (b, c, n) = (shape.batch(), shape.classes(), shape.pixels());
        let want = |per_class: bool| {
            if per_class {
                shape.len()
            } else {
                shape.map_len()
            }
        };
        check_len("pred", pred.len(), want(pred.per_class()))?;
        check_len("target", target.len(), want(target.per_class()))?;
        if let Some(m) = mask {
            check_len("mask", m.len(), shape.map_len())?;
        }
        match (pred, target) {
            (Prediction::Soft { scores, activation }, _) => {
                let ignore = self.ignore_index;
                let soft = (scores, activation);
                let images = soft::stats(&self.ctx, shape, soft, &target, mask, ignore)?;
                return self.add_counted(images);
            }
            (_, Labels::Soft(_)) => {
                return Err(Error::option(
                    "target",
                    "soft targets need a soft prediction (Prediction::Soft): counts of soft \
                     labels are not defined",
                ))
            }
            _ => {}
        }
        let cpu = |this: &mut Self| -> Result<()> {
            let images = count::count(&pred, &target, mask, this.ignore_index, (b, c, n))?;
            this.add_counted(images)
        };
        let ctx = self.ctx.clone();
        let gpu = match &*ctx.inner {
            Inner::Gpu(gpu) if !self.counting.on_host(&gpu.info) => gpu,
            _ => return cpu(self),
        };
        if matches!(pred, Prediction::Scores(_)) && c > crate::kernels::counts::MAX_SCORED_CLASSES {
            // Scored predictions over many classes: counted on the host.
            return cpu(self);
        }
        let dev = &gpu.device;
        let usage = wgpu::BufferUsages::STORAGE;
        let multi_hot = target.per_class();
        let up = |name: &str, bytes: &[u8]| upload(dev, name, bytes, usage);
        // i64 label maps are converted to u32 (the ignore value becoming u32::MAX).
        let (wide_target, wide_pred);
        let (target_bytes, ignore): (&[u8], _) = match target {
            Labels::U32(t) => (bytemuck::cast_slice(t), ignore_u32(self.ignore_index)),
            Labels::I64(t) => {
                wide_target = index_from_i64(t, self.ignore_index, c, 0)?;
                let ignore = self.ignore_index.map(|_| u32::MAX);
                (bytemuck::cast_slice(&wide_target), ignore)
            }
            Labels::MultiHot(t) | Labels::Soft(t) => (bytemuck::cast_slice(t), None),
        };
        let (pred_bytes, kind): (&[u8], _) = match pred {
            Prediction::Labels(p) => (bytemuck::cast_slice(p), PredKind::Labels),
            Prediction::LabelsI64(p) => {
                // Any value outside 0..C is an error here (no ignore value in predictions).
                wide_pred = index_from_i64(p, None, c, 0)?;
                (bytemuck::cast_slice(&wide_pred), PredKind::Labels)
            }
            Prediction::Scores(x) => (bytemuck::cast_slice(x), PredKind::Argmax),
            Prediction::Threshold {
                scores,
                threshold,
                sigmoid,
            } => (
                bytemuck::cast_slice(scores),
                PredKind::Threshold(Prediction::cut(threshold, sigmoid)?),
            ),
            // Taken by `soft::stats` above.
            Prediction::Soft { .. } => return Err(Error::option("pred", "a soft prediction")),
        };
        // Uploads and recording inside one error scope: out of memory is returned.
        let counts = crate::api::scoped(gpu, || {
            let target = up("segloss.metric_target", target_bytes)?;
            let pred = up("segloss.metric_pred", pred_bytes)?;
            let mask = match mask {
                Some(m) => Some(up("segloss.metric_mask", &mask_bytes(m))?),
                None => None,
            };
            let input = CountInput {
                pred: pred.slice(..),
                kind,
                target: target.slice(..),
                multi_hot,
                mask: mask.as_ref().map(|m| m.slice(..)),
                ignore,
                batch: b,
                classes: c,
                pixels: n,
            };
            submit(gpu, &input)
        })?;
        self.pending.push(counts);
        Ok(())
    }

    /// GPU-resident: records the counting of a batch of device buffers into `encoder`
    /// (the caller submits it). Nothing is read back until [`Metrics::result`].
    ///
    /// The buffers are checked before anything is recorded: each must be of this
    /// context's device, unmapped, with usage `STORAGE`, at least the bytes the shape
    /// needs, and start at a multiple of `min_storage_buffer_offset_alignment`
    /// ([`Error::InvalidBuffer`] names the one at fault). wgpu errors of segloss's own
    /// allocations (out of memory) are returned, not raised.
    pub fn encode(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        batch: &GpuMetricBatch<'_>,
    ) -> Result<()> {
        self.check_shape(batch.shape)?;
        let ctx = self.ctx.clone();
        let Inner::Gpu(gpu) = &*ctx.inner else {
            return Err(Error::NotOnGpu);
        };
        gpu.check_alive()?;
        let input = gpu::resident_input(gpu, batch, self.ignore_index)?;
        let counts = crate::api::scoped(gpu, || gpu::record(gpu, encoder, &input))?;
        self.pending.push(counts);
        Ok(())
    }

    /// GPU-resident: [`Metrics::encode`] into a fresh encoder, submitted; wgpu
    /// validation errors of the submission are returned, not raised.
    pub fn run(&mut self, batch: &GpuMetricBatch<'_>) -> Result<()> {
        self.check_shape(batch.shape)?;
        let ctx = self.ctx.clone();
        let Inner::Gpu(gpu) = &*ctx.inner else {
            return Err(Error::NotOnGpu);
        };
        gpu.check_alive()?;
        let input = gpu::resident_input(gpu, batch, self.ignore_index)?;
        let counts = crate::api::scoped(gpu, || submit(gpu, &input))?;
        self.pending.push(counts);
        Ok(())
    }

    /// Appends images counted on the host, after those still on the device.
    fn add_counted(&mut self, images: Vec<ImageCounts>) -> Result<()> {
        self.flush()?;
        self.state.images.extend(images);
        Ok(())
    }

    /// The accumulated state (reads back what is still on the device): plain data that
    /// workers combine with [`Metrics::merge`] / [`MetricsState::merge`].
    pub fn state(&mut self) -> Result<&MetricsState> {
        self.flush()?;
        Ok(&self.state)
    }

    /// Appends another worker's images.
    pub fn merge(&mut self, other: &MetricsState) -> Result<()> {
        self.flush()?;
        self.state.merge(other)
    }

    /// The metrics of every image added so far.
    pub fn result(&mut self) -> Result<MetricsResult> {
        self.flush()?;
        Ok(self.state.result())
    }

    /// The worst-case metrics over the lowest `q` % of images (0 < q ≤ 100).
    pub fn worst(&mut self, q: f64) -> Result<WorstCase> {
        if !(q > 0.0 && q <= 100.0) {
            return Err(Error::option("q", format!("must lie in (0, 100], got {q}")));
        }
        self.flush()?;
        Ok(self.state.worst(q))
    }

    /// Forgets every image.
    pub fn reset(&mut self) {
        self.pending.clear();
        self.state = MetricsState::new(self.classes);
    }
}
