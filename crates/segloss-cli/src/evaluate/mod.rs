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
    #[arg(long = "ignore-index", value_name = "K", allow_negative_numbers = true)]
    ignore: Option<i64>,
    /// Also the mean of the worst Q % of images (I) and per class (C); repeatable.
    #[arg(long, value_name = "Q")]
    worst: Vec<String>,
    /// Write the results as JSON to this file (whole, or not at all: an earlier run's
    /// file is removed first), or to standard output with `-` (the table then goes to
    /// stderr).
    #[arg(long, value_name = "OUT")]
    json: Option<PathBuf>,
    #[command(flatten)]
    adapter: AdapterArgs,
}

/// Where `--json` goes.
enum JsonOut {
    None,
    Stdout,
    File(PathBuf),
}

impl JsonOut {
    /// `--json`'s target; an earlier run's file is removed before anything is read, so
    /// that a failing run leaves no stale results behind.
    fn new(arg: &Option<PathBuf>) -> AnyResult<Self> {
        Ok(match arg {
            None => JsonOut::None,
            Some(p) if p.as_os_str() == "-" => JsonOut::Stdout,
            Some(p) => {
                match std::fs::remove_file(p) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(format!("--json {}: {e}", p.display()).into())
                    }
                    _ => {}
                }
                JsonOut::File(p.clone())
            }
        })
    }

    /// The table's lines go to stdout, or to stderr when stdout carries the JSON.
    fn line(&self, text: &str) {
        match self {
            JsonOut::Stdout => eprintln!("{text}"),
            _ => println!("{text}"),
        }
    }

    fn write(&self, doc: &serde_json::Value) -> AnyResult<()> {
        let text = serde_json::to_string_pretty(doc)?;
        match self {
            JsonOut::None => {}
            JsonOut::Stdout => println!("{text}"),
            JsonOut::File(out) => {
                // Written whole beside the target, then renamed: no partial JSON.
                let mut name = out.file_name().unwrap_or_default().to_os_string();
                name.push(".partial");
                let tmp = out.with_file_name(name);
                std::fs::write(&tmp, text).map_err(|e| format!("{}: {e}", tmp.display()))?;
                std::fs::rename(&tmp, out).map_err(|e| format!("{}: {e}", out.display()))?;
                println!("wrote {}", out.display());
            }
        }
        Ok(())
    }
}

/// Runs `segloss evaluate`.
pub fn run(args: Args) -> AnyResult<Outcome> {
    let json = JsonOut::new(&args.json)?;
    let c = args.classes;
    let (preds, others) = files(&args.pred)?;
    let (targets, _) = files(&args.target)?;
    if let Some(n) = targets.keys().find(|n| !preds.contains_key(*n)) {
        return Err(format!("{}: no prediction named {n}", args.pred.display()).into());
    }
    if let Some(n) = preds.keys().find(|n| !targets.contains_key(*n)) {
        return Err(format!("{}: no target named {n}", args.target.display()).into());
    }
    if preds.is_empty() {
        // Both folders are empty of arrays: no images is an error, not a perfect score.
        return Err(format!(
            "{}: no .npy, .nii or .nii.gz file ({others} other entries)",
            args.pred.display()
        )
        .into());
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
    json.line(&format!(
        "{} images, {c} classes ({:?})",
        r.images,
        ctx.backend()
    ));
    json.line("| level | mIoU | mDice |\n|---|---:|---:|");
    json.line(&format!("| dataset | {:.4} | {:.4} |", r.miou_d, r.mdice_d));
    json.line(&format!("| image | {:.4} | {:.4} |", r.miou_i, r.mdice_i));
    json.line(&format!("| class | {:.4} | {:.4} |", r.miou_c, r.mdice_c));
    let mut worst_cases = Vec::new();
    for (key, q) in worst {
        let w = metrics.worst(q)?;
        json.line(&format!(
            "| worst {key}% | I {:.4} / C {:.4} | I {:.4} / C {:.4} |",
            w.miou_i, w.miou_c, w.mdice_i, w.mdice_c
        ));
        worst_cases.push((key, w));
    }
    json.write(&segloss_eval::report(c, &r, &worst_cases, &names))?;
    Ok(Outcome::Ok)
}
