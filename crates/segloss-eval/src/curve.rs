//! The soft-label problem in one picture: the loss of one pixel with soft label `y`
//! against its prediction `p` over [0, 1], for an overlap loss in one formulation.
//! Each point is one image of one pixel and one channel (probabilities in, no
//! activation, MONAI's default smoothing 1e-5), so that one call computes the curve.

use segloss::{Activation, Batch, Context, Formulation, Loss, LossOptions, Reduction, Shape};

/// Points of a curve: p = 0, 0.01, ..., 1.
pub const CURVE_POINTS: usize = 101;

/// Tversky's weights of false positives and false negatives in the curve (the common
/// choice that favours recall).
pub const CURVE_TVERSKY: (f64, f64) = (0.3, 0.7);

/// The options of a curve: `overlap` is `"dice"`, `"jaccard"` or `"tversky"`,
/// `formulation` `"soft"`, `"classic"` or `"squared"`.
pub fn curve_options(overlap: &str, formulation: &str) -> Result<LossOptions, String> {
    let options = match overlap {
        "dice" => LossOptions::dice(),
        "jaccard" => LossOptions::jaccard(),
        "tversky" => LossOptions::tversky(CURVE_TVERSKY.0, CURVE_TVERSKY.1),
        o => {
            return Err(format!(
                "overlap {o:?}: \"dice\", \"jaccard\" or \"tversky\""
            ))
        }
    };
    let formulation = match formulation {
        "soft" => Formulation::Soft,
        "classic" => Formulation::Classic,
        "squared" => Formulation::Squared,
        f => {
            return Err(format!(
                "formulation {f:?}: \"soft\", \"classic\" or \"squared\""
            ))
        }
    };
    Ok(options
        .formulation(formulation)
        .activation(Activation::None)
        .reduction(Reduction::None))
}

/// The curve's batch: shape `[CURVE_POINTS, 1, 1]`, predictions p_i = i / (N − 1), every
/// target `y`.
pub fn curve_batch(y: f32) -> Result<(Shape, Vec<f32>, Vec<f32>), String> {
    if !(0.0..=1.0).contains(&y) {
        return Err(format!("label y = {y}: a value in [0, 1] expected"));
    }
    let n = CURVE_POINTS;
    let shape = Shape::new(&[n, 1, 1]).map_err(|e| e.to_string())?;
    let p = (0..n).map(|i| i as f32 / (n - 1) as f32).collect();
    Ok((shape, p, vec![y; n]))
}

/// `[p, loss]` over p ∈ [0, 1] for label `y`, computed on `ctx` in one async call (the
/// form that runs in the browser).
pub async fn loss_curve(
    ctx: &Context,
    y: f32,
    overlap: &str,
    formulation: &str,
) -> Result<Vec<[f32; 2]>, String> {
    let loss = Loss::new(ctx, curve_options(overlap, formulation)?).map_err(|e| e.to_string())?;
    let (shape, p, t) = curve_batch(y)?;
    let out = loss
        .forward_async(&Batch::soft(&shape, &p, &t))
        .await
        .map_err(|e| e.to_string())?;
    let values = out.values.ok_or("no per-point values")?;
    if values.len() != p.len() {
        return Err(format!("{} values for {} points", values.len(), p.len()));
    }
    Ok(p.into_iter().zip(values).map(|(p, l)| [p, l]).collect())
}
