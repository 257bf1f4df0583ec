//! segloss's public golden cases (`golden/*.json`: the peers' own outputs, and the
//! scripts that recorded them) and their one runner: `segloss doctor`, the browser
//! suite and segloss's test suite (`tests/golden*.rs`) all check these files through
//! [`run`] (and [`case`] for the loss files), reporting every failure rather than
//! stopping at the first.
//!
//! | family | file | peers | tolerance (f32 results) |
//! |---|---|---|---|
//! | losses | `public.json` | MONAI 1.6.1, JDTLosses | 1e-4 relative + 1e-6; gradient 1e-4 of max \|grad\| + 1e-7 |
//! | compound | `compound.json` | MONAI DiceCE / DiceFocal / Focal, PyTorch CE / BCE / KL | as losses |
//! | generalized Dice | `gdl.json` | MONAI GeneralizedDice(Focal)Loss | as losses |
//! | metrics | `metrics.json` | JDTLosses, torchmetrics, MONAI, smp | 1e-12 (f64 peers), 1e-6 (f32 peers) |
//! | multi-label metrics | `multilabel.json` | smp, torchmetrics | counts exact, 1e-6 |
//! | deep supervision | `deep.json` | MONAI DeepSupervisionLoss (nearest-exact), PyTorch adaptive_avg_pool + MONAI DiceLoss (area) | 1e-4 relative + 1e-6; gradient 1e-4 of max \|grad\| + 1e-7 |

pub mod case;
mod deep;
pub mod gdl;
mod losses;
mod metrics;
mod multilabel;

use segloss::Context;
use serde_json::Value;

/// The embedded golden files: (family, file name, text).
pub const FILES: [(&str, &str, &str); 6] = [
    (
        "losses",
        "public.json",
        include_str!("../golden/public.json"),
    ),
    (
        "compound",
        "compound.json",
        include_str!("../golden/compound.json"),
    ),
    (
        "generalized Dice",
        "gdl.json",
        include_str!("../golden/gdl.json"),
    ),
    (
        "metrics",
        "metrics.json",
        include_str!("../golden/metrics.json"),
    ),
    (
        "multi-label metrics",
        "multilabel.json",
        include_str!("../golden/multilabel.json"),
    ),
    (
        "deep supervision",
        "deep.json",
        include_str!("../golden/deep.json"),
    ),
];

/// The text of the embedded golden file `name` (e.g. "public.json").
pub fn text(name: &str) -> Option<&'static str> {
    FILES
        .iter()
        .find(|(_, n, _)| *n == name)
        .map(|(_, _, t)| *t)
}

/// The largest error of one kind seen in a family, and the case it came from.
pub struct Worst {
    /// What was measured, e.g. "value error (relative)".
    pub what: &'static str,
    /// The largest error.
    pub error: f64,
    /// The case it was seen in.
    pub case: String,
}

/// One family's result.
pub struct Report {
    /// The family's name.
    pub family: String,
    /// Cases run.
    pub cases: usize,
    /// One line per failing case: `id: what, got vs expected`.
    pub failures: Vec<String>,
    /// The largest errors, one per kind.
    pub worst: Vec<Worst>,
}

impl Report {
    fn new(family: &str) -> Self {
        Report {
            family: family.to_string(),
            cases: 0,
            failures: Vec::new(),
            worst: Vec::new(),
        }
    }

    /// Records an error of kind `what` in `case` (NaN counts as infinite).
    pub fn note(&mut self, what: &'static str, error: f64, case: &str) {
        let error = if error.is_nan() { f64::INFINITY } else { error };
        match self.worst.iter_mut().find(|w| w.what == what) {
            Some(w) if w.error >= error => {}
            Some(w) => {
                w.error = error;
                w.case = case.to_string();
            }
            None => self.worst.push(Worst {
                what,
                error,
                case: case.to_string(),
            }),
        }
    }

    /// Records a failing case.
    pub fn fail(&mut self, case: &str, message: impl std::fmt::Display) {
        self.failures.push(format!("{case}: {message}"));
    }

    /// Compares one number with an absolute tolerance (both NaN counts as equal, as the
    /// peers write an undefined metric as NaN), noting its error as `what`.
    pub fn close(
        &mut self,
        what: &'static str,
        case: &str,
        name: &str,
        got: f64,
        want: f64,
        tol: f64,
    ) {
        if got.is_nan() && want.is_nan() {
            return;
        }
        let err = (got - want).abs();
        self.note(what, err, case);
        if !within(err, tol) {
            self.fail(
                case,
                format!("{name} {got} vs peer {want} (tolerance {tol:.0e})"),
            );
        }
    }
}

/// The kinds of golden file, told apart by their cases' fields.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    /// `spec` + `grad`: loss cases (public, compound); src/case.rs.
    Loss,
    /// MONAI's Generalized Dice losses from `peer_args`.
    Gdl,
    /// Multi-class metrics (`jdt`).
    Metrics,
    /// Multi-label metrics (`smp_tp`).
    Multilabel,
    /// Deep supervision (`pooling`).
    Deep,
}

fn kind(doc: &Value) -> Option<Kind> {
    let first = doc["cases"].as_array()?.first()?;
    if first.get("spec").is_some() {
        Some(Kind::Loss)
    } else if first["peer_args"].get("w_type").is_some() {
        Some(Kind::Gdl)
    } else if first.get("jdt").is_some() {
        Some(Kind::Metrics)
    } else if first.get("smp_tp").is_some() {
        Some(Kind::Multilabel)
    } else if first.get("pooling").is_some() {
        Some(Kind::Deep)
    } else {
        None
    }
}

/// Runs every case of one golden file's `text` on `ctx`. `name` labels errors; a file
/// that does not parse is one failure of the family. Async (every result read back
/// through `map_async`), so that the browser suite runs the same checks
/// (`crates/segloss-web/tests/browser.rs`); the command blocks on it.
pub async fn run(ctx: &Context, family: &str, name: &str, text: &str) -> Report {
    let mut report = Report::new(family);
    let doc: Value = match serde_json::from_str(text) {
        Ok(d) => d,
        Err(e) => {
            report.fail(name, format!("not JSON: {e}"));
            return report;
        }
    };
    match kind(&doc) {
        Some(Kind::Loss) => losses::run(ctx, name, text, &mut report).await,
        Some(kind) => {
            for case in doc["cases"].as_array().into_iter().flatten() {
                report.cases += 1;
                let id = id(case);
                let r = match kind {
                    Kind::Gdl => gdl::check(ctx, case, &id, &mut report).await,
                    Kind::Metrics => metrics::check(ctx, case, &id, &mut report).await,
                    Kind::Deep => deep::check(ctx, case, &id, &mut report).await,
                    _ => multilabel::check(ctx, case, &id, &mut report).await,
                };
                if let Err(e) = r {
                    report.fail(&id, e);
                }
            }
        }
        None => report.fail(
            name,
            "no cases of a known kind (loss `spec`, GDL `peer_args.w_type`, metrics `jdt`, multi-label `smp_tp`, deep supervision `pooling`)",
        ),
    }
    report
}

/// The numbers of the array `v[key]`, `null` (an undefined value) as NaN. Anything else
/// — a missing key, a string, a nested array — is an error: an expected array that
/// vanished must not turn into an empty comparison (as the tests' `common::f64s`).
pub fn f64s(v: &Value, key: &str) -> Result<Vec<f64>, String> {
    let a = v[key]
        .as_array()
        .ok_or_else(|| format!("`{key}`: expected an array of numbers, found {}", v[key]))?;
    a.iter()
        .map(|x| match x {
            Value::Null => Ok(f64::NAN),
            x => x
                .as_f64()
                .ok_or_else(|| format!("`{key}`: expected a number, found {x}")),
        })
        .collect()
}

/// The number `v[key]`, `null` (undefined) as NaN; a missing key is an error.
pub fn number(v: &Value, key: &str) -> Result<f64, String> {
    match &v[key] {
        Value::Null if v.get(key).is_some() => Ok(f64::NAN),
        x => x
            .as_f64()
            .ok_or_else(|| format!("`{key}`: expected a number, found {x}")),
    }
}

/// Checks that two sides of a comparison are as long as each other and not empty: a
/// comparison that compares nothing, or stops at the shorter side, is an error.
pub fn same_len(what: &str, a: usize, b: usize) -> Result<(), String> {
    if a != b {
        return Err(format!("{what}: {a} values vs the peer's {b}"));
    }
    if a == 0 {
        return Err(format!("{what}: nothing to compare"));
    }
    Ok(())
}

/// A case's id.
pub fn id(case: &Value) -> String {
    case["id"].as_str().unwrap_or("?").to_string()
}

/// `err <= tol`, false when either is NaN (a NaN error is a failure).
pub fn within(err: f64, tol: f64) -> bool {
    err <= tol
}
