//! Checks of the options (alone, and against a shape's class count) and what follows
//! from them per call.

use super::{
    Activation, ActiveClasses, CrossEntropyKind, FocalAlpha, Formulation, LossOptions, Reduction,
    SingleChannelSoftmax,
};
use crate::error::{Error, Result};

/// The largest finite f32, as f64: options beyond it overflow the kernels.
const F32_MAX: f64 = f32::MAX as f64;

impl LossOptions {
    /// Checks every option on its own (shape-dependent checks, such as the number of
    /// class weights, happen per call).
    pub fn validate(&self) -> Result<()> {
        let (alpha, beta) = self.overlap.alpha_beta();
        // The kernels compute in f32: an option must be finite in f32 too (1e39 is
        // finite in f64, +∞ in f32).
        let nonneg = |name: &'static str, v: f64| {
            if (0.0..=F32_MAX).contains(&v) {
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
        if !(1.0..=F32_MAX).contains(&self.gamma) {
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
            .find(|v| !(0.0..=F32_MAX).contains(*v))
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
        if self.overlap.generalized().is_some() {
            self.validate_generalized()?;
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
    /// What a Generalized Dice takes: one aggregation level (dataset: MONAI
    /// `batch=True`; image: `batch=False`), the soft or classic formulation, and none of
    /// the per-(image, class) item options (active classes, class weights, log, γ).
    fn validate_generalized(&self) -> Result<()> {
        let a = self.aggregation;
        let rule = |name: &'static str, reason: &str| Err(Error::option(name, reason));
        if a.class > 0.0 || (a.dataset > 0.0) == (a.image > 0.0) {
            return rule(
                "aggregation",
                "a Generalized Dice pools classes: dataset level (batch = true) or image \
                 level (batch = false), one of them",
            );
        }
        if self.formulation == Formulation::Squared {
            return rule(
                "formulation",
                "a Generalized Dice takes the soft or classic form",
            );
        }
        if self.active_classes != ActiveClasses::All {
            return rule("active_classes", "a Generalized Dice counts every class");
        }
        if self.class_weights.is_some() {
            return rule(
                "class_weights",
                "a Generalized Dice weighs classes by their target volume (w_type)",
            );
        }
        if self.log_loss || self.gamma != 1.0 {
            return rule(
                "log_loss",
                "a Generalized Dice takes neither log_loss nor γ ≠ 1",
            );
        }
        Ok(())
    }

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
        if self.overlap.generalized().is_some() {
            // One item per image, or one for the batch at dataset level.
            return if self.aggregation.dataset > 0.0 {
                1
            } else {
                batch
            };
        }
        if self.aggregation.dataset > 0.0 {
            kept
        } else {
            batch * kept
        }
    }
}
