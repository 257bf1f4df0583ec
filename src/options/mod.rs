//! Every option of a segloss loss ([`LossOptions`]) and its parts.

mod compound;
mod kinds;
mod validate;

pub use compound::{CrossEntropy, CrossEntropyKind, Focal, FocalAlpha};
pub use kinds::{
    Activation, ActiveClasses, Aggregation, Formulation, GdlWeight, Overlap, Reduction,
    SingleChannelSoftmax, SoftLabelGuard,
};

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
    /// Pixels to ignore, by MONAI's rule (`docs/SPEC.md` §1 and §6). Index targets: pixels holding this
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
    /// The classic formulation on soft targets: reported with a warning (default), or
    /// an error ([`SoftLabelGuard`]).
    pub soft_label_guard: SoftLabelGuard,
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
            soft_label_guard: SoftLabelGuard::Warn,
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
    /// Sets what the classic formulation does on soft targets ([`SoftLabelGuard`]).
    pub fn soft_label_guard(mut self, g: SoftLabelGuard) -> Self {
        self.soft_label_guard = g;
        self
    }
}
