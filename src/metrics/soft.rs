//! Soft predictions as metrics: per (image, class) the L1 soft forms of SPEC §1 —
//! tp = (Σp + Σy − Σ|p − y|) / 2, fp = Σp − tp, fn = Σy − tp — over the kept pixels,
//! with p the activated scores and y soft, one-hot / multi-hot or label-map targets.
//! They are the loss's statistics (segloss's `tile_sums` / `item_sums` kernels on a GPU
//! context, the f64 reference on the CPU one), so they follow the loss's rules
//! (`ignore_index` on label maps, the keep-mask, the activation).

use super::count::Labels;
use super::state::ImageCounts;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::options::{Activation, Formulation, LossOptions};
use crate::shape::{Batch, Shape, Target};
use crate::Loss;

/// Per-image soft statistics of one batch.
pub(crate) fn stats(
    ctx: &Context,
    shape: &Shape,
    (scores, activation): (&[f32], Activation),
    target: &Labels<'_>,
    mask: Option<&[bool]>,
    ignore: Option<i64>,
) -> Result<Vec<ImageCounts>> {
    let mut o = LossOptions::dice()
        .activation(activation)
        .formulation(Formulation::Soft)
        .include_background(true);
    let label_map = matches!(target, Labels::U32(_) | Labels::I64(_));
    let target = match *target {
        Labels::U32(t) => Target::Index(t),
        Labels::I64(t) => Target::IndexI64(t),
        Labels::MultiHot(t) | Labels::Soft(t) => Target::Soft(t),
    };
    if let (Some(i), Target::Index(_) | Target::IndexI64(_)) = (ignore, &target) {
        o = o.ignore_index(i);
    }
    let loss = Loss::new(ctx, o)?;
    let st = loss.stats(&Batch {
        shape,
        input: scores,
        target,
        mask,
    })?;
    let (b, c) = (shape.batch(), shape.classes());
    let items = st.items();
    if items.len() < b * c {
        return Err(Error::InvalidStats(format!(
            "{} statistics for {b} × {c} items",
            items.len()
        )));
    }
    Ok((0..b)
        .map(|i| {
            let counts: Vec<[f64; 3]> = items[i * c..(i + 1) * c]
                .iter()
                .map(|&[tp, fp, fn_, _]| {
                    let tp = f64::from(tp);
                    [tp, tp + f64::from(fp), tp + f64::from(fn_)]
                })
                .collect();
            // Kept pixels: a label map's labelled ones (its ignored pixels are out), else
            // the mask's.
            let valid = if label_map {
                counts.iter().map(|x| x[2]).sum()
            } else {
                let n = shape.pixels();
                mask.map_or(n, |m| m[i * n..(i + 1) * n].iter().filter(|&&k| k).count()) as f64
            };
            ImageCounts { counts, valid }
        })
        .collect())
}
