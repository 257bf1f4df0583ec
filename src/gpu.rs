//! Records one loss call into a command encoder: buffers, bind groups and the four
//! dispatches (stats → stats_reduce → finalize → grad). Nothing here submits or waits.

use crate::context::Gpu;
use crate::kernels::{Geometry, Kernel, Params, Variant};
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

/// Largest scratch buffer of a chunked call (per array): bounds the extra memory of
/// inputs over the binding limit.
const SCRATCH_CAP: u64 = 64 << 20;

/// A run of whole tiles for the elementwise kernels (see `encode`).
struct Window {
    params: wgpu::Buffer,
    groups: u32,
    n0: usize,
    len: usize,
}

/// The params block of one dispatch: a read-only storage buffer, not a uniform, in
/// every kernel (see `shaders/shared/common.wgsl`).
fn params_buffer(dev: &wgpu::Device, p: &Params) -> Result<wgpu::Buffer> {
    let usage = wgpu::BufferUsages::STORAGE;
    upload(dev, "segloss.params", bytemuck::bytes_of(p), usage)
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

/// Whole buffers (segloss's own, sized exactly) as bindings.
fn whole<'a>(bufs: &[&'a wgpu::Buffer]) -> Vec<wgpu::BindingResource<'a>> {
    bufs.iter().map(|b| b.as_entire_binding()).collect()
}

/// The first `bytes` of `buf` as a binding.
fn prefix(buf: &wgpu::Buffer, bytes: u64) -> wgpu::BindingResource<'_> {
    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
        buffer: buf,
        offset: 0,
        size: wgpu::BufferSize::new(bytes),
    })
}

/// Bytes of `n` f32/u32 words.
fn words(n: usize) -> u64 {
    4 * n as u64
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
        _pad0: 0,
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
    }

    let limits = gpu.device.limits();
    let max_binding = limits.max_storage_buffer_binding_size;
    let max_groups = limits.max_compute_workgroups_per_dimension as usize;
    let width = if options.is_compound() { 2 } else { 1 };
    if width * b > max_groups || c > max_groups {
        return Err(Error::TooLarge(format!(
            "B = {b} and C = {c} must each be ≤ {max_groups} (workgroups per dimension)"
        )));
    }
    if let Some(m) = batch.mask {
        if m.size() > max_binding {
            return Err(Error::TooLarge(format!(
                "the mask needs a {}-byte binding, the device allows {max_binding}",
                m.size()
            )));
        }
    }

    let dev = &gpu.device;
    let geometry = gpu.kernels.geometry();
    let tile = geometry.tile() as usize;
    let mut p = params(options, shape, ignore, geometry);
    p.phase = match phase {
        Phase::Whole => 3,
        Phase::Stats => 1,
        Phase::Finish(_) => 2,
    };
    let tiles = p.tiles as usize;
    let variant = Variant {
        activation: options.activation,
        formulation: options.formulation,
        index_target,
        has_mask: batch.mask.is_some(),
        ce_kind: p.ce_kind as u8,
        focal_kind: p.focal_kind as u8,
        aligned: shape.pixels().is_multiple_of(4),
    };
    // Item statistics: [B, C] vec4, and a second [B, C] block for compound losses.
    let rw = wgpu::BufferUsages::STORAGE;
    let scratch = |label: &str, bytes: u64, usage: wgpu::BufferUsages| {
        dev.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.max(4),
            usage,
            mapped_at_creation: false,
        })
    };

    // Windows of pixels for the elementwise kernels. Direct: the caller's buffers bound
    // in place, tiles split into dispatches of at most `max_groups`. Chunked (an array over
    // the binding limit): runs of whole tiles copied, per row, into bounded scratch
    // buffers. Either way each tile's partial sum is computed from the same pixels in
    // the same order, so the result is bit-identical whatever the split.
    let labels_per_pixel = if index_target { b } else { b * c };
    let labels_bytes = words(labels_per_pixel * shape.pixels());
    let direct = words(shape.len()) <= max_binding && labels_bytes <= max_binding;
    let run = if direct {
        max_groups * tile
    } else {
        let cap = max_binding.min(SCRATCH_CAP) as usize;
        let run = (cap / (4 * b * c) / tile * tile).min(max_groups * tile);
        if run == 0 {
            return Err(Error::TooLarge(format!(
                "one tile of {tile} pixels × B·C = {} needs more than the {cap}-byte binding",
                b * c
            )));
        }
        let src = wgpu::BufferUsages::COPY_SRC;
        check_buffer("input", batch.input, 0, storage | src)?;
        check_buffer("target", labels, 0, storage | src)?;
        if let Some(g) = grad {
            check_buffer("grad", g, 0, storage | wgpu::BufferUsages::COPY_DST)?;
        }
        run
    };
    let n = shape.pixels();
    let windows: Vec<Window> = (0..n)
        .step_by(run)
        .map(|n0| {
            let len = run.min(n - n0);
            let mut pw = p;
            pw.tile_base = (n0 / tile) as u32;
            if direct {
                pw.load_tile_base = pw.tile_base;
            } else {
                pw.pixels = len as u32;
                pw.pixel_base = n0 as u32;
            }
            Ok(Window {
                params: params_buffer(dev, &pw)?,
                groups: len.div_ceil(tile) as u32,
                n0,
                len,
            })
        })
        .collect::<Result<_>>()?;
    let (sx, sy, sg) = if direct {
        (None, None, None)
    } else {
        let cd = rw | wgpu::BufferUsages::COPY_DST;
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
                    rw | wgpu::BufferUsages::COPY_SRC,
                )
            }),
        )
    };
    let x_bind = sx.as_ref().unwrap_or(batch.input);
    let y_bind = sy.as_ref().unwrap_or(labels);
    let copy_in = |encoder: &mut wgpu::CommandEncoder, w: &Window| {
        if let (Some(sx), Some(sy)) = (&sx, &sy) {
            copy_rows(encoder, batch.input, sx, b * c, n, w, false);
            copy_rows(encoder, labels, sy, labels_per_pixel, n, w, false);
        }
    };

    let src = wgpu::BufferUsages::COPY_SRC;
    let (status, stats, shared) = match &phase {
        Phase::Finish(st) => (st.status.clone(), st.items.clone(), st.shared.clone()),
        _ => (
            scratch("segloss.status", 4, rw),
            scratch("segloss.stats", 16 * (width * b * c) as u64, rw | src),
            scratch(
                "segloss.shared",
                words(crate::reference::shared_len(c)),
                rw | src | wgpu::BufferUsages::COPY_DST,
            ),
        ),
    };
    // Per-(b, c) coefficients, then the pixel terms' scales.
    let coef = scratch("segloss.coef", 16 * (b * c + 1) as u64, rw);
    let aux: Vec<f32> = crate::reference::pixel::aux_table(options, c)
        .iter()
        .flatten()
        .map(|&v| v as f32)
        .collect();
    let aux = upload(dev, "segloss.aux", bytemuck::cast_slice(&aux), rw)?;
    let values_len = if options.reduction == Reduction::None && !matches!(phase, Phase::Stats) {
        options.values_len(b, c)
    } else {
        0
    };
    let out = scratch(
        "segloss.out",
        words(2 + values_len),
        rw | wgpu::BufferUsages::COPY_SRC,
    );
    let weights: Vec<f32> = match &options.class_weights {
        Some(w) => w.iter().map(|&v| v as f32).collect(),
        None => vec![0.0],
    };
    let weights = upload(dev, "segloss.weights", bytemuck::cast_slice(&weights), rw)?;
    let dummy_mask;
    let mask = match batch.mask {
        Some(m) => m,
        None => {
            dummy_mask = scratch("segloss.no_mask", 4, rw);
            &dummy_mask
        }
    };
    // Caller buffers are bound for exactly the bytes the shape needs: they may be larger
    // (pooled, reused), even larger than a binding may be.
    let mask_bytes = batch
        .mask
        .map_or(4, |_| shape.map_len().div_ceil(4) as u64 * 4);
    let mask_res = prefix(mask, mask_bytes);
    let (x_res, y_res) = if direct {
        (
            prefix(batch.input, words(shape.len())),
            prefix(labels, labels_bytes),
        )
    } else {
        (x_bind.as_entire_binding(), y_bind.as_entire_binding())
    };
    let bind = |k: Kernel, resources: &[wgpu::BindingResource<'_>]| {
        let entries: Vec<_> = resources
            .iter()
            .enumerate()
            .map(|(i, resource)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: resource.clone(),
            })
            .collect();
        dev.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(&format!("segloss.{}", k.name())),
            layout: gpu.kernels.layout(k),
            entries: &entries,
        })
    };
    let dispatch = |encoder: &mut wgpu::CommandEncoder,
                    k: Kernel,
                    bg: &wgpu::BindGroup,
                    groups: (u32, u32)| {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("segloss.loss"),
            timestamp_writes: None,
        });
        pass.set_pipeline(&gpu.kernels.pipeline(k, variant));
        pass.set_bind_group(0, bg, &[]);
        pass.dispatch_workgroups(groups.0, groups.1, 1);
    };

    let b32 = b as u32;
    let local = !matches!(phase, Phase::Finish(_));
    if local {
        let partials = scratch("segloss.partials", 16 * (width * b * c * tiles) as u64, rw);
        for w in &windows {
            copy_in(encoder, w);
            let bg = bind(
                Kernel::Stats,
                &[
                    w.params.as_entire_binding(),
                    x_res.clone(),
                    y_res.clone(),
                    mask_res.clone(),
                    partials.as_entire_binding(),
                    status.as_entire_binding(),
                    aux.as_entire_binding(),
                ],
            );
            dispatch(encoder, Kernel::Stats, &bg, (w.groups, b32));
        }
        let bg = bind(
            Kernel::StatsReduce,
            &whole(&[&windows[0].params, &partials, &stats]),
        );
        dispatch(
            encoder,
            Kernel::StatsReduce,
            &bg,
            (c as u32, (width * b) as u32),
        );
    }
    let params0 = &windows[0].params;
    let bg = bind(
        Kernel::Finalize,
        &whole(&[params0, &stats, &weights, &status, &out, &coef, &shared]),
    );
    dispatch(encoder, Kernel::Finalize, &bg, (1, 1));
    if let Some(g) = grad {
        let g_res = match &sg {
            Some(sg) => sg.as_entire_binding(),
            None => prefix(g, words(shape.len())),
        };
        for w in &windows {
            copy_in(encoder, w);
            let bg = bind(
                Kernel::Grad,
                &[
                    w.params.as_entire_binding(),
                    x_res.clone(),
                    y_res.clone(),
                    mask_res.clone(),
                    coef.as_entire_binding(),
                    g_res.clone(),
                    aux.as_entire_binding(),
                ],
            );
            dispatch(encoder, Kernel::Grad, &bg, (w.groups, b32));
            if let Some(sg) = &sg {
                copy_rows(encoder, sg, g, b * c, n, w, true);
            }
        }
    }
    Ok(Encoded {
        out,
        items: stats,
        shared,
        status,
        values_len,
    })
}
