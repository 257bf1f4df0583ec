//! The WGSL kernels, their bind-group layouts and the pipeline cache.
//!
//! Every kernel is `shaders/<name>.wgsl` prefixed by the shared files it needs, embedded
//! at compile time. Bindings follow one convention: 0 = `Params` uniform, then read-only
//! inputs, then outputs. Pipelines are built once per (kernel, variant) and cached in
//! the context.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytemuck::{Pod, Zeroable};

use crate::options::{Activation, Formulation};

const COMMON: &str = include_str!("../shaders/shared/common.wgsl");
const INPUTS: &str = include_str!("../shaders/shared/inputs.wgsl");

/// The uniform block of every kernel. Keep in sync with `shaders/shared/common.wgsl`
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
    pub _pad: [u32; 3],
}

/// Workgroup size of the elementwise and reduction kernels (`WG` in common.wgsl).
pub const WG: u32 = 256;
/// Pixels per tile, the unit of the first reduction level (`TILE` in common.wgsl).
pub const TILE: u32 = 1024;

/// How a binding is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Uniform,
    Read,
    ReadWrite,
}

/// The four kernels of a loss call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    Stats,
    StatsReduce,
    Finalize,
    Grad,
}

impl Kernel {
    pub const ALL: [Kernel; 4] = [
        Kernel::Stats,
        Kernel::StatsReduce,
        Kernel::Finalize,
        Kernel::Grad,
    ];

    /// File stem = pipeline label suffix.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Stats => "stats",
            Kernel::StatsReduce => "stats_reduce",
            Kernel::Finalize => "finalize",
            Kernel::Grad => "grad",
        }
    }

    /// Complete WGSL source (shared files first).
    pub fn source(self) -> String {
        match self {
            Kernel::Stats => [COMMON, INPUTS, include_str!("../shaders/stats.wgsl")].concat(),
            Kernel::StatsReduce => [COMMON, include_str!("../shaders/stats_reduce.wgsl")].concat(),
            Kernel::Finalize => [COMMON, include_str!("../shaders/finalize.wgsl")].concat(),
            Kernel::Grad => [COMMON, INPUTS, include_str!("../shaders/grad.wgsl")].concat(),
        }
    }

    /// The bindings in order (binding i = entry i).
    pub fn bindings(self) -> &'static [Access] {
        use Access::*;
        match self {
            Kernel::Stats => &[Uniform, Read, Read, Read, ReadWrite, ReadWrite],
            Kernel::StatsReduce => &[Uniform, Read, ReadWrite],
            Kernel::Finalize => &[Uniform, Read, Read, Read, ReadWrite, ReadWrite, ReadWrite],
            Kernel::Grad => &[Uniform, Read, Read, Read, Read, ReadWrite],
        }
    }

    /// Whether the kernel reads the variant overrides.
    pub fn has_variants(self) -> bool {
        matches!(self, Kernel::Stats | Kernel::Grad)
    }
}

/// A specialisation of the elementwise kernels, set with override constants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Variant {
    pub activation: Activation,
    pub formulation: Formulation,
    pub index_target: bool,
    pub has_mask: bool,
}

impl Variant {
    /// Override constants of `shaders/shared/common.wgsl`.
    pub fn constants(&self) -> [(&'static str, f64); 4] {
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
                        v.push(Variant {
                            activation,
                            formulation,
                            index_target,
                            has_mask,
                        });
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
    modules: HashMap<Kernel, wgpu::ShaderModule>,
    layouts: HashMap<Kernel, (wgpu::BindGroupLayout, wgpu::PipelineLayout)>,
    pipelines: Mutex<HashMap<(Kernel, Variant), Arc<wgpu::ComputePipeline>>>,
}

impl Kernels {
    /// Compiles every module and layout once (the caller wraps this in an error scope).
    pub fn new(device: &wgpu::Device) -> Self {
        let mut modules = HashMap::new();
        let mut layouts = HashMap::new();
        for k in Kernel::ALL {
            let label = format!("segloss.{}", k.name());
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(&label),
                source: wgpu::ShaderSource::Wgsl(k.source().into()),
            });
            let entries: Vec<_> = k
                .bindings()
                .iter()
                .enumerate()
                .map(|(i, a)| wgpu::BindGroupLayoutEntry {
                    binding: i as u32,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: match a {
                            Access::Uniform => wgpu::BufferBindingType::Uniform,
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
            modules.insert(k, module);
            layouts.insert(k, (bgl, pl));
        }
        Kernels {
            device: device.clone(),
            modules,
            layouts,
            pipelines: Mutex::new(HashMap::new()),
        }
    }

    /// Bind-group layout of a kernel.
    pub fn layout(&self, k: Kernel) -> &wgpu::BindGroupLayout {
        &self.layouts[&k].0
    }

    /// The cached pipeline of (kernel, variant), built on first use.
    pub fn pipeline(&self, k: Kernel, v: Variant) -> Arc<wgpu::ComputePipeline> {
        let key = (
            k,
            if k.has_variants() {
                v
            } else {
                Variant::default()
            },
        );
        let mut cache = self.pipelines.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .entry(key)
            .or_insert_with(|| {
                let constants = v.constants();
                let label = format!("segloss.{}", k.name());
                Arc::new(
                    self.device
                        .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                            label: Some(&label),
                            layout: Some(&self.layouts[&k].1),
                            module: &self.modules[&k],
                            entry_point: Some("main"),
                            compilation_options: wgpu::PipelineCompilationOptions {
                                constants: if k.has_variants() { &constants } else { &[] },
                                zero_initialize_workgroup_memory: false,
                            },
                            cache: None,
                        }),
                )
            })
            .clone()
    }
}
