//! Loss golden files (`public.json`, `compound.json`): every case through
//! `src/case.rs`, the parser and checks the `golden` example and
//! `tests/golden.rs` use, at the f32 tolerance (1e-4 relative; floors 1e-6 on values,
//! 1e-7 on the gradient).

use segloss::{Context, Loss};

use super::{case, Report};

/// The f32 tolerance of the GPU path and of the CPU backend's f32 results.
const REL_TOL: f64 = 1e-4;

/// Runs every case of the loss file `text` (named `name`) on `ctx`.
pub async fn run(ctx: &Context, name: &str, text: &str, report: &mut Report) {
    let cases = match case::parse(text, name) {
        Ok(c) => c,
        Err(e) => return report.fail(name, e),
    };
    for c in &cases {
        report.cases += 1;
        let got = match Loss::new(ctx, c.options.clone()) {
            Ok(loss) => c.run_async(&loss).await,
            Err(e) => Err(e.to_string()),
        };
        match got {
            Ok(got) => {
                let (value, grad) = c.errors(&got);
                report.note("value error (relative)", value, &c.id);
                report.note("gradient error (of max |grad|)", grad, &c.id);
                if let Err(e) = c.check(&got, REL_TOL) {
                    report.fail(&c.id, e);
                }
            }
            Err(e) => report.fail(&c.id, e),
        }
    }
}
