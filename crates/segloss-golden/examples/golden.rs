//! Runs every case of a golden file through segloss on the GPU (or the CPU reference
//! with `--cpu`), prints one line per failing case and ends with `N passed, M failed`.
//!
//! `cargo run --release -p segloss-golden --example golden -- crates/segloss-golden/golden/public.json [--dump OUT.json] [--cpu]`

use segloss::{Context, Loss};
use segloss_golden::case;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut path = None;
    let mut dump = None;
    let mut cpu = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--dump" => dump = it.next().cloned(),
            "--cpu" => cpu = true,
            p => path = Some(p.to_string()),
        }
    }
    let Some(path) = path else {
        eprintln!("usage: golden FILE.json [--dump OUT.json] [--cpu]");
        std::process::exit(2);
    };
    let ctx = if cpu {
        Context::cpu()
    } else {
        match Context::new() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("no GPU: {e} (use --cpu for the reference backend)");
                std::process::exit(2);
            }
        }
    };
    eprintln!("backend: {:?}", ctx.backend());
    let cases = match case::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let (mut passed, mut failed) = (0, 0);
    let (mut worst_v, mut worst_g) = (0.0f64, 0.0f64);
    let mut dumped = Vec::new();
    for c in &cases {
        let result = Loss::new(&ctx, c.options.clone())
            .map_err(|e| e.to_string())
            .and_then(|loss| c.run(&loss));
        match result {
            Ok(got) => {
                let (ev, eg) = c.errors(&got);
                worst_v = worst_v.max(ev);
                worst_g = worst_g.max(eg);
                match c.check(&got, 1e-4) {
                    Ok(()) => passed += 1,
                    Err(e) => {
                        failed += 1;
                        println!("FAIL {}: {e}", c.id);
                    }
                }
                dumped.push(serde_json::json!({
                    "id": c.id, "loss": got.loss, "loss_values": got.values, "grad": got.grad,
                }));
            }
            Err(e) => {
                failed += 1;
                println!("FAIL {}: {e}", c.id);
                dumped.push(serde_json::json!({"id": c.id, "error": e}));
            }
        }
    }
    if let Some(out) = dump {
        let doc = serde_json::json!({ "cases": dumped });
        if let Err(e) = std::fs::write(&out, doc.to_string()) {
            eprintln!("--dump {out}: {e}");
            std::process::exit(2);
        }
    }
    println!("worst relative value error {worst_v:.3e}, worst gradient error {worst_g:.3e} (of max |grad|)");
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}
