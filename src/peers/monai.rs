//! MONAI-style constructors (MONAI 1.6 argument names and defaults).

use super::*;

pub use super::monai_ds::{DeepSupervisionLoss, WeightMode};
pub use super::monai_gdl::{GeneralizedDiceFocalLoss, GeneralizedDiceLoss};

/// MONAI 1.6 `DiceLoss` arguments, with MONAI's defaults.
///
/// MONAI's `smooth_nr`/`smooth_dr` enter its Dice as (2·tp + s)/(2·tp + fp + fn + s),
/// so they map to s/2 in segloss's Tversky form (SPEC §4).
/// ```
/// use segloss::monai::DiceLoss;
/// let opts = DiceLoss { softmax: true, soft_label: true, batch: true, ..Default::default() }
///     .options();
/// assert_eq!(opts.smooth_nr, 0.5e-5);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct DiceLoss {
    /// Drop class 0 when false.
    pub include_background: bool,
    /// Sigmoid activation.
    pub sigmoid: bool,
    /// Softmax activation.
    pub softmax: bool,
    /// L2 form.
    pub squared_pred: bool,
    /// Jaccard instead of Dice.
    pub jaccard: bool,
    /// MONAI's `reduction` ("mean", "sum", "none"), typed: a misspelt string cannot
    /// silently become the mean.
    pub reduction: Reduction,
    /// Numerator smoothing in MONAI's convention.
    pub smooth_nr: f64,
    /// Denominator smoothing in MONAI's convention.
    pub smooth_dr: f64,
    /// Reduce over the batch first (dataset level).
    pub batch: bool,
    /// Per-class weights.
    pub weight: Option<Vec<f64>>,
    /// The soft-label-correct L1 form.
    pub soft_label: bool,
    /// Ignored class index, by MONAI's rule (`create_ignore_mask`): with index targets
    /// (`to_onehot_y`) the pixels holding it; with one-hot / soft targets, the pixels
    /// whose channel k is 1 when `0 ≤ k < C`, else the pixels whose every channel is
    /// 0. See [`crate::LossOptions::ignore_index`].
    pub ignore_index: Option<i64>,
}

impl Default for DiceLoss {
    fn default() -> Self {
        DiceLoss {
            include_background: true,
            sigmoid: false,
            softmax: false,
            squared_pred: false,
            jaccard: false,
            reduction: Reduction::Mean,
            smooth_nr: 1e-5,
            smooth_dr: 1e-5,
            batch: false,
            weight: None,
            soft_label: false,
            ignore_index: None,
        }
    }
}

impl DiceLoss {
    /// The equivalent segloss options.
    pub fn options(&self) -> LossOptions {
        LossOptions {
            overlap: if self.jaccard {
                Overlap::Jaccard
            } else {
                Overlap::Dice
            },
            formulation: monai_formulation(self.soft_label, self.squared_pred),
            activation: monai_activation(self.softmax, self.sigmoid),
            smooth_nr: self.smooth_nr / 2.0,
            smooth_dr: self.smooth_dr / 2.0,
            include_background: self.include_background,
            aggregation: if self.batch {
                Aggregation::DATASET
            } else {
                Aggregation::IMAGE
            },
            active_classes: ActiveClasses::All,
            class_weights: self.weight.clone(),
            log_loss: false,
            gamma: 1.0,
            reduction: self.reduction,
            ignore_index: self.ignore_index,
            single_channel_softmax: SingleChannelSoftmax::Identity,
            ..LossOptions::dice()
        }
    }
}

/// MONAI 1.6 `TverskyLoss` arguments, with MONAI's defaults (α = β = 0.5). Its
/// smoothing enters the Tversky index as is.
#[derive(Clone, Debug, PartialEq)]
pub struct TverskyLoss {
    /// Drop class 0 when false.
    pub include_background: bool,
    /// Sigmoid activation.
    pub sigmoid: bool,
    /// Softmax activation.
    pub softmax: bool,
    /// Weight of false positives.
    pub alpha: f64,
    /// Weight of false negatives.
    pub beta: f64,
    /// MONAI's `reduction` ("mean", "sum", "none"), typed: a misspelt string cannot
    /// silently become the mean.
    pub reduction: Reduction,
    /// Numerator smoothing.
    pub smooth_nr: f64,
    /// Denominator smoothing.
    pub smooth_dr: f64,
    /// Reduce over the batch first (dataset level).
    pub batch: bool,
    /// The soft-label-correct L1 form.
    pub soft_label: bool,
    /// Ignored class index: MONAI's rule, as for [`DiceLoss::ignore_index`].
    pub ignore_index: Option<i64>,
}

impl Default for TverskyLoss {
    fn default() -> Self {
        TverskyLoss {
            include_background: true,
            sigmoid: false,
            softmax: false,
            alpha: 0.5,
            beta: 0.5,
            reduction: Reduction::Mean,
            smooth_nr: 1e-5,
            smooth_dr: 1e-5,
            batch: false,
            soft_label: false,
            ignore_index: None,
        }
    }
}

impl TverskyLoss {
    /// The equivalent segloss options.
    pub fn options(&self) -> LossOptions {
        LossOptions {
            overlap: Overlap::Tversky {
                alpha: self.alpha,
                beta: self.beta,
            },
            formulation: monai_formulation(self.soft_label, false),
            activation: monai_activation(self.softmax, self.sigmoid),
            smooth_nr: self.smooth_nr,
            smooth_dr: self.smooth_dr,
            include_background: self.include_background,
            aggregation: if self.batch {
                Aggregation::DATASET
            } else {
                Aggregation::IMAGE
            },
            active_classes: ActiveClasses::All,
            class_weights: None,
            log_loss: false,
            gamma: 1.0,
            reduction: self.reduction,
            ignore_index: self.ignore_index,
            single_channel_softmax: SingleChannelSoftmax::Identity,
            ..LossOptions::dice()
        }
    }
}

/// MONAI 1.6 `DiceCELoss` arguments, with MONAI's defaults: λ_dice·Dice + λ_ce·CE,
/// both in the same passes over memory.
///
/// `weight` (one per class, all C) goes to the cross-entropy and, without the
/// background when it is dropped, to the Dice. `soft_label` (not a MONAI argument:
/// MONAI's `DiceCELoss` always uses the classic Dice) selects the soft-label-correct
/// Dice. With `sigmoid`, the CE term is `BCEWithLogitsLoss(pos_weight=weight)`;
/// MONAI does this for one channel only and uses softmax CE otherwise.
/// ```
/// use segloss::monai::DiceCELoss;
/// let o = DiceCELoss { softmax: true, lambda_ce: 0.5, soft_label: true, ..Default::default() }
///     .options();
/// assert_eq!(o.cross_entropy.map(|ce| ce.weight), Some(0.5));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct DiceCELoss {
    /// Drop class 0 from the Dice term when false.
    pub include_background: bool,
    /// Sigmoid activation (binary CE).
    pub sigmoid: bool,
    /// Softmax activation (softmax CE).
    pub softmax: bool,
    /// L2 Dice.
    pub squared_pred: bool,
    /// Jaccard instead of Dice.
    pub jaccard: bool,
    /// MONAI's `reduction`, typed: `Mean` or `Sum` (MONAI's `DiceCEReduction` /
    /// `DiceFocal` take no "none"; [`Reduction::None`] is refused when the loss is
    /// built).
    pub reduction: Reduction,
    /// Numerator smoothing in MONAI's convention.
    pub smooth_nr: f64,
    /// Denominator smoothing in MONAI's convention.
    pub smooth_dr: f64,
    /// Dice over the batch first (dataset level).
    pub batch: bool,
    /// Per-class weights (all C classes).
    pub weight: Option<Vec<f64>>,
    /// λ_dice.
    pub lambda_dice: f64,
    /// λ_ce.
    pub lambda_ce: f64,
    /// CE label smoothing.
    pub label_smoothing: f64,
    /// segloss extension: the soft-label-correct Dice (MONAI: classic).
    pub soft_label: bool,
}

impl Default for DiceCELoss {
    fn default() -> Self {
        DiceCELoss {
            include_background: true,
            sigmoid: false,
            softmax: false,
            squared_pred: false,
            jaccard: false,
            reduction: Reduction::Mean,
            smooth_nr: 1e-5,
            smooth_dr: 1e-5,
            batch: false,
            weight: None,
            lambda_dice: 1.0,
            lambda_ce: 1.0,
            label_smoothing: 0.0,
            soft_label: false,
        }
    }
}

impl DiceCELoss {
    /// The equivalent segloss options.
    pub fn options(&self) -> LossOptions {
        // With `sigmoid` the weight is BCE's pos_weight: MONAI takes that path with one
        // channel only, where its Dice applies no weight.
        let dice_weight = match (&self.weight, self.include_background) {
            _ if self.sigmoid => None,
            (Some(w), false) => Some(w[1.min(w.len())..].to_vec()),
            (w, _) => w.clone(),
        };
        let dice = DiceLoss {
            include_background: self.include_background,
            sigmoid: self.sigmoid,
            softmax: self.softmax,
            squared_pred: self.squared_pred,
            jaccard: self.jaccard,
            reduction: self.reduction,
            smooth_nr: self.smooth_nr,
            smooth_dr: self.smooth_dr,
            batch: self.batch,
            weight: dice_weight,
            soft_label: self.soft_label,
            ignore_index: None,
        };
        let ce = if self.sigmoid {
            CrossEntropy {
                pos_weight: self.weight.clone(),
                ..CrossEntropy::binary(self.lambda_ce)
            }
        } else {
            CrossEntropy {
                class_weights: self.weight.clone(),
                label_smoothing: self.label_smoothing,
                ..CrossEntropy::softmax(self.lambda_ce)
            }
        };
        dice.options()
            .overlap_weight(self.lambda_dice)
            .cross_entropy(ce)
    }
}

/// MONAI 1.6 `DiceFocalLoss` arguments, with MONAI's defaults: λ_dice·Dice +
/// λ_focal·Focal. As in MONAI, the focal term is the sigmoid one whatever the Dice's
/// activation, and `weight` and `alpha` apply to the kept classes. `soft_label` (not
/// a MONAI argument) selects the soft-label-correct Dice.
#[derive(Clone, Debug, PartialEq)]
pub struct DiceFocalLoss {
    /// Drop class 0 from both terms when false.
    pub include_background: bool,
    /// Sigmoid activation of the Dice.
    pub sigmoid: bool,
    /// Softmax activation of the Dice.
    pub softmax: bool,
    /// L2 Dice.
    pub squared_pred: bool,
    /// Jaccard instead of Dice.
    pub jaccard: bool,
    /// MONAI's `reduction`, typed: `Mean` or `Sum` (MONAI's `DiceCEReduction` /
    /// `DiceFocal` take no "none"; [`Reduction::None`] is refused when the loss is
    /// built).
    pub reduction: Reduction,
    /// Numerator smoothing in MONAI's convention.
    pub smooth_nr: f64,
    /// Denominator smoothing in MONAI's convention.
    pub smooth_dr: f64,
    /// Dice over the batch first (dataset level).
    pub batch: bool,
    /// Focal γ.
    pub gamma: f64,
    /// Per-kept-class weights of both terms.
    pub weight: Option<Vec<f64>>,
    /// λ_dice.
    pub lambda_dice: f64,
    /// λ_focal.
    pub lambda_focal: f64,
    /// Focal α (scalar).
    pub alpha: Option<f64>,
    /// segloss extension: the soft-label-correct Dice (MONAI: classic).
    pub soft_label: bool,
}

impl Default for DiceFocalLoss {
    fn default() -> Self {
        DiceFocalLoss {
            include_background: true,
            sigmoid: false,
            softmax: false,
            squared_pred: false,
            jaccard: false,
            reduction: Reduction::Mean,
            smooth_nr: 1e-5,
            smooth_dr: 1e-5,
            batch: false,
            gamma: 2.0,
            weight: None,
            lambda_dice: 1.0,
            lambda_focal: 1.0,
            alpha: None,
            soft_label: false,
        }
    }
}

impl DiceFocalLoss {
    /// The equivalent segloss options.
    pub fn options(&self) -> LossOptions {
        let dice = DiceLoss {
            include_background: self.include_background,
            sigmoid: self.sigmoid,
            softmax: self.softmax,
            squared_pred: self.squared_pred,
            jaccard: self.jaccard,
            reduction: self.reduction,
            smooth_nr: self.smooth_nr,
            smooth_dr: self.smooth_dr,
            batch: self.batch,
            weight: self.weight.clone(),
            soft_label: self.soft_label,
            ignore_index: None,
        };
        let focal = Focal {
            alpha: self.alpha.map(FocalAlpha::Scalar),
            class_weights: self.weight.clone(),
            ..Focal::sigmoid(self.lambda_focal, self.gamma)
        };
        dice.options().overlap_weight(self.lambda_dice).focal(focal)
    }
}
