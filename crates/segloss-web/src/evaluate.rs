//! The page's `evaluate`: the request read from JavaScript (stage 1, the dropped files
//! by name), then `segloss evaluate`'s stages from `segloss-eval`: each pair decoded,
//! checked and counted (on the page's adapter, read back every
//! `segloss_eval::READ_EVERY` pairs), the results as `segloss evaluate --json` writes
//! them.

use std::collections::BTreeMap;

use js_sys::{Function, Object, Reflect, Uint8Array};
use segloss::metrics::Counting;
use segloss::Context;
use segloss_eval::Counter;
use serde_json::Value;
use wasm_bindgen::{JsCast, JsValue};

/// The files of one side (`pred` or `target`): paired name → (file name, bytes).
fn files(request: &JsValue, side: &str) -> Result<BTreeMap<String, (String, Vec<u8>)>, String> {
    let obj = Reflect::get(request, &side.into()).map_err(|_| format!("`{side}` unreadable"))?;
    let obj: &Object = obj
        .dyn_ref()
        .ok_or_else(|| format!("`{side}`: an object of file name → Uint8Array expected"))?;
    let mut out = BTreeMap::new();
    for entry in Object::entries(obj).iter() {
        let entry: js_sys::Array = entry.unchecked_into();
        let name = entry.get(0).as_string().unwrap_or_default();
        let bytes: Uint8Array = entry
            .get(1)
            .dyn_into()
            .map_err(|_| format!("{side}/{name}: a Uint8Array of the file's bytes expected"))?;
        let stem = segloss_eval::stem(&name)
            .ok_or_else(|| format!("{side}/{name}: not a .npy, .nii or .nii.gz file"))?;
        let file = format!("{side}/{name}");
        if let Some((old, _)) = out.insert(stem.clone(), (file.clone(), bytes.to_vec())) {
            return Err(format!("{old} and {file}: two files named {stem}"));
        }
    }
    Ok(out)
}

/// A number field of the request, if present.
fn number(request: &JsValue, key: &str) -> Result<Option<f64>, String> {
    let v = Reflect::get(request, &key.into()).unwrap_or(JsValue::UNDEFINED);
    if v.is_undefined() || v.is_null() {
        return Ok(None);
    }
    v.as_f64()
        .map(Some)
        .ok_or_else(|| format!("`{key}`: a number expected"))
}

/// Runs the request; an error names the file at fault.
pub async fn run(ctx: &Context, request: &JsValue) -> Result<Value, String> {
    let classes = number(request, "classes")?.ok_or("`classes`: a number expected")?;
    if !(classes >= 1.0 && classes.fract() == 0.0 && classes <= 1e6) {
        return Err(format!("`classes`: {classes} is not a positive integer"));
    }
    let c = classes as usize;
    let ignore = match number(request, "ignoreIndex")? {
        Some(v) if v.fract() == 0.0 => Some(v as i64),
        Some(v) => return Err(format!("`ignoreIndex`: {v} is not an integer")),
        None => None,
    };
    let worst_js = Reflect::get(request, &"worst".into()).unwrap_or(JsValue::UNDEFINED);
    let worst_keys: Vec<String> = if worst_js.is_undefined() || worst_js.is_null() {
        Vec::new()
    } else {
        js_sys::Array::from(&worst_js)
            .iter()
            .map(|q| q.as_f64().map(|v| v.to_string()).or_else(|| q.as_string()))
            .collect::<Option<_>>()
            .ok_or("`worst`: an array of percentages expected")?
    };
    let worst = segloss_eval::parse_worst(&worst_keys)?;
    let progress = Reflect::get(request, &"onProgress".into())
        .ok()
        .and_then(|f| f.dyn_into::<Function>().ok());
    let preds = files(request, "pred")?;
    let targets = files(request, "target")?;
    if let Some((n, (f, _))) = targets.iter().find(|(n, _)| !preds.contains_key(*n)) {
        return Err(format!("{f}: no prediction named {n}"));
    }
    if let Some((n, (f, _))) = preds.iter().find(|(n, _)| !targets.contains_key(*n)) {
        return Err(format!("{f}: no target named {n}"));
    }
    if preds.is_empty() {
        return Err("no files: `pred` and `target` are empty".into());
    }
    // The CLI's stages: decode → pair → count → report (segloss-eval).
    let mut counter = Counter::new(ctx, c, ignore, Counting::Auto)?;
    let total = preds.len();
    for (i, (name, (pf, pb))) in preds.iter().enumerate() {
        let (tf, tb) = &targets[name];
        let target = segloss_eval::decode(tf, tb)?;
        let pred = segloss_eval::decode(pf, pb)?;
        let p = segloss_eval::pair(c, (&pred, pf), (&target, tf))?;
        counter.add_async(name, (pf, tf), &p).await?;
        if let Some(f) = &progress {
            let _ = f.call3(
                &JsValue::NULL,
                &((i + 1) as f64).into(),
                &(total as f64).into(),
                &name.into(),
            );
        }
    }
    let counted = counter.finish_async(&worst).await?;
    Ok(segloss_eval::report(c, &counted))
}
