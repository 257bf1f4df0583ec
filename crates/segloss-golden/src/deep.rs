//! Deep-supervision cases (`deep.json`, `golden/make_deep.py`): MONAI 1.6.1's own
//! `DeepSupervisionLoss(DiceLoss(softmax=True, to_onehot_y=True, ...))` (nearest-exact
//! target interpolation), and the PyTorch composition that `Pooling::Area` stands for
//! (`adaptive_avg_pool` of the one-hot target, MONAI's `DiceLoss(softmax=True,
//! soft_label=True)` per head, MONAI's weights), float64 with autograd gradients. Checked
//! through `segloss::monai::DeepSupervisionLoss` (nearest) and `DeepSupervision` with
//! `Pooling::Area`: the total and each head's loss within 1e-4 relative + 1e-6 (MONAI
//! sums the total in f32), each head's gradient within 1e-4 of its largest entry + 1e-7.

use segloss::deep::{DeepSupervision, DeepTarget, Head, Pooling};
use segloss::monai::{DeepSupervisionLoss, DiceLoss, WeightMode};
use segloss::{Context, Shape};
use serde_json::Value;

use super::{f64s, number, same_len, Report};

fn shape(v: &Value) -> Result<Shape, String> {
    let dims: Vec<usize> = v
        .as_array()
        .ok_or("a shape array expected")?
        .iter()
        .map(|d| d.as_u64().map(|d| d as usize).ok_or("a shape entry"))
        .collect::<Result<_, _>>()?;
    Shape::new(&dims).map_err(|e| e.to_string())
}

/// Checks one case on `ctx`, noting its errors in `report`.
pub(crate) async fn check(
    ctx: &Context,
    case: &Value,
    id: &str,
    report: &mut Report,
) -> Result<(), String> {
    let area = case["pooling"] == "area";
    let flag = |k: &str| case["dice"][k].as_bool().unwrap_or(false);
    let dice = DiceLoss {
        softmax: true,
        batch: flag("batch"),
        // The area composition is MONAI's soft-label Dice on the pooled fractions.
        soft_label: area || flag("soft_label"),
        ..Default::default()
    };
    let weight_mode = match case["weight_mode"].as_str() {
        Some("same") => WeightMode::Same,
        Some("two") => WeightMode::Two,
        _ => WeightMode::Exp,
    };
    let weights = match &case["weights"] {
        Value::Null => None,
        _ => Some(f64s(case, "weights")?.iter().map(|&w| w as f32).collect()),
    };
    let monai = DeepSupervisionLoss {
        weight_mode,
        weights,
    };
    let mut ds: DeepSupervision = monai
        .build(ctx, dice.options())
        .map_err(|e| e.to_string())?;
    if area {
        ds = ds.pooling(Pooling::Area);
    }
    let target_shape = shape(&case["target_shape"])?;
    let labels: Vec<u32> = f64s(case, "target")?.iter().map(|&v| v as u32).collect();
    let mut heads = Vec::new();
    for h in case["heads"].as_array().ok_or("no heads")? {
        let x: Vec<f32> = f64s(h, "input")?.iter().map(|&v| v as f32).collect();
        heads.push((shape(&h["shape"])?, x));
    }
    let refs: Vec<Head<'_>> = heads
        .iter()
        .map(|(s, x)| Head { shape: s, input: x })
        .collect();
    let out = ds
        .forward_backward_async(&refs, &target_shape, DeepTarget::Index(&labels), None)
        .await
        .map_err(|e| e.to_string())?;
    let rel = |want: f64| 1e-4 * want.abs() + 1e-6;
    let want = number(case, "loss")?;
    report.close(
        "loss error",
        id,
        "total",
        f64::from(out.loss),
        want,
        rel(want),
    );
    let losses = f64s(case, "losses")?;
    same_len("losses", out.losses.len(), losses.len())?;
    for (k, (&got, &want)) in out.losses.iter().zip(&losses).enumerate() {
        let name = format!("head {k} loss");
        report.close("loss error", id, &name, f64::from(got), want, rel(want));
    }
    let grads = case["grads"].as_array().ok_or("no grads")?;
    same_len("grads", out.grads.len(), grads.len())?;
    for (k, (got, want)) in out.grads.iter().zip(grads).enumerate() {
        let want: Vec<f64> = want
            .as_array()
            .ok_or("a gradient array")?
            .iter()
            .map(|v| v.as_f64().unwrap_or(f64::NAN))
            .collect();
        same_len("gradient", got.len(), want.len())?;
        let scale = want.iter().fold(0f64, |m, v| m.max(v.abs()));
        let err = got
            .iter()
            .zip(&want)
            .fold(0f64, |m, (&g, &w)| m.max((f64::from(g) - w).abs()));
        report.note("gradient error (of max |grad|)", err / scale.max(1e-12), id);
        if err > 1e-4 * scale + 1e-7 {
            report.fail(
                id,
                format!("head {k}: gradient error {err:.3e} (max |grad| {scale:.3e})"),
            );
        }
    }
    Ok(())
}
