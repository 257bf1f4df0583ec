//! The browser page's loss curve through the native API, as JSON: the reference the
//! page test (crates/segloss-web/tests/page.py) compares the page's numbers with.
//!
//! `curve Y OVERLAP FORMULATION` prints `[[p, loss], ...]` (101 points).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [y, overlap, formulation] = &args[..] else {
        eprintln!("usage: curve Y dice|jaccard|tversky soft|classic|squared");
        std::process::exit(2);
    };
    let y: f32 = y.parse().unwrap_or(f32::NAN);
    let ctx = segloss::Context::new_or_cpu();
    match pollster::block_on(segloss_eval::loss_curve(&ctx, y, overlap, formulation)) {
        Ok(points) => println!("{}", serde_json::json!(points)),
        Err(e) => {
            eprintln!("curve: {e}");
            std::process::exit(1);
        }
    }
}
