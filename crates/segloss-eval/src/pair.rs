//! Stage 3 of `evaluate`: a decoded prediction checked against its decoded target and
//! turned into a metrics update.

use segloss::metrics::{Labels, Prediction};
use segloss::Shape;

use crate::Array;

/// One checked pair: the metrics update of a prediction and its target.
#[derive(Debug)]
pub struct Pair<'a> {
    /// `[1, C, S...]`.
    pub shape: Shape,
    /// The prediction (a label map, or scores `[C, S...]` taken by argmax).
    pub pred: Prediction<'a>,
    /// The target label map.
    pub target: Labels<'a>,
}

/// Checks a prediction against its target (an integer label map of the same spatial
/// shape; scores must be `[C, S...]`) and gives the metrics update; an error names the
/// file at fault (`pred_file` or `target_file`).
pub fn pair<'a>(
    classes: usize,
    (pred, pred_file): (&'a Array, &str),
    (target, target_file): (&'a Array, &str),
) -> Result<Pair<'a>, String> {
    let Array::Labels(label, s) = target else {
        return Err(format!(
            "{target_file}: a float target, an integer label map expected"
        ));
    };
    let (spatial, p) = match pred {
        Array::Labels(p, ps) => (&ps[..], Prediction::LabelsI64(p)),
        Array::Scores(x, ps) => {
            if ps.first() != Some(&classes) {
                return Err(format!(
                    "{pred_file}: scores of shape {ps:?}, [{classes}, S...] expected"
                ));
            }
            (&ps[1..], Prediction::Scores(x))
        }
    };
    if spatial != &s[..] {
        return Err(format!(
            "{pred_file}: spatial shape {spatial:?}, the target's is {s:?}"
        ));
    }
    let mut dims = vec![1, classes];
    dims.extend(s);
    let shape = Shape::new(&dims).map_err(|e| format!("{pred_file}: {e}"))?;
    Ok(Pair {
        shape,
        pred: p,
        target: Labels::I64(label),
    })
}
