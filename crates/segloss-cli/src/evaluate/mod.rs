//! `segloss evaluate`: segmentation metrics over folders of files, on the chosen adapter
//! (or the CPU reference). It prints a table (a progress bar over the files on stderr)
//! and, with `--json`, writes the results; any bad file is an error naming it, and no
//! JSON is written then.

mod read;

use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};
use segloss::metrics::Metrics;

use crate::adapter::{self, AdapterArgs};
use crate::{AnyResult, Outcome};
use read::{files, read};

/// `segloss evaluate`'s arguments.
#[derive(clap::Args, Debug)]
#[command(
    long_about = "Segmentation metrics over folders of files: JDTLosses' mIoU / mDice at dataset (D), \
image (I) and class (C) level, the worst-case means, per class and per image.\n\n\
--pred holds NAME.npy files, each an integer label map (any integer dtype, spatial shape S) or \
float scores [C, S...] (argmax over the first axis), or NAME.nii / NAME.nii.gz label maps; \
--target holds integer label maps of the same names and spatial shapes. A missing or \
mismatched file, a label >= C other than the ignore index, a wrong dtype or shape is an error \
naming the file, and no JSON is written.",
    after_help = "Example:\n  segloss evaluate --pred preds/ --target labels/ --classes 4 --ignore-index 255 --worst 5 --json metrics.json"
)]
pub struct Args {
    /// Folder of predictions (.npy label maps or [C, S...] scores, .nii, .nii.gz).
    #[arg(long, value_name = "DIR")]
    pred: PathBuf,
    /// Folder of integer label maps with the predictions' names.
    #[arg(long, value_name = "DIR")]
    target: PathBuf,
    /// Number of classes C.
    #[arg(long, value_name = "C")]
    classes: usize,
    /// A label value that counts nowhere (e.g. 255).
    #[arg(long = "ignore-index", value_name = "K")]
    ignore: Option<i64>,
    /// Also the mean of the worst Q % of images (I) and per class (C); repeatable.
    #[arg(long, value_name = "Q")]
    worst: Vec<String>,
    /// Write the results as JSON to this file (whole, or not at all).
    #[arg(long, value_name = "OUT")]
    json: Option<PathBuf>,
    #[command(flatten)]
    adapter: AdapterArgs,
}

/// Runs `segloss evaluate`.
pub fn run(args: Args) -> AnyResult<Outcome> {
    let c = args.classes;
    let preds = files(&args.pred)?;
    let targets = files(&args.target)?;
    if let Some(n) = targets.keys().find(|n| !preds.contains_key(*n)) {
        return Err(format!("{}: no prediction named {n}", args.pred.display()).into());
    }
    if let Some(n) = preds.keys().find(|n| !targets.contains_key(*n)) {
        return Err(format!("{}: no target named {n}", args.target.display()).into());
    }
    let worst = segloss_eval::parse_worst(&args.worst)?;
    let ctx = adapter::context(&args.adapter)?;
    let mut metrics = Metrics::new(&ctx, c, args.ignore)?;
    let bar = ProgressBar::new(preds.len() as u64)
        .with_style(ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")?);
    for (name, pp) in &preds {
        bar.set_message(name.clone());
        let tp = &targets[name];
        let (target, pred) = (read(tp)?, read(pp)?);
        let (pf, tf) = (pp.display().to_string(), tp.display().to_string());
        let p = segloss_eval::pair(c, (&pred, &pf), (&target, &tf))?;
        // Read back per file, so that an error names the pair at fault.
        metrics
            .update(&p.shape, p.pred, p.target, None)
            .and_then(|()| metrics.state().map(|_| ()))
            .map_err(|e| format!("{pf} / {tf}: {e}"))?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    let r = metrics.result()?;
    let names: Vec<String> = preds.keys().cloned().collect();
    println!("{} images, {c} classes ({:?})", r.images, ctx.backend());
    println!("| level | mIoU | mDice |\n|---|---:|---:|");
    println!("| dataset | {:.4} | {:.4} |", r.miou_d, r.mdice_d);
    println!("| image | {:.4} | {:.4} |", r.miou_i, r.mdice_i);
    println!("| class | {:.4} | {:.4} |", r.miou_c, r.mdice_c);
    let mut worst_cases = Vec::new();
    for (key, q) in worst {
        let w = metrics.worst(q)?;
        println!(
            "| worst {key}% | I {:.4} / C {:.4} | I {:.4} / C {:.4} |",
            w.miou_i, w.miou_c, w.mdice_i, w.mdice_c
        );
        worst_cases.push((key, w));
    }
    if let Some(out) = &args.json {
        let doc = segloss_eval::report(c, &r, &worst_cases, &names);
        // Written whole, then renamed: no partial JSON.
        let tmp = out.with_extension("json.partial");
        std::fs::write(&tmp, serde_json::to_string_pretty(&doc)?)?;
        std::fs::rename(&tmp, out)?;
        println!("wrote {}", out.display());
    }
    Ok(Outcome::Ok)
}
