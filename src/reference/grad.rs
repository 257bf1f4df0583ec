//! Twin of `shaders/grad.wgsl`: d(loss)/d(input), chained through the activation.

use super::{activate, prob_grad, target, Pixels, RefBatch};
use crate::options::{Activation, LossOptions};

/// Gradient `[B, C, S...]` from the per-(b, c) coefficients of [`super::finalize`].
pub fn grad(o: &LossOptions, batch: &RefBatch<'_>, px: &Pixels, coef: &[[f64; 3]]) -> Vec<f64> {
    let s = batch.shape;
    let (c_all, n) = (s.classes(), s.pixels());
    let c0 = o.class_start(c_all);
    let mut out = vec![0.0; s.len()];
    let mut p = vec![0.0; c_all];
    let mut g = vec![0.0; c_all];
    for b in 0..s.batch() {
        for i in 0..n {
            if !px.keep[b * n + i] {
                continue; // ignored pixels: zero gradient
            }
            activate(o.activation, batch, b, i, &mut p);
            for c in 0..c_all {
                g[c] = if c >= c0 {
                    let y = target(batch, px, b, c, i);
                    prob_grad(o.formulation, coef[b * c_all + c], p[c], y)
                } else {
                    0.0
                };
            }
            let dot: f64 = g.iter().zip(&p).map(|(g, p)| g * p).sum();
            for c in 0..c_all {
                out[(b * c_all + c) * n + i] = match o.activation {
                    Activation::Softmax => p[c] * (g[c] - dot),
                    Activation::Sigmoid => g[c] * p[c] * (1.0 - p[c]),
                    Activation::None => g[c],
                };
            }
        }
    }
    out
}
