//! MONAI 1.6.1's own `GeneralizedDiceLoss` and `GeneralizedDiceFocalLoss` (float64,
//! autograd gradients; `tests/golden/make_gdl.py`) against segloss's constructors of the
//! same arguments, on the GPU and on the f64 CPU reference.
//!
//! Tolerances: the f64 reference within 1e-9 relative (loss and values) and 1e-9 of the
//! largest gradient entry (1e-6 for `GeneralizedDiceFocalLoss`: MONAI's `FocalLoss`
//! computes in f32); the CPU backend (f32 results) within 1e-6; the GPU (f32) within 1e-4 relative + 1e-6 and 1e-4 of the
//! largest gradient entry + 1e-7, as the other golden files.

mod common;

use segloss::monai::{GeneralizedDiceFocalLoss, GeneralizedDiceLoss};
use segloss::{Batch, Context, GdlWeight, LossOptions, Reduction, Shape};
use serde_json::Value;

use common::{f64s, zip_eq};

fn options(case: &Value) -> LossOptions {
    let a = &case["peer_args"];
    let b = |k: &str| a[k].as_bool().unwrap_or(false);
    let f = |k: &str, d: f64| a[k].as_f64().unwrap_or(d);
    let w_type: GdlWeight = a["w_type"].as_str().unwrap().parse().unwrap();
    let reduction = match a["reduction"].as_str().unwrap_or("mean") {
        "sum" => Reduction::Sum,
        "none" => Reduction::None,
        _ => Reduction::Mean,
    };
    match case["peer"].as_str().unwrap() {
        "MONAI 1.6.1 GeneralizedDiceLoss" => GeneralizedDiceLoss {
            include_background: a["include_background"].as_bool().unwrap_or(true),
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
        "MONAI 1.6.1 GeneralizedDiceFocalLoss" => GeneralizedDiceFocalLoss {
            include_background: a["include_background"].as_bool().unwrap_or(true),
            to_onehot_y: b("to_onehot_y"),
            sigmoid: b("sigmoid"),
            softmax: b("softmax"),
            w_type,
            reduction,
            batch: b("batch"),
            gamma: f("gamma", 2.0),
            weight: a["weight"].as_array().map(|_| f64s(&a["weight"])),
            lambda_gdl: f("lambda_gdl", 1.0),
            lambda_focal: f("lambda_focal", 1.0),
            ..Default::default()
        }
        .options(),
        p => panic!("unknown peer {p}"),
    }
}

/// Checks one case; returns (relative loss error, gradient error / max |grad|).
fn check(ctx: &Context, case: &Value, rel: f64, abs: f64) -> (f64, f64) {
    let id = case["id"].as_str().unwrap();
    let dims: Vec<usize> = f64s(&case["shape"]).iter().map(|&d| d as usize).collect();
    let shape = Shape::new(&dims).unwrap();
    let x: Vec<f32> = f64s(&case["input"]).iter().map(|&v| v as f32).collect();
    let t = f64s(&case["target"]);
    let (soft, index): (Vec<f32>, Vec<u32>) = (
        t.iter().map(|&v| v as f32).collect(),
        t.iter().map(|&v| v as u32).collect(),
    );
    let batch = if case["target_kind"] == "index" {
        Batch::index(&shape, &x, &index)
    } else {
        Batch::soft(&shape, &x, &soft)
    };
    let out = common::loss(ctx, options(case))
        .forward_backward(&batch)
        .unwrap_or_else(|e| panic!("{id}: {e}"));
    let want = case["loss"].as_f64().unwrap();
    let got = f64::from(out.loss);
    assert!(
        (got - want).abs() <= rel * want.abs() + abs,
        "{id}: loss {got} vs MONAI {want}"
    );
    if let Some(vals) = case["loss_values"].as_array() {
        let got = out.values.expect("values");
        assert_eq!(got.len(), vals.len(), "{id}: values");
        for (g, w) in zip_eq(id, &got, f64s(&case["loss_values"])) {
            let g = f64::from(*g);
            assert!(
                (g - w).abs() <= rel * w.abs() + abs,
                "{id}: value {g} vs MONAI {w}"
            );
        }
    }
    let grad = f64s(&case["grad"]);
    let max = grad.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let mut worst = 0.0f64;
    for (i, (g, w)) in zip_eq(id, &out.grad.expect("a gradient"), &grad).enumerate() {
        let g = f64::from(*g);
        assert!(
            (g - w).abs() <= rel * max + abs / 10.0,
            "{id}: grad[{i}] {g} vs MONAI {w}"
        );
        worst = worst.max((g - w).abs() / max);
    }
    ((got - want).abs() / want.abs().max(1e-12), worst)
}

fn cases() -> Vec<Value> {
    let text = include_str!("golden/gdl.json");
    let v: Value = serde_json::from_str(text).unwrap();
    v["cases"].as_array().unwrap().clone()
}

/// The f64 reference on the f64 data itself.
fn check_reference(case: &Value) {
    use segloss::reference::{evaluate, RefBatch, RefTarget};
    let id = case["id"].as_str().unwrap();
    let dims: Vec<usize> = f64s(&case["shape"]).iter().map(|&d| d as usize).collect();
    let shape = Shape::new(&dims).unwrap();
    let x = f64s(&case["input"]);
    let t = f64s(&case["target"]);
    let index: Vec<i64> = t.iter().map(|&v| v as i64).collect();
    let target = if case["target_kind"] == "index" {
        RefTarget::Index(&index)
    } else {
        RefTarget::Soft(&t)
    };
    let b = RefBatch {
        shape: &shape,
        input: &x,
        target,
        mask: None,
    };
    let out = evaluate(&options(case), &b, true).unwrap();
    let want = case["loss"].as_f64().unwrap();
    // MONAI's FocalLoss computes in f32 (its cases agree to f32 precision only).
    let rel = if id.starts_with("monai-gdfl") {
        1e-6
    } else {
        1e-9
    };
    assert!(
        (out.loss - want).abs() <= rel * want.abs() + 1e-12,
        "{id}: loss {} vs MONAI {want}",
        out.loss
    );
    if let Some(vals) = case["loss_values"].as_array() {
        let got = out.values.expect("values");
        assert_eq!(got.len(), vals.len(), "{id}: values");
        for (g, w) in zip_eq(id, &got, f64s(&case["loss_values"])) {
            assert!(
                (g - w).abs() <= 1e-9 * w.abs() + 1e-12,
                "{id}: value {g} vs MONAI {w}"
            );
        }
    }
    let grad = f64s(&case["grad"]);
    let max = grad.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (i, (g, w)) in zip_eq(id, &out.grad.expect("a gradient"), &grad).enumerate() {
        assert!(
            (g - w).abs() <= rel * max + 1e-13,
            "{id}: grad[{i}] {g} vs MONAI {w}"
        );
    }
}

#[test]
fn monai_generalized_dice_cases_on_the_f64_reference() {
    let cases = cases();
    for c in &cases {
        check_reference(c);
        // And through the CPU backend (f32 results).
        check(&Context::cpu(), c, 1e-6, 1e-7);
    }
    assert_eq!(cases.len(), 31);
}

#[test]
fn monai_generalized_dice_cases_on_the_gpu() {
    let Some(ctx) = common::gpu() else { return };
    let (mut loss, mut grad) = (0.0f64, 0.0f64);
    for c in &cases() {
        let (l, g) = check(&ctx, c, 1e-4, 1e-6);
        loss = loss.max(l);
        grad = grad.max(g);
    }
    println!("GPU vs MONAI: max relative loss error {loss:.2e}, max gradient error {grad:.2e} of max |grad|");
}
