//! The pixelwise terms of a compound loss (cross-entropy, KL, binary CE, focal): per
//! class tables, per-pixel values and gradients. Twin of the `COMPOUND` parts of
//! `shaders/tile_sums.wgsl` and `shaders/grad.wgsl` (helpers in `shaders/shared/pixel_terms.wgsl`).

use crate::options::{CrossEntropyKind, FocalAlpha, LossOptions};

/// Per-class constants of the pixel terms, over all C classes:
/// `[ce_w, pos_w, a1, a0, focal_w, 0, 0, 0]`. The focal α factor is, by
/// [`alpha_mode`]: 0 → 1; 1 → sigmoid y·a1 + (1 − y)·a0, softmax a1; 2 → sigmoid a1
/// where y = 1 else 1, softmax a1. A dropped background has focal_w = 0.
pub fn aux_table(o: &LossOptions, classes: usize) -> Vec<[f64; 8]> {
    let c0 = o.class_start(classes);
    (0..classes)
        .map(|c| {
            let mut r = [0.0; 8];
            let ce = o.cross_entropy.as_ref();
            r[0] = ce
                .and_then(|ce| ce.class_weights.as_ref())
                .map_or(1.0, |w| w[c]);
            r[1] = ce
                .and_then(|ce| ce.pos_weight.as_ref())
                .map_or(1.0, |w| w[c]);
            r[2] = 1.0;
            if let Some(f) = &o.focal {
                match &f.alpha {
                    Some(FocalAlpha::Scalar(a)) if f.softmax => {
                        r[2] = if c == 0 { 1.0 - a } else { *a };
                    }
                    Some(FocalAlpha::Scalar(a)) => (r[2], r[3]) = (*a, 1.0 - a),
                    Some(FocalAlpha::PerClass(a)) if c >= c0 => r[2] = a[c - c0],
                    _ => {}
                }
                if c >= c0 {
                    r[4] = f.class_weights.as_ref().map_or(1.0, |w| w[c - c0]);
                }
            }
            r
        })
        .collect()
}

/// The focal α mode (see [`aux_table`]).
pub fn alpha_mode(o: &LossOptions) -> u32 {
    match o.focal.as_ref().and_then(|f| f.alpha.as_ref()) {
        None => 0,
        Some(FocalAlpha::Scalar(_)) => 1,
        Some(FocalAlpha::PerClass(_)) => 2,
    }
}

/// ln(1 + eˣ), without overflow.
pub fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// b^e with 0^e = 0 for e > 0 and b^0 = 1.
fn powz(b: f64, e: f64) -> f64 {
    if e == 0.0 {
        1.0
    } else if b <= 0.0 {
        0.0
    } else {
        b.powf(e)
    }
}

/// One pixel's data for the pixel terms: logits x, probabilities p, log-probabilities
/// (softmax) and targets y, over all classes.
pub struct Pixel<'a> {
    /// Logits.
    pub x: &'a [f64],
    /// Probabilities after the activation.
    pub p: &'a [f64],
    /// Log-probabilities (softmax activation; unused otherwise).
    pub logp: &'a [f64],
    /// Targets.
    pub y: &'a [f64],
    /// Whether the targets come from a class-index map.
    pub index_target: bool,
}

/// Per-class additions to the item statistics' second block `[ce, focal, kept, ce
/// normaliser]` for one kept pixel (SPEC of the compound terms, see `Stats`).
pub fn pixel_stats(o: &LossOptions, aux: &[[f64; 8]], px: &Pixel<'_>, out: &mut [[f64; 4]]) {
    let c_all = px.x.len();
    let c0 = o.class_start(c_all);
    for c in 0..c_all {
        let a = &aux[c];
        let y = px.y[c];
        let mut r = [0.0; 4];
        if let Some(ce) = &o.cross_entropy {
            let eps = ce.label_smoothing;
            match ce.kind {
                CrossEntropyKind::Binary => {
                    r[0] = a[0] * (a[1] * y * softplus(-px.x[c]) + (1.0 - y) * softplus(px.x[c]));
                    r[3] = 1.0;
                }
                kind => {
                    let ys = (1.0 - eps) * y + eps / c_all as f64;
                    r[0] = -a[0] * ys * px.logp[c];
                    if kind == CrossEntropyKind::KlDivergence && ys > 0.0 {
                        r[0] += a[0] * ys * ys.ln();
                    }
                    r[3] = if px.index_target {
                        a[0] * y
                    } else {
                        f64::from(u8::from(c == 0))
                    };
                }
            }
        }
        if let (Some(f), true) = (&o.focal, c >= c0) {
            r[1] = focal_value(o, f.softmax, f.gamma, a, px, c);
        }
        r[2] = f64::from(u8::from(c == 0));
        for j in 0..4 {
            out[c][j] += r[j];
        }
    }
}

fn alpha_factor(mode: u32, softmax: bool, a: &[f64; 8], y: f64) -> f64 {
    match (mode, softmax) {
        (0, _) => 1.0,
        (_, true) => a[2],
        (1, false) => y * a[2] + (1.0 - y) * a[3],
        _ => {
            if y == 1.0 {
                a[2]
            } else {
                1.0
            }
        }
    }
}

fn focal_value(
    o: &LossOptions,
    softmax: bool,
    gamma: f64,
    a: &[f64; 8],
    px: &Pixel<'_>,
    c: usize,
) -> f64 {
    let y = px.y[c];
    let w = a[4] * alpha_factor(alpha_mode(o), softmax, a, y);
    if softmax {
        -w * powz(1.0 - px.p[c], gamma) * y * px.logp[c]
    } else {
        let x = px.x[c];
        let bce = softplus(x) - x * y;
        let u = -x * (2.0 * y - 1.0);
        w * (-gamma * softplus(-u)).exp() * bce
    }
}

/// d(pixel terms)/d x for one kept pixel, added into `grad` (all classes), with the
/// global scales s_ce = λ_ce/normaliser and s_f = λ_focal/normaliser from `finish`.
pub fn pixel_grad(
    o: &LossOptions,
    aux: &[[f64; 8]],
    px: &Pixel<'_>,
    scale: [f64; 2],
    grad: &mut [f64],
) {
    let c_all = px.x.len();
    let c0 = o.class_start(c_all);
    // Softmax-chained parts as h_c = p_c·∂L/∂p_c; d_k = h_k − p_k·Σ_j h_j.
    let mut h = vec![0.0; c_all];
    let mut softmax_chain = false;
    if let Some(ce) = &o.cross_entropy {
        let eps = ce.label_smoothing;
        for c in 0..c_all {
            let a = &aux[c];
            let y = px.y[c];
            match ce.kind {
                CrossEntropyKind::Binary => {
                    let s = sigmoid(px.x[c]);
                    grad[c] += scale[0] * a[0] * ((a[1] * y + 1.0 - y) * s - a[1] * y);
                }
                _ => {
                    softmax_chain = true;
                    let ys = (1.0 - eps) * y + eps / c_all as f64;
                    h[c] += -scale[0] * a[0] * ys;
                }
            }
        }
    }
    if let Some(f) = &o.focal {
        for c in c0..c_all {
            let a = &aux[c];
            let y = px.y[c];
            let w = scale[1] * a[4] * alpha_factor(alpha_mode(o), f.softmax, a, y);
            if f.softmax {
                softmax_chain = true;
                let (p, lp, q) = (px.p[c], px.logp[c], 1.0 - px.p[c]);
                let d1 = if q > 0.0 {
                    f.gamma * p * powz(q, f.gamma - 1.0) * lp
                } else {
                    0.0
                };
                h[c] += w * y * (d1 - powz(q, f.gamma));
            } else {
                let x = px.x[c];
                let s = 2.0 * y - 1.0;
                let u = -x * s;
                let m = (-f.gamma * softplus(-u)).exp();
                let bce = softplus(x) - x * y;
                grad[c] += w * m * ((sigmoid(x) - y) + bce * f.gamma * sigmoid(-u) * (-s));
            }
        }
    }
    if softmax_chain {
        let dot: f64 = h.iter().sum();
        for c in 0..c_all {
            grad[c] += h[c] - px.p[c] * dot;
        }
    }
}
