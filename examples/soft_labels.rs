//! Why segloss exists, in one command: the textbook ("classic") overlap losses are
//! minimised at the wrong prediction when labels are soft, the L1 ("soft") ones at p = y.
//!
//! `cargo run --release --example soft_labels [-- --out DIR]`
//!
//! 1. Sweeps one pixel's prediction p over [0, 1] for soft targets y and prints where each
//!    loss is smallest.
//! 2. Fits a [1, 3, 128, 128] logit map by gradient descent (segloss's gradients) to the
//!    mean of three simulated annotators, with classic and with soft Dice, and reports how
//!    far the probabilities end from the target and how calibrated they are.
//! 3. Writes the figures (PNG).

use plotters::prelude::*;
use segloss::{
    Activation, Aggregation, Backend, Batch, Context, Formulation, Loss, LossOptions, Overlap,
    Reduction, Shape,
};

type AnyResult<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const OVERLAPS: [(&str, Overlap); 3] = [
    ("dice", Overlap::Dice),
    ("jaccard", Overlap::Jaccard),
    (
        "tversky",
        Overlap::Tversky {
            alpha: 0.3,
            beta: 0.7,
        },
    ),
];
const FORMULATIONS: [(&str, Formulation); 2] = [
    ("classic", Formulation::Classic),
    ("soft", Formulation::Soft),
];
const TARGETS: [f32; 3] = [0.25, 0.5, 0.75];

/// Loss of one pixel for p = 0.00, 0.01, …, 1.00 against target y: one call, 101 images
/// of one pixel each, per-image values (`Reduction::None`).
fn sweep(ctx: &Context, overlap: Overlap, f: Formulation, y: f32) -> segloss::Result<Vec<f32>> {
    let mut o = LossOptions::dice()
        .formulation(f)
        .activation(Activation::None)
        .smoothing(0.0, 0.0)
        .aggregation(Aggregation::IMAGE)
        .reduction(Reduction::None);
    o.overlap = overlap;
    let shape = Shape::new(&[101, 1, 1])?;
    let p: Vec<f32> = (0..=100).map(|i| i as f32 / 100.0).collect();
    let t = vec![y; 101];
    let out = Loss::new(ctx, o)?.forward(&Batch::soft(&shape, &p, &t))?;
    Ok(out.values.unwrap_or_default())
}

fn argmin(v: &[f32]) -> usize {
    (0..v.len())
        .min_by(|&a, &b| v[a].total_cmp(&v[b]))
        .unwrap_or(0)
}

/// Three annotators outline a disk (class 1) and a square (class 2) on a 128² image,
/// each with their own jitter; the soft target is the mean of their one-hot maps.
fn annotators(side: usize) -> Vec<f32> {
    let n = side * side;
    let mut y = vec![0.0f32; 3 * n];
    for (dx, dr, ds) in [(0.0, 0.0, 0.0), (3.0, -4.0, 3.0), (-2.0, 5.0, -4.0)] {
        for r in 0..side {
            for c in 0..side {
                let (fx, fy) = (c as f32, r as f32);
                let disk = (fx - 45.0 - dx).hypot(fy - 60.0) < 28.0 + dr;
                let square = (fx - 90.0 - dx).abs() < 20.0 + ds && (fy - 75.0).abs() < 24.0 + ds;
                let k = if disk {
                    1
                } else if square {
                    2
                } else {
                    0
                };
                y[k * n + r * side + c] += 1.0 / 3.0;
            }
        }
    }
    y
}

fn softmax(z: &[f32], classes: usize) -> Vec<f32> {
    let n = z.len() / classes;
    let mut p = vec![0.0; z.len()];
    for i in 0..n {
        let m = (0..classes).map(|c| z[c * n + i]).fold(f32::MIN, f32::max);
        let s: f32 = (0..classes).map(|c| (z[c * n + i] - m).exp()).sum();
        for c in 0..classes {
            p[c * n + i] = (z[c * n + i] - m).exp() / s;
        }
    }
    p
}

/// Expected calibration error against soft targets: predicted probabilities binned in
/// 10 bins, |mean p − mean y| per bin, weighted by the bin's share.
fn ece(p: &[f32], y: &[f32]) -> f32 {
    let mut bins = [(0.0f64, 0.0f64, 0usize); 10];
    for (&pi, &yi) in p.iter().zip(y) {
        let b = ((pi * 10.0) as usize).min(9);
        bins[b].0 += f64::from(pi);
        bins[b].1 += f64::from(yi);
        bins[b].2 += 1;
    }
    let total = p.len() as f64;
    bins.iter()
        .filter(|b| b.2 > 0)
        .map(|(sp, sy, n)| (*n as f64 / total) * ((sp - sy) / *n as f64).abs())
        .sum::<f64>() as f32
}

/// Gradient descent on the logits with segloss's gradient of soft-label Dice.
fn fit(
    ctx: &Context,
    f: Formulation,
    target: &[f32],
    side: usize,
    steps: usize,
) -> segloss::Result<Vec<f32>> {
    let shape = Shape::new(&[1, 3, side, side])?;
    let loss = Loss::new(
        ctx,
        LossOptions::dice().formulation(f).smoothing(1e-5, 1e-5),
    )?;
    let mut z = vec![0.0f32; shape.len()];
    // The loss averages over ~N pixels, so its gradient is O(1/N): scale the step.
    // The soft form's gradient is a subgradient (sign(p − y)): a fixed step oscillates
    // around p = y with an amplitude set by rounding (f32 on a GPU, f64 on the CPU
    // reference ended 0.0071 vs 0.0106). A linearly decaying step converges on both.
    let lr0 = 0.5 * (side * side) as f32;
    for t in 0..steps {
        let lr = lr0 * (1.0 - t as f32 / steps as f32);
        let out = loss.forward_backward(&Batch::soft(&shape, &z, target))?;
        for (zi, gi) in z.iter_mut().zip(out.grad.unwrap_or_default()) {
            *zi -= lr * gi;
        }
    }
    Ok(softmax(&z, 3))
}

fn main() -> AnyResult<()> {
    let out_dir = std::env::args()
        .skip_while(|a| a != "--out")
        .nth(1)
        .unwrap_or_else(|| {
            // The build's target directory: `CARGO_TARGET_DIR` when set, else the
            // package's own `target/`.
            let target = std::env::var("CARGO_TARGET_DIR")
                .unwrap_or_else(|_| format!("{}/target", env!("CARGO_MANIFEST_DIR")));
            format!("{target}/figures")
        });
    std::fs::create_dir_all(&out_dir)?;
    let ctx = Context::new_or_cpu();
    match ctx.backend() {
        Backend::Cpu => {
            println!("notice: no GPU adapter found, running on segloss's f64 CPU reference")
        }
        Backend::Gpu { adapter, backend } => println!("running on {adapter} ({backend:?})"),
    }

    // 1. Where is each loss smallest?
    let mut curves = Vec::new();
    for (oname, overlap) in OVERLAPS {
        for (fname, f) in FORMULATIONS {
            for y in TARGETS {
                let v = sweep(&ctx, overlap, f, y)?;
                println!(
                    "argmin {oname} {fname} y={y:.2} p={:.2}",
                    argmin(&v) as f32 / 100.0
                );
                curves.push((oname, fname, y, v));
            }
        }
    }
    println!(
        "\nWith a soft target y, every classic loss is smallest at p = 1: it pushes predictions \
         to be overconfident. The soft (L1) losses are smallest exactly at p = y, for Dice, \
         Jaccard and Tversky alike.\n"
    );

    // 2. Fit a logit map to an averaged annotation.
    let side = 128;
    let target = annotators(side);
    let steps = 150;
    let mut fitted = Vec::new();
    println!("fitting [1, 3, {side}, {side}] logits to the mean of 3 annotators, {steps} gradient steps:");
    println!("| loss | mean |p − y| | ECE (10 bins) |\n|---|---:|---:|");
    for (fname, f) in FORMULATIONS {
        let p = fit(&ctx, f, &target, side, steps)?;
        let mae = p
            .iter()
            .zip(&target)
            .map(|(a, b)| (a - b).abs())
            .sum::<f32>()
            / p.len() as f32;
        println!("| {fname} Dice | {mae:.4} | {:.4} |", ece(&p, &target));
        fitted.push(p);
    }

    // 3. Figures.
    let font: &'static [u8] = include_bytes!("assets/DejaVuSans.ttf");
    plotters::style::register_font("sans-serif", FontStyle::Normal, font)
        .map_err(|_| "cannot load the embedded font")?;
    let curves_png = format!("{out_dir}/soft_labels_curves.png");
    {
        let root = BitMapBackend::new(&curves_png, (1500, 480)).into_drawing_area();
        root.fill(&WHITE)?;
        let panels = root.split_evenly((1, 3));
        for (panel, y) in panels.iter().zip(TARGETS) {
            let mut chart = ChartBuilder::on(panel)
                .caption(
                    format!("Dice loss of one pixel, target y = {y:.2}"),
                    ("sans-serif", 22),
                )
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(50)
                .build_cartesian_2d(0f32..1f32, 0f32..1f32)?;
            chart
                .configure_mesh()
                .x_desc("prediction p")
                .y_desc("loss")
                .draw()?;
            for (fname, color) in [("classic", RED), ("soft", BLUE)] {
                let (.., v) = curves
                    .iter()
                    .find(|(o, f, yy, _)| *o == "dice" && *f == fname && *yy == y)
                    .ok_or("missing curve")?;
                chart
                    .draw_series(LineSeries::new(
                        v.iter().enumerate().map(|(i, l)| (i as f32 / 100.0, *l)),
                        color.stroke_width(3),
                    ))?
                    .label(format!(
                        "{fname} (argmin at p = {:.2})",
                        argmin(v) as f32 / 100.0
                    ))
                    .legend(move |(x, yy)| {
                        PathElement::new(vec![(x, yy), (x + 20, yy)], color.stroke_width(3))
                    });
            }
            chart.draw_series(LineSeries::new(vec![(y, 0.0), (y, 1.0)], BLACK.mix(0.3)))?;
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()?;
        }
        root.present()?;
    }
    println!("\nfigure: {curves_png}");

    let maps_png = format!("{out_dir}/soft_labels_maps.png");
    {
        let (w, h) = (3 * side as u32 * 3 + 40, side as u32 * 3 + 60);
        let root = BitMapBackend::new(&maps_png, (w, h)).into_drawing_area();
        root.fill(&WHITE)?;
        let n = side * side;
        let panels: [(&str, &[f32]); 3] = [
            ("target: mean of 3 annotators", &target),
            ("fitted with classic Dice", &fitted[0]),
            ("fitted with soft Dice", &fitted[1]),
        ];
        for (k, (title, p)) in panels.iter().enumerate() {
            let x0 = 10 + k as i32 * (3 * side as i32 + 10);
            root.draw(&Text::new(*title, (x0, 10), ("sans-serif", 22)))?;
            for r in 0..side {
                for c in 0..side {
                    // Class 1 (disk) in red, class 2 (square) in blue, background dark.
                    let (p1, p2) = (p[n + r * side + c], p[2 * n + r * side + c]);
                    let color = RGBColor((255.0 * p1) as u8, 0, (255.0 * p2) as u8);
                    let (x, y) = (x0 + 3 * c as i32, 45 + 3 * r as i32);
                    root.draw(&Rectangle::new([(x, y), (x + 3, y + 3)], color.filled()))?;
                }
            }
        }
        root.present()?;
    }
    println!("figure: {maps_png}");
    Ok(())
}
