//! MONAI's `DiceMetric` and `MeanIoU` semantics (MONAI 1.6.1) over the accumulated
//! counts: per (image, class) Dice = 2tp/(predicted + labelled) and IoU = tp/union, an
//! empty label giving NaN (`ignore_empty`) or else 1 when the prediction is empty too
//! and 0 otherwise; `include_background = false` drops class 0; then MONAI's reductions
//! over the non-NaN values.

use super::state::MetricsState;

/// MONAI's `MetricReduction`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MetricReduction {
    /// `[B, C']`, NaN where undefined.
    None,
    /// Per image the mean over its non-NaN classes, then the mean over images that have
    /// one.
    #[default]
    Mean,
    /// The sum of the non-NaN values.
    Sum,
    /// Per class, the mean over images (`[C']`).
    MeanBatch,
    /// Per class, the sum over images (`[C']`).
    SumBatch,
    /// Per image, the mean over classes (`[B]`).
    MeanChannel,
    /// Per image, the sum over classes (`[B]`).
    SumChannel,
}

/// A MONAI-style metric's values: per (image, kept class), and reduced.
#[derive(Clone, Debug, PartialEq)]
pub struct MonaiValues {
    /// `[B][C']`, NaN where undefined.
    pub per_item: Vec<Vec<f64>>,
    /// The reduction's values (1, C', B or B·C' of them), 0 where no value is defined.
    pub reduced: Vec<f64>,
}

/// MONAI's `DiceMetric(include_background, reduction, ignore_empty)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiceMetric {
    /// Keep class 0.
    pub include_background: bool,
    /// How the per-item values are reduced.
    pub reduction: MetricReduction,
    /// NaN (left out of the reductions) where the label of a class is empty.
    pub ignore_empty: bool,
}

/// MONAI's `MeanIoU(include_background, reduction, ignore_empty)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MeanIoU {
    /// Keep class 0.
    pub include_background: bool,
    /// How the per-item values are reduced.
    pub reduction: MetricReduction,
    /// NaN (left out of the reductions) where the label of a class is empty.
    pub ignore_empty: bool,
}

impl Default for DiceMetric {
    fn default() -> Self {
        DiceMetric {
            include_background: true,
            reduction: MetricReduction::Mean,
            ignore_empty: true,
        }
    }
}

impl Default for MeanIoU {
    fn default() -> Self {
        MeanIoU {
            include_background: true,
            reduction: MetricReduction::Mean,
            ignore_empty: true,
        }
    }
}

impl DiceMetric {
    /// The metric over `state`'s images.
    pub fn compute(&self, state: &MetricsState) -> MonaiValues {
        values(
            state,
            self.include_background,
            self.ignore_empty,
            self.reduction,
            |tp, p, l| 2.0 * tp / (p + l),
        )
    }
}

impl MeanIoU {
    /// The metric over `state`'s images.
    pub fn compute(&self, state: &MetricsState) -> MonaiValues {
        values(
            state,
            self.include_background,
            self.ignore_empty,
            self.reduction,
            |tp, p, l| tp / (p + l - tp),
        )
    }
}

fn values(
    state: &MetricsState,
    include_background: bool,
    ignore_empty: bool,
    reduction: MetricReduction,
    f: impl Fn(f64, f64, f64) -> f64,
) -> MonaiValues {
    let c0 = usize::from(!include_background && state.classes > 1);
    let per_item: Vec<Vec<f64>> = state
        .images
        .iter()
        .map(|im| {
            (c0..state.classes)
                .map(|c| {
                    let [tp, p, l] = im.counts[c];
                    if l > 0.0 {
                        f(tp, p, l)
                    } else if ignore_empty {
                        f64::NAN
                    } else if p == 0.0 {
                        1.0
                    } else {
                        0.0
                    }
                })
                .collect()
        })
        .collect();
    let k = state.classes - c0;
    let mean = |v: &mut dyn Iterator<Item = f64>| {
        let v: Vec<f64> = v.filter(|x| !x.is_nan()).collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    let sum = |v: &mut dyn Iterator<Item = f64>| v.filter(|x| !x.is_nan()).sum::<f64>();
    let col = |c: usize| per_item.iter().map(move |r| r[c]);
    let reduced = match reduction {
        MetricReduction::None => per_item.iter().flatten().copied().collect(),
        MetricReduction::Mean => {
            let images: Vec<f64> = per_item
                .iter()
                .filter_map(|r| mean(&mut r.iter().copied()))
                .collect();
            vec![mean(&mut images.into_iter()).unwrap_or(0.0)]
        }
        MetricReduction::Sum => vec![sum(&mut per_item.iter().flatten().copied())],
        MetricReduction::MeanBatch => (0..k).map(|c| mean(&mut col(c)).unwrap_or(0.0)).collect(),
        MetricReduction::SumBatch => (0..k).map(|c| sum(&mut col(c))).collect(),
        MetricReduction::MeanChannel => per_item
            .iter()
            .map(|r| mean(&mut r.iter().copied()).unwrap_or(0.0))
            .collect(),
        MetricReduction::SumChannel => per_item
            .iter()
            .map(|r| sum(&mut r.iter().copied()))
            .collect(),
    };
    MonaiValues { per_item, reduced }
}
