//! What the `train` and `stages` examples share: synthetic images of disks and squares
//! with soft labels, the small CPU model (`model.rs`), the training loop around a segloss
//! loss, and the held-out evaluation.

mod model;

use indicatif::{ProgressBar, ProgressStyle};
use segloss::{Batch, Loss, Shape};

pub use model::{softmax_pixelwise, Model};

/// Image side.
pub const SIDE: usize = 32;
/// Pixels per image.
pub const N: usize = SIDE * SIDE;
/// Classes: background, disk, square.
pub const C: usize = 3;
/// Images per step.
pub const BATCH: usize = 8;
/// Adam's learning rate.
pub const LR: f32 = 0.01;
/// Bins of the calibration error.
pub const ECE_BINS: usize = 10;

/// xorshift64.
pub struct Rng(pub u64);
impl Rng {
    /// Uniform in [0, 1).
    pub fn f32(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32
    }
    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f32 {
        let (u, v) = (self.f32().max(1e-7), self.f32());
        (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
    }
}

/// Where the soft labels come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Labels {
    /// Label smoothing ε = 0.4 on pixels next to a class boundary (the Jaccard Metric
    /// Loss paper's recipe).
    Smoothed,
    /// The mean of three annotators whose shapes differ by one pixel (radius and
    /// half-side −1, 0, +1); the hard mask is their majority.
    Annotators,
}

/// One synthetic image: 3 noisy colour channels [3, N], the hard mask [N] (what mIoU is
/// measured against) and the soft target [C, N].
pub struct Sample {
    pub image: Vec<f32>,
    pub mask: Vec<usize>,
    pub soft: Vec<f32>,
}

fn sample(rng: &mut Rng, labels: Labels) -> Sample {
    let (cx, cy, r) = (
        8.0 + 16.0 * rng.f32(),
        8.0 + 16.0 * rng.f32(),
        4.0 + 5.0 * rng.f32(),
    );
    let (sx, sy, h) = (
        6.0 + 20.0 * rng.f32(),
        6.0 + 20.0 * rng.f32(),
        3.0 + 4.0 * rng.f32(),
    );
    let label = |i: usize, grow: f32| {
        let (fx, fy) = ((i % SIDE) as f32, (i / SIDE) as f32);
        if (fx - cx).hypot(fy - cy) < r + grow {
            1
        } else if (fx - sx).abs() < h + grow && (fy - sy).abs() < h + grow {
            2
        } else {
            0
        }
    };
    let truth: Vec<usize> = (0..N).map(|i| label(i, 0.0)).collect();
    // Colours overlap between classes, so shape context (the 3×3 patch) matters.
    let palette = [[0.2, 0.3, 0.3], [0.7, 0.3, 0.4], [0.4, 0.4, 0.8]];
    let mut image = vec![0.0; 3 * N];
    for i in 0..N {
        for ch in 0..3 {
            image[ch * N + i] = palette[truth[i]][ch] + 0.35 * rng.normal();
        }
    }
    let mut soft = vec![0.0; C * N];
    let mask = match labels {
        Labels::Smoothed => {
            let eps = 0.4;
            for i in 0..N {
                let (x, y) = (i % SIDE, i / SIDE);
                let boundary = [(0i32, 1i32), (1, 0), (0, -1), (-1, 0)]
                    .iter()
                    .any(|(dx, dy)| {
                        let (nx, ny) = (x as i32 + dx, y as i32 + dy);
                        (0..SIDE as i32).contains(&nx)
                            && (0..SIDE as i32).contains(&ny)
                            && truth[ny as usize * SIDE + nx as usize] != truth[i]
                    });
                for c in 0..C {
                    let hard = if c == truth[i] { 1.0 } else { 0.0 };
                    soft[c * N + i] = if boundary {
                        (1.0 - eps) * hard + eps / C as f32
                    } else {
                        hard
                    };
                }
            }
            truth
        }
        Labels::Annotators => (0..N)
            .map(|i| {
                let mut votes = [0u32; C];
                for grow in [-1.0, 0.0, 1.0] {
                    votes[label(i, grow)] += 1;
                }
                for c in 0..C {
                    soft[c * N + i] = votes[c] as f32 / 3.0;
                }
                // Three different votes: the middle annotator's.
                (0..C).find(|&c| votes[c] >= 2).unwrap_or(truth[i])
            })
            .collect(),
    };
    Sample { image, mask, soft }
}

/// 256 training and 32 held-out images (the same for every run).
pub struct Data {
    pub train: Vec<Sample>,
    pub test: Vec<Sample>,
}

impl Data {
    /// The data set with soft labels from `labels`.
    pub fn new(labels: Labels) -> Self {
        let mut rng = Rng(0x2545F4914F6CDD1D);
        let train = (0..256).map(|_| sample(&mut rng, labels)).collect();
        let test = (0..32).map(|_| sample(&mut rng, labels)).collect();
        Data { train, test }
    }
}

/// Held-out figures of a model.
#[derive(Clone, Copy, Debug, Default)]
pub struct Eval {
    /// mIoU of the argmax against the hard masks (per class over the whole set).
    pub miou: f32,
    /// Mean Dice, likewise.
    pub dice: f32,
    /// Mean |p − y| over the classes of the boundary pixels (some 0 < y < 1).
    pub boundary: f32,
    /// Class-wise expected calibration error against the soft labels: every (pixel,
    /// class) binned by p into [`ECE_BINS`] equal-width bins, Σ_b (n_b / n)·|mean p −
    /// mean y| over the bins.
    pub ece: f32,
}

/// The held-out figures of `model` on `test`.
pub fn evaluate(model: &Model, test: &[Sample]) -> Eval {
    let (mut inter, mut union, mut card) = ([0f64; C], [0f64; C], [0f64; C]);
    let (mut cal, mut cal_n) = (0f64, 0usize);
    let mut bins = [(0f64, 0f64, 0usize); ECE_BINS];
    for chunk in test.chunks(BATCH) {
        let images: Vec<&[f32]> = chunk.iter().map(|s| &s.image[..]).collect();
        let (logits, _) = model.forward(&images);
        let p = softmax_pixelwise(&logits, chunk.len());
        for (bi, s) in chunk.iter().enumerate() {
            let pc = |c: usize, i: usize| p[(bi * C + c) * N + i];
            for i in 0..N {
                let pred = (0..C)
                    .max_by(|&a, &b| pc(a, i).total_cmp(&pc(b, i)))
                    .unwrap_or(0);
                for c in 0..C {
                    let (a, b) = (pred == c, s.mask[i] == c);
                    inter[c] += f64::from(u8::from(a && b));
                    union[c] += f64::from(u8::from(a || b));
                    card[c] += f64::from(u8::from(a)) + f64::from(u8::from(b));
                    let y = s.soft[c * N + i];
                    let bin = &mut bins[((pc(c, i) * ECE_BINS as f32) as usize).min(ECE_BINS - 1)];
                    *bin = (bin.0 + f64::from(pc(c, i)), bin.1 + f64::from(y), bin.2 + 1);
                }
                if (0..C).any(|c| s.soft[c * N + i] > 0.0 && s.soft[c * N + i] < 1.0) {
                    for c in 0..C {
                        cal += f64::from((pc(c, i) - s.soft[c * N + i]).abs());
                    }
                    cal_n += C;
                }
            }
        }
    }
    let miou = (0..C).map(|c| inter[c] / union[c].max(1.0)).sum::<f64>() / C as f64;
    let dice = (0..C)
        .map(|c| 2.0 * inter[c] / card[c].max(1.0))
        .sum::<f64>()
        / C as f64;
    let total: usize = bins.iter().map(|b| b.2).sum();
    let ece = bins.iter().map(|b| (b.0 - b.1).abs()).sum::<f64>() / total.max(1) as f64;
    Eval {
        miou: miou as f32,
        dice: dice as f32,
        boundary: (cal / cal_n.max(1) as f64) as f32,
        ece: ece as f32,
    }
}

/// What a training run leaves.
pub struct Run {
    /// The held-out figures after the last epoch.
    pub last: Eval,
    /// Steps taken.
    pub steps: u64,
    /// Steps whose result reported soft targets with the classic formulation
    /// (`LossOutput::soft_targets_with_classic`).
    pub guard_steps: u64,
}

/// A callback shown each epoch's evaluation (`fit`).
pub type OnEpoch<'a> = &'a mut dyn FnMut(usize, &Eval);

/// Trains a fresh model (initial weights from `Rng(init)`) on `data` for `epochs`
/// epochs of Adam steps, with `loss_at(step)` the loss in force at each step; segloss
/// computes the loss and its gradient w.r.t. the logits in one call. With `on_epoch`,
/// every epoch is evaluated and shown (with a progress bar on a terminal); without,
/// only the last one, quietly.
pub fn fit(
    loss_at: &dyn Fn(u64) -> segloss::Result<Loss>,
    data: &Data,
    epochs: usize,
    init: u64,
    mut on_epoch: Option<OnEpoch<'_>>,
) -> segloss::Result<Run> {
    let mut model = Model::new(&mut Rng(init));
    let shape = Shape::new(&[BATCH, C, SIDE, SIDE])?;
    let per_epoch = data.train.len() / BATCH;
    let mut run = Run {
        last: Eval::default(),
        steps: 0,
        guard_steps: 0,
    };
    // One gradient buffer for the whole run: the loss writes into it every step.
    let mut grad = vec![0.0f32; shape.len()];
    for epoch in 1..=epochs {
        let bar = match on_epoch {
            Some(_) => ProgressBar::new(per_epoch as u64),
            None => ProgressBar::hidden(),
        };
        let bar = bar.with_style(
            ProgressStyle::with_template("  epoch {prefix} [{bar:30}] {pos}/{len} loss {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_prefix(format!("{epoch:2}"));
        for chunk in data.train.chunks_exact(BATCH) {
            let images: Vec<&[f32]> = chunk.iter().map(|s| &s.image[..]).collect();
            let (logits, hidden) = model.forward(&images);
            let target: Vec<f32> = chunk.iter().flat_map(|s| s.soft.iter().copied()).collect();
            let out = loss_at(run.steps)?
                .forward_backward_into(&Batch::soft(&shape, &logits, &target), &mut grad)?;
            run.guard_steps += u64::from(out.soft_targets_with_classic);
            run.steps += 1;
            let g = model.backward(&images, &hidden, &grad);
            model.adam(&g, LR);
            bar.set_message(format!("{:.4}", out.loss));
            bar.inc(1);
        }
        bar.finish_and_clear();
        if let Some(show) = on_epoch.as_mut() {
            run.last = evaluate(&model, &data.test);
            show(epoch, &run.last);
        } else if epoch == epochs {
            run.last = evaluate(&model, &data.test);
        }
    }
    Ok(run)
}
