//! `evaluate`: segmentation metrics over folders of files, on the GPU (or the CPU
//! fallback).
//!
//! ```text
//! cargo run --release --example evaluate -- --pred DIR --target DIR --classes C \
//!     [--ignore-index K] [--worst Q]... [--json OUT]
//! ```
//! `--pred` holds `NAME.npy` files, each an integer label map (any integer dtype, spatial
//! shape S) or float scores `[C, S...]` (argmax over the first axis), or `NAME.nii` /
//! `NAME.nii.gz` label maps; `--target` holds integer label maps with the same names and
//! spatial shapes. It prints a table (a progress bar over the files on stderr) and, with
//! `--json`, writes the results; any bad file is an error naming it, and no JSON is
//! written then.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use segloss::metrics::{Labels, Metrics, Prediction};
use segloss::{Context, Shape};
use serde_json::{json, Value};

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

struct Args {
    pred: PathBuf,
    target: PathBuf,
    classes: usize,
    ignore: Option<i64>,
    worst: Vec<String>,
    json: Option<PathBuf>,
}

fn parse_args() -> AnyResult<Args> {
    let mut a = std::env::args().skip(1);
    let (mut pred, mut target, mut classes, mut ignore, mut worst, mut json) =
        (None, None, None, None, Vec::new(), None);
    while let Some(k) = a.next() {
        let mut v = || a.next().ok_or_else(|| format!("{k} needs a value"));
        match k.as_str() {
            "--pred" => pred = Some(PathBuf::from(v()?)),
            "--target" => target = Some(PathBuf::from(v()?)),
            "--classes" => classes = Some(v()?.parse()?),
            "--ignore-index" => ignore = Some(v()?.parse()?),
            "--worst" => worst.push(v()?),
            "--json" => json = Some(PathBuf::from(v()?)),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    Ok(Args {
        pred: pred.ok_or("--pred DIR is required")?,
        target: target.ok_or("--target DIR is required")?,
        classes: classes.ok_or("--classes C is required")?,
        ignore,
        worst,
        json,
    })
}

/// A file's array: integer labels or float scores, with its shape.
enum Array {
    Labels(Vec<i64>, Vec<usize>),
    Scores(Vec<f32>, Vec<usize>),
}

fn stem(p: &Path) -> Option<String> {
    let name = p.file_name()?.to_str()?;
    [".nii.gz", ".nii", ".npy"]
        .iter()
        .find_map(|ext| name.strip_suffix(ext))
        .map(str::to_string)
}

/// The supported files of `dir` by name.
fn files(dir: &Path) -> AnyResult<BTreeMap<String, PathBuf>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let p = e?.path();
        if let Some(s) = stem(&p) {
            if let Some(old) = out.insert(s.clone(), p.clone()) {
                return Err(
                    format!("{} and {}: two files named {s}", old.display(), p.display()).into(),
                );
            }
        }
    }
    Ok(out)
}

fn read_npy(p: &Path) -> AnyResult<Array> {
    use npyz::{DType, TypeChar};
    let bytes = std::fs::read(p)?;
    let f = npyz::NpyFile::new(&bytes[..])?;
    let shape: Vec<usize> = f.shape().iter().map(|&d| d as usize).collect();
    if f.order() == npyz::Order::Fortran {
        return Err("Fortran-ordered arrays are not supported".into());
    }
    let DType::Plain(t) = f.dtype() else {
        return Err("a structured dtype, integers or floats expected".into());
    };
    let labels = |v: Vec<i64>| Ok(Array::Labels(v, shape.clone()));
    match (t.type_char(), t.size_field()) {
        (TypeChar::Int, 1) => labels(f.into_vec::<i8>()?.into_iter().map(i64::from).collect()),
        (TypeChar::Int, 2) => labels(f.into_vec::<i16>()?.into_iter().map(i64::from).collect()),
        (TypeChar::Int, 4) => labels(f.into_vec::<i32>()?.into_iter().map(i64::from).collect()),
        (TypeChar::Int, 8) => labels(f.into_vec::<i64>()?),
        (TypeChar::Uint, 1) => labels(f.into_vec::<u8>()?.into_iter().map(i64::from).collect()),
        (TypeChar::Uint, 2) => labels(f.into_vec::<u16>()?.into_iter().map(i64::from).collect()),
        (TypeChar::Uint, 4) => labels(f.into_vec::<u32>()?.into_iter().map(i64::from).collect()),
        (TypeChar::Uint, 8) => labels(
            f.into_vec::<u64>()?
                .into_iter()
                .map(|v| i64::try_from(v).unwrap_or(i64::MAX))
                .collect(),
        ),
        (TypeChar::Float, 4) => Ok(Array::Scores(f.into_vec::<f32>()?, shape)),
        (TypeChar::Float, 8) => Ok(Array::Scores(
            f.into_vec::<f64>()?.into_iter().map(|v| v as f32).collect(),
            shape,
        )),
        _ => Err(format!("dtype {t} not supported (integers or floats)").into()),
    }
}

fn read_nifti(p: &Path) -> AnyResult<Array> {
    use nifti::{NiftiObject, NiftiType, NiftiVolume, ReaderOptions};
    let obj = ReaderOptions::new().read_file(p)?;
    let dtype = obj.header().data_type()?;
    let vol = obj.into_volume();
    let shape: Vec<usize> = vol.dim().iter().map(|&d| usize::from(d)).collect();
    let v: Vec<i64> = match dtype {
        NiftiType::Uint8 => vol
            .into_nifti_typed_data::<u8>()?
            .into_iter()
            .map(i64::from)
            .collect(),
        NiftiType::Int8 => vol
            .into_nifti_typed_data::<i8>()?
            .into_iter()
            .map(i64::from)
            .collect(),
        NiftiType::Int16 => vol
            .into_nifti_typed_data::<i16>()?
            .into_iter()
            .map(i64::from)
            .collect(),
        NiftiType::Uint16 => vol
            .into_nifti_typed_data::<u16>()?
            .into_iter()
            .map(i64::from)
            .collect(),
        NiftiType::Int32 => vol
            .into_nifti_typed_data::<i32>()?
            .into_iter()
            .map(i64::from)
            .collect(),
        NiftiType::Uint32 => vol
            .into_nifti_typed_data::<u32>()?
            .into_iter()
            .map(i64::from)
            .collect(),
        NiftiType::Int64 => vol.into_nifti_typed_data::<i64>()?,
        other => {
            return Err(format!("NIfTI data type {other:?}: an integer label map expected").into())
        }
    };
    Ok(Array::Labels(v, shape))
}

fn read(p: &Path) -> AnyResult<Array> {
    let name = p.to_string_lossy();
    let r = if name.ends_with(".npy") {
        read_npy(p)
    } else {
        read_nifti(p)
    };
    r.map_err(|e| format!("{}: {e}", p.display()).into())
}

/// A finite value, or JSON null.
fn num(v: f64) -> Value {
    if v.is_finite() {
        json!(v)
    } else {
        Value::Null
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> AnyResult<()> {
    let args = parse_args()?;
    let c = args.classes;
    let preds = files(&args.pred)?;
    let targets = files(&args.target)?;
    if let Some(n) = targets.keys().find(|n| !preds.contains_key(*n)) {
        return Err(format!("{}: no prediction named {n}", args.pred.display()).into());
    }
    if let Some(n) = preds.keys().find(|n| !targets.contains_key(*n)) {
        return Err(format!("{}: no target named {n}", args.target.display()).into());
    }
    let worst: Vec<(String, f64)> = args
        .worst
        .iter()
        .map(|q| {
            Ok((
                q.clone(),
                q.parse::<f64>().map_err(|e| format!("--worst {q}: {e}"))?,
            ))
        })
        .collect::<AnyResult<_>>()?;
    let ctx = Context::new_or_cpu();
    let mut metrics = Metrics::new(&ctx, c, args.ignore)?;
    let bar = ProgressBar::new(preds.len() as u64)
        .with_style(ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")?);
    for (name, pp) in &preds {
        bar.set_message(name.clone());
        let tp = &targets[name];
        let Array::Labels(label, s) = read(tp)? else {
            return Err(format!(
                "{}: a float target, an integer label map expected",
                tp.display()
            )
            .into());
        };
        let pred = read(pp)?;
        let (spatial, pred) = match &pred {
            Array::Labels(p, ps) => (ps.clone(), Prediction::LabelsI64(p)),
            Array::Scores(x, ps) => {
                if ps.first() != Some(&c) {
                    return Err(format!(
                        "{}: scores of shape {ps:?}, [{c}, S...] expected",
                        pp.display()
                    )
                    .into());
                }
                (ps[1..].to_vec(), Prediction::Scores(x))
            }
        };
        if spatial != s {
            return Err(format!(
                "{}: spatial shape {spatial:?}, the target's is {s:?}",
                pp.display()
            )
            .into());
        }
        let mut dims = vec![1, c];
        dims.extend(&s);
        let shape = Shape::new(&dims).map_err(|e| format!("{}: {e}", pp.display()))?;
        metrics
            .update(&shape, pred, Labels::I64(&label), None)
            .and_then(|()| metrics.state().map(|_| ()))
            .map_err(|e| format!("{} / {}: {e}", pp.display(), tp.display()))?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    let r = metrics.result()?;
    let names: Vec<&String> = preds.keys().collect();
    println!("{} images, {c} classes ({:?})", r.images, ctx.backend());
    println!("| level | mIoU | mDice |\n|---|---:|---:|");
    println!("| dataset | {:.4} | {:.4} |", r.miou_d, r.mdice_d);
    println!("| image | {:.4} | {:.4} |", r.miou_i, r.mdice_i);
    println!("| class | {:.4} | {:.4} |", r.miou_c, r.mdice_c);
    let mut worst_json = serde_json::Map::new();
    for (key, q) in &worst {
        let w = metrics.worst(*q)?;
        println!(
            "| worst {key}% | I {:.4} / C {:.4} | I {:.4} / C {:.4} |",
            w.miou_i, w.miou_c, w.mdice_i, w.mdice_c
        );
        worst_json.insert(
            key.clone(),
            json!({"miou_i": num(w.miou_i), "mdice_i": num(w.mdice_i),
                   "miou_c": num(w.miou_c), "mdice_c": num(w.mdice_c)}),
        );
    }
    if let Some(out) = &args.json {
        let opt = |v: &Option<f64>| v.map_or(Value::Null, num);
        let doc = json!({
            "images": r.images, "classes": c,
            "miou_d": num(r.miou_d), "mdice_d": num(r.mdice_d),
            "miou_i": num(r.miou_i), "mdice_i": num(r.mdice_i),
            "miou_c": num(r.miou_c), "mdice_c": num(r.mdice_c),
            "iou_d_per_class": r.iou_d_per_class.iter().map(opt).collect::<Vec<_>>(),
            "dice_d_per_class": r.dice_d_per_class.iter().map(opt).collect::<Vec<_>>(),
            "worst": worst_json,
            "per_image": r.per_image.iter().zip(&names).map(|(s, n)| json!({
                "name": n, "miou": opt(&s.miou), "mdice": opt(&s.mdice)
            })).collect::<Vec<_>>(),
        });
        // Written whole, then renamed: no partial JSON.
        let tmp = out.with_extension("json.partial");
        std::fs::write(&tmp, serde_json::to_string_pretty(&doc)?)?;
        std::fs::rename(&tmp, out)?;
        println!("wrote {}", out.display());
    }
    Ok(())
}
