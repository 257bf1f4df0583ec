//! Counting on the GPU: `shaders/counts.wgsl` over windows of pixels into a `[B, C, 3]`
//! u32 buffer (plus a status word) that stays on the device until the result is asked
//! for.

use super::state::ImageCounts;
use super::Prediction;
use crate::context::Gpu;
use crate::error::{Error, Result};
use crate::kernels::counts::{pixels_per_invocation, Bindings, CountParams, CHUNK};
use crate::kernels::fold;
use crate::record::{range, scratch};
use crate::resident::{check_buffer, check_offset, check_owned};
use crate::shape::{ignore_word, mask_buffer_bytes};
use crate::transfer::upload;

/// A batch's counts on the device, not yet read back.
pub(crate) struct DeviceCounts {
    pub buffer: wgpu::Buffer,
    pub batch: usize,
    /// The kept pixels are counted in their own words (else: the labelled ones).
    pub multi_hot: bool,
}

/// A prediction in device buffers: each a [`wgpu::BufferSlice`], a whole buffer
/// (`buffer.slice(..)`) or a range of one (a framework's sub-allocated tensor), starting
/// at a multiple of the device's `min_storage_buffer_offset_alignment`.
#[derive(Clone, Copy, Debug)]
pub enum GpuPrediction<'a> {
    /// u32 labels `[B, S...]`.
    Labels(wgpu::BufferSlice<'a>),
    /// f32 scores `[B, C, S...]` (argmax in the shader).
    Scores(wgpu::BufferSlice<'a>),
    /// f32 multi-label scores `[B, C, S...]`, cut per class in the shader (see
    /// [`super::Prediction::Threshold`]).
    Threshold {
        /// `[B, C, S...]` scores.
        scores: wgpu::BufferSlice<'a>,
        /// The cut, in probability.
        threshold: f32,
        /// The scores are logits.
        sigmoid: bool,
    },
}

/// Targets in device buffers (slices, as [`GpuPrediction`]'s).
#[derive(Clone, Copy, Debug)]
pub enum GpuLabels<'a> {
    /// u32 label maps `[B, S...]` (the accumulator's `ignore_index` applies; i32 maps
    /// match a negative one by its bit pattern, as the loss's).
    Index(wgpu::BufferSlice<'a>),
    /// f32 one-hot / multi-hot `[B, C, S...]`, each value 0 or 1.
    MultiHot(wgpu::BufferSlice<'a>),
}

/// A batch in device buffers (usage `STORAGE`, unmapped), on the accumulator's device:
/// whole buffers or ranges of them, as [`crate::GpuBatch`]'s.
#[derive(Clone, Copy, Debug)]
pub struct GpuMetricBatch<'a> {
    /// `[B, C, S...]` (C = the accumulator's classes, also for label predictions).
    pub shape: &'a crate::shape::Shape,
    /// The prediction.
    pub pred: GpuPrediction<'a>,
    /// The targets.
    pub target: GpuLabels<'a>,
    /// Keep-mask bytes `[B, S...]` (0 = ignore), padded to whole words.
    pub mask: Option<wgpu::BufferSlice<'a>>,
}

/// How the counts kernel reads a prediction (`CountParams::scores`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum PredKind {
    /// u32 labels `[B, N]`.
    Labels,
    /// f32 scores `[B, C, N]`, argmax.
    Argmax,
    /// f32 scores `[B, C, N]`, each class where the score ≥ the cut.
    Threshold(f32),
}

impl DeviceCounts {
    /// Its images' counts from the words read back (`c` classes), or the error its
    /// status word reports.
    pub(crate) fn images(&self, words: &[f32], c: usize) -> Result<Vec<ImageCounts>> {
        let word = |j: usize| words.get(j).map_or(0, |w| w.to_bits());
        let status = word(3 * self.batch * c);
        if status & 3 != 0 {
            // 1: a label, 2: a prediction outside 0..C.
            return Err(Error::ClassIndexOutOfRange {
                value: None,
                classes: c,
                position: None,
            });
        }
        if status & 4 != 0 {
            return Err(Error::NonFiniteInput { position: None });
        }
        if status & 8 != 0 {
            return Err(Error::NotBinary { position: None });
        }
        Ok((0..self.batch)
            .map(|b| {
                let counts: Vec<[f64; 3]> = (0..c)
                    .map(|k| [0, 1, 2].map(|q| f64::from(word(3 * (b * c + k) + q))))
                    .collect();
                let valid = if self.multi_hot {
                    f64::from(word(3 * self.batch * c + 1 + b))
                } else {
                    counts.iter().map(|x| x[2]).sum()
                };
                ImageCounts { counts, valid }
            })
            .collect())
    }
}

/// What one GPU count reads: caller buffers (or segloss's uploads) on the device.
pub(crate) struct CountInput<'a> {
    pub pred: wgpu::BufferSlice<'a>,
    pub kind: PredKind,
    /// u32 labels `[B, N]`, or f32 one-hot / multi-hot `[B, C, N]` when `multi_hot`.
    pub target: wgpu::BufferSlice<'a>,
    pub multi_hot: bool,
    /// Keep-mask bytes `[B, N]`, padded to whole words.
    pub mask: Option<wgpu::BufferSlice<'a>>,
    /// The ignore label as it is in `target`.
    pub ignore: Option<u32>,
    pub batch: usize,
    pub classes: usize,
    pub pixels: usize,
}

/// Checks a GPU-resident batch's buffers (device, mapping, usage, size, offset)
/// and turns it into the counts kernel's input.
pub(crate) fn resident_input<'a>(
    gpu: &Gpu,
    batch: &GpuMetricBatch<'a>,
    ignore_index: Option<i64>,
) -> Result<CountInput<'a>> {
    let (pred, kind) = match batch.pred {
        GpuPrediction::Labels(p) => (p, PredKind::Labels),
        GpuPrediction::Scores(p) => (p, PredKind::Argmax),
        GpuPrediction::Threshold {
            scores,
            threshold,
            sigmoid,
        } => (
            scores,
            PredKind::Threshold(Prediction::cut(threshold, sigmoid)?),
        ),
    };
    let (target, multi_hot) = match batch.target {
        GpuLabels::Index(t) => (t, false),
        GpuLabels::MultiHot(t) => (t, true),
    };
    let shape = batch.shape;
    if kind == PredKind::Argmax && shape.classes() > crate::kernels::counts::MAX_SCORED_CLASSES {
        return Err(Error::TooLarge(format!(
            "scored predictions over more than {} classes: pass label maps",
            crate::kernels::counts::MAX_SCORED_CLASSES
        )));
    }
    let words = |per_class: bool| {
        4 * if per_class {
            shape.len()
        } else {
            shape.map_len()
        } as u64
    };
    let mask_need = mask_buffer_bytes(shape.map_len()) as u64;
    let mask = batch.mask.map(|m| ("mask", m, mask_need));
    let named = [
        ("pred", pred, words(kind != PredKind::Labels)),
        ("target", target, words(multi_hot)),
    ];
    let align = u64::from(gpu.device.limits().min_storage_buffer_offset_alignment).max(4);
    let mut probed: Vec<&wgpu::Buffer> = Vec::new();
    for (name, s, need) in named.into_iter().chain(mask) {
        check_buffer(name, s, need, wgpu::BufferUsages::STORAGE)?;
        check_offset(name, s, align)?;
        if !probed.contains(&s.buffer()) {
            check_owned(gpu, name, s.buffer())?;
            probed.push(s.buffer());
        }
    }
    Ok(CountInput {
        pred,
        kind,
        target,
        multi_hot,
        mask: batch.mask,
        ignore: ignore_word(ignore_index),
        batch: shape.batch(),
        classes: shape.classes(),
        pixels: shape.pixels(),
    })
}

/// Records the counting of one batch into `encoder`.
pub(crate) fn record(
    gpu: &Gpu,
    encoder: &mut wgpu::CommandEncoder,
    input: &CountInput<'_>,
) -> Result<DeviceCounts> {
    let (b, c, n) = (input.batch, input.classes, input.pixels);
    let dev = &gpu.device;
    let max_binding = dev.limits().max_storage_buffer_binding_size;
    let pred_words = if input.kind == PredKind::Labels {
        b * n
    } else {
        b * c * n
    };
    let target_words = if input.multi_hot { b * c * n } else { b * n };
    for (name, words) in [("pred", pred_words), ("target", target_words)] {
        if 4 * words as u64 > max_binding {
            return Err(Error::TooLarge(format!(
                "metrics: `{name}` needs a {}-byte binding, the device allows {max_binding}",
                4 * words
            )));
        }
    }
    // wgpu zero-initialises new buffers: the counts start at 0.
    let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
    // [B, C, 3] counts, the status word, then [B] kept pixels (multi-hot targets).
    let counts = scratch(dev, "segloss.counts", 4 * (3 * b * c + 1 + b) as u64, usage);
    let placeholder = scratch(dev, "segloss.placeholder", 16, wgpu::BufferUsages::STORAGE);
    let wg = gpu.kernels.geometry().wg;
    let per_class = input.multi_hot || matches!(input.kind, PredKind::Threshold(_));
    let argmax = input.kind == PredKind::Argmax;
    let cpu = gpu.info.device_type == wgpu::DeviceType::Cpu;
    let px = pixels_per_invocation(c, per_class, argmax, cpu);
    let per_group = (wg * px) as usize;
    let window = per_group * crate::kernels::DIM_MAX as usize;
    let rows = b * c.div_ceil(CHUNK);
    let (y, z) = fold(rows);
    for base in (0..n).step_by(window) {
        let len = window.min(n - base);
        let params = CountParams {
            batch: b as u32,
            classes: c as u32,
            pixels: n as u32,
            scores: match input.kind {
                PredKind::Labels => 0,
                PredKind::Argmax => 1,
                PredKind::Threshold(_) => 2,
            },
            multi_hot: u32::from(input.multi_hot),
            cut: match input.kind {
                PredKind::Threshold(cut) => cut,
                _ => 0.0,
            },
            ignore: input.ignore.unwrap_or(0),
            has_ignore: u32::from(input.ignore.is_some()),
            has_mask: u32::from(input.mask.is_some()),
            pixel_base: base as u32,
            px,
        };
        let params = upload(
            dev,
            "segloss.count_params",
            bytemuck::bytes_of(&params),
            wgpu::BufferUsages::STORAGE,
        )?;
        Bindings {
            params: params.as_entire_binding(),
            pred: range(input.pred, 4 * pred_words as u64),
            target: range(input.target, 4 * target_words as u64),
            mask: match input.mask {
                Some(m) => range(m, mask_buffer_bytes(b * n) as u64),
                None => placeholder.as_entire_binding(),
            },
            counts: counts.as_entire_binding(),
        }
        .record(
            &gpu.kernels,
            encoder,
            Default::default(),
            (len.div_ceil(per_group) as u32, y, z),
        );
    }
    Ok(DeviceCounts {
        buffer: counts,
        batch: b,
        multi_hot: input.multi_hot,
    })
}
