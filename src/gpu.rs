//! Records one loss call into a command encoder: buffers, bind groups and the four
//! dispatches (stats → stats_reduce → finalize → grad). Nothing here submits or waits.

use wgpu::util::DeviceExt;

use crate::context::Gpu;
use crate::kernels::{Geometry, Kernel, Params, Variant};
use crate::options::{ActiveClasses, LossOptions, Reduction};
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
/// wants with [`GpuLoss::read`] (or copied by the caller's own code).
#[derive(Debug)]
pub struct GpuLoss {
    pub(crate) buffer: wgpu::Buffer,
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
    /// Number of per-item values after the two header words.
    pub fn values_len(&self) -> usize {
        self.values_len
    }
}

/// Bytes of `n` f32/u32 words.
fn words(n: usize) -> u64 {
    4 * n as u64
}

pub(crate) fn check_buffer(
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

/// The uniform block for `options` on `shape`, with an index sentinel when targets are
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
        _pad: 0,
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
) -> Result<GpuLoss> {
    let shape = batch.shape;
    let (b, c) = (shape.batch(), shape.classes());
    options.validate_for(c)?;
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
    for (name, bytes) in [("input", words(shape.len())), ("target", labels.size())] {
        if bytes > max_binding {
            return Err(Error::TooLarge(format!(
                "`{name}` needs a {bytes}-byte binding, the device allows {max_binding}"
            )));
        }
    }
    let max_groups = limits.max_compute_workgroups_per_dimension as usize;
    if b > max_groups || c > max_groups {
        return Err(Error::TooLarge(format!(
            "B = {b} and C = {c} must each be ≤ {max_groups} (workgroups per dimension)"
        )));
    }

    let dev = &gpu.device;
    let p = params(options, shape, ignore, gpu.kernels.geometry());
    let tiles = p.tiles as usize;
    let variant = Variant {
        activation: options.activation,
        formulation: options.formulation,
        index_target,
        has_mask: batch.mask.is_some(),
        aligned: shape.pixels().is_multiple_of(4),
    };
    let rw = wgpu::BufferUsages::STORAGE;
    let scratch = |label: &str, bytes: u64, usage: wgpu::BufferUsages| {
        dev.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.max(4),
            usage,
            mapped_at_creation: false,
        })
    };
    let partials = scratch("segloss.partials", 16 * (b * c * tiles) as u64, rw);
    let status = scratch("segloss.status", 4, rw);
    let stats = scratch("segloss.stats", 16 * (b * c) as u64, rw);
    let coef = scratch("segloss.coef", 16 * (b * c) as u64, rw);
    let counts = scratch("segloss.counts", words(b + c), rw);
    let values_len = if options.reduction == Reduction::None {
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
    let weights = dev.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("segloss.weights"),
        contents: bytemuck::cast_slice(&weights),
        usage: rw,
    });
    let dummy_mask;
    let mask = match batch.mask {
        Some(m) => m,
        None => {
            dummy_mask = scratch("segloss.no_mask", 4, rw);
            &dummy_mask
        }
    };
    let uniform = |p: &Params| {
        dev.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("segloss.params"),
            contents: bytemuck::bytes_of(p),
            usage: wgpu::BufferUsages::UNIFORM,
        })
    };
    let bind = |k: Kernel, buffers: &[&wgpu::Buffer]| {
        let entries: Vec<_> = buffers
            .iter()
            .enumerate()
            .map(|(i, buf)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: buf.as_entire_binding(),
            })
            .collect();
        dev.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(&format!("segloss.{}", k.name())),
            layout: gpu.kernels.layout(k),
            entries: &entries,
        })
    };

    // The elementwise kernels cover tiles × B workgroups; more tiles than a dispatch
    // dimension allows are split into chunks whose params carry the first tile.
    let chunks: Vec<(wgpu::Buffer, u32)> = (0..tiles)
        .step_by(max_groups)
        .map(|t0| {
            let mut pc = p;
            pc.tile_base = t0 as u32;
            pc.load_tile_base = t0 as u32;
            (uniform(&pc), (tiles - t0).min(max_groups) as u32)
        })
        .collect();
    let params0 = &chunks[0].0;

    let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
        label: Some("segloss.loss"),
        timestamp_writes: None,
    });
    pass.set_pipeline(&gpu.kernels.pipeline(Kernel::Stats, variant));
    for (pbuf, count) in &chunks {
        let bg = bind(
            Kernel::Stats,
            &[pbuf, batch.input, labels, mask, &partials, &status],
        );
        pass.set_bind_group(0, &bg, &[]);
        pass.dispatch_workgroups(*count, b as u32, 1);
    }
    pass.set_pipeline(&gpu.kernels.pipeline(Kernel::StatsReduce, variant));
    pass.set_bind_group(
        0,
        &bind(Kernel::StatsReduce, &[params0, &partials, &stats]),
        &[],
    );
    pass.dispatch_workgroups(c as u32, b as u32, 1);
    pass.set_pipeline(&gpu.kernels.pipeline(Kernel::Finalize, variant));
    pass.set_bind_group(
        0,
        &bind(
            Kernel::Finalize,
            &[params0, &stats, &weights, &status, &out, &coef, &counts],
        ),
        &[],
    );
    pass.dispatch_workgroups(1, 1, 1);
    if let Some(g) = grad {
        pass.set_pipeline(&gpu.kernels.pipeline(Kernel::Grad, variant));
        for (pbuf, count) in &chunks {
            let bg = bind(Kernel::Grad, &[pbuf, batch.input, labels, mask, &coef, g]);
            pass.set_bind_group(0, &bg, &[]);
            pass.dispatch_workgroups(*count, b as u32, 1);
        }
    }
    drop(pass);
    Ok(GpuLoss {
        buffer: out,
        values_len,
        classes: c,
    })
}
