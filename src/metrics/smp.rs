//! segmentation_models_pytorch's `metrics.get_stats` + `iou_score` / `f1_score`
//! reductions (smp 0.6) over the accumulated counts: per (image, class) tp, fp, fn and
//! tn = valid pixels − tp − fp − fn, then smp's reductions, with its `zero_division`
//! value replacing undefined (0/0) scores where smp replaces them.

use super::state::MetricsState;
use crate::error::{Error, Result};

/// smp's `reduction`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmpReduction {
    /// Sums over images and classes, then the score.
    Micro,
    /// Per class over the dataset, then the (weighted) mean over classes.
    Macro,
    /// Per class over the dataset, then the sum with normalised class weights.
    Weighted,
    /// Per image over its classes, then the mean over images.
    MicroImagewise,
    /// Per image and class, the mean over images, then the (weighted) mean over classes.
    MacroImagewise,
    /// As `MacroImagewise`, with class weights (required).
    WeightedImagewise,
    /// Per image and class, `[B, C]`.
    None,
}

/// smp's per-(image, class) statistics.
#[derive(Clone, Debug, PartialEq)]
pub struct SmpStats {
    /// `[B][C]` true positives.
    pub tp: Vec<Vec<f64>>,
    /// `[B][C]` false positives.
    pub fp: Vec<Vec<f64>>,
    /// `[B][C]` false negatives.
    pub fn_: Vec<Vec<f64>>,
    /// `[B][C]` true negatives.
    pub tn: Vec<Vec<f64>>,
}

/// `get_stats` of the accumulated images.
pub fn get_stats(state: &MetricsState) -> SmpStats {
    let rows = |f: &dyn Fn(f64, f64, f64, f64) -> f64| -> Vec<Vec<f64>> {
        state
            .images
            .iter()
            .map(|im| {
                (0..state.classes)
                    .map(|c| {
                        let (tp, fp, fn_) = im.tp_fp_fn(c);
                        f(tp, fp, fn_, im.valid - tp - fp - fn_)
                    })
                    .collect()
            })
            .collect()
    };
    SmpStats {
        tp: rows(&|tp, _, _, _| tp),
        fp: rows(&|_, fp, _, _| fp),
        fn_: rows(&|_, _, f, _| f),
        tn: rows(&|_, _, _, tn| tn),
    }
}

/// smp's `iou_score`.
pub fn iou_score(
    s: &SmpStats,
    reduction: SmpReduction,
    class_weights: Option<&[f64]>,
    zero_division: f64,
) -> Result<Vec<f64>> {
    reduce(s, reduction, class_weights, zero_division, |tp, fp, fn_| {
        tp / (tp + fp + fn_)
    })
}

/// smp's `f1_score` (F-beta with β = 1, i.e. Dice).
pub fn f1_score(
    s: &SmpStats,
    reduction: SmpReduction,
    class_weights: Option<&[f64]>,
    zero_division: f64,
) -> Result<Vec<f64>> {
    reduce(s, reduction, class_weights, zero_division, |tp, fp, fn_| {
        2.0 * tp / (2.0 * tp + fn_ + fp)
    })
}

fn reduce(
    s: &SmpStats,
    reduction: SmpReduction,
    class_weights: Option<&[f64]>,
    zero_division: f64,
    score: impl Fn(f64, f64, f64) -> f64,
) -> Result<Vec<f64>> {
    use SmpReduction as R;
    let b = s.tp.len();
    let c = s.tp.first().map_or(0, Vec::len);
    if class_weights.is_none() && matches!(reduction, R::Weighted | R::WeightedImagewise) {
        return Err(Error::option(
            "class_weights",
            "a weighted reduction needs class weights",
        ));
    }
    if let Some(w) = class_weights {
        if w.len() != c
            || w.iter().any(|v| !v.is_finite() || *v < 0.0)
            || w.iter().sum::<f64>() <= 0.0
        {
            return Err(Error::option(
                "class_weights",
                format!("{c} finite weights ≥ 0, not all 0"),
            ));
        }
    }
    // smp normalises the weights to sum 1; without weights the factor is 1.
    let w: Vec<f64> = match class_weights {
        Some(w) => {
            let sum: f64 = w.iter().sum();
            w.iter().map(|v| v / sum).collect()
        }
        None => vec![1.0; c],
    };
    let fix = |v: f64| if v.is_nan() { zero_division } else { v };
    let class_sum = |m: &Vec<Vec<f64>>, k: usize| m.iter().map(|r| r[k]).sum::<f64>();
    let image_sum = |m: &Vec<Vec<f64>>, i: usize| m[i].iter().sum::<f64>();
    let per_class = |k: usize| {
        fix(score(
            class_sum(&s.tp, k),
            class_sum(&s.fp, k),
            class_sum(&s.fn_, k),
        ))
    };
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    Ok(match reduction {
        R::Micro => {
            let t = |m: &Vec<Vec<f64>>| m.iter().flatten().sum::<f64>();
            vec![score(t(&s.tp), t(&s.fp), t(&s.fn_))]
        }
        R::Macro => vec![mean(
            &(0..c).map(|k| per_class(k) * w[k]).collect::<Vec<_>>(),
        )],
        R::Weighted => vec![(0..c).map(|k| per_class(k) * w[k]).sum()],
        R::MicroImagewise => {
            let v: Vec<f64> = (0..b)
                .map(|i| {
                    fix(score(
                        image_sum(&s.tp, i),
                        image_sum(&s.fp, i),
                        image_sum(&s.fn_, i),
                    ))
                })
                .collect();
            vec![mean(&v)]
        }
        R::MacroImagewise | R::WeightedImagewise => {
            let v: Vec<f64> = (0..c)
                .map(|k| {
                    let col: Vec<f64> = (0..b)
                        .map(|i| fix(score(s.tp[i][k], s.fp[i][k], s.fn_[i][k])))
                        .collect();
                    mean(&col) * w[k]
                })
                .collect();
            vec![mean(&v)]
        }
        R::None => (0..b)
            .flat_map(|i| (0..c).map(move |k| (i, k)))
            .map(|(i, k)| fix(score(s.tp[i][k], s.fp[i][k], s.fn_[i][k])))
            .collect(),
    })
}
