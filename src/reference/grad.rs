//! Twin of `shaders/grad.wgsl`: d(loss)/d(input), chained through the activation.

use super::pixel::{aux_table, pixel_grad, Pixel};
use super::{pixel_data, prob_grad, target, Pixels, RefBatch, RefTarget};
use crate::options::{Activation, LossOptions};

/// Gradient `[B, C, S...]` from the per-(b, c) coefficients of [`super::finalize`] and,
/// for compound losses, the pixel terms' scales `[s_ce, s_focal]`.
pub fn grad(
    o: &LossOptions,
    batch: &RefBatch<'_>,
    px: &Pixels,
    coef: &[[f64; 3]],
    pixel_scale: [f64; 2],
) -> Vec<f64> {
    let s = batch.shape;
    let (c_all, n) = (s.classes(), s.pixels());
    let c0 = o.class_start(c_all);
    let aux = aux_table(o, c_all);
    let mut out = vec![0.0; s.len()];
    let (mut x, mut p, mut logp, mut y) = (
        vec![0.0; c_all],
        vec![0.0; c_all],
        vec![0.0; c_all],
        vec![0.0; c_all],
    );
    let mut g = vec![0.0; c_all];
    let mut d = vec![0.0; c_all];
    for b in 0..s.batch() {
        for i in 0..n {
            if !px.keep[b * n + i] {
                continue; // ignored pixels: zero gradient
            }
            pixel_data(
                o.activation_for(c_all),
                batch,
                b,
                i,
                &mut x,
                &mut p,
                &mut logp,
            );
            for c in 0..c_all {
                y[c] = target(batch, px, b, c, i);
                g[c] = if c >= c0 {
                    prob_grad(o.formulation, coef[b * c_all + c], p[c], y[c])
                } else {
                    0.0
                };
            }
            let dot: f64 = g.iter().zip(&p).map(|(g, p)| g * p).sum();
            for c in 0..c_all {
                d[c] = match o.activation_for(c_all) {
                    Activation::Softmax => p[c] * (g[c] - dot),
                    Activation::Sigmoid => g[c] * p[c] * (1.0 - p[c]),
                    Activation::None => g[c],
                };
            }
            if o.is_compound() {
                let pixel = Pixel {
                    x: &x,
                    p: &p,
                    logp: &logp,
                    y: &y,
                    index_target: matches!(batch.target, RefTarget::Index(_)),
                };
                pixel_grad(o, &aux, &pixel, pixel_scale, &mut d);
            }
            for c in 0..c_all {
                out[(b * c_all + c) * n + i] = d[c];
            }
        }
    }
    out
}
