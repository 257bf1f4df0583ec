//! A small U-Net-like burn model trained on synthetic segmentation images whose labels
//! are soft (three annotators who disagree by a pixel at every boundary, averaged),
//! with segloss's Jaccard + cross-entropy in its soft form against the classic form,
//! on burn's wgpu device shared with segloss (zero-copy). Prints per-epoch loss, mIoU
//! (segloss's metrics, against the annotators' majority label) and the calibration at
//! the boundaries (mean |p − y| where the annotators disagree), then the conclusion.
//!
//! `--schedule` stages both losses (strategy (b) of the root crate's `stages` example):
//! cross-entropy (KL form) alone for the first quarter of the epochs, a cosine ramp over
//! the second quarter into Jaccard + KL (the same gradient as Jaccard + CE: KL is CE
//! minus the targets' entropy, so its train loss is lower by that constant), driven by
//! a `segloss::Schedule` through `SegLoss::set_options` each step.
//!
//! `cargo run --release -p segloss-burn --example burn_train [-- --epochs N] [--seeds 1,2,3] [--schedule]`

use std::time::Instant;

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::PaddingConfig2d;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::activation::{relu, softmax};
use burn::tensor::{Device, Tensor, TensorData};
use segloss::metrics::{Labels, Metrics, Prediction};
use segloss::{CrossEntropy, Formulation, LossOptions, Ramp, Schedule, Shape};
use segloss_burn::{SegLoss, SegLossConfig, Targets};

const CLASSES: usize = 3;
const SIZE: usize = 32;
const BATCH: usize = 8;

/// Two 3×3 convolutions at full resolution, one at half, a transposed convolution back
/// up, and a skip connection.
#[derive(Module, Debug)]
struct UNet {
    down1: Conv2d,
    down2: Conv2d,
    pool: MaxPool2d,
    mid: Conv2d,
    up: ConvTranspose2d,
    fuse: Conv2d,
    head: Conv2d,
}

impl UNet {
    fn new(device: &Device) -> Self {
        let conv = |i, o| {
            Conv2dConfig::new([i, o], [3, 3])
                .with_padding(PaddingConfig2d::Same)
                .init(device)
        };
        UNet {
            down1: conv(1, 8),
            down2: conv(8, 8),
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            mid: conv(8, 16),
            up: ConvTranspose2dConfig::new([16, 8], [2, 2])
                .with_stride([2, 2])
                .init(device),
            fuse: conv(16, 8),
            head: Conv2dConfig::new([8, CLASSES], [1, 1]).init(device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let skip = relu(self.down2.forward(relu(self.down1.forward(x))));
        let mid = relu(self.mid.forward(self.pool.forward(skip.clone())));
        let up = relu(self.up.forward(mid));
        let fused = relu(self.fuse.forward(Tensor::cat(vec![up, skip], 1)));
        self.head.forward(fused)
    }
}

/// One synthetic image: a disk (class 1) and a square (class 2) on background, noisy
/// intensities; soft labels from three annotators whose shapes differ by one pixel.
struct Sample {
    image: Vec<f32>,
    soft: Vec<f32>,
    majority: Vec<u32>,
}

struct Rng(u64);
impl Rng {
    fn f(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32
    }
}

fn sample(rng: &mut Rng) -> Sample {
    let n = SIZE * SIZE;
    let (cx, cy, r) = (
        8.0 + 16.0 * rng.f(),
        8.0 + 16.0 * rng.f(),
        4.0 + 4.0 * rng.f(),
    );
    let (sx, sy, s) = (
        4.0 + 20.0 * rng.f(),
        4.0 + 20.0 * rng.f(),
        4.0 + 5.0 * rng.f(),
    );
    let label = |x: f32, y: f32, grow: f32| -> usize {
        if ((x - cx).powi(2) + (y - cy).powi(2)).sqrt() <= r + grow {
            1
        } else if x >= sx - grow && x <= sx + s + grow && y >= sy - grow && y <= sy + s + grow {
            2
        } else {
            0
        }
    };
    let (mut image, mut soft, mut majority) = (vec![0.0; n], vec![0.0; CLASSES * n], vec![0; n]);
    for i in 0..n {
        let (x, y) = ((i % SIZE) as f32, (i / SIZE) as f32);
        let mut votes = [0u32; CLASSES];
        for grow in [-1.0, 0.0, 1.0] {
            votes[label(x, y, grow)] += 1;
        }
        for c in 0..CLASSES {
            soft[c * n + i] = votes[c] as f32 / 3.0;
        }
        let truth = label(x, y, 0.0);
        majority[i] = (0..CLASSES).max_by_key(|&c| votes[c]).unwrap_or(truth) as u32;
        image[i] = [0.2, 0.55, 0.9][truth] + 0.25 * (rng.f() - 0.5);
    }
    Sample {
        image,
        soft,
        majority,
    }
}

/// Stacks samples into `[B, 1, H, W]` images, `[B, C, H, W]` soft labels and the
/// majority labels `[B, H, W]`.
fn batch(samples: &[Sample], device: &Device) -> (Tensor<4>, Tensor<4>, Vec<u32>) {
    let b = samples.len();
    let cat = |f: &dyn Fn(&Sample) -> &[f32]| {
        samples
            .iter()
            .flat_map(|s| f(s).to_vec())
            .collect::<Vec<_>>()
    };
    let x = Tensor::from_data(
        TensorData::new(cat(&|s| &s.image), [b, 1, SIZE, SIZE]),
        device,
    );
    let y = Tensor::from_data(
        TensorData::new(cat(&|s| &s.soft), [b, CLASSES, SIZE, SIZE]),
        device,
    );
    let m = samples.iter().flat_map(|s| s.majority.clone()).collect();
    (x, y, m)
}

struct Epoch {
    loss: f64,
    miou: f64,
    boundary: f64,
}

/// Trains one model with `loss`, its options following `schedule` (if any) step by
/// step; returns each epoch's figures.
fn train(
    loss: &mut SegLoss,
    schedule: Option<&Schedule>,
    device: &Device,
    train: &[Sample],
    val: &[Sample],
    epochs: usize,
    seed: u64,
) -> segloss::Result<Vec<Epoch>> {
    // The same initial weights for both losses.
    device.seed(seed);
    let mut model = UNet::new(device);
    let mut optim = AdamConfig::new().init();
    let ctx = segloss_burn::shared_context(device).unwrap_or_else(segloss::Context::cpu);
    let mut out = Vec::new();
    let mut step = 0;
    for _ in 0..epochs {
        let mut total = 0.0;
        for chunk in train.chunks(BATCH) {
            if let Some(s) = schedule {
                loss.set_options(s.options_at(step))?;
            }
            step += 1;
            let (x, y, _) = batch(chunk, device);
            let logits = model.forward(x);
            let l = loss.forward(logits, Targets::<4, 3>::Soft(y))?;
            total += l.clone().into_scalar::<f32>() as f64;
            let grads = GradientsParams::from_grads(l.backward(), &model);
            model = optim.step(2e-2, model, grads);
        }
        // Validation: mIoU of the argmax against the majority label, and |p − y| where
        // the annotators disagree (0 < y < 1).
        let mut metrics = Metrics::new(&ctx, CLASSES, None)?;
        let (mut err, mut count) = (0.0f64, 0usize);
        for chunk in val.chunks(BATCH) {
            let (x, y, majority) = batch(chunk, device);
            let logits = model.valid().forward(x.inner());
            let p = softmax(logits.clone(), 1);
            let scores = logits
                .to_data_as::<f32>()
                .as_slice::<f32>()
                .unwrap_or(&[])
                .to_vec();
            let shape = Shape::new(&[chunk.len(), CLASSES, SIZE, SIZE])?;
            metrics.update(
                &shape,
                Prediction::Scores(&scores),
                Labels::U32(&majority),
                None,
            )?;
            let (p, y) = (p.to_data_as::<f32>(), y.to_data_as::<f32>());
            let (p, y) = (
                p.as_slice::<f32>().unwrap_or(&[]),
                y.as_slice::<f32>().unwrap_or(&[]),
            );
            for (pv, yv) in p.iter().zip(y) {
                if *yv > 0.0 && *yv < 1.0 {
                    err += f64::from((pv - yv).abs());
                    count += 1;
                }
            }
        }
        out.push(Epoch {
            loss: total / train.chunks(BATCH).len() as f64,
            miou: metrics.result()?.miou_d,
            boundary: err / count.max(1) as f64,
        });
    }
    Ok(out)
}

fn main() -> segloss::Result<()> {
    let arg = |name: &str| std::env::args().skip_while(|a| a != name).nth(1);
    let epochs: usize = arg("--epochs").and_then(|v| v.parse().ok()).unwrap_or(12);
    let seeds: Vec<u64> = arg("--seeds")
        .map(|v| v.split(',').filter_map(|s| s.parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 2, 3]);
    let device = segloss_burn::init_default_wgpu()?;
    let ad = device.clone().autodiff();
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let train_set: Vec<Sample> = (0..64).map(|_| sample(&mut rng)).collect();
    let val_set: Vec<Sample> = (0..32).map(|_| sample(&mut rng)).collect();
    let staged = std::env::args().any(|a| a == "--schedule");
    let base = LossOptions::jaccard().cross_entropy(CrossEntropy::softmax(1.0));
    // --schedule: KL alone, then a cosine ramp into Jaccard + KL.
    let steps = train_set.chunks(BATCH).len() as u64;
    let quarter = (steps * epochs as u64 / 4).max(1);
    let schedule = |form| -> segloss::Result<Schedule> {
        let jml = LossOptions::jaccard()
            .formulation(form)
            .cross_entropy(CrossEntropy::kl(1.0));
        let ctx = segloss_burn::shared_context(&device).unwrap_or_else(segloss::Context::cpu);
        Schedule::new(&ctx, jml.clone().overlap_weight(0.0))?.then(
            quarter,
            jml,
            Ramp::Cosine { steps: quarter },
        )
    };
    if staged {
        println!(
            "Staged: KL alone for {quarter} steps, a cosine ramp into Jaccard + KL over \
             {quarter} steps, then Jaccard + KL ({} steps in all).\n",
            steps * epochs as u64
        );
    }
    let started = Instant::now();
    let mut guard = Vec::new();
    // Per seed, the final epoch of (soft, classic).
    let mut finals: Vec<(u64, Epoch, Epoch)> = Vec::new();
    for (i, &seed) in seeds.iter().enumerate() {
        let mut last = Vec::new();
        for (name, form) in [
            ("soft", Formulation::Soft),
            ("classic", Formulation::Classic),
        ] {
            let mut loss = SegLossConfig::new(base.clone().formulation(form)).init()?;
            let sched = staged.then(|| schedule(form)).transpose()?;
            let run = train(
                &mut loss,
                sched.as_ref(),
                &ad,
                &train_set,
                &val_set,
                epochs,
                seed,
            )?;
            // The soft-label guard of the last step, read back once per run.
            guard.push((name, loss.soft_targets_with_classic()?));
            if i == 0 {
                let path = if loss.is_zero_copy(&ad) {
                    "zero-copy"
                } else {
                    "host path"
                };
                let terms = if staged { "KL, staged" } else { "CE" };
                println!("{name} Jaccard + {terms}, seed {seed} ({path}):");
                println!("| epoch | train loss | val mIoU | boundary |p − y| |");
                println!("|---:|---:|---:|---:|");
                for (e, r) in run.iter().enumerate() {
                    println!(
                        "| {} | {:.4} | {:.4} | {:.4} |",
                        e + 1,
                        r.loss,
                        r.miou,
                        r.boundary
                    );
                }
                println!();
            }
            last.extend(run.into_iter().last());
        }
        let [soft, classic] =
            <[Epoch; 2]>::try_from(last).map_err(|_| segloss::Error::InvalidOption {
                name: "epochs",
                reason: "at least one epoch".into(),
            })?;
        finals.push((seed, soft, classic));
    }
    println!("Final epoch per seed (the same initial weights for both losses):");
    println!("| seed | val mIoU soft | classic | boundary |p − y| soft | classic |");
    println!("|---:|---:|---:|---:|---:|");
    for (seed, s, c) in &finals {
        println!(
            "| {seed} | {:.4} | {:.4} | {:.4} | {:.4} |",
            s.miou, c.miou, s.boundary, c.boundary
        );
    }
    for form in ["soft", "classic"] {
        let fired = guard.iter().filter(|g| g.0 == form && g.1 == Some(true));
        println!(
            "Soft-label guard (SegLoss::soft_targets_with_classic) on the {form} runs: \
             fired in {} of {}.",
            fired.count(),
            guard.iter().filter(|g| g.0 == form).count()
        );
    }
    let mean = |f: &dyn Fn(&(u64, Epoch, Epoch)) -> f64| {
        finals.iter().map(f).sum::<f64>() / finals.len().max(1) as f64
    };
    let (ms, mc) = (mean(&|r| r.1.miou), mean(&|r| r.2.miou));
    let (bs, bc) = (mean(&|r| r.1.boundary), mean(&|r| r.2.boundary));
    let better = finals
        .iter()
        .filter(|r| r.1.boundary < r.2.boundary)
        .count();
    println!(
        "\nConclusion ({:.0} s, {} seeds): mean val mIoU {ms:.4} soft vs {mc:.4} classic; mean \
         boundary |p − y| {bs:.4} soft vs {bc:.4} classic ({:+.1} %), lower with the soft form \
         in {better} of {} seeds: {}.",
        started.elapsed().as_secs_f64(),
        finals.len(),
        100.0 * (bs - bc) / bc,
        finals.len(),
        if better * 2 > finals.len() {
            "the soft form fits the annotators' disagreement more closely"
        } else {
            "no calibration advantage for the soft form in these runs"
        }
    );
    Ok(())
}
