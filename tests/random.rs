//! GPU vs the f64 CPU reference on random shapes and option sets: B 1-4, C 1-32, 1-3
//! spatial dims, sizes that are not multiples of the workgroup or tile, N up to 10^6.

mod common;

use common::{assert_close, Data, Rng};
use segloss::{Activation, ActiveClasses, Aggregation, Formulation, LossOptions, Reduction};

/// A random valid option set.
fn random_options(rng: &mut Rng, classes: usize) -> LossOptions {
    let mut o = match rng.below(3) {
        0 => LossOptions::dice(),
        1 => LossOptions::jaccard(),
        _ => LossOptions::tversky(rng.range(0.0, 1.0), rng.range(0.0, 1.0)),
    };
    o.formulation = [
        Formulation::Soft,
        Formulation::Squared,
        Formulation::Classic,
    ][rng.below(3)];
    o.activation = [Activation::Softmax, Activation::Sigmoid, Activation::None][rng.below(3)];
    let s = [0.0, 1e-5, 1e-3, 1.0][rng.below(4)];
    o.smooth_nr = s;
    o.smooth_dr = s.max(1e-6);
    o.include_background = rng.below(3) != 0;
    o.reduction = [
        Reduction::Mean,
        Reduction::Mean,
        Reduction::Sum,
        Reduction::None,
    ][rng.below(4)];
    o.aggregation = if o.reduction == Reduction::Mean && rng.bool() {
        Aggregation {
            dataset: rng.range(0.0, 1.0),
            image: rng.range(0.0, 1.0),
            class: rng.range(0.0, 1.0),
        }
    } else {
        [Aggregation::DATASET, Aggregation::IMAGE, Aggregation::CLASS][rng.below(3)]
    };
    if rng.bool() {
        o.active_classes = ActiveClasses::Present {
            threshold: [0.0, 0.01, 0.3][rng.below(3)],
        };
    }
    if rng.below(3) == 0 {
        let kept = classes - o.class_start(classes);
        o.class_weights = Some((0..kept).map(|_| rng.range(0.1, 2.0)).collect());
    }
    o.log_loss = rng.below(4) == 0;
    o.gamma = if rng.below(4) == 0 { 2.0 } else { 1.0 };
    o
}

fn random_dims(rng: &mut Rng, max_pixels: usize) -> Vec<usize> {
    let b = 1 + rng.below(4);
    let c = 1 + rng.below(32);
    let nd = 1 + rng.below(3);
    let target = 1 + rng.below(max_pixels);
    // Split `target` pixels roughly evenly over nd dims (ragged sizes).
    let side = ((target as f64).powf(1.0 / nd as f64).ceil() as usize).max(1);
    let mut dims = vec![b, c];
    for _ in 0..nd {
        dims.push(1 + rng.below(side));
    }
    dims
}

/// `ignore_index = 255`, with about one label in eight set to it (and at least one), so
/// that the ignore path is exercised, not only declared.
fn ignore_some(rng: &mut Rng, data: &mut Data, o: &mut LossOptions) {
    o.ignore_index = Some(255);
    let n = data.index.len();
    for v in data.index.iter_mut() {
        if rng.below(8) == 0 {
            *v = 255;
        }
    }
    data.index[rng.below(n)] = 255;
}

#[test]
fn gpu_matches_reference_on_random_shapes_and_options() {
    let Some(ctx) = common::gpu() else { return };
    let mut rng = Rng::new(0x5e6_1055);
    for case in 0..60 {
        let dims = random_dims(&mut rng, if case % 10 == 0 { 20_000 } else { 3_000 });
        let (use_index, with_mask) = (rng.bool(), rng.below(3) == 0);
        let data = Data::random(&mut rng, &dims, use_index, with_mask);
        let mut o = random_options(&mut rng, dims[1]);
        let which = rng.below(4);
        common::add_compound(&mut rng, &mut o, dims[1], which);
        let mut data = data;
        common::fit(&mut o, &mut data);
        if data.use_index && rng.bool() {
            // An ignored value: out of the class range, like 255.
            ignore_some(&mut rng, &mut data, &mut o);
        }
        let got = common::loss(&ctx, o.clone())
            .forward_backward(&data.batch())
            .unwrap();
        let want = data.reference(&o);
        assert_close(&format!("case {case} {dims:?} {o:?}"), &got, &want, 1e-4);
    }
}

#[test]
fn gpu_matches_reference_on_large_ragged_inputs() {
    // N up to 10^6 pixels, not a multiple of the 1024-pixel tile.
    let Some(ctx) = common::gpu() else { return };
    let mut rng = Rng::new(7);
    for dims in [
        vec![1, 3, 1_000_000],
        vec![2, 5, 333, 301],
        vec![1, 2, 97, 101, 103],
        vec![4, 1, 1],
    ] {
        for use_index in [false, true] {
            let data = Data::random(&mut rng, &dims, use_index, true);
            let o = LossOptions::dice().aggregation(Aggregation {
                dataset: 0.5,
                image: 0.25,
                class: 0.25,
            });
            let o = if dims[1] == 1 {
                o.activation(Activation::Sigmoid)
            } else {
                o
            };
            let got = common::loss(&ctx, o.clone())
                .forward_backward(&data.batch())
                .unwrap();
            assert_close(
                &format!("{dims:?} index={use_index}"),
                &got,
                &data.reference(&o),
                1e-4,
            );
        }
    }
}

/// Proptest found two ulp-level errors of a one-class softmax on the GPU (a KL term of
/// −1.9e-6 at p = y, a gradient of 1.2e-7 where it is 0). A softmax over one channel is
/// the constant 1: it is now refused natively, compound terms included.
#[test]
fn one_class_softmax_is_refused_natively() {
    // A softmax over one channel is the constant 1 (zero gradient, constant loss): the
    // native API refuses it (it used to compute it silently); MONAI's constructors apply
    // no activation there (tests/trust.rs).
    let ctx = common::gpu().unwrap_or_else(segloss::Context::cpu);
    let mut rng = Rng::new(2);
    for dims in [[1, 1, 3], [3, 1, 8]] {
        let data = Data::random(&mut rng, &dims, false, false);
        let compound = LossOptions::jaccard()
            .cross_entropy(segloss::CrossEntropy::kl(0.25))
            .focal(segloss::Focal::softmax(0.5, 2.5));
        for o in [
            LossOptions::dice(),
            LossOptions::tversky(0.3, 0.7),
            compound,
        ] {
            let r = common::loss(&ctx, o).forward_backward(&data.batch());
            assert!(
                matches!(
                    r,
                    Err(segloss::Error::InvalidOption {
                        name: "activation",
                        ..
                    })
                ),
                "{dims:?}: {r:?}"
            );
        }
    }
}

/// The unrolled kernels of CPU adapters (`shaders/unrolled/`: a softmax over 2 … 24
/// classes, no focal term, calls of ≥ 16384 pixels) against the reference, over the
/// options they take: formulations, soft and index targets, masks, ignored pixels, a
/// dropped background, class weights, CE and KL terms, aligned and ragged N.
#[test]
fn unrolled_softmax_kernels_match_reference() {
    let Some(ctx) = common::gpu() else { return };
    let mut rng = Rng::new(0xc1a55e5);
    let cpu_adapter = ctx
        .adapter_info()
        .is_some_and(|i| i.device_type == segloss::wgpu::DeviceType::Cpu);
    for case in 0..8 {
        let classes = [2, 3, 19, 24, 2, 3, 19, 8][case];
        let b = 1 + rng.below(2);
        // At least 16384 pixels per call; every other case N is not a multiple of 4.
        let n = 16384 / b + rng.below(3000) * 4 + usize::from(case % 2 == 1) * (1 + rng.below(3));
        let dims = vec![b, classes, n];
        let (use_index, with_mask) = (rng.bool(), rng.below(3) == 0);
        let mut data = Data::random(&mut rng, &dims, use_index, with_mask);
        let mut o = random_options(&mut rng, classes);
        o.activation = Activation::Softmax;
        // No compound term, or a CE / KL one (focal terms keep the class loops).
        let which = rng.below(2);
        common::add_compound(&mut rng, &mut o, classes, which);
        common::fit(&mut o, &mut data);
        if data.use_index && rng.bool() {
            ignore_some(&mut rng, &mut data, &mut o);
        }
        let loss = common::loss(&ctx, o.clone());
        if case < 4 {
            // The same call on few pixels (the class loops) compiles every other
            // pipeline first: then a CPU adapter compiles exactly the two unrolled
            // kernels for the large call, a GPU none.
            let small = Data::random(&mut rng, &[b, classes, 64 + n % 4], use_index, with_mask);
            loss.forward_backward(&small.batch()).unwrap();
        }
        let before = ctx.pipelines_built();
        let got = loss.forward_backward(&data.batch()).unwrap();
        let want = data.reference(&o);
        assert_close(&format!("case {case} {dims:?} {o:?}"), &got, &want, 1e-4);
        if case < 4 {
            let compiled = ctx.pipelines_built() - before;
            assert_eq!(compiled, if cpu_adapter { 2 } else { 0 }, "case {case}");
        }
    }
}
