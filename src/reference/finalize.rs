//! Twin of `shaders/finalize.wgsl`: item losses, aggregation, scalar loss and the
//! per-(b, c) gradient coefficients d loss/d(tp, fp, fn).

use crate::options::{ActiveClasses, GdlWeight, LossOptions, Reduction};
use crate::Shape;

/// Below this T, −ln T is clamped (the same constant as the shader).
pub const LOG_T_MIN: f64 = 1e-12;

/// What `finalize` produces.
#[derive(Clone, Debug, PartialEq)]
pub struct Finalized {
    /// The scalar loss.
    pub loss: f64,
    /// Per-item values for `Reduction::None`.
    pub values: Option<Vec<f64>>,
    /// d loss/d(tp, fp, fn) per (b, c), `[B, C]`, zero for a dropped background.
    pub coef: Vec<[f64; 3]>,
    /// Compound losses: d loss/d(pixel-term sums) `[s_ce, s_focal]` (λ over the
    /// normaliser for the mean).
    pub pixel_scale: [f64; 2],
}

/// ℓ = w·h(T)^γ and its gradient w.r.t. (tp, fp, fn) (SPEC §2.5-2.6, §3).
fn item_loss(o: &LossOptions, s: [f64; 3], w: f64) -> (f64, [f64; 3]) {
    let (alpha, beta) = o.overlap.alpha_beta();
    let den = s[0] + alpha * s[1] + beta * s[2] + o.smooth_dr;
    if den <= 0.0 {
        return (0.0, [0.0; 3]);
    }
    let t = (s[0] + o.smooth_nr) / den;
    let dt = [(1.0 - t) / den, -alpha * t / den, -beta * t / den];
    let (h, dh) = if o.log_loss {
        let d = if t > LOG_T_MIN { -1.0 / t } else { 0.0 };
        (-(t.max(LOG_T_MIN)).ln(), d)
    } else {
        (1.0 - t, -1.0)
    };
    let (l, dl) = if o.gamma != 1.0 {
        let hp = h.max(0.0);
        let d = if hp > 0.0 {
            o.gamma * hp.powf(o.gamma - 1.0) * dh
        } else {
            0.0
        };
        (hp.powf(o.gamma), d)
    } else {
        (h, dh)
    };
    (w * l, dt.map(|d| w * dl * d))
}

/// A Generalized Dice item over its classes' `(tp, fp, fn)` (SPEC §6.1): the weights
/// w_c = w(tp_c + fn_c) (empty classes: the largest finite weight, or 0), the sums
/// N = Σ w tp and D = Σ w (tp + α fp + β fn), and the loss 1 − (N + s_nr)/(D + s_dr).
struct Gdl {
    weights: Vec<f64>,
    num: f64,
    den: f64,
    loss: f64,
}

fn gdl(o: &LossOptions, weight: GdlWeight, rows: &[[f64; 3]]) -> Gdl {
    let (alpha, beta) = o.overlap.alpha_beta();
    let raw: Vec<f64> = rows.iter().map(|s| weight.of(s[0] + s[2])).collect();
    let max = raw
        .iter()
        .copied()
        .filter(|w| w.is_finite())
        .fold(0.0, f64::max);
    let weights: Vec<f64> = raw
        .iter()
        .map(|&w| if w.is_finite() { w } else { max })
        .collect();
    let num: f64 = rows.iter().zip(&weights).map(|(s, w)| w * s[0]).sum();
    let den: f64 = rows
        .iter()
        .zip(&weights)
        .map(|(s, w)| w * (s[0] + alpha * s[1] + beta * s[2]))
        .sum();
    let d = den + o.smooth_dr;
    let loss = if d > 0.0 {
        1.0 - (num + o.smooth_nr) / d
    } else {
        0.0
    };
    Gdl {
        weights,
        num,
        den,
        loss,
    }
}

impl Gdl {
    /// dℓ/d(tp, fp, fn) of class k.
    fn grad(&self, o: &LossOptions, k: usize) -> [f64; 3] {
        let (alpha, beta) = o.overlap.alpha_beta();
        let (n, d) = (self.num + o.smooth_nr, self.den + o.smooth_dr);
        if d <= 0.0 {
            return [0.0; 3];
        }
        let w = self.weights[k];
        [
            -w / d + n * w / (d * d),
            n * alpha * w / (d * d),
            n * beta * w / (d * d),
        ]
    }
}

/// Words of the shared block before the class rows (see [`crate::Stats`]).
pub const SHARED_HEADER: usize = 8;
/// Words per class row of the shared block.
pub const SHARED_ROW: usize = 8;

/// Length of the shared block for C classes.
pub fn shared_len(classes: usize) -> usize {
    SHARED_HEADER + SHARED_ROW * classes
}

/// Per-item activity under the active-class rule.
fn is_active(o: &LossOptions, present: f64) -> bool {
    match o.active_classes {
        ActiveClasses::All => true,
        ActiveClasses::Present { .. } => present > 0.0,
    }
}

fn class_weight(o: &LossOptions, k: usize) -> f64 {
    o.class_weights.as_ref().map_or(1.0, |w| w[k])
}

/// The local phase's shared block (layout in [`crate::Stats`]): the plain sums that
/// workers add up before [`finish`]. Twin of `finalize.wgsl`'s `summarize`.
pub fn summarize(o: &LossOptions, shape: &Shape, stats: &[[f64; 4]]) -> Vec<f64> {
    let (nb, c_all) = (shape.batch(), shape.classes());
    let c0 = o.class_start(c_all);
    let mut sh = vec![0.0; shared_len(c_all)];
    sh[0] = nb as f64;
    for b in 0..nb {
        for c in 0..c_all {
            for j in 0..4 {
                sh[SHARED_HEADER + SHARED_ROW * c + j] += stats[b * c_all + c][j];
            }
        }
    }
    for b in 0..nb {
        if let Some(weight) = o.overlap.generalized() {
            // One item per image: every image counts.
            let rows: Vec<[f64; 3]> = (c0..c_all)
                .map(|c| {
                    let s = stats[b * c_all + c];
                    [s[0], s[1], s[2]]
                })
                .collect();
            sh[1] += 1.0;
            sh[2] += gdl(o, weight, &rows).loss;
            continue;
        }
        let n_act = (c0..c_all)
            .filter(|&c| is_active(o, stats[b * c_all + c][3]))
            .count();
        let mut term = 0.0;
        for c in c0..c_all {
            let s = stats[b * c_all + c];
            if is_active(o, s[3]) {
                let (l, _) = item_loss(o, [s[0], s[1], s[2]], class_weight(o, c - c0));
                term += l;
                sh[SHARED_HEADER + SHARED_ROW * c + 4] += l;
                sh[SHARED_HEADER + SHARED_ROW * c + 5] += 1.0;
            }
        }
        if n_act > 0 {
            sh[1] += 1.0;
            sh[2] += term / n_act as f64;
        }
    }
    // Compound: Σ over images and classes of [ce, focal, kept, ce normaliser].
    for r in stats.iter().skip(nb * c_all) {
        for j in 0..4 {
            sh[4 + j] += r[j];
        }
    }
    sh
}

/// The compound terms' contribution to the loss and their scales `[s_ce, s_focal]`
/// from the shared block (words 4..8): mean divides by the normalisers.
fn pixel_terms(o: &LossOptions, classes: usize, shared: &[f64]) -> (f64, [f64; 2]) {
    let kept = classes - o.class_start(classes);
    let mean = o.reduction == Reduction::Mean;
    let term = |lambda: f64, sum: f64, norm: f64| {
        if !mean {
            (lambda * sum, lambda)
        } else if norm > 0.0 {
            (lambda * sum / norm, lambda / norm)
        } else {
            (0.0, 0.0)
        }
    };
    let (mut total, mut scale) = (0.0, [0.0; 2]);
    if let Some(ce) = &o.cross_entropy {
        let (t, s) = term(ce.weight, shared[4], shared[7]);
        total += t;
        scale[0] = s;
    }
    if let Some(f) = &o.focal {
        let (t, s) = term(f.weight, shared[5], shared[6] * kept as f64);
        total += t;
        scale[1] = s;
    }
    (total, scale)
}

/// The loss and this worker's gradient coefficients from its own per-(b, c) `stats`
/// `[B, C]` and the `shared` block summed over all workers (SPEC §2.5-2.8, §3). Twin of
/// `finalize.wgsl`'s `finish`.
pub fn finish(o: &LossOptions, shape: &Shape, stats: &[[f64; 4]], shared: &[f64]) -> Finalized {
    let (nb, c_all) = (shape.batch(), shape.classes());
    let c0 = o.class_start(c_all);
    let k_n = c_all - c0;
    let row = |c: usize| &shared[SHARED_HEADER + SHARED_ROW * c..][..SHARED_ROW];
    let agg = o.aggregation;
    let none = o.reduction == Reduction::None;
    let mut coef = vec![[0.0; 3]; nb * c_all];
    let mut values = none.then(|| vec![0.0; o.values_len(nb, c_all)]);
    let mut total = 0.0;
    let add = |c: &mut [f64; 3], scale: f64, g: [f64; 3]| {
        for j in 0..3 {
            c[j] += scale * g[j];
        }
    };

    if let Some(weight) = o.overlap.generalized() {
        let rows = |s: &dyn Fn(usize) -> [f64; 4]| -> Vec<[f64; 3]> {
            (c0..c_all).map(s).map(|r| [r[0], r[1], r[2]]).collect()
        };
        if agg.dataset > 0.0 {
            // One item: the batch, from the global per-class sums.
            let g = gdl(
                o,
                weight,
                &rows(&|c| row(c)[..4].try_into().unwrap_or([0.0; 4])),
            );
            let scale = match &mut values {
                Some(v) => {
                    v[0] = g.loss;
                    1.0
                }
                None => agg.dataset,
            };
            total += scale * g.loss;
            for b in 0..nb {
                for k in 0..k_n {
                    add(&mut coef[b * c_all + c0 + k], scale, g.grad(o, k));
                }
            }
        } else {
            // One item per image: the global mean divides by the global image count.
            let (n_images, image_terms) = (shared[1], shared[2]);
            match o.reduction {
                Reduction::Mean if n_images > 0.0 => total += agg.image * image_terms / n_images,
                Reduction::Sum => total += agg.image * image_terms,
                _ => {}
            }
            for b in 0..nb {
                let g = gdl(o, weight, &rows(&|c| stats[b * c_all + c]));
                let scale = match (&mut values, o.reduction) {
                    (Some(v), _) => {
                        v[b] = g.loss;
                        total += g.loss;
                        1.0
                    }
                    (_, Reduction::Sum) => agg.image,
                    _ => agg.image / n_images,
                };
                for k in 0..k_n {
                    add(&mut coef[b * c_all + c0 + k], scale, g.grad(o, k));
                }
            }
        }
        return done(o, c_all, shared, total, values, coef);
    }

    // Dataset level: the global per-class sums.
    if agg.dataset > 0.0 {
        let n_active = (c0..c_all).filter(|&c| is_active(o, row(c)[3])).count() as f64;
        for k in 0..k_n {
            let s = row(c0 + k);
            let (l, g) = item_loss(o, [s[0], s[1], s[2]], class_weight(o, k));
            let scale = match (&mut values, o.reduction) {
                (Some(v), _) => {
                    v[k] = l;
                    1.0
                }
                _ if !is_active(o, s[3]) => 0.0,
                (_, Reduction::Sum) => agg.dataset,
                _ => agg.dataset / n_active,
            };
            total += scale * l;
            for b in 0..nb {
                add(&mut coef[b * c_all + c0 + k], scale, g);
            }
        }
    }

    // Image and class levels: the loss from the global sums of item terms, the
    // gradient of this worker's items scaled by the global counts.
    if agg.image > 0.0 || agg.class > 0.0 {
        let (n_images, image_term) = (shared[1], shared[2]);
        let n_classes = (c0..c_all).filter(|&c| row(c)[5] > 0.0).count() as f64;
        match o.reduction {
            Reduction::Mean => {
                if agg.image > 0.0 && n_images > 0.0 {
                    total += agg.image * image_term / n_images;
                }
                if agg.class > 0.0 && n_classes > 0.0 {
                    let mut sum = 0.0;
                    for c in c0..c_all {
                        if row(c)[5] > 0.0 {
                            sum += row(c)[4] / row(c)[5];
                        }
                    }
                    total += agg.class * sum / n_classes;
                }
            }
            Reduction::Sum => {
                total += (agg.image + agg.class) * (c0..c_all).map(|c| row(c)[4]).sum::<f64>();
            }
            Reduction::None => {}
        }
        for b in 0..nb {
            let act = |k: usize| is_active(o, stats[b * c_all + c0 + k][3]);
            let per_image = (0..k_n).filter(|&k| act(k)).count() as f64;
            for k in 0..k_n {
                let s = stats[b * c_all + c0 + k];
                let (l, g) = item_loss(o, [s[0], s[1], s[2]], class_weight(o, k));
                let scale = match (&mut values, o.reduction) {
                    (Some(v), _) => {
                        v[b * k_n + k] = l;
                        total += l;
                        1.0
                    }
                    _ if !act(k) => 0.0,
                    (_, Reduction::Sum) => agg.image + agg.class,
                    _ => {
                        let mut sc = 0.0;
                        if agg.image > 0.0 {
                            sc += agg.image / (n_images * per_image);
                        }
                        if agg.class > 0.0 {
                            sc += agg.class / (n_classes * row(c0 + k)[5]);
                        }
                        sc
                    }
                };
                add(&mut coef[b * c_all + c0 + k], scale, g);
            }
        }
    }
    done(o, c_all, shared, total, values, coef)
}

/// The compound terms added, and λ_overlap applied to the overlap part: loss, per-item
/// values and coefficients.
fn done(
    o: &LossOptions,
    c_all: usize,
    shared: &[f64],
    total: f64,
    mut values: Option<Vec<f64>>,
    mut coef: Vec<[f64; 3]>,
) -> Finalized {
    let (pixel, pixel_scale) = pixel_terms(o, c_all, shared);
    let lo = o.overlap_weight;
    coef.iter_mut().flatten().for_each(|g| *g *= lo);
    values.iter_mut().flatten().for_each(|v| *v *= lo);
    Finalized {
        loss: o.overlap_weight * total + pixel,
        values,
        coef,
        pixel_scale,
    }
}

/// Aggregates per-(b, c) statistics `[B, C]` into the loss and gradient coefficients:
/// [`finish`] of [`summarize`] (one worker).
pub fn finalize(o: &LossOptions, shape: &Shape, stats: &[[f64; 4]]) -> Finalized {
    finish(o, shape, stats, &summarize(o, shape, stats))
}
