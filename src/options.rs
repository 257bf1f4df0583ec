//! Loss options in the SPEC's vocabulary (SPEC §2), validated when a loss is built.

use crate::{Error, Result};

/// The largest finite f32, as f64: options beyond it overflow the kernels.
const F32_MAX: f64 = f32::MAX as f64;

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
}

impl Overlap {
    /// (α, β) of this index.
    pub fn alpha_beta(&self) -> (f64, f64) {
        match *self {
            Overlap::Jaccard => (1.0, 1.0),
            Overlap::Dice => (0.5, 0.5),
            Overlap::Tversky { alpha, beta } => (alpha, beta),
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

/// Which pixelwise cross-entropy term a compound loss adds (see [`CrossEntropy`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CrossEntropyKind {
    /// Softmax cross-entropy with soft or index targets, as PyTorch's
    /// `CrossEntropyLoss(weight, label_smoothing)`: −Σ_c w_c·y'_c·log p_c per pixel.
    #[default]
    Softmax,
    /// The KL divergence KL(y' ‖ p) = Σ_c w_c·y'_c·(log y'_c − log p_c): the softmax
    /// cross-entropy minus the target entropy (0 at p = y'), same gradient.
    KlDivergence,
    /// Binary cross-entropy on logits per class, as PyTorch's
    /// `BCEWithLogitsLoss(weight, pos_weight)`: −w_c·[pw_c·y·log σ(x) + (1 − y)·log(1 − σ(x))].
    Binary,
}

/// A cross-entropy term of a compound loss, computed in the same passes over memory as
/// the overlap terms: `loss = overlap_weight · overlap + weight · CE (+ focal)`.
///
/// Mean reduction divides the summed term by the number of kept pixels (index targets
/// with `class_weights`: by Σ w_{y_i} over kept pixels, as PyTorch; `Binary`: by kept
/// pixels × C). Sum reduction leaves the sum.
#[derive(Clone, Debug, PartialEq)]
pub struct CrossEntropy {
    /// λ_ce ≥ 0.
    pub weight: f64,
    /// Softmax CE, KL divergence, or binary CE.
    pub kind: CrossEntropyKind,
    /// One weight ≥ 0 per class (all C classes), PyTorch's `weight`.
    pub class_weights: Option<Vec<f64>>,
    /// Label smoothing ε in [0, 1] (softmax kinds): y' = (1 − ε)·y + ε/C.
    pub label_smoothing: f64,
    /// `Binary` only: one weight ≥ 0 per class for positive targets (`pos_weight`).
    pub pos_weight: Option<Vec<f64>>,
}

impl CrossEntropy {
    /// Softmax cross-entropy with weight λ_ce.
    pub fn softmax(weight: f64) -> Self {
        CrossEntropy {
            weight,
            kind: CrossEntropyKind::Softmax,
            class_weights: None,
            label_smoothing: 0.0,
            pos_weight: None,
        }
    }
    /// KL divergence with weight λ_ce (the Jaccard Metric Loss paper's recipe for soft
    /// labels: 0.25·KL + 0.75·JML).
    pub fn kl(weight: f64) -> Self {
        CrossEntropy {
            kind: CrossEntropyKind::KlDivergence,
            ..Self::softmax(weight)
        }
    }
    /// Binary cross-entropy on logits with weight λ_ce.
    pub fn binary(weight: f64) -> Self {
        CrossEntropy {
            kind: CrossEntropyKind::Binary,
            ..Self::softmax(weight)
        }
    }
}

/// The α of a focal term, as MONAI 1.6's `FocalLoss(alpha)`.
#[derive(Clone, Debug, PartialEq)]
pub enum FocalAlpha {
    /// Sigmoid: y·α + (1 − y)·(1 − α) per element. Softmax: 1 − α for class 0, α for
    /// the others.
    Scalar(f64),
    /// One α_c per kept class. Sigmoid: α_c where y = 1, else 1. Softmax: α_c.
    PerClass(Vec<f64>),
}

/// A focal term of a compound loss (Lin et al. 2017, as MONAI's `FocalLoss`), over the
/// kept classes: sigmoid: w_c·a·σ(−x·(2y − 1))^γ·BCE(x, y); softmax:
/// −w_c·a·(1 − p_c)^γ·y_c·log p_c. Mean reduction divides by kept pixels × C'.
#[derive(Clone, Debug, PartialEq)]
pub struct Focal {
    /// λ_focal ≥ 0.
    pub weight: f64,
    /// Focusing exponent γ ≥ 0 (MONAI default 2).
    pub gamma: f64,
    /// Softmax over classes (MONAI `use_softmax=True`) instead of per-class sigmoid
    /// (MONAI's default, and what `DiceFocalLoss` uses).
    pub softmax: bool,
    /// Optional α balance.
    pub alpha: Option<FocalAlpha>,
    /// One weight ≥ 0 per kept class (MONAI `weight`).
    pub class_weights: Option<Vec<f64>>,
}

impl Focal {
    /// Sigmoid focal term with weight λ_focal and exponent γ.
    pub fn sigmoid(weight: f64, gamma: f64) -> Self {
        Focal {
            weight,
            gamma,
            softmax: false,
            alpha: None,
            class_weights: None,
        }
    }
    /// Softmax focal term with weight λ_focal and exponent γ.
    pub fn softmax(weight: f64, gamma: f64) -> Self {
        Focal {
            softmax: true,
            ..Self::sigmoid(weight, gamma)
        }
    }
}

/// Every option of a segloss loss, in the SPEC's vocabulary.
///
/// Build with [`LossOptions::dice`], [`LossOptions::jaccard`] or [`LossOptions::tversky`]
/// and the builder methods, or from the peers' vocabulary with
/// [`crate::monai::DiceLoss`], [`crate::monai::TverskyLoss`] and [`crate::jdt::JDTLoss`].
/// ```
/// use segloss::{LossOptions, Formulation, Aggregation};
/// let opts = LossOptions::dice()
///     .formulation(Formulation::Soft)
///     .aggregation(Aggregation::DATASET)
///     .smoothing(1e-5, 1e-5);
/// assert!(opts.validate().is_ok());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct LossOptions {
    /// Jaccard, Dice or Tversky(α, β).
    pub overlap: Overlap,
    /// Soft (default), squared or classic.
    pub formulation: Formulation,
    /// Softmax (default), sigmoid or none.
    pub activation: Activation,
    /// Numerator smoothing s_nr ≥ 0.
    pub smooth_nr: f64,
    /// Denominator smoothing s_dr ≥ 0.
    pub smooth_dr: f64,
    /// Keep class 0 (default true). Ignored when C = 1.
    pub include_background: bool,
    /// Aggregation level weights.
    pub aggregation: Aggregation,
    /// Active-class rule.
    pub active_classes: ActiveClasses,
    /// One weight ≥ 0 per kept class (C' of them), or none.
    pub class_weights: Option<Vec<f64>>,
    /// −ln T instead of 1 − T.
    pub log_loss: bool,
    /// Focal exponent γ ≥ 1 applied to each item loss.
    pub gamma: f64,
    /// Mean (default), sum or none.
    pub reduction: Reduction,
    /// Pixels to ignore, by MONAI's rule (SPEC §1.3). Index targets: pixels holding this
    /// value (may be negative with [`crate::Target::IndexI64`]). Soft / one-hot targets
    /// (host API): with `0 ≤ k < C`, pixels whose channel k is 1 (channel k must be 0 or
    /// 1 there, else [`crate::Error::FractionalIgnore`]); with k outside `0..C`, pixels
    /// whose every channel is 0. The GPU-resident API takes it with index targets only.
    pub ignore_index: Option<i64>,
    /// λ_overlap ≥ 0, the weight of the overlap loss (1; MONAI `lambda_dice`).
    pub overlap_weight: f64,
    /// A cross-entropy term added to the overlap loss (compound loss), or none.
    pub cross_entropy: Option<CrossEntropy>,
    /// A focal term added to the overlap loss, or none.
    pub focal: Option<Focal>,
    /// What a softmax over one channel does: an error (default; it is the constant 1
    /// with a zero gradient), or no activation (MONAI's rule, set by the
    /// [`crate::monai`] constructors).
    pub single_channel_softmax: SingleChannelSoftmax,
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

impl LossOptions {
    /// Soft Dice, softmax, image-level mean, smoothing 1e-5 (MONAI's default smoothing).
    pub fn dice() -> Self {
        Self::with_overlap(Overlap::Dice)
    }
    /// Soft Jaccard, softmax, image-level mean, smoothing 1e-5.
    pub fn jaccard() -> Self {
        Self::with_overlap(Overlap::Jaccard)
    }
    /// Soft Tversky(α, β), softmax, image-level mean, smoothing 1e-5.
    pub fn tversky(alpha: f64, beta: f64) -> Self {
        Self::with_overlap(Overlap::Tversky { alpha, beta })
    }
    fn with_overlap(overlap: Overlap) -> Self {
        LossOptions {
            overlap,
            formulation: Formulation::Soft,
            activation: Activation::Softmax,
            smooth_nr: 1e-5,
            smooth_dr: 1e-5,
            include_background: true,
            aggregation: Aggregation::IMAGE,
            active_classes: ActiveClasses::All,
            class_weights: None,
            log_loss: false,
            gamma: 1.0,
            reduction: Reduction::Mean,
            ignore_index: None,
            overlap_weight: 1.0,
            cross_entropy: None,
            focal: None,
            single_channel_softmax: SingleChannelSoftmax::Error,
        }
    }
    /// Sets the formulation.
    pub fn formulation(mut self, f: Formulation) -> Self {
        self.formulation = f;
        self
    }
    /// Sets the activation.
    pub fn activation(mut self, a: Activation) -> Self {
        self.activation = a;
        self
    }
    /// Sets s_nr and s_dr.
    pub fn smoothing(mut self, smooth_nr: f64, smooth_dr: f64) -> Self {
        self.smooth_nr = smooth_nr;
        self.smooth_dr = smooth_dr;
        self
    }
    /// Keeps or drops class 0.
    pub fn include_background(mut self, yes: bool) -> Self {
        self.include_background = yes;
        self
    }
    /// Sets the aggregation weights.
    pub fn aggregation(mut self, a: Aggregation) -> Self {
        self.aggregation = a;
        self
    }
    /// Sets the active-class rule.
    pub fn active_classes(mut self, a: ActiveClasses) -> Self {
        self.active_classes = a;
        self
    }
    /// Sets one weight per kept class.
    pub fn class_weights(mut self, w: Vec<f64>) -> Self {
        self.class_weights = Some(w);
        self
    }
    /// Uses −ln T.
    pub fn log_loss(mut self, yes: bool) -> Self {
        self.log_loss = yes;
        self
    }
    /// Sets the focal exponent γ ≥ 1.
    pub fn gamma(mut self, gamma: f64) -> Self {
        self.gamma = gamma;
        self
    }
    /// Sets the reduction.
    pub fn reduction(mut self, r: Reduction) -> Self {
        self.reduction = r;
        self
    }
    /// Sets λ_overlap, the weight of the overlap term in a compound loss.
    pub fn overlap_weight(mut self, w: f64) -> Self {
        self.overlap_weight = w;
        self
    }
    /// Adds a cross-entropy term (compound loss).
    pub fn cross_entropy(mut self, ce: CrossEntropy) -> Self {
        self.cross_entropy = Some(ce);
        self
    }
    /// Adds a focal term (compound loss).
    pub fn focal(mut self, f: Focal) -> Self {
        self.focal = Some(f);
        self
    }
    /// Whether a cross-entropy or focal term is added to the overlap loss.
    pub fn is_compound(&self) -> bool {
        self.cross_entropy.is_some() || self.focal.is_some()
    }
    /// Sets the ignored class index (index targets).
    pub fn ignore_index(mut self, index: i64) -> Self {
        self.ignore_index = Some(index);
        self
    }

    /// Checks every option on its own (shape-dependent checks, such as the number of
    /// class weights, happen per call).
    pub fn validate(&self) -> Result<()> {
        let (alpha, beta) = self.overlap.alpha_beta();
        // The kernels compute in f32: an option must be finite in f32 too (1e39 is
        // finite in f64, +∞ in f32).
        let nonneg = |name: &'static str, v: f64| {
            if v.is_finite() && v >= 0.0 && v <= F32_MAX {
                Ok(())
            } else {
                Err(Error::option(
                    name,
                    format!("must be finite (in f32: ≤ {F32_MAX:e}) and ≥ 0, got {v}"),
                ))
            }
        };
        nonneg("alpha", alpha)?;
        nonneg("beta", beta)?;
        nonneg("smooth_nr", self.smooth_nr)?;
        nonneg("smooth_dr", self.smooth_dr)?;
        if !(self.gamma.is_finite() && self.gamma >= 1.0 && self.gamma <= F32_MAX) {
            return Err(Error::option(
                "gamma",
                format!("must be finite (in f32) and ≥ 1, got {}", self.gamma),
            ));
        }
        let a = self.aggregation;
        nonneg("aggregation.dataset", a.dataset)?;
        nonneg("aggregation.image", a.image)?;
        nonneg("aggregation.class", a.class)?;
        match (a.levels(), self.reduction) {
            (0, _) => {
                return Err(Error::option(
                    "aggregation",
                    "every level weight is 0: the loss would be identically 0",
                ))
            }
            (n, Reduction::Sum | Reduction::None) if n > 1 => {
                return Err(Error::option(
                    "reduction",
                    "sum and none take exactly one aggregation level",
                ))
            }
            _ => {}
        }
        if let ActiveClasses::Present { threshold } = self.active_classes {
            if !(threshold.is_finite() && threshold.abs() <= F32_MAX) {
                return Err(Error::option(
                    "active_classes.threshold",
                    "must be finite (in f32)",
                ));
            }
        }
        let weights = |name: &'static str, w: &Option<Vec<f64>>| match w
            .iter()
            .flatten()
            .find(|v| !(v.is_finite() && **v >= 0.0 && **v <= F32_MAX))
        {
            Some(bad) => Err(Error::option(
                name,
                format!("weights must be finite (in f32) and ≥ 0, got {bad}"),
            )),
            None => Ok(()),
        };
        weights("class_weights", &self.class_weights)?;
        nonneg("overlap_weight", self.overlap_weight)?;
        if let Some(ce) = &self.cross_entropy {
            nonneg("cross_entropy.weight", ce.weight)?;
            weights("cross_entropy.class_weights", &ce.class_weights)?;
            weights("cross_entropy.pos_weight", &ce.pos_weight)?;
            if !(0.0..=1.0).contains(&ce.label_smoothing) {
                return Err(Error::option(
                    "cross_entropy.label_smoothing",
                    format!("must lie in [0, 1], got {}", ce.label_smoothing),
                ));
            }
            let binary = ce.kind == CrossEntropyKind::Binary;
            let want = if binary {
                Activation::Sigmoid
            } else {
                Activation::Softmax
            };
            if self.activation != want {
                return Err(Error::option(
                    "cross_entropy.kind",
                    format!("{:?} needs activation {want:?}", ce.kind),
                ));
            }
            if binary && ce.label_smoothing != 0.0 {
                return Err(Error::option(
                    "cross_entropy.label_smoothing",
                    "defined for the softmax kinds only (smooth binary targets yourself)",
                ));
            }
            if !binary && ce.pos_weight.is_some() {
                return Err(Error::option(
                    "cross_entropy.pos_weight",
                    "defined for the binary kind only",
                ));
            }
        }
        if let Some(f) = &self.focal {
            nonneg("focal.weight", f.weight)?;
            nonneg("focal.gamma", f.gamma)?;
            weights("focal.class_weights", &f.class_weights)?;
            match &f.alpha {
                Some(FocalAlpha::Scalar(a)) if !(0.0..=1.0).contains(a) => {
                    return Err(Error::option(
                        "focal.alpha",
                        format!("must lie in [0, 1], got {a}"),
                    ))
                }
                Some(FocalAlpha::PerClass(a)) => weights("focal.alpha", &Some(a.clone()))?,
                _ => {}
            }
            if f.softmax && self.activation != Activation::Softmax {
                return Err(Error::option(
                    "focal.softmax",
                    "a softmax focal term needs activation Softmax",
                ));
            }
            if self.activation == Activation::None {
                return Err(Error::option(
                    "focal",
                    "focal terms take logits: activation None is not allowed",
                ));
            }
        }
        if self.is_compound() && self.reduction == Reduction::None {
            return Err(Error::option(
                "reduction",
                "compound losses take mean or sum (their pixel terms have no per-item values)",
            ));
        }
        Ok(())
    }

    /// First kept class: 1 when the background is dropped and C > 1 (SPEC §2.3).
    pub fn class_start(&self, classes: usize) -> usize {
        usize::from(!self.include_background && classes > 1)
    }

    /// Checks the options that depend on the number of classes.
    /// The activation applied to an input of `classes` channels (a one-channel softmax
    /// under [`SingleChannelSoftmax::Identity`] applies none).
    pub fn activation_for(&self, classes: usize) -> Activation {
        if self.activation == Activation::Softmax && classes == 1 {
            Activation::None
        } else {
            self.activation
        }
    }

    /// Whether inputs must be probabilities in [0, 1] (an explicit `Activation::None`).
    pub fn checks_probabilities(&self) -> bool {
        self.activation == Activation::None
    }

    pub(crate) fn validate_for(&self, classes: usize) -> Result<()> {
        if self.activation == Activation::Softmax
            && classes == 1
            && self.single_channel_softmax == SingleChannelSoftmax::Error
        {
            return Err(Error::option(
                "activation",
                "a softmax over one channel is the constant 1 (zero gradient): use \
                 Sigmoid for a binary map, or give both channels",
            ));
        }
        let kept = classes - self.class_start(classes);
        let count = |name: &'static str, w: Option<&Vec<f64>>, n: usize, what: &str| match w {
            Some(w) if w.len() != n => Err(Error::option(
                name,
                format!("{} weights for {n} {what}", w.len()),
            )),
            _ => Ok(()),
        };
        count(
            "class_weights",
            self.class_weights.as_ref(),
            kept,
            "kept classes",
        )?;
        if let Some(ce) = &self.cross_entropy {
            count(
                "cross_entropy.class_weights",
                ce.class_weights.as_ref(),
                classes,
                "classes",
            )?;
            count(
                "cross_entropy.pos_weight",
                ce.pos_weight.as_ref(),
                classes,
                "classes",
            )?;
        }
        if let Some(f) = &self.focal {
            count(
                "focal.class_weights",
                f.class_weights.as_ref(),
                kept,
                "kept classes",
            )?;
            if let Some(FocalAlpha::PerClass(a)) = &f.alpha {
                count("focal.alpha", Some(a), kept, "kept classes")?;
            }
        }
        Ok(())
    }

    /// Number of per-item values with `Reduction::None`: C' (dataset) or B·C'.
    pub fn values_len(&self, batch: usize, classes: usize) -> usize {
        let kept = classes - self.class_start(classes);
        if self.aggregation.dataset > 0.0 {
            kept
        } else {
            batch * kept
        }
    }
}
