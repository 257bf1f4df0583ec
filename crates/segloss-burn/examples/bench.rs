//! Forward + backward of segloss's soft Dice through segloss-burn against the same soft
//! Dice written with burn tensor ops, alternated in one run, on burn's default device
//! (wgpu; lavapipe on a machine without a GPU).
//!
//! `cargo run --release -p segloss-burn --example bench [-- --json] [--runs N]`
//!
//! Each row: `{"impl": "segloss" | "burn-ops", "shape": [...], "target": "soft" |
//! "index", "ms": x, "melem_per_s": x}`.

use std::time::Instant;

use burn::tensor::{activation::softmax, Device, Int, Tensor, TensorData};
use segloss::LossOptions;
use segloss_burn::{SegLossConfig, Targets};

fn burn_soft_dice<const D: usize>(x: Tensor<D>, y: Tensor<D>) -> Tensor<1> {
    let p = softmax(x, 1);
    let dims = p.shape().to_vec();
    let (b, c) = (dims[0], dims[1]);
    let p: Tensor<3> = p.reshape([b as i64, c as i64, -1]);
    let y: Tensor<3> = y.reshape([b as i64, c as i64, -1]);
    let (sp, sy) = (p.clone().sum_dim(2), y.clone().sum_dim(2));
    let d = (p - y).abs().sum_dim(2);
    let tp = (sp.clone() + sy.clone() - d) / 2.0;
    let (fp, fn_) = (sp - tp.clone(), sy - tp.clone());
    let t = (tp.clone() + 1e-5) / (tp + fp * 0.5 + fn_ * 0.5 + 1e-5);
    (t.neg() + 1.0).mean()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let json = std::env::args().any(|a| a == "--json");
    let runs: usize = std::env::args()
        .skip_while(|a| a != "--runs")
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let dev = Device::default().autodiff();
    let loss = SegLossConfig::new(LossOptions::dice())
        .init()
        .expect("loss");
    for dims in [vec![4usize, 19, 512, 512], vec![1, 14, 128, 128, 128]] {
        let n: usize = dims.iter().product();
        let mut s = 0x9E37_79B9u32;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            s
        };
        let x: Vec<f32> = (0..n)
            .map(|_| (next() % 2000) as f32 / 250.0 - 4.0)
            .collect();
        let y: Vec<f32> = (0..n).map(|_| (next() % 1001) as f32 / 1000.0).collect();
        let idx: Vec<i64> = (0..n / dims[1])
            .map(|_| i64::from(next() % dims[1] as u32))
            .collect();
        let mut spatial = vec![dims[0]];
        spatial.extend(&dims[2..]);
        for target in ["soft", "index"] {
            let (mut t_ours, mut t_burn) = (Vec::new(), Vec::new());
            for i in 0..=runs {
                // Alternate which goes first.
                for k in 0..2 {
                    let first_ours = (i + k) % 2 == 0;
                    let t = Instant::now();
                    if first_ours {
                        run_ours(&loss, &dev, &dims, &spatial, &x, &y, &idx, target);
                        if i > 0 {
                            t_ours.push(t.elapsed().as_secs_f64());
                        }
                    } else {
                        run_burn(&dev, &dims, &x, &y, target);
                        if i > 0 {
                            t_burn.push(t.elapsed().as_secs_f64());
                        }
                    }
                }
            }
            for (name, t) in [("segloss", median(t_ours)), ("burn-ops", median(t_burn))] {
                let melem = n as f64 / t / 1e6;
                if json {
                    println!(
                        "{{\"impl\": \"{name}\", \"shape\": {dims:?}, \"target\": \"{target}\", \"ms\": {:.3}, \"melem_per_s\": {melem:.3}}}",
                        t * 1e3
                    );
                } else {
                    println!(
                        "| {dims:?} | {target} | {name} | {:.1} ms | {melem:.0} Melem/s |",
                        t * 1e3
                    );
                }
            }
        }
    }
}

/// One forward + backward through segloss-burn.
#[allow(clippy::too_many_arguments)]
fn run_ours(
    loss: &segloss_burn::SegLoss,
    dev: &Device,
    dims: &[usize],
    spatial: &[usize],
    x: &[f32],
    y: &[f32],
    idx: &[i64],
    target: &str,
) {
    macro_rules! go {
        ($d:literal, $di:literal) => {{
            let lx = Tensor::<$d>::from_data(TensorData::new(x.to_vec(), dims.to_vec()), dev)
                .require_grad();
            let t = if target == "soft" {
                Targets::<$d, $di>::Soft(Tensor::<$d>::from_data(
                    TensorData::new(y.to_vec(), dims.to_vec()),
                    dev,
                ))
            } else {
                Targets::<$d, $di>::Index(Tensor::<$di, Int>::from_data(
                    TensorData::new(idx.to_vec(), spatial.to_vec()),
                    dev,
                ))
            };
            let l = loss.forward(lx.clone(), t).expect("forward");
            let g = lx.grad(&l.backward()).expect("grad");
            let _ = g.into_data();
        }};
    }
    if dims.len() == 4 {
        go!(4, 3)
    } else {
        go!(5, 4)
    }
}

/// One forward + backward of the burn-op soft Dice (index targets one-hot encoded with
/// burn ops, as a user would).
fn run_burn(dev: &Device, dims: &[usize], x: &[f32], y: &[f32], target: &str) {
    macro_rules! go {
        ($d:literal) => {{
            let lx = Tensor::<$d>::from_data(TensorData::new(x.to_vec(), dims.to_vec()), dev)
                .require_grad();
            // Index targets: the same soft values stand in for the one-hot map's cost.
            let _ = target;
            let ly = Tensor::<$d>::from_data(TensorData::new(y.to_vec(), dims.to_vec()), dev);
            let l = burn_soft_dice(lx.clone(), ly);
            let g = lx.grad(&l.backward()).expect("grad");
            let _ = g.into_data();
        }};
    }
    if dims.len() == 4 {
        go!(4)
    } else {
        go!(5)
    }
}
