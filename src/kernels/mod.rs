//! The WGSL kernels: one module per kernel (its WGSL file, its typed bindings and
//! `record`), the `#import` resolver that assembles their sources, the params block, the
//! specialisation (geometry, variant) and the per-device pipeline cache.
//!
//! A call runs, in order: `norm` (a softmax over more than one class chunk) →
//! `tile_sums` → `item_sums` → `row_sums` → `finalize` → `coef` → `softmax_dot` (chunked
//! softmax) → `grad`. Bindings follow one convention: 0 = [`Params`], then read-only
//! inputs, then outputs. Each kernel's CPU twin lives in [`crate::reference`].

/// Declares a kernel's typed bindings: a `Bindings` struct with one named field per
/// binding, in binding order, and its `record`.
macro_rules! bindings {
    ($kernel:expr; $($(#[$doc:meta])* $field:ident),+ $(,)?) => {
        /// What one dispatch binds, by name (field i is binding i).
        pub struct Bindings<'a> {
            $($(#[$doc])* pub $field: wgpu::BindingResource<'a>,)+
        }

        impl Bindings<'_> {
            /// Records one dispatch of `groups` workgroups.
            pub fn record(
                &self,
                kernels: &super::Kernels,
                encoder: &mut wgpu::CommandEncoder,
                variant: super::Variant,
                groups: (u32, u32, u32),
            ) {
                kernels.dispatch(encoder, $kernel, variant, &[$(self.$field.clone()),+], groups);
            }
        }
    };
}

mod cache;
pub mod coef;
pub mod counts;
pub mod finalize;
pub mod grad;
pub mod item_sums;
pub mod norm;
mod params;
pub mod pool;
pub mod row_sums;
pub mod softmax_dot;
pub mod tile_sums;
mod variant;
mod wgsl;

pub use cache::Kernels;
pub use params::Params;
pub use variant::{Geometry, Variant, UNROLL_MAX_CLASSES, UNROLL_MIN_PIXELS, UNROLL_VPT};

/// Classes per chunk of the elementwise kernels (`CLASS_CHUNK` in common.wgsl): a
/// workgroup handles one (image, class chunk) row, so that no invocation loops over more
/// classes than this (llvmpipe ends an invocation's loops after 65 535 iterations in all).
pub const CLASS_CHUNK: usize = 256;

/// Largest workgroup count per dispatch dimension that every device allows (`DIM_MAX`
/// in common.wgsl); larger dispatches fold into a second (and third) dimension.
pub const DIM_MAX: u32 = 65535;

/// Invocations per workgroup of `coef` (`COEF_WG` in coef.wgsl).
pub const COEF_WG: u32 = 64;

/// Invocations per row of `len` items in `row_sums` (`lanes` in items.wgsl).
pub fn lanes(len: usize) -> usize {
    let want = len.div_ceil(32);
    if want <= 1 {
        1
    } else {
        want.next_power_of_two().min(REDUCE_WG as usize)
    }
}

/// Workgroups of `row_sums`: the image rows', then (when `classes_too`) the class
/// rows'.
pub fn row_sums_groups(batch: usize, classes: usize, classes_too: bool) -> usize {
    let per = |len: usize| REDUCE_WG as usize / lanes(len);
    let images = batch.div_ceil(per(classes));
    images
        + if classes_too {
            classes.div_ceil(per(batch))
        } else {
            0
        }
}

/// Workgroups of `item_sums` for `items` items of `tiles` partial sums each.
pub fn item_sums_groups(items: usize, tiles: usize) -> usize {
    items.div_ceil(REDUCE_WG as usize / lanes(tiles))
}

/// Class chunks of `classes` classes.
pub fn chunks(classes: usize) -> usize {
    classes.div_ceil(CLASS_CHUNK)
}

/// `groups` workgroups as (x, y) ≤ DIM_MAX each, for kernels that index them with
/// `flat_group`.
pub fn fold(groups: usize) -> (u32, u32) {
    let g = groups.max(1);
    let x = g.min(DIM_MAX as usize);
    (x as u32, g.div_ceil(DIM_MAX as usize) as u32)
}

/// Workgroup size of `item_sums`, `row_sums` and `finalize` (`RWG` in reduce.wgsl).
pub const REDUCE_WG: u32 = 256;

/// How a storage binding is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// `var<storage, read>`.
    Read,
    /// `var<storage, read_write>`.
    ReadWrite,
}

/// The kernels of a loss call, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// A chunked softmax's partial normalisers.
    Norm,
    /// Per-(image, class, tile) partial sums of tp, fp, fn, present.
    TileSums,
    /// Tiles → one statistics row per (image, class) item.
    ItemSums,
    /// Per-image and per-class sums over the items.
    RowSums,
    /// The loss, the values and the global counts.
    Finalize,
    /// Each item's gradient coefficients.
    Coef,
    /// A chunked softmax's Σ_j h_j per chunk.
    SoftmaxDot,
    /// d(loss)/d(input).
    Grad,
    /// The metrics' per-(image, class) counts.
    Counts,
    /// Deep supervision: a target downsampled to a head's size.
    Pool,
}

impl Kernel {
    /// Every kernel, in the order a call runs them.
    pub const ALL: [Kernel; 10] = [
        Kernel::Norm,
        Kernel::TileSums,
        Kernel::ItemSums,
        Kernel::RowSums,
        Kernel::Finalize,
        Kernel::Coef,
        Kernel::SoftmaxDot,
        Kernel::Grad,
        Kernel::Counts,
        Kernel::Pool,
    ];

    /// File stem under `shaders/` = pipeline label suffix.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Norm => "norm",
            Kernel::TileSums => "tile_sums",
            Kernel::ItemSums => "item_sums",
            Kernel::RowSums => "row_sums",
            Kernel::Finalize => "finalize",
            Kernel::Coef => "coef",
            Kernel::SoftmaxDot => "softmax_dot",
            Kernel::Grad => "grad",
            Kernel::Counts => "counts",
            Kernel::Pool => "pool",
        }
    }

    fn file(self) -> &'static str {
        match self {
            Kernel::Norm => norm::SOURCE,
            Kernel::TileSums => tile_sums::SOURCE,
            Kernel::ItemSums => item_sums::SOURCE,
            Kernel::RowSums => row_sums::SOURCE,
            Kernel::Finalize => finalize::SOURCE,
            Kernel::Coef => coef::SOURCE,
            Kernel::SoftmaxDot => softmax_dot::SOURCE,
            Kernel::Grad => grad::SOURCE,
            Kernel::Counts => counts::SOURCE,
            Kernel::Pool => pool::SOURCE,
        }
    }

    /// Complete WGSL source: the geometry constants, then the kernel file with its
    /// `#import`s resolved. `aligned` (N a multiple of 4) selects vec4 loads and stores.
    pub fn source(self, g: Geometry, aligned: bool) -> String {
        wgsl::assemble(self.file(), g, aligned)
    }

    /// The kernel's twin unrolled over the classes (`shaders/unrolled/`), if it has one.
    pub fn unrolled_file(self) -> Option<&'static str> {
        match self {
            Kernel::TileSums => Some(tile_sums::UNROLLED),
            Kernel::Grad => Some(grad::UNROLLED),
            _ => None,
        }
    }

    /// The source a pipeline of variant `v` is built from on a device of geometry `g`:
    /// the unrolled twin (with its tile, [`Variant::geometry`]) when `v.classes` is set
    /// and the kernel has one, else [`Kernel::source`].
    pub fn variant_source(self, g: Geometry, v: Variant) -> String {
        match (self.unrolled_file(), v.classes) {
            (Some(file), c) if c > 0 => {
                wgsl::assemble_unrolled(file, v.geometry(g), v.aligned, c.into())
            }
            _ => self.source(g, v.aligned),
        }
    }

    /// The bindings in order (binding i = entry i).
    pub fn bindings(self) -> &'static [Access] {
        match self {
            Kernel::Norm => norm::ACCESS,
            Kernel::TileSums => tile_sums::ACCESS,
            Kernel::ItemSums => item_sums::ACCESS,
            Kernel::RowSums => row_sums::ACCESS,
            Kernel::Finalize => finalize::ACCESS,
            Kernel::Coef => coef::ACCESS,
            Kernel::SoftmaxDot => softmax_dot::ACCESS,
            Kernel::Grad => grad::ACCESS,
            Kernel::Counts => counts::ACCESS,
            Kernel::Pool => pool::ACCESS,
        }
    }

    /// Whether the kernel reads the variant overrides and the aligned/scalar loads.
    pub fn has_variants(self) -> bool {
        matches!(
            self,
            Kernel::Norm | Kernel::TileSums | Kernel::SoftmaxDot | Kernel::Grad
        )
    }

    /// The workgroup size the kernel declares under geometry `g`.
    pub fn workgroup_size(self, g: Geometry) -> u32 {
        match self {
            Kernel::Norm | Kernel::TileSums | Kernel::SoftmaxDot | Kernel::Grad => g.wg,
            Kernel::Counts | Kernel::Pool => g.wg,
            Kernel::ItemSums | Kernel::RowSums | Kernel::Finalize => REDUCE_WG,
            Kernel::Coef => COEF_WG,
        }
    }
}

/// Checks that a device's limits cover what the kernels need: storage buffers per
/// stage (8, in `tile_sums`, `coef` and `grad`), workgroup storage and invocations (`item_sums`). Every
/// adapter with WebGPU's default limits passes; an OpenGL ES device at the GLES 3.1
/// minimum (4 storage buffers) does not.
pub fn check_limits(limits: &wgpu::Limits, g: Geometry) -> Result<(), String> {
    let storage = Kernel::ALL
        .iter()
        .map(|k| k.bindings().len() as u32)
        .max()
        .unwrap_or(0);
    let invocations = REDUCE_WG.max(g.wg);
    // The reductions' trees (16 bytes per invocation), the metrics' class histogram.
    let shared = (16 * invocations).max(3 * 1024 * 4);
    let checks = [
        (
            "max_storage_buffers_per_shader_stage",
            limits.max_storage_buffers_per_shader_stage,
            storage,
        ),
        (
            "max_compute_invocations_per_workgroup",
            limits.max_compute_invocations_per_workgroup,
            invocations,
        ),
        (
            "max_compute_workgroup_size_x",
            limits.max_compute_workgroup_size_x,
            invocations,
        ),
        (
            "max_compute_workgroup_storage_size",
            limits.max_compute_workgroup_storage_size,
            shared,
        ),
    ];
    for (name, have, need) in checks {
        if have < need {
            return Err(format!("{name} is {have}, segloss's kernels need {need}"));
        }
    }
    Ok(())
}
