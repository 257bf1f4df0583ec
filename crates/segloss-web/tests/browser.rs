//! The browser suite: segloss on the page's WebGPU adapter (headless Chromium through
//! chromedriver, `webdriver.json`; run by `build.sh --test`). Every public golden case
//! (losses, compound, Generalized Dice, metrics, multi-label metrics) through the same
//! runner and tolerances as `segloss doctor` on native adapters, the async split phases
//! and GPU-resident reads, and bad input (typed errors, the context usable afterwards).
//! No adapter is a failure, never a skip.
#![cfg(target_arch = "wasm32")]

use segloss_golden as golden;

use segloss::metrics::{Counting, Labels, Metrics, Prediction};
use segloss::{Backend, Batch, Context, Error, Loss, LossOptions, Shape};
use wasm_bindgen_test::{console_log, wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

/// The page's WebGPU context; no adapter fails the test.
async fn gpu() -> Context {
    let ctx = Context::new_async()
        .await
        .unwrap_or_else(|e| panic!("no WebGPU context in this browser: {e}"));
    match ctx.backend() {
        Backend::Gpu { .. } => ctx,
        Backend::Cpu => panic!("not a GPU context"),
    }
}

#[wasm_bindgen_test]
async fn adapter_is_webgpu() {
    let ctx = gpu().await;
    let Backend::Gpu { adapter, backend } = ctx.backend() else {
        unreachable!()
    };
    let info = segloss_web::browser_adapter_info().await;
    console_log!("browser adapter: {info}; wgpu: name {adapter:?}, backend {backend:?}");
    assert_eq!(backend, segloss::wgpu::Backend::BrowserWebGpu);
}

#[wasm_bindgen_test]
async fn every_golden_case_on_webgpu() {
    let ctx = gpu().await;
    let mut failures = Vec::new();
    let mut cases = 0;
    let start = js_sys::Date::now();
    for (family, name, text) in golden::FILES {
        let t0 = js_sys::Date::now();
        let r = golden::run(&ctx, family, name, text).await;
        let worst: Vec<String> = r
            .worst
            .iter()
            .map(|w| format!("{} {:.2e} ({})", w.what, w.error, w.case))
            .collect();
        console_log!(
            "{family}: {} cases, {} failures, {:.0} ms; worst: {}",
            r.cases,
            r.failures.len(),
            js_sys::Date::now() - t0,
            worst.join("; ")
        );
        assert!(r.cases > 0, "{name}: no case ran");
        cases += r.cases;
        failures.extend(r.failures);
    }
    console_log!(
        "golden cases in the browser: {cases} in {:.0} ms",
        js_sys::Date::now() - start
    );
    assert_eq!(cases, 142, "the six golden files hold 142 cases");
    assert!(failures.is_empty(), "{failures:#?}");
}

fn soft_batch() -> (Shape, Vec<f32>, Vec<f32>) {
    let shape = Shape::new(&[2, 3, 4]).unwrap();
    let x: Vec<f32> = (0..24).map(|i| ((i * 7 % 11) as f32 - 5.0) / 3.0).collect();
    let y: Vec<f32> = (0..24).map(|i| [0.0, 0.25, 0.5, 1.0][i * 5 % 4]).collect();
    (shape, x, y)
}

#[wasm_bindgen_test]
async fn split_phases_and_reads_match_the_one_call_api() {
    let ctx = gpu().await;
    let loss = Loss::new(&ctx, LossOptions::jaccard()).unwrap();
    let (shape, x, y) = soft_batch();
    let batch = Batch::soft(&shape, &x, &y);
    let whole = loss.forward_backward_async(&batch).await.unwrap();
    let stats = loss.stats_async(&batch).await.unwrap();
    let split = loss.finish_async(&stats, true).await.unwrap();
    // One worker: bit-identical to the one-call API (docs/SPEC.md).
    assert_eq!(split.loss.to_bits(), whole.loss.to_bits());
    assert_eq!(split.grad, whole.grad);
    // Against the f64 CPU reference at the golden tolerance.
    let cpu = Loss::new(&Context::cpu(), LossOptions::jaccard()).unwrap();
    let want = cpu.forward_backward(&batch).unwrap();
    assert!((whole.loss - want.loss).abs() <= 1e-4 * want.loss.abs() + 1e-6);
    let (g, w) = (whole.grad.unwrap(), want.grad.unwrap());
    assert_eq!(g.len(), w.len());
    let max = w.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    for (a, b) in g.iter().zip(&w) {
        assert!((a - b).abs() <= 1e-4 * max + 1e-7, "{a} vs {b}");
    }
}

#[wasm_bindgen_test]
async fn bad_input_is_a_typed_error_and_the_context_stays_usable() {
    let ctx = gpu().await;
    let loss = Loss::new(&ctx, LossOptions::dice()).unwrap();
    let (shape, x, y) = soft_batch();
    // Short target: found on the host.
    let e = loss
        .forward_async(&Batch::soft(&shape, &x, &y[..5]))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::LengthMismatch { .. }), "{e}");
    // A class index out of range: found by the kernels, reported by the readback.
    let index: Vec<u32> = (0..8).map(|i| if i == 5 { 7 } else { i % 3 }).collect();
    let e = loss
        .forward_async(&Batch::index(&shape, &x, &index))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::ClassIndexOutOfRange { .. }), "{e}");
    // NaN input.
    let mut nan = x.clone();
    nan[3] = f32::NAN;
    let e = loss
        .forward_async(&Batch::soft(&shape, &nan, &y))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NonFiniteInput { .. }), "{e}");
    // Blocking calls cannot wait in the browser: a typed error, not a hang or a panic.
    let e = loss.forward(&Batch::soft(&shape, &x, &y)).unwrap_err();
    assert!(matches!(e, Error::WouldBlock(_)), "{e}");
    assert!(matches!(Context::new(), Err(Error::WouldBlock(_))));
    // Metrics: a label out of range, then a good batch on the same accumulator's context.
    let mshape = Shape::new(&[1, 3, 4]).unwrap();
    let mut m = Metrics::new(&ctx, 3, None).unwrap().with_counting(Counting::Device);
    let bad = [0i64, 1, 9, 1];
    let pred = Prediction::LabelsI64(&[0, 1, 2, 1]);
    let e = m
        .update(&mshape, pred, Labels::I64(&bad), None)
        .unwrap_err();
    assert!(matches!(e, Error::ClassIndexOutOfRange { .. }), "{e}");
    // u32 labels go to the GPU as they are: the counting kernel finds the 9.
    let pred = Prediction::Labels(&[0, 1, 2, 1]);
    m.update(&mshape, pred, Labels::U32(&[0, 1, 9, 1]), None)
        .unwrap();
    let e = m.result_async().await.unwrap_err();
    assert!(matches!(e, Error::ClassIndexOutOfRange { .. }), "{e}");
    let mut m = Metrics::new(&ctx, 3, None).unwrap().with_counting(Counting::Device);
    m.update(
        &mshape,
        Prediction::LabelsI64(&[0, 1, 2, 1]),
        Labels::I64(&[0, 1, 2, 2]),
        None,
    )
    .unwrap();
    let r = m.result_async().await.unwrap();
    assert_eq!(r.images, 1);
    // The context still gives the right result.
    let good = loss
        .forward_async(&Batch::soft(&shape, &x, &y))
        .await
        .unwrap();
    let cpu = Loss::new(&Context::cpu(), LossOptions::dice()).unwrap();
    let want = cpu.forward(&Batch::soft(&shape, &x, &y)).unwrap();
    assert!((good.loss - want.loss).abs() <= 1e-4 * want.loss.abs() + 1e-6);
}

/// A storage buffer of the context's device holding `words`.
fn buffer(ctx: &Context, words: &[u32]) -> segloss::wgpu::Buffer {
    use segloss::wgpu::util::DeviceExt;
    ctx.device().unwrap().create_buffer_init(&segloss::wgpu::util::BufferInitDescriptor {
        label: Some("browser-test"),
        contents: bytemuck::cast_slice(words),
        usage: segloss::wgpu::BufferUsages::STORAGE | segloss::wgpu::BufferUsages::COPY_SRC,
    })
}

/// The GPU-resident calls with the caller's buffers (`Loss::encode` / `run`,
/// `Metrics::encode` / `run`) on the browser's one thread: nothing blocks (their
/// buffer probes are read at the next awaited readback), and the results equal the
/// host API's.
#[wasm_bindgen_test]
async fn resident_and_metrics_encode_calls_never_block() {
    use segloss::metrics::{GpuLabels, GpuMetricBatch, GpuPrediction};
    use segloss::{GpuBatch, GpuTarget};
    let ctx = gpu().await;
    let loss = Loss::new(&ctx, LossOptions::dice()).unwrap();
    let (shape, x, y) = soft_batch();
    let host = loss.forward_async(&Batch::soft(&shape, &x, &y)).await.unwrap();
    let xb = buffer(&ctx, &x.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
    let yb = buffer(&ctx, &y.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
    let batch = GpuBatch {
        shape: &shape,
        input: xb.slice(..),
        target: GpuTarget::Soft(yb.slice(..)),
        mask: None,
    };
    let mut encoder = ctx.device().unwrap().create_command_encoder(&Default::default());
    let r = loss.encode(&mut encoder, &batch, None).unwrap();
    ctx.queue().unwrap().submit([encoder.finish()]);
    let got = loss.read_async(&r).await.unwrap();
    assert_eq!(got.loss.to_bits(), host.loss.to_bits(), "encode: {} vs {}", got.loss, host.loss);
    let r = loss.run(&batch, None).unwrap();
    let got = loss.read_async(&r).await.unwrap();
    assert_eq!(got.loss.to_bits(), host.loss.to_bits(), "run");

    // Metrics: label maps in device buffers, recorded into the caller's encoder and
    // submitted by run, against the host update of the same labels.
    let mshape = Shape::new(&[2, 3, 8]).unwrap();
    let pred: Vec<u32> = (0..16).map(|i| (i * 7 % 3) as u32).collect();
    let target: Vec<u32> = (0..16).map(|i| (i * 5 % 3) as u32).collect();
    let mut want = Metrics::new(&ctx, 3, None).unwrap().with_counting(Counting::Device);
    want.update(&mshape, Prediction::Labels(&pred), Labels::U32(&target), None)
        .unwrap();
    let want = want.result_async().await.unwrap();
    let (pb, tb) = (buffer(&ctx, &pred), buffer(&ctx, &target));
    let gbatch = GpuMetricBatch {
        shape: &mshape,
        pred: GpuPrediction::Labels(pb.slice(..)),
        target: GpuLabels::Index(tb.slice(..)),
        mask: None,
    };
    let mut m = Metrics::new(&ctx, 3, None).unwrap().with_counting(Counting::Device);
    let mut encoder = ctx.device().unwrap().create_command_encoder(&Default::default());
    m.encode(&mut encoder, &gbatch).unwrap();
    ctx.queue().unwrap().submit([encoder.finish()]);
    m.run(&gbatch).unwrap();
    let got = m.result_async().await.unwrap();
    assert_eq!(got.images, 4);
    assert_eq!(got.miou_d.to_bits(), want.miou_d.to_bits(), "{} vs {}", got.miou_d, want.miou_d);
    // A failed readback (the blocking form, refused here) keeps the pending counts.
    let mut m = Metrics::new(&ctx, 3, None).unwrap().with_counting(Counting::Device);
    m.run(&gbatch).unwrap();
    assert!(matches!(m.result(), Err(Error::WouldBlock(_))));
    let again = m.result_async().await.unwrap();
    assert_eq!(again.images, 2, "the counts pending before WouldBlock were dropped");
}

/// Every kernel's module, for both tile geometries (CPU and GPU adapters) and both
/// alignments, through Tint, with a pipeline of its default variant: the variants the
/// golden cases do not reach still pass the browser's compiler.
#[wasm_bindgen_test]
async fn every_kernel_compiles_in_the_browser() {
    use segloss::kernels::{Geometry, Kernel, Variant};
    let ctx = gpu().await;
    let device = ctx.device().unwrap();
    let mut failures = Vec::new();
    let mut modules = 0;
    // The class-loop kernels for both geometries; on the CPU geometry also tile_sums'
    // and grad's twins unrolled over 2 and 19 classes (a fallback adapter's path).
    let mut cases = Vec::new();
    for g in [Geometry::CPU, Geometry::GPU] {
        for k in Kernel::ALL {
            for aligned in [false, true] {
                cases.push((
                    g,
                    k,
                    Variant {
                        aligned,
                        ..Variant::default()
                    },
                ));
                if g == Geometry::CPU && k.unrolled_file().is_some() {
                    for classes in [2, 19] {
                        cases.push((
                            g,
                            k,
                            Variant {
                                aligned,
                                classes,
                                ..Variant::default()
                            },
                        ));
                    }
                }
            }
        }
    }
    for (g, k, v) in cases {
        let scope = device.push_error_scope(segloss::wgpu::ErrorFilter::Validation);
        let module = device.create_shader_module(segloss::wgpu::ShaderModuleDescriptor {
            label: Some(k.name()),
            source: segloss::wgpu::ShaderSource::Wgsl(k.variant_source(g, v).into()),
        });
        let constants = v.constants();
        let constants: &[(&str, f64)] = if k.has_variants() { &constants } else { &[] };
        let _ = device.create_compute_pipeline(&segloss::wgpu::ComputePipelineDescriptor {
            label: Some(k.name()),
            layout: None,
            module: &module,
            entry_point: Some("main"),
            compilation_options: segloss::wgpu::PipelineCompilationOptions {
                constants,
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        });
        if let Some(e) = scope.pop().await {
            failures.push(format!("{} {g:?} {v:?}: {e}", k.name()));
        }
        modules += 1;
    }
    console_log!(
        "Tint: {modules} kernel modules and pipelines, {} failures",
        failures.len()
    );
    // 10 kernels × 2 geometries × 2 alignments, + 2 unrolled kernels × 2 alignments × 2
    // class counts.
    assert_eq!(modules, 40 + 8);
    assert!(failures.is_empty(), "{failures:#?}");
}
