//! Issue #13, sections 3 and 4: every silent wrong answer seen by a hostile-input driver
//! is now a typed error or the right value, on the GPU and the CPU reference alike, and
//! the context is usable afterwards.

mod common;

use common::{assert_close, Data, Rng};
use segloss::monai::{DiceCELoss, DiceLoss, TverskyLoss};
use segloss::{
    reference, Activation, ActiveClasses, Batch, Context, Error, GpuBatch, GpuTarget, Loss,
    LossOptions, Reduction, Shape,
};

/// The GPU context (must exist in CI) and the CPU reference context.
fn contexts() -> Vec<Context> {
    let mut v = vec![Context::cpu()];
    v.extend(common::gpu());
    v
}

/// The context still computes a small batch right.
fn still_ok(ctx: &Context, what: &str) {
    let mut rng = Rng::new(7);
    let d = Data::random(&mut rng, &[2, 3, 5], false, false);
    let o = LossOptions::dice();
    let out = common::loss(ctx, o.clone())
        .forward_backward(&d.batch())
        .unwrap();
    assert_close(what, &out, &d.reference(&o), 1e-4);
}

#[test]
fn a_huge_valid_shape_with_short_slices_is_a_length_error_not_an_abort() {
    let s = Shape::new(&[1, 1, (1usize << 32) - 1]).unwrap();
    let (x, y) = ([0.5f32; 4], [0.5f32; 4]);
    for ctx in contexts() {
        let loss = common::loss(&ctx, LossOptions::dice().activation(Activation::Sigmoid));
        let b = Batch::soft(&s, &x, &y);
        fn is_len<T>(r: Result<T, Error>) -> bool {
            matches!(r, Err(Error::LengthMismatch { .. }))
        }
        assert!(is_len(loss.forward(&b)));
        assert!(is_len(loss.forward_backward(&b)));
        assert!(is_len(loss.forward_backward_into(&b, &mut [0.0; 4])));
        assert!(is_len(loss.stats(&b)));
        assert!(is_len(pollster::block_on(loss.forward_backward_async(&b))));
        still_ok(&ctx, "after a huge shape");
    }
}

#[test]
fn options_beyond_f32_are_refused_and_overflow_is_an_error() {
    for (what, o) in [
        ("tversky(1e300)", LossOptions::tversky(1e300, 0.5)),
        ("smoothing(1e39)", LossOptions::dice().smoothing(1e39, 1e39)),
        (
            "gamma(1e39)",
            LossOptions {
                gamma: 1e39,
                ..LossOptions::dice()
            },
        ),
        (
            "weights 1e39",
            LossOptions {
                class_weights: Some(vec![1e39, 1.0]),
                ..LossOptions::dice()
            },
        ),
    ] {
        let r = Loss::new(&Context::cpu(), o);
        assert!(
            matches!(r, Err(Error::InvalidOption { .. })),
            "{what}: {r:?}"
        );
    }
    // Finite in f32, but the loss overflows: an error, never an Ok holding ±Inf/NaN.
    let mut rng = Rng::new(3);
    let d = Data::random(&mut rng, &[2, 2, 9], false, false);
    let o = LossOptions {
        class_weights: Some(vec![3e38, 3e38]),
        reduction: Reduction::Sum,
        ..LossOptions::dice()
    };
    for ctx in contexts() {
        let r = common::loss(&ctx, o.clone()).forward_backward(&d.batch());
        match r {
            Err(Error::NonFiniteResult(_)) => {}
            Ok(out) => panic!("overflow returned Ok: loss {}", out.loss),
            Err(e) => panic!("overflow: {e}"),
        }
        still_ok(&ctx, "after an overflow");
    }
}

#[test]
fn a_target_equal_to_the_present_threshold_is_the_same_on_every_path() {
    let Some(gpu) = common::gpu() else { return };
    let mut rng = Rng::new(11);
    let mut d = Data::random(&mut rng, &[2, 3, 8], false, false);
    // Class 1 of image 0 holds exactly f32(0.3) at most: not present (0.3f32 > 0.3f32 is
    // false), whereas an f64 comparison (0.30000001192 > 0.3) would count it.
    for i in 0..8 {
        d.soft[8 + i] = if i % 2 == 0 { 0.3 } else { 0.0 };
    }
    let o = LossOptions {
        active_classes: ActiveClasses::Present { threshold: 0.3 },
        aggregation: segloss::Aggregation::CLASS,
        ..LossOptions::dice()
    };
    let want = d.reference(&o);
    for ctx in [gpu, Context::cpu()] {
        let out = common::loss(&ctx, o.clone())
            .forward_backward(&d.batch())
            .unwrap();
        assert_close("threshold equality", &out, &want, 1e-4);
    }
    assert!(!reference::present(f64::from(0.3f32), 0.3));
    assert!(reference::present(f64::from(0.31f32), 0.3));
}

#[test]
fn encode_refuses_foreign_and_aliased_buffers_with_typed_errors() {
    let Some(ctx) = common::gpu() else { return };
    let other = common::gpu().unwrap(); // another device (wgpu cannot tell devices of
                                        // different instances apart: one instance here)
    let mut rng = Rng::new(5);
    let d = Data::random(&mut rng, &[1, 2, 16], false, false);
    let (x, y) = (
        common::storage(&ctx, &d.input),
        common::storage(&ctx, &d.soft),
    );
    let foreign = common::storage(&other, &d.input);
    let loss = common::loss(&ctx, LossOptions::dice());
    let dev = ctx.device().unwrap();
    let mut enc = dev.create_command_encoder(&Default::default());
    let gb = |input| GpuBatch {
        shape: &d.shape,
        input,
        target: GpuTarget::Soft(y.slice(..)),
        mask: None,
    };
    let r = loss.encode(&mut enc, &gb(foreign.slice(..)), None);
    assert!(
        matches!(r, Err(Error::InvalidBuffer { name: "input", .. })),
        "{r:?}"
    );
    let g = common::storage(&ctx, &vec![0.0; d.input.len()]);
    let r = loss.encode(&mut enc, &gb(foreign.slice(..)), Some(g.slice(..)));
    assert!(matches!(r, Err(Error::InvalidBuffer { .. })), "{r:?}");
    // The gradient aliasing the input (or the target).
    let r = loss.encode(&mut enc, &gb(x.slice(..)), Some(x.slice(..)));
    assert!(
        matches!(r, Err(Error::InvalidBuffer { name: "grad", .. })),
        "{r:?}"
    );
    let r = loss.encode(&mut enc, &gb(x.slice(..)), Some(y.slice(..)));
    assert!(
        matches!(r, Err(Error::InvalidBuffer { name: "grad", .. })),
        "{r:?}"
    );
    // The encoder is still usable: a valid call on it computes right.
    let res = loss
        .encode(&mut enc, &gb(x.slice(..)), Some(g.slice(..)))
        .unwrap();
    ctx.queue().unwrap().submit([enc.finish()]);
    let mut out = loss.read(&res).unwrap();
    out.grad = Some(common::read_f32(&ctx, &g));
    assert_close(
        "after refused encodes",
        &out,
        &d.reference(&LossOptions::dice()),
        1e-4,
    );
    // ignore_index with soft targets is a host-API rule: refused here, not dropped.
    let li = common::loss(&ctx, LossOptions::dice().ignore_index(1));
    let mut enc = dev.create_command_encoder(&Default::default());
    let r = li.encode(&mut enc, &gb(x.slice(..)), None);
    assert!(
        matches!(
            r,
            Err(Error::InvalidOption {
                name: "ignore_index",
                ..
            })
        ),
        "{r:?}"
    );
}

#[test]
fn a_nan_input_gives_an_error_and_a_zero_gradient() {
    let Some(ctx) = common::gpu() else { return };
    let mut rng = Rng::new(9);
    for act in [Activation::Softmax, Activation::Sigmoid] {
        let mut d = Data::random(&mut rng, &[2, 3, 8], false, false);
        d.input[5] = f32::NAN;
        let (x, y) = (
            common::storage(&ctx, &d.input),
            common::storage(&ctx, &d.soft),
        );
        let g = common::storage(&ctx, &vec![1.0; d.input.len()]);
        let loss = common::loss(&ctx, LossOptions::dice().activation(act));
        let gb = GpuBatch {
            shape: &d.shape,
            input: x.slice(..),
            target: GpuTarget::Soft(y.slice(..)),
            mask: None,
        };
        let res = loss.run(&gb, Some(g.slice(..))).unwrap();
        assert!(matches!(loss.read(&res), Err(Error::NonFiniteInput { .. })));
        let grad = common::read_f32(&ctx, &g);
        assert!(grad.iter().all(|v| *v == 0.0), "{act:?}: gradient not zero");
    }
}

#[test]
fn activation_none_with_values_outside_unit_interval_is_an_error() {
    let mut rng = Rng::new(13);
    let d = Data::random(&mut rng, &[2, 3, 7], false, false); // logits in [-4, 4]
    for ctx in contexts() {
        let loss = common::loss(&ctx, LossOptions::dice().activation(Activation::None));
        let r = loss.forward_backward(&d.batch());
        assert!(
            matches!(r, Err(Error::ProbabilityOutOfRange { .. })),
            "{r:?}"
        );
        still_ok(&ctx, "after logits with activation none");
    }
}

#[test]
fn one_channel_softmax_is_an_error_natively_and_monai_s_identity_in_monai() {
    let mut rng = Rng::new(17);
    let mut d = Data::random(&mut rng, &[3, 1, 10], false, false);
    let r = Loss::new(&Context::cpu(), LossOptions::dice())
        .unwrap()
        .forward(&d.batch());
    assert!(
        matches!(
            r,
            Err(Error::InvalidOption {
                name: "activation",
                ..
            })
        ),
        "{r:?}"
    );
    // MONAI: "single channel prediction, `softmax=True` ignored": no activation, the
    // input as it is (logits too).
    let monai = DiceLoss {
        softmax: true,
        ..Default::default()
    }
    .options();
    let plain = DiceLoss::default().options(); // no activation
    for ctx in contexts() {
        let a = common::loss(&ctx, monai.clone())
            .forward_backward(&d.batch())
            .unwrap();
        let mut ref_opts = plain.clone();
        ref_opts.single_channel_softmax = segloss::SingleChannelSoftmax::Identity;
        ref_opts.activation = Activation::Softmax;
        assert_close("monai softmax C=1", &a, &d.reference(&ref_opts), 1e-4);
        // On probabilities it equals the explicit no-activation loss.
        let probs: Vec<f32> = d.input.iter().map(|v| 1.0 / (1.0 + (-v).exp())).collect();
        let saved = std::mem::replace(&mut d.input, probs);
        let a = common::loss(&ctx, monai.clone())
            .forward(&d.batch())
            .unwrap();
        let b = common::loss(&ctx, plain.clone())
            .forward(&d.batch())
            .unwrap();
        assert!((a.loss - b.loss).abs() <= 1e-6, "{} vs {}", a.loss, b.loss);
        d.input = saved;
    }
}

#[test]
fn error_messages_never_print_rust_options() {
    let errors = [
        Error::ClassIndexOutOfRange {
            value: None,
            classes: 3,
            position: None,
        },
        Error::ClassIndexOutOfRange {
            value: Some(3),
            classes: 3,
            position: Some(7),
        },
        Error::NonFiniteInput { position: None },
        Error::SoftTargetOutOfRange { position: Some(2) },
        Error::ProbabilityOutOfRange { position: None },
        Error::FractionalIgnore { position: Some(1) },
    ];
    for e in errors {
        let m = e.to_string();
        assert!(!m.contains("None") && !m.contains("Some("), "{m}");
    }
    let m = Error::ClassIndexOutOfRange {
        value: Some(3),
        classes: 3,
        position: Some(7),
    }
    .to_string();
    assert!(m.contains("class index 3") && m.contains("index 7"), "{m}");
}

/// The keep-mask MONAI's `create_ignore_mask` gives one-hot / soft targets.
fn monai_mask(d: &Data, k: i64) -> Vec<bool> {
    let (b, c, n) = (d.shape.batch(), d.shape.classes(), d.shape.pixels());
    let mut keep = vec![true; b * n];
    for bi in 0..b {
        for i in 0..n {
            let y = |ci: usize| d.soft[(bi * c + ci) * n + i];
            keep[bi * n + i] = if k >= 0 && (k as usize) < c {
                1.0 - y(k as usize) > 0.0
            } else {
                (0..c).map(y).sum::<f32>() > 0.0
            };
        }
    }
    keep
}

#[test]
fn monai_ignore_index_on_one_hot_targets_follows_monai() {
    let mut rng = Rng::new(19);
    let mut d = Data::random(&mut rng, &[2, 4, 9], true, false);
    // One-hot targets from the index map, with some all-zero pixels.
    let (b, c, n) = (2, 4, 9);
    for bi in 0..b {
        for i in 0..n {
            for ci in 0..c {
                let hot = d.index[bi * n + i] as usize == ci && i % 5 != 4;
                d.soft[(bi * c + ci) * n + i] = if hot { 1.0 } else { 0.0 };
            }
        }
    }
    d.use_index = false;
    for ctx in contexts() {
        for k in [1i64, 0, 255, -100] {
            let o = DiceLoss {
                softmax: true,
                ignore_index: Some(k),
                ..Default::default()
            }
            .options();
            let got = common::loss(&ctx, o.clone())
                .forward_backward(&d.batch())
                .unwrap();
            // The same loss with MONAI's mask given explicitly, no ignore_index.
            let mask = monai_mask(&d, k);
            let mut plain = o.clone();
            plain.ignore_index = None;
            let mut dm = Data {
                mask: Some(mask),
                ..d.clone()
            };
            dm.use_index = false;
            assert_close(
                &format!("ignore_index {k}"),
                &got,
                &dm.reference(&plain),
                1e-4,
            );
            // Tversky takes it too, with the same rule.
            let t = TverskyLoss {
                softmax: true,
                ignore_index: Some(k),
                ..Default::default()
            };
            let got = common::loss(&ctx, t.options()).forward(&d.batch()).unwrap();
            let mut tp = t.options();
            tp.ignore_index = None;
            let want = dm.reference(&tp);
            assert!(
                (f64::from(got.loss) - want.loss).abs() < 1e-5,
                "tversky {k}"
            );
        }
        // A fractional value in the ignored channel: MONAI would weigh the pixel; refused.
        let mut ds = d.clone();
        ds.soft[(c + 1) * n] = 0.5;
        let o = DiceLoss {
            softmax: true,
            ignore_index: Some(1),
            ..Default::default()
        }
        .options();
        let r = common::loss(&ctx, o).forward(&ds.batch());
        assert!(matches!(r, Err(Error::FractionalIgnore { .. })), "{r:?}");
    }
}

#[test]
fn monai_reductions_are_typed_and_dice_ce_refuses_none() {
    let o = DiceCELoss {
        softmax: true,
        reduction: Reduction::None,
        ..Default::default()
    }
    .options();
    assert!(matches!(
        Loss::new(&Context::cpu(), o),
        Err(Error::InvalidOption { .. })
    ));
    let o = DiceLoss {
        reduction: Reduction::Sum,
        ..Default::default()
    }
    .options();
    assert_eq!(o.reduction, Reduction::Sum);
}
