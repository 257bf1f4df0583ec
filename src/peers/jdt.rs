//! JDTLosses-style constructor.

use super::*;

/// Active-class mode of JDTLoss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Every class counts.
    All,
    /// Classes whose target max exceeds the threshold.
    Present,
}

/// JDTLosses' `JDTLoss` arguments with its defaults (mIoU^D = 1, α = β = 1,
/// smooth = 1, threshold 0.01, PRESENT for hard labels, ALL for soft ones, softmax).
/// ```
/// use segloss::jdt::JDTLoss;
/// let opts = JDTLoss { m_iou_i: 1.0, m_iou_d: 0.0, ..Default::default() }.options(true);
/// assert_eq!(opts.aggregation.image, 1.0);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct JDTLoss {
    /// Dataset-level weight (mIoU^D).
    pub m_iou_d: f64,
    /// Image-level weight (mIoU^I).
    pub m_iou_i: f64,
    /// Class-level weight (mIoU^C).
    pub m_iou_c: f64,
    /// Weight of false positives.
    pub alpha: f64,
    /// Weight of false negatives.
    pub beta: f64,
    /// Focal exponent.
    pub gamma: f64,
    /// Smoothing (both numerator and denominator).
    pub smooth: f64,
    /// Presence threshold.
    pub threshold: f64,
    /// 1 (L1, soft) or 2 (squared).
    pub norm: u32,
    /// −ln T.
    pub log_loss: bool,
    /// Ignored class index.
    pub ignore_index: Option<i64>,
    /// Per-class weights.
    pub class_weights: Option<Vec<f64>>,
    /// Active classes with hard (index) labels.
    pub active_classes_mode_hard: Mode,
    /// Active classes with soft labels.
    pub active_classes_mode_soft: Mode,
}

impl Default for JDTLoss {
    fn default() -> Self {
        JDTLoss {
            m_iou_d: 1.0,
            m_iou_i: 0.0,
            m_iou_c: 0.0,
            alpha: 1.0,
            beta: 1.0,
            gamma: 1.0,
            smooth: 1.0,
            threshold: 0.01,
            norm: 1,
            log_loss: false,
            ignore_index: None,
            class_weights: None,
            active_classes_mode_hard: Mode::Present,
            active_classes_mode_soft: Mode::All,
        }
    }
}

impl JDTLoss {
    /// The equivalent segloss options; `hard_labels` picks the active-class mode
    /// (index targets use `active_classes_mode_hard`).
    pub fn options(&self, hard_labels: bool) -> LossOptions {
        let mode = if hard_labels {
            self.active_classes_mode_hard
        } else {
            self.active_classes_mode_soft
        };
        LossOptions {
            overlap: Overlap::Tversky {
                alpha: self.alpha,
                beta: self.beta,
            },
            formulation: if self.norm == 2 {
                Formulation::Squared
            } else {
                Formulation::Soft
            },
            activation: Activation::Softmax,
            smooth_nr: self.smooth,
            smooth_dr: self.smooth,
            include_background: true,
            aggregation: Aggregation {
                dataset: self.m_iou_d,
                image: self.m_iou_i,
                class: self.m_iou_c,
            },
            active_classes: match mode {
                Mode::All => ActiveClasses::All,
                Mode::Present => ActiveClasses::Present {
                    threshold: self.threshold,
                },
            },
            class_weights: self.class_weights.clone(),
            log_loss: self.log_loss,
            gamma: self.gamma,
            reduction: Reduction::Mean,
            ignore_index: self.ignore_index,
            ..LossOptions::dice()
        }
    }
}
