//! `segloss doctor`: does segloss compute correctly on this machine's adapter? It lists
//! the adapters wgpu sees, picks one, runs the public golden cases embedded in the
//! binary on it (losses, compound, generalized Dice, metrics, multi-label metrics) and
//! prints pass/fail per family, the worst errors and a one-line verdict. Exit code 1
//! when any case fails.

use std::path::PathBuf;
use std::time::Instant;

use segloss::{Backend, Context};

use crate::adapter::{self, AdapterArgs};
use crate::{AnyResult, Outcome};
use segloss_golden::{self as golden, Report};

/// `segloss doctor`'s arguments.
#[derive(clap::Args, Debug)]
#[command(
    long_about = "Lists the adapters wgpu sees (backend, name, driver, the limits that bound \
segloss's problems), picks one (as segloss::Context::new() would, or --backend / --adapter N), \
runs the public golden cases embedded in this binary on it (MONAI, JDTLosses, torchmetrics and \
smp results: losses, compound losses, generalized Dice, metrics, multi-label metrics) and \
prints pass/fail per family, the worst errors and a one-line verdict. Exit code 1 when any \
case fails. Without any adapter it runs the cases on segloss's f64 CPU reference and says \
so. Paste its output into a bug report.",
    after_help = "Examples:\n  segloss doctor\n  segloss doctor --backend gl\n  WGPU_BACKEND=vulkan segloss doctor --adapter 1"
)]
pub struct Args {
    #[command(flatten)]
    adapter: AdapterArgs,
    /// Only list the adapters; run no cases.
    #[arg(long)]
    list: bool,
    /// Also run this golden file (same format as crates/segloss-golden/golden/*.json); it replaces
    /// the embedded file of the same name. For testing doctor itself.
    #[arg(long, value_name = "FILE", hide = true)]
    golden: Vec<PathBuf>,
}

/// Failing cases printed per family (the count is always printed).
const SHOWN_FAILURES: usize = 10;

/// Runs `segloss doctor`.
pub fn run(args: Args) -> AnyResult<Outcome> {
    // Read the extra files first: a bad path is a usage error, before any GPU work.
    let mut extra = Vec::new();
    for p in &args.golden {
        let text =
            std::fs::read_to_string(p).map_err(|e| format!("--golden {}: {e}", p.display()))?;
        let name = p.file_name().map_or_else(
            || p.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        extra.push((name, text));
    }
    println!("segloss {} (wgpu 30)", env!("CARGO_PKG_VERSION"));
    let ctx = if args.adapter.cpu {
        println!("--cpu: running on segloss's f64 CPU reference");
        Context::cpu()
    } else {
        let adapters = adapter::list(&args.adapter);
        let env = |k: &str| std::env::var(k).map_or("unset".into(), |v| format!("{k}={v}"));
        println!(
            "adapters wgpu sees ({}, {}):",
            env("WGPU_BACKEND"),
            env("WGPU_ADAPTER_NAME")
        );
        if adapters.is_empty() {
            println!("  none");
        }
        for (i, a) in adapters.iter().enumerate() {
            println!("  {}", adapter::describe(i, a).replace('\n', "\n  "));
        }
        if args.list {
            return Ok(Outcome::Ok);
        }
        match adapter::choose(&adapters, &args.adapter)? {
            Some((i, a)) => {
                let info = a.get_info();
                println!("using [{i}] {:?}: {}", info.backend, info.name);
                // Where `evaluate` and `Metrics::update` count (Counting::Auto).
                let path = if segloss::metrics::Counting::Auto.on_host(&info) {
                    "on the host (a CPU adapter: native counting is faster); --backend / --adapter N make `evaluate` count on the device"
                } else {
                    "on this device"
                };
                println!("metrics (`evaluate`, Metrics::update) count {path}");
                adapter::open(&a)?
            }
            None => {
                println!("{}", adapter::fallback_notice());
                Context::cpu()
            }
        }
    };
    let on = match ctx.backend() {
        Backend::Gpu { adapter, backend } => format!("{adapter} ({backend:?})"),
        Backend::Cpu => "the f64 CPU reference (no GPU)".to_string(),
    };
    println!();
    let mut reports = Vec::new();
    let started = Instant::now();
    for (family, name, text) in golden::FILES {
        if extra.iter().any(|(n, _)| n == name) {
            continue;
        }
        reports.push(timed(&ctx, family, name, text));
    }
    for (name, text) in &extra {
        reports.push(timed(&ctx, &format!("{name} (--golden)"), name, text));
    }
    let cases: usize = reports.iter().map(|r| r.cases).sum();
    let failed: usize = reports.iter().map(|r| r.failures.len()).sum();
    let bad: Vec<&str> = reports
        .iter()
        .filter(|r| !r.failures.is_empty())
        .map(|r| r.family.as_str())
        .collect();
    let secs = started.elapsed().as_secs_f64();
    println!();
    if bad.is_empty() {
        println!("verdict: OK: all {cases} golden cases pass on {on} ({secs:.1} s)");
        Ok(Outcome::Ok)
    } else {
        println!(
            "verdict: FAIL: {} on {on}: {failed} failing check(s) in {cases} cases ({secs:.1} s); please report this output",
            bad.join(", ")
        );
        Ok(Outcome::CheckFailed)
    }
}

/// Runs one file and prints its family's lines.
fn timed(ctx: &Context, family: &str, name: &str, text: &str) -> Report {
    let t = Instant::now();
    let r = pollster::block_on(golden::run(ctx, family, name, text));
    let status = if r.failures.is_empty() {
        "pass"
    } else {
        "FAIL"
    };
    let worst: Vec<String> = r
        .worst
        .iter()
        .map(|w| format!("{} {:.1e} ({})", w.what, w.error, w.case))
        .collect();
    println!(
        "{status} {family:<20} {:>3} cases, {:.1} s | worst: {}",
        r.cases,
        t.elapsed().as_secs_f64(),
        if worst.is_empty() {
            "-".into()
        } else {
            worst.join("; ")
        }
    );
    for f in r.failures.iter().take(SHOWN_FAILURES) {
        println!("     FAIL {f}");
    }
    if r.failures.len() > SHOWN_FAILURES {
        println!("     … and {} more", r.failures.len() - SHOWN_FAILURES);
    }
    r
}
