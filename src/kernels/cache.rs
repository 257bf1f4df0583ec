//! The shader modules, bind-group layouts and pipelines of one device, built on first
//! use and cached, and the one function that records a dispatch.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{Access, Geometry, Kernel, Variant};

/// Shader modules, layouts and the pipeline cache of one device.
pub struct Kernels {
    device: wgpu::Device,
    geometry: Geometry,
    layouts: HashMap<Kernel, (wgpu::BindGroupLayout, wgpu::PipelineLayout)>,
    /// One read-only storage binding: caller buffers are bound to it in an error scope
    /// before anything is recorded (a buffer of another device is then an error of
    /// `encode`, not a panic inside wgpu).
    probe: wgpu::BindGroupLayout,
    modules: Mutex<HashMap<(Kernel, bool, u8), Arc<wgpu::ShaderModule>>>,
    pipelines: Mutex<HashMap<(Kernel, Variant), Arc<wgpu::ComputePipeline>>>,
    /// Pipelines compiled so far (diagnostics: a schedule's ramp compiles none).
    built: std::sync::atomic::AtomicUsize,
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
            built: std::sync::atomic::AtomicUsize::new(0),
        };
        for k in Kernel::ALL {
            kernels.module(
                k,
                Variant {
                    aligned: true,
                    ..Variant::default()
                },
            );
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

    /// The module of `k` for `v`'s source choices (alignment, unrolled classes).
    fn module(&self, k: Kernel, v: Variant) -> Arc<wgpu::ShaderModule> {
        let v = Variant {
            aligned: v.aligned || !k.has_variants(),
            ..v
        };
        let mut cache = self.modules.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .entry((k, v.aligned, v.classes))
            .or_insert_with(|| {
                let label = format!("segloss.{}", k.name());
                Arc::new(
                    self.device
                        .create_shader_module(wgpu::ShaderModuleDescriptor {
                            label: Some(&label),
                            source: wgpu::ShaderSource::Wgsl(
                                k.variant_source(self.geometry, v).into(),
                            ),
                        }),
                )
            })
            .clone()
    }

    /// Records one dispatch of `k` (specialised on `v`) with `resources` bound in binding
    /// order, as its own compute pass (wgpu orders passes that share buffers).
    pub fn dispatch(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        k: Kernel,
        v: Variant,
        resources: &[wgpu::BindingResource<'_>],
        groups: (u32, u32, u32),
    ) {
        let entries: Vec<_> = resources
            .iter()
            .enumerate()
            .map(|(i, resource)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: resource.clone(),
            })
            .collect();
        let label = format!("segloss.{}", k.name());
        let bg = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(&label),
            layout: self.layout(k),
            entries: &entries,
        });
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(&label),
            timestamp_writes: None,
        });
        pass.set_pipeline(&self.pipeline(k, v));
        pass.set_bind_group(0, &bg, &[]);
        pass.dispatch_workgroups(groups.0, groups.1, groups.2);
    }

    /// The cached pipeline of (kernel, variant), built on first use.
    pub fn pipeline(&self, k: Kernel, v: Variant) -> Arc<wgpu::ComputePipeline> {
        let v = match (k.has_variants(), k.unrolled_file()) {
            (false, _) => Variant::default(),
            (true, None) => Variant { classes: 0, ..v },
            (true, Some(_)) => v,
        };
        if let Some(p) = self
            .pipelines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(k, v))
        {
            return p.clone();
        }
        let module = self.module(k, v);
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
        self.built
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut cache = self.pipelines.lock().unwrap_or_else(|e| e.into_inner());
        cache.entry((k, v)).or_insert(pipeline).clone()
    }

    /// How many compute pipelines this device has compiled so far.
    pub fn pipelines_built(&self) -> usize {
        self.built.load(std::sync::atomic::Ordering::Relaxed)
    }
}
