//! Records one loss call into a command encoder: buffers, bind groups and the four
//! dispatches (stats → stats_reduce → finalize → grad). Nothing here submits or waits.

use crate::call::{scratch, words, Binding, Bound, Call, Window, SCRATCH_CAP};
use crate::context::Gpu;
use crate::kernels::{Geometry, Params};
use crate::options::{ActiveClasses, CrossEntropyKind, LossOptions, Reduction};
use crate::{Error, Result, Shape};

/// What a GPU-resident call reads: caller-owned buffers on the context's device.
#[derive(Clone, Copy, Debug)]
pub struct GpuBatch<'a> {
    /// `[B, C, S...]`.
    pub shape: &'a Shape,
    /// f32 `[B, C, S...]`, usage `STORAGE`.
    pub input: &'a wgpu::Buffer,
    /// Target buffer, usage `STORAGE`.
    pub target: GpuTarget<'a>,
    /// Optional keep-mask: one byte per pixel `[B, S...]` (0 = ignore), i.e. a PyTorch
    /// `bool` tensor's bytes; the buffer is padded to a multiple of 4 bytes.
    pub mask: Option<&'a wgpu::Buffer>,
}

/// Target buffer of a GPU-resident call.
#[derive(Clone, Copy, Debug)]
pub enum GpuTarget<'a> {
    /// f32 soft labels `[B, C, S...]`.
    Soft(&'a wgpu::Buffer),
    /// u32 class indices `[B, S...]`.
    Index(&'a wgpu::Buffer),
}

/// The GPU-side result of a call: a storage buffer holding
/// `[loss: f32, status: u32, values: f32 × values_len]`, readable whenever the caller
/// wants with [`crate::Loss::read`] (or copied by the caller's own code).
#[derive(Debug)]
pub struct GpuLoss {
    pub(crate) buffer: wgpu::Buffer,
    pub(crate) stats: wgpu::Buffer,
    pub(crate) values_len: usize,
    pub(crate) classes: usize,
}

impl GpuLoss {
    /// The result buffer (`STORAGE | COPY_SRC`): word 0 the loss (f32), word 1 the status
    /// bits (u32: 1 non-finite input, 2 soft target outside [0, 1], 4 class index out of
    /// range; 0 = valid), then the per-item values for `Reduction::None`.
    pub fn buffer(&self) -> &wgpu::Buffer {
        &self.buffer
    }
    /// The per-(b, c) statistics, `[B, C]` × `[tp, fp, fn, present]` f32 (`STORAGE |
    /// COPY_SRC`), for all C classes: plain sums over the kept pixels, where `present`
    /// counts pixels whose target exceeds the present(threshold) rule's threshold.
    pub fn stats_buffer(&self) -> &wgpu::Buffer {
        &self.stats
    }
    /// Number of per-item values after the two header words.
    pub fn values_len(&self) -> usize {
        self.values_len
    }
}

/// The local phase of a split GPU-resident call ([`crate::Loss::encode_stats`]): this
/// worker's per-(b, c) statistics and the shared block of plain sums, left on the GPU.
/// Sum [`GpuStats::shared_buffer`] across workers (any all-reduce), write the sum back
/// into it, then call [`crate::Loss::encode_finish`]. Layout: [`crate::Stats`].
#[derive(Debug)]
pub struct GpuStats {
    pub(crate) items: wgpu::Buffer,
    pub(crate) shared: wgpu::Buffer,
    pub(crate) status: wgpu::Buffer,
    pub(crate) out: wgpu::Buffer,
    pub(crate) shape: Shape,
    pub(crate) options: LossOptions,
    pub(crate) device: wgpu::Device,
}

impl GpuStats {
    /// This worker's per-(b, c) statistics, `[B, C]` × `[tp, fp, fn, present]` f32
    /// (`STORAGE | COPY_SRC`); compound losses add a second `[B, C]` block whose sum
    /// over classes is each image's `[ce, focal, kept pixels, ce normaliser]` (how it is
    /// split over classes is not specified).
    pub fn items_buffer(&self) -> &wgpu::Buffer {
        &self.items
    }
    /// The shared block, [`crate::Stats::shared_len`] f32 words (`STORAGE | COPY_SRC |
    /// COPY_DST`): overwrite it with the sum over workers before `encode_finish`.
    pub fn shared_buffer(&self) -> &wgpu::Buffer {
        &self.shared
    }
    /// `[0, status]` after the local phase (`STORAGE | COPY_SRC`), status as in
    /// [`GpuLoss::buffer`]; [`crate::Loss::read_shared`] checks it for you.
    pub fn status_buffer(&self) -> &wgpu::Buffer {
        &self.out
    }

    /// Statistics are finished on the device that computed them.
    pub(crate) fn check_device(&self, device: &wgpu::Device) -> Result<()> {
        if self.device != *device {
            return Err(Error::InvalidStats(
                "statistics computed on another device".into(),
            ));
        }
        Ok(())
    }
}

/// Which part of a call to record.
pub(crate) enum Phase<'a> {
    /// stats → stats_reduce → finalize (both phases) → grad.
    Whole,
    /// stats → stats_reduce → finalize (summarize).
    Stats,
    /// finalize (finish) → grad, from a local phase whose shared block may be summed.
    Finish(&'a GpuStats),
}

/// The buffers a recorded call leaves.
pub(crate) struct Encoded {
    pub out: wgpu::Buffer,
    pub items: wgpu::Buffer,
    pub shared: wgpu::Buffer,
    pub status: wgpu::Buffer,
    pub values_len: usize,
}

impl Encoded {
    pub fn into_loss(self, classes: usize) -> GpuLoss {
        GpuLoss {
            buffer: self.out,
            stats: self.items,
            values_len: self.values_len,
            classes,
        }
    }
    pub fn into_stats(
        self,
        shape: &Shape,
        options: &LossOptions,
        device: &wgpu::Device,
    ) -> GpuStats {
        GpuStats {
            device: device.clone(),
            items: self.items,
            shared: self.shared,
            status: self.status,
            out: self.out,
            shape: shape.clone(),
            options: options.clone(),
        }
    }
}

/// A buffer holding `bytes` (padded to 4), written through a mapping at creation (the
/// fast path on lavapipe: ~7 GB/s against ~1.5 GB/s for `queue.write_buffer`). Unlike
/// `wgpu::util::DeviceExt::create_buffer_init`, which panics when the mapping fails
/// (a lost or destroyed device), this returns an error.
pub(crate) fn upload(
    dev: &wgpu::Device,
    label: &str,
    bytes: &[u8],
    usage: wgpu::BufferUsages,
) -> Result<wgpu::Buffer> {
    let size = (bytes.len() as u64).div_ceil(4).max(1) * 4;
    let buf = dev.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size,
        usage,
        mapped_at_creation: true,
    });
    {
        let mut view = buf
            .get_mapped_range_mut(..)
            .map_err(|e| Error::DeviceLost(format!("cannot map `{label}`: {e}")))?;
        view.slice(..bytes.len()).copy_from_slice(bytes);
    }
    buf.unmap();
    Ok(buf)
}

/// Copies pixels `w.n0 .. w.n0 + w.len` of each of `rows` rows between a `[rows, N]`
/// array and a packed `[rows, w.len]` chunk (`to_full`: chunk → array).
fn copy_rows(
    encoder: &mut wgpu::CommandEncoder,
    src: &wgpu::Buffer,
    dst: &wgpu::Buffer,
    rows: usize,
    n: usize,
    w: &Window,
    to_full: bool,
) {
    let bytes = words(w.len);
    for r in 0..rows {
        let full = words(r * n + w.n0);
        let packed = words(r * w.len);
        let (so, d) = if to_full {
            (packed, full)
        } else {
            (full, packed)
        };
        encoder.copy_buffer_to_buffer(src, so, dst, d, bytes);
    }
}

/// The first `bytes` of `buf` as a binding.
pub(crate) fn prefix(buf: &wgpu::Buffer, bytes: u64) -> wgpu::BindingResource<'_> {
    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
        buffer: buf,
        offset: 0,
        size: wgpu::BufferSize::new(bytes),
    })
}

/// A caller buffer is of `gpu`'s device (bound to a probe layout inside an error scope,
/// so that wgpu reports rather than panics).
fn check_owned(gpu: &Gpu, name: &'static str, buf: &wgpu::Buffer) -> Result<()> {
    let scope = gpu.device.push_error_scope(wgpu::ErrorFilter::Validation);
    let _probe = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("segloss.probe"),
        layout: gpu.kernels.probe(),
        entries: &[wgpu::BindGroupEntry {
            binding: 0,
            resource: prefix(buf, 4),
        }],
    });
    match pollster::block_on(scope.pop()) {
        Some(e) => Err(Error::InvalidBuffer {
            name,
            reason: format!("not usable on this context's device (another device's?): {e}"),
        }),
        None => Ok(()),
    }
}

fn check_buffer(
    name: &'static str,
    buf: &wgpu::Buffer,
    need: u64,
    usage: wgpu::BufferUsages,
) -> Result<()> {
    if !buf.usage().contains(usage) {
        return Err(Error::InvalidBuffer {
            name,
            reason: format!("usage {:?} lacks {:?}", buf.usage(), usage),
        });
    }
    if buf.size() < need {
        return Err(Error::InvalidBuffer {
            name,
            reason: format!("{} bytes, the shape needs {need}", buf.size()),
        });
    }
    Ok(())
}

/// The params block for `options` on `shape`, with an index sentinel when targets are
/// index maps whose ignore value was remapped to `u32::MAX` on the host.
pub(crate) fn params(
    options: &LossOptions,
    shape: &Shape,
    ignore: Option<u32>,
    geometry: Geometry,
) -> Params {
    let (alpha, beta) = options.overlap.alpha_beta();
    let c = shape.classes();
    let (threshold, present_all) = match options.active_classes {
        ActiveClasses::All => (0.0, 1),
        ActiveClasses::Present { threshold } => (threshold as f32, 0),
    };
    Params {
        batch: shape.batch() as u32,
        classes: c as u32,
        pixels: shape.pixels() as u32,
        tiles: shape.pixels().div_ceil(geometry.tile() as usize) as u32,
        class_start: options.class_start(c) as u32,
        ignore_index: ignore.unwrap_or(0),
        has_ignore: u32::from(ignore.is_some()),
        tile_base: 0,
        threshold,
        alpha: alpha as f32,
        beta: beta as f32,
        smooth_nr: options.smooth_nr as f32,
        smooth_dr: options.smooth_dr as f32,
        gamma: options.gamma as f32,
        w_dataset: options.aggregation.dataset as f32,
        w_image: options.aggregation.image as f32,
        w_class: options.aggregation.class as f32,
        log_loss: u32::from(options.log_loss),
        reduction: match options.reduction {
            Reduction::Mean => 0,
            Reduction::Sum => 1,
            Reduction::None => 2,
        },
        has_weights: u32::from(options.class_weights.is_some()),
        present_all,
        map_pixels: shape.pixels() as u32,
        pixel_base: 0,
        load_tile_base: 0,
        phase: 3,
        overlap_weight: options.overlap_weight as f32,
        ce_kind: options
            .cross_entropy
            .as_ref()
            .map_or(0, |ce| match ce.kind {
                CrossEntropyKind::Softmax => 1,
                CrossEntropyKind::KlDivergence => 2,
                CrossEntropyKind::Binary => 3,
            }),
        ce_weight: options
            .cross_entropy
            .as_ref()
            .map_or(0.0, |ce| ce.weight as f32),
        label_smoothing: options
            .cross_entropy
            .as_ref()
            .map_or(0.0, |ce| ce.label_smoothing as f32),
        focal_kind: options
            .focal
            .as_ref()
            .map_or(0, |f| if f.softmax { 2 } else { 1 }),
        focal_weight: options.focal.as_ref().map_or(0.0, |f| f.weight as f32),
        focal_gamma: options.focal.as_ref().map_or(0.0, |f| f.gamma as f32),
        alpha_mode: crate::reference::pixel::alpha_mode(options),
        check_probabilities: u32::from(options.checks_probabilities()),
        _pad1: 0,
        _pad2: 0,
    }
}

/// Records a whole loss call into `encoder`. `ignore` is the ignore value as the kernel
/// sees it in the u32 target buffer.
pub(crate) fn encode(
    gpu: &Gpu,
    options: &LossOptions,
    batch: &GpuBatch<'_>,
    ignore: Option<u32>,
    grad: Option<&wgpu::Buffer>,
    encoder: &mut wgpu::CommandEncoder,
    phase: Phase<'_>,
) -> Result<Encoded> {
    let shape = batch.shape;
    let (b, c) = (shape.batch(), shape.classes());
    options.validate_for(c)?;
    if let Phase::Finish(st) = &phase {
        st.check_device(&gpu.device)?;
        if st.shape != *shape {
            return Err(Error::InvalidStats(format!(
                "statistics of shape {:?}, the batch is {:?}",
                st.shape.dims(),
                shape.dims()
            )));
        }
        if st.options != *options {
            return Err(Error::InvalidStats(
                "statistics computed with other loss options".into(),
            ));
        }
    }
    let grad = if matches!(phase, Phase::Stats) {
        None
    } else {
        grad
    };
    let storage = wgpu::BufferUsages::STORAGE;
    check_buffer("input", batch.input, words(shape.len()), storage)?;
    let (labels, index_target) = match batch.target {
        GpuTarget::Soft(t) => {
            check_buffer("target", t, words(shape.len()), storage)?;
            (t, false)
        }
        GpuTarget::Index(t) => {
            check_buffer("target", t, words(shape.map_len()), storage)?;
            (t, true)
        }
    };
    if let Some(m) = batch.mask {
        check_buffer("mask", m, shape.map_len().div_ceil(4) as u64 * 4, storage)?;
    }
    if let Some(g) = grad {
        check_buffer("grad", g, words(shape.len()), storage)?;
        // The gradient is written while the others are read: it must not be one of them.
        let aliased = [
            ("input", Some(batch.input)),
            ("target", Some(labels)),
            ("mask", batch.mask),
        ]
        .into_iter()
        .find(|(_, b)| *b == Some(g));
        if let Some((other, _)) = aliased {
            return Err(Error::InvalidBuffer {
                name: "grad",
                reason: format!("is the {other} buffer: the gradient needs a buffer of its own"),
            });
        }
    }
    check_owned(gpu, "input", batch.input)?;
    check_owned(gpu, "target", labels)?;
    if let Some(m) = batch.mask {
        check_owned(gpu, "mask", m)?;
    }
    if let Some(g) = grad {
        check_owned(gpu, "grad", g)?;
    }

    let limits = gpu.device.limits();
    let max_binding = limits.max_storage_buffer_binding_size;
    if let Some(m) = batch.mask {
        if m.size() > max_binding {
            return Err(Error::TooLarge(format!(
                "the mask needs a {}-byte binding, the device allows {max_binding}",
                m.size()
            )));
        }
    }
    let has_mask = batch.mask.is_some();
    let mut call = Call::new(gpu, options, shape, ignore, index_target, has_mask, &phase)?;

    // Windows of pixels for the elementwise kernels. Direct: the caller's buffers bound
    // in place, tiles split into dispatches of at most `max_groups`. Chunked (an array over
    // the binding limit): runs of whole tiles copied, per row, into bounded scratch
    // buffers.
    let labels_per_pixel = if index_target { b } else { b * c };
    let labels_bytes = words(labels_per_pixel * shape.pixels());
    let direct = words(shape.len()) <= max_binding && labels_bytes <= max_binding;
    let binding = if direct {
        Binding::Direct
    } else {
        let src = wgpu::BufferUsages::COPY_SRC;
        check_buffer("input", batch.input, 0, storage | src)?;
        check_buffer("target", labels, 0, storage | src)?;
        if let Some(g) = grad {
            check_buffer("grad", g, 0, storage | wgpu::BufferUsages::COPY_DST)?;
        }
        Binding::Chunk
    };
    let run = call.run(binding, max_binding.min(SCRATCH_CAP))?;
    let windows = call.windows(run, binding)?;
    let scratch = |label: &str, bytes: u64, usage| scratch(&gpu.device, label, bytes, usage);
    let (sx, sy, sg) = if direct {
        (None, None, None)
    } else {
        let cd = storage | wgpu::BufferUsages::COPY_DST;
        (
            Some(scratch("segloss.chunk_input", words(b * c * run), cd)),
            Some(scratch(
                "segloss.chunk_target",
                words(labels_per_pixel * run),
                cd,
            )),
            grad.map(|_| {
                scratch(
                    "segloss.chunk_grad",
                    words(b * c * run),
                    storage | wgpu::BufferUsages::COPY_SRC,
                )
            }),
        )
    };
    let n = shape.pixels();
    let copy_in = |encoder: &mut wgpu::CommandEncoder, w: &Window| {
        if let (Some(sx), Some(sy)) = (&sx, &sy) {
            copy_rows(encoder, batch.input, sx, b * c, n, w, false);
            copy_rows(encoder, labels, sy, labels_per_pixel, n, w, false);
        }
    };
    // Caller buffers are bound for exactly the bytes the shape needs: they may be larger
    // (pooled, reused), even larger than a binding may be.
    let bound = Bound {
        x: match &sx {
            Some(sx) => sx.as_entire_binding(),
            None => prefix(batch.input, words(shape.len())),
        },
        y: match &sy {
            Some(sy) => sy.as_entire_binding(),
            None => prefix(labels, labels_bytes),
        },
        mask: match batch.mask {
            Some(m) => prefix(m, shape.map_len().div_ceil(4) as u64 * 4),
            None => call.no_mask(),
        },
    };

    if call.local() {
        for w in &windows {
            copy_in(encoder, w);
            call.stats(encoder, w, &bound);
        }
    }
    call.finalize(encoder, &windows[0]);
    if let Some(g) = grad {
        let g_res = match &sg {
            Some(sg) => sg.as_entire_binding(),
            None => prefix(g, words(shape.len())),
        };
        for w in &windows {
            copy_in(encoder, w);
            call.grad(encoder, w, &bound, g_res.clone());
            if let Some(sg) = &sg {
                copy_rows(encoder, sg, g, b * c, n, w, true);
            }
        }
    }
    Ok(call.into_encoded())
}
