//! One loss call's plan, shared by every way of feeding it: the per-call buffers (status,
//! statistics, shared block, coefficients, result), the variant, and the dispatches of
//! each kernel over a window of pixels. [`crate::gpu::encode`] feeds it caller buffers
//! (bound in place, or copied in chunks on the device); [`crate::stream`] feeds it host
//! slices one chunk at a time. The pixels a window covers are always whole tiles, so each
//! tile's partial sum is computed from the same pixels in the same order however the call
//! is fed: results are bit-identical across all of them.

use crate::context::Gpu;
use crate::gpu::{params, upload, Encoded, Phase};
use crate::kernels::{self, Kernel, Params, Variant, COEF_WG};
use crate::options::{LossOptions, Reduction};
use crate::{Error, Result, Shape};

/// Largest chunk buffer of a chunked or streamed call (per array): bounds the extra
/// memory of inputs over the binding limit.
pub(crate) const SCRATCH_CAP: u64 = 64 << 20;

/// Most classes a GPU call takes: a chunked softmax merges ≤ 1024 chunks per pixel.
pub const MAX_CLASSES: usize = 1 << 18;

/// Most (image, class) items a GPU call takes: `finalize` loops over ≤ 2¹⁴ images or
/// 2¹⁰ class groups per invocation (llvmpipe ends loops past 65 535 iterations in all).
pub const MAX_ITEMS: usize = 1 << 22;

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
    /// (Image, class chunk) rows of the elementwise kernels.
    rows: usize,
    /// Per-image sums and global counts of the `finalize` kernels ([2B + 1] vec4).
    work: wgpu::Buffer,
    /// Chunked softmax: partial normalisers (`norm`) and (normaliser, Σ_j h_j) per chunk
    /// (`softmax_dot`), sized by [`Call::windows`].
    norms: Option<wgpu::Buffer>,
    pix: Option<wgpu::Buffer>,
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
        if c > MAX_CLASSES || b * c > MAX_ITEMS {
            return Err(Error::TooLarge(format!(
                "B = {b}, C = {c}: a GPU call takes at most {MAX_CLASSES} classes and \
                 {MAX_ITEMS} (image, class) items"
            )));
        }
        let chunks = kernels::chunks(c);
        let variant = Variant {
            activation: options.activation_for(c),
            formulation: options.formulation,
            index_target,
            has_mask,
            ce_kind: base.ce_kind as u8,
            focal_kind: base.focal_kind as u8,
            aligned: shape.pixels().is_multiple_of(4),
            chunked: options.activation_for(c) == crate::Activation::Softmax && chunks > 1,
        };
        let rw = wgpu::BufferUsages::STORAGE;
        let src = wgpu::BufferUsages::COPY_SRC;
        let scratch = |label: &str, bytes: u64, usage| scratch(dev, label, bytes, usage);
        let local = !matches!(phase, Phase::Finish(_));
        // Item statistics: [B, C] vec4, and a second [B, C] block for compound losses.
        let (status, items, shared) = match phase {
            Phase::Finish(st) => (st.status.clone(), st.items.clone(), st.shared.clone()),
            _ => (
                scratch("segloss.status", 4, rw | src),
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
        let dst = wgpu::BufferUsages::COPY_DST;
        let out = scratch("segloss.out", words(2 + values_len), rw | src | dst);
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
            no_mask: scratch("segloss.no_mask", 16, rw),
            values_len,
            rows: b * chunks,
            work: scratch("segloss.work", 16 * (2 * b + 1) as u64, rw),
            norms: None,
            pix: None,
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

    /// The windows of `run` pixels (a multiple of the tile) covering the shape's pixels;
    /// a chunked softmax's per-pixel buffers are sized for them.
    pub fn windows(&mut self, run: usize, binding: Binding) -> Result<Vec<Window>> {
        let n = self.base.pixels as usize;
        if self.variant.chunked {
            let px = match binding {
                Binding::Direct => n,
                _ => run.min(n),
            };
            let slots = (self.rows * px.div_ceil(4)) as u64;
            let rw = wgpu::BufferUsages::STORAGE;
            let dev = &self.gpu.device;
            self.norms = Some(scratch(dev, "segloss.norms", 32 * slots, rw));
            self.pix = Some(scratch(dev, "segloss.pix", 48 * slots, rw));
        }
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
        groups: (u32, u32, u32),
    ) {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("segloss.loss"),
            timestamp_writes: None,
        });
        pass.set_pipeline(&self.gpu.kernels.pipeline(k, self.variant));
        pass.set_bind_group(0, bg, &[]);
        pass.dispatch_workgroups(groups.0, groups.1, groups.2);
    }

    /// The elementwise dispatch of a window: its tiles × the (image, class chunk) rows.
    fn row_groups(&self, w: &Window) -> (u32, u32, u32) {
        let (y, z) = kernels::fold(self.rows);
        (w.groups, y, z)
    }

    /// A placeholder for a binding the variant does not read.
    fn or_dummy<'a>(&'a self, b: &'a Option<wgpu::Buffer>) -> wgpu::BindingResource<'a> {
        b.as_ref().unwrap_or(&self.no_mask).as_entire_binding()
    }

    /// `stats` over one window (after `norm` for a chunked softmax): its tiles' partial
    /// sums (local phases only).
    pub fn stats(&self, encoder: &mut wgpu::CommandEncoder, w: &Window, input: &Bound<'_>) {
        let Some(partials) = &self.partials else {
            return;
        };
        let groups = self.row_groups(w);
        if let Some(norms) = &self.norms {
            let bg = self.bind(
                Kernel::Norm,
                &[
                    w.params.as_entire_binding(),
                    input.x.clone(),
                    input.y.clone(),
                    input.mask.clone(),
                    norms.as_entire_binding(),
                ],
            );
            self.dispatch(encoder, Kernel::Norm, &bg, groups);
        }
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
                self.or_dummy(&self.norms),
            ],
        );
        self.dispatch(encoder, Kernel::Stats, &bg, groups);
    }

    /// After every window's `stats`: `stats_reduce` (local phases), then
    /// `reduce_items` → `finalize` → `coef` (the last only when the phase finishes).
    pub fn finalize(&self, encoder: &mut wgpu::CommandEncoder, first: &Window) {
        let (b, c) = (self.batch, self.classes);
        if let Some(partials) = &self.partials {
            let bg = self.bind(
                Kernel::StatsReduce,
                &whole(&[&first.params, partials, &self.items]),
            );
            let groups = kernels::stats_reduce_groups(self.width * b * c, self.base.tiles as usize);
            let (x, y) = kernels::fold(groups);
            self.dispatch(encoder, Kernel::StatsReduce, &bg, (x, y, 1));
        }
        let summarize = self.base.phase & 1 != 0;
        let bg = self.bind(
            Kernel::ReduceItems,
            &whole(&[
                &first.params,
                &self.items,
                &self.weights,
                &self.status,
                &self.work,
                &self.shared,
            ]),
        );
        // Rows per image; per class too when this call summarizes (a finishing call's
        // class rows are the all-reduced shared block).
        let (x, y) = kernels::fold(kernels::reduce_items_groups(b, c, summarize));
        self.dispatch(encoder, Kernel::ReduceItems, &bg, (x, y, 1));
        let bg = self.bind(
            Kernel::Finalize,
            &whole(&[
                &first.params,
                &self.weights,
                &self.status,
                &self.out,
                &self.coef,
                &self.shared,
                &self.work,
            ]),
        );
        self.dispatch(encoder, Kernel::Finalize, &bg, (1, 1, 1));
        if self.base.phase & 2 != 0 {
            let bg = self.bind(
                Kernel::Coef,
                &whole(&[
                    &first.params,
                    &self.items,
                    &self.weights,
                    &self.status,
                    &self.out,
                    &self.coef,
                    &self.shared,
                    &self.work,
                ]),
            );
            let (x, y) = kernels::fold((b * c).div_ceil(COEF_WG as usize));
            self.dispatch(encoder, Kernel::Coef, &bg, (x, y, 1));
        }
        // The final status word (with `finalize`'s and `coef`'s overflow flags) into the
        // result's word 1.
        encoder.copy_buffer_to_buffer(&self.status, 0, &self.out, 4, 4);
    }

    /// `grad` over one window, into `grad` (the window's pixels of every row).
    pub fn grad(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        w: &Window,
        input: &Bound<'_>,
        grad: wgpu::BindingResource<'_>,
    ) {
        let groups = self.row_groups(w);
        if let (Some(norms), Some(pix)) = (&self.norms, &self.pix) {
            // A chunked softmax's normalisers again (the window's partials may have been
            // overwritten by later windows' `norm`), then Σ_j h_j per chunk.
            let bg = self.bind(
                Kernel::Norm,
                &[
                    w.params.as_entire_binding(),
                    input.x.clone(),
                    input.y.clone(),
                    input.mask.clone(),
                    norms.as_entire_binding(),
                ],
            );
            self.dispatch(encoder, Kernel::Norm, &bg, groups);
            let bg = self.bind(
                Kernel::SoftmaxDot,
                &[
                    w.params.as_entire_binding(),
                    input.x.clone(),
                    input.y.clone(),
                    input.mask.clone(),
                    self.coef.as_entire_binding(),
                    pix.as_entire_binding(),
                    self.aux.as_entire_binding(),
                    norms.as_entire_binding(),
                ],
            );
            self.dispatch(encoder, Kernel::SoftmaxDot, &bg, groups);
        }
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
                self.or_dummy(&self.pix),
            ],
        );
        self.dispatch(encoder, Kernel::Grad, &bg, groups);
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
