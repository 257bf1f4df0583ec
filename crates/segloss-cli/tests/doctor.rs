//! `segloss doctor`: every family passes on the adapter in use (a GPU in CI: the run
//! must not fall back to the CPU there) and on the CPU reference; a golden file with one
//! expected value altered makes it exit 1 and name the failing case.

mod common;

use common::{segloss, text};
use serde_json::Value;

const FAMILIES: [&str; 6] = [
    "losses",
    "compound",
    "generalized Dice",
    "metrics",
    "multi-label metrics",
    "deep supervision",
];

fn golden(name: &str) -> Value {
    let path = format!(
        "{}/../../crates/segloss-golden/golden/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn doctor_passes_on_the_adapter_in_use() {
    let out = segloss(&["doctor"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    common::ran_on_gpu(&out, "doctor_passes_on_the_adapter_in_use");
    assert!(t.contains("adapters wgpu sees"), "{t}");
    assert!(t.contains("max_storage_buffer_binding_size"), "{t}");
    for family in FAMILIES {
        assert!(
            t.lines()
                .any(|l| l.starts_with("pass ") && l.contains(family)),
            "family {family} did not pass:\n{t}"
        );
    }
    assert!(
        t.contains("verdict: OK: all 142 golden cases pass on "),
        "{t}"
    );
}

#[test]
fn doctor_passes_on_the_cpu_reference() {
    let out = segloss(&["doctor", "--cpu"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("on the f64 CPU reference"), "{t}");
}

#[test]
fn doctor_fails_on_a_broken_case_and_names_it() {
    let dir = common::tempdir("doctor-broken");
    // One expected loss 1% off, and one expected metric 0.01 off.
    let mut compound = golden("compound.json");
    let loss_id = compound["cases"][3]["id"].as_str().unwrap().to_string();
    let l = compound["cases"][3]["loss"].as_f64().unwrap();
    compound["cases"][3]["loss"] = (l * 1.01 + 1e-3).into();
    let mut metrics = golden("metrics.json");
    let metric_id = metrics["cases"][1]["id"].as_str().unwrap().to_string();
    let m = metrics["cases"][1]["jdt"]["miou_d"].as_f64().unwrap();
    metrics["cases"][1]["jdt"]["miou_d"] = (m + 0.01).into();
    let (cp, mp) = (dir.join("compound.json"), dir.join("metrics.json"));
    std::fs::write(&cp, compound.to_string()).unwrap();
    std::fs::write(&mp, metrics.to_string()).unwrap();
    let out = segloss(&[
        "doctor",
        "--golden",
        cp.to_str().unwrap(),
        "--golden",
        mp.to_str().unwrap(),
    ]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    common::ran_on_gpu(&out, "doctor_fails_on_a_broken_case_and_names_it");
    assert!(t.contains(&format!("FAIL {loss_id}: loss ")), "{t}");
    assert!(
        t.contains(&format!("FAIL {metric_id}: JDTLosses miou_d ")),
        "{t}"
    );
    assert!(
        t.contains("verdict: FAIL: compound.json (--golden), metrics.json (--golden)"),
        "{t}"
    );
    // The other families still run and pass.
    for family in ["losses", "generalized Dice", "multi-label metrics"] {
        assert!(
            t.lines()
                .any(|l| l.starts_with("pass ") && l.contains(family)),
            "family {family} did not pass:\n{t}"
        );
    }
}

#[test]
fn doctor_lists_adapters_and_refuses_a_missing_one() {
    let out = segloss(&["doctor", "--list"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("adapters wgpu sees"), "{t}");
    assert!(!t.contains("verdict"), "--list runs no cases: {t}");
    let out = segloss(&["doctor", "--adapter", "99"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains("--adapter 99: wgpu sees"), "{t}");
    let out = segloss(&["doctor", "--golden", "/nonexistent/golden.json"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains("--golden /nonexistent/golden.json"), "{t}");
}
