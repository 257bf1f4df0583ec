//! What a staged loss costs per step: `Schedule::at(step)` against one loss+grad of a
//! `[4, 19, 512, 512]` batch, and the pipelines compiled across a ramp.
//!
//! ```sh
//! cargo run --release --example schedule
//! ```

use std::time::Instant;

use segloss::{Batch, Context, CrossEntropy, LossOptions, Ramp, Schedule, Shape};

fn main() -> segloss::Result<()> {
    let ctx = Context::new_or_cpu();
    println!("backend: {:?}", ctx.backend());
    // CE (KL form) alone, a cosine ramp into soft Jaccard + KL, then a step to classic
    // Jaccard + KL (a formulation switch: new pipelines, once).
    let warm_up = LossOptions::jaccard()
        .overlap_weight(0.0)
        .cross_entropy(CrossEntropy::kl(1.0));
    let jml = LossOptions::jaccard()
        .overlap_weight(0.75)
        .cross_entropy(CrossEntropy::kl(0.25));
    let schedule = Schedule::new(&ctx, warm_up)?
        .then(1000, jml.clone(), Ramp::Cosine { steps: 1000 })?
        .then(
            3000,
            jml.formulation(segloss::Formulation::Classic),
            Ramp::Step,
        )?;

    // The per-step cost of `at`: building the `Loss` in force (options interpolated,
    // validated, cloned). Median of 5 rounds over the ramp's 1000 steps.
    let mut rounds: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            for step in 1000..2000 {
                std::hint::black_box(schedule.at(step).expect("valid"));
            }
            t.elapsed().as_secs_f64() / 1000.0
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    let per_step = rounds[2];

    // One loss+grad of [4, 19, 512, 512] (soft targets), the issue's reference call.
    let shape = Shape::new(&[4, 19, 512, 512])?;
    let n = shape.len();
    let x: Vec<f32> = (0..n)
        .map(|i| ((i * 7919) % 1000) as f32 / 250.0 - 2.0)
        .collect();
    let y: Vec<f32> = (0..n)
        .map(|i| ((i * 104_729) % 1000) as f32 / 999.0)
        .collect();
    let batch = Batch::soft(&shape, &x, &y);
    let before = ctx.pipelines_built();
    schedule.at(1000)?.forward_backward(&batch)?; // first call of the ramp: compiles
    let compiled_first = ctx.pipelines_built() - before;
    let t = Instant::now();
    let mut calls = 0;
    for step in [1001u64, 1500, 1999] {
        schedule.at(step)?.forward_backward(&batch)?;
        calls += 1;
    }
    let call = t.elapsed().as_secs_f64() / calls as f64;
    let in_ramp = ctx.pipelines_built() - before - compiled_first;
    schedule.at(3000)?.forward_backward(&batch)?;
    let switch = ctx.pipelines_built() - before - compiled_first - in_ramp;

    println!(
        "Schedule::at per step: {:.2} µs (median of 5 × 1000 steps)",
        per_step * 1e6
    );
    println!(
        "loss+grad [4, 19, 512, 512]: {:.3} s (mean of {calls})",
        call
    );
    println!("at() / loss+grad: {:.5} %", 100.0 * per_step / call);
    println!(
        "pipelines compiled: {compiled_first} at the ramp's first step, {in_ramp} over 3 \
         more ramp steps, {switch} at the switch to the classic formulation"
    );
    Ok(())
}
