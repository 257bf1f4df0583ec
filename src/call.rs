//! One loss call's plan, shared by every way of feeding it: the per-call buffers (status,
//! statistics, shared block, coefficients, result), the variant, and the dispatches of
//! each kernel over a window of pixels. [`crate::gpu::encode`] feeds it caller buffers
//! (bound in place, or copied in chunks on the device); [`crate::stream`] feeds it host
//! slices one chunk at a time. The pixels a window covers are always whole tiles, so each
//! tile's partial sum is computed from the same pixels in the same order however the call
//! is fed: results are bit-identical across all of them.

use crate::context::Gpu;
use crate::gpu::{params, upload, Encoded, Phase};
use crate::kernels::{Kernel, Params, Variant};
use crate::options::{LossOptions, Reduction};
use crate::{Error, Result, Shape};

/// Largest chunk buffer of a chunked or streamed call (per array): bounds the extra
/// memory of inputs over the binding limit.
pub(crate) const SCRATCH_CAP: u64 = 64 << 20;

/// Bytes of `n` f32/u32 words.
pub(crate) fn words(n: usize) -> u64 {
    4 * n as u64
}

/// A segloss-owned buffer of `bytes` (at least 4), not mapped.
pub(crate) fn scratch(
    dev: &wgpu::Device,
    label: &str,
    bytes: u64,
    usage: wgpu::BufferUsages,
) -> wgpu::Buffer {
    dev.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes.max(4),
        usage,
        mapped_at_creation: false,
    })
}

/// A run of whole tiles for the elementwise kernels: pixels `n0 .. n0 + len` of every
/// row, with the params block its dispatches read.
pub(crate) struct Window {
    params: wgpu::Buffer,
    groups: u32,
    pub n0: usize,
    pub len: usize,
}

/// How a window's pixels are bound.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Binding {
    /// The caller's whole arrays, bound in place.
    Direct,
    /// Packed `[rows, len]` chunks of input and labels; the mask bound whole.
    Chunk,
    /// Packed chunks of everything, the mask `[B, mask_stride(len)]` bytes.
    Packed,
}

/// Row stride, in bytes (pixels), of a packed mask chunk of `len` pixels: whole words,
/// so that every image's row starts at a word (the vec4 loader reads words).
pub(crate) fn mask_stride(len: usize) -> usize {
    len.div_ceil(4) * 4
}

/// What one window's dispatch binds for input, labels and mask.
pub(crate) struct Bound<'a> {
    pub x: wgpu::BindingResource<'a>,
    pub y: wgpu::BindingResource<'a>,
    pub mask: wgpu::BindingResource<'a>,
}

/// Whole buffers (segloss's own, sized exactly) as bindings.
fn whole<'a>(bufs: &[&'a wgpu::Buffer]) -> Vec<wgpu::BindingResource<'a>> {
    bufs.iter().map(|b| b.as_entire_binding()).collect()
}

/// The per-call state of one loss call.
pub(crate) struct Call<'g> {
    gpu: &'g Gpu,
    variant: Variant,
    base: Params,
    tile: usize,
    batch: usize,
    classes: usize,
    /// 2 for compound losses (a second `[B, C]` block of statistics), else 1.
    width: usize,
    local: bool,
    status: wgpu::Buffer,
    items: wgpu::Buffer,
    shared: wgpu::Buffer,
    partials: Option<wgpu::Buffer>,
    coef: wgpu::Buffer,
    aux: wgpu::Buffer,
    weights: wgpu::Buffer,
    out: wgpu::Buffer,
    no_mask: wgpu::Buffer,
    values_len: usize,
}

impl<'g> Call<'g> {
    /// Creates the per-call buffers of `phase` for `shape` (options already validated).
    pub fn new(
        gpu: &'g Gpu,
        options: &LossOptions,
        shape: &Shape,
        ignore: Option<u32>,
        index_target: bool,
        has_mask: bool,
        phase: &Phase<'_>,
    ) -> Result<Self> {
        let dev = &gpu.device;
        let (b, c) = (shape.batch(), shape.classes());
        let geometry = gpu.kernels.geometry();
        let mut base = params(options, shape, ignore, geometry);
        base.phase = match phase {
            Phase::Whole => 3,
            Phase::Stats => 1,
            Phase::Finish(_) => 2,
        };
        let width = if options.is_compound() { 2 } else { 1 };
        let max_groups = dev.limits().max_compute_workgroups_per_dimension as usize;
        if width * b > max_groups || c > max_groups {
            return Err(Error::TooLarge(format!(
                "B = {b} and C = {c} must each be ≤ {max_groups} (workgroups per dimension)"
            )));
        }
        let variant = Variant {
            activation: options.activation,
            formulation: options.formulation,
            index_target,
            has_mask,
            ce_kind: base.ce_kind as u8,
            focal_kind: base.focal_kind as u8,
            aligned: shape.pixels().is_multiple_of(4),
        };
        let rw = wgpu::BufferUsages::STORAGE;
        let src = wgpu::BufferUsages::COPY_SRC;
        let scratch = |label: &str, bytes: u64, usage| scratch(dev, label, bytes, usage);
        let local = !matches!(phase, Phase::Finish(_));
        // Item statistics: [B, C] vec4, and a second [B, C] block for compound losses.
        let (status, items, shared) = match phase {
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
        let tiles = base.tiles as usize;
        let partials =
            local.then(|| scratch("segloss.partials", 16 * (width * b * c * tiles) as u64, rw));
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
        let out = scratch("segloss.out", words(2 + values_len), rw | src);
        let weights: Vec<f32> = match &options.class_weights {
            Some(w) => w.iter().map(|&v| v as f32).collect(),
            None => vec![0.0],
        };
        let weights = upload(dev, "segloss.weights", bytemuck::cast_slice(&weights), rw)?;
        Ok(Call {
            gpu,
            variant,
            base,
            tile: geometry.tile() as usize,
            batch: b,
            classes: c,
            width,
            local,
            status,
            items,
            shared,
            partials,
            coef,
            aux,
            weights,
            out,
            no_mask: scratch("segloss.no_mask", 4, rw),
            values_len,
        })
    }

    /// Pixels per window when `binding` chunks hold at most `cap` bytes per array (the
    /// input's `B·C` rows are the widest), or the whole row when bound directly; never
    /// more tiles than a dispatch dimension allows.
    pub fn run(&self, binding: Binding, cap: u64) -> Result<usize> {
        let limits = self.gpu.device.limits();
        let max_run = limits.max_compute_workgroups_per_dimension as usize * self.tile;
        if let Binding::Direct = binding {
            return Ok(max_run);
        }
        let rows = self.batch * self.classes;
        let run = (cap as usize / (4 * rows) / self.tile * self.tile).min(max_run);
        if run == 0 {
            return Err(Error::TooLarge(format!(
                "one tile of {} pixels × B·C = {rows} needs more than a {cap}-byte chunk",
                self.tile
            )));
        }
        Ok(run)
    }

    /// The windows of `run` pixels (a multiple of the tile) covering the shape's pixels.
    pub fn windows(&self, run: usize, binding: Binding) -> Result<Vec<Window>> {
        let n = self.base.pixels as usize;
        (0..n)
            .step_by(run)
            .map(|n0| {
                let len = run.min(n - n0);
                let mut p = self.base;
                p.tile_base = (n0 / self.tile) as u32;
                match binding {
                    Binding::Direct => p.load_tile_base = p.tile_base,
                    Binding::Chunk => {
                        p.pixels = len as u32;
                        p.pixel_base = n0 as u32;
                    }
                    Binding::Packed => {
                        p.pixels = len as u32;
                        p.map_pixels = mask_stride(len) as u32;
                    }
                }
                let usage = wgpu::BufferUsages::STORAGE;
                let bytes = bytemuck::bytes_of(&p);
                Ok(Window {
                    params: upload(&self.gpu.device, "segloss.params", bytes, usage)?,
                    groups: len.div_ceil(self.tile) as u32,
                    n0,
                    len,
                })
            })
            .collect()
    }

    /// The placeholder bound when there is no mask.
    pub fn no_mask(&self) -> wgpu::BindingResource<'_> {
        self.no_mask.as_entire_binding()
    }

    fn bind(&self, k: Kernel, resources: &[wgpu::BindingResource<'_>]) -> wgpu::BindGroup {
        let entries: Vec<_> = resources
            .iter()
            .enumerate()
            .map(|(i, resource)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: resource.clone(),
            })
            .collect();
        self.gpu
            .device
            .create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(&format!("segloss.{}", k.name())),
                layout: self.gpu.kernels.layout(k),
                entries: &entries,
            })
    }

    fn dispatch(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        k: Kernel,
        bg: &wgpu::BindGroup,
        groups: (u32, u32),
    ) {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("segloss.loss"),
            timestamp_writes: None,
        });
        pass.set_pipeline(&self.gpu.kernels.pipeline(k, self.variant));
        pass.set_bind_group(0, bg, &[]);
        pass.dispatch_workgroups(groups.0, groups.1, 1);
    }

    /// `stats` over one window: its tiles' partial sums (local phases only).
    pub fn stats(&self, encoder: &mut wgpu::CommandEncoder, w: &Window, input: &Bound<'_>) {
        let Some(partials) = &self.partials else {
            return;
        };
        let bg = self.bind(
            Kernel::Stats,
            &[
                w.params.as_entire_binding(),
                input.x.clone(),
                input.y.clone(),
                input.mask.clone(),
                partials.as_entire_binding(),
                self.status.as_entire_binding(),
                self.aux.as_entire_binding(),
            ],
        );
        self.dispatch(encoder, Kernel::Stats, &bg, (w.groups, self.batch as u32));
    }

    /// After every window's `stats`: `stats_reduce` (local phases), then `finalize`.
    pub fn finalize(&self, encoder: &mut wgpu::CommandEncoder, first: &Window) {
        if let Some(partials) = &self.partials {
            let bg = self.bind(
                Kernel::StatsReduce,
                &whole(&[&first.params, partials, &self.items]),
            );
            let groups = (self.classes as u32, (self.width * self.batch) as u32);
            self.dispatch(encoder, Kernel::StatsReduce, &bg, groups);
        }
        let bg = self.bind(
            Kernel::Finalize,
            &whole(&[
                &first.params,
                &self.items,
                &self.weights,
                &self.status,
                &self.out,
                &self.coef,
                &self.shared,
            ]),
        );
        self.dispatch(encoder, Kernel::Finalize, &bg, (1, 1));
    }

    /// `grad` over one window, into `grad` (the window's pixels of every row).
    pub fn grad(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        w: &Window,
        input: &Bound<'_>,
        grad: wgpu::BindingResource<'_>,
    ) {
        let bg = self.bind(
            Kernel::Grad,
            &[
                w.params.as_entire_binding(),
                input.x.clone(),
                input.y.clone(),
                input.mask.clone(),
                self.coef.as_entire_binding(),
                grad,
                self.aux.as_entire_binding(),
            ],
        );
        self.dispatch(encoder, Kernel::Grad, &bg, (w.groups, self.batch as u32));
    }

    /// Whether this call runs the local phase (statistics).
    pub fn local(&self) -> bool {
        self.local
    }

    /// The result buffer (`[loss, status, values…]`).
    pub fn out(&self) -> &wgpu::Buffer {
        &self.out
    }

    /// The buffers the call leaves.
    pub fn into_encoded(self) -> Encoded {
        Encoded {
            out: self.out,
            items: self.items,
            shared: self.shared,
            status: self.status,
            values_len: self.values_len,
        }
    }
}
