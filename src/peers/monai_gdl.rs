//! MONAI's Generalized Dice constructors (`GeneralizedDiceLoss`,
//! `GeneralizedDiceFocalLoss`, MONAI 1.6.1 argument names and defaults), re-exported in
//! [`crate::monai`].

use crate::options::{
    Aggregation, Focal, Formulation, GdlWeight, LossOptions, Overlap, Reduction,
    SingleChannelSoftmax,
};

use super::monai_activation;

/// MONAI 1.6 `GeneralizedDiceLoss` (Sudre et al. 2017), with MONAI's defaults: one item
/// per image (or per batch with `batch`), classes weighted by their target volume.
///
/// MONAI's `smooth_nr` / `smooth_dr` enter as (2·Σ w tp + s)/(Σ w (2tp + fp + fn) + s),
/// so they map to s/2 in segloss's Tversky form, as for `DiceLoss`.
/// ```
/// use segloss::monai::GeneralizedDiceLoss;
/// use segloss::{GdlWeight, Overlap};
/// let o = GeneralizedDiceLoss { softmax: true, soft_label: true, ..Default::default() }.options();
/// assert_eq!(o.overlap, Overlap::GeneralizedDice { weight: GdlWeight::Square });
/// // MONAI's string argument, checked:
/// assert!("squared".parse::<GdlWeight>().is_err());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct GeneralizedDiceLoss {
    /// Drop class 0 when false.
    pub include_background: bool,
    /// Index targets (`Target::Index`) are one-hot encoded in the shader; this flag
    /// documents the call (segloss reads the target kind from the batch).
    pub to_onehot_y: bool,
    /// Sigmoid activation.
    pub sigmoid: bool,
    /// Softmax activation (one channel: none, as MONAI).
    pub softmax: bool,
    /// Class weights from the target volume (MONAI `w_type`, default `"square"`;
    /// `"simple".parse()` gives the typed value).
    pub w_type: GdlWeight,
    /// MONAI's `reduction`: mean over items, sum, or none (`[B]` values, `[1]` with
    /// `batch`).
    pub reduction: Reduction,
    /// Numerator smoothing in MONAI's convention.
    pub smooth_nr: f64,
    /// Denominator smoothing in MONAI's convention.
    pub smooth_dr: f64,
    /// One item for the whole batch (dataset level) rather than one per image.
    pub batch: bool,
    /// The soft-label-correct L1 form of tp, fp, fn.
    pub soft_label: bool,
}

impl Default for GeneralizedDiceLoss {
    fn default() -> Self {
        GeneralizedDiceLoss {
            include_background: true,
            to_onehot_y: false,
            sigmoid: false,
            softmax: false,
            w_type: GdlWeight::Square,
            reduction: Reduction::Mean,
            smooth_nr: 1e-5,
            smooth_dr: 1e-5,
            batch: false,
            soft_label: false,
        }
    }
}

impl GeneralizedDiceLoss {
    /// The equivalent segloss options.
    pub fn options(&self) -> LossOptions {
        LossOptions {
            overlap: Overlap::GeneralizedDice {
                weight: self.w_type,
            },
            formulation: if self.soft_label {
                Formulation::Soft
            } else {
                Formulation::Classic
            },
            activation: monai_activation(self.softmax, self.sigmoid),
            smooth_nr: self.smooth_nr / 2.0,
            smooth_dr: self.smooth_dr / 2.0,
            include_background: self.include_background,
            aggregation: if self.batch {
                Aggregation::DATASET
            } else {
                Aggregation::IMAGE
            },
            reduction: self.reduction,
            single_channel_softmax: SingleChannelSoftmax::Identity,
            ..LossOptions::dice()
        }
    }
}

/// MONAI 1.6 `GeneralizedDiceFocalLoss`: λ_gdl·GDL + λ_focal·focal, fused in the same
/// passes. As in MONAI, the GDL takes the classic form (MONAI passes no `soft_label`)
/// on the activated input, and the focal term is the sigmoid `FocalLoss` on the logits,
/// over the kept classes, weighted by `weight` (one per kept class).
/// ```
/// use segloss::monai::GeneralizedDiceFocalLoss;
/// let o = GeneralizedDiceFocalLoss { softmax: true, lambda_focal: 0.5, ..Default::default() }
///     .options();
/// assert_eq!(o.focal.map(|f| f.weight), Some(0.5));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct GeneralizedDiceFocalLoss {
    /// Drop class 0 (from both terms) when false.
    pub include_background: bool,
    /// See [`GeneralizedDiceLoss::to_onehot_y`].
    pub to_onehot_y: bool,
    /// Sigmoid activation of the GDL.
    pub sigmoid: bool,
    /// Softmax activation of the GDL.
    pub softmax: bool,
    /// Class weights of the GDL from the target volume.
    pub w_type: GdlWeight,
    /// Mean or sum (a compound loss has no per-item values).
    pub reduction: Reduction,
    /// Numerator smoothing in MONAI's convention.
    pub smooth_nr: f64,
    /// Denominator smoothing in MONAI's convention.
    pub smooth_dr: f64,
    /// One GDL item for the whole batch.
    pub batch: bool,
    /// Focal exponent γ.
    pub gamma: f64,
    /// Focal class weights, one per kept class (MONAI `weight`).
    pub weight: Option<Vec<f64>>,
    /// λ_gdl ≥ 0.
    pub lambda_gdl: f64,
    /// λ_focal ≥ 0.
    pub lambda_focal: f64,
}

impl Default for GeneralizedDiceFocalLoss {
    fn default() -> Self {
        GeneralizedDiceFocalLoss {
            include_background: true,
            to_onehot_y: false,
            sigmoid: false,
            softmax: false,
            w_type: GdlWeight::Square,
            reduction: Reduction::Mean,
            smooth_nr: 1e-5,
            smooth_dr: 1e-5,
            batch: false,
            gamma: 2.0,
            weight: None,
            lambda_gdl: 1.0,
            lambda_focal: 1.0,
        }
    }
}

impl GeneralizedDiceFocalLoss {
    /// The equivalent segloss options.
    pub fn options(&self) -> LossOptions {
        let gdl = GeneralizedDiceLoss {
            include_background: self.include_background,
            to_onehot_y: self.to_onehot_y,
            sigmoid: self.sigmoid,
            softmax: self.softmax,
            w_type: self.w_type,
            reduction: self.reduction,
            smooth_nr: self.smooth_nr,
            smooth_dr: self.smooth_dr,
            batch: self.batch,
            soft_label: false,
        };
        let focal = Focal {
            class_weights: self.weight.clone(),
            ..Focal::sigmoid(self.lambda_focal, self.gamma)
        };
        LossOptions {
            overlap_weight: self.lambda_gdl,
            focal: Some(focal),
            ..gdl.options()
        }
    }
}
