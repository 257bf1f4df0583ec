//! segloss in the browser: the module of the demo page (`www/`), which hands its two
//! operations to JavaScript (the page's script sets them on `window.segloss`):
//!
//! - `lossCurve(y, overlap, formulation)` → `[[p, loss], ...]` over p ∈ [0, 1]: the loss
//!   of one pixel with soft label `y` against its prediction, computed by segloss's
//!   kernels on the page's WebGPU adapter;
//! - `evaluate({pred, target, classes, ignoreIndex, worst, onProgress})` → the
//!   `segloss evaluate --json` object for files given as bytes (`.npy`, `.nii`,
//!   `.nii.gz`), or a rejected promise whose message names the file at fault.
//!
//! Nothing leaves the page: the files are read by the browser and counted on its GPU.
//! Every call is async (WebGPU's `mapAsync` through the browser's event loop).

mod evaluate;

use std::cell::RefCell;

use segloss::{Backend, Context};
use wasm_bindgen::prelude::*;

thread_local! {
    /// The page's one context, made on first use.
    static CONTEXT: RefCell<Option<Context>> = const { RefCell::new(None) };
}

/// The page's context: WebGPU when the browser offers an adapter, else segloss's CPU
/// reference (the reason is kept; [`adapter`] shows it).
pub(crate) async fn context() -> Context {
    if let Some(ctx) = CONTEXT.with(|c| c.borrow().clone()) {
        return ctx;
    }
    let ctx = Context::new_or_cpu_async().await;
    CONTEXT.with(|c| *c.borrow_mut() = Some(ctx.clone()));
    ctx
}

/// A JavaScript `Error` with `message`.
pub(crate) fn error(message: impl std::fmt::Display) -> JsValue {
    js_sys::Error::new(&message.to_string()).into()
}

/// The browser's own words for its WebGPU adapter (`GPUAdapterInfo`: vendor,
/// architecture, description, and whether it is a fallback adapter), which wgpu's
/// `AdapterInfo` does not carry through (its name is the often empty description).
pub async fn browser_adapter_info() -> String {
    let ask = js_sys::Function::new_no_args(
        "if (!navigator.gpu) return Promise.resolve('no navigator.gpu');\
         return navigator.gpu.requestAdapter().then(a => !a ? 'no adapter' :\
           `vendor \"${a.info.vendor}\", architecture \"${a.info.architecture}\"` +\
           (a.info.description ? `, \"${a.info.description}\"` : '') +\
           (a.info.isFallbackAdapter ? ' (fallback adapter)' : ''));",
    );
    let promise = match ask.call0(&JsValue::NULL) {
        Ok(p) => js_sys::Promise::from(p),
        Err(_) => return "unknown".into(),
    };
    match wasm_bindgen_futures::JsFuture::from(promise).await {
        Ok(v) => v.as_string().unwrap_or_else(|| "unknown".into()),
        Err(_) => "unknown".into(),
    }
}

/// Where the page computes: the WebGPU adapter (the browser's words for it), or the
/// CPU reference and why.
#[wasm_bindgen]
pub async fn adapter() -> String {
    let ctx = context().await;
    match ctx.backend() {
        Backend::Gpu { backend, .. } => {
            format!("WebGPU ({backend:?}): {}", browser_adapter_info().await)
        }
        Backend::Cpu => format!(
            "segloss's CPU reference (no WebGPU: {})",
            ctx.fallback_reason().unwrap_or("none requested")
        ),
    }
}

/// `[[p, loss], ...]` (101 points, p = 0 … 1) for one pixel with label `y`:
/// `overlap` is `"dice"`, `"jaccard"` or `"tversky"` (α 0.3, β 0.7), `formulation`
/// `"soft"`, `"classic"` or `"squared"`.
#[wasm_bindgen(js_name = lossCurve)]
pub async fn loss_curve(y: f64, overlap: String, formulation: String) -> Result<JsValue, JsValue> {
    let ctx = context().await;
    let points = segloss_eval::loss_curve(&ctx, y as f32, &overlap, &formulation)
        .await
        .map_err(error)?;
    let out = js_sys::Array::new();
    for [p, l] in points {
        let pair = js_sys::Array::of2(&f64::from(p).into(), &f64::from(l).into());
        out.push(&pair);
    }
    Ok(out.into())
}

/// `segloss evaluate` on files given as bytes: `{pred: {NAME: Uint8Array}, target:
/// {NAME: Uint8Array}, classes, ignoreIndex?, worst?: [Q...], onProgress?: (done,
/// total, name) => void}`, files paired by name without `.npy` / `.nii` / `.nii.gz`.
/// Resolves to the JSON object `segloss evaluate --json` writes.
#[wasm_bindgen]
pub async fn evaluate(request: JsValue) -> Result<JsValue, JsValue> {
    let ctx = context().await;
    let doc = evaluate::run(&ctx, &request).await.map_err(error)?;
    js_sys::JSON::parse(&doc.to_string())
}
