//! Throughput of segloss's soft Dice (softmax logits), loss and loss+grad, soft and index
//! targets, through the GPU-resident API (data already on the device) and the host API
//! (upload and readback included), next to a ceiling kernel that moves the same bytes.
//! The compound loss (0.5·CE + 0.5·soft Dice, fused) is timed in alternation with the
//! plain loss+grad, and its overhead over it reported.
//!
//! `cargo run --release --example bench [-- --json] [--runs N] [--shapes 2x4x256x256,...]`
//!
//! Each figure is the median of N runs (default 7) after one warm-up run.

mod peers;

use std::time::Instant;

use segloss::{Batch, Context, GpuBatch, GpuTarget, Loss, LossOptions, Shape, Target};
use wgpu::util::DeviceExt;

const DEFAULT_SHAPES: &[&[usize]] = &[
    &[2, 4, 256, 256],
    &[4, 19, 512, 512],
    &[1, 14, 128, 128, 128],
];

struct Args {
    json: bool,
    runs: usize,
    shapes: Vec<Vec<usize>>,
    /// A Python with torch and torchmetrics: the metrics row's peers, alternated.
    peers: Option<String>,
}

fn parse_args() -> Args {
    let mut a = Args {
        json: false,
        runs: 7,
        shapes: DEFAULT_SHAPES.iter().map(|s| s.to_vec()).collect(),
        peers: None,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut it = argv.iter();
    while let Some(x) = it.next() {
        match x.as_str() {
            "--json" => a.json = true,
            "--peers" => a.peers = it.next().cloned(),
            "--runs" => a.runs = it.next().and_then(|v| v.parse().ok()).unwrap_or(7).max(1),
            "--shapes" => {
                a.shapes = it
                    .next()
                    .map(|v| {
                        v.split(',')
                            .map(|s| s.split('x').filter_map(|d| d.parse().ok()).collect())
                            .collect()
                    })
                    .unwrap_or_default()
            }
            other => {
                eprintln!("unknown argument {other}");
                std::process::exit(2);
            }
        }
    }
    a
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Median seconds of `f` and of `g`, called alternately `runs` times each after one
/// warm-up call of each (so that both see the same machine noise), and the median of
/// the paired ratios g/f (robust to slow drifts in machine load).
fn time_pair(runs: usize, mut f: impl FnMut(), mut g: impl FnMut()) -> (f64, f64, f64) {
    f();
    g();
    let (mut tf, mut tg) = (Vec::new(), Vec::new());
    for i in 0..runs {
        // Alternate which goes first, so neither always follows the other.
        let one = |h: &mut dyn FnMut(), v: &mut Vec<f64>| {
            let t = Instant::now();
            h();
            v.push(t.elapsed().as_secs_f64());
        };
        if i % 2 == 0 {
            one(&mut f, &mut tf);
            one(&mut g, &mut tg);
        } else {
            one(&mut g, &mut tg);
            one(&mut f, &mut tf);
        }
    }
    let ratios = tf.iter().zip(&tg).map(|(a, b)| b / a).collect();
    (median(tf), median(tg), median(ratios))
}

/// Median seconds of `runs` calls of `f` after one warm-up call.
fn time(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// The ceiling: `reduce` then `stream` over the same buffers (see ceiling.wgsl), for
/// one workgroup size.
struct Ceiling {
    wg: usize,
    reduce: wgpu::ComputePipeline,
    stream: wgpu::ComputePipeline,
}

impl Ceiling {
    fn new(dev: &wgpu::Device, wg: usize) -> Self {
        let src = format!("const WG: u32 = {wg}u;\n{}", include_str!("ceiling.wgsl"));
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
            reduce: pipe("reduce"),
            stream: pipe("stream"),
        }
    }

    fn run(
        &self,
        ctx: &Context,
        x: &wgpu::Buffer,
        y: &wgpu::Buffer,
        out: &wgpu::Buffer,
        len: usize,
        labels_len: usize,
    ) {
        let (dev, queue) = (ctx.device().unwrap(), ctx.queue().unwrap());
        let groups = (len / 4).div_ceil(4 * self.wg);
        let max = dev.limits().max_compute_workgroups_per_dimension as usize;
        let mut enc = dev.create_command_encoder(&Default::default());
        let mut keep = Vec::new();
        for pipeline in [&self.reduce, &self.stream] {
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

fn main() -> segloss::Result<()> {
    let args = parse_args();
    if let Some(d) = args
        .shapes
        .iter()
        .find(|d| d.len() < 3 || !d[2..].iter().product::<usize>().is_multiple_of(4))
    {
        eprintln!("bench shapes need N % 4 == 0 (vec4 ceiling kernel): {d:?}");
        std::process::exit(2);
    }
    let ctx = Context::new()?;
    let adapter = match ctx.backend() {
        segloss::Backend::Gpu { adapter, backend } => format!("{adapter} ({backend:?})"),
        segloss::Backend::Cpu => unreachable!("Context::new is GPU only"),
    };
    let dev = ctx.device().unwrap().clone();
    let max_binding = dev.limits().max_storage_buffer_binding_size;
    let ceilings = [Ceiling::new(&dev, 8), Ceiling::new(&dev, 256)];
    let loss = Loss::new(&ctx, LossOptions::dice())?;
    let compound = Loss::new(
        &ctx,
        LossOptions::dice()
            .overlap_weight(0.5)
            .cross_entropy(segloss::CrossEntropy::softmax(0.5)),
    )?;
    let gdl = Loss::new(
        &ctx,
        LossOptions {
            overlap: segloss::Overlap::GeneralizedDice {
                weight: segloss::GdlWeight::Square,
            },
            ..LossOptions::dice()
        },
    )?;
    if !args.json {
        println!(
            "adapter: {adapter}; soft Dice, softmax logits; median of {} runs\n",
            args.runs
        );
        println!(
            "| shape | target | op | API | ms | Melem/s | GB/s | ceiling Melem/s | % of ceiling |"
        );
        println!("|---|---|---|---|---:|---:|---:|---:|---:|");
    }
    for dims in &args.shapes {
        let shape = Shape::new(dims)?;
        let len = shape.len();
        // Deterministic pseudo-random data (no RNG dependency).
        let mut s = 0x9E37_79B9u32;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            s
        };
        let logits: Vec<f32> = (0..len)
            .map(|_| (next() % 2000) as f32 / 250.0 - 4.0)
            .collect();
        let soft: Vec<f32> = (0..len).map(|_| (next() % 1001) as f32 / 1000.0).collect();
        let index: Vec<u32> = (0..shape.map_len())
            .map(|_| next() % shape.classes() as u32)
            .collect();
        // COPY_SRC / COPY_DST: arrays over the binding limit are copied in chunks.
        let usage = wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST;
        let up = |bytes: &[u8]| {
            dev.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: None,
                contents: bytes,
                usage,
            })
        };
        let x = up(bytemuck::cast_slice(&logits));
        let grad = dev.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: 4 * len as u64,
            usage,
            mapped_at_creation: false,
        });
        for target_kind in ["soft", "index"] {
            let (y, labels_len, target) = if target_kind == "soft" {
                (up(bytemuck::cast_slice(&soft)), len, Target::Soft(&soft))
            } else {
                (
                    up(bytemuck::cast_slice(&index)),
                    shape.map_len(),
                    Target::Index(&index),
                )
            };
            // The faster of the two workgroup sizes; none for arrays over one binding
            // (the ceiling kernel binds them whole).
            let ceiling_melem = if 4 * len as u64 <= max_binding {
                let t_ceiling = ceilings
                    .iter()
                    .map(|c| time(args.runs, || c.run(&ctx, &x, &y, &grad, len, labels_len)))
                    .fold(f64::INFINITY, f64::min);
                len as f64 / t_ceiling / 1e6
            } else {
                f64::NAN
            };
            let gb = GpuBatch {
                shape: &shape,
                input: x.slice(..),
                target: if target_kind == "soft" {
                    GpuTarget::Soft(y.slice(..))
                } else {
                    GpuTarget::Index(y.slice(..))
                },
                mask: None,
            };
            let host_batch = Batch {
                shape: &shape,
                input: &logits,
                target,
                mask: None,
            };
            let resident = |l: &Loss, with_grad: bool| {
                let r = l.run(&gb, with_grad.then(|| grad.slice(..))).expect("run");
                l.read(&r).expect("read");
            };
            // GPU-resident loss+grad, plain and compound, alternated.
            let (t_plain, t_compound, ratio) = time_pair(
                args.runs,
                || resident(&loss, true),
                || resident(&compound, true),
            );
            let overhead = ratio - 1.0;
            // Generalized Dice (the same passes, classes pooled per image), alternated
            // with Dice.
            let (_, t_gdl, ratio_gdl) =
                time_pair(args.runs, || resident(&loss, true), || resident(&gdl, true));
            let gdl_overhead = ratio_gdl - 1.0;
            for (op, with_grad, l) in [
                ("loss", false, &loss),
                ("loss+grad", true, &loss),
                ("loss+grad CE+Dice", true, &compound),
                ("loss+grad GDL", true, &gdl),
            ] {
                // Bytes the pipeline must move: input + target per pass, plus the gradient.
                let passes = if with_grad { 2.0 } else { 1.0 };
                let bytes = passes * 4.0 * (len + labels_len) as f64
                    + if with_grad { 4.0 * len as f64 } else { 0.0 };
                // "host, fresh buffers": the host call with its buffer pool emptied
                // first, as every call was before the pool.
                let apis: &[&str] = if op == "loss+grad" {
                    &["gpu-resident", "host", "host, fresh buffers"]
                } else {
                    &["gpu-resident", "host"]
                };
                for &api in apis {
                    let t = match (api, op) {
                        ("gpu-resident", "loss+grad") => t_plain,
                        ("gpu-resident", "loss+grad CE+Dice") => t_compound,
                        ("gpu-resident", "loss+grad GDL") => t_gdl,
                        ("gpu-resident", _) => time(args.runs, || resident(l, with_grad)),
                        ("host", _) => time(args.runs, || {
                            host_call(l, &host_batch, with_grad);
                        }),
                        _ => time(args.runs, || {
                            ctx.release_buffers();
                            host_call(l, &host_batch, with_grad);
                        }),
                    };
                    let melem = len as f64 / t / 1e6;
                    let gbs = bytes / t / 1e9;
                    let is_gdl = l.options().overlap.generalized().is_some();
                    let note = if api == "gpu-resident" && l.options().is_compound() {
                        format!(" (+{:.1}% vs Dice alone)", 100.0 * overhead)
                    } else if api == "gpu-resident" && is_gdl {
                        format!(" ({:+.1}% vs Dice)", 100.0 * gdl_overhead)
                    } else {
                        String::new()
                    };
                    if args.json {
                        println!(
                            "{}",
                            serde_json::json!({
                                "shape": dims, "target": target_kind, "op": op, "api": api,
                                "ms": t * 1e3, "melem_per_s": melem, "gbytes_per_s": gbs,
                                "ceiling_melem_per_s": ceiling_melem, "adapter": adapter,
                                "peak_rss_mib": peak_rss_mib(),
                                "compound_overhead": (api == "gpu-resident"
                                    && l.options().is_compound()).then_some(overhead),
                                "gdl_overhead": (api == "gpu-resident" && is_gdl)
                                    .then_some(gdl_overhead),
                            })
                        );
                    } else {
                        let (ceiling, pct) = if ceiling_melem.is_nan() {
                            ("n/a".to_string(), "n/a".to_string())
                        } else {
                            (
                                format!("{ceiling_melem:.0}"),
                                format!("{:.0}%", 100.0 * melem / ceiling_melem),
                            )
                        };
                        println!(
                            "| {dims:?} | {target_kind} | {op}{note} | {api} | {:.1} | {melem:.0} | {gbs:.2} | {ceiling} | {pct} |",
                            t * 1e3,
                        );
                    }
                }
            }
        }
        // Metrics: one batch of scores (argmax in the shader) against the index map,
        // counted on the device and read back (GPU-resident), per call.
        if shape.classes() <= segloss::kernels::counts::MAX_SCORED_CLASSES {
            let yi = up(bytemuck::cast_slice(&index));
            let mut m = segloss::metrics::Metrics::new(&ctx, shape.classes(), None)?;
            let mut step = || {
                let mut enc = dev.create_command_encoder(&Default::default());
                let batch = segloss::metrics::GpuMetricBatch {
                    shape: &shape,
                    pred: segloss::metrics::GpuPrediction::Scores(&x),
                    target: segloss::metrics::GpuLabels::Index(&yi),
                    mask: None,
                };
                m.encode(&mut enc, &batch).expect("metrics encode");
                ctx.queue().unwrap().submit([enc.finish()]);
                m.state().expect("metrics state");
            };
            let t = time(args.runs, &mut step);
            let melem = len as f64 / t / 1e6;
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "shape": dims, "target": "index", "op": "metrics (argmax + counts)",
                        "api": "gpu-resident", "ms": t * 1e3, "melem_per_s": melem,
                        "adapter": adapter,
                    })
                );
            } else {
                println!(
                    "| {dims:?} | index | metrics (argmax + counts) | gpu-resident | {:.1} | {melem:.0} | | | |",
                    t * 1e3
                );
            }
            if let (Some(py), true) = (&args.peers, *dims == peers::SHAPE) {
                let rounds = peers::alternated(py, 3, args.runs, || time(args.runs, &mut step));
                match rounds {
                    Ok(rows) => {
                        let seg = median(rows[0].1.clone());
                        for (name, ms) in &rows {
                            let t = median(ms.clone());
                            let row = serde_json::json!({
                                "impl": name, "shape": dims, "target": "index",
                                "op": "metrics (argmax + counts)", "ms": t,
                                "rounds_ms": ms, "melem_per_s": len as f64 / t / 1e3,
                                "ratio_to_segloss": t / seg,
                            });
                            if args.json {
                                println!("{row}");
                            } else {
                                println!(
                                    "| {dims:?} | index | metrics: {name} (alternated) | | {t:.1} | {:.0} | | | {:.2}x segloss |",
                                    len as f64 / t / 1e3,
                                    t / seg
                                );
                            }
                        }
                    }
                    Err(e) => eprintln!("metrics peers skipped: {e}"),
                }
            }
        }
        if !args.json {
            eprintln!("after {dims:?}: peak host RSS {:.0} MiB", peak_rss_mib());
        }
    }
    Ok(())
}

/// One host call: the loss, with the gradient when `with_grad`.
fn host_call(l: &Loss, batch: &segloss::Batch<'_>, with_grad: bool) {
    if with_grad {
        l.forward_backward(batch).expect("forward_backward");
    } else {
        l.forward(batch).expect("forward");
    }
}
