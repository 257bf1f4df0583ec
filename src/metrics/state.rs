//! The accumulated state of the metrics: per image, per class, the counts of true
//! positives, predicted and labelled pixels. Plain data: workers combine their states
//! by concatenating the images (an all-gather) in a fixed order; the dataset level is
//! their sums.

use crate::error::{Error, Result};

/// One image's counts: per class `[tp, predicted, labelled]` over its valid pixels
/// (not ignored, not masked), and its number of valid pixels. Hard predictions give
/// whole numbers (exact in f64 up to 2^53); soft ones (`Prediction::Soft`) the L1 soft
/// forms' sums.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageCounts {
    /// `[C]` × (tp, predicted, labelled).
    pub counts: Vec<[f64; 3]>,
    /// Its kept pixels: not ignored, not masked (an image without any is left out of
    /// the image and class levels; smp's tn = valid − tp − fp − fn).
    pub valid: f64,
}

impl ImageCounts {
    /// (tp, fp, fn) of class c.
    pub fn tp_fp_fn(&self, c: usize) -> (f64, f64, f64) {
        let [tp, p, l] = self.counts[c];
        (tp, p - tp, l - tp)
    }
}

/// Everything the metrics need, as plain data.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricsState {
    /// Number of classes C.
    pub classes: usize,
    /// Per image, in the order they were added.
    pub images: Vec<ImageCounts>,
}

impl MetricsState {
    /// An empty state for `classes` classes.
    pub fn new(classes: usize) -> Self {
        MetricsState {
            classes,
            images: Vec::new(),
        }
    }

    /// Appends another worker's images (an all-gather, in worker order).
    pub fn merge(&mut self, other: &MetricsState) -> Result<()> {
        if other.classes != self.classes {
            return Err(Error::InvalidStats(format!(
                "metrics of {} classes merged into {}",
                other.classes, self.classes
            )));
        }
        self.images.extend(other.images.iter().cloned());
        Ok(())
    }

    /// The dataset-level sums per class: (tp, fp, fn).
    pub fn dataset_counts(&self) -> Vec<(f64, f64, f64)> {
        (0..self.classes)
            .map(|c| {
                self.images.iter().fold((0.0, 0.0, 0.0), |a, im| {
                    let (tp, fp, fn_) = im.tp_fp_fn(c);
                    (a.0 + tp, a.1 + fp, a.2 + fn_)
                })
            })
            .collect()
    }
}
