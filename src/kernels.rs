//! The WGSL kernels, their bind-group layouts and the pipeline cache.
//!
//! Every kernel is `shaders/<name>.wgsl` prefixed by the shared files it needs, embedded
//! at compile time. Bindings follow one convention: 0 = `Params` (a read-only storage
//! buffer, see common.wgsl), then read-only inputs, then outputs. Pipelines are built once per (kernel, variant) and cached in
//! the context.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytemuck::{Pod, Zeroable};

use crate::options::{Activation, Formulation};

const COMMON: &str = include_str!("../shaders/shared/common.wgsl");
const PIXELS: &str = include_str!("../shaders/shared/pixels.wgsl");
const LOAD_VEC4: &str = include_str!("../shaders/shared/load_vec4.wgsl");
const LOAD_SCALAR: &str = include_str!("../shaders/shared/load_scalar.wgsl");
const STORE_VEC4: &str = include_str!("../shaders/shared/store_vec4.wgsl");
const STORE_SCALAR: &str = include_str!("../shaders/shared/store_scalar.wgsl");
const PIXEL_TERMS: &str = include_str!("../shaders/shared/pixel_terms.wgsl");
const LOAD_NORMS: &str = include_str!("../shaders/shared/load_norms.wgsl");
const SOFTMAX_DOT: &str = include_str!("../shaders/shared/softmax_dot.wgsl");
const ITEMS: &str = include_str!("../shaders/shared/items.wgsl");
const REDUCE: &str = include_str!("../shaders/shared/reduce.wgsl");

/// Classes per chunk of the elementwise kernels (`CLASS_CHUNK` in common.wgsl): a
/// workgroup handles one (image, class chunk) row, so that no invocation loops over more
/// classes than this (llvmpipe ends an invocation's loops after 65 535 iterations in all).
pub const CLASS_CHUNK: usize = 256;

/// Largest workgroup count per dispatch dimension that every device allows (`DIM_MAX`
/// in common.wgsl); larger dispatches fold into a second (and third) dimension.
pub const DIM_MAX: u32 = 65535;

/// Invocations per workgroup of `coef` (`COEF_WG` in coef.wgsl).
pub const COEF_WG: u32 = 64;

/// Invocations per row of `len` items in `reduce_items` (`lanes` in items.wgsl).
pub fn lanes(len: usize) -> usize {
    let want = len.div_ceil(32);
    if want <= 1 {
        1
    } else {
        want.next_power_of_two().min(REDUCE_WG as usize)
    }
}

/// Workgroups of `reduce_items`: the image rows', then (when `classes_too`) the class
/// rows'.
pub fn reduce_items_groups(batch: usize, classes: usize, classes_too: bool) -> usize {
    let per = |len: usize| REDUCE_WG as usize / lanes(len);
    let images = batch.div_ceil(per(classes));
    images
        + if classes_too {
            classes.div_ceil(per(batch))
        } else {
            0
        }
}

/// Workgroups of `stats_reduce` for `items` items of `tiles` partial sums each.
pub fn stats_reduce_groups(items: usize, tiles: usize) -> usize {
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

/// The params block of every kernel (binding 0). Keep in sync with `shaders/shared/common.wgsl`
/// (`Params`); `tests/shaders.rs` checks the size against naga's layout.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct Params {
    pub batch: u32,
    pub classes: u32,
    pub pixels: u32,
    pub tiles: u32,
    pub class_start: u32,
    pub ignore_index: u32,
    pub has_ignore: u32,
    pub tile_base: u32,
    pub threshold: f32,
    pub alpha: f32,
    pub beta: f32,
    pub smooth_nr: f32,
    pub smooth_dr: f32,
    pub gamma: f32,
    pub w_dataset: f32,
    pub w_image: f32,
    pub w_class: f32,
    pub log_loss: u32,
    pub reduction: u32,
    pub has_weights: u32,
    pub present_all: u32,
    pub map_pixels: u32,
    pub pixel_base: u32,
    pub load_tile_base: u32,
    /// `finalize` phases: 1 summarize, 2 finish, 3 both.
    pub phase: u32,
    pub overlap_weight: f32,
    pub ce_kind: u32,
    pub ce_weight: f32,
    pub label_smoothing: f32,
    pub focal_kind: u32,
    pub focal_weight: f32,
    pub focal_gamma: f32,
    pub alpha_mode: u32,
    /// 1: `Activation::None` inputs must lie in [0, 1] (status bit 8 otherwise).
    pub check_probabilities: u32,
    pub _pad1: u32,
    pub _pad2: u32,
}

/// Workgroup size of `stats_reduce`, `reduce_items` and `finalize` (`RWG` in items.wgsl).
pub const REDUCE_WG: u32 = 256;

/// Tile geometry of the elementwise kernels: `wg` invocations × `vpt` quads of 4 pixels.
/// Chosen per adapter. CPU adapters (lavapipe) run a workgroup on one thread in SIMD
/// chunks of 8 and pay for every barrier: one SIMD chunk per workgroup ran the stats
/// pass 3× faster than 256 invocations. More quads per invocation (vpt 64) ran no
/// faster on lavapipe but made its cold pipeline compile ~40× slower (dynamically
/// indexed private arrays), so vpt stays 4. GPUs want more invocations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Geometry {
    pub wg: u32,
    pub vpt: u32,
}

impl Geometry {
    /// For CPU adapters (lavapipe, WARP, SwiftShader).
    pub const CPU: Geometry = Geometry { wg: 8, vpt: 4 };
    /// For GPUs.
    pub const GPU: Geometry = Geometry { wg: 64, vpt: 4 };

    /// The geometry for an adapter; `SEGLOSS_GEOMETRY=wg,vpt` overrides it (tuning).
    pub fn for_adapter(info: &wgpu::AdapterInfo) -> Geometry {
        if let Ok(v) = std::env::var("SEGLOSS_GEOMETRY") {
            let mut it = v.split(',').filter_map(|x| x.trim().parse::<u32>().ok());
            if let (Some(wg), Some(vpt)) = (it.next(), it.next()) {
                if wg.is_power_of_two() && (1..=256).contains(&wg) && (1..=256).contains(&vpt) {
                    return Geometry { wg, vpt };
                }
            }
        }
        if info.device_type == wgpu::DeviceType::Cpu {
            Geometry::CPU
        } else {
            Geometry::GPU
        }
    }

    /// Pixels per tile.
    pub fn tile(&self) -> u32 {
        self.wg * self.vpt * 4
    }

    /// The WGSL constants every kernel is prefixed with.
    pub fn prelude(&self) -> String {
        format!(
            "const WG: u32 = {}u;\nconst VPT: u32 = {}u;\n",
            self.wg, self.vpt
        )
    }
}

/// How a storage binding is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    ReadWrite,
}

/// The kernels of a loss call, in the order they run: `norm` (chunked softmax only) →
/// `stats` → `stats_reduce` → `reduce_items` → `finalize` → `coef` → `softmax_dot`
/// (chunked softmax only) → `grad`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    Norm,
    Stats,
    StatsReduce,
    ReduceItems,
    Finalize,
    Coef,
    SoftmaxDot,
    Grad,
}

impl Kernel {
    pub const ALL: [Kernel; 8] = [
        Kernel::Norm,
        Kernel::Stats,
        Kernel::StatsReduce,
        Kernel::ReduceItems,
        Kernel::Finalize,
        Kernel::Coef,
        Kernel::SoftmaxDot,
        Kernel::Grad,
    ];

    /// File stem = pipeline label suffix.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Norm => "norm",
            Kernel::Stats => "stats",
            Kernel::StatsReduce => "stats_reduce",
            Kernel::ReduceItems => "reduce_items",
            Kernel::Finalize => "finalize",
            Kernel::Coef => "coef",
            Kernel::SoftmaxDot => "softmax_dot",
            Kernel::Grad => "grad",
        }
    }

    /// Complete WGSL source: the geometry constants, the shared files, the kernel.
    /// `aligned` (N a multiple of 4) selects vec4 bindings over scalar ones.
    pub fn source(self, g: Geometry, aligned: bool) -> String {
        let (load, store) = if aligned {
            (LOAD_VEC4, STORE_VEC4)
        } else {
            (LOAD_SCALAR, STORE_SCALAR)
        };
        let prelude = g.prelude();
        let parts: &[&str] = match self {
            Kernel::Norm => &[
                &prelude,
                COMMON,
                load,
                PIXELS,
                include_str!("../shaders/norm.wgsl"),
            ],
            Kernel::Stats => &[
                &prelude,
                COMMON,
                load,
                PIXELS,
                PIXEL_TERMS,
                LOAD_NORMS,
                include_str!("../shaders/stats.wgsl"),
            ],
            Kernel::StatsReduce => &[
                &prelude,
                COMMON,
                REDUCE,
                include_str!("../shaders/stats_reduce.wgsl"),
            ],
            Kernel::ReduceItems => &[
                &prelude,
                COMMON,
                REDUCE,
                ITEMS,
                include_str!("../shaders/reduce_items.wgsl"),
            ],
            Kernel::Finalize => &[
                &prelude,
                COMMON,
                REDUCE,
                ITEMS,
                include_str!("../shaders/finalize.wgsl"),
            ],
            Kernel::Coef => &[
                &prelude,
                COMMON,
                ITEMS,
                include_str!("../shaders/coef.wgsl"),
            ],
            Kernel::SoftmaxDot => &[
                &prelude,
                COMMON,
                load,
                PIXELS,
                PIXEL_TERMS,
                LOAD_NORMS,
                SOFTMAX_DOT,
                include_str!("../shaders/softmax_dot.wgsl"),
            ],
            Kernel::Grad => &[
                &prelude,
                COMMON,
                load,
                PIXELS,
                PIXEL_TERMS,
                SOFTMAX_DOT,
                store,
                include_str!("../shaders/grad.wgsl"),
            ],
        };
        parts.concat()
    }

    /// The bindings in order (binding i = entry i).
    pub fn bindings(self) -> &'static [Access] {
        use Access::*;
        match self {
            Kernel::Norm => &[Read, Read, Read, Read, ReadWrite],
            Kernel::Stats => &[Read, Read, Read, Read, ReadWrite, ReadWrite, Read, Read],
            Kernel::StatsReduce => &[Read, Read, ReadWrite],
            Kernel::ReduceItems => &[Read, Read, Read, Read, ReadWrite, ReadWrite],
            Kernel::Finalize => &[
                Read, Read, ReadWrite, ReadWrite, ReadWrite, ReadWrite, ReadWrite,
            ],
            Kernel::Coef => &[
                Read, Read, Read, ReadWrite, ReadWrite, ReadWrite, Read, Read,
            ],
            Kernel::SoftmaxDot => &[Read, Read, Read, Read, Read, ReadWrite, Read, Read],
            Kernel::Grad => &[Read, Read, Read, Read, Read, ReadWrite, Read, Read],
        }
    }

    /// Whether the kernel reads the variant overrides and the aligned/scalar loads.
    pub fn has_variants(self) -> bool {
        matches!(
            self,
            Kernel::Norm | Kernel::Stats | Kernel::SoftmaxDot | Kernel::Grad
        )
    }

    /// The workgroup size the kernel declares under geometry `g`.
    pub fn workgroup_size(self, g: Geometry) -> u32 {
        match self {
            Kernel::Norm | Kernel::Stats | Kernel::SoftmaxDot | Kernel::Grad => g.wg,
            Kernel::StatsReduce | Kernel::ReduceItems | Kernel::Finalize => REDUCE_WG,
            Kernel::Coef => COEF_WG,
        }
    }
}

/// Checks that a device's limits cover what the kernels need: storage buffers per
/// stage (8, in `stats`, `coef` and `grad`), workgroup storage and invocations (`stats_reduce`). Every
/// adapter with WebGPU's default limits passes; an OpenGL ES device at the GLES 3.1
/// minimum (4 storage buffers) does not.
pub fn check_limits(limits: &wgpu::Limits, g: Geometry) -> Result<(), String> {
    let storage = Kernel::ALL
        .iter()
        .map(|k| k.bindings().len() as u32)
        .max()
        .unwrap_or(0);
    let invocations = REDUCE_WG.max(g.wg);
    let shared = 16 * invocations;
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

/// A specialisation of the elementwise kernels, set with override constants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Variant {
    pub activation: Activation,
    pub formulation: Formulation,
    pub index_target: bool,
    pub has_mask: bool,
    /// Compound cross-entropy term: 0 none, 1 softmax CE, 2 KL, 3 binary CE (an
    /// override, not a params field: lavapipe runs both sides of a data-dependent
    /// branch, so unused terms must be compiled out).
    pub ce_kind: u8,
    /// Compound focal term: 0 none, 1 sigmoid, 2 softmax.
    pub focal_kind: u8,
    /// N is a multiple of 4: vec4 bindings (a source choice, not an override).
    pub aligned: bool,
    /// A softmax over more than one class chunk: normalisers and Σ_j h_j come from
    /// `norm` and `softmax_dot` through buffers.
    pub chunked: bool,
}

impl Variant {
    /// Whether a cross-entropy or focal term is fused in.
    pub fn compound(&self) -> bool {
        self.ce_kind != 0 || self.focal_kind != 0
    }

    /// Override constants of `shaders/shared/common.wgsl`.
    pub fn constants(&self) -> [(&'static str, f64); 8] {
        let act = match self.activation {
            Activation::Softmax => 0.0,
            Activation::Sigmoid => 1.0,
            Activation::None => 2.0,
        };
        let form = match self.formulation {
            Formulation::Soft => 0.0,
            Formulation::Squared => 1.0,
            Formulation::Classic => 2.0,
        };
        [
            ("ACTIVATION", act),
            ("FORMULATION", form),
            ("INDEX_TARGET", f64::from(u8::from(self.index_target))),
            ("HAS_MASK", f64::from(u8::from(self.has_mask))),
            ("COMPOUND", f64::from(u8::from(self.compound()))),
            ("CE_KIND", f64::from(self.ce_kind)),
            ("FOCAL_KIND", f64::from(self.focal_kind)),
            ("CHUNKED", f64::from(u8::from(self.chunked))),
        ]
    }

    /// Every variant the library can build (for validation tests).
    pub fn all() -> Vec<Variant> {
        let mut v = Vec::new();
        for activation in [Activation::Softmax, Activation::Sigmoid, Activation::None] {
            for formulation in [
                Formulation::Soft,
                Formulation::Squared,
                Formulation::Classic,
            ] {
                for index_target in [false, true] {
                    for has_mask in [false, true] {
                        for aligned in [false, true] {
                            // Compound terms by activation: softmax takes the softmax
                            // CE kinds, sigmoid the binary one; focal sigmoid with both.
                            let (ce, focal): (&[u8], &[u8]) = match activation {
                                Activation::Softmax => (&[0, 1, 2], &[0, 1, 2]),
                                Activation::Sigmoid => (&[0, 3], &[0, 1]),
                                Activation::None => (&[0], &[0]),
                            };
                            let chunked: &[bool] = match activation {
                                Activation::Softmax => &[false, true],
                                _ => &[false],
                            };
                            for &ce_kind in ce {
                                for &focal_kind in focal {
                                    for &chunked in chunked {
                                        v.push(Variant {
                                            activation,
                                            formulation,
                                            index_target,
                                            has_mask,
                                            ce_kind,
                                            focal_kind,
                                            aligned,
                                            chunked,
                                        });
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        v
    }
}

/// Shader modules, layouts and the pipeline cache of one device.
pub struct Kernels {
    device: wgpu::Device,
    geometry: Geometry,
    layouts: HashMap<Kernel, (wgpu::BindGroupLayout, wgpu::PipelineLayout)>,
    /// One read-only storage binding: caller buffers are bound to it in an error scope
    /// before anything is recorded (a buffer of another device is then an error of
    /// `encode`, not a panic inside wgpu).
    probe: wgpu::BindGroupLayout,
    modules: Mutex<HashMap<(Kernel, bool), Arc<wgpu::ShaderModule>>>,
    pipelines: Mutex<HashMap<(Kernel, Variant), Arc<wgpu::ComputePipeline>>>,
}

impl Kernels {
    /// Creates the layouts and the modules of the common (aligned) case; other modules
    /// and every pipeline are built on first use and cached. The caller wraps this in
    /// an error scope.
    pub fn new(device: &wgpu::Device, geometry: Geometry) -> Self {
        let mut layouts = HashMap::new();
        for k in Kernel::ALL {
            let label = format!("segloss.{}", k.name());
            let entries: Vec<_> = k
                .bindings()
                .iter()
                .enumerate()
                .map(|(i, a)| wgpu::BindGroupLayoutEntry {
                    binding: i as u32,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: match a {
                            Access::Read => wgpu::BufferBindingType::Storage { read_only: true },
                            Access::ReadWrite => {
                                wgpu::BufferBindingType::Storage { read_only: false }
                            }
                        },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                })
                .collect();
            let bgl = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(&label),
                entries: &entries,
            });
            let pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(&label),
                bind_group_layouts: &[Some(&bgl)],
                immediate_size: 0,
            });
            layouts.insert(k, (bgl, pl));
        }
        let probe = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("segloss.probe"),
            entries: &[wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage { read_only: true },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            }],
        });
        let kernels = Kernels {
            device: device.clone(),
            geometry,
            layouts,
            probe,
            modules: Mutex::new(HashMap::new()),
            pipelines: Mutex::new(HashMap::new()),
        };
        for k in Kernel::ALL {
            kernels.module(k, true);
        }
        kernels
    }

    /// The tile geometry of this device.
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// The one-binding layout caller buffers are checked with.
    pub fn probe(&self) -> &wgpu::BindGroupLayout {
        &self.probe
    }

    /// Bind-group layout of a kernel.
    pub fn layout(&self, k: Kernel) -> &wgpu::BindGroupLayout {
        &self.layouts[&k].0
    }

    fn module(&self, k: Kernel, aligned: bool) -> Arc<wgpu::ShaderModule> {
        let aligned = aligned || !k.has_variants();
        let mut cache = self.modules.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .entry((k, aligned))
            .or_insert_with(|| {
                let label = format!("segloss.{}", k.name());
                Arc::new(
                    self.device
                        .create_shader_module(wgpu::ShaderModuleDescriptor {
                            label: Some(&label),
                            source: wgpu::ShaderSource::Wgsl(
                                k.source(self.geometry, aligned).into(),
                            ),
                        }),
                )
            })
            .clone()
    }

    /// The cached pipeline of (kernel, variant), built on first use.
    pub fn pipeline(&self, k: Kernel, v: Variant) -> Arc<wgpu::ComputePipeline> {
        let v = if k.has_variants() {
            v
        } else {
            Variant::default()
        };
        if let Some(p) = self
            .pipelines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(k, v))
        {
            return p.clone();
        }
        let module = self.module(k, v.aligned);
        let constants = v.constants();
        let label = format!("segloss.{}", k.name());
        let pipeline = Arc::new(self.device.create_compute_pipeline(
            &wgpu::ComputePipelineDescriptor {
                label: Some(&label),
                layout: Some(&self.layouts[&k].1),
                module: &module,
                entry_point: Some("main"),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants: if k.has_variants() { &constants } else { &[] },
                    zero_initialize_workgroup_memory: false,
                },
                cache: None,
            },
        ));
        let mut cache = self.pipelines.lock().unwrap_or_else(|e| e.into_inner());
        cache.entry((k, v)).or_insert(pipeline).clone()
    }
}
