//! Beyond the earlier tested envelope: every power-of-two boundary of (image, class)
//! items up to 2¹⁷ + 1, the documented maximum `MAX_ITEMS` = 2²² itself, and B or C above
//! 65 535 (one dispatch dimension), against the f64 reference on every path.
//!
//! Why earlier tests missed it: they used B ≤ 4 and C ≤ 32. llvmpipe (lavapipe and GL)
//! ends an invocation's loops after 65 535 iterations of all its loops together; the old
//! `finalize` looped over every (image, class) item in one invocation and `stats` /
//! `grad` over every class, so from a few thousand items on results were silently cut.

mod common;

use common::{assert_close, Data, Rng};
use segloss::{Activation, Aggregation, CrossEntropy, Error, GpuBatch, GpuTarget, LossOptions};

/// (B, C) splits of `items` items: all classes, all images, and a square-ish one.
fn splits(items: usize) -> Vec<(usize, usize)> {
    let mut v = vec![(1, items)];
    let b = (items as f64).sqrt() as usize;
    if b > 1 {
        v.push((b, items / b));
    }
    if items >= 2 {
        v.push((items / 2, 2));
    }
    v
}

#[test]
fn every_power_of_two_boundary_of_items_matches_the_reference() {
    let Some(ctx) = common::gpu() else { return };
    let mut rng = Rng::new(0xe17e);
    let mut checked = 0;
    for e in [4u32, 8, 11, 12, 13, 14, 15, 16, 17] {
        for items in [(1usize << e) - 1, (1 << e) + 1] {
            for (b, c) in splits(items) {
                // Alternate target kinds, activations and pixel counts (aligned, ragged).
                let n = [1usize, 3, 4][checked % 3];
                let use_index = checked % 2 == 1;
                let data = Data::random(&mut rng, &[b, c, n], use_index, checked % 4 == 3);
                let mut o = LossOptions::dice();
                o.activation = if checked % 5 == 4 {
                    Activation::Sigmoid
                } else {
                    Activation::Softmax
                };
                o.aggregation =
                    [Aggregation::IMAGE, Aggregation::DATASET, Aggregation::CLASS][checked % 3];
                let out = common::loss(&ctx, o.clone())
                    .forward_backward(&data.batch())
                    .unwrap_or_else(|e| panic!("[{b}, {c}, {n}]: {e}"));
                assert_close(
                    &format!("[{b}, {c}, {n}] {:?}", o.activation),
                    &out,
                    &data.reference(&o),
                    2e-4,
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 50, "{checked} shapes");
}

/// `MAX_ITEMS` is a documented limit: the largest accepted batch must compute right,
/// in its two extreme (B, C) splits: the most classes allowed (`MAX_CLASSES`) and two
/// classes (sigmoid, one pixel: 4 M elements per shape).
#[test]
fn the_documented_maximum_of_items_matches_the_reference() {
    let Some(ctx) = common::gpu() else { return };
    let mut rng = Rng::new(0x40_0000);
    let items = segloss::MAX_ITEMS;
    let splits = [
        (items / segloss::MAX_CLASSES, segloss::MAX_CLASSES),
        (items / 2, 2),
    ];
    for (i, (b, c)) in splits.into_iter().enumerate() {
        assert_eq!(b * c, items);
        let data = Data::random(&mut rng, &[b, c, 1], false, false);
        let mut o = LossOptions::dice().activation(Activation::Sigmoid);
        o.aggregation = [Aggregation::IMAGE, Aggregation::CLASS][i];
        let out = common::loss(&ctx, o.clone())
            .forward_backward(&data.batch())
            .unwrap_or_else(|e| panic!("[{b}, {c}, 1]: {e}"));
        assert_close(&format!("[{b}, {c}, 1]"), &out, &data.reference(&o), 2e-4);
    }
}

#[test]
fn batch_or_classes_above_one_dispatch_dimension_on_every_path() {
    let Some(ctx) = common::gpu() else { return };
    let mut rng = Rng::new(0x10_000);
    for dims in [[70_000usize, 2, 1], [1, 70_000, 2]] {
        let data = Data::random(&mut rng, &dims, false, false);
        let what = format!("{dims:?}");
        // Host, compound (CE + Dice).
        let mut o = LossOptions::dice();
        let out = common::loss(&ctx, o.clone())
            .forward_backward(&data.batch())
            .unwrap();
        assert_close(&what, &out, &data.reference(&o), 2e-4);
        o.cross_entropy = Some(CrossEntropy::softmax(0.7));
        let out = common::loss(&ctx, o.clone())
            .forward_backward(&data.batch())
            .unwrap();
        assert_close(&format!("{what} + CE"), &out, &data.reference(&o), 2e-4);
        // Split phase, one worker: the same as one call.
        let loss = common::loss(&ctx, o.clone());
        let st = loss.stats(&data.batch()).unwrap();
        let fin = loss.finish(&st, true).unwrap();
        assert_close(&format!("{what} split"), &fin, &data.reference(&o), 2e-4);
        // GPU-resident.
        let storage = |v: &[f32]| common::storage(&ctx, v);
        let (x, y, g) = (
            storage(&data.input),
            storage(&data.soft),
            storage(&vec![0.0; data.input.len()]),
        );
        let gb = GpuBatch {
            shape: &data.shape,
            input: x.slice(..),
            target: GpuTarget::Soft(y.slice(..)),
            mask: None,
        };
        let res = loss.run(&gb, Some(g.slice(..))).unwrap();
        let mut out = loss.read(&res).unwrap();
        out.grad = Some(common::read_f32(&ctx, &g));
        assert_close(&format!("{what} resident"), &out, &data.reference(&o), 2e-4);
    }
}

#[test]
fn shapes_beyond_the_documented_gpu_limits_are_typed_errors() {
    let Some(ctx) = common::gpu() else { return };
    let s = segloss::Shape::new(&[segloss::MAX_ITEMS / 2 + 1, 2, 1]).unwrap();
    let x = vec![0.0f32; s.len()];
    let y = vec![0.5f32; s.len()];
    let o = LossOptions::dice().activation(Activation::Sigmoid);
    let r = common::loss(&ctx, o).forward(&segloss::Batch::soft(&s, &x, &y));
    assert!(matches!(r, Err(Error::TooLarge(_))), "{r:?}");
}
