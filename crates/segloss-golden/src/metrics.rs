//! Multi-class metrics cases (`metrics.json`), checked on any context (`tests/golden.rs`
//! runs them on the GPU and the CPU backend): the JDTLosses definitions (D, I, C, worst case) within 1e-12, torchmetrics' per-class
//! IoU and Dice (f32) within 1e-6, MONAI's per-image Dice and IoU within 1e-12, its
//! `DiceMetric` / `MeanIoU` with every flag and reduction within 1e-6, and smp 0.6's
//! `get_stats` + `iou_score` / `f1_score` within 1e-12.

use segloss::metrics::monai::{DiceMetric, MeanIoU, MetricReduction};
use segloss::metrics::smp::{f1_score, get_stats, iou_score, SmpReduction};
use segloss::metrics::{Counting, Labels, Metrics, MetricsState, Prediction};
use segloss::{Context, Shape};
use serde_json::Value;

use super::{f64s, number, same_len, Report};

const WHAT: &str = "metric error (absolute)";

/// Counts the case's prediction against its labels on `ctx`, with `ignore`.
fn count(ctx: &Context, case: &Value, ignore: Option<i64>) -> Result<Metrics, String> {
    let c = case["classes"].as_u64().ok_or("no classes")? as usize;
    let dims: Vec<usize> = f64s(case, "shape")?.iter().map(|&d| d as usize).collect();
    let mut full = vec![*dims.first().ok_or("empty shape")?, c];
    full.extend(&dims[1..]);
    let shape = Shape::new(&full).map_err(|e| e.to_string())?;
    let label: Vec<i64> = f64s(case, "label")?.iter().map(|&v| v as i64).collect();
    // Scores (argmax taken) or a label map, whichever the case holds.
    let scores: Vec<f32> = match case.get("scores") {
        Some(_) => f64s(case, "scores")?.iter().map(|&v| v as f32).collect(),
        None => Vec::new(),
    };
    let pred: Vec<i64> = match case.get("pred") {
        Some(_) => f64s(case, "pred")?.iter().map(|&v| v as i64).collect(),
        None if scores.is_empty() => return Err("neither `scores` nor `pred`".into()),
        None => Vec::new(),
    };
    let p = if scores.is_empty() {
        Prediction::LabelsI64(&pred)
    } else {
        Prediction::Scores(&scores)
    };
    let mut m = Metrics::new(ctx, c, ignore)
        .map_err(|e| e.to_string())?
        .with_counting(Counting::Device);
    m.update(&shape, p, Labels::I64(&label), None)
        .map_err(|e| e.to_string())?;
    Ok(m)
}

/// Checks one case on `ctx`, noting its errors in `report`.
pub(crate) async fn check(
    ctx: &Context,
    case: &Value,
    id: &str,
    report: &mut Report,
) -> Result<(), String> {
    let mut m = count(ctx, case, case["ignore_index"].as_i64())?;
    let r = m.result_async().await.map_err(|e| e.to_string())?;
    let j = &case["jdt"];
    for (k, v) in [
        ("miou_d", r.miou_d),
        ("mdice_d", r.mdice_d),
        ("miou_i", r.miou_i),
        ("mdice_i", r.mdice_i),
        ("miou_c", r.miou_c),
        ("mdice_c", r.mdice_c),
    ] {
        let want = number(j, k)?;
        report.close(WHAT, id, &format!("JDTLosses {k}"), v, want, 1e-12);
    }
    let worst = j["worst"].as_object().ok_or("no `jdt.worst` object")?;
    if worst.is_empty() {
        return Err("`jdt.worst`: nothing to compare".into());
    }
    for (q, w) in worst {
        let qf: f64 = q.parse().map_err(|e| format!("worst {q}: {e}"))?;
        let got = m.worst_async(qf).await.map_err(|e| e.to_string())?;
        for (k, v) in [
            ("miou_i", got.miou_i),
            ("mdice_i", got.mdice_i),
            ("miou_c", got.miou_c),
            ("mdice_c", got.mdice_c),
        ] {
            let want = number(w, k)?;
            report.close(
                WHAT,
                id,
                &format!("JDTLosses worst {q} {k}"),
                v,
                want,
                1e-12,
            );
        }
    }
    // torchmetrics: classes with a union (absent ones are 0 there, `None` here).
    for (name, ours, theirs) in [
        (
            "torchmetrics IoU",
            &r.iou_d_per_class,
            f64s(case, "torchmetrics_iou_per_class")?,
        ),
        (
            "torchmetrics Dice",
            &r.dice_d_per_class,
            f64s(case, "torchmetrics_dice_per_class")?,
        ),
    ] {
        same_len(name, ours.len(), theirs.len())?;
        for (k, (o, t)) in ours.iter().zip(theirs).enumerate() {
            let got = o.unwrap_or(0.0);
            report.close(WHAT, id, &format!("{name}[{k}]"), got, t, 1e-6);
        }
    }
    // MONAI: per image, the mean over the classes its label holds (multi-class data).
    let c = r.dice_d_per_class.len();
    if let (Some(d), Some(iou), true) = (
        case["monai_dice"].as_array(),
        case["monai_iou"].as_array(),
        c > 2,
    ) {
        let mean = |row: &Value| {
            let v: Vec<f64> = row
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_f64)
                .collect();
            v.iter().sum::<f64>() / v.len() as f64
        };
        same_len("MONAI per image", d.len(), iou.len())?;
        same_len("MONAI per image", d.len(), r.per_image.len())?;
        for (b, (dr, ir)) in d.iter().zip(iou).enumerate() {
            let Some(img) = r.per_image.get(b) else {
                return Err(format!("no result for image {b}"));
            };
            let name = format!("MONAI Dice image {b}");
            report.close(
                WHAT,
                id,
                &name,
                img.mdice.unwrap_or(f64::NAN),
                mean(dr),
                1e-12,
            );
            let name = format!("MONAI IoU image {b}");
            report.close(
                WHAT,
                id,
                &name,
                img.miou.unwrap_or(f64::NAN),
                mean(ir),
                1e-12,
            );
        }
    }
    let state = m.state_async().await.map_err(|e| e.to_string())?.clone();
    smp_runs(&state, case, id, report)?;
    // MONAI's runs were recorded without an ignore index.
    if case["monai_runs"].is_array() {
        let mut m = count(ctx, case, None)?;
        let state = m.state_async().await.map_err(|e| e.to_string())?.clone();
        monai_runs(&state, case, id, report)?;
    }
    Ok(())
}

/// MONAI's `DiceMetric` / `MeanIoU` with every flag and reduction, from the counts.
fn monai_runs(
    state: &MetricsState,
    case: &Value,
    id: &str,
    report: &mut Report,
) -> Result<(), String> {
    for run in case["monai_runs"].as_array().into_iter().flatten() {
        let reduction = match run["reduction"].as_str().unwrap_or("") {
            "none" => MetricReduction::None,
            "mean" => MetricReduction::Mean,
            "sum" => MetricReduction::Sum,
            "mean_batch" => MetricReduction::MeanBatch,
            "sum_batch" => MetricReduction::SumBatch,
            "mean_channel" => MetricReduction::MeanChannel,
            _ => MetricReduction::SumChannel,
        };
        let bg = run["include_background"].as_bool().unwrap_or(true);
        let ie = run["ignore_empty"].as_bool().unwrap_or(true);
        let got = if run["metric"] == "dice" {
            DiceMetric {
                include_background: bg,
                reduction,
                ignore_empty: ie,
            }
            .compute(state)
        } else {
            MeanIoU {
                include_background: bg,
                reduction,
                ignore_empty: ie,
            }
            .compute(state)
        };
        compare(
            report,
            id,
            &format!("MONAI {run}"),
            &got.reduced,
            &f64s(run, "values")?,
            1e-6,
        );
    }
    Ok(())
}

/// smp's `get_stats` + `iou_score` / `f1_score` with every reduction.
fn smp_runs(
    state: &MetricsState,
    case: &Value,
    id: &str,
    report: &mut Report,
) -> Result<(), String> {
    let stats = get_stats(state);
    for run in case["smp_runs"].as_array().into_iter().flatten() {
        let reduction = match run["reduction"].as_str().unwrap_or("") {
            "micro" => SmpReduction::Micro,
            "macro" => SmpReduction::Macro,
            "weighted" => SmpReduction::Weighted,
            "micro-imagewise" => SmpReduction::MicroImagewise,
            "macro-imagewise" => SmpReduction::MacroImagewise,
            "weighted-imagewise" => SmpReduction::WeightedImagewise,
            _ => SmpReduction::None,
        };
        let w = run["class_weights"]
            .as_array()
            .map(|_| f64s(run, "class_weights"))
            .transpose()?;
        let f = if run["metric"] == "iou" {
            iou_score
        } else {
            f1_score
        };
        let got = f(&stats, reduction, w.as_deref(), 1.0).map_err(|e| format!("smp {run}: {e}"))?;
        compare(
            report,
            id,
            &format!("smp {run}"),
            &got,
            &f64s(run, "values")?,
            1e-12,
        );
    }
    Ok(())
}

/// Compares two arrays element by element.
fn compare(report: &mut Report, id: &str, name: &str, got: &[f64], want: &[f64], tol: f64) {
    if got.len() != want.len() {
        return report.fail(
            id,
            format!("{name}: {} values vs the peer's {}", got.len(), want.len()),
        );
    }
    for (g, w) in got.iter().zip(want) {
        report.close(WHAT, id, name, *g, *w, tol);
    }
}
