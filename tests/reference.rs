//! The f64 reference's analytic gradient against central finite differences of its own
//! loss, over random option sets (the GPU is checked against this reference).

mod common;

use common::Rng;
use segloss::reference::{evaluate, RefBatch, RefTarget};
use segloss::{Activation, ActiveClasses, Aggregation, Formulation, LossOptions, Reduction, Shape};

#[test]
fn analytic_gradient_matches_finite_differences() {
    let mut rng = Rng::new(31);
    let mut checked = 0;
    for case in 0..120 {
        let dims = [
            1 + rng.below(3),
            1 + rng.below(4),
            2 + rng.below(6),
            1 + rng.below(3),
        ];
        let shape = Shape::new(&dims).unwrap();
        let mut o = [
            LossOptions::dice(),
            LossOptions::jaccard(),
            LossOptions::tversky(0.3, 0.7),
        ][rng.below(3)]
        .clone();
        o.formulation = [
            Formulation::Soft,
            Formulation::Squared,
            Formulation::Classic,
        ][rng.below(3)];
        o.activation = [Activation::Softmax, Activation::Sigmoid][rng.below(2)];
        if dims[1] == 1 {
            o.activation = Activation::Sigmoid; // a one-channel softmax is refused
        }
        o.smooth_nr = [1e-3, 1.0][rng.below(2)];
        o.smooth_dr = o.smooth_nr;
        o.include_background = rng.bool();
        o.log_loss = rng.below(3) == 0;
        o.gamma = [1.0, 1.5, 2.0][rng.below(3)];
        o.reduction = [Reduction::Mean, Reduction::Sum, Reduction::None][rng.below(3)];
        o.aggregation = if o.reduction == Reduction::Mean {
            Aggregation {
                dataset: rng.f64(),
                image: rng.f64(),
                class: rng.f64(),
            }
        } else {
            [Aggregation::DATASET, Aggregation::IMAGE, Aggregation::CLASS][rng.below(3)]
        };
        if rng.bool() {
            o.active_classes = ActiveClasses::Present { threshold: 0.2 };
        }
        let which = rng.below(4);
        common::add_compound(&mut rng, &mut o, dims[1], which);
        let x: Vec<f64> = (0..shape.len()).map(|_| rng.range(-3.0, 3.0)).collect();
        // Soft targets away from the kinks of |p − y| (p is never within 1e-3 of y).
        let y: Vec<f64> = (0..shape.len())
            .map(|_| [0.0, 1.0, rng.f64()][rng.below(3)])
            .collect();
        let mask: Option<Vec<bool>> = rng
            .bool()
            .then(|| (0..shape.map_len()).map(|_| rng.below(4) != 0).collect());
        let run = |x: &[f64]| {
            let b = RefBatch {
                shape: &shape,
                input: x,
                target: RefTarget::Soft(&y),
                mask: mask.as_deref(),
            };
            evaluate(&o, &b, true).unwrap()
        };
        let base = run(&x);
        let g = base.grad.unwrap();
        let gmax = g.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
        let h = 1e-6;
        for i in 0..x.len() {
            let (mut xp, mut xm) = (x.clone(), x.clone());
            xp[i] += h;
            xm[i] -= h;
            let (lp, lm) = (run(&xp).loss, run(&xm).loss);
            let fd = (lp - lm) / (2.0 * h);
            assert!(
                (fd - g[i]).abs() <= 1e-5 * gmax,
                "case {case} {dims:?} {o:?}: grad[{i}] analytic {} vs finite difference {fd}",
                g[i]
            );
            checked += 1;
        }
    }
    assert!(checked > 1000);
}
