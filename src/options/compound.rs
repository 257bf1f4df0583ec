//! The pixelwise terms a compound loss adds: cross-entropy (softmax, KL, binary) and
//! focal.

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
