//! Staged and mixed loss strategies on soft labels, with numbers: the small model of
//! the `train` example, trained on the mean of three annotators (whose shapes differ by
//! one pixel), with three strategies over several seeds (initial weights):
//!
//! - (a) `soft`: 0.75 · soft Jaccard + 0.25 · cross-entropy, constant;
//! - (b) `staged`: cross-entropy (KL form) alone for a warm-up, then a cosine ramp
//!   (segloss's `Schedule`) into 0.75 · soft Jaccard + 0.25 · KL;
//! - (c) `classic`: (a) with the classic Jaccard, which soft targets bias: segloss's
//!   soft-label guard reports it (`LossOutput::soft_targets_with_classic`, a `log`
//!   warning, printed here).
//!
//! Prints held-out mIoU (against the annotators' majority), boundary |p − y| (where the
//! annotators disagree) and the class-wise calibration error against the soft labels,
//! mean ± standard deviation over the seeds, and the conclusion the numbers support.
//!
//! `cargo run --release --example stages [-- --epochs N --seeds N]`

#[allow(dead_code)] // shared with `train`
mod common;

use std::time::Instant;

use common::{fit, Data, Eval, Labels, ECE_BINS};
use segloss::{Context, CrossEntropy, Formulation, LossOptions, Ramp, Schedule};

/// Prints segloss's warnings (the soft-label guard's) to stdout.
struct Warnings;
impl log::Log for Warnings {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::Level::Warn && m.target().starts_with("segloss")
    }
    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            println!("  log warning ({}): {}", r.target(), r.args());
        }
    }
    fn flush(&self) {}
}
static WARNINGS: Warnings = Warnings;

/// The three strategies' schedules on `ctx`; the staged one warms up for `warm` steps
/// and ramps over `ramp` more.
fn strategies(
    ctx: &Context,
    warm: u64,
    ramp: u64,
) -> segloss::Result<Vec<(&'static str, Schedule)>> {
    let jaccard = || LossOptions::jaccard().smoothing(1e-5, 1e-5);
    let soft = jaccard()
        .overlap_weight(0.75)
        .cross_entropy(CrossEntropy::softmax(0.25));
    let warm_up = jaccard()
        .overlap_weight(0.0)
        .cross_entropy(CrossEntropy::kl(1.0));
    let jml = jaccard()
        .overlap_weight(0.75)
        .cross_entropy(CrossEntropy::kl(0.25));
    Ok(vec![
        ("(a) soft Jaccard + CE", Schedule::new(ctx, soft.clone())?),
        (
            "(b) CE warm-up, ramp to soft Jaccard + KL",
            Schedule::new(ctx, warm_up)?.then(warm, jml, Ramp::Cosine { steps: ramp })?,
        ),
        (
            "(c) classic Jaccard + CE",
            Schedule::new(ctx, soft.formulation(Formulation::Classic))?,
        ),
    ])
}

/// Mean and standard deviation (n − 1) of `v`.
fn stats(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}

/// What the per-seed pairs of one figure (same initial weights) support: a clear
/// difference when every seed agrees in sign and the mean difference exceeds twice its
/// standard error.
fn compare(what: &str, lower_is_better: bool, a: (&str, &[f64]), b: (&str, &[f64])) {
    let d: Vec<f64> = a.1.iter().zip(b.1).map(|(x, y)| x - y).collect();
    let (mean, sd) = stats(&d);
    let se = sd / (d.len() as f64).sqrt();
    let same_sign = d.iter().all(|x| *x > 0.0) || d.iter().all(|x| *x < 0.0);
    let verdict = if same_sign && mean.abs() > 2.0 * se {
        let a_better = (mean < 0.0) == lower_is_better;
        format!("{} is better", if a_better { a.0 } else { b.0 })
    } else {
        "no clear difference".to_string()
    };
    println!(
        "- {what}, {} − {}: {mean:+.4} ± {se:.4} (mean ± s.e. of the per-seed differences): \
         {verdict}.",
        a.0, b.0
    );
}

/// `work` on every job, on as many threads as the machine has cores; the results in the
/// jobs' order.
fn parallel<J: Sync, R: Send>(
    jobs: &[J],
    work: impl Fn(&J) -> segloss::Result<R> + Sync,
) -> segloss::Result<Vec<R>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut done: Vec<(usize, segloss::Result<R>)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads.min(jobs.len()))
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(job) = jobs.get(i) else { break out };
                        out.push((i, work(job)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    done.sort_by_key(|d| d.0);
    done.into_iter().map(|d| d.1).collect()
}

fn main() -> segloss::Result<()> {
    let arg = |name: &str| std::env::args().skip_while(|a| a != name).nth(1);
    let epochs: usize = arg("--epochs").and_then(|v| v.parse().ok()).unwrap_or(25);
    let seeds: u64 = arg("--seeds").and_then(|v| v.parse().ok()).unwrap_or(3);
    // Max level Warn: the logger sees the guard's one-time warning and nothing chattier.
    if log::set_logger(&WARNINGS).is_ok() {
        log::set_max_level(log::LevelFilter::Warn);
    }
    let started = Instant::now();
    let ctx = Context::new_or_cpu();
    println!("segloss backend: {:?}", ctx.backend());
    let data = Data::new(Labels::Annotators);
    let per_epoch = (data.train.len() / common::BATCH) as u64;
    let (warm, ramp) = (
        per_epoch * (epochs as u64 / 5),
        per_epoch * (epochs as u64 / 5),
    );
    println!(
        "{} training / {} held-out images, soft labels: the mean of 3 annotators; {epochs} \
         epochs of {per_epoch} steps, seeds 1..={seeds}; (b) warms up for {warm} steps and \
         ramps over {ramp}.",
        data.train.len(),
        data.test.len()
    );
    let strategies = strategies(&ctx, warm.max(1), ramp.max(1))?;
    // Every (strategy, seed) run is independent and deterministic: they share the cores.
    let jobs: Vec<(usize, u64)> = (0..strategies.len())
        .flat_map(|k| (1..=seeds).map(move |seed| (k, seed)))
        .collect();
    let runs = parallel(&jobs, |&(k, seed)| {
        let schedule = &strategies[k].1;
        let init = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        fit(&|step| schedule.at(step), &data, epochs, init, None)
    })?;
    let mut table = Vec::new();
    for (k, (name, _)) in strategies.iter().enumerate() {
        let mut finals: Vec<Eval> = Vec::new();
        let mut guard = (0, 0);
        for ((_, seed), run) in jobs.iter().zip(&runs).filter(|(j, _)| j.0 == k) {
            let e = run.last;
            println!(
                "  {name}, seed {seed}: mIoU {:.4}, boundary |p − y| {:.4}, ECE {:.4}, guard \
                 on {} of {} steps",
                e.miou, e.boundary, e.ece, run.guard_steps, run.steps
            );
            guard = (guard.0 + run.guard_steps, guard.1 + run.steps);
            finals.push(e);
        }
        table.push((name, finals, guard));
    }
    let col = |i: usize, f: fn(&Eval) -> f32| -> Vec<f64> {
        table[i].1.iter().map(|e| f64::from(f(e))).collect()
    };
    type Figure = (&'static str, fn(&Eval) -> f32);
    let figures: [Figure; 3] = [
        ("held-out mIoU", |e| e.miou),
        ("boundary |p − y|", |e| e.boundary),
        ("ECE", |e| e.ece),
    ];
    println!(
        "\n| strategy ({seeds} seeds, mean ± s.d.) | held-out mIoU | boundary \\|p − y\\| | ECE \
         ({ECE_BINS} bins) | guard fired |"
    );
    println!("|---|---:|---:|---:|---:|");
    for (i, (name, _, guard)) in table.iter().enumerate() {
        let cells: Vec<String> = figures
            .iter()
            .map(|(_, f)| {
                let (m, s) = stats(&col(i, *f));
                format!("{m:.4} ± {s:.4}")
            })
            .collect();
        println!(
            "| {name} | {} | {}/{} steps |",
            cells.join(" | "),
            guard.0,
            guard.1
        );
    }
    println!("\nConclusion (paired by seed):");
    for (what, f) in figures {
        let lower = what != "held-out mIoU";
        compare(what, lower, ("(b)", &col(1, f)), ("(a)", &col(0, f)));
        compare(what, lower, ("(a)", &col(0, f)), ("(c)", &col(2, f)));
    }
    println!(
        "\n{:.1} s in all ({} runs on {} threads).",
        started.elapsed().as_secs_f64(),
        jobs.len(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    Ok(())
}
