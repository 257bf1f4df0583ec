//! The metrics from the counts, as JDTLosses defines them (`mioud_metric.py`,
//! `miouic_metric.py`), as fractions in [0, 1]:
//! - dataset level (D): per class IoU = tp/(tp + fp + fn) and Dice = 2tp/(2tp + fp + fn)
//!   over the whole dataset; the means leave out classes whose union is 0 (and, with two
//!   classes, the background); with no class left they are 1.
//! - image level (I): per image, the mean over the classes present in its label (two
//!   classes: over the foreground when prediction or label holds both classes, else the
//!   image scores 1); then the mean over images. Images without valid pixels are left
//!   out.
//! - class level (C): per class, the mean of its per-image values over the images where it
//!   counts; then the mean over classes that count somewhere (two classes: = I).
//! - worst case at q %: the lowest `max(1, ⌊q/100 · n⌋)` values (I: over images; C: per
//!   class over its images, then the mean over classes).

use super::state::MetricsState;

/// One image's values (`None`: no valid pixel).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ImageScore {
    /// Its mean IoU over the classes that count.
    pub miou: Option<f64>,
    /// Its mean Dice over the classes that count.
    pub mdice: Option<f64>,
}

/// The metrics of the images added so far.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricsResult {
    /// Images added.
    pub images: usize,
    /// Classes C.
    pub classes: usize,
    /// mIoU at dataset level.
    pub miou_d: f64,
    /// mDice at dataset level.
    pub mdice_d: f64,
    /// mIoU at image level.
    pub miou_i: f64,
    /// mDice at image level.
    pub mdice_i: f64,
    /// mIoU at class level.
    pub miou_c: f64,
    /// mDice at class level.
    pub mdice_c: f64,
    /// Per class IoU over the dataset (`None` where the union is 0).
    pub iou_d_per_class: Vec<Option<f64>>,
    /// Per class Dice over the dataset (`None` where the union is 0).
    pub dice_d_per_class: Vec<Option<f64>>,
    /// Per image values, in the order added.
    pub per_image: Vec<ImageScore>,
}

/// The worst-case metrics at q %.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WorstCase {
    /// q in percent (0, 100].
    pub q: f64,
    /// Mean IoU of the worst q % of images.
    pub miou_i: f64,
    /// Mean Dice of the worst q % of images.
    pub mdice_i: f64,
    /// Per class the mean IoU of its worst q % of images, then the mean over classes.
    pub miou_c: f64,
    /// The same with Dice.
    pub mdice_c: f64,
}

/// Per image: `None` (no valid pixel), or its (IoU, Dice) per counted class.
type ImageValues = Option<Vec<(usize, f64, f64)>>;

fn image_values(state: &MetricsState) -> Vec<ImageValues> {
    let c_all = state.classes;
    state
        .images
        .iter()
        .map(|im| {
            if im.valid == 0.0 {
                return None;
            }
            let v = |c: usize| {
                let (tp, fp, fn_) = im.tp_fp_fn(c);
                (c, tp / (tp + fp + fn_), 2.0 * tp / (2.0 * tp + fp + fn_))
            };
            if c_all == 2 {
                let present = |c: usize| im.counts[c][1] + im.counts[c][2] > 0.0;
                if present(0) && present(1) {
                    return Some(vec![v(1)]);
                }
                return Some(vec![(1, 1.0, 1.0)]);
            }
            Some(
                (0..c_all)
                    .filter(|&c| im.counts[c][2] > 0.0)
                    .map(v)
                    .collect(),
            )
        })
        .collect()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// The lowest `max(1, ⌊q/100 · n⌋)` of `v` (sorted ascending), averaged.
fn worst_mean(mut v: Vec<f64>, q: Option<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = match q {
        Some(q) => ((q / 100.0 * v.len() as f64) as usize).max(1),
        None => v.len(),
    };
    mean(&v[..n.min(v.len())])
}

/// (mIoU, mDice) at image and class level, over the worst q % (`None`: all).
fn levels(state: &MetricsState, q: Option<f64>) -> (f64, f64, f64, f64) {
    let per = image_values(state);
    let images: Vec<&Vec<(usize, f64, f64)>> = per.iter().flatten().collect();
    if images.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN, f64::NAN);
    }
    let iou_i: Vec<f64> = images
        .iter()
        .map(|v| mean(&v.iter().map(|x| x.1).collect::<Vec<_>>()))
        .collect();
    let dice_i: Vec<f64> = images
        .iter()
        .map(|v| mean(&v.iter().map(|x| x.2).collect::<Vec<_>>()))
        .collect();
    let (miou_i, mdice_i) = (worst_mean(iou_i, q), worst_mean(dice_i, q));
    if state.classes == 2 {
        return (miou_i, mdice_i, miou_i, mdice_i);
    }
    let (mut iou_c, mut dice_c) = (Vec::new(), Vec::new());
    for c in 0..state.classes {
        let of_c: Vec<(f64, f64)> = images
            .iter()
            .flat_map(|v| v.iter().filter(|x| x.0 == c).map(|x| (x.1, x.2)))
            .collect();
        if of_c.is_empty() {
            continue;
        }
        iou_c.push(worst_mean(of_c.iter().map(|x| x.0).collect(), q));
        dice_c.push(worst_mean(of_c.iter().map(|x| x.1).collect(), q));
    }
    (miou_i, mdice_i, mean(&iou_c), mean(&dice_c))
}

impl MetricsState {
    /// The metrics of the images so far.
    pub fn result(&self) -> MetricsResult {
        let d = self.dataset_counts();
        let per_class = |f: &dyn Fn(f64, f64, f64) -> f64| -> Vec<Option<f64>> {
            d.iter()
                .map(|&(tp, fp, fn_)| (tp + fp + fn_ > 0.0).then(|| f(tp, fp, fn_)))
                .collect()
        };
        let iou = per_class(&|tp, fp, fn_| tp / (tp + fp + fn_));
        let dice = per_class(&|tp, fp, fn_| 2.0 * tp / (2.0 * tp + fp + fn_));
        let counted = |v: &[Option<f64>]| -> f64 {
            let skip = usize::from(self.classes == 2);
            let kept: Vec<f64> = v.iter().skip(skip).flatten().copied().collect();
            if kept.is_empty() {
                1.0
            } else {
                mean(&kept)
            }
        };
        let (miou_i, mdice_i, miou_c, mdice_c) = levels(self, None);
        let per_image = image_values(self)
            .iter()
            .map(|v| ImageScore {
                miou: v
                    .as_ref()
                    .map(|v| mean(&v.iter().map(|x| x.1).collect::<Vec<_>>())),
                mdice: v
                    .as_ref()
                    .map(|v| mean(&v.iter().map(|x| x.2).collect::<Vec<_>>())),
            })
            .collect();
        MetricsResult {
            images: self.images.len(),
            classes: self.classes,
            miou_d: counted(&iou),
            mdice_d: counted(&dice),
            miou_i,
            mdice_i,
            miou_c,
            mdice_c,
            iou_d_per_class: iou,
            dice_d_per_class: dice,
            per_image,
        }
    }

    /// The worst-case metrics over the lowest `q` % (0 < q ≤ 100).
    pub fn worst(&self, q: f64) -> WorstCase {
        let (miou_i, mdice_i, miou_c, mdice_c) = levels(self, Some(q));
        WorstCase {
            q,
            miou_i,
            mdice_i,
            miou_c,
            mdice_c,
        }
    }
}
