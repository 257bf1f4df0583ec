//! Multi-label metrics cases (`multilabel.json`: threshold predictions against multi-hot
//! targets), checked as `tests/golden_multilabel.rs` does: smp 0.6's
//! `get_stats(mode="multilabel")` per image and class exactly, torchmetrics 1.9's
//! `MultilabelJaccardIndex` / `MultilabelF1Score` per class within 1e-6.

use segloss::metrics::{Counting, Labels, Metrics, Prediction};
use segloss::{Context, Shape};
use serde_json::Value;

use super::{f64s, same_len, Report};

/// Checks one case on `ctx`, noting its errors in `report`.
pub(crate) async fn check(
    ctx: &Context,
    case: &Value,
    id: &str,
    report: &mut Report,
) -> Result<(), String> {
    let dims: Vec<usize> = f64s(case, "shape")?.iter().map(|&d| d as usize).collect();
    let shape = Shape::new(&dims).map_err(|e| e.to_string())?;
    let scores: Vec<f32> = f64s(case, "scores")?.iter().map(|&v| v as f32).collect();
    let target: Vec<f32> = f64s(case, "target")?.iter().map(|&v| v as f32).collect();
    let pred = Prediction::Threshold {
        scores: &scores,
        threshold: case["threshold"].as_f64().ok_or("no threshold")? as f32,
        sigmoid: case["sigmoid"].as_bool().unwrap_or(false),
    };
    let mut m = Metrics::new(ctx, shape.classes(), None)
        .map_err(|e| e.to_string())?
        .with_counting(Counting::Device);
    m.update(&shape, pred, Labels::MultiHot(&target), None)
        .map_err(|e| e.to_string())?;
    let st = m.state_async().await.map_err(|e| e.to_string())?.clone();
    for key in ["smp_tp", "smp_fp", "smp_fn", "smp_tn"] {
        let rows = case[key].as_array().map_or(0, Vec::len);
        same_len(key, st.images.len(), rows)?;
    }
    for (b, im) in st.images.iter().enumerate() {
        for (k, &[tp, p, l]) in im.counts.iter().enumerate() {
            let smp = |key: &str| case[key][b][k].as_f64().unwrap_or(f64::NAN);
            let ours = (tp, p - tp, l - tp, im.valid - p - l + tp);
            let theirs = (smp("smp_tp"), smp("smp_fp"), smp("smp_fn"), smp("smp_tn"));
            let err = [
                ours.0 - theirs.0,
                ours.1 - theirs.1,
                ours.2 - theirs.2,
                ours.3 - theirs.3,
            ]
            .iter()
            .fold(0.0f64, |m, d| m.max(d.abs()));
            report.note("count error (tp, fp, fn, tn)", err, id);
            if !(err == 0.0) {
                report.fail(
                    id,
                    format!("image {b} class {k}: (tp, fp, fn, tn) {ours:?} vs smp {theirs:?}"),
                );
            }
        }
    }
    let r = m.result_async().await.map_err(|e| e.to_string())?;
    // torchmetrics: zero_division = 0.
    for (k, (iou, tm)) in r
        .iou_d_per_class
        .iter()
        .zip(zipped("tm_iou", &r.iou_d_per_class, f64s(case, "tm_iou")?)?)
        .enumerate()
    {
        let name = format!("torchmetrics IoU class {k}");
        report.close(
            "metric error (absolute)",
            id,
            &name,
            iou.unwrap_or(0.0),
            tm,
            1e-6,
        );
    }
    for (k, (dice, tm)) in r
        .dice_d_per_class
        .iter()
        .zip(zipped("tm_f1", &r.dice_d_per_class, f64s(case, "tm_f1")?)?)
        .enumerate()
    {
        let name = format!("torchmetrics F1 class {k}");
        report.close(
            "metric error (absolute)",
            id,
            &name,
            dice.unwrap_or(0.0),
            tm,
            1e-6,
        );
    }
    Ok(())
}

/// `theirs`, after checking it is as long as `ours` and not empty.
fn zipped<T>(what: &str, ours: &[T], theirs: Vec<f64>) -> Result<Vec<f64>, String> {
    same_len(what, ours.len(), theirs.len())?;
    Ok(theirs)
}
