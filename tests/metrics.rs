//! Metrics: hand-checked cases of every definition, the GPU counts equal to the host
//! counts (exact integers), sharding over accumulators equal to one, and bad input.

mod common;

use common::Rng;
use segloss::metrics::{Counting, Labels, Metrics, MetricsState, Prediction};
use segloss::{Context, Error, Shape};

fn contexts() -> Vec<Context> {
    let mut v = vec![Context::cpu()];
    v.extend(common::gpu());
    v
}

fn close(what: &str, got: f64, want: f64) {
    assert!((got - want).abs() < 1e-12, "{what}: {got} vs {want}");
}

#[test]
fn hand_checked_multiclass_definitions() {
    // 2 images × 6 pixels, 3 classes, 255 ignored.
    let shape = Shape::new(&[2, 3, 6]).unwrap();
    let pred = [0u32, 0, 1, 1, 2, 2, /**/ 0, 0, 0, 2, 2, 1];
    let label = [0u32, 1, 1, 1, 2, 255, /**/ 0, 0, 0, 0, 255, 255];
    for ctx in contexts() {
        let mut m = Metrics::new(&ctx, 3, Some(255))
            .unwrap()
            .with_counting(Counting::Device);
        m.update(&shape, Prediction::Labels(&pred), Labels::U32(&label), None)
            .unwrap();
        let r = m.result().unwrap();
        // Image 0 (5 valid): c0 tp1 fp1 fn0 → 1/2; c1 tp2 fp0 fn1 → 2/3; c2 tp1 → 1.
        // Image 1 (4 valid): c0 tp3 fn1 → 3/4; c2 fp1 (not in the label: not counted).
        // Dataset: c0 tp4 fp1 fn1 → 4/6; c1 tp2 fn1 → 2/3; c2 tp1 fp1 → 1/2.
        let what = format!("{:?}", ctx.backend());
        close(&what, r.miou_d, (4.0 / 6.0 + 2.0 / 3.0 + 0.5) / 3.0);
        close(&what, r.mdice_d, (8.0 / 10.0 + 4.0 / 5.0 + 2.0 / 3.0) / 3.0);
        let im0 = (0.5 + 2.0 / 3.0 + 1.0) / 3.0;
        let im1 = 0.75;
        close(&what, r.miou_i, (im0 + im1) / 2.0);
        // Class level: c0 over both images, c1 and c2 over image 0.
        close(
            &what,
            r.miou_c,
            ((0.5 + 0.75) / 2.0 + 2.0 / 3.0 + 1.0) / 3.0,
        );
        assert_eq!(r.per_image[0].miou, Some(im0));
        assert_eq!(r.iou_d_per_class.len(), 3);
        // Worst 50 %: the lower image; per class its lower half (max(1, ⌊n/2⌋) values).
        let w = m.worst(50.0).unwrap();
        close(&what, w.miou_i, im1.min(im0));
        close(&what, w.miou_c, (0.5 + 2.0 / 3.0 + 1.0) / 3.0);
    }
}

#[test]
fn hand_checked_two_class_rule() {
    // Image 0: both classes somewhere → foreground IoU; image 1: background only in
    // prediction and label → scores 1; image 2: all ignored → left out.
    let shape = Shape::new(&[3, 2, 4]).unwrap();
    let pred = [1u32, 1, 0, 0, /**/ 0, 0, 0, 0, /**/ 1, 1, 1, 1];
    let label = [1u32, 0, 0, 1, /**/ 0, 0, 0, 0, /**/ 9, 9, 9, 9];
    for ctx in contexts() {
        let mut m = Metrics::new(&ctx, 2, Some(9))
            .unwrap()
            .with_counting(Counting::Device);
        m.update(&shape, Prediction::Labels(&pred), Labels::U32(&label), None)
            .unwrap();
        let r = m.result().unwrap();
        // Foreground: tp1 fp1 fn1 → 1/3 (dataset and image 0); background left out at D.
        close("D", r.miou_d, 1.0 / 3.0);
        close("I", r.miou_i, (1.0 / 3.0 + 1.0) / 2.0);
        close("C = I", r.miou_c, r.miou_i);
        assert_eq!(r.per_image[2].miou, None);
        assert_eq!(r.per_image[1].mdice, Some(1.0));
    }
}

#[test]
fn gpu_counts_equal_host_counts() {
    let Some(gpu) = common::gpu() else { return };
    let mut rng = Rng::new(0x3e7);
    for (b, c, dims) in [
        (2, 3, vec![7, 5]),
        (3, 19, vec![33, 17]),
        (1, 150, vec![64, 64]),
        (2, 1500, vec![10, 9]),
        (4, 2, vec![3, 3, 3]),
    ] {
        let mut full = vec![b, c];
        full.extend(&dims);
        let shape = Shape::new(&full).unwrap();
        let n = shape.pixels();
        let label: Vec<i64> = (0..b * n)
            .map(|_| {
                if rng.below(10) == 0 {
                    -100
                } else {
                    rng.below(c) as i64
                }
            })
            .collect();
        let pred: Vec<u32> = (0..b * n).map(|_| rng.below(c) as u32).collect();
        let scores: Vec<f32> = (0..shape.len())
            .map(|_| rng.range(-3.0, 3.0) as f32)
            .collect();
        let mask: Vec<bool> = (0..b * n).map(|_| rng.below(7) != 0).collect();
        for (what, p) in [
            ("labels", Prediction::Labels(&pred)),
            ("scores", Prediction::Scores(&scores)),
        ] {
            let mut states = Vec::new();
            for ctx in [Context::cpu(), gpu.clone()] {
                let mut m = Metrics::new(&ctx, c, Some(-100))
                    .unwrap()
                    .with_counting(Counting::Device);
                m.update(&shape, p, Labels::I64(&label), Some(&mask))
                    .unwrap();
                states.push(m.state().unwrap().clone());
            }
            assert_eq!(states[0], states[1], "{what} [{b}, {c}, {dims:?}]");
        }
    }
}

#[test]
fn sharded_accumulators_merge_to_one() {
    let mut rng = Rng::new(5);
    let (c, n) = (7, 40);
    let images: Vec<(Vec<u32>, Vec<u32>)> = (0..9)
        .map(|_| {
            let l = (0..n).map(|_| rng.below(c) as u32).collect();
            let p = (0..n).map(|_| rng.below(c) as u32).collect();
            (p, l)
        })
        .collect();
    for ctx in contexts() {
        let shape = Shape::new(&[1, c, n]).unwrap();
        let mut one = Metrics::new(&ctx, c, None)
            .unwrap()
            .with_counting(Counting::Device);
        let mut workers: Vec<Metrics> = (0..3)
            .map(|_| {
                Metrics::new(&ctx, c, None)
                    .unwrap()
                    .with_counting(Counting::Device)
            })
            .collect();
        for (i, (p, l)) in images.iter().enumerate() {
            one.update(&shape, Prediction::Labels(p), Labels::U32(l), None)
                .unwrap();
            workers[i / 3]
                .update(&shape, Prediction::Labels(p), Labels::U32(l), None)
                .unwrap();
        }
        // The all-gather: workers' states concatenated in worker order.
        let mut merged = MetricsState::new(c);
        for w in &mut workers {
            merged.merge(w.state().unwrap()).unwrap();
        }
        assert_eq!(merged.result(), one.result().unwrap());
        assert_eq!(merged.worst(10.0), one.worst(10.0).unwrap());
    }
}

#[test]
fn bad_metric_input_is_a_typed_error() {
    for ctx in contexts() {
        let shape = Shape::new(&[1, 3, 4]).unwrap();
        let mut m = Metrics::new(&ctx, 3, Some(255))
            .unwrap()
            .with_counting(Counting::Device);
        let bad_label = [0u32, 1, 7, 2];
        let r = m
            .update(
                &shape,
                Prediction::Labels(&[0, 1, 2, 0]),
                Labels::U32(&bad_label),
                None,
            )
            .and_then(|_| m.result().map(|_| ()));
        assert!(
            matches!(r, Err(Error::ClassIndexOutOfRange { .. })),
            "{r:?}"
        );
        let mut m = Metrics::new(&ctx, 3, Some(255))
            .unwrap()
            .with_counting(Counting::Device);
        let r = m.update(
            &shape,
            Prediction::Labels(&[0, 1]),
            Labels::U32(&[0, 1, 2, 0]),
            None,
        );
        assert!(matches!(r, Err(Error::LengthMismatch { .. })), "{r:?}");
        let other = Shape::new(&[1, 4, 4]).unwrap();
        let r = m.update(
            &other,
            Prediction::Labels(&[0; 4]),
            Labels::U32(&[0; 4]),
            None,
        );
        assert!(matches!(r, Err(Error::InvalidShape { .. })), "{r:?}");
        assert!(matches!(m.worst(0.0), Err(Error::InvalidOption { .. })));
        let nan = [f32::NAN; 12];
        let r = m
            .update(&shape, Prediction::Scores(&nan), Labels::U32(&[0; 4]), None)
            .and_then(|_| m.result().map(|_| ()));
        assert!(matches!(r, Err(Error::NonFiniteInput { .. })), "{r:?}");
        // Still usable.
        let mut m = Metrics::new(&ctx, 3, None)
            .unwrap()
            .with_counting(Counting::Device);
        m.update(
            &shape,
            Prediction::Labels(&[0, 1, 2, 0]),
            Labels::U32(&[0, 1, 2, 0]),
            None,
        )
        .unwrap();
        assert_eq!(m.result().unwrap().miou_d, 1.0);
    }
}

/// Runs of equal pixels, as label maps come (regions), with a stray value every so often.
fn regions(rng: &mut Rng, len: usize, classes: usize, ignore: Option<u32>) -> Vec<u32> {
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        let run = 1 + rng.below(40);
        let k = match ignore {
            Some(i) if rng.below(10) == 0 => i,
            _ => rng.below(classes) as u32,
        };
        v.extend(std::iter::repeat_n(k, run.min(len - v.len())));
    }
    v
}

#[test]
fn every_counting_path_gives_the_same_integers() {
    // Label maps in runs (the kernel adds runs of equal pairs at once), argmax scores,
    // multi-hot targets and masks; images larger than one window of the kernel, and
    // class counts on both sides of llvmpipe's per-invocation pixel choice. Device,
    // host and auto counting must give the same counts, exactly.
    let Some(gpu) = common::gpu() else {
        panic!("no GPU adapter: this test needs one");
    };
    let mut rng = Rng::new(35);
    for &(b, c, n) in &[
        (2usize, 19usize, 600_000usize),
        (1, 3, 70_001),
        (3, 1500, 2_000),
    ] {
        let shape = Shape::new(&[b, c, n]).unwrap();
        let pred = regions(&mut rng, b * n, c, None);
        let label = regions(&mut rng, b * n, c, Some(255));
        let scores: Vec<f32> = (0..b * c * n)
            .map(|_| rng.range(-3.0, 3.0) as f32)
            .collect();
        let mask: Vec<bool> = (0..b * n).map(|_| rng.below(7) != 0).collect();
        let multi: Vec<f32> = (0..b * c * n)
            .map(|_| (rng.below(3) == 0) as u8 as f32)
            .collect();
        let cases: Vec<(&str, Prediction<'_>, Labels<'_>, Option<&[bool]>)> = vec![
            (
                "labels",
                Prediction::Labels(&pred),
                Labels::U32(&label),
                None,
            ),
            (
                "labels+mask",
                Prediction::Labels(&pred),
                Labels::U32(&label),
                Some(&mask),
            ),
            (
                "argmax",
                Prediction::Scores(&scores),
                Labels::U32(&label),
                None,
            ),
            (
                "multi-hot",
                Prediction::Labels(&pred),
                Labels::MultiHot(&multi),
                Some(&mask),
            ),
            (
                "threshold",
                Prediction::Threshold {
                    scores: &scores,
                    threshold: 0.5,
                    sigmoid: true,
                },
                Labels::MultiHot(&multi),
                None,
            ),
        ];
        for (what, p, t, m) in cases {
            let states: Vec<MetricsState> = [Counting::Device, Counting::Host, Counting::Auto]
                .into_iter()
                .map(|counting| {
                    let mut acc = Metrics::new(&gpu, c, Some(255))
                        .unwrap()
                        .with_counting(counting);
                    acc.update(&shape, p, t, m).unwrap();
                    acc.state().unwrap().clone()
                })
                .collect();
            let on = format!("{what} [{b}, {c}, {n}]");
            assert_eq!(states[0], states[1], "{on}: device vs host");
            assert_eq!(states[2], states[1], "{on}: auto vs host");
            let labelled: f64 = states[0].images.iter().map(|im| im.valid).sum();
            assert!(labelled > 0.0, "{on}: nothing counted");
        }
    }
    // Auto counts on the host exactly on CPU adapters.
    let auto = Metrics::new(&gpu, 3, None).unwrap();
    let cpu = gpu
        .adapter_info()
        .is_some_and(|i| i.device_type == segloss::wgpu::DeviceType::Cpu);
    assert_eq!(auto.counts_on_host(), cpu);
    let device = Metrics::new(&gpu, 3, None)
        .unwrap()
        .with_counting(Counting::Device);
    assert!(!device.counts_on_host());
    assert!(Metrics::new(&Context::cpu(), 3, None)
        .unwrap()
        .counts_on_host());
}
