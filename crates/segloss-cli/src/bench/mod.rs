//! `segloss bench`: throughput of segloss's soft Dice (softmax logits), loss and
//! loss+grad, soft and index targets, through the GPU-resident API (data already on the
//! device) and the host API (upload and readback included), next to a ceiling kernel that
//! moves the same bytes. The compound loss (0.5·CE + 0.5·soft Dice, fused) and the
//! Generalized Dice are timed in alternation with the plain loss+grad and their overhead
//! reported; the metrics (argmax + counts) get a row per shape. Each figure is the median
//! of N runs after one warm-up run.

mod ceiling;
mod data;
mod deep;
mod instructions;
mod peers;
mod timing;

use segloss::wgpu;
use segloss::{Backend, Batch, GpuBatch, GpuTarget, Loss, LossOptions, Shape, Target};

use crate::adapter::{self, AdapterArgs};
use crate::{AnyResult, Outcome};
use ceiling::Ceiling;
use data::{grad_buffer, upload, Data};
use timing::{median, peak_rss_mib, time, time_pair};

/// `segloss bench`'s arguments.
#[derive(clap::Args, Debug)]
#[command(
    long_about = "Throughput of segloss's soft Dice (softmax logits), loss and loss+grad, soft and \
index targets, GPU-resident and host API, next to a ceiling kernel that moves the same bytes; \
the compound CE+Dice and Generalized Dice overheads; the metrics (argmax + counts). A Markdown \
table, or one JSON object per row with --json. Needs a GPU adapter (lavapipe will do).",
    after_help = "Examples:\n  segloss bench\n  segloss bench --json --runs 3 --shapes 2x4x256x256,1x14x64x64x64\n  segloss bench --shapes 4x19x512x512 --peers .venv/bin/python"
)]
pub struct Args {
    /// One JSON object per row on stdout instead of the table.
    #[arg(long)]
    json: bool,
    /// Timed runs per figure (the median is reported).
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u64).range(1..))]
    runs: u64,
    /// Shapes B x C x spatial..., comma-separated; the spatial size must be a multiple
    /// of 4 (the ceiling kernel's vec4 loads).
    #[arg(long, value_delimiter = ',', value_parser = parse_shape,
          default_value = "2x4x256x256,4x19x512x512,1x14x128x128x128")]
    shapes: Vec<Vec<usize>>,
    /// A Python with torch and torchmetrics: the metrics row's PyTorch peers at
    /// 4x19x512x512, alternated with segloss in three rounds.
    #[arg(long, value_name = "PYTHON")]
    peers: Option<String>,
    /// No timing: run the workloads that `benches/instructions.sh` counts under
    /// callgrind (the ceiling's kernels, then Dice and CE+Dice, loss and loss+grad, soft
    /// and index targets, on the first shape), printing `NAME ELEMENTS` per workload.
    #[arg(long)]
    instructions: bool,
    /// Deep supervision only: a 4-scale pyramid of each shape (S, S/2, S/4, S/8), one
    /// call against 4 separate calls and one full-resolution call, soft and index
    /// targets (host API); with --peers, MONAI's DeepSupervisionLoss on PyTorch CPU too.
    #[arg(long)]
    deep: bool,
    #[command(flatten)]
    adapter: AdapterArgs,
}

/// `2x4x256x256` → [2, 4, 256, 256]: at least B, C and one spatial dimension, N % 4 == 0.
fn parse_shape(s: &str) -> Result<Vec<usize>, String> {
    let dims: Vec<usize> = s
        .split('x')
        .map(|d| {
            d.trim()
                .parse::<usize>()
                .map_err(|e| format!("{d:?} in {s:?}: {e}"))
        })
        .collect::<Result<_, _>>()?;
    if dims.len() < 3 || dims.contains(&0) {
        return Err(format!(
            "{s:?}: B x C x at least one spatial size, none 0 (e.g. 2x4x256x256)"
        ));
    }
    // The library's own check: a checked element count, at most 2^32 - 1 elements (so
    // that the spatial product below cannot overflow).
    segloss::Shape::new(&dims).map_err(|e| format!("{s:?}: {e}"))?;
    if !dims[2..].iter().product::<usize>().is_multiple_of(4) {
        return Err(format!(
            "{s:?}: the spatial size must be a multiple of 4 (vec4 ceiling kernel)"
        ));
    }
    Ok(dims)
}

/// Runs `segloss bench`.
pub fn run(args: Args) -> AnyResult<Outcome> {
    let runs = args.runs as usize;
    let ctx = adapter::context(&args.adapter)?;
    let (adapter, Some(dev)) = (ctx.backend(), ctx.device().cloned()) else {
        return Err("bench times the GPU paths and needs an adapter: none found (`segloss doctor` lists what wgpu sees)".into());
    };
    if args.instructions {
        instructions::run(&ctx, &args.shapes[0])?;
        return Ok(Outcome::Ok);
    }
    if args.deep {
        if !args.json {
            println!("| shape | target | op | API | ms per call | vs the deep call |\n|---|---|---|---|---:|---:|");
        }
        for dims in &args.shapes {
            deep::rows(&ctx, dims, runs, args.json)?;
            if let Some(py) = &args.peers {
                peers::monai_deep(py, dims, runs, args.json)?;
            }
        }
        return Ok(Outcome::Ok);
    }
    let adapter = match adapter {
        Backend::Gpu { adapter, backend } => format!("{adapter} ({backend:?})"),
        Backend::Cpu => "cpu".to_string(),
    };
    let max_binding = dev.limits().max_storage_buffer_binding_size;
    let ceilings = Ceiling::SHAPES.map(|(wg, qpi)| Ceiling::new(&dev, wg, qpi));
    let loss = Loss::new(&ctx, LossOptions::dice())?;
    let compound = Loss::new(&ctx, data::compound())?;
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
            runs
        );
        println!(
            "| shape | target | op | API | ms | Melem/s | GB/s | ceiling Melem/s | % of ceiling |"
        );
        println!("|---|---|---|---|---:|---:|---:|---:|---:|");
    }
    for dims in &args.shapes {
        let shape = Shape::new(dims)?;
        let len = shape.len();
        let Data {
            logits,
            soft,
            index,
        } = Data::new(&shape);
        // COPY_SRC / COPY_DST: arrays over the binding limit are copied in chunks.
        let usage = wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST;
        let up = |bytes: &[u8]| upload(&dev, bytes, usage);
        let x = up(bytemuck::cast_slice(&logits));
        let grad = grad_buffer(&dev, len, usage);
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
            // The fastest of the ceiling's shapes; none for arrays over one binding
            // (the ceiling kernel binds them whole).
            // Each shape's rate (the JSON's `ceilings`, "WGxQPI": Melem/s).
            let per_shape: Vec<(String, f64)> = if 4 * len as u64 <= max_binding {
                Ceiling::SHAPES
                    .iter()
                    .zip(&ceilings)
                    .map(|((wg, qpi), c)| {
                        let t = time(runs, || c.run(&ctx, &x, &y, &grad, len, labels_len));
                        (format!("{wg}x{qpi}"), len as f64 / t / 1e6)
                    })
                    .collect()
            } else {
                Vec::new()
            };
            let ceiling_melem = per_shape.iter().map(|(_, m)| *m).fold(f64::NAN, f64::max);
            let ceilings_json: serde_json::Map<String, serde_json::Value> = per_shape
                .iter()
                .map(|(k, m)| (k.clone(), serde_json::json!(m)))
                .collect();
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
            let resident = |l: &Loss, with_grad: bool| -> segloss::Result<()> {
                let r = l.run(&gb, with_grad.then(|| grad.slice(..)))?;
                l.read(&r).map(|_| ())
            };
            // One checked call of each loss and path first: an error (a shape too large
            // for this device) is reported, not a panic inside the timing loops.
            for l in [&loss, &compound, &gdl] {
                resident(l, true)?;
                l.forward_backward(&host_batch)?;
            }
            let resident = |l: &Loss, with_grad: bool| {
                resident(l, with_grad).expect("checked above");
            };
            // GPU-resident loss+grad, plain and compound, alternated.
            let (t_plain, t_compound, ratio) =
                time_pair(runs, || resident(&loss, true), || resident(&compound, true));
            let overhead = ratio - 1.0;
            // Generalized Dice (the same passes, classes pooled per image), alternated
            // with Dice.
            let (_, t_gdl, ratio_gdl) =
                time_pair(runs, || resident(&loss, true), || resident(&gdl, true));
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
                        ("gpu-resident", _) => time(runs, || resident(l, with_grad)),
                        ("host", _) => time(runs, || {
                            host_call(l, &host_batch, with_grad);
                        }),
                        _ => time(runs, || {
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
                                "ceiling_melem_per_s": ceiling_melem,
                                "ceilings": ceilings_json, "adapter": adapter,
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
            let queue = ctx.queue().ok_or("no queue")?;
            let mut step = || {
                let mut enc = dev.create_command_encoder(&Default::default());
                let batch = segloss::metrics::GpuMetricBatch {
                    shape: &shape,
                    pred: segloss::metrics::GpuPrediction::Scores(x.slice(..)),
                    target: segloss::metrics::GpuLabels::Index(yi.slice(..)),
                    mask: None,
                };
                m.encode(&mut enc, &batch).expect("metrics encode");
                queue.submit([enc.finish()]);
                m.state().expect("metrics state");
            };
            let t = time(runs, &mut step);
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
                let rounds = peers::alternated(py, 3, runs, || time(runs, &mut step));
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
    Ok(Outcome::Ok)
}

/// One host call: the loss, with the gradient when `with_grad`.
fn host_call(l: &Loss, batch: &segloss::Batch<'_>, with_grad: bool) {
    if with_grad {
        l.forward_backward(batch).expect("forward_backward");
    } else {
        l.forward(batch).expect("forward");
    }
}
