//! MONAI 1.6.1's `GeneralizedDiceLoss` / `GeneralizedDiceFocalLoss` cases (`gdl.json`)
//! through segloss's constructors of the same arguments, on any context (the f64 reference's
//! own check is `tests/golden_gdl.rs`): 1e-4 relative + 1e-6 on loss and values, 1e-4 of the largest
//! gradient entry + 1e-7.

use segloss::monai::{GeneralizedDiceFocalLoss, GeneralizedDiceLoss};
use segloss::{Batch, Context, GdlWeight, Loss, LossOptions, Reduction, Shape};
use serde_json::Value;

use super::case::rel;
use super::{f64s, same_len, Report};

const REL: f64 = 1e-4;
const ABS: f64 = 1e-6;

/// The options MONAI's recorded arguments (`peer_args`) give.
pub fn options(case: &Value) -> Result<LossOptions, String> {
    let a = &case["peer_args"];
    let b = |k: &str| a[k].as_bool().unwrap_or(false);
    let f = |k: &str, d: f64| a[k].as_f64().unwrap_or(d);
    let w_type: GdlWeight = a["w_type"]
        .as_str()
        .ok_or("peer_args.w_type missing")?
        .parse()
        .map_err(|e| format!("peer_args.w_type: {e}"))?;
    let reduction = match a["reduction"].as_str().unwrap_or("mean") {
        "sum" => Reduction::Sum,
        "none" => Reduction::None,
        _ => Reduction::Mean,
    };
    let include_background = a["include_background"].as_bool().unwrap_or(true);
    Ok(match case["peer"].as_str() {
        Some("MONAI 1.6.1 GeneralizedDiceLoss") => GeneralizedDiceLoss {
            include_background,
            to_onehot_y: b("to_onehot_y"),
            sigmoid: b("sigmoid"),
            softmax: b("softmax"),
            w_type,
            reduction,
            batch: b("batch"),
            soft_label: b("soft_label"),
            ..Default::default()
        }
        .options(),
        Some("MONAI 1.6.1 GeneralizedDiceFocalLoss") => GeneralizedDiceFocalLoss {
            include_background,
            to_onehot_y: b("to_onehot_y"),
            sigmoid: b("sigmoid"),
            softmax: b("softmax"),
            w_type,
            reduction,
            batch: b("batch"),
            gamma: f("gamma", 2.0),
            weight: a["weight"]
                .as_array()
                .map(|_| f64s(a, "weight"))
                .transpose()?,
            lambda_gdl: f("lambda_gdl", 1.0),
            lambda_focal: f("lambda_focal", 1.0),
            ..Default::default()
        }
        .options(),
        p => return Err(format!("unknown peer {p:?}")),
    })
}

/// Checks one case on `ctx`, noting its errors in `report`.
pub(crate) async fn check(
    ctx: &Context,
    case: &Value,
    id: &str,
    report: &mut Report,
) -> Result<(), String> {
    let dims: Vec<usize> = f64s(case, "shape")?.iter().map(|&d| d as usize).collect();
    let shape = Shape::new(&dims).map_err(|e| e.to_string())?;
    let x: Vec<f32> = f64s(case, "input")?.iter().map(|&v| v as f32).collect();
    let t = f64s(case, "target")?;
    let soft: Vec<f32> = t.iter().map(|&v| v as f32).collect();
    let index: Vec<u32> = t.iter().map(|&v| v as u32).collect();
    let batch = if case["target_kind"] == "index" {
        Batch::index(&shape, &x, &index)
    } else {
        Batch::soft(&shape, &x, &soft)
    };
    let loss = Loss::new(ctx, options(case)?).map_err(|e| e.to_string())?;
    let out = loss
        .forward_backward_async(&batch)
        .await
        .map_err(|e| e.to_string())?;
    let want = case["loss"].as_f64().ok_or("no loss")?;
    let got = f64::from(out.loss);
    report.note("value error (relative)", rel(got, want), id);
    if !super::within((got - want).abs(), REL * want.abs() + ABS) {
        return Err(format!("loss {got} vs MONAI {want}"));
    }
    if case["loss_values"].is_array() {
        let vals = f64s(case, "loss_values")?;
        let got = out.values.unwrap_or_default();
        same_len("loss values", got.len(), vals.len())?;
        for (i, (g, w)) in got.iter().zip(vals).enumerate() {
            let g = f64::from(*g);
            report.note("value error (relative)", rel(g, w), id);
            if !super::within((g - w).abs(), REL * w.abs() + ABS) {
                return Err(format!("value[{i}] {g} vs MONAI {w}"));
            }
        }
    }
    let grad = f64s(case, "grad")?;
    let max = grad.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let ours = out.grad.unwrap_or_default();
    if ours.len() != grad.len() {
        return Err(format!(
            "grad has {} elements, MONAI's {}",
            ours.len(),
            grad.len()
        ));
    }
    for (i, (g, w)) in ours.iter().zip(&grad).enumerate() {
        let g = f64::from(*g);
        report.note(
            "gradient error (of max |grad|)",
            (g - w).abs() / max.max(1e-300),
            id,
        );
        if !super::within((g - w).abs(), REL * max + ABS / 10.0) {
            return Err(format!("grad[{i}] {g} vs MONAI {w}"));
        }
    }
    Ok(())
}
