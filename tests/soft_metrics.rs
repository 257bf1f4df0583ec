//! Soft predictions as metrics (`Prediction::Soft`): per (image, class) the L1 soft forms
//! tp = (Σp + Σy − Σ|p − y|)/2, fp = Σp − tp, fn = Σy − tp, against an f64 computation in
//! this test (1e-5 relative: the GPU sums in f32 trees), on the CPU and the GPU; on hard
//! labels they equal the same probabilities against the label maps; hard predictions
//! refuse soft targets.

mod common;

use common::Rng;
use segloss::metrics::{Counting, Labels, Metrics, Prediction};
use segloss::{Activation, Context, Error, Shape};

/// Softmax over the classes of `[B, C, N]` scores, in f64.
fn softmax(x: &[f32], b: usize, c: usize, n: usize) -> Vec<f64> {
    let mut p = vec![0.0; x.len()];
    for bi in 0..b {
        for i in 0..n {
            let at = |k: usize| (bi * c + k) * n + i;
            let m = (0..c).map(|k| f64::from(x[at(k)])).fold(f64::MIN, f64::max);
            let s: f64 = (0..c).map(|k| (f64::from(x[at(k)]) - m).exp()).sum();
            for k in 0..c {
                p[at(k)] = (f64::from(x[at(k)]) - m).exp() / s;
            }
        }
    }
    p
}

fn contexts() -> Vec<Context> {
    let mut v = vec![Context::cpu()];
    v.extend(common::gpu());
    v
}

#[test]
fn soft_predictions_against_soft_targets_follow_the_l1_forms() {
    let (b, c, h, w) = (3usize, 4usize, 9usize, 7usize);
    let n = h * w;
    let mut rng = Rng::new(31);
    let x: Vec<f32> = (0..b * c * n)
        .map(|_| rng.range(-3.0, 3.0) as f32)
        .collect();
    let mut y: Vec<f32> = (0..b * c * n).map(|_| rng.range(0.0, 1.0) as f32).collect();
    // Soft labels that sum to 1 per pixel (averaged annotators).
    for bi in 0..b {
        for i in 0..n {
            let s: f32 = (0..c).map(|k| y[(bi * c + k) * n + i]).sum();
            (0..c).for_each(|k| y[(bi * c + k) * n + i] /= s);
        }
    }
    let p = softmax(&x, b, c, n);
    let shape = Shape::new(&[b, c, h, w]).unwrap();
    for ctx in contexts() {
        let mut m = Metrics::new(&ctx, c, None)
            .unwrap()
            .with_counting(Counting::Device);
        let pred = Prediction::Soft {
            scores: &x,
            activation: Activation::Softmax,
        };
        m.update(&shape, pred, Labels::Soft(&y), None).unwrap();
        let st = m.state().unwrap().clone();
        for bi in 0..b {
            for k in 0..c {
                let at = |i: usize| (bi * c + k) * n + i;
                let sp: f64 = (0..n).map(|i| p[at(i)]).sum();
                let sy: f64 = (0..n).map(|i| f64::from(y[at(i)])).sum();
                let d: f64 = (0..n).map(|i| (p[at(i)] - f64::from(y[at(i)])).abs()).sum();
                let tp = (sp + sy - d) / 2.0;
                let want = [tp, sp, sy];
                let got = st.images[bi].counts[k];
                for q in 0..3 {
                    assert!(
                        (got[q] - want[q]).abs() <= 1e-5 * want[q].max(1.0),
                        "{:?} image {bi} class {k} [{q}]: {} vs {}",
                        ctx.backend(),
                        got[q],
                        want[q]
                    );
                }
            }
        }
        // The dataset level from those sums.
        let r = m.result().unwrap();
        assert!(r.miou_d > 0.0 && r.miou_d < 1.0);
    }
}

#[test]
fn soft_predictions_on_hard_labels_equal_label_maps_and_one_hot() {
    let (b, c, n) = (2usize, 3usize, 40usize);
    let mut rng = Rng::new(32);
    let x: Vec<f32> = (0..b * c * n)
        .map(|_| rng.range(-2.0, 2.0) as f32)
        .collect();
    let labels: Vec<u32> = (0..b * n).map(|_| rng.below(c) as u32).collect();
    let one_hot: Vec<f32> = (0..b * c * n)
        .map(|j| {
            let (bi, k, i) = (j / (c * n), (j / n) % c, j % n);
            f32::from(u8::from(labels[bi * n + i] as usize == k))
        })
        .collect();
    let shape = Shape::new(&[b, c, n]).unwrap();
    for ctx in contexts() {
        let pred = Prediction::Soft {
            scores: &x,
            activation: Activation::Softmax,
        };
        let mut a = Metrics::new(&ctx, c, None)
            .unwrap()
            .with_counting(Counting::Device);
        a.update(&shape, pred, Labels::U32(&labels), None).unwrap();
        let mut h = Metrics::new(&ctx, c, None)
            .unwrap()
            .with_counting(Counting::Device);
        h.update(&shape, pred, Labels::MultiHot(&one_hot), None)
            .unwrap();
        let (sa, sh) = (a.state().unwrap().clone(), h.state().unwrap().clone());
        for (ia, ih) in sa.images.iter().zip(&sh.images) {
            for (ca, ch) in ia.counts.iter().zip(&ih.counts) {
                for q in 0..3 {
                    assert!((ca[q] - ch[q]).abs() <= 1e-5 * ca[q].max(1.0));
                }
            }
        }
        // The labelled weight of a label map is its pixel count.
        assert!((sa.images[0].valid - n as f64).abs() < 1e-3);
    }
}

#[test]
fn hard_predictions_refuse_soft_targets() {
    let shape = Shape::new(&[1, 2, 2]).unwrap();
    for ctx in contexts() {
        let mut m = Metrics::new(&ctx, 2, None)
            .unwrap()
            .with_counting(Counting::Device);
        let r = m.update(
            &shape,
            Prediction::Labels(&[0, 1]),
            Labels::Soft(&[0.3, 0.7, 0.7, 0.3]),
            None,
        );
        assert!(
            matches!(r, Err(Error::InvalidOption { name: "target", .. })),
            "{r:?}"
        );
    }
}
