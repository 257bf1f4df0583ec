//! MONAI 1.6 `DeepSupervisionLoss`: its arguments and rules, over segloss's
//! [`crate::deep::DeepSupervision`] with MONAI's target interpolation
//! ([`Pooling::NearestExact`]).

use crate::deep::{DeepSupervision, Pooling, Weights};
use crate::{Context, LossOptions, Result};

/// MONAI's `weight_mode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WeightMode {
    /// `"same"`: 1 each.
    Same,
    /// `"exp"` (MONAI's default): max(0.5^k, 0.0625).
    #[default]
    Exp,
    /// `"two"`: 1, then 0.5 each.
    Two,
}

/// MONAI 1.6 `DeepSupervisionLoss(loss, weight_mode, weights)` arguments, with MONAI's
/// defaults; the wrapped loss is given as its options (e.g.
/// `segloss::monai::DiceLoss { softmax: true, ..Default::default() }.options()`).
///
/// MONAI's rules, kept: `weights` applies when it holds at least as many values as
/// there are heads (the first K of them), else `weight_mode` does; the target is
/// interpolated with `"nearest-exact"`; the total is the weighted sum.
/// [`DeepSupervisionLoss::build`] gives the [`DeepSupervision`] loss;
/// [`DeepSupervision::pooling`] with [`Pooling::Area`] keeps everything else and pools
/// by area instead.
/// ```
/// # fn main() -> segloss::Result<()> {
/// use segloss::monai::{DeepSupervisionLoss, DiceLoss};
/// let ctx = segloss::Context::new_or_cpu();
/// let dice = DiceLoss { softmax: true, ..Default::default() }.options();
/// let ds = DeepSupervisionLoss::default().build(&ctx, dice)?;
/// assert_eq!(ds.weights_of(3)?, [1.0, 0.5, 0.25]);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeepSupervisionLoss {
    /// How the weights are made when `weights` is shorter than the heads.
    pub weight_mode: WeightMode,
    /// Explicit weights, used when at least as many as heads.
    pub weights: Option<Vec<f32>>,
}

impl DeepSupervisionLoss {
    /// The weights by MONAI's rule.
    pub fn weights(&self) -> Weights {
        let mode = match self.weight_mode {
            WeightMode::Same => Weights::Same,
            WeightMode::Exp => Weights::Exp,
            WeightMode::Two => Weights::Two,
        };
        match &self.weights {
            Some(w) => Weights::Prefix(w.clone(), Box::new(mode)),
            None => mode,
        }
    }

    /// The deep-supervision loss over `loss` (the wrapped loss's options).
    pub fn build(&self, ctx: &Context, loss: LossOptions) -> Result<DeepSupervision> {
        Ok(DeepSupervision::new(ctx, loss)?
            .pooling(Pooling::NearestExact)
            .weights(self.weights()))
    }
}
