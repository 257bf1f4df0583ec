//! The metrics row's peers on PyTorch CPU, in the same run: `crates/segloss-cli/src/bench/metrics_bench.py`
//! (torchmetrics `MeanIoU`, JDTLosses' definitions with torch ops; embedded in the binary)
//! run as a child process by the Python given with `--peers`, alternated round by round
//! with segloss's timing.

use std::process::Command;

/// The peers' shape (fixed in the script).
pub const SHAPE: [usize; 4] = [4, 19, 512, 512];

/// Median milliseconds per implementation over `rounds` alternated rounds: each round
/// first times segloss (`segloss()` returns its median seconds), then runs the script
/// once with `runs` timed calls per peer. The first entry is segloss's.
pub fn alternated(
    python: &str,
    rounds: usize,
    runs: usize,
    mut segloss: impl FnMut() -> f64,
) -> Result<Vec<(String, Vec<f64>)>, String> {
    let script = include_str!("metrics_bench.py");
    let mut out: Vec<(String, Vec<f64>)> = vec![("segloss".into(), Vec::new())];
    for _ in 0..rounds {
        out[0].1.push(segloss() * 1e3);
        let runs = runs.to_string();
        for row in script_rows(
            python,
            "metrics_bench.py",
            script,
            &["--json", "--runs", &runs],
        )? {
            let (Some(name), Some(ms)) = (row["impl"].as_str(), row["ms"].as_f64()) else {
                return Err(format!("peer output without impl/ms: {row}"));
            };
            match out.iter_mut().find(|(n, _)| n == name) {
                Some((_, v)) => v.push(ms),
                None => out.push((name.to_string(), vec![ms])),
            }
        }
    }
    Ok(out)
}

/// `segloss bench --deep --peers`: MONAI's `DeepSupervisionLoss` rows for `dims`
/// (`monai_ds_bench.py`, embedded), printed as the deep rows are.
pub fn monai_deep(python: &str, dims: &[usize], runs: usize, json: bool) -> Result<(), String> {
    let shape = dims
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("x");
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let args = [
        "--shape",
        &shape,
        "--runs",
        &runs.to_string(),
        "--threads",
        &threads.to_string(),
    ];
    for row in script_rows(
        python,
        "monai_ds_bench.py",
        include_str!("monai_ds_bench.py"),
        &args,
    )? {
        if json {
            println!("{row}");
        } else {
            println!(
                "| {dims:?} | {} | MONAI DeepSupervisionLoss ({} threads) | PyTorch CPU | {:.1} | |",
                row["target"].as_str().unwrap_or("?"),
                row["threads"],
                row["ms"].as_f64().unwrap_or(f64::NAN)
            );
        }
    }
    Ok(())
}

/// Runs an embedded peer script (`name`, for errors) with `python -c` and `args`; its
/// stdout's lines, each a JSON object.
fn script_rows(
    python: &str,
    name: &str,
    script: &str,
    args: &[&str],
) -> Result<Vec<serde_json::Value>, String> {
    let run = Command::new(python)
        .args(["-c", script])
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {python}: {e}"))?;
    if !run.status.success() {
        return Err(format!(
            "crates/segloss-cli/src/bench/{name} failed: {}",
            String::from_utf8_lossy(&run.stderr)
        ));
    }
    String::from_utf8_lossy(&run.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).map_err(|e| format!("peer output {line:?}: {e}")))
        .collect()
}
