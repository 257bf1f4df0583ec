//! Twin of `shaders/finalize.wgsl`: item losses, aggregation, scalar loss and the
//! per-(b, c) gradient coefficients d loss/d(tp, fp, fn).

use crate::options::{ActiveClasses, LossOptions, Reduction};
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

/// Aggregates per-(b, c) statistics `[B, C]` into the loss and gradient coefficients.
pub fn finalize(o: &LossOptions, shape: &Shape, stats: &[[f64; 4]]) -> Finalized {
    let (nb, c_all) = (shape.batch(), shape.classes());
    let c0 = o.class_start(c_all);
    let k_n = c_all - c0;
    let weight = |k: usize| o.class_weights.as_ref().map_or(1.0, |w| w[k]);
    let active = |present: f64| match o.active_classes {
        ActiveClasses::All => true,
        ActiveClasses::Present { .. } => present > 0.0,
    };
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

    if agg.dataset > 0.0 {
        let sums: Vec<[f64; 4]> = (0..k_n)
            .map(|k| {
                let mut s = [0.0; 4];
                for b in 0..nb {
                    for j in 0..4 {
                        s[j] += stats[b * c_all + c0 + k][j];
                    }
                }
                s
            })
            .collect();
        let n_active = sums.iter().filter(|s| active(s[3])).count() as f64;
        for (k, s) in sums.iter().enumerate() {
            let (l, g) = item_loss(o, [s[0], s[1], s[2]], weight(k));
            let scale = match (&mut values, o.reduction) {
                (Some(v), _) => {
                    v[k] = l;
                    1.0
                }
                _ if !active(s[3]) => 0.0,
                (_, Reduction::Sum) => agg.dataset,
                _ => agg.dataset / n_active,
            };
            total += scale * l;
            for b in 0..nb {
                add(&mut coef[b * c_all + c0 + k], scale, g);
            }
        }
    }

    if agg.image > 0.0 || agg.class > 0.0 {
        let act = |b: usize, k: usize| active(stats[b * c_all + c0 + k][3]);
        let per_image: Vec<f64> = (0..nb)
            .map(|b| (0..k_n).filter(|&k| act(b, k)).count() as f64)
            .collect();
        let per_class: Vec<f64> = (0..k_n)
            .map(|k| (0..nb).filter(|&b| act(b, k)).count() as f64)
            .collect();
        let n_images = per_image.iter().filter(|&&n| n > 0.0).count() as f64;
        let n_classes = per_class.iter().filter(|&&n| n > 0.0).count() as f64;
        for b in 0..nb {
            for k in 0..k_n {
                let s = stats[b * c_all + c0 + k];
                let (l, g) = item_loss(o, [s[0], s[1], s[2]], weight(k));
                let scale = match (&mut values, o.reduction) {
                    (Some(v), _) => {
                        v[b * k_n + k] = l;
                        1.0
                    }
                    _ if !act(b, k) => 0.0,
                    (_, Reduction::Sum) => agg.image + agg.class,
                    _ => {
                        let mut sc = 0.0;
                        if agg.image > 0.0 {
                            sc += agg.image / (n_images * per_image[b]);
                        }
                        if agg.class > 0.0 {
                            sc += agg.class / (n_classes * per_class[k]);
                        }
                        sc
                    }
                };
                total += scale * l;
                add(&mut coef[b * c_all + c0 + k], scale, g);
            }
        }
    }
    Finalized {
        loss: total,
        values,
        coef,
    }
}
