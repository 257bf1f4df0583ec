//! Generalized Dice: the GPU against the f64 reference on random shapes and options
//! (masks, ignore_index, empty classes, every w_type, level and reduction), the
//! reference's analytic gradient against finite differences, and bad input.

mod common;

use common::{assert_close, Data, Rng};
use segloss::reference::{evaluate, RefBatch, RefTarget};
use segloss::{
    Activation, Aggregation, Context, Error, Focal, Formulation, GdlWeight, Loss, LossOptions,
    Overlap, Reduction, Shape,
};

fn gdl(weight: GdlWeight, agg: Aggregation, r: Reduction) -> LossOptions {
    let mut o = LossOptions::dice().aggregation(agg).reduction(r);
    o.overlap = Overlap::GeneralizedDice { weight };
    o
}

#[test]
fn gpu_matches_the_reference_on_random_cases() {
    let Some(ctx) = common::gpu() else { return };
    let mut rng = Rng::new(0x6d1);
    let mut n = 0;
    for weight in [GdlWeight::Simple, GdlWeight::Square, GdlWeight::Uniform] {
        for agg in [Aggregation::DATASET, Aggregation::IMAGE] {
            for r in [Reduction::Mean, Reduction::Sum, Reduction::None] {
                for index in [false, true] {
                    let dims = [1 + rng.below(4), 2 + rng.below(6), 3 + rng.below(9), 5];
                    let masked = rng.bool();
                    let mut d = Data::random(&mut rng, &dims, index, masked);
                    // Class 1 empty in image 0 (an infinite weight, replaced).
                    let n_px = dims[2] * dims[3];
                    for i in 0..n_px {
                        d.soft[n_px + i] = 0.0;
                        if d.index[i] == 1 {
                            d.index[i] = 0;
                        }
                    }
                    let mut o = gdl(weight, agg, r);
                    o.include_background = rng.bool();
                    o.formulation = [Formulation::Soft, Formulation::Classic][rng.below(2)];
                    if !index && rng.bool() {
                        o.activation = Activation::Sigmoid;
                    }
                    if index && rng.bool() {
                        o.ignore_index = Some(255);
                        d.index[2] = 255;
                    }
                    let out = common::loss(&ctx, o.clone())
                        .forward_backward(&d.batch())
                        .unwrap();
                    assert_close(&format!("{dims:?} {o:?}"), &out, &d.reference(&o), 1e-4);
                    n += 1;
                }
            }
        }
    }
    assert_eq!(n, 36);
}

#[test]
fn reference_gradient_matches_finite_differences() {
    let mut rng = Rng::new(0xfd);
    for case in 0..24 {
        let shape = Shape::new(&[2, 3, 4, 3]).unwrap();
        let weight = [GdlWeight::Simple, GdlWeight::Square, GdlWeight::Uniform][case % 3];
        let agg = [Aggregation::DATASET, Aggregation::IMAGE][case / 3 % 2];
        let r = [Reduction::Mean, Reduction::Sum][case / 6 % 2];
        let mut o = gdl(weight, agg, r);
        o.formulation = [Formulation::Soft, Formulation::Classic][case / 12];
        o.include_background = case % 2 == 0;
        if case % 4 == 3 {
            o = o.overlap_weight(0.7).focal(Focal::sigmoid(0.4, 2.0));
        }
        let x: Vec<f64> = (0..shape.len()).map(|_| rng.range(-2.0, 2.0)).collect();
        // Hard targets (away from the L1 kinks at p = y), class 2 empty in image 1.
        let mut y = vec![0.0; shape.len()];
        for b in 0..2 {
            for i in 0..12 {
                let c = if b == 1 { rng.below(2) } else { rng.below(3) };
                y[(b * 3 + c) * 12 + i] = 1.0;
            }
        }
        let run = |x: &[f64]| {
            let b = RefBatch {
                shape: &shape,
                input: x,
                target: RefTarget::Soft(&y),
                mask: None,
            };
            evaluate(&o, &b, true).unwrap()
        };
        let g = run(&x).grad.unwrap();
        let h = 1e-6;
        for i in 0..shape.len() {
            let (mut xp, mut xm) = (x.clone(), x.clone());
            xp[i] += h;
            xm[i] -= h;
            let fd = (run(&xp).loss - run(&xm).loss) / (2.0 * h);
            assert!(
                (g[i] - fd).abs() <= 1e-6 * (1.0 + fd.abs()),
                "case {case} {o:?}: grad[{i}] analytic {} vs finite difference {fd}",
                g[i]
            );
        }
    }
}

#[test]
fn bad_generalized_dice_options_are_typed_errors() {
    let ctx = common::gpu().unwrap_or_else(Context::cpu);
    for bad in ["squared", "", "Square", "inverse"] {
        let r = bad.parse::<GdlWeight>();
        assert!(
            matches!(r, Err(Error::InvalidOption { name: "w_type", .. })),
            "{bad}"
        );
    }
    assert_eq!(" simple ".parse::<GdlWeight>().unwrap(), GdlWeight::Simple);
    let mixed = Aggregation {
        dataset: 0.5,
        image: 0.5,
        class: 0.0,
    };
    let cases = [
        (
            "class level",
            gdl(GdlWeight::Square, Aggregation::CLASS, Reduction::Mean),
        ),
        ("two levels", gdl(GdlWeight::Square, mixed, Reduction::Mean)),
        (
            "squared form",
            gdl(GdlWeight::Square, Aggregation::IMAGE, Reduction::Mean)
                .formulation(Formulation::Squared),
        ),
        (
            "class weights",
            gdl(GdlWeight::Square, Aggregation::IMAGE, Reduction::Mean)
                .class_weights(vec![1.0, 2.0]),
        ),
        (
            "log loss",
            gdl(GdlWeight::Square, Aggregation::IMAGE, Reduction::Mean).log_loss(true),
        ),
        (
            "negative focal weight",
            segloss::monai::GeneralizedDiceFocalLoss {
                softmax: true,
                weight: Some(vec![1.0, -1.0]),
                ..Default::default()
            }
            .options(),
        ),
        (
            "non-finite λ",
            segloss::monai::GeneralizedDiceFocalLoss {
                softmax: true,
                lambda_gdl: f64::NAN,
                ..Default::default()
            }
            .options(),
        ),
    ];
    for (what, o) in cases {
        let r = Loss::new(&ctx, o);
        assert!(
            matches!(r, Err(Error::InvalidOption { .. })),
            "{what}: {r:?}"
        );
    }
    // The context is still usable.
    let mut rng = Rng::new(1);
    let d = Data::random(&mut rng, &[2, 3, 6], true, false);
    let o = gdl(GdlWeight::Square, Aggregation::IMAGE, Reduction::Mean);
    let out = common::loss(&ctx, o.clone())
        .forward_backward(&d.batch())
        .unwrap();
    assert_close("after bad options", &out, &d.reference(&o), 1e-4);
}
