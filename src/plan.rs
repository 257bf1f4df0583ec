//! One call's plan, built once from (options, shape, targets, phase, device geometry and
//! limits) before any buffer exists: the params block, the variant, the (image, class
//! chunk) rows, the windows of pixels, the buffer sizes and every dispatch's workgroup
//! count. Every path — host, streamed, GPU-resident, split-phase — executes a plan
//! ([`crate::record::Call`]); none re-derives it. The pixels a window covers are whole
//! tiles, so each tile's partial sum sees the same pixels in the same order however the
//! call is fed: results are bit-identical across paths.

use crate::error::{Error, Result};
use crate::kernels::{self, Geometry, Params, Variant, COEF_WG};
use crate::options::{Activation, ActiveClasses, CrossEntropyKind, LossOptions, Reduction};
use crate::shape::Shape;

/// Largest chunk buffer of a chunked or streamed call (per array): bounds the extra
/// memory of inputs over the binding limit.
pub(crate) const SCRATCH_CAP: u64 = 64 << 20;

/// Most classes a GPU call takes: a chunked softmax merges ≤ 1024 chunks per pixel.
pub const MAX_CLASSES: usize = 1 << 18;

/// Most (image, class) items a GPU call takes: `finalize` loops over ≤ 2¹⁴ images or
/// 2¹⁰ class groups per invocation (llvmpipe ends loops past 65 535 iterations in all).
pub const MAX_ITEMS: usize = 1 << 22;

/// Bytes of `n` f32/u32 words.
pub(crate) fn bytes_of_words(n: usize) -> u64 {
    4 * n as u64
}

/// Row stride, in bytes (pixels), of a packed mask chunk of `len` pixels: whole words,
/// so that every image's row starts at a word (the vec4 loader reads words).
pub(crate) fn mask_stride(len: usize) -> usize {
    len.div_ceil(4) * 4
}

/// Which part of a call runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// tile_sums → … → finalize (both phases) → coef → grad.
    Whole,
    /// The local phase: statistics and the shared block (summarize).
    Stats,
    /// The global phase from a local phase's (possibly all-reduced) shared block.
    Finish,
}

/// How a window's pixels are bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Binding {
    /// The caller's whole arrays, bound in place.
    Direct,
    /// Packed `[rows, len]` chunks of input and labels; the mask bound whole.
    Chunk,
    /// Packed chunks of everything, the mask `[B, mask_stride(len)]` bytes.
    Packed,
}

/// What the targets are, as the kernels see them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Targets {
    /// Class indices (u32) rather than soft labels.
    pub index: bool,
    /// The ignore value in the u32 index buffer.
    pub ignore: Option<u32>,
    /// A keep-mask is bound.
    pub mask: bool,
}

/// A run of whole tiles: pixels `n0 .. n0 + len` of every row, and its params block.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WindowPlan {
    pub n0: usize,
    pub len: usize,
    pub params: Params,
    /// Tiles, the workgroups along x of its elementwise dispatches.
    pub tiles: u32,
}

/// One call's plan.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    pub params: Params,
    pub variant: Variant,
    pub phase: Phase,
    pub batch: usize,
    pub classes: usize,
    /// 2 for compound losses (a second `[B, C]` block of statistics), else 1.
    pub width: usize,
    /// (Image, class chunk) rows of the elementwise kernels.
    pub rows: usize,
    pub windows: Vec<WindowPlan>,
    /// Per-item values after the result's two header words.
    pub values_len: usize,
    /// Pixels of the per-pixel buffers of a chunked softmax (the widest window).
    pub pixel_span: usize,
}

impl Plan {
    /// The plan of `phase` of a call on `shape`, its windows at most `cap` bytes per
    /// array when `binding` packs them (options already validated).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        options: &LossOptions,
        shape: &Shape,
        targets: Targets,
        phase: Phase,
        geometry: Geometry,
        limits: &wgpu::Limits,
        binding: Binding,
        cap: u64,
    ) -> Result<Plan> {
        let (b, c, n) = (shape.batch(), shape.classes(), shape.pixels());
        if c > MAX_CLASSES || b * c > MAX_ITEMS {
            return Err(Error::TooLarge(format!(
                "B = {b}, C = {c}: a GPU call takes at most {MAX_CLASSES} classes and \
                 {MAX_ITEMS} (image, class) items"
            )));
        }
        let mut params = params(options, shape, targets.ignore, geometry);
        params.phase = match phase {
            Phase::Whole => 3,
            Phase::Stats => 1,
            Phase::Finish => 2,
        };
        let chunks = kernels::chunks(c);
        let activation = options.activation_for(c);
        let mut variant = Variant {
            activation,
            formulation: options.formulation,
            index_target: targets.index,
            has_mask: targets.mask,
            ce_kind: params.ce_kind as u8,
            focal_kind: params.focal_kind as u8,
            aligned: n.is_multiple_of(4),
            chunked: activation == Activation::Softmax && chunks > 1,
            classes: 0,
        };
        variant.classes = variant.unrolled_classes(geometry, c, b * n);
        // Pixels of B·C rows one window holds under `cap` (chunked and streamed calls).
        let cap_pixels = (binding != Binding::Direct).then(|| cap as usize / (4 * b * c));
        // A window holds at least one tile of B·C rows: where the unrolled kernels'
        // longer tile does not fit the cap, the class loops serve.
        if cap_pixels.is_some_and(|p| p < variant.geometry(geometry).tile() as usize) {
            variant.classes = 0;
        }
        // The unrolled kernels' tile (more quads per invocation).
        let geometry = variant.geometry(geometry);
        params.tiles = n.div_ceil(geometry.tile() as usize) as u32;
        // Windows: the whole row when bound directly, else runs of whole tiles whose
        // `B·C` rows fit `cap`; never more tiles than a dispatch dimension allows.
        let tile = geometry.tile() as usize;
        let max_run = limits.max_compute_workgroups_per_dimension as usize * tile;
        let run = match cap_pixels {
            None => max_run,
            Some(cap_pixels) => {
                let run = (cap_pixels / tile * tile).min(max_run);
                if run == 0 {
                    return Err(Error::TooLarge(format!(
                        "one tile of {tile} pixels × B·C = {} needs more than a {cap}-byte \
                         chunk",
                        b * c
                    )));
                }
                run
            }
        };
        let windows = (0..n)
            .step_by(run)
            .map(|n0| {
                let len = run.min(n - n0);
                let mut p = params;
                p.tile_base = (n0 / tile) as u32;
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
                WindowPlan {
                    n0,
                    len,
                    params: p,
                    tiles: len.div_ceil(tile) as u32,
                }
            })
            .collect();
        let values_len = if options.reduction == Reduction::None && phase != Phase::Stats {
            options.values_len(b, c)
        } else {
            0
        };
        Ok(Plan {
            params,
            variant,
            phase,
            batch: b,
            classes: c,
            width: if options.is_compound() { 2 } else { 1 },
            rows: b * chunks,
            windows,
            values_len,
            pixel_span: if binding == Binding::Direct {
                n
            } else {
                run.min(n)
            },
        })
    }

    /// Pixels of the widest window (the size of a window's chunk buffers, per row).
    pub fn widest_window(&self) -> usize {
        self.windows.iter().map(|w| w.len).max().unwrap_or(0)
    }

    /// Whether the call computes statistics (its local phase).
    pub fn local(&self) -> bool {
        self.phase != Phase::Finish
    }

    /// Whether the call finishes (loss, coefficients, gradient).
    pub fn finishes(&self) -> bool {
        self.phase != Phase::Stats
    }

    /// Bytes of the per-item statistics (`[B, C]`, or two blocks for compound losses).
    pub fn items_bytes(&self) -> u64 {
        16 * (self.width * self.batch * self.classes) as u64
    }

    /// Bytes of the per-tile partial sums.
    pub fn partials_bytes(&self) -> u64 {
        self.items_bytes() * u64::from(self.params.tiles)
    }

    /// (norms, pix) bytes of a chunked softmax's per-pixel buffers, else `None`.
    pub fn pixel_bytes(&self) -> Option<(u64, u64)> {
        self.variant.chunked.then(|| {
            let slots = (self.rows * self.pixel_span.div_ceil(4)) as u64;
            (32 * slots, 48 * slots)
        })
    }

    /// Workgroups of an elementwise dispatch over window `w`: its tiles × the rows.
    pub fn row_groups(&self, w: &WindowPlan) -> (u32, u32, u32) {
        let (y, z) = kernels::fold(self.rows);
        (w.tiles, y, z)
    }

    /// Workgroups of `item_sums`.
    pub fn item_sums_groups(&self) -> (u32, u32, u32) {
        let items = self.width * self.batch * self.classes;
        let (x, y) = kernels::fold(kernels::item_sums_groups(items, self.params.tiles as usize));
        (x, y, 1)
    }

    /// Workgroups of `row_sums`: image rows, and class rows when the call summarizes.
    pub fn row_sums_groups(&self) -> (u32, u32, u32) {
        // A local phase also summarizes the class rows of the shared block.
        let g = kernels::row_sums_groups(self.batch, self.classes, self.local());
        let (x, y) = kernels::fold(g);
        (x, y, 1)
    }

    /// Workgroups of `coef`.
    pub fn coef_groups(&self) -> (u32, u32, u32) {
        let g = (self.batch * self.classes).div_ceil(COEF_WG as usize);
        let (x, y) = kernels::fold(g);
        (x, y, 1)
    }
}

/// The params block for `options` on `shape`: the one place options become kernel
/// words. `ignore` is the ignore value as the kernels see it in a u32 index buffer.
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
    let ce = options.cross_entropy.as_ref();
    let focal = options.focal.as_ref();
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
        ce_kind: ce.map_or(0, |ce| match ce.kind {
            CrossEntropyKind::Softmax => 1,
            CrossEntropyKind::KlDivergence => 2,
            CrossEntropyKind::Binary => 3,
        }),
        ce_weight: ce.map_or(0.0, |ce| ce.weight as f32),
        label_smoothing: ce.map_or(0.0, |ce| ce.label_smoothing as f32),
        focal_kind: focal.map_or(0, |f| if f.softmax { 2 } else { 1 }),
        focal_weight: focal.map_or(0.0, |f| f.weight as f32),
        focal_gamma: focal.map_or(0.0, |f| f.gamma as f32),
        alpha_mode: crate::reference::pixel::alpha_mode(options),
        check_probabilities: u32::from(options.checks_probabilities()),
        gdl_weight: options.overlap.generalized().map_or(0, |w| match w {
            crate::options::GdlWeight::Simple => 1,
            crate::options::GdlWeight::Square => 2,
            crate::options::GdlWeight::Uniform => 3,
        }),
        grad_scale: 1.0,
    }
}
