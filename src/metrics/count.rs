//! Counting on the host (the CPU backend, and the twin of `shaders/counts.wgsl`): per
//! image, per class, (tp, predicted, labelled) over the valid pixels.

use super::state::ImageCounts;
use crate::error::{Error, Result};

/// Where [`super::Metrics::update`] counts the host slices it is given, on a GPU
/// context.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Counting {
    /// On the host when the context's adapter is a CPU (lavapipe, SwiftShader, WARP,
    /// llvmpipe through GL: `wgpu::DeviceType::Cpu`), where the slices are already in
    /// the memory the "device" would count from and native code counts them several
    /// times faster than the adapter's compiled shader (docs/metrics.md gives the
    /// figures); on the device otherwise.
    #[default]
    Auto,
    /// Always on the device (uploaded, counted by `shaders/counts.wgsl`).
    Device,
    /// Always on the host (the CPU context's counting).
    Host,
}

impl Counting {
    /// Whether host slices are counted on the host on an adapter described by `info`.
    pub fn on_host(self, info: &wgpu::AdapterInfo) -> bool {
        match self {
            Counting::Auto => info.device_type == wgpu::DeviceType::Cpu,
            Counting::Device => false,
            Counting::Host => true,
        }
    }
}

/// A prediction: a label map `[B, S...]`, scores `[B, C, S...]` (argmax over the
/// classes, the first maximum), or multi-label scores cut per class at a threshold.
#[derive(Clone, Copy, Debug)]
pub enum Prediction<'a> {
    /// Class labels, `[B, S...]`.
    Labels(&'a [u32]),
    /// Class labels as i64, `[B, S...]`.
    LabelsI64(&'a [i64]),
    /// Logits or probabilities `[B, C, S...]`: each pixel predicts its argmax.
    Scores(&'a [f32]),
    /// Multi-label scores `[B, C, S...]`: class c is predicted at a pixel where its
    /// score is ≥ `threshold` (MONAI's `AsDiscrete(threshold)`, smp's `get_stats`;
    /// torchmetrics cuts with `>`), after a sigmoid when `sigmoid` (applied as the cut
    /// `x ≥ ln(t / (1 − t))` on the logit, which is exact where `t` is, e.g. 0.5 → 0).
    /// Any number of classes, none included, may be predicted at one pixel.
    Threshold {
        /// `[B, C, S...]` scores.
        scores: &'a [f32],
        /// The cut, in probability (with `sigmoid`: in (0, 1)).
        threshold: f32,
        /// The scores are logits: cut their sigmoid.
        sigmoid: bool,
    },
    /// A soft prediction: scores `[B, C, S...]` made probabilities by `activation`
    /// (softmax over the classes, a sigmoid each, or none for probabilities), measured
    /// with the L1 soft forms (SPEC §7.2) instead of counts. The only prediction that
    /// takes [`Labels::Soft`] targets.
    Soft {
        /// `[B, C, S...]` scores.
        scores: &'a [f32],
        /// How the scores become probabilities.
        activation: crate::options::Activation,
    },
}

impl Prediction<'_> {
    pub(crate) fn len(&self) -> usize {
        match self {
            Prediction::Labels(p) => p.len(),
            Prediction::LabelsI64(p) => p.len(),
            Prediction::Scores(p)
            | Prediction::Threshold { scores: p, .. }
            | Prediction::Soft { scores: p, .. } => p.len(),
        }
    }

    /// Whether it holds `[B, C, S...]` values (not a label map).
    pub(crate) fn per_class(&self) -> bool {
        !matches!(self, Prediction::Labels(_) | Prediction::LabelsI64(_))
    }

    /// The raw-score cut of a threshold prediction: `threshold`, or its logit.
    pub(crate) fn cut(threshold: f32, sigmoid: bool) -> Result<f32> {
        let t = f64::from(threshold);
        if !t.is_finite() || (sigmoid && !(t > 0.0 && t < 1.0)) {
            return Err(Error::option(
                "threshold",
                format!(
                    "must be finite{}, got {threshold}",
                    if sigmoid {
                        " and in (0, 1) with a sigmoid"
                    } else {
                        ""
                    }
                ),
            ));
        }
        Ok(if sigmoid {
            (t / (1.0 - t)).ln() as f32
        } else {
            threshold
        })
    }
}

/// Targets: label maps `[B, S...]`, or one-hot / multi-hot maps `[B, C, S...]`.
#[derive(Clone, Copy, Debug)]
pub enum Labels<'a> {
    /// u32 labels.
    U32(&'a [u32]),
    /// i64 labels (the ignore index may be negative).
    I64(&'a [i64]),
    /// One-hot or multi-hot `[B, C, S...]`: class c is labelled where the value is 1;
    /// every value must be 0 or 1 (soft labels are not counts). A pixel may hold any
    /// number of classes; pixels are left out by the keep-mask (`ignore_index` applies
    /// to label maps only).
    MultiHot(&'a [f32]),
    /// Soft labels `[B, C, S...]` in [0, 1] (label smoothing, averaged annotators): with
    /// a [`Prediction::Soft`] only.
    Soft(&'a [f32]),
}

impl Labels<'_> {
    pub(crate) fn len(&self) -> usize {
        match self {
            Labels::U32(t) => t.len(),
            Labels::I64(t) => t.len(),
            Labels::MultiHot(t) | Labels::Soft(t) => t.len(),
        }
    }

    /// Whether it holds `[B, C, S...]` values (not a label map).
    pub(crate) fn per_class(&self) -> bool {
        matches!(self, Labels::MultiHot(_) | Labels::Soft(_))
    }
}

/// What a pixel holds: one class, or a value per class (`[B, C, S...]` at `(b, i)`).
enum At {
    One(usize),
    PerClass,
}

/// The predicted class of pixel `i` of image `b` (n pixels, c classes), or per class.
fn predicted(pred: &Prediction<'_>, b: usize, i: usize, n: usize, c: usize) -> Result<At> {
    let label = |v: i64, j: usize| {
        if v >= 0 && (v as u64) < c as u64 {
            Ok(At::One(v as usize))
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
            Ok(At::One(best))
        }
        Prediction::Threshold { .. } | Prediction::Soft { .. } => Ok(At::PerClass),
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
    let cut = match pred {
        Prediction::Threshold {
            threshold, sigmoid, ..
        } => Prediction::cut(*threshold, *sigmoid)?,
        _ => 0.0,
    };
    // Label maps against label maps, no mask, few classes: the common case, by a
    // confusion matrix.
    let plain = mask.is_none() && c <= MAX_CONFUSION;
    let maps = match (pred, target) {
        _ if !plain => None,
        (Prediction::Labels(p), Labels::U32(t)) => Some(maps(
            |j| i64::from(p[j]),
            |j| i64::from(t[j]),
            ignore,
            (batch, c, n),
        )),
        (Prediction::Labels(p), Labels::I64(t)) => {
            Some(maps(|j| i64::from(p[j]), |j| t[j], ignore, (batch, c, n)))
        }
        (Prediction::LabelsI64(p), Labels::U32(t)) => {
            Some(maps(|j| p[j], |j| i64::from(t[j]), ignore, (batch, c, n)))
        }
        (Prediction::LabelsI64(p), Labels::I64(t)) => {
            Some(maps(|j| p[j], |j| t[j], ignore, (batch, c, n)))
        }
        _ => None,
    };
    if let Some(images) = maps {
        return images;
    }
    let mut out = Vec::with_capacity(batch);
    for b in 0..batch {
        let mut cnt = vec![[0u64; 3]; c];
        let mut kept = 0u64;
        for i in 0..n {
            let j = b * n + i;
            if mask.is_some_and(|m| !m[j]) {
                continue;
            }
            let y = match target {
                Labels::MultiHot(_) | Labels::Soft(_) => At::PerClass,
                Labels::U32(_) | Labels::I64(_) => {
                    let y = match target {
                        Labels::U32(t) => i64::from(t[j]),
                        Labels::I64(t) => t[j],
                        Labels::MultiHot(_) | Labels::Soft(_) => 0,
                    };
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
                    At::One(y as usize)
                }
            };
            let p = predicted(pred, b, i, n, c)?;
            kept += 1;
            if let (At::One(y), At::One(p)) = (&y, &p) {
                cnt[*p][1] += 1;
                cnt[*y][2] += 1;
                cnt[*p][0] += u64::from(p == y);
                continue;
            }
            for (k, ck) in cnt.iter_mut().enumerate() {
                let at = (b * c + k) * n + i;
                let yk = match (&y, target) {
                    (At::One(y), _) => *y == k,
                    (At::PerClass, Labels::MultiHot(t) | Labels::Soft(t)) => {
                        let v = t[at];
                        if v != 0.0 && v != 1.0 {
                            return Err(Error::NotBinary { position: Some(at) });
                        }
                        v == 1.0
                    }
                    (At::PerClass, _) => false,
                };
                let pk = match (&p, pred) {
                    (At::One(p), _) => *p == k,
                    (At::PerClass, Prediction::Threshold { scores, .. }) => {
                        let x = scores[at];
                        if !x.is_finite() {
                            return Err(Error::NonFiniteInput { position: Some(at) });
                        }
                        x >= cut
                    }
                    (At::PerClass, _) => false,
                };
                ck[1] += u64::from(pk);
                ck[2] += u64::from(yk);
                ck[0] += u64::from(pk && yk);
            }
        }
        let valid = kept as f64;
        let counts = cnt.iter().map(|x| x.map(|v| v as f64)).collect();
        out.push(ImageCounts { counts, valid });
    }
    Ok(out)
}

/// Most classes counted by a confusion matrix (C² words, within a core's L2 cache).
const MAX_CONFUSION: usize = 256;

/// Counts of label maps against label maps (`pred(j)`, `label(j)` at flat index j),
/// through a C × C confusion matrix per image (one increment per pixel); the same counts
/// and the same first error (the label checked before the prediction) as the general
/// loop of [`count`].
fn maps(
    pred: impl Fn(usize) -> i64,
    label: impl Fn(usize) -> i64,
    ignore: Option<i64>,
    (batch, c, n): (usize, usize, usize),
) -> Result<Vec<ImageCounts>> {
    let out_of_range = |v: i64, j: usize| Error::ClassIndexOutOfRange {
        value: Some(v),
        classes: c,
        position: Some(j),
    };
    let cc = c as u64;
    let mut out = Vec::with_capacity(batch);
    let mut conf = vec![0u64; c * c];
    for b in 0..batch {
        conf.iter_mut().for_each(|v| *v = 0);
        let mut kept = 0u64;
        for j in b * n..(b + 1) * n {
            let y = label(j);
            if Some(y) == ignore {
                continue;
            }
            if y as u64 >= cc {
                return Err(out_of_range(y, j));
            }
            let p = pred(j);
            if p as u64 >= cc {
                return Err(out_of_range(p, j));
            }
            conf[y as usize * c + p as usize] += 1;
            kept += 1;
        }
        let counts = (0..c)
            .map(|k| {
                let row: u64 = conf[k * c..(k + 1) * c].iter().sum();
                let col: u64 = (0..c).map(|y| conf[y * c + k]).sum();
                [conf[k * c + k] as f64, col as f64, row as f64]
            })
            .collect();
        out.push(ImageCounts {
            counts,
            valid: kept as f64,
        });
    }
    Ok(out)
}
