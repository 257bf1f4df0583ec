//! SPEC §5 properties, on the GPU (and the CPU reference where noted).

mod common;

use common::Rng;
use segloss::{
    Activation, Aggregation, Batch, Context, Formulation, LossOptions, Overlap, Reduction, Shape,
};

/// Per-item values `[B, C]` of probabilities `p` against soft targets `y`.
fn item_values(ctx: &Context, o: &LossOptions, shape: &Shape, p: &[f32], y: &[f32]) -> Vec<f32> {
    let o = o
        .clone()
        .activation(Activation::None)
        .reduction(Reduction::None);
    let out = common::loss(ctx, o)
        .forward(&Batch::soft(shape, p, y))
        .unwrap();
    out.values.unwrap()
}

/// Jaccard, Dice and one asymmetric Tversky index.
const OVERLAPS: [Overlap; 3] = [
    Overlap::Jaccard,
    Overlap::Dice,
    Overlap::Tversky {
        alpha: 0.3,
        beta: 0.7,
    },
];

fn contexts() -> Vec<Context> {
    let mut v = vec![Context::cpu()];
    v.extend(common::gpu());
    v
}

#[test]
fn soft_loss_is_zero_when_prediction_equals_target() {
    let mut rng = Rng::new(1);
    let shape = Shape::new(&[2, 3, 37, 29]).unwrap();
    let y: Vec<f32> = (0..shape.len()).map(|_| rng.f64() as f32).collect();
    for ctx in contexts() {
        for overlap in OVERLAPS {
            for agg in [Aggregation::DATASET, Aggregation::IMAGE, Aggregation::CLASS] {
                let mut o = LossOptions::dice().smoothing(1e-3, 1e-3).aggregation(agg);
                o.overlap = overlap;
                let v = item_values(&ctx, &o, &shape, &y, &y);
                assert!(
                    v.iter().all(|l| l.abs() < 1e-6),
                    "{overlap:?} {agg:?}: {v:?}"
                );
                // Classic is not zero there: it wants p = 1 where y > 0.
                let vc = item_values(
                    &ctx,
                    &o.clone().formulation(Formulation::Classic),
                    &shape,
                    &y,
                    &y,
                );
                assert!(vc.iter().all(|l| *l > 0.01), "classic {overlap:?}: {vc:?}");
            }
        }
    }
}

#[test]
fn single_pixel_minimum_is_at_p_equals_y_for_soft_and_p_one_for_classic() {
    let shape = Shape::new(&[1, 1, 1]).unwrap();
    for ctx in contexts() {
        for overlap in OVERLAPS {
            for y in [0.25f32, 0.5, 0.75] {
                let argmin = |f: Formulation| {
                    let mut o = LossOptions::dice().smoothing(0.0, 0.0).formulation(f);
                    o.overlap = overlap;
                    (0..=100)
                        .map(|i| {
                            let p = i as f32 / 100.0;
                            (item_values(&ctx, &o, &shape, &[p], &[y])[0], p)
                        })
                        .fold((f32::INFINITY, 0.0), |a, b| if b.0 < a.0 { b } else { a })
                        .1
                };
                assert_eq!(argmin(Formulation::Soft), y, "{overlap:?} soft y={y}");
                assert_eq!(
                    argmin(Formulation::Classic),
                    1.0,
                    "{overlap:?} classic y={y}"
                );
            }
        }
    }
}

#[test]
fn soft_and_classic_agree_on_hard_labels() {
    let mut rng = Rng::new(2);
    let shape = Shape::new(&[2, 4, 50, 21]).unwrap();
    let p: Vec<f32> = (0..shape.len()).map(|_| rng.f64() as f32).collect();
    let y: Vec<f32> = (0..shape.len())
        .map(|_| f32::from(u8::from(rng.bool())))
        .collect();
    for ctx in contexts() {
        let o = LossOptions::jaccard().smoothing(1e-5, 1e-5);
        let soft = item_values(&ctx, &o, &shape, &p, &y);
        let classic = item_values(
            &ctx,
            &o.clone().formulation(Formulation::Classic),
            &shape,
            &p,
            &y,
        );
        for (a, b) in soft.iter().zip(&classic) {
            assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0), "{a} vs {b}");
        }
    }
}

#[test]
fn soft_jaccard_is_a_metric_and_dice_is_j_over_2_minus_j() {
    let mut rng = Rng::new(3);
    let shape = Shape::new(&[3, 2, 64]).unwrap();
    let rand_vec = |rng: &mut Rng| -> Vec<f32> {
        (0..shape.len())
            .map(|_| {
                if rng.below(4) == 0 {
                    0.0
                } else {
                    rng.f64() as f32
                }
            })
            .collect()
    };
    let jac = LossOptions::jaccard().smoothing(0.0, 0.0);
    let dice = LossOptions::dice().smoothing(0.0, 0.0);
    for ctx in contexts() {
        for _ in 0..10 {
            let (a, b, c) = (rand_vec(&mut rng), rand_vec(&mut rng), rand_vec(&mut rng));
            let ab = item_values(&ctx, &jac, &shape, &a, &b);
            let ba = item_values(&ctx, &jac, &shape, &b, &a);
            let bc = item_values(&ctx, &jac, &shape, &b, &c);
            let ac = item_values(&ctx, &jac, &shape, &a, &c);
            for i in 0..ab.len() {
                assert!(
                    (ab[i] - ba[i]).abs() < 1e-6,
                    "symmetry {i}: {} vs {}",
                    ab[i],
                    ba[i]
                );
                assert!(
                    ac[i] <= ab[i] + bc[i] + 1e-6,
                    "triangle {i}: {} > {} + {}",
                    ac[i],
                    ab[i],
                    bc[i]
                );
            }
            let d = item_values(&ctx, &dice, &shape, &a, &b);
            for i in 0..ab.len() {
                let want = ab[i] / (2.0 - ab[i]);
                assert!(
                    (d[i] - want).abs() < 1e-6,
                    "dice {i}: {} vs J/(2-J) {want}",
                    d[i]
                );
            }
        }
    }
}

#[test]
fn results_are_bit_identical_run_to_run() {
    let Some(ctx) = common::gpu() else { return };
    let mut rng = Rng::new(4);
    let data = common::Data::random(&mut rng, &[2, 7, 311, 257], false, true);
    let o = LossOptions::dice().aggregation(Aggregation {
        dataset: 0.5,
        image: 0.3,
        class: 0.2,
    });
    let loss = common::loss(&ctx, o);
    let first = loss.forward_backward(&data.batch()).unwrap();
    for _ in 0..3 {
        let again = loss.forward_backward(&data.batch()).unwrap();
        assert_eq!(first.loss.to_bits(), again.loss.to_bits());
        let (g1, g2) = (first.grad.as_ref().unwrap(), again.grad.unwrap());
        common::assert_bits_eq("repeated gradient", g1, &g2);
    }
}
