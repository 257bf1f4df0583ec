//! The ceiling kernel: `reduce` then `stream` over the same buffers as a loss+grad call
//! (`ceiling.wgsl`), the rate at which this adapter can move those bytes at all.

use segloss::wgpu::{self, util::DeviceExt};
use segloss::Context;

/// One of the ceiling's two kernels.
#[derive(Clone, Copy, Debug)]
pub enum Pass {
    /// `reduce`: reads input and target, one partial per workgroup (like the statistics).
    Reduce,
    /// `stream`: reads them again, writes one f32 per element (like the gradient).
    Stream,
}

impl Pass {
    /// The kernel's entry point.
    pub fn name(self) -> &'static str {
        match self {
            Pass::Reduce => "reduce",
            Pass::Stream => "stream",
        }
    }
}

/// The ceiling: `reduce` then `stream` over the same buffers (see ceiling.wgsl), for
/// one workgroup size and number of quads per invocation.
pub struct Ceiling {
    wg: usize,
    qpi: usize,
    reduce: wgpu::ComputePipeline,
    stream: wgpu::ComputePipeline,
}

impl Ceiling {
    /// The (workgroup size, quads per invocation) pairs the bench times; it keeps the
    /// fastest.
    pub const SHAPES: [(usize, usize); 3] = [(8, 4), (256, 4), (8, 16)];

    /// Builds the two pipelines for workgroups of `wg` invocations of `qpi` quads each.
    pub fn new(dev: &wgpu::Device, wg: usize, qpi: usize) -> Self {
        let src = format!(
            "const WG: u32 = {wg}u;\nconst QPI: u32 = {qpi}u;\n{}",
            include_str!("ceiling.wgsl")
        );
        let module = dev.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("bench.ceiling"),
            source: wgpu::ShaderSource::Wgsl(src.into()),
        });
        let pipe = |entry| {
            dev.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: None,
                module: &module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            })
        };
        Ceiling {
            wg,
            qpi,
            reduce: pipe("reduce"),
            stream: pipe("stream"),
        }
    }

    /// Runs both kernels over `x` (`len` f32), `y` (`labels_len` words) into `out`.
    pub fn run(
        &self,
        ctx: &Context,
        x: &wgpu::Buffer,
        y: &wgpu::Buffer,
        out: &wgpu::Buffer,
        len: usize,
        labels_len: usize,
    ) {
        self.run_pipelines(
            ctx,
            &[&self.reduce, &self.stream],
            x,
            y,
            out,
            len,
            labels_len,
        );
    }

    /// Runs one of the two kernels (`segloss bench --instructions` counts them apart).
    #[allow(clippy::too_many_arguments)]
    pub fn run_pass(
        &self,
        ctx: &Context,
        pass: Pass,
        x: &wgpu::Buffer,
        y: &wgpu::Buffer,
        out: &wgpu::Buffer,
        len: usize,
        labels_len: usize,
    ) {
        let pipeline = match pass {
            Pass::Reduce => &self.reduce,
            Pass::Stream => &self.stream,
        };
        self.run_pipelines(ctx, &[pipeline], x, y, out, len, labels_len);
    }

    #[allow(clippy::too_many_arguments)]
    fn run_pipelines(
        &self,
        ctx: &Context,
        pipelines: &[&wgpu::ComputePipeline],
        x: &wgpu::Buffer,
        y: &wgpu::Buffer,
        out: &wgpu::Buffer,
        len: usize,
        labels_len: usize,
    ) {
        let (Some(dev), Some(queue)) = (ctx.device(), ctx.queue()) else {
            return;
        };
        let groups = (len / 4).div_ceil(self.qpi * self.wg);
        let max = dev.limits().max_compute_workgroups_per_dimension as usize;
        let mut enc = dev.create_command_encoder(&Default::default());
        let mut keep = Vec::new();
        for &pipeline in pipelines {
            for base in (0..groups).step_by(max) {
                let params = [
                    (len / 4) as u32,
                    (labels_len / 4) as u32,
                    (len / labels_len) as u32,
                    base as u32,
                ];
                let p = dev.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: None,
                    contents: bytemuck::cast_slice(&params),
                    usage: wgpu::BufferUsages::UNIFORM,
                });
                let bg = dev.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: None,
                    layout: &pipeline.get_bind_group_layout(0),
                    entries: &[
                        wgpu::BindGroupEntry {
                            binding: 0,
                            resource: p.as_entire_binding(),
                        },
                        wgpu::BindGroupEntry {
                            binding: 1,
                            resource: x.as_entire_binding(),
                        },
                        wgpu::BindGroupEntry {
                            binding: 2,
                            resource: y.as_entire_binding(),
                        },
                        wgpu::BindGroupEntry {
                            binding: 3,
                            resource: out.as_entire_binding(),
                        },
                    ],
                });
                let mut pass = enc.begin_compute_pass(&Default::default());
                pass.set_pipeline(pipeline);
                pass.set_bind_group(0, &bg, &[]);
                pass.dispatch_workgroups((groups - base).min(max) as u32, 1, 1);
                drop(pass);
                keep.push(p);
            }
        }
        queue.submit([enc.finish()]);
        dev.poll(wgpu::PollType::wait_indefinitely()).expect("poll");
    }
}
