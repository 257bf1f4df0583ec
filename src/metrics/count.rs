//! Counting on the host (the CPU backend, and the twin of `shaders/counts.wgsl`): per
//! image, per class, (tp, predicted, labelled) over the valid pixels.

use super::state::ImageCounts;
use crate::error::{Error, Result};

/// A prediction: a label map `[B, S...]`, or scores `[B, C, S...]` (argmax over the
/// classes, the first maximum).
#[derive(Clone, Copy, Debug)]
pub enum Prediction<'a> {
    /// Class labels, `[B, S...]`.
    Labels(&'a [u32]),
    /// Class labels as i64, `[B, S...]`.
    LabelsI64(&'a [i64]),
    /// Logits or probabilities `[B, C, S...]`.
    Scores(&'a [f32]),
}

/// Target label maps `[B, S...]`.
#[derive(Clone, Copy, Debug)]
pub enum Labels<'a> {
    /// u32 labels.
    U32(&'a [u32]),
    /// i64 labels (the ignore index may be negative).
    I64(&'a [i64]),
}

impl Labels<'_> {
    pub(crate) fn len(&self) -> usize {
        match self {
            Labels::U32(t) => t.len(),
            Labels::I64(t) => t.len(),
        }
    }
    pub(crate) fn get(&self, j: usize) -> i64 {
        match self {
            Labels::U32(t) => i64::from(t[j]),
            Labels::I64(t) => t[j],
        }
    }
}

/// The predicted class of pixel `i` of image `b` (n pixels, c classes).
fn predicted(pred: &Prediction<'_>, b: usize, i: usize, n: usize, c: usize) -> Result<usize> {
    let label = |v: i64, j: usize| {
        if v >= 0 && (v as u64) < c as u64 {
            Ok(v as usize)
        } else {
            Err(Error::ClassIndexOutOfRange {
                value: Some(v),
                classes: c,
                position: Some(j),
            })
        }
    };
    match pred {
        Prediction::Labels(p) => label(i64::from(p[b * n + i]), b * n + i),
        Prediction::LabelsI64(p) => label(p[b * n + i], b * n + i),
        Prediction::Scores(x) => {
            let (mut best, mut m) = (0, x[b * c * n + i]);
            for k in 0..c {
                let v = x[(b * c + k) * n + i];
                if !v.is_finite() {
                    return Err(Error::NonFiniteInput {
                        position: Some((b * c + k) * n + i),
                    });
                }
                if v > m {
                    (best, m) = (k, v);
                }
            }
            Ok(best)
        }
    }
}

/// Counts of `batch` images of `n` pixels and `c` classes.
pub(crate) fn count(
    pred: &Prediction<'_>,
    target: &Labels<'_>,
    mask: Option<&[bool]>,
    ignore: Option<i64>,
    (batch, c, n): (usize, usize, usize),
) -> Result<Vec<ImageCounts>> {
    let mut out = Vec::with_capacity(batch);
    for b in 0..batch {
        let mut im = ImageCounts {
            counts: vec![[0; 3]; c],
            valid: 0,
        };
        for i in 0..n {
            let j = b * n + i;
            if mask.is_some_and(|m| !m[j]) {
                continue;
            }
            let y = target.get(j);
            if Some(y) == ignore {
                continue;
            }
            if y < 0 || y as u64 >= c as u64 {
                return Err(Error::ClassIndexOutOfRange {
                    value: Some(y),
                    classes: c,
                    position: Some(j),
                });
            }
            let p = predicted(pred, b, i, n, c)?;
            let y = y as usize;
            im.valid += 1;
            im.counts[p][1] += 1;
            im.counts[y][2] += 1;
            if p == y {
                im.counts[p][0] += 1;
            }
        }
        out.push(im);
    }
    Ok(out)
}
