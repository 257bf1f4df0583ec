//! `segloss evaluate`: segmentation metrics over folders of files, on the chosen adapter
//! (or the CPU reference). It prints a table (a progress bar over the files on stderr)
//! and, with `--json`, writes the results; any bad file is an error naming it, and no
//! JSON is written then.
//!
//! The pipeline, one stage per module: list ([`list`]) → decode ([`stream`], on its own
//! thread, a bounded queue ahead) → pair → count → report (`segloss-eval`, shared with
//! the browser page).

mod list;
mod stream;

use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};
use segloss::metrics::Counting;
use segloss_eval::Counter;

use crate::adapter::{self, AdapterArgs};
use crate::{AnyResult, Outcome};

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

/// How long the default counts on the host before it looks for an adapter.
const LOOK_AFTER: std::time::Duration = std::time::Duration::from_millis(500);

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
    let jobs = list::pairs(&args.pred, &args.target)?;
    let worst = segloss_eval::parse_worst(&args.worst)?;
    // A named adapter or backend (or --cpu) is counted on. Otherwise the faster path:
    // the host counts from the start; a dataset still being counted after LOOK_AFTER
    // has the adapter Context::new() would pick looked for, on a thread of its own while
    // the host goes on: a CPU adapter leaves the counting where it is (no device is
    // opened), a GPU takes over the counts so far and counts the rest. A dataset counted
    // before then never pays for the adapter's start-up (0.1 s on lavapipe).
    let named = args.adapter.backend.is_some() || args.adapter.adapter.is_some();
    let auto = !(args.adapter.cpu || named);
    let mut on = None;
    let mut counter = if auto {
        Counter::new(&segloss::Context::cpu(), c, args.ignore, Counting::Host)?
    } else {
        let ctx = adapter::context(&args.adapter)?;
        if let segloss::Backend::Gpu { adapter, backend } = ctx.backend() {
            on = Some(format!("{adapter}, {backend:?}"));
        }
        Counter::new(&ctx, c, args.ignore, Counting::Device)?
    };
    let (mut chooser, mut looked) = (None, false);
    let started = std::time::Instant::now();
    let bar = ProgressBar::new(jobs.len() as u64).with_style(ProgressStyle::with_template(
        "{bar:30} {pos}/{len} {per_sec} {msg}",
    )?);
    stream::each_pair(&jobs, |d| {
        if auto && !looked && started.elapsed() >= LOOK_AFTER {
            looked = true;
            let flags = args.adapter.clone();
            chooser = Some(std::thread::spawn(move || auto_context(&flags)));
        }
        if chooser.as_ref().is_some_and(|t| t.is_finished()) {
            on = take_over(chooser.take(), &mut counter)?;
        }
        bar.set_message(d.name.clone());
        let (pf, tf) = (&d.files.0, &d.files.1);
        let p = segloss_eval::pair(c, (&d.pred, pf), (&d.target, tf))?;
        counter.add(&d.name, (pf, tf), &p)?;
        bar.inc(1);
        Ok(())
    })?;
    bar.finish_and_clear();
    if chooser.is_some() {
        on = take_over(chooser, &mut counter)?;
    } else if auto && !looked {
        on = Some(format!(
            "counted on the host in {:.2} s, before an adapter was needed",
            started.elapsed().as_secs_f64()
        ));
    }
    let on = on.unwrap_or_else(|| "segloss's CPU reference".to_string());
    let counted = counter.finish(&worst)?;
    for line in segloss_eval::table(c, &on, &counted) {
        json.line(&line);
    }
    json.write(&segloss_eval::report(c, &counted))?;
    Ok(Outcome::Ok)
}

/// The default's adapter: `Some(context)` for a GPU (counted on), `None` when the host
/// counts, with the words the table says it with.
type AutoChoice = (Option<segloss::Context>, String);

/// Chooses as `Context::new()` does; a CPU adapter (Counting::Auto) opens no device.
fn auto_context(flags: &AdapterArgs) -> Result<AutoChoice, String> {
    let adapters = adapter::list(flags);
    match adapter::choose(&adapters, flags).map_err(|e| e.to_string())? {
        Some((_, a)) if Counting::Auto.on_host(&a.get_info()) => Ok((
            None,
            format!(
                "counted on the host: {} is a CPU adapter",
                a.get_info().name
            ),
        )),
        Some((_, a)) => {
            let ctx = adapter::open(&a).map_err(|e| e.to_string())?;
            let i = a.get_info();
            Ok((Some(ctx), format!("{}, {:?}", i.name, i.backend)))
        }
        None => {
            eprintln!("{}", adapter::fallback_notice());
            Ok((None, "segloss's CPU reference (no adapter)".to_string()))
        }
    }
}

/// The host counter handed to the chosen adapter's context (when it is a GPU); the
/// table's words for where it counted.
fn take_over(
    chooser: Option<std::thread::JoinHandle<Result<AutoChoice, String>>>,
    counter: &mut Counter,
) -> AnyResult<Option<String>> {
    let Some(t) = chooser else {
        return Ok(None);
    };
    let (ctx, on) = t.join().map_err(|_| "the adapter thread panicked")??;
    Ok(match ctx {
        Some(ctx) => {
            counter.move_to(&ctx, Counting::Auto)?;
            match counter.len() {
                0 => Some(on),
                n => Some(format!(
                    "{on}; the first {n} counted on the host while it opened"
                )),
            }
        }
        None => Some(on),
    })
}
