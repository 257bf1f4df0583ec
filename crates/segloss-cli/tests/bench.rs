//! `segloss bench` with tiny shapes: the table, and `--json` rows that parse and carry
//! every op and API. Needs an adapter (in CI it must find one).

mod common;

use common::{segloss, text};
use serde_json::Value;

#[test]
fn bench_json_rows_parse_and_cover_every_op() {
    let out = segloss(&[
        "bench",
        "--json",
        "--runs",
        "1",
        "--shapes",
        "1x3x8x8,2x2x4x4x4",
    ]);
    let t = text(&out);
    if t.contains("needs an adapter") {
        assert!(!common::gpu_required(), "no adapter in CI: {t}");
        eprintln!("SKIPPED bench_json_rows_parse_and_cover_every_op: no GPU adapter");
        return;
    }
    assert_eq!(out.status.code(), Some(0), "{t}");
    let rows: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    // Per shape: 2 targets × (loss 2 APIs, loss+grad 3, CE+Dice 2, GDL 2) + 1 metrics row.
    assert_eq!(rows.len(), 2 * (2 * 9 + 1), "{t}");
    for r in &rows {
        assert!(r["ms"].as_f64().is_some_and(|ms| ms > 0.0), "{r}");
        assert!(r["adapter"].as_str().is_some_and(|a| !a.is_empty()), "{r}");
    }
    for op in [
        "loss",
        "loss+grad",
        "loss+grad CE+Dice",
        "loss+grad GDL",
        "metrics (argmax + counts)",
    ] {
        assert!(rows.iter().any(|r| r["op"] == op), "no {op} row: {t}");
    }
    assert!(
        rows.iter().any(|r| r["api"] == "host, fresh buffers"),
        "{t}"
    );
    assert!(
        rows.iter()
            .any(|r| r["shape"] == serde_json::json!([2, 2, 4, 4, 4])),
        "{t}"
    );
    let compound = rows
        .iter()
        .find(|r| r["op"] == "loss+grad CE+Dice" && r["api"] == "gpu-resident")
        .unwrap();
    assert!(compound["compound_overhead"].is_f64(), "{compound}");
}

#[test]
fn bench_table_names_the_adapter() {
    let out = segloss(&["bench", "--runs", "1", "--shapes", "1x2x4x4"]);
    let t = text(&out);
    if t.contains("needs an adapter") {
        assert!(!common::gpu_required(), "no adapter in CI: {t}");
        eprintln!("SKIPPED bench_table_names_the_adapter: no GPU adapter");
        return;
    }
    assert_eq!(out.status.code(), Some(0), "{t}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("adapter: "), "{t}");
    assert!(
        stdout.contains("| [1, 2, 4, 4] | soft | loss+grad | gpu-resident |"),
        "{t}"
    );
}
