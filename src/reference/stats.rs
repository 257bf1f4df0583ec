//! Twin of `shaders/stats.wgsl` + `shaders/stats_reduce.wgsl`: per-(b, c) sums of
//! (tp, fp, fn, present count) over the kept pixels.

use super::{activate, contribution, target, Pixels, RefBatch};
use crate::options::{ActiveClasses, LossOptions};

/// Per-(b, c) `[tp, fp, fn, present]`, row-major `[B, C]` over all C classes. `present`
/// counts kept pixels whose target exceeds the present(threshold) rule's threshold.
pub fn stats(options: &LossOptions, batch: &RefBatch<'_>, px: &Pixels) -> Vec<[f64; 4]> {
    let s = batch.shape;
    let (c_all, n) = (s.classes(), s.pixels());
    let threshold = match options.active_classes {
        ActiveClasses::Present { threshold } => threshold,
        ActiveClasses::All => 0.0,
    };
    let mut out = vec![[0.0; 4]; s.batch() * c_all];
    let mut p = vec![0.0; c_all];
    for b in 0..s.batch() {
        for i in 0..n {
            if !px.keep[b * n + i] {
                continue;
            }
            activate(options.activation, batch, b, i, &mut p);
            for (c, &pc) in p.iter().enumerate() {
                let y = target(batch, px, b, c, i);
                let [tp, fp, fn_] = contribution(options.formulation, pc, y);
                let o = &mut out[b * c_all + c];
                o[0] += tp;
                o[1] += fp;
                o[2] += fn_;
                o[3] += f64::from(u8::from(y > threshold));
            }
        }
    }
    out
}
