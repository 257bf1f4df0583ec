//! segloss-burn through burn 0.22's autodiff on its wgpu device: the loss and gradient
//! equal segloss's host API; a soft Dice written with burn tensor ops (what a user would
//! otherwise write) agrees to 1e-5; the classic form shows the soft-label bug.

mod common;

use common::data;

use burn::tensor::{activation::softmax, Device, Int, Tensor, TensorData};
use segloss::{Activation, Aggregation, Batch, Context, Formulation, Loss, LossOptions, Shape};
use segloss_burn::{SegLossConfig, Targets};

/// burn's wgpu device shared with segloss (the zero-copy path), with autodiff.
fn device() -> Device {
    common::shared().autodiff()
}

fn host(t: Tensor<3>) -> Vec<f32> {
    t.to_data_as::<f32>().as_slice::<f32>().unwrap().to_vec()
}

fn check_close(what: &str, got: &[f32], want: &[f32], tol: f32) {
    common::watch::check();
    assert_eq!(got.len(), want.len(), "{what}: length");
    let max = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * max.max(1e-12) + 1e-9,
            "{what}[{i}]: {g} vs {w}"
        );
    }
}

#[test]
fn autodiff_loss_and_gradient_equal_the_host_api() {
    let dev = device();
    let ctx = Context::new_or_cpu();
    for (case, (dims, opts, index)) in [
        ([2usize, 3, 17], LossOptions::dice(), false),
        (
            [3, 4, 10],
            LossOptions::jaccard().aggregation(Aggregation::DATASET),
            true,
        ),
        (
            [1, 5, 33],
            LossOptions::tversky(0.3, 0.7).formulation(Formulation::Classic),
            false,
        ),
        (
            [2, 2, 9],
            LossOptions::dice().activation(Activation::Sigmoid),
            false,
        ),
        (
            [2, 3, 12],
            LossOptions::jaccard().cross_entropy(segloss::CrossEntropy::softmax(0.5)),
            true,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let n: usize = dims.iter().product();
        let x = data(n, case as u64 + 1, -3.0, 3.0);
        let y = data(n, case as u64 + 100, 0.0, 1.0);
        let idx: Vec<i64> = data(dims[0] * dims[2], case as u64 + 7, 0.0, dims[1] as f32)
            .iter()
            .map(|v| (*v as i64).min(dims[1] as i64 - 1))
            .collect();
        let logits = Tensor::<3>::from_data(TensorData::new(x.clone(), dims), &dev).require_grad();
        let loss = SegLossConfig::new(opts.clone()).init_on(&ctx).unwrap();
        assert!(loss.is_zero_copy(&dev));
        let targets = if index {
            Targets::Index(Tensor::<2, Int>::from_data(
                TensorData::new(idx.clone(), [dims[0], dims[2]]),
                &dev,
            ))
        } else {
            Targets::Soft(Tensor::<3>::from_data(
                TensorData::new(y.clone(), dims),
                &dev,
            ))
        };
        let l = loss.forward(logits.clone(), targets).unwrap();
        let value = l.clone().into_scalar::<f32>();
        let grads = l.backward();
        let g = host(logits.grad(&grads).unwrap());

        let shape = Shape::new(&dims).unwrap();
        let batch = if index {
            Batch {
                shape: &shape,
                input: &x,
                target: segloss::Target::IndexI64(&idx),
                mask: None,
            }
        } else {
            Batch::soft(&shape, &x, &y)
        };
        let want = Loss::new(&ctx, opts)
            .unwrap()
            .forward_backward(&batch)
            .unwrap();
        assert!(
            (value - want.loss).abs() <= 1e-6 * want.loss.abs().max(1.0),
            "case {case}: {value} vs {}",
            want.loss
        );
        check_close(&format!("case {case} grad"), &g, &want.grad.unwrap(), 1e-6);
    }
}

/// Soft Dice with burn tensor ops: softmax, then per (image, class) the L1 tp, fp, fn
/// (image-level mean, smoothing s), as a user would write it.
fn burn_soft_dice(x: Tensor<3>, y: Tensor<3>, s: f32, classic: bool) -> Tensor<1> {
    let p = softmax(x, 1);
    let (tp, fp, fn_) = if classic {
        let tp = (p.clone() * y.clone()).sum_dim(2);
        (tp.clone(), p.sum_dim(2) - tp.clone(), y.sum_dim(2) - tp)
    } else {
        let (sp, sy) = (p.clone().abs().sum_dim(2), y.clone().abs().sum_dim(2));
        let d = (p - y).abs().sum_dim(2);
        let tp = (sp.clone() + sy.clone() - d) / 2.0;
        (tp.clone(), sp - tp.clone(), sy - tp)
    };
    let t = (tp.clone() + s) / (tp + fp * 0.5 + fn_ * 0.5 + s);
    (t.neg() + 1.0).mean()
}

#[test]
fn a_burn_op_soft_dice_agrees_and_the_classic_form_shows_the_bug() {
    let dev = device();
    let dims = [2usize, 3, 40];
    let n: usize = dims.iter().product();
    let x = data(n, 5, -2.0, 2.0);
    let mut y = data(n, 6, 0.05, 1.0);
    // Soft labels: a distribution over the classes per pixel.
    for b in 0..2 {
        for i in 0..40 {
            let s: f32 = (0..3).map(|c| y[(b * 3 + c) * 40 + i]).sum();
            (0..3).for_each(|c| y[(b * 3 + c) * 40 + i] /= s);
        }
    }
    let tx = || Tensor::<3>::from_data(TensorData::new(x.clone(), dims), &dev).require_grad();
    let ty = || Tensor::<3>::from_data(TensorData::new(y.clone(), dims), &dev);
    let opts = LossOptions::dice().smoothing(1e-5, 1e-5);
    let ours = SegLossConfig::new(opts).init().unwrap();
    let a = tx();
    let la = ours
        .forward(a.clone(), Targets::<3, 2>::Soft(ty()))
        .unwrap();
    let ga = host(a.grad(&la.clone().backward()).unwrap());
    let b = tx();
    let lb = burn_soft_dice(b.clone(), ty(), 1e-5, false);
    let gb = host(b.grad(&lb.clone().backward()).unwrap());
    let (va, vb) = (la.into_scalar::<f32>(), lb.into_scalar::<f32>());
    assert!((va - vb).abs() <= 1e-5, "loss {va} vs burn ops {vb}");
    check_close("grad vs burn ops", &ga, &gb, 1e-5);

    // The bug: one pixel labelled 0.5, as a probability (no activation): the classic
    // Dice is smaller at p = 1 (1/3) than at p = y (1/2); the soft one is 0 at p = y.
    let loss_at = |q: f32, f: Formulation| {
        let o = LossOptions::dice()
            .activation(Activation::None)
            .formulation(f)
            .smoothing(0.0, 0.0);
        let l = SegLossConfig::new(o).init().unwrap();
        let p = Tensor::<3>::from_data(TensorData::new(vec![q], [1, 1, 1]), &dev);
        let y = Tensor::<3>::from_data(TensorData::new(vec![0.5f32], [1, 1, 1]), &dev);
        l.forward(p, Targets::<3, 2>::Soft(y))
            .unwrap()
            .into_scalar::<f32>()
    };
    assert!(loss_at(1.0, Formulation::Classic) < loss_at(0.5, Formulation::Classic));
    assert!(loss_at(0.5, Formulation::Soft) < loss_at(1.0, Formulation::Soft));
    assert!(loss_at(0.5, Formulation::Soft).abs() < 1e-6);
}

/// A schedule-driven `SegLoss` (issue 23): at each step of a warm-up, a ramp and the
/// final stage, `set_options(schedule.options_at(step))` gives the loss and gradient of a
/// `SegLoss` built from those options, on the zero-copy path, and both equal the f64 CPU
/// reference of options whose weights are computed here from the ramp's formula (SPEC
/// §8.1), independently of `Schedule`.
#[test]
fn a_schedule_driven_segloss_equals_a_hand_built_one_at_each_step() {
    use segloss::{CrossEntropy, Ramp, Schedule};
    let dev = device();
    let ctx = Context::new_or_cpu();
    let warm_up = LossOptions::jaccard()
        .overlap_weight(0.0)
        .cross_entropy(CrossEntropy::kl(1.0));
    let jml = LossOptions::jaccard()
        .overlap_weight(0.75)
        .cross_entropy(CrossEntropy::kl(0.25));
    let schedule = Schedule::new(&ctx, warm_up)
        .unwrap()
        .then(10, jml, Ramp::Cosine { steps: 10 })
        .unwrap();
    let dims = [2usize, 3, 16];
    let n: usize = dims.iter().product();
    let (x, y) = (data(n, 31, -3.0, 3.0), data(n, 32, 0.0, 1.0));
    let mut seg = SegLossConfig::new(schedule.options_at(0)).init().unwrap();
    let run = |seg: &segloss_burn::SegLoss| {
        let logits = Tensor::<3>::from_data(TensorData::new(x.clone(), dims), &dev).require_grad();
        let t: Targets<3, 2> = Targets::Soft(Tensor::<3>::from_data(
            TensorData::new(y.clone(), dims),
            &dev,
        ));
        let l = seg.forward(logits.clone(), t).unwrap();
        let v = l.clone().into_scalar::<f32>();
        let g = host(logits.grad(&l.backward()).unwrap());
        (v, g)
    };
    let mut values = Vec::new();
    for step in [0u64, 5, 10, 13, 15, 19, 20, 40] {
        seg.set_options(schedule.options_at(step)).unwrap();
        assert!(seg.is_zero_copy(&dev));
        let (v, g) = run(&seg);
        let hand = SegLossConfig::new(schedule.options_at(step))
            .init()
            .unwrap();
        let (hv, hg) = run(&hand);
        assert_eq!(v.to_bits(), hv.to_bits(), "step {step}");
        check_close(&format!("step {step} grad"), &g, &hg, 0.0);
        // The ramp by hand: warm-up (0, KL 1) before step 10, cosine to (0.75, KL 0.25)
        // over steps 10..20.
        let f = match step {
            s if s < 10 => 0.0,
            s if s < 20 => (1.0 - (std::f64::consts::PI * (s - 10) as f64 / 10.0).cos()) / 2.0,
            _ => 1.0,
        };
        let by_hand = LossOptions::jaccard()
            .overlap_weight(0.75 * f)
            .cross_entropy(CrossEntropy::kl(1.0 + (0.25 - 1.0) * f));
        let shape = segloss::Shape::new(&dims).unwrap();
        let want = segloss::Loss::new(&segloss::Context::cpu(), by_hand)
            .unwrap()
            .forward_backward(&segloss::Batch::soft(&shape, &x, &y))
            .unwrap();
        assert!(
            (v - want.loss).abs() <= 1e-4 * want.loss.abs() + 1e-6,
            "step {step}: {v} vs the reference's {}",
            want.loss
        );
        check_close(
            &format!("step {step} grad vs reference"),
            &g,
            &want.grad.unwrap(),
            1e-4,
        );
        values.push(v);
    }
    // The ramp moves the loss: not one value for every step.
    assert!(values.windows(2).any(|w| w[0] != w[1]), "{values:?}");
    // Invalid options change nothing.
    let before = seg.options().clone();
    assert!(seg
        .set_options(before.clone().overlap_weight(-1.0))
        .is_err());
    assert_eq!(seg.options(), &before);
}
