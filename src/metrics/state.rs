//! The accumulated state of the metrics: per image, per class, the counts of true
//! positives, predicted and labelled pixels. Plain data: workers combine their states
//! by concatenating the images (an all-gather) in a fixed order; the dataset level is
//! their sums.

use crate::error::{Error, Result};

/// One image's counts: per class `[tp, predicted, labelled]` over its valid pixels
/// (not ignored, not masked), and its number of valid pixels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageCounts {
    /// `[C]` × (tp, predicted, labelled).
    pub counts: Vec<[u64; 3]>,
    /// Valid pixels (an image without any is left out of the image and class levels).
    pub valid: u64,
}

impl ImageCounts {
    /// (tp, fp, fn) of class c.
    pub fn tp_fp_fn(&self, c: usize) -> (f64, f64, f64) {
        let [tp, p, l] = self.counts[c];
        (tp as f64, (p - tp) as f64, (l - tp) as f64)
    }
}

/// Everything the metrics need, as plain data.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
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
