//! One test per kernel on small cases checked by hand, on the GPU (the kernels) and the
//! CPU reference (their f64 twins): the same hand values from both. Through the public
//! API: the split phase exposes what `tile_sums` + `item_sums` (the item statistics) and
//! `row_sums` + `finalize` (the shared block) leave; the loss is `finalize`'s, the
//! gradient `coef`'s + `grad`'s; a 300-class softmax exercises `norm` and `softmax_dot`.

mod common;

use segloss::{Activation, Batch, Context, LossOptions, Shape};

const TOL: f32 = 2e-6;

fn contexts() -> Vec<Context> {
    let mut v = vec![Context::cpu()];
    v.extend(common::gpu());
    v
}

fn close(what: &str, got: f32, want: f64) {
    assert!(
        (f64::from(got) - want).abs() <= f64::from(TOL) * (1.0 + want.abs()),
        "{what}: {got} vs hand value {want}"
    );
}

/// B = 1, C = 2, N = 2, probabilities given (activation none), soft Dice, no smoothing:
/// p = [[0.2, 0.6], [0.8, 0.4]], y = [[0, 1], [1, 0]].
fn case_a() -> (Shape, Vec<f32>, Vec<f32>, LossOptions) {
    let shape = Shape::new(&[1, 2, 2]).unwrap();
    let p = vec![0.2, 0.6, 0.8, 0.4];
    let y = vec![0.0, 1.0, 1.0, 0.0];
    let o = LossOptions::dice()
        .activation(Activation::None)
        .smoothing(0.0, 0.0);
    (shape, p, y, o)
}

#[test]
fn tile_sums_and_item_sums_give_the_hand_statistics() {
    let (shape, p, y, o) = case_a();
    // Soft form: tp = Σ min(p, y), fp = Σp − tp, fn = Σy − tp; present = #(y > 0).
    let want = [[0.6, 0.2, 0.4, 1.0], [0.8, 0.4, 0.2, 1.0]];
    for ctx in contexts() {
        let st = common::loss(&ctx, o.clone())
            .stats(&Batch::soft(&shape, &p, &y))
            .unwrap();
        for (c, (got, want)) in st.items().iter().zip(want).enumerate() {
            for k in 0..4 {
                close(
                    &format!("{:?} item {c}[{k}]", ctx.backend()),
                    got[k],
                    want[k],
                );
            }
        }
    }
}

#[test]
fn row_sums_and_finalize_give_the_hand_shared_block() {
    let (shape, p, y, o) = case_a();
    // T0 = 0.6 / 0.9, T1 = 0.8 / 1.1; image term = mean of 1 − T over the 2 classes.
    let (l0, l1) = (1.0 - 0.6 / 0.9, 1.0 - 0.8 / 1.1);
    for ctx in contexts() {
        let st = common::loss(&ctx, o.clone())
            .stats(&Batch::soft(&shape, &p, &y))
            .unwrap();
        let sh = st.shared();
        let what = format!("{:?}", ctx.backend());
        close(&format!("{what} images"), sh[0], 1.0);
        close(&format!("{what} active images"), sh[1], 1.0);
        close(&format!("{what} image terms"), sh[2], (l0 + l1) / 2.0);
        // Class rows: Σ_b (tp, fp, fn, present), then (Σ active ℓ, active images).
        for (c, (row, l)) in [([0.6, 0.2, 0.4, 1.0], l0), ([0.8, 0.4, 0.2, 1.0], l1)]
            .into_iter()
            .enumerate()
        {
            let r = &sh[8 + 8 * c..16 + 8 * c];
            for k in 0..4 {
                close(&format!("{what} class {c} sum {k}"), r[k], row[k]);
            }
            close(&format!("{what} class {c} ℓ"), r[4], l);
            close(&format!("{what} class {c} count"), r[5], 1.0);
        }
    }
}

#[test]
fn finalize_coef_and_grad_give_the_hand_loss_and_gradient() {
    let (shape, p, y, o) = case_a();
    let (t0, d0) = (0.6 / 0.9, 0.9);
    let (t1, d1) = (0.8 / 1.1, 1.1);
    let loss = ((1.0 - t0) + (1.0 - t1)) / 2.0;
    // dL/dT = −1/2 per class; p > y: dL/dp = ¼·T/den; p < y: −½·(1 − T/2)/den.
    let grad = [
        0.25 * t0 / d0,
        -0.5 * (1.0 - 0.5 * t0) / d0,
        -0.5 * (1.0 - 0.5 * t1) / d1,
        0.25 * t1 / d1,
    ];
    for ctx in contexts() {
        let out = common::loss(&ctx, o.clone())
            .forward_backward(&Batch::soft(&shape, &p, &y))
            .unwrap();
        let what = format!("{:?}", ctx.backend());
        close(&format!("{what} loss"), out.loss, loss);
        for (i, (g, w)) in out.grad.unwrap().iter().zip(grad).enumerate() {
            close(&format!("{what} grad[{i}]"), *g, w);
        }
    }
}

#[test]
fn norm_and_softmax_dot_over_two_class_chunks() {
    // 300 classes (two chunks of 256), equal logits: p = 1/300 everywhere. Pixel i is
    // labelled class i (i < 4). Classes 0..4: tp = 1/300, fp = 3/300, fn = 299/300, so
    // T = 1/152; the other 296 classes have tp = 0: T = 0.
    let (c, n) = (300, 4);
    let shape = Shape::new(&[1, c, n]).unwrap();
    let x = vec![0.0f32; c * n];
    let mut y = vec![0.0f32; c * n];
    for i in 0..n {
        y[i * n + i] = 1.0;
    }
    let o = LossOptions::dice().smoothing(0.0, 0.0);
    let want = (4.0 * (1.0 - 1.0 / 152.0) + 296.0) / 300.0;
    let mut grads = Vec::new();
    for ctx in contexts() {
        let out = common::loss(&ctx, o.clone())
            .forward_backward(&Batch::soft(&shape, &x, &y))
            .unwrap();
        let what = format!("{:?}", ctx.backend());
        close(&format!("{what} loss"), out.loss, want);
        let g = out.grad.unwrap();
        // Softmax: the gradient sums to 0 over the classes of each pixel.
        for i in 0..n {
            let s: f32 = (0..c).map(|k| g[k * n + i]).sum();
            assert!(s.abs() < 1e-7, "{what}: pixel {i} gradient sums to {s}");
        }
        grads.push(g);
    }
    if let [cpu, gpu] = &grads[..] {
        let max = cpu.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        for (i, (a, b)) in cpu.iter().zip(gpu).enumerate() {
            assert!((a - b).abs() <= 1e-5 * max, "grad[{i}]: cpu {a} vs gpu {b}");
        }
    }
}
