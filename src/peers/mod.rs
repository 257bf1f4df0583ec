//! Constructors in the peers' vocabulary (SPEC §4): MONAI's `DiceLoss` / `TverskyLoss` /
//! `DiceCELoss` / `DiceFocalLoss` and JDTLosses' `JDTLoss`, with their defaults.

use crate::options::{
    Activation, ActiveClasses, Aggregation, CrossEntropy, Focal, FocalAlpha, Formulation, Overlap,
    Reduction, SingleChannelSoftmax,
};
use crate::LossOptions;

pub(crate) fn monai_activation(softmax: bool, sigmoid: bool) -> Activation {
    if softmax {
        Activation::Softmax
    } else if sigmoid {
        Activation::Sigmoid
    } else {
        Activation::None
    }
}

pub(crate) fn monai_formulation(soft_label: bool, squared_pred: bool) -> Formulation {
    if squared_pred {
        Formulation::Squared
    } else if soft_label {
        Formulation::Soft
    } else {
        Formulation::Classic
    }
}

pub mod jdt;
pub mod monai;
mod monai_ds;
mod monai_gdl;
