//! The option kinds of the overlap loss: which index, formulation, activation,
//! aggregation, active-class rule, reduction, and the one-channel softmax rule.

/// Which overlap index: Tversky T = (tp + s_nr)/(tp + α·fp + β·fn + s_dr) (SPEC §2.5).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Overlap {
    /// Jaccard (IoU): α = β = 1.
    Jaccard,
    /// Dice (F1): α = β = 0.5.
    Dice,
    /// Tversky with any α, β ≥ 0 (α weighs false positives, β false negatives).
    Tversky {
        /// Weight of false positives.
        alpha: f64,
        /// Weight of false negatives.
        beta: f64,
    },
    /// Generalized Dice (Sudre et al. 2017; MONAI's `GeneralizedDiceLoss`): one item per
    /// image (or per batch at dataset level) pooling its classes with weights from the
    /// target volume g_c = Σ y:
    /// `1 − (Σ_c w_c tp_c + s_nr) / (Σ_c w_c (tp_c + fp_c/2 + fn_c/2) + s_dr)`. A class
    /// with an empty target (infinite weight) takes the item's largest finite weight, or
    /// 0 when none is finite. The weights depend on the target only: constants for the
    /// gradient.
    GeneralizedDice {
        /// How g_c becomes w_c.
        weight: GdlWeight,
    },
}

impl Overlap {
    /// (α, β) of this index (Generalized Dice: Dice's).
    pub fn alpha_beta(&self) -> (f64, f64) {
        match *self {
            Overlap::Jaccard => (1.0, 1.0),
            Overlap::Dice | Overlap::GeneralizedDice { .. } => (0.5, 0.5),
            Overlap::Tversky { alpha, beta } => (alpha, beta),
        }
    }

    /// The class-volume weighting of a Generalized Dice, else `None`.
    pub fn generalized(&self) -> Option<GdlWeight> {
        match *self {
            Overlap::GeneralizedDice { weight } => Some(weight),
            _ => None,
        }
    }
}

/// Generalized Dice class weights from the target volume g (MONAI's `w_type`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum GdlWeight {
    /// 1/g (`"simple"`).
    Simple,
    /// 1/g² (`"square"`, MONAI's default).
    #[default]
    Square,
    /// 1 (`"uniform"`).
    Uniform,
}

impl GdlWeight {
    /// w(g) as the kernels compute it: in f32 (as MONAI, which computes the weights of
    /// `ground_o.float()`), +∞ for an empty class (g = 0).
    pub fn of(self, g: f64) -> f64 {
        let g = g as f32;
        f64::from(match self {
            GdlWeight::Simple => 1.0 / g,
            GdlWeight::Square => 1.0 / (g * g),
            GdlWeight::Uniform => 1.0,
        })
    }
}

impl std::str::FromStr for GdlWeight {
    type Err = crate::error::Error;

    /// MONAI's `w_type` strings: `"simple"`, `"square"`, `"uniform"` (surrounding
    /// whitespace ignored); anything else is [`crate::Error::InvalidOption`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "simple" => Ok(GdlWeight::Simple),
            "square" => Ok(GdlWeight::Square),
            "uniform" => Ok(GdlWeight::Uniform),
            other => Err(crate::error::Error::InvalidOption {
                name: "w_type",
                reason: format!("{other:?}: expected \"simple\", \"square\" or \"uniform\""),
            }),
        }
    }
}

/// How tp, fp and fn are formed from probabilities p and targets y (SPEC §2.4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Formulation {
    /// L1 form, correct with soft labels (Jaccard Metric / Dice Semimetric losses,
    /// MONAI `soft_label=True`): tp = (Σ|p| + Σ|y| − Σ|p − y|)/2.
    #[default]
    Soft,
    /// L2 form (MONAI `squared_pred=True`, JDTLoss `norm=2`): the same with squares.
    Squared,
    /// Legacy product form tp = Σp·y (MONAI `soft_label=False`). Equal to `Soft` on hard
    /// labels, biased towards p = 1 on soft ones; kept for parity.
    Classic,
}

/// Activation applied to the raw input (SPEC §2.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Activation {
    /// Softmax over the class axis (max subtracted).
    #[default]
    Softmax,
    /// Elementwise sigmoid (multi-label, or C = 1).
    Sigmoid,
    /// The input already holds probabilities in [0, 1]. Values outside are not
    /// rejected (the SPEC's |p| form defines them), but the losses are ill-conditioned
    /// there: negative "probabilities" can bring the Tversky denominator near 0.
    None,
}

/// Weights of the three aggregation levels (SPEC §2.7; JDTLoss mIoU^D / mIoU^I / mIoU^C).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Aggregation {
    /// Dataset level: tp, fp, fn summed over the batch first (MONAI `batch=True`).
    pub dataset: f64,
    /// Image level: mean over images of the mean over their active classes
    /// (MONAI `batch=False`).
    pub image: f64,
    /// Class level: mean over classes of the mean over the images where they are active.
    pub class: f64,
}

impl Aggregation {
    /// Dataset level only (MONAI `batch=True`, JDTLoss default).
    pub const DATASET: Aggregation = Aggregation {
        dataset: 1.0,
        image: 0.0,
        class: 0.0,
    };
    /// Image level only (MONAI `batch=False`, the MONAI default).
    pub const IMAGE: Aggregation = Aggregation {
        dataset: 0.0,
        image: 1.0,
        class: 0.0,
    };
    /// Class level only.
    pub const CLASS: Aggregation = Aggregation {
        dataset: 0.0,
        image: 0.0,
        class: 1.0,
    };

    /// Number of levels with a weight > 0.
    pub fn levels(&self) -> usize {
        [self.dataset, self.image, self.class]
            .iter()
            .filter(|w| **w > 0.0)
            .count()
    }
}

/// Which (item, class) pairs count in the means (SPEC §2.7).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ActiveClasses {
    /// Every item counts.
    All,
    /// An item counts when the max of its (masked) target exceeds `threshold`. The
    /// comparison is made in f32 on every path (GPU and CPU reference alike): a target
    /// value y counts when `y as f32 > threshold as f32`, so a target equal to the
    /// threshold does not count.
    Present {
        /// Presence threshold (JDTLoss default 0.01).
        threshold: f64,
    },
}

/// How item losses become the result (SPEC §2.8).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Reduction {
    /// The aggregation means (default).
    #[default]
    Mean,
    /// Sum of the active items' weighted losses (one aggregation level only).
    Sum,
    /// Per-item values: `[C']` (dataset level) or `[B, C']` (image or class level);
    /// the scalar loss is their sum, and the gradient is that of the sum.
    None,
}

/// What `Activation::Softmax` does on a one-channel input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SingleChannelSoftmax {
    /// [`crate::Error::InvalidOption`]: the softmax of one channel is the constant 1.
    #[default]
    Error,
    /// No activation, the input taken as it is (MONAI: "single channel prediction,
    /// `softmax=True` ignored."), without the `[0, 1]` check of `Activation::None`.
    Identity,
}

/// What a call does when the classic formulation (tp = Σx·y) meets soft targets: any
/// kept target value strictly between 0 and 1. The classic losses are biased there (the
/// Dice loss of a pixel labelled 0.5 is smallest at x = 1, not at x = 0.5): the soft
/// formulation ([`crate::Formulation::Soft`]) is the fix. Either way the call reports it
/// in [`crate::LossOutput::soft_targets_with_classic`], found by the statistics kernel
/// (a status bit, no extra pass) or the CPU reference.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SoftLabelGuard {
    /// The result, with the field set and one `log` warning per process naming the fix
    /// (default; the MONAI constructors keep it, as MONAI raises nothing).
    #[default]
    Warn,
    /// [`crate::Error::SoftTargetsWithClassic`] instead of a result.
    Error,
}
