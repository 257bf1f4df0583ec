//! segloss's metrics against the peers' (`tests/golden/make_metrics.py`): the JDTLosses
//! definitions (D, I, C and worst case at 5, 10, 25, 50, 100 %) within 1e-12,
//! torchmetrics' per-class IoU and Dice (f32) within 1e-6, MONAI's per-image, per-class
//! Dice and IoU within 1e-12 and its `DiceMetric` / `MeanIoU` with every flag and
//! reduction (f32 reductions) within 1e-6, and smp 0.6's `get_stats` + `iou_score` /
//! `f1_score` with every reduction within 1e-12 — on the CPU and on the GPU.

mod common;

use common::{f64s, zip_eq};

use segloss::metrics::{Labels, Metrics, Prediction};
use segloss::{Context, Shape};
use serde_json::Value;

fn close(id: &str, what: &str, got: f64, want: f64, tol: f64) {
    assert!(
        (got - want).abs() <= tol,
        "{id}: {what} {got} vs peer {want}"
    );
}

fn check(ctx: &Context, case: &Value) -> usize {
    let id = case["id"].as_str().unwrap();
    let c = case["classes"].as_u64().unwrap() as usize;
    let dims: Vec<usize> = f64s(&case["shape"]).iter().map(|&d| d as usize).collect();
    let mut full = vec![dims[0], c];
    full.extend(&dims[1..]);
    let shape = Shape::new(&full).unwrap();
    let label: Vec<i64> = f64s(&case["label"]).iter().map(|&v| v as i64).collect();
    let ignore = case["ignore_index"].as_i64();
    let mut m = Metrics::new(ctx, c, ignore).unwrap();
    let (scores, pred): (Vec<f32>, Vec<i64>) = (
        case.get("scores")
            .map_or(vec![], |s| f64s(s).iter().map(|&v| v as f32).collect()),
        case.get("pred")
            .map_or(vec![], |p| f64s(p).iter().map(|&v| v as i64).collect()),
    );
    let p = if scores.is_empty() {
        Prediction::LabelsI64(&pred)
    } else {
        Prediction::Scores(&scores)
    };
    m.update(&shape, p, Labels::I64(&label), None).unwrap();
    let r = m.result().unwrap();
    let j = &case["jdt"];
    for (k, v) in [
        ("miou_d", r.miou_d),
        ("mdice_d", r.mdice_d),
        ("miou_i", r.miou_i),
        ("mdice_i", r.mdice_i),
        ("miou_c", r.miou_c),
        ("mdice_c", r.mdice_c),
    ] {
        close(id, k, v, j[k].as_f64().unwrap(), 1e-12);
    }
    for (q, w) in j["worst"].as_object().unwrap() {
        let got = m.worst(q.parse().unwrap()).unwrap();
        for (k, v) in [
            ("miou_i", got.miou_i),
            ("mdice_i", got.mdice_i),
            ("miou_c", got.miou_c),
            ("mdice_c", got.mdice_c),
        ] {
            close(
                id,
                &format!("worst {q} {k}"),
                v,
                w[k].as_f64().unwrap(),
                1e-12,
            );
        }
    }
    // torchmetrics: classes with a union (absent ones are 0 there, `None` here).
    for (name, ours, theirs) in [
        (
            "torchmetrics IoU",
            &r.iou_d_per_class,
            f64s(&case["torchmetrics_iou_per_class"]),
        ),
        (
            "torchmetrics Dice",
            &r.dice_d_per_class,
            f64s(&case["torchmetrics_dice_per_class"]),
        ),
    ] {
        for (k, (o, t)) in zip_eq(name, ours, theirs).enumerate() {
            match o {
                Some(o) => close(id, &format!("{name}[{k}]"), *o, t, 1e-6),
                None => assert_eq!(t, 0.0, "{id}: {name}[{k}] of an absent class"),
            }
        }
    }
    // MONAI: per image, the mean over the classes its label holds (multi-class data).
    if let (Some(d), Some(iou)) = (case["monai_dice"].as_array(), case["monai_iou"].as_array()) {
        if c > 2 {
            assert_eq!(d.len(), r.per_image.len(), "{id}: MONAI images");
            for (b, (dr, ir)) in zip_eq(id, d, iou).enumerate() {
                let mean = |row: &Value| {
                    // One entry per class, null (NaN) where the label lacks the class.
                    let row = f64s(row);
                    assert_eq!(row.len(), c, "{id}: a MONAI row per class");
                    let v: Vec<f64> = row.into_iter().filter(|x| !x.is_nan()).collect();
                    assert!(!v.is_empty(), "{id}: a MONAI row with no class");
                    v.iter().sum::<f64>() / v.len() as f64
                };
                close(
                    id,
                    &format!("MONAI Dice image {b}"),
                    r.per_image[b].mdice.unwrap(),
                    mean(dr),
                    1e-12,
                );
                close(
                    id,
                    &format!("MONAI IoU image {b}"),
                    r.per_image[b].miou.unwrap(),
                    mean(ir),
                    1e-12,
                );
            }
        }
    }
    check_smp_runs(m.state().unwrap(), case)
}

/// MONAI's `DiceMetric` / `MeanIoU` with every flag and reduction, from the counts.
fn check_monai_runs(ctx: &Context, case: &Value) -> usize {
    use segloss::metrics::monai::{DiceMetric, MeanIoU, MetricReduction};
    let Some(runs) = case["monai_runs"].as_array() else {
        return 0;
    };
    let id = case["id"].as_str().unwrap();
    let c = case["classes"].as_u64().unwrap() as usize;
    let dims: Vec<usize> = f64s(&case["shape"]).iter().map(|&d| d as usize).collect();
    let mut full = vec![dims[0], c];
    full.extend(&dims[1..]);
    let shape = Shape::new(&full).unwrap();
    let label: Vec<i64> = f64s(&case["label"]).iter().map(|&v| v as i64).collect();
    let scores: Vec<f32> = case
        .get("scores")
        .map_or(vec![], |s| f64s(s).iter().map(|&v| v as f32).collect());
    let pred: Vec<i64> = case
        .get("pred")
        .map_or(vec![], |p| f64s(p).iter().map(|&v| v as i64).collect());
    let p = if scores.is_empty() {
        Prediction::LabelsI64(&pred)
    } else {
        Prediction::Scores(&scores)
    };
    let mut m = Metrics::new(ctx, c, None).unwrap();
    m.update(&shape, p, Labels::I64(&label), None).unwrap();
    let state = m.state().unwrap().clone();
    for run in runs {
        let reduction = match run["reduction"].as_str().unwrap() {
            "none" => MetricReduction::None,
            "mean" => MetricReduction::Mean,
            "sum" => MetricReduction::Sum,
            "mean_batch" => MetricReduction::MeanBatch,
            "sum_batch" => MetricReduction::SumBatch,
            "mean_channel" => MetricReduction::MeanChannel,
            _ => MetricReduction::SumChannel,
        };
        let (bg, ie) = (
            run["include_background"].as_bool().unwrap(),
            run["ignore_empty"].as_bool().unwrap(),
        );
        let got = if run["metric"] == "dice" {
            DiceMetric {
                include_background: bg,
                reduction,
                ignore_empty: ie,
            }
            .compute(&state)
        } else {
            MeanIoU {
                include_background: bg,
                reduction,
                ignore_empty: ie,
            }
            .compute(&state)
        };
        let want = f64s(&run["values"]);
        for (g, w) in zip_eq(id, &got.reduced, &want) {
            assert!(
                (g - w).abs() < 1e-6 || (g.is_nan() && w.is_nan()),
                "{id}: {run}: {g} vs MONAI {w}"
            );
        }
    }
    runs.len()
}

/// smp's `get_stats` + `iou_score` / `f1_score` with every reduction.
fn check_smp_runs(state: &segloss::metrics::MetricsState, case: &Value) -> usize {
    use segloss::metrics::smp::{f1_score, get_stats, iou_score, SmpReduction};
    let id = case["id"].as_str().unwrap();
    let stats = get_stats(state);
    let runs = case["smp_runs"].as_array().unwrap();
    for run in runs {
        let reduction = match run["reduction"].as_str().unwrap() {
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
            .map(|_| f64s(&run["class_weights"]));
        let f = if run["metric"] == "iou" {
            iou_score
        } else {
            f1_score
        };
        let got = f(&stats, reduction, w.as_deref(), 1.0).unwrap();
        let want = f64s(&run["values"]);
        for (g, w) in zip_eq(id, &got, &want) {
            assert!(
                (g - w).abs() < 1e-12 || (g.is_nan() && w.is_nan()),
                "{id}: {run}: {g} vs smp {w}"
            );
        }
    }
    runs.len()
}

fn cases() -> Vec<Value> {
    let v: Value = serde_json::from_str(include_str!("golden/metrics.json")).unwrap();
    v["cases"].as_array().unwrap().clone()
}

#[test]
fn metrics_match_the_peers_on_the_cpu() {
    let cases = cases();
    assert_eq!(cases.len(), 7);
    let (mut runs, mut smp) = (0, 0);
    for c in &cases {
        smp += check(&Context::cpu(), c);
        runs += check_monai_runs(&Context::cpu(), c);
    }
    assert_eq!((runs, smp), (168, 168));
}

#[test]
fn metrics_match_the_peers_on_the_gpu() {
    let Some(ctx) = common::gpu() else { return };
    for c in &cases() {
        check(&ctx, c);
        check_monai_runs(&ctx, c);
    }
}
