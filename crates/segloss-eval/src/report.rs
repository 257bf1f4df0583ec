//! A prediction checked against its target, and the results as `evaluate`'s JSON.

use segloss::metrics::{Labels, MetricsResult, Prediction, WorstCase};
use segloss::Shape;
use serde_json::{json, Value};

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

/// `--worst` values (percentages in (0, 100]) with their keys as written.
pub fn parse_worst(qs: &[String]) -> Result<Vec<(String, f64)>, String> {
    qs.iter()
        .map(|q| match q.parse::<f64>() {
            Ok(v) if v > 0.0 && v <= 100.0 => Ok((q.clone(), v)),
            Ok(v) => Err(format!("--worst {q}: {v} is not in (0, 100]")),
            Err(e) => Err(format!("--worst {q}: {e}")),
        })
        .collect()
}

/// A finite value, or JSON null.
fn num(v: f64) -> Value {
    if v.is_finite() {
        json!(v)
    } else {
        Value::Null
    }
}

/// The results as `segloss evaluate --json` writes them: mIoU / mDice at dataset (`_d`),
/// image (`_i`) and class (`_c`) level, per class, the worst cases by key, per image by
/// name (`names` in the order the images were added).
pub fn report(
    classes: usize,
    r: &MetricsResult,
    worst: &[(String, WorstCase)],
    names: &[String],
) -> Value {
    let opt = |v: &Option<f64>| v.map_or(Value::Null, num);
    let worst: serde_json::Map<String, Value> = worst
        .iter()
        .map(|(key, w)| {
            let v = json!({"miou_i": num(w.miou_i), "mdice_i": num(w.mdice_i),
                           "miou_c": num(w.miou_c), "mdice_c": num(w.mdice_c)});
            (key.clone(), v)
        })
        .collect();
    json!({
        "images": r.images, "classes": classes,
        "miou_d": num(r.miou_d), "mdice_d": num(r.mdice_d),
        "miou_i": num(r.miou_i), "mdice_i": num(r.mdice_i),
        "miou_c": num(r.miou_c), "mdice_c": num(r.mdice_c),
        "iou_d_per_class": r.iou_d_per_class.iter().map(opt).collect::<Vec<_>>(),
        "dice_d_per_class": r.dice_d_per_class.iter().map(opt).collect::<Vec<_>>(),
        "worst": worst,
        "per_image": r.per_image.iter().zip(names).map(|(s, n)| json!({
            "name": n, "miou": opt(&s.miou), "mdice": opt(&s.mdice)
        })).collect::<Vec<_>>(),
    })
}
