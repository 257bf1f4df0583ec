//! Deep supervision: the pooling's hand-checked values, the GPU's pooled heads equal to
//! the f64 host pooling's (losses and gradients of every head, index and soft targets,
//! ignore index and mask, both poolings, 2D and 3D, integer and non-integer ratios),
//! MONAI's weights, and bad input as typed errors naming the head. The peers' golden
//! cases (MONAI's `DeepSupervisionLoss`, the PyTorch area composition) run through the
//! golden runner (`tests/golden.rs`).

mod common;

use common::Rng;
use segloss::deep::{pool_host, DeepSupervision, DeepTarget, Head, Pooling, Weights};
use segloss::monai::{DeepSupervisionLoss, WeightMode};
use segloss::{Context, Error, Formulation, LossOptions, Shape};

#[test]
fn pooling_by_hand() {
    // A 4×4 label map, one pixel of class 1 at (1, 1), 255 ignored at (3, 3).
    let mut t = vec![0u32; 16];
    t[5] = 1;
    t[15] = 255;
    let src = [4usize, 4];
    let (area, keep) = pool_host(
        (1, 2, &src),
        DeepTarget::Index(&t),
        None,
        Some(255),
        &[2, 2],
        Pooling::Area,
    );
    // Class 1's fraction per 2×2 cell: 1/4 in the top-left cell, 0 elsewhere; the
    // bottom-right cell keeps 3 pixels (one ignored).
    assert_eq!(&area[4..8], &[0.25, 0.0, 0.0, 0.0]);
    assert_eq!(&area[0..4], &[0.75, 1.0, 1.0, 1.0]);
    assert_eq!(keep, [true; 4]);
    // Nearest-exact picks pixels (1, 1), (1, 3), (3, 1), (3, 3): the structure survives
    // here, the ignored corner masks its cell out.
    let (near, keep) = pool_host(
        (1, 2, &src),
        DeepTarget::Index(&t),
        None,
        Some(255),
        &[2, 2],
        Pooling::NearestExact,
    );
    assert_eq!(&near[4..8], &[1.0, 0.0, 0.0, 0.0]);
    assert_eq!(keep, [true, true, true, false]);
    // 5 → 2 (non-integer): PyTorch's adaptive cells [0, 3) and [2, 5) overlap.
    let line: Vec<u32> = vec![1, 0, 0, 0, 1];
    let (p, _) = pool_host(
        (1, 2, &[5]),
        DeepTarget::Index(&line),
        None,
        None,
        &[2],
        Pooling::Area,
    );
    assert_eq!(p, [2.0 / 3.0, 2.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0]);
    // Nearest-exact 5 → 2: floor((i + 0.5) · 2.5) = 1, 3.
    let (p, _) = pool_host(
        (1, 2, &[5]),
        DeepTarget::Index(&line),
        None,
        None,
        &[2],
        Pooling::NearestExact,
    );
    assert_eq!(p, [1.0, 1.0, 0.0, 0.0]);
}

#[test]
fn weights_follow_monai() {
    assert_eq!(
        Weights::Exp.of(6).unwrap(),
        [1.0, 0.5, 0.25, 0.125, 0.0625, 0.0625]
    );
    assert_eq!(Weights::Two.of(3).unwrap(), [1.0, 0.5, 0.5]);
    assert_eq!(Weights::Same.of(2).unwrap(), [1.0, 1.0]);
    // MONAI: explicit weights when at least as many as heads, else weight_mode.
    let m = DeepSupervisionLoss {
        weight_mode: WeightMode::Two,
        weights: Some(vec![0.7, 0.2, 0.1]),
    };
    assert_eq!(m.weights().of(2).unwrap(), [0.7, 0.2]);
    assert_eq!(m.weights().of(4).unwrap(), [1.0, 0.5, 0.5, 0.5]);
    assert!(matches!(
        Weights::Explicit(vec![1.0]).of(2),
        Err(Error::InvalidOption { .. })
    ));
    assert!(matches!(
        Weights::Explicit(vec![1.0, f32::NAN]).of(2),
        Err(Error::InHead { head: 1, .. })
    ));
    assert!(matches!(
        Weights::Explicit(vec![-1.0, 1.0]).of(2),
        Err(Error::InHead { head: 0, .. })
    ));
}

/// Random heads at `sizes` of a target `[b, c, spatial]`.
fn heads(rng: &mut Rng, b: usize, c: usize, sizes: &[Vec<usize>]) -> Vec<(Shape, Vec<f32>)> {
    sizes
        .iter()
        .map(|s| {
            let mut dims = vec![b, c];
            dims.extend(s);
            let shape = Shape::new(&dims).unwrap();
            let x = (0..shape.len())
                .map(|_| rng.range(-3.0, 3.0) as f32)
                .collect();
            (shape, x)
        })
        .collect()
}

fn close(what: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-3);
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!((a - b).abs() <= tol * scale, "{what}[{i}]: {a} vs {b}");
    }
}

/// B, C, the target's spatial size, the heads' spatial sizes.
type Case = (usize, usize, Vec<usize>, Vec<Vec<usize>>);

#[test]
fn gpu_heads_equal_the_host_pooling() {
    let Some(gpu) = common::gpu() else {
        panic!("no GPU adapter: this test needs one");
    };
    let cpu = Context::cpu();
    let mut rng = Rng::new(36);
    let cases: [Case; 3] = [
        (
            2,
            4,
            vec![16, 12],
            vec![vec![16, 12], vec![8, 6], vec![5, 4], vec![2, 3]],
        ),
        (
            1,
            3,
            vec![9, 7, 6],
            vec![vec![9, 7, 6], vec![4, 3, 3], vec![2, 2, 1]],
        ),
        (3, 2, vec![33], vec![vec![33], vec![10], vec![1]]),
    ];
    for (b, c, spatial, sizes) in cases {
        let mut dims = vec![b, c];
        dims.extend(&spatial);
        let shape = Shape::new(&dims).unwrap();
        let hs = heads(&mut rng, b, c, &sizes);
        let head_refs: Vec<Head<'_>> = hs
            .iter()
            .map(|(s, x)| Head { shape: s, input: x })
            .collect();
        let labels: Vec<u32> = (0..shape.map_len())
            .map(|_| {
                if rng.below(9) == 0 {
                    255
                } else {
                    rng.below(c) as u32
                }
            })
            .collect();
        let soft: Vec<f32> = (0..shape.len()).map(|_| rng.f64() as f32).collect();
        let mask: Vec<bool> = (0..shape.map_len()).map(|_| rng.below(6) != 0).collect();
        for pooling in [Pooling::Area, Pooling::NearestExact] {
            for (what, target, ignore) in [
                ("index", DeepTarget::Index(&labels), Some(255)),
                ("soft", DeepTarget::Soft(&soft), None),
            ] {
                for m in [None, Some(&mask[..])] {
                    let mut o = LossOptions::dice().formulation(Formulation::Soft);
                    if let Some(i) = ignore {
                        o = o.ignore_index(i);
                    }
                    let on = |ctx: &Context| {
                        DeepSupervision::new(ctx, o.clone())
                            .unwrap()
                            .pooling(pooling)
                            .weights(Weights::Two)
                            .forward_backward(&head_refs, &shape, target, m)
                            .unwrap()
                    };
                    let (g, h) = (on(&gpu), on(&cpu));
                    let id = format!("{dims:?} {pooling:?} {what} mask={}", m.is_some());
                    close(&format!("{id} losses"), &g.losses, &h.losses, 1e-5);
                    assert!(
                        (g.loss - h.loss).abs() <= 1e-5 * h.loss.abs().max(1.0),
                        "{id}: total"
                    );
                    assert_eq!(g.weights, [1.0, 0.5, 0.5, 0.5][..sizes.len()]);
                    for (k, (a, b)) in g.grads.iter().zip(&h.grads).enumerate() {
                        close(&format!("{id} grad {k}"), a, b, 1e-4);
                    }
                    // The total is the weighted sum; the weights scale the gradients.
                    let sum: f32 = g.losses.iter().zip(&g.weights).map(|(l, w)| l * w).sum();
                    assert!((g.loss - sum).abs() < 1e-6);
                }
            }
        }
    }
}

#[test]
fn bad_input_names_the_head() {
    for ctx in [Some(Context::cpu()), common::gpu()].into_iter().flatten() {
        let ds = DeepSupervision::new(&ctx, LossOptions::dice()).unwrap();
        let full = Shape::new(&[1, 2, 8, 8]).unwrap();
        let x0 = vec![0f32; 128];
        let y = vec![0u32; 64];
        let big = Shape::new(&[1, 2, 16, 4]).unwrap();
        let other_c = Shape::new(&[1, 3, 4, 4]).unwrap();
        let other_b = Shape::new(&[2, 2, 4, 4]).unwrap();
        let flat = Shape::new(&[1, 2, 64]).unwrap();
        let x1 = vec![0f32; 64];
        let x2 = vec![0f32; 96];
        let h0 = Head {
            shape: &full,
            input: &x0,
        };
        let t = DeepTarget::Index(&y);
        let err = |hs: &[Head<'_>]| ds.forward_backward(hs, &full, t, None).unwrap_err();
        assert!(matches!(
            err(&[]),
            Error::InvalidOption { name: "heads", .. }
        ));
        for (k, h) in [
            (
                1,
                Head {
                    shape: &big,
                    input: &x1,
                },
            ),
            (
                1,
                Head {
                    shape: &other_c,
                    input: &x2,
                },
            ),
            (
                1,
                Head {
                    shape: &other_b,
                    input: &x1,
                },
            ),
            (
                1,
                Head {
                    shape: &flat,
                    input: &x0,
                },
            ),
            (
                1,
                Head {
                    shape: &full,
                    input: &x1,
                },
            ),
        ] {
            let e = err(&[h0, h]);
            assert!(matches!(e, Error::InHead { head, .. } if head == k), "{e}");
            assert!(e.to_string().starts_with(&format!("head {k}: ")), "{e}");
        }
        let explicit = DeepSupervision::new(&ctx, LossOptions::dice())
            .unwrap()
            .weights(Weights::Explicit(vec![1.0, 0.5, 0.25]));
        let e = explicit.forward(&[h0], &full, t, None).unwrap_err();
        assert!(
            matches!(
                e,
                Error::InvalidOption {
                    name: "weights",
                    ..
                }
            ),
            "{e}"
        );
        // A label out of range is the target's error, with its position.
        let mut bad = y.clone();
        bad[9] = 7;
        let e = ds
            .forward(&[h0], &full, DeepTarget::Index(&bad), None)
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::ClassIndexOutOfRange {
                    position: Some(9),
                    ..
                }
            ),
            "{e}"
        );
        let soft = vec![1.5f32; 128];
        let e = ds
            .forward(&[h0], &full, DeepTarget::Soft(&soft), None)
            .unwrap_err();
        assert!(matches!(e, Error::SoftTargetOutOfRange { .. }), "{e}");
        // The context stays usable.
        assert!(ds.forward(&[h0], &full, t, None).is_ok());
    }
}
