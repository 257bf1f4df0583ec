//! Trains a small segmentation model end to end with segloss's gradient: synthetic
//! images of disks and squares, soft boundary labels (label smoothing on boundary
//! pixels, the Jaccard Metric Loss paper's recipe), loss 0.25 · soft cross-entropy +
//! 0.75 · Jaccard, Adam. The model is a two-layer convolution written out as an MLP over
//! 3×3 patches (27 → 32 → 3), on the CPU; segloss computes the whole loss, CE and
//! Jaccard fused in one call, and its gradient (on the GPU when there is one). One run with the classic Jaccard, one with
//! the soft one, then a table.
//!
//! `cargo run --release --example train [-- --epochs N]`

#[allow(dead_code)] // shared with `stages`, which uses more of it
mod common;

use common::{fit, Data, Eval, Labels, BATCH};
use segloss::{Context, CrossEntropy, Formulation, Loss, LossOptions};

/// Trains the model of `common` with 0.25 · soft cross-entropy + 0.75 · Jaccard of
/// `formulation`, fused: one segloss call gives the value and the gradient w.r.t. the
/// logits of both terms.
fn train(ctx: &Context, formulation: Formulation, epochs: usize) -> segloss::Result<Eval> {
    let loss = Loss::new(
        ctx,
        LossOptions::jaccard()
            .formulation(formulation)
            .smoothing(1e-5, 1e-5)
            .overlap_weight(0.75)
            .cross_entropy(CrossEntropy::softmax(0.25)),
    )?;
    let data = Data::new(Labels::Smoothed);
    let mut show = |epoch: usize, e: &Eval| {
        println!(
            "  epoch {epoch:2}: held-out mIoU {:.4}, Dice {:.4}, boundary |p − y| {:.4}",
            e.miou, e.dice, e.boundary
        );
    };
    let run = fit(&|_| Ok(loss.clone()), &data, epochs, 7, Some(&mut show))?;
    Ok(run.last)
}

fn main() -> segloss::Result<()> {
    let epochs = std::env::args()
        .skip_while(|a| a != "--epochs")
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(25);
    let ctx = Context::new_or_cpu();
    println!("segloss backend: {:?}", ctx.backend());
    let mut rows = Vec::new();
    for (name, f) in [
        ("classic", Formulation::Classic),
        ("soft", Formulation::Soft),
    ] {
        println!(
            "0.25 · soft CE + 0.75 · {name} Jaccard, {epochs} epochs of 32 batches of {BATCH}:"
        );
        let e = train(&ctx, f, epochs)?;
        rows.push((name, (e.miou, e.dice, e.boundary)));
    }
    println!("\n| Jaccard term | held-out mIoU | held-out Dice | boundary |p − y| |");
    println!("|---|---:|---:|---:|");
    for (name, (miou, dice, cal)) in &rows {
        println!("| {name} | {miou:.4} | {dice:.4} | {cal:.4} |");
    }
    conclude(rows[0].1, rows[1].1);
    Ok(())
}

/// What the numbers support: accuracy (mIoU) within noise or not, and whether the soft
/// Jaccard fits the soft boundary labels better (lower |p − y| at boundary pixels).
fn conclude(classic: (f32, f32, f32), soft: (f32, f32, f32)) {
    let d_miou = soft.0 - classic.0;
    let d_cal = (classic.2 - soft.2) / classic.2.max(1e-12);
    println!();
    if d_miou.abs() < 0.005 {
        println!(
            "Accuracy: held-out mIoU differs by {d_miou:+.4}, below 0.005: the same within \
             run-to-run noise."
        );
    } else {
        println!("Accuracy: held-out mIoU differs by {d_miou:+.4} (soft − classic).");
    }
    if d_cal > 0.01 {
        println!(
            "Calibration: boundary |p − y| is {:.1}% lower with the soft Jaccard: it fits the \
             soft labels where they are soft, which the classic form pushes towards 0 or 1.",
            100.0 * d_cal
        );
    } else {
        println!(
            "Calibration: boundary |p − y| differs by {:.1}%: no difference at this budget.",
            -100.0 * d_cal
        );
    }
}
