//! Twin of `shaders/tile_sums.wgsl` + `shaders/item_sums.wgsl`: per-(b, c) sums of
//! (tp, fp, fn, present count) over the kept pixels, and for compound losses a second
//! block of per-(b, c) sums of the pixel terms.

use super::pixel::{aux_table, pixel_stats};
use super::{contribution, pixel_data, target, Pixels, RefBatch};
use crate::options::{ActiveClasses, LossOptions};

/// Per-(b, c) `[tp, fp, fn, present]`, row-major `[B, C]` over all C classes. `present`
/// counts kept pixels whose target exceeds the present(threshold) rule's threshold.
/// Compound losses append a second `[B, C]` block of `[ce, focal, kept, ce
/// normaliser]` sums (see [`super::pixel::pixel_stats`]).
pub fn stats(options: &LossOptions, batch: &RefBatch<'_>, px: &Pixels) -> Vec<[f64; 4]> {
    let s = batch.shape;
    let (c_all, n) = (s.classes(), s.pixels());
    let threshold = match options.active_classes {
        ActiveClasses::Present { threshold } => threshold,
        ActiveClasses::All => 0.0,
    };
    let items = s.batch() * c_all;
    let compound = options.is_compound();
    let mut out = vec![[0.0; 4]; items * if compound { 2 } else { 1 }];
    let aux = aux_table(options, c_all);
    let (mut x, mut p, mut logp, mut y) = (
        vec![0.0; c_all],
        vec![0.0; c_all],
        vec![0.0; c_all],
        vec![0.0; c_all],
    );
    for b in 0..s.batch() {
        for i in 0..n {
            if !px.keep[b * n + i] {
                continue;
            }
            pixel_data(
                options.activation_for(c_all),
                batch,
                b,
                i,
                &mut x,
                &mut p,
                &mut logp,
            );
            for c in 0..c_all {
                y[c] = target(batch, px, b, c, i);
                let [tp, fp, fn_] = contribution(options.formulation, p[c], y[c]);
                let o = &mut out[b * c_all + c];
                o[0] += tp;
                o[1] += fp;
                o[2] += fn_;
                o[3] += f64::from(u8::from(present(y[c], threshold)));
            }
            if compound {
                let pixel = super::pixel::Pixel {
                    x: &x,
                    p: &p,
                    logp: &logp,
                    y: &y,
                    index_target: matches!(batch.target, super::RefTarget::Index(_)),
                };
                let row = items + b * c_all;
                pixel_stats(options, &aux, &pixel, &mut out[row..row + c_all]);
            }
        }
    }
    out
}

/// The present(threshold) rule, in one precision on every path: a target counts as
/// present when f32(y) > f32(threshold) (the GPU holds targets and the threshold in f32).
pub fn present(y: f64, threshold: f64) -> bool {
    (y as f32) > (threshold as f32)
}
