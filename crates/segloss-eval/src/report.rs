//! Stage 5 of `evaluate`: the results as its JSON object and its Markdown table, and
//! the `--worst` keys they are reported under.

use serde_json::{json, Value};

use crate::Counted;

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
/// name.
pub fn report(classes: usize, counted: &Counted) -> Value {
    let (r, worst, names) = (&counted.result, &counted.worst, &counted.names);
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

/// The results as `segloss evaluate` prints them: a header line, then a Markdown table
/// of mIoU / mDice by level and the worst cases by key.
pub fn table(classes: usize, on: &str, counted: &Counted) -> Vec<String> {
    let (r, worst) = (&counted.result, &counted.worst);
    let mut lines = vec![
        format!("{} images, {classes} classes ({on})", r.images),
        "| level | mIoU | mDice |\n|---|---:|---:|".to_string(),
        format!("| dataset | {:.4} | {:.4} |", r.miou_d, r.mdice_d),
        format!("| image | {:.4} | {:.4} |", r.miou_i, r.mdice_i),
        format!("| class | {:.4} | {:.4} |", r.miou_c, r.mdice_c),
    ];
    for (key, w) in worst {
        lines.push(format!(
            "| worst {key}% | I {:.4} / C {:.4} | I {:.4} / C {:.4} |",
            w.miou_i, w.miou_c, w.mdice_i, w.mdice_c
        ));
    }
    lines
}
