//! Forward + backward of segloss's soft Dice through segloss-burn (zero-copy, on burn's
//! default wgpu device shared with segloss) against the same soft Dice written with burn
//! tensor ops, and against segloss's own GPU-resident call on the same `wgpu::Device`,
//! alternated in one run (lavapipe on a machine without a GPU).
//!
//! `cargo run --release -p segloss-burn --example burn_bench [-- --json] [--runs N]
//! [--shape 4,19,512,512]`
//!
//! Each row: `{"impl": "segloss" | "burn-ops" | "segloss-resident", "shape": [...],
//! "target": "soft" | "index", "ms": x, "melem_per_s": x}`. The inputs are on the device
//! before the clock starts; a step is forward + backward + `device.sync()` (burn) or
//! encode + submit + reading the 8-byte loss (segloss's own API): the gradient is on
//! the device at the end of each.

use std::time::Instant;

use burn::tensor::{activation::softmax, Device, Int, Tensor, TensorData};
use segloss::{wgpu, GpuBatch, GpuTarget, Loss, LossOptions, Shape};
use segloss_burn::{SegLoss, SegLossConfig, Targets};
use wgpu::util::DeviceExt;

fn burn_soft_dice<const D: usize>(x: Tensor<D>, y: Tensor<D>) -> Tensor<1> {
    let p = softmax(x, 1);
    let dims = p.shape().to_vec();
    let (b, c) = (dims[0], dims[1]);
    let p: Tensor<3> = p.reshape([b as i64, c as i64, -1]);
    let y: Tensor<3> = y.reshape([b as i64, c as i64, -1]);
    let (sp, sy) = (p.clone().sum_dim(2), y.clone().sum_dim(2));
    let d = (p - y).abs().sum_dim(2);
    let tp = (sp.clone() + sy.clone() - d) / 2.0;
    let (fp, fn_) = (sp - tp.clone(), sy - tp.clone());
    let t = (tp.clone() + 1e-5) / (tp + fp * 0.5 + fn_ * 0.5 + 1e-5);
    (t.neg() + 1.0).mean()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn arg(name: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != name).nth(1)
}

/// One shape's inputs, on the burn device and in segloss's buffers.
struct Inputs<const D: usize, const DI: usize> {
    x: Tensor<D>,
    y: Tensor<D>,
    idx: Tensor<DI, Int>,
    bx: wgpu::Buffer,
    by: wgpu::Buffer,
    bidx: wgpu::Buffer,
    bgrad: wgpu::Buffer,
}

fn main() {
    let json = std::env::args().any(|a| a == "--json");
    let runs: usize = arg("--runs").and_then(|v| v.parse().ok()).unwrap_or(5);
    let shapes: Vec<Vec<usize>> = match arg("--shape") {
        Some(s) => vec![s.split(',').filter_map(|v| v.parse().ok()).collect()],
        None => vec![vec![4, 19, 512, 512], vec![1, 14, 128, 128, 128]],
    };
    let dev = segloss_burn::init_default_wgpu()
        .expect("burn's wgpu device")
        .autodiff();
    let ctx = segloss_burn::shared_context(&dev).expect("the shared segloss context");
    let opts = LossOptions::dice();
    let ours = SegLossConfig::new(opts.clone()).init().expect("loss");
    assert!(ours.is_zero_copy(&dev), "zero-copy expected on this device");
    let own = Loss::new(&ctx, opts).expect("loss");
    if !json {
        let info = ctx.backend();
        println!("device: {info:?}\n");
        println!("| shape | target | impl | ms | Melem/s |\n|---|---|---|---:|---:|");
    }
    for dims in shapes {
        match dims.len() {
            4 => bench::<4, 3>(&dims, &dev, &ctx, &ours, &own, runs, json),
            5 => bench::<5, 4>(&dims, &dev, &ctx, &ours, &own, runs, json),
            _ => eprintln!("--shape: [B, C, H, W] or [B, C, D, H, W]"),
        }
    }
}

fn inputs<const D: usize, const DI: usize>(
    dims: &[usize],
    dev: &Device,
    ctx: &segloss::Context,
) -> Inputs<D, DI> {
    let n: usize = dims.iter().product();
    let mut s = 0x9E37_79B9u32;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        s
    };
    let x: Vec<f32> = (0..n)
        .map(|_| (next() % 2000) as f32 / 250.0 - 4.0)
        .collect();
    let y: Vec<f32> = (0..n).map(|_| (next() % 1001) as f32 / 1000.0).collect();
    let idx: Vec<i32> = (0..n / dims[1])
        .map(|_| (next() % dims[1] as u32) as i32)
        .collect();
    let mut spatial = vec![dims[0]];
    spatial.extend(&dims[2..]);
    let wdev = ctx.device().expect("a GPU context");
    let storage = wgpu::BufferUsages::STORAGE;
    let buf = |bytes: &[u8]| {
        wdev.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: None,
            contents: bytes,
            usage: storage,
        })
    };
    Inputs {
        x: Tensor::from_data(TensorData::new(x.clone(), dims.to_vec()), dev),
        y: Tensor::from_data(TensorData::new(y.clone(), dims.to_vec()), dev),
        idx: Tensor::from_data(TensorData::new(idx.clone(), spatial), dev),
        bx: buf(bytemuck::cast_slice(&x)),
        by: buf(bytemuck::cast_slice(&y)),
        bidx: buf(bytemuck::cast_slice(&idx)),
        bgrad: wdev.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: 4 * n as u64,
            usage: storage,
            mapped_at_creation: false,
        }),
    }
}

#[allow(clippy::too_many_arguments)]
fn bench<const D: usize, const DI: usize>(
    dims: &[usize],
    dev: &Device,
    ctx: &segloss::Context,
    ours: &SegLoss,
    own: &Loss,
    runs: usize,
    json: bool,
) {
    let n: usize = dims.iter().product();
    let shape = Shape::new(dims).expect("shape");
    let inp = inputs::<D, DI>(dims, dev, ctx);
    dev.sync().expect("sync");
    let classes = dims[1];
    for target in ["soft", "index"] {
        let soft = target == "soft";
        let step_ours = || {
            let x = inp.x.clone().require_grad();
            let t = if soft {
                Targets::<D, DI>::Soft(inp.y.clone())
            } else {
                Targets::<D, DI>::Index(inp.idx.clone())
            };
            let l = ours.forward(x.clone(), t).expect("forward");
            let _g = x.grad(&l.backward()).expect("grad");
            dev.sync().expect("sync");
        };
        let step_burn = || {
            let x = inp.x.clone().require_grad();
            // Index targets one-hot encoded with burn ops, as a user would.
            let y = if soft {
                inp.y.clone()
            } else {
                inp.idx
                    .clone()
                    .one_hot_fill::<D>(classes, 1.0, 0.0, 1)
                    .float()
            };
            let l = burn_soft_dice(x.clone(), y);
            let _g = x.grad(&l.backward()).expect("grad");
            dev.sync().expect("sync");
        };
        let step_own = || {
            let gb = GpuBatch {
                shape: &shape,
                input: inp.bx.slice(..),
                target: if soft {
                    GpuTarget::Soft(inp.by.slice(..))
                } else {
                    GpuTarget::Index(inp.bidx.slice(..))
                },
                mask: None,
            };
            let r = own.run(&gb, Some(inp.bgrad.slice(..))).expect("run");
            own.read(&r).expect("read");
        };
        let steps: [(&str, &dyn Fn()); 3] = [
            ("segloss", &step_ours),
            ("burn-ops", &step_burn),
            ("segloss-resident", &step_own),
        ];
        let mut times = vec![Vec::new(); 3];
        for i in 0..=runs {
            // Rotate which goes first; run 0 warms up (pipelines, allocations).
            for k in 0..3 {
                let j = (i + k) % 3;
                let t = Instant::now();
                steps[j].1();
                if i > 0 {
                    times[j].push(t.elapsed().as_secs_f64());
                }
            }
        }
        for ((name, _), t) in steps.iter().zip(times) {
            let t = median(t);
            let melem = n as f64 / t / 1e6;
            if json {
                println!(
                    "{{\"impl\": \"{name}\", \"shape\": {dims:?}, \"target\": \"{target}\", \"ms\": {:.3}, \"melem_per_s\": {melem:.3}}}",
                    t * 1e3
                );
            } else {
                println!(
                    "| {dims:?} | {target} | {name} | {:.1} | {melem:.0} |",
                    t * 1e3
                );
            }
        }
    }
}
