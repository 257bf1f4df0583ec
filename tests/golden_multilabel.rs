//! Multi-label metrics (threshold predictions, one-hot / multi-hot targets) against the
//! peers (`crates/segloss-golden/golden/make_multilabel.py`): smp 0.6's `get_stats(mode="multilabel")`
//! per image and class exactly, torchmetrics 1.9's `MultilabelJaccardIndex` /
//! `MultilabelF1Score` per class within 1e-6 (f32) — on the CPU and through the host API on
//! the GPU with the images split over two updates (the golden runner, `tests/golden.rs`,
//! takes one), and GPU-resident; plus the errors (a target neither 0 nor 1, a NaN score, a
//! threshold a sigmoid cannot reach).

mod common;

use common::{f64s, zip_eq};

use segloss::metrics::{
    Counting, GpuLabels, GpuMetricBatch, GpuPrediction, Labels, Metrics, Prediction,
};
use segloss::{Context, Error, Shape};
use serde_json::Value;

fn cases() -> Vec<Value> {
    let text = segloss_golden::text("multilabel.json").unwrap();
    let v: Value = serde_json::from_str(text).unwrap();
    v["cases"].as_array().unwrap().clone()
}

struct Case {
    id: String,
    shape: Shape,
    threshold: f32,
    sigmoid: bool,
    scores: Vec<f32>,
    target: Vec<f32>,
}

fn parse(c: &Value) -> Case {
    let dims: Vec<usize> = f64s(&c["shape"]).iter().map(|&d| d as usize).collect();
    Case {
        id: c["id"].as_str().unwrap().to_string(),
        shape: Shape::new(&dims).unwrap(),
        threshold: c["threshold"].as_f64().unwrap() as f32,
        sigmoid: c["sigmoid"].as_bool().unwrap(),
        scores: f64s(&c["scores"]).iter().map(|&v| v as f32).collect(),
        target: f64s(&c["target"]).iter().map(|&v| v as f32).collect(),
    }
}

/// The accumulated metrics against smp's per-image counts and torchmetrics' per class.
fn check(id: &str, m: &mut Metrics, peer: &Value) {
    let st = m.state().unwrap().clone();
    for (b, im) in st.images.iter().enumerate() {
        for (k, &[tp, p, l]) in im.counts.iter().enumerate() {
            let smp = |key: &str| peer[key][b][k].as_f64().unwrap();
            assert_eq!(
                (tp, p - tp, l - tp, im.valid - p - l + tp),
                (smp("smp_tp"), smp("smp_fp"), smp("smp_fn"), smp("smp_tn")),
                "{id}: image {b} class {k}"
            );
        }
    }
    let r = m.result().unwrap();
    for (k, (iou, tm)) in zip_eq(id, &r.iou_d_per_class, f64s(&peer["tm_iou"])).enumerate() {
        let got = iou.unwrap_or(0.0); // torchmetrics: zero_division = 0
        assert!(
            (got - tm).abs() <= 1e-6,
            "{id}: IoU class {k}: {got} vs {tm}"
        );
    }
    for (k, (dice, tm)) in zip_eq(id, &r.dice_d_per_class, f64s(&peer["tm_f1"])).enumerate() {
        let got = dice.unwrap_or(0.0);
        assert!(
            (got - tm).abs() <= 1e-6,
            "{id}: F1 class {k}: {got} vs {tm}"
        );
    }
}

fn host(ctx: &Context) {
    for peer in cases() {
        let c = parse(&peer);
        let mut m = Metrics::new(ctx, c.shape.classes(), None)
            .unwrap()
            .with_counting(Counting::Device);
        // Two updates (the images split): the state accumulates.
        let per = c.shape.len() / c.shape.batch();
        let b = c.shape.batch();
        for (lo, hi) in [(0, 1), (1, b)] {
            let mut dims = c.shape.dims().to_vec();
            dims[0] = hi - lo;
            let shape = Shape::new(&dims).unwrap();
            let pred = Prediction::Threshold {
                scores: &c.scores[lo * per..hi * per],
                threshold: c.threshold,
                sigmoid: c.sigmoid,
            };
            let target = Labels::MultiHot(&c.target[lo * per..hi * per]);
            m.update(&shape, pred, target, None).unwrap();
        }
        check(&c.id, &mut m, &peer);
    }
}

#[test]
fn multilabel_metrics_match_smp_and_torchmetrics_on_the_cpu() {
    host(&Context::cpu());
}

#[test]
fn multilabel_metrics_match_smp_and_torchmetrics_on_the_gpu() {
    let Some(ctx) = common::gpu() else { return };
    host(&ctx);
    // GPU-resident: the caller's buffers, as a framework sub-allocates them: the
    // scores and the targets are ranges of one buffer, neither at its start.
    let dev = ctx.device().unwrap();
    let align = (dev.limits().min_storage_buffer_offset_alignment / 4) as usize;
    for peer in cases() {
        let c = parse(&peer);
        let (n, at_x) = (c.scores.len(), align);
        let at_y = (at_x + n).div_ceil(align) * align;
        let mut words = vec![f32::NAN; at_y + n + 3];
        words[at_x..at_x + n].copy_from_slice(&c.scores);
        words[at_y..at_y + n].copy_from_slice(&c.target);
        let all = common::storage(&ctx, &words);
        let range = |at: usize| all.slice(4 * at as u64..4 * (at + n) as u64);
        let mut m = Metrics::new(&ctx, c.shape.classes(), None)
            .unwrap()
            .with_counting(Counting::Device);
        let mut enc = dev.create_command_encoder(&Default::default());
        let batch = GpuMetricBatch {
            shape: &c.shape,
            pred: GpuPrediction::Threshold {
                scores: range(at_x),
                threshold: c.threshold,
                sigmoid: c.sigmoid,
            },
            target: GpuLabels::MultiHot(range(at_y)),
            mask: None,
        };
        m.encode(&mut enc, &batch).unwrap();
        ctx.queue().unwrap().submit([enc.finish()]);
        check(&c.id, &mut m, &peer);
    }
}

#[test]
fn argmax_predictions_against_one_hot_targets_equal_label_maps() {
    // One-hot targets and the label maps they encode give the same counts, with argmax
    // predictions and with label predictions.
    let peer = cases()
        .into_iter()
        .find(|c| c["id"] == "one-hot-2d-sigmoid-0.5")
        .unwrap();
    let c = parse(&peer);
    let (b, k, n) = (c.shape.batch(), c.shape.classes(), c.shape.pixels());
    let labels: Vec<u32> = (0..b * n)
        .map(|j| {
            (0..k)
                .find(|&q| c.target[((j / n) * k + q) * n + j % n] == 1.0)
                .unwrap() as u32
        })
        .collect();
    let mut contexts = vec![Context::cpu()];
    contexts.extend(common::gpu());
    for ctx in &contexts {
        let mut one_hot = Metrics::new(ctx, k, None)
            .unwrap()
            .with_counting(Counting::Device);
        let mut maps = Metrics::new(ctx, k, None)
            .unwrap()
            .with_counting(Counting::Device);
        let pred = Prediction::Scores(&c.scores);
        one_hot
            .update(&c.shape, pred, Labels::MultiHot(&c.target), None)
            .unwrap();
        maps.update(&c.shape, pred, Labels::U32(&labels), None)
            .unwrap();
        assert_eq!(
            one_hot.state().unwrap(),
            maps.state().unwrap(),
            "{:?}",
            ctx.backend()
        );
    }
}

#[test]
fn bad_multilabel_input_is_a_typed_error() {
    let mut contexts = vec![Context::cpu()];
    contexts.extend(common::gpu());
    let shape = Shape::new(&[1, 2, 4]).unwrap();
    let scores = [0.1f32, 0.9, 0.4, 0.6, 0.7, 0.2, 0.5, 0.8];
    for ctx in &contexts {
        let pred = Prediction::Threshold {
            scores: &scores,
            threshold: 0.5,
            sigmoid: false,
        };
        // A soft value in a multi-hot target.
        let mut m = Metrics::new(ctx, 2, None)
            .unwrap()
            .with_counting(Counting::Device);
        let soft = [1.0f32, 0.0, 0.5, 1.0, 0.0, 1.0, 1.0, 0.0];
        let r = m
            .update(&shape, pred, Labels::MultiHot(&soft), None)
            .and_then(|_| m.result().map(|_| ()));
        assert!(matches!(r, Err(Error::NotBinary { .. })), "{r:?}");
        // A NaN score.
        let mut m = Metrics::new(ctx, 2, None)
            .unwrap()
            .with_counting(Counting::Device);
        let mut nan = scores;
        nan[3] = f32::NAN;
        let pred_nan = Prediction::Threshold {
            scores: &nan,
            threshold: 0.5,
            sigmoid: false,
        };
        let ok = [1.0f32, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0];
        let r = m
            .update(&shape, pred_nan, Labels::MultiHot(&ok), None)
            .and_then(|_| m.result().map(|_| ()));
        assert!(matches!(r, Err(Error::NonFiniteInput { .. })), "{r:?}");
        // A threshold a sigmoid never reaches; a target of the wrong length.
        let mut m = Metrics::new(ctx, 2, None)
            .unwrap()
            .with_counting(Counting::Device);
        let never = Prediction::Threshold {
            scores: &scores,
            threshold: 1.0,
            sigmoid: true,
        };
        let r = m.update(&shape, never, Labels::MultiHot(&ok), None);
        assert!(
            matches!(
                r,
                Err(Error::InvalidOption {
                    name: "threshold",
                    ..
                })
            ),
            "{r:?}"
        );
        let r = m.update(&shape, pred, Labels::MultiHot(&ok[..4]), None);
        assert!(
            matches!(r, Err(Error::LengthMismatch { what: "target", .. })),
            "{r:?}"
        );
    }
}
