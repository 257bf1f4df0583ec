//! Bad input returns a typed error (never a panic, never a silent wrong result) and the
//! context stays usable: after every bad call, a good call must still match the reference.

mod common;

use common::{Data, Rng};
use segloss::{
    Aggregation, Batch, Context, Error, GpuBatch, GpuTarget, Loss, LossOptions, Reduction, Shape,
    Target,
};

/// Does an error have the expected kind?
type IsExpected = fn(&Error) -> bool;

fn contexts() -> Vec<Context> {
    let mut v = vec![Context::cpu()];
    v.extend(common::gpu());
    v
}

#[test]
fn invalid_options_are_rejected_when_the_loss_is_built() {
    let ctx = Context::cpu();
    let bad = [
        ("alpha", LossOptions::tversky(-0.1, 0.5)),
        ("beta", LossOptions::tversky(0.5, f64::NAN)),
        ("smooth_nr", LossOptions::dice().smoothing(-1.0, 0.0)),
        ("smooth_dr", LossOptions::dice().smoothing(0.0, f64::NAN)),
        ("gamma", LossOptions::dice().gamma(0.5)),
        (
            "class_weights",
            LossOptions::dice().class_weights(vec![1.0, -2.0]),
        ),
        (
            "reduction",
            LossOptions::dice()
                .aggregation(Aggregation {
                    dataset: 1.0,
                    image: 1.0,
                    class: 0.0,
                })
                .reduction(Reduction::Sum),
        ),
        (
            "reduction",
            LossOptions::dice()
                .aggregation(Aggregation {
                    dataset: 0.0,
                    image: 1.0,
                    class: 1.0,
                })
                .reduction(Reduction::None),
        ),
        (
            "aggregation",
            LossOptions::dice().aggregation(Aggregation {
                dataset: 0.0,
                image: 0.0,
                class: 0.0,
            }),
        ),
        (
            "aggregation.image",
            LossOptions::dice().aggregation(Aggregation {
                dataset: 1.0,
                image: -1.0,
                class: 0.0,
            }),
        ),
    ];
    for (name, o) in bad {
        match Loss::new(&ctx, o) {
            Err(Error::InvalidOption { name: n, .. }) => assert_eq!(n, name),
            other => panic!("{name}: expected InvalidOption, got {other:?}"),
        }
    }
}

#[test]
fn bad_shapes_are_rejected() {
    for dims in [
        &[2, 3][..],
        &[0, 3, 4],
        &[2, 0, 4],
        &[2, 3, 0],
        &[1, 1, 5, 0],
    ] {
        assert!(
            matches!(Shape::new(dims), Err(Error::InvalidShape { .. })),
            "{dims:?}"
        );
    }
}

#[test]
fn bad_data_gives_typed_errors_and_the_context_stays_usable() {
    let mut rng = Rng::new(11);
    for ctx in contexts() {
        let good = Data::random(&mut rng, &[2, 3, 33, 17], false, false);
        let o = LossOptions::dice();
        let loss = common::loss(&ctx, o.clone());
        let shape = &good.shape;
        let n = shape.len();
        let mut nan_in = good.input.clone();
        nan_in[n / 2] = f32::NAN;
        let mut inf_in = good.input.clone();
        inf_in[7] = f32::INFINITY;
        let mut y_hi = good.soft.clone();
        y_hi[3] = 1.5;
        let mut y_neg = good.soft.clone();
        y_neg[n - 1] = -0.01;
        let mut y_nan = good.soft.clone();
        y_nan[0] = f32::NAN;
        let idx_bad: Vec<u32> = (0..shape.map_len())
            .map(|i| if i == 5 { 3 } else { 0 })
            .collect();
        let idx_neg: Vec<i64> = (0..shape.map_len() as i64)
            .map(|i| if i == 9 { -1 } else { 1 })
            .collect();
        let short = &good.input[..n - 1];
        let mask_short = vec![true; shape.map_len() - 1];
        let soft_as_idx = vec![0u32; n]; // index targets of soft-target length

        let cases: Vec<(&str, Batch<'_>, IsExpected)> = vec![
            ("NaN input", Batch::soft(shape, &nan_in, &good.soft), |e| {
                matches!(e, Error::NonFiniteInput { .. })
            }),
            ("+Inf input", Batch::soft(shape, &inf_in, &good.soft), |e| {
                matches!(e, Error::NonFiniteInput { .. })
            }),
            ("target > 1", Batch::soft(shape, &good.input, &y_hi), |e| {
                matches!(e, Error::SoftTargetOutOfRange { .. })
            }),
            ("target < 0", Batch::soft(shape, &good.input, &y_neg), |e| {
                matches!(e, Error::SoftTargetOutOfRange { .. })
            }),
            ("NaN target", Batch::soft(shape, &good.input, &y_nan), |e| {
                matches!(e, Error::SoftTargetOutOfRange { .. })
            }),
            (
                "index >= C",
                Batch::index(shape, &good.input, &idx_bad),
                |e| matches!(e, Error::ClassIndexOutOfRange { .. }),
            ),
            (
                "negative i64 index",
                Batch {
                    shape,
                    input: &good.input,
                    target: Target::IndexI64(&idx_neg),
                    mask: None,
                },
                |e| {
                    matches!(
                        e,
                        Error::ClassIndexOutOfRange {
                            value: Some(-1),
                            position: Some(9),
                            ..
                        }
                    )
                },
            ),
            ("short input", Batch::soft(shape, short, &good.soft), |e| {
                matches!(e, Error::LengthMismatch { what: "input", .. })
            }),
            (
                "short target",
                Batch::soft(shape, &good.input, &good.soft[1..]),
                |e| matches!(e, Error::LengthMismatch { what: "target", .. }),
            ),
            (
                "index target of the wrong length",
                Batch::index(shape, &good.input, &soft_as_idx),
                |e| matches!(e, Error::LengthMismatch { what: "target", .. }),
            ),
            (
                "short mask",
                Batch::soft(shape, &good.input, &good.soft).with_mask(&mask_short),
                |e| matches!(e, Error::LengthMismatch { what: "mask", .. }),
            ),
        ];
        let want = good.reference(&o);
        for (what, b, is_expected) in cases {
            match loss.forward_backward(&b) {
                Err(e) => assert!(
                    is_expected(&e),
                    "{:?} {what}: wrong error {e:?}",
                    ctx.backend()
                ),
                Ok(out) => panic!("{:?} {what}: accepted, loss {}", ctx.backend(), out.loss),
            }
            // The same context and loss still compute a correct result.
            let out = loss.forward_backward(&good.batch()).unwrap();
            common::assert_close(what, &out, &want, 1e-4);
        }
        // Class weights of the wrong length are a per-call option error.
        let wl = common::loss(&ctx, LossOptions::dice().class_weights(vec![1.0; 2]));
        assert!(matches!(
            wl.forward(&good.batch()),
            Err(Error::InvalidOption {
                name: "class_weights",
                ..
            })
        ));
    }
}

/// The range check of soft targets works on the bits (`in_unit4` in common.wgsl): every
/// edge of [0, 1] in f32, on every backend, agrees with the f64 reference's rule.
#[test]
fn soft_target_range_edges() {
    let mut rng = Rng::new(12);
    for ctx in contexts() {
        let good = Data::random(&mut rng, &[1, 2, 5, 8], false, false);
        let loss = common::loss(&ctx, LossOptions::dice());
        let above_one = f32::from_bits(1.0f32.to_bits() + 1);
        let cases: [(f32, bool); 10] = [
            (0.0, true),
            (-0.0, true),
            (1.0, true),
            (f32::from_bits(1), true), // the smallest subnormal
            (0.999_999_94, true),
            (above_one, false),
            (f32::from_bits(0x8000_0001), false), // the largest negative subnormal
            (f32::INFINITY, false),
            (f32::NEG_INFINITY, false),
            (-f32::NAN, false),
        ];
        for (v, ok) in cases {
            let mut y = good.soft.clone();
            y[good.shape.len() - 3] = v;
            let r = loss.forward(&Batch::soft(&good.shape, &good.input, &y));
            match (ok, r) {
                (true, Ok(out)) => assert!(out.loss.is_finite(), "{v:e}"),
                (false, Err(Error::SoftTargetOutOfRange { .. })) => {}
                (_, r) => panic!(
                    "{:?} target {v:e} ({:#x}): {r:?}",
                    ctx.backend(),
                    v.to_bits()
                ),
            }
        }
    }
}

#[test]
fn gpu_resident_buffer_errors() {
    let Some(ctx) = common::gpu() else { return };
    let dev = ctx.device().unwrap();
    let shape = Shape::new(&[1, 2, 100]).unwrap();
    let mk = |size: u64, usage: wgpu::BufferUsages| {
        dev.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size,
            usage,
            mapped_at_creation: false,
        })
    };
    let st = wgpu::BufferUsages::STORAGE;
    let input = mk(800, st);
    let small = mk(796, st);
    let no_storage = mk(800, wgpu::BufferUsages::COPY_DST);
    let loss = common::loss(&ctx, LossOptions::dice());
    fn gb<'a>(shape: &'a Shape, input: &'a wgpu::Buffer, target: GpuTarget<'a>) -> GpuBatch<'a> {
        GpuBatch {
            shape,
            input: input.slice(..),
            target,
            mask: None,
        }
    }
    for (what, b, grad) in [
        (
            "small input",
            gb(&shape, &small, GpuTarget::Soft(input.slice(..))),
            None,
        ),
        (
            "no STORAGE",
            gb(&shape, &no_storage, GpuTarget::Soft(input.slice(..))),
            None,
        ),
        (
            "small target",
            gb(&shape, &input, GpuTarget::Soft(small.slice(..))),
            None,
        ),
        (
            "small grad",
            gb(&shape, &input, GpuTarget::Soft(input.slice(..))),
            Some(small.slice(..)),
        ),
    ] {
        assert!(
            matches!(loss.run(&b, grad), Err(Error::InvalidBuffer { .. })),
            "{what}"
        );
    }
    // A buffer the caller has mapped: refused before anything is recorded (a mapped
    // buffer in a submission is a wgpu validation error, a panic in the caller's submit).
    let mapped = dev.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: 800,
        usage: st,
        mapped_at_creation: true,
    });
    let r = loss.run(&gb(&shape, &mapped, GpuTarget::Soft(input.slice(..))), None);
    assert!(
        matches!(r, Err(Error::InvalidBuffer { name: "input", .. })),
        "mapped buffer: {r:?}"
    );
    // A buffer from another device.
    let other = common::gpu().unwrap();
    let foreign = other
        .device()
        .unwrap()
        .create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: 800,
            usage: st,
            mapped_at_creation: false,
        });
    let r = loss.run(
        &gb(&shape, &foreign, GpuTarget::Soft(input.slice(..))),
        None,
    );
    assert!(
        matches!(r, Err(Error::InvalidBuffer { name: "input", .. })),
        "foreign buffer: {r:?}"
    );
    // Still usable.
    let ok = loss
        .run(&gb(&shape, &input, GpuTarget::Soft(input.slice(..))), None)
        .unwrap();
    assert!(loss.read(&ok).is_ok());
    // The CPU context has no GPU API.
    let cpu = common::loss(&Context::cpu(), LossOptions::dice());
    assert!(matches!(
        cpu.run(&gb(&shape, &input, GpuTarget::Soft(input.slice(..))), None),
        Err(Error::NotOnGpu)
    ));
}

#[test]
fn no_adapter_is_an_error_when_a_gpu_is_required() {
    // An adapter name that matches nothing: NoAdapter, not a panic (wgpu's own helper
    // panics here). Run in a child process so the variable does not leak to other tests.
    if std::env::var_os("SEGLOSS_TEST_CHILD").is_some() {
        let r = Context::new();
        assert!(matches!(r, Err(Error::NoAdapter(_))), "{r:?}");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let status = std::process::Command::new(exe)
        .args(["no_adapter_is_an_error_when_a_gpu_is_required", "--exact"])
        .env("SEGLOSS_TEST_CHILD", "1")
        .env("WGPU_ADAPTER_NAME", "no such adapter 1234")
        .status()
        .unwrap();
    assert!(status.success());
}
