//! Loss golden-case files (format: `golden/README.md`): parsing, running through a
//! segloss backend, and the stated tolerances. Shared by the `golden` example, the
//! test suite (`tests/golden.rs`) and `segloss doctor`.

use segloss::reference::{self, RefBatch, RefTarget};
use segloss::{
    Activation, ActiveClasses, Aggregation, Batch, CrossEntropy, CrossEntropyKind, Focal,
    FocalAlpha, Formulation, Loss, LossOptions, Overlap, Reduction, Shape, Target,
};
use serde_json::Value;

/// One golden case.
pub struct Case {
    pub id: String,
    pub options: LossOptions,
    pub shape: Shape,
    pub input: Vec<f64>,
    pub index_target: bool,
    pub target: Vec<f64>,
    pub mask: Option<Vec<bool>>,
    pub loss: f64,
    pub loss_values: Option<Vec<f64>>,
    pub grad: Vec<f64>,
}

/// A computed result to check.
pub struct Computed {
    pub loss: f64,
    pub values: Option<Vec<f64>>,
    pub grad: Vec<f64>,
}

fn f64s(v: &Value) -> Result<Vec<f64>, String> {
    v.as_array()
        .ok_or("expected an array")?
        .iter()
        .map(|x| x.as_f64().ok_or_else(|| format!("not a number: {x}")))
        .collect()
}

fn num(v: &Value, key: &str) -> Result<f64, String> {
    v[key].as_f64().ok_or_else(|| format!("spec.{key} missing"))
}

/// The segloss options stated by a case's `spec`.
pub fn options_from_spec(s: &Value) -> Result<LossOptions, String> {
    let (alpha, beta) = (num(s, "alpha")?, num(s, "beta")?);
    let overlap = match s["overlap"].as_str() {
        Some("jaccard") => Overlap::Jaccard,
        Some("dice") => Overlap::Dice,
        _ => Overlap::Tversky { alpha, beta },
    };
    let agg = &s["aggregation"];
    let ac = &s["active_classes"];
    Ok(LossOptions {
        overlap,
        formulation: match s["formulation"].as_str() {
            Some("soft") => Formulation::Soft,
            Some("squared") => Formulation::Squared,
            Some("classic") => Formulation::Classic,
            f => return Err(format!("formulation {f:?}")),
        },
        activation: match s["activation"].as_str() {
            Some("softmax") => Activation::Softmax,
            Some("sigmoid") => Activation::Sigmoid,
            Some("none") => Activation::None,
            a => return Err(format!("activation {a:?}")),
        },
        smooth_nr: num(s, "smooth_nr")?,
        smooth_dr: num(s, "smooth_dr")?,
        include_background: s["include_background"].as_bool().unwrap_or(true),
        aggregation: Aggregation {
            dataset: num(agg, "dataset")?,
            image: num(agg, "image")?,
            class: num(agg, "class")?,
        },
        active_classes: match ac["mode"].as_str() {
            Some("present") => ActiveClasses::Present {
                threshold: num(ac, "threshold")?,
            },
            _ => ActiveClasses::All,
        },
        class_weights: match &s["class_weights"] {
            Value::Null => None,
            w => Some(f64s(w)?),
        },
        log_loss: s["log_loss"].as_bool().unwrap_or(false),
        gamma: num(s, "gamma")?,
        reduction: match s["reduction"].as_str() {
            Some("sum") => Reduction::Sum,
            Some("none") => Reduction::None,
            _ => Reduction::Mean,
        },
        ignore_index: s["ignore_index"].as_i64(),
        single_channel_softmax: segloss::SingleChannelSoftmax::Error,
        // The golden cases state classic losses on soft targets on purpose (the peers' own
        // behaviour): reported, not refused.
        soft_label_guard: segloss::SoftLabelGuard::Warn,
        overlap_weight: s["overlap_weight"].as_f64().unwrap_or(1.0),
        cross_entropy: match &s["cross_entropy"] {
            Value::Null => None,
            ce => Some(CrossEntropy {
                weight: num(ce, "weight")?,
                kind: match ce["kind"].as_str() {
                    Some("softmax") => CrossEntropyKind::Softmax,
                    Some("kl") => CrossEntropyKind::KlDivergence,
                    Some("binary") => CrossEntropyKind::Binary,
                    k => return Err(format!("cross_entropy.kind {k:?}")),
                },
                class_weights: opt_f64s(&ce["class_weights"])?,
                label_smoothing: ce["label_smoothing"].as_f64().unwrap_or(0.0),
                pos_weight: opt_f64s(&ce["pos_weight"])?,
            }),
        },
        focal: match &s["focal"] {
            Value::Null => None,
            f => Some(Focal {
                weight: num(f, "weight")?,
                gamma: num(f, "gamma")?,
                softmax: f["softmax"].as_bool().unwrap_or(false),
                alpha: match &f["alpha"] {
                    Value::Null => None,
                    Value::Number(a) => Some(FocalAlpha::Scalar(a.as_f64().unwrap_or(0.0))),
                    a => Some(FocalAlpha::PerClass(f64s(a)?)),
                },
                class_weights: opt_f64s(&f["class_weights"])?,
            }),
        },
    })
}

fn opt_f64s(v: &Value) -> Result<Option<Vec<f64>>, String> {
    match v {
        Value::Null => Ok(None),
        w => f64s(w).map(Some),
    }
}

/// Parses every case of a golden file.
pub fn load(path: &str) -> Result<Vec<Case>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    parse(&text, path)
}

/// Parses every case of a golden file's text (`name` labels the errors): the `segloss
/// doctor` command runs the files embedded in its binary.
pub fn parse(text: &str, name: &str) -> Result<Vec<Case>, String> {
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("{name}: {e}"))?;
    let cases = doc["cases"].as_array().ok_or("no `cases` array")?;
    cases
        .iter()
        .map(|c| {
            let id = c["id"].as_str().unwrap_or("?").to_string();
            let ctx = |e: String| format!("{id}: {e}");
            let dims: Vec<usize> = f64s(&c["shape"])
                .map_err(ctx)?
                .iter()
                .map(|&d| d as usize)
                .collect();
            Ok(Case {
                options: options_from_spec(&c["spec"]).map_err(ctx)?,
                shape: Shape::new(&dims).map_err(|e| ctx(e.to_string()))?,
                input: f64s(&c["input"]).map_err(ctx)?,
                index_target: c["target_kind"].as_str() == Some("index"),
                target: f64s(&c["target"]).map_err(ctx)?,
                mask: c["mask"]
                    .as_array()
                    .map(|m| m.iter().map(|v| v.as_bool() == Some(true)).collect()),
                loss: c["loss"].as_f64().ok_or_else(|| ctx("no loss".into()))?,
                loss_values: match &c["loss_values"] {
                    Value::Null => None,
                    v => Some(f64s(v).map_err(ctx)?),
                },
                grad: f64s(&c["grad"]).map_err(ctx)?,
                id,
            })
        })
        .collect()
}

impl Case {
    /// Runs the case through `loss` (built from this case's options on any context).
    pub fn run(&self, loss: &Loss) -> Result<Computed, String> {
        computed(self.with_batch(|b| loss.forward_backward(b)))
    }

    /// [`Case::run`] through the async API (`forward_backward_async`, read back by
    /// `map_async`): the form the browser runs (`segloss doctor` and the browser suite).
    pub async fn run_async(&self, loss: &Loss) -> Result<Computed, String> {
        computed(self.with_batch(|b| loss.forward_backward_async(b)).await)
    }

    /// `f` of this case's batch (f32 data, the target as its kind).
    fn with_batch<R>(&self, f: impl FnOnce(&Batch<'_>) -> R) -> R {
        let input: Vec<f32> = self.input.iter().map(|&v| v as f32).collect();
        let soft: Vec<f32> = self.target.iter().map(|&v| v as f32).collect();
        let index: Vec<i64> = self.target.iter().map(|&v| v as i64).collect();
        let batch = Batch {
            shape: &self.shape,
            input: &input,
            target: if self.index_target {
                Target::IndexI64(&index)
            } else {
                Target::Soft(&soft)
            },
            mask: self.mask.as_deref(),
        };
        f(&batch)
    }

    /// Runs the case through the f64 CPU reference (no f32 rounding of the data).
    pub fn run_reference(&self) -> Result<Computed, String> {
        let index: Vec<i64> = self.target.iter().map(|&v| v as i64).collect();
        let batch = RefBatch {
            shape: &self.shape,
            input: &self.input,
            target: if self.index_target {
                RefTarget::Index(&index)
            } else {
                RefTarget::Soft(&self.target)
            },
            mask: self.mask.as_deref(),
        };
        let out = reference::evaluate(&self.options, &batch, true).map_err(|e| e.to_string())?;
        Ok(Computed {
            loss: out.loss,
            values: out.values,
            grad: out.grad.unwrap_or_default(),
        })
    }

    /// The worst errors against this case: (max |v − ref| / max(|ref|, 1e-12) over the
    /// loss and its values, max |g − ref| / max |ref| over the gradient). A NaN anywhere
    /// makes its figure infinite (`f64::max` would drop it and under-report), and so does
    /// a gradient of the wrong length.
    pub fn errors(&self, got: &Computed) -> (f64, f64) {
        let worst = |m: f64, e: f64| if e.is_nan() { f64::INFINITY } else { m.max(e) };
        let mut ev = worst(0.0, rel(got.loss, self.loss));
        if let (Some(v), Some(r)) = (&got.values, &self.loss_values) {
            for (a, b) in v.iter().zip(r) {
                ev = worst(ev, rel(*a, *b));
            }
        }
        let gmax = self.grad.iter().fold(0.0f64, |m, g| m.max(g.abs()));
        let mut gerr = got
            .grad
            .iter()
            .zip(&self.grad)
            .fold(0.0f64, |m, (a, b)| worst(m, (a - b).abs()));
        if got.grad.len() != self.grad.len() {
            gerr = f64::INFINITY;
        }
        (ev, if gmax > 0.0 { gerr / gmax } else { gerr })
    }

    /// Checks `got` with relative tolerance `rel_tol` (1e-4 for the f32 GPU path, 1e-9
    /// for the f64 reference) and the golden README's absolute floors (1e-6 on values,
    /// 1e-7 on the gradient, scaled by rel_tol/1e-4).
    pub fn check(&self, got: &Computed, rel_tol: f64) -> Result<(), String> {
        let floor_v = 1e-6 * rel_tol / 1e-4;
        let floor_g = 1e-7 * rel_tol / 1e-4;
        let ok_v = |v: f64, r: f64| (v - r).abs() <= rel_tol * r.abs() + floor_v;
        if !ok_v(got.loss, self.loss) {
            return Err(format!("loss {} vs {}", got.loss, self.loss));
        }
        match (&got.values, &self.loss_values) {
            (Some(v), Some(r)) => {
                if v.len() != r.len() {
                    return Err(format!("{} values vs {}", v.len(), r.len()));
                }
                if let Some(i) = (0..v.len()).find(|&i| !ok_v(v[i], r[i])) {
                    return Err(format!("value[{i}] {} vs {}", v[i], r[i]));
                }
            }
            (None, None) => {}
            (a, b) => return Err(format!("values present {} vs {}", a.is_some(), b.is_some())),
        }
        if got.grad.len() != self.grad.len() {
            return Err(format!(
                "grad has {} elements, expected {}",
                got.grad.len(),
                self.grad.len()
            ));
        }
        let gmax = self.grad.iter().fold(0.0f64, |m, g| m.max(g.abs()));
        let tol = rel_tol * gmax + floor_g;
        for (i, (a, b)) in got.grad.iter().zip(&self.grad).enumerate() {
            if (a - b).abs() > tol || !a.is_finite() {
                return Err(format!("grad[{i}] {a} vs {b} (tolerance {tol:.3e})"));
            }
        }
        Ok(())
    }
}

/// |a − b| / max(|b|, 1e-12): the golden files' relative error.
pub(crate) fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-12)
}

/// A loss call's output in f64.
fn computed(out: segloss::Result<segloss::LossOutput>) -> Result<Computed, String> {
    let out = out.map_err(|e| e.to_string())?;
    let wide = |v: Vec<f32>| v.into_iter().map(f64::from).collect::<Vec<f64>>();
    Ok(Computed {
        loss: f64::from(out.loss),
        values: out.values.map(wide),
        grad: wide(out.grad.unwrap_or_default()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nan_result_is_an_infinite_error() {
        let text = include_str!("../golden/public.json");
        let c = &parse(text, "public.json").expect("public.json")[0];
        let good = Computed {
            loss: c.loss,
            values: c.loss_values.clone(),
            grad: c.grad.clone(),
        };
        assert_eq!(c.errors(&good), (0.0, 0.0));
        let mut nan = Computed {
            loss: f64::NAN,
            ..good
        };
        assert_eq!(c.errors(&nan).0, f64::INFINITY);
        nan.loss = c.loss;
        nan.grad[0] = f64::NAN;
        assert_eq!(c.errors(&nan).1, f64::INFINITY);
    }
}
