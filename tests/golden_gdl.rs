//! MONAI 1.6.1's own `GeneralizedDiceLoss` and `GeneralizedDiceFocalLoss` (float64,
//! autograd gradients; `crates/segloss-golden/golden/make_gdl.py`) against segloss's
//! constructors of the same arguments on the f64 CPU reference: within 1e-9 relative
//! (loss and values) and 1e-9 of the largest gradient entry (1e-6 for
//! `GeneralizedDiceFocalLoss`: MONAI's `FocalLoss` computes in f32). The GPU and the CPU
//! backend (f32 results) run these cases through the golden runner (`tests/golden.rs`).

mod common;

use segloss::{LossOptions, Shape};
use serde_json::Value;

use common::{f64s, zip_eq};

fn options(case: &Value) -> LossOptions {
    segloss_golden::gdl::options(case).unwrap()
}

fn cases() -> Vec<Value> {
    let text = segloss_golden::text("gdl.json").unwrap();
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
    }
    assert_eq!(cases.len(), 31);
}
