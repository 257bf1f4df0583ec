//! Every golden file through the one runner (crates/segloss-golden, as `segloss doctor`
//! and the browser suite run it) on the GPU and on the CPU backend at the golden
//! README's f32 tolerances (1e-4 relative; floors 1e-6 on values, 1e-7 on the gradient),
//! and the loss cases (MONAI 1.6.1, JDTLoss, PyTorch, float64) through the f64 CPU
//! reference at 1e-9.

mod common;

use segloss_golden::case;

fn public() -> Vec<case::Case> {
    case::parse(segloss_golden::text("public.json").unwrap(), "public.json").unwrap()
}

fn compound() -> Vec<case::Case> {
    case::parse(
        segloss_golden::text("compound.json").unwrap(),
        "compound.json",
    )
    .unwrap()
}

/// Every embedded golden file (losses, compound, Generalized Dice, metrics, multi-label
/// metrics) through segloss-golden's runner, the one `segloss doctor` and the browser
/// suite use, on `ctx`: no failure, and every case run.
fn every_file(ctx: &segloss::Context, on: &str) {
    let mut failures = Vec::new();
    let mut counts = Vec::new();
    for (family, name, text) in segloss_golden::FILES {
        let r = pollster::block_on(segloss_golden::run(ctx, family, name, text));
        let worst: Vec<String> = r
            .worst
            .iter()
            .map(|w| format!("{} {:.2e}", w.what, w.error))
            .collect();
        eprintln!(
            "{on} {family}: {} cases; worst {}",
            r.cases,
            worst.join(", ")
        );
        counts.push(r.cases);
        failures.extend(r.failures);
    }
    assert!(failures.is_empty(), "{on}: {failures:#?}");
    assert_eq!(counts, [65, 27, 31, 7, 5, 7], "{on}: cases per file");
}

#[test]
fn every_golden_file_on_the_gpu() {
    let Some(ctx) = common::gpu() else { return };
    every_file(&ctx, "GPU");
}

#[test]
fn every_golden_file_on_the_cpu_backend() {
    // The no-GPU fallback (f32 in, f64 inside) meets the GPU tolerances.
    every_file(&segloss::Context::cpu(), "CPU backend");
}

#[test]
fn golden_cases_on_the_f64_reference() {
    let cases = public();
    let mut failures = Vec::new();
    let (mut wv, mut wg) = (0.0f64, 0.0f64);
    for c in &cases {
        let got = c.run_reference().unwrap();
        let (ev, eg) = c.errors(&got);
        wv = wv.max(ev);
        wg = wg.max(eg);
        // The peers' own float64 values deviate from the exact SPEC by up to 2.3e-8 on
        // the squared formulation with index targets (monai-diceloss-011, jdt-005,
        // jdt-009, jdt-017); crates/segloss-golden/golden/spec_ref.py reproduces the same numbers as
        // this reference there (to 1e-15) and states its own bound as 1e-7. Those cases
        // get that bound; every other case is held to 1e-9.
        let squared_index =
            c.index_target && c.options.formulation == segloss::Formulation::Squared;
        let tol = if squared_index { 1e-7 } else { 1e-9 };
        if let Err(e) = c.check(&got, tol) {
            failures.push(format!("{}: {e}", c.id));
        }
    }
    eprintln!("CPU reference golden: worst value error {wv:.3e}, worst gradient error {wg:.3e}");
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Compound cases (crates/segloss-golden/golden/make_compound.py: MONAI DiceCELoss / DiceFocalLoss /
/// FocalLoss and PyTorch CrossEntropyLoss / BCEWithLogitsLoss / kl_div, float64):
/// every one through `runner`, the worst errors printed.
fn compound_cases(what: &str, tol: f64, runner: impl Fn(&case::Case) -> case::Computed) {
    // MONAI's FocalLoss casts its inputs to float32 (`input.float()` in its forward), so
    // cases with a focal term are float32-accurate only (seen: 4.6e-8 relative); they
    // are held to 1e-6 when `tol` is tighter.
    let cases = compound();
    assert_eq!(cases.len(), 27);
    let mut failures = Vec::new();
    let (mut wv, mut wg) = (0.0f64, 0.0f64);
    for c in &cases {
        assert!(c.options.is_compound(), "{}: not a compound case", c.id);
        let got = runner(c);
        let (ev, eg) = c.errors(&got);
        wv = wv.max(ev);
        wg = wg.max(eg);
        let tol = if c.options.focal.is_some() {
            tol.max(1e-6)
        } else {
            tol
        };
        if let Err(e) = c.check(&got, tol) {
            failures.push(format!("{}: {e}", c.id));
        }
    }
    eprintln!("{what} compound golden: worst value error {wv:.3e}, worst gradient error {wg:.3e}");
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn compound_golden_cases_on_the_f64_reference() {
    compound_cases("CPU reference", 1e-9, |c| c.run_reference().unwrap());
}

/// `monai::DiceCELoss` / `monai::DiceFocalLoss` built from the recorded MONAI arguments
/// give the options the case states (so the MONAI names map as documented).
#[test]
fn monai_compound_constructors_match_the_recorded_calls() {
    use segloss::monai::{DiceCELoss, DiceFocalLoss};
    let doc: serde_json::Value =
        serde_json::from_str(segloss_golden::text("compound.json").unwrap()).unwrap();
    let cases = compound();
    let mut checked = 0;
    for (raw, c) in doc["cases"].as_array().unwrap().iter().zip(&cases) {
        let a = &raw["peer_args"];
        let b = |k: &str| a[k].as_bool().unwrap_or(false);
        let f = |k: &str, d: f64| a[k].as_f64().unwrap_or(d);
        let weight = a["weight"]
            .as_array()
            .map(|w| w.iter().map(|v| v.as_f64().unwrap()).collect::<Vec<f64>>());
        let reduction = if a["reduction"].as_str() == Some("sum") {
            segloss::Reduction::Sum
        } else {
            segloss::Reduction::Mean
        };
        let options = match raw["peer"].as_str().unwrap() {
            "MONAI 1.6.1 DiceCELoss" => DiceCELoss {
                include_background: a["include_background"].as_bool().unwrap_or(true),
                sigmoid: b("sigmoid"),
                softmax: b("softmax"),
                batch: b("batch"),
                weight,
                lambda_dice: f("lambda_dice", 1.0),
                lambda_ce: f("lambda_ce", 1.0),
                label_smoothing: f("label_smoothing", 0.0),
                reduction,
                ..Default::default()
            }
            .options(),
            "MONAI 1.6.1 DiceFocalLoss" => DiceFocalLoss {
                include_background: a["include_background"].as_bool().unwrap_or(true),
                sigmoid: b("sigmoid"),
                softmax: b("softmax"),
                gamma: f("gamma", 2.0),
                alpha: a["alpha"].as_f64(),
                weight,
                lambda_dice: f("lambda_dice", 1.0),
                lambda_focal: f("lambda_focal", 1.0),
                ..Default::default()
            }
            .options(),
            _ => continue,
        };
        // MONAI's constructors carry MONAI's one-channel softmax rule; the spec's native
        // options the default.
        let mut options = options;
        assert_eq!(
            options.single_channel_softmax,
            segloss::SingleChannelSoftmax::Identity
        );
        options.single_channel_softmax = segloss::SingleChannelSoftmax::Error;
        assert_eq!(options, c.options, "{}", c.id);
        checked += 1;
    }
    assert_eq!(checked, 12);
}
