//! Hostile inputs, numerical edge cases, property tests against the f64 reference,
//! concurrency on one context, device errors, and an (ignored) soak test.

mod common;

use std::sync::OnceLock;

use common::{Data, Rng};
use proptest::prelude::*;
use segloss::metrics::{Counting, Labels, Metrics, Prediction};
use segloss::{
    Activation, ActiveClasses, Aggregation, Batch, Context, Error, Formulation, GpuBatch,
    GpuTarget, Loss, LossOptions, Overlap, Reduction, Shape, Target,
};

/// One GPU context for the whole file (pipelines compile once).
fn gpu() -> Option<&'static Context> {
    static CTX: OnceLock<Option<Context>> = OnceLock::new();
    CTX.get_or_init(common::gpu).as_ref()
}

fn contexts() -> Vec<Context> {
    let mut v = vec![Context::cpu()];
    v.extend(gpu().cloned());
    v
}

fn finite(out: &segloss::LossOutput) -> bool {
    out.loss.is_finite()
        && out.values.iter().flatten().all(|v| v.is_finite())
        && out.grad.iter().flatten().all(|v| v.is_finite())
}

#[test]
fn more_bad_inputs_give_typed_errors_or_defined_results() {
    let mut rng = Rng::new(51);
    let mut tried = 0;
    for ctx in contexts() {
        let on_gpu = ctx.device().is_some();
        let good = Data::random(&mut rng, &[2, 3, 9, 7], true, false);
        let o = LossOptions::dice().smoothing(1e-3, 1e-3);
        let loss = common::loss(&ctx, o.clone());
        let want = good.reference(&o);
        let still_ok = |what: &str| {
            let out = loss.forward_backward(&good.batch()).unwrap();
            common::assert_close(what, &out, &want, 1e-4);
        };
        let s = &good.shape;
        let expect =
            |what: &str, r: segloss::Result<segloss::LossOutput>, ok: fn(&Error) -> bool| match r {
                Err(e) => assert!(ok(&e), "{what}: wrong error {e:?}"),
                Ok(out) => panic!("{what}: accepted (loss {})", out.loss),
            };

        // Logits all -inf / all +inf: non-finite input.
        for v in [f32::NEG_INFINITY, f32::INFINITY] {
            let x = vec![v; s.len()];
            expect(
                "infinite logits",
                loss.forward_backward(&Batch::index(s, &x, &good.index)),
                |e| matches!(e, Error::NonFiniteInput { .. }),
            );
            still_ok("after infinite logits");
            tried += 1;
        }
        // u32::MAX and i64::MAX class indices (no ignore_index).
        let mut idx = good.index.clone();
        idx[4] = u32::MAX;
        expect(
            "u32::MAX index",
            loss.forward_backward(&Batch::index(s, &good.input, &idx)),
            |e| matches!(e, Error::ClassIndexOutOfRange { .. }),
        );
        let mut idx64: Vec<i64> = good.index.iter().map(|&v| i64::from(v)).collect();
        idx64[0] = i64::MAX;
        let b = Batch {
            shape: s,
            input: &good.input,
            target: Target::IndexI64(&idx64),
            mask: None,
        };
        expect("i64::MAX index", loss.forward_backward(&b), |e| {
            matches!(
                e,
                Error::ClassIndexOutOfRange {
                    value: Some(i64::MAX),
                    ..
                }
            )
        });
        still_ok("after bad indices");
        tried += 2;
        // Options with NaN: threshold, gamma, class weight.
        for (name, bad) in [
            (
                "active_classes.threshold",
                o.clone().active_classes(ActiveClasses::Present {
                    threshold: f64::NAN,
                }),
            ),
            ("gamma", o.clone().gamma(f64::NAN)),
            (
                "class_weights",
                o.clone().class_weights(vec![1.0, f64::NAN, 1.0]),
            ),
        ] {
            assert!(
                matches!(Loss::new(&ctx, bad), Err(Error::InvalidOption { name: n, .. }) if n == name),
                "{name}"
            );
            tried += 1;
        }
        // ignore_index equal to a real class: that class's pixels are ignored (defined).
        let oi = o.clone().ignore_index(1);
        let out = common::loss(&ctx, oi.clone())
            .forward_backward(&good.batch())
            .unwrap();
        common::assert_close("ignore a real class", &out, &good.reference(&oi), 1e-4);
        tried += 1;
        // A target entirely equal to ignore_index: loss 0 and gradient 0 (s_nr = s_dr).
        let all_ignored = vec![255u32; s.map_len()];
        let out = common::loss(&ctx, o.clone().ignore_index(255))
            .forward_backward(&Batch::index(s, &good.input, &all_ignored))
            .unwrap();
        assert_eq!(out.loss, 0.0);
        assert!(out.grad.unwrap().iter().all(|g| *g == 0.0));
        tried += 1;
        // Huge C: more classes than a dispatch dimension allows (folded dispatches, class
        // chunks on the GPU): the same loss as the CPU reference.
        let huge = Shape::new(&[1, 70_000, 1]).unwrap();
        let x = vec![0.0f32; huge.len()];
        let y = vec![0.5f32; huge.len()];
        let r = common::loss(&ctx, o.clone()).forward(&Batch::soft(&huge, &x, &y));
        let want = common::loss(&segloss::Context::cpu(), o.clone())
            .forward(&Batch::soft(&huge, &x, &y))
            .unwrap();
        let got = r.unwrap().loss;
        assert!(
            (got - want.loss).abs() <= 1e-4 * want.loss.abs(),
            "huge C: {got} vs {}",
            want.loss
        );
        // Beyond the documented GPU limits: a typed error, never a wrong value.
        if on_gpu {
            let over = Shape::new(&[1, segloss::MAX_CLASSES + 1, 1]).unwrap();
            let x = vec![0.0f32; over.len()];
            let y = vec![0.5f32; over.len()];
            let r = common::loss(&ctx, o.clone()).forward(&Batch::soft(&over, &x, &y));
            assert!(
                matches!(r, Err(Error::TooLarge(_))),
                "over MAX_CLASSES: {r:?}"
            );
        }
        still_ok("after huge C");
        tried += 1;
    }

    let Some(ctx) = gpu() else { return };
    // GPU-resident: mismatched element types and sizes, missing usages.
    let dev = ctx.device().unwrap();
    let shape = Shape::new(&[2, 3, 10, 10]).unwrap();
    let mk = |bytes: usize, usage| {
        dev.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: bytes as u64,
            usage,
            mapped_at_creation: false,
        })
    };
    let st = wgpu::BufferUsages::STORAGE;
    let x = mk(4 * shape.len(), st);
    let index_sized = mk(4 * shape.map_len(), st);
    let small_mask = mk(4, st);
    let no_storage_grad = mk(4 * shape.len(), wgpu::BufferUsages::COPY_SRC);
    let loss = common::loss(ctx, LossOptions::dice());
    let gb = |target, mask| GpuBatch {
        shape: &shape,
        input: x.slice(..),
        target,
        mask,
    };
    for (what, b, grad, name) in [
        (
            "soft target given an index-sized u32 buffer",
            gb(GpuTarget::Soft(index_sized.slice(..)), None),
            None,
            "target",
        ),
        (
            "mask too small",
            gb(
                GpuTarget::Index(index_sized.slice(..)),
                Some(small_mask.slice(..)),
            ),
            None,
            "mask",
        ),
        (
            "grad without STORAGE",
            gb(GpuTarget::Index(index_sized.slice(..)), None),
            Some(no_storage_grad.slice(..)),
            "grad",
        ),
    ] {
        let r = loss.run(&b, grad);
        assert!(
            matches!(&r, Err(Error::InvalidBuffer { name: n, .. }) if *n == name),
            "{what}: {r:?}"
        );
        tried += 1;
    }
    eprintln!("bad inputs tried here: {tried} (plus tests/errors.rs)");
}

#[test]
fn numerical_edge_cases_stay_finite() {
    let mut rng = Rng::new(52);
    for ctx in contexts() {
        // Logits of ±1e4: the softmax subtracts the max, no overflow.
        let mut data = Data::random(&mut rng, &[2, 4, 11, 13], false, false);
        for v in data.input.iter_mut() {
            *v = if rng.bool() { 1e4 } else { -1e4 } * rng.f64() as f32;
        }
        let o = LossOptions::dice();
        let out = common::loss(&ctx, o.clone())
            .forward_backward(&data.batch())
            .unwrap();
        assert!(finite(&out));
        common::assert_close("±1e4 logits", &out, &data.reference(&o), 1e-4);

        // Every pixel masked out: loss 0, gradient 0 (as JDTLoss, s_nr = s_dr).
        let none_kept = vec![false; data.shape.map_len()];
        for agg in [Aggregation::DATASET, Aggregation::IMAGE, Aggregation::CLASS] {
            let out = common::loss(
                &ctx,
                LossOptions::jaccard().smoothing(1.0, 1.0).aggregation(agg),
            )
            .forward_backward(&data.batch().with_mask(&none_kept))
            .unwrap();
            assert_eq!(out.loss, 0.0, "{agg:?}");
            assert!(out.grad.unwrap().iter().all(|g| *g == 0.0));
        }

        // Empty classes with zero smoothing: an empty item has T = 1, and no NaN or Inf
        // escapes, whatever the options.
        let shape = Shape::new(&[2, 3, 16]).unwrap();
        let mut p = vec![0.0f32; shape.len()];
        let mut y = vec![0.0f32; shape.len()];
        for i in 0..shape.len() {
            if (i / 16) % 3 != 2 {
                p[i] = rng.f64() as f32;
                y[i] = rng.f64() as f32;
            }
        }
        for red in [Reduction::Mean, Reduction::Sum, Reduction::None] {
            for agg in [Aggregation::DATASET, Aggregation::IMAGE, Aggregation::CLASS] {
                for (log_loss, gamma) in [(false, 1.0), (true, 1.0), (false, 2.0)] {
                    for active in [
                        ActiveClasses::All,
                        ActiveClasses::Present { threshold: 0.0 },
                    ] {
                        let o = LossOptions::dice()
                            .smoothing(0.0, 0.0)
                            .activation(Activation::None)
                            .reduction(red)
                            .aggregation(agg)
                            .log_loss(log_loss)
                            .gamma(gamma)
                            .active_classes(active);
                        let out = common::loss(&ctx, o)
                            .forward_backward(&Batch::soft(&shape, &p, &y))
                            .unwrap();
                        assert!(
                            finite(&out),
                            "{red:?} {agg:?} log={log_loss} γ={gamma} {active:?}: {out:?}"
                        );
                    }
                }
            }
        }

        // A single pixel; C = 1 with sigmoid.
        for dims in [vec![1, 3, 1], vec![2, 1, 5, 5]] {
            let data = Data::random(&mut rng, &dims, false, false);
            let o = LossOptions::dice().activation(if dims[1] == 1 {
                Activation::Sigmoid
            } else {
                Activation::Softmax
            });
            let out = common::loss(&ctx, o.clone())
                .forward_backward(&data.batch())
                .unwrap();
            common::assert_close(&format!("{dims:?}"), &out, &data.reference(&o), 1e-4);
        }
    }
}

/// Options from small indices, so that a shrunk failing case reads plainly.
#[allow(clippy::too_many_arguments)]
fn options(
    overlap: usize,
    formulation: usize,
    activation: usize,
    smoothing: usize,
    background: bool,
    reduction: usize,
    aggregation: usize,
    present: bool,
    log_gamma: usize,
    classes: usize,
) -> LossOptions {
    let mut o = LossOptions::dice();
    o.overlap = [
        Overlap::Jaccard,
        Overlap::Dice,
        Overlap::Tversky {
            alpha: 0.3,
            beta: 0.7,
        },
    ][overlap];
    o.formulation = [
        Formulation::Soft,
        Formulation::Squared,
        Formulation::Classic,
    ][formulation];
    o.activation = [Activation::Softmax, Activation::Sigmoid, Activation::None][activation];
    let s = [1e-5, 1e-3, 1.0][smoothing];
    o = o.smoothing(s, s);
    o.include_background = background;
    o.reduction = [Reduction::Mean, Reduction::Sum, Reduction::None][reduction];
    o.aggregation = match (aggregation, o.reduction) {
        (3, Reduction::Mean) => Aggregation {
            dataset: 0.5,
            image: 0.3,
            class: 0.2,
        },
        (a, _) => [Aggregation::DATASET, Aggregation::IMAGE, Aggregation::CLASS][a % 3],
    };
    if present {
        o.active_classes = ActiveClasses::Present { threshold: 0.2 };
    }
    (o.log_loss, o.gamma) = [(false, 1.0), (true, 1.0), (false, 2.0), (true, 1.5)][log_gamma];
    if aggregation == 1 && classes > 1 {
        let kept = classes - o.class_start(classes);
        o.class_weights = Some((0..kept).map(|k| 0.5 + k as f64 * 0.25).collect());
    }
    o
}

proptest! {
    // 500 random option sets × shapes × targets per `cargo test` run, GPU against the f64
    // reference; proptest shrinks a failure to the smallest indices and shape.
    #![proptest_config(ProptestConfig { cases: 500, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn gpu_matches_reference_for_random_options(
        overlap in 0usize..3, formulation in 0usize..3, activation in 0usize..3,
        smoothing in 0usize..3, background: bool, reduction in 0usize..3,
        aggregation in 0usize..4, present: bool, log_gamma in 0usize..4,
        dims in (1usize..4, 1usize..7, prop::collection::vec(1usize..10, 1..4)),
        index: bool, mask: bool, seed: u64, compound in 0usize..4,
    ) {
        let Some(ctx) = gpu() else { return Ok(()) };
        let (b, c, spatial) = dims;
        let mut all = vec![b, c];
        all.extend(spatial);
        let mut o = options(overlap, formulation, activation, smoothing, background, reduction, aggregation, present, log_gamma, c);
        common::add_compound(&mut Rng::new(seed ^ 0xc0), &mut o, c, compound);
        let mut data = Data::random(&mut Rng::new(seed), &all, index, mask);
        // `none` takes probabilities (SPEC §1), a one-channel softmax is refused.
        common::fit(&mut o, &mut data);
        let got = common::loss(ctx, o.clone()).forward_backward(&data.batch()).unwrap();
        common::assert_close(&format!("{all:?} {o:?}"), &got, &data.reference(&o), 1e-4);
    }
}

#[test]
fn eight_threads_share_one_context() {
    let Some(ctx) = gpu() else { return };
    eight_threads_on(ctx);
    // Staged transfers (no in-place mapping): pooled buffers cross threads through
    // `queue.write_buffer` and staging copies.
    eight_threads_on(&common::gpu_staged().unwrap());
}

fn eight_threads_on(ctx: &Context) {
    let mut rng = Rng::new(53);
    let jobs: Vec<(Data, LossOptions)> = (0..8 * 50)
        .map(|i| {
            let dims = [1 + i % 3, 2 + i % 5, 7 + i % 11, 5 + i % 13];
            let o = [
                LossOptions::dice(),
                LossOptions::jaccard().aggregation(Aggregation::DATASET),
            ][i % 2]
                .clone();
            (Data::random(&mut rng, &dims, i % 3 == 0, i % 4 == 0), o)
        })
        .collect();
    let sequential: Vec<_> = jobs
        .iter()
        .map(|(d, o)| {
            common::loss(ctx, o.clone())
                .forward_backward(&d.batch())
                .unwrap()
        })
        .collect();
    std::thread::scope(|s| {
        for t in 0..8 {
            let (jobs, sequential) = (&jobs, &sequential);
            s.spawn(move || {
                for j in (t..jobs.len()).step_by(8) {
                    let (d, o) = &jobs[j];
                    let out = common::loss(ctx, o.clone())
                        .forward_backward(&d.batch())
                        .unwrap();
                    assert_eq!(out.loss.to_bits(), sequential[j].loss.to_bits(), "job {j}");
                    assert_eq!(out.grad, sequential[j].grad, "job {j}");
                }
            });
        }
    });
}

#[test]
fn batch_over_max_buffer_size_streams_and_a_destroyed_device_is_an_error() {
    if gpu().is_none() {
        return;
    }
    let instance = common::instance();
    let adapter = pollster::block_on(instance.request_adapter(&Default::default())).unwrap();
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        required_limits: wgpu::Limits {
            max_buffer_size: 1 << 20,
            ..wgpu::Limits::default()
        },
        ..Default::default()
    }))
    .unwrap();
    let ctx = Context::from_wgpu(device.clone(), queue, adapter.get_info()).unwrap();
    let loss = common::loss(&ctx, LossOptions::dice());
    let mut rng = Rng::new(54);
    // 1.2 MB arrays, over this device's 1 MiB max_buffer_size (but under its binding
    // limit): the host API streams them (it used to answer TooLarge, recommending the
    // very API that failed), and the result is the reference's.
    let big = Data::random(&mut rng, &[1, 2, 512, 300], false, false);
    let out = loss.forward_backward(&big.batch()).unwrap();
    common::assert_close(
        "over max_buffer_size",
        &out,
        &big.reference(&LossOptions::dice()),
        2e-4,
    );
    let small = Data::random(&mut rng, &[1, 2, 30, 30], false, false);
    assert!(loss.forward(&small.batch()).is_ok());
    // A destroyed device: the next call is an error, not a hang or a panic.
    device.destroy();
    let r = loss.forward_backward(&small.batch());
    assert!(r.is_err(), "{r:?}");
    eprintln!("after destroy: {:?}", r.unwrap_err());
}

/// Device memory exhausted, in a controlled way: a child process of this test binary
/// runs under `ulimit -v` (address space 3 GB), so lavapipe's allocations (host memory)
/// fail inside that process only. The call must return a typed error, not abort
/// (`OutOfMemory`, or `DeviceLost` where wgpu marks the device lost), and a small batch
/// must then compute correctly: on the same context, or on a new one if it was lost.
#[test]
fn exhausted_device_memory_is_an_error_and_the_context_recovers() {
    if gpu().is_none() || !cfg!(target_os = "linux") {
        return;
    }
    if std::env::var_os("SEGLOSS_OOM_CHILD").is_some() {
        // Under a 3.2 GB address-space limit (lavapipe's device memory is the process's).
        let mut ctx = Context::new().unwrap();
        let mut loss = common::loss(&ctx, LossOptions::dice());
        // 100 M elements: 400 MB per f32 array; the host data (input + target, 800 MB)
        // fits the limit, a second copy of it on the device does too, a third does not.
        let shape = Shape::new(&[1, 4, 5000, 5000]).unwrap();
        let x = vec![0.5f32; shape.len()];
        let y = vec![0.5f32; shape.len()];
        let batch = Batch::soft(&shape, &x, &y);
        // The split-phase API keeps each batch on the device: hold them until the
        // device runs out. A typed error, not an abort: out of memory, or a device that
        // wgpu marked lost (its GL backend always does; Vulkan does when the failing
        // allocation is internal to a submission).
        let mut held = Vec::new();
        let err = loop {
            match loss.stats(&batch) {
                Ok(st) => held.push(st),
                Err(e) => break e,
            }
            assert!(held.len() < 8, "no out-of-memory error");
        };
        assert!(
            matches!(err, Error::OutOfMemory(_) | Error::DeviceLost(_)),
            "{err:?}"
        );
        // The metrics' host path under the same exhaustion (two 400 MB uploads): a typed
        // error as well, not an abort inside wgpu.
        let mut m = Metrics::new(&ctx, 4, None)
            .unwrap()
            .with_counting(Counting::Device);
        let r = m.update(&shape, Prediction::Scores(&x), Labels::MultiHot(&y), None);
        assert!(
            matches!(r, Err(Error::OutOfMemory(_) | Error::DeviceLost(_))),
            "metrics under exhausted memory: {r:?}"
        );
        // Under WGPU_DEBUG the driver's own report of the exhaustion reaches the log as
        // an error (lavapipe: "VK_ERROR_OUT_OF_DEVICE_MEMORY", with its object list):
        // provoked here on purpose, so claimed; any other record still fails the test.
        common::watch::take_matching(|_, m| {
            m.contains("VK_ERROR_OUT_OF_DEVICE_MEMORY") || m.starts_with("\tobjects")
        });
        // What an application does after an out-of-memory error: drop what it holds
        // (the split-phase statistics, the metrics accumulator), and the buffers segloss
        // keeps for reuse (they returned to its pool).
        drop(m);
        drop(held);
        ctx.release_buffers();
        // Work resumes. The host API streams a batch over the binding limit, so the same
        // batch's loss+grad fits in this limit (device memory: a few chunks, not copies).
        // lavapipe may lose the device over the exhaustion (reported at once or at the
        // next call, as DeviceLost): a new context then works.
        let out = match loss.forward_backward(&batch) {
            Err(Error::DeviceLost(why)) => {
                eprintln!("device lost after the exhaustion ({why}): a new context");
                // The lost device's memory is freed only when nothing holds it any more
                // (SwiftShader's is this process's, under the address-space limit): the
                // old loss and context go before the new context allocates.
                drop(loss);
                drop(ctx);
                ctx = Context::new().unwrap();
                loss = common::loss(&ctx, LossOptions::dice());
                loss.forward_backward(&batch).unwrap()
            }
            r => r.unwrap(),
        };
        common::watch::take_matching(|_, m| {
            m.contains("VK_ERROR_OUT_OF_DEVICE_MEMORY") || m.starts_with("\tobjects")
        });
        let mut rng = Rng::new(56);
        let small = Data::random(&mut rng, &[2, 3, 20, 20], false, false);
        let want = small.reference(&LossOptions::dice());
        common::assert_close(
            "after OOM",
            &loss.forward_backward(&small.batch()).unwrap(),
            &want,
            1e-4,
        );
        // Constant data, p = 0.25 and y = 0.5 everywhere: tp = 0.25, fp = 0, fn = 0.25
        // per element, so the soft Dice loss is 1 − 0.5/0.75 = 1/3.
        assert!((out.loss - 1.0 / 3.0).abs() <= 1e-6, "{}", out.loss);
        assert!(out.grad.unwrap().iter().all(|g| g.is_finite()));
        // The metrics work again too: one image, class k predicted where labelled.
        let mut m = Metrics::new(&ctx, 3, None)
            .unwrap()
            .with_counting(Counting::Device);
        let s = Shape::new(&[1, 3, 4]).unwrap();
        let r = m.update(
            &s,
            Prediction::Labels(&[0, 1, 2, 2]),
            Labels::U32(&[0, 1, 2, 2]),
            None,
        );
        r.unwrap();
        assert_eq!(m.result().unwrap().miou_d, 1.0);
        println!("OOM child: {err}");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let child = || {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -v 3200000 && exec '{}' exhausted_device_memory_is_an_error_and_the_context_recovers --exact --nocapture",
                exe.display()
            ))
            .env("SEGLOSS_OOM_CHILD", "1")
            .output()
            .unwrap()
    };
    let mut out = child();
    // SwiftShader's own threads occasionally die of the address-space limit (the child
    // ends by a signal, with no output of segloss's, about one run in five under the
    // machine load of .ci/run's pass 4; seen before this test changed): one more run
    // then, and both statuses in the message if it fails again. A failure that exits
    // (an assertion, an error) is not retried.
    if out.status.code().is_none() {
        eprintln!(
            "OOM child ended by a signal ({}); running it once more",
            out.status
        );
        out = child();
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed ({}): {stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("OOM child: GPU "), "{stdout}");
}

/// The process's resident set (Linux's /proc): a platform without it fails the soak
/// rather than comparing 0 with 0.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status")
        .expect("the soak test reads RSS from /proc/self/status (Linux only)");
    let kib = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .expect("a VmRSS line");
    assert!(kib > 0, "RSS read as 0");
    kib
}

/// 10 000 host calls over four alternating shapes (the buffer pool's reuse across sizes):
/// RSS after the first 1 000 and after all must agree within 5%. ~10 s on lavapipe.
/// RSS is the process's, so the test runs alone (`.ci/run` runs it with `--ignored`):
/// beside the other tests of this file it measures their memory too.
#[test]
#[ignore = "measures process RSS: run alone, as .ci/run does"]
fn soak_ten_thousand_calls_keep_memory_flat() {
    let Some(ctx) = gpu() else { return };
    let mut rng = Rng::new(55);
    let data: Vec<Data> = (0..4)
        .map(|i| Data::random(&mut rng, &[2, 4, 32 + i, 32], i % 2 == 0, i == 3))
        .collect();
    let loss = common::loss(ctx, LossOptions::dice());
    let mut after_warmup = 0;
    for call in 0..10_000 {
        let out = loss.forward_backward(&data[call % 4].batch()).unwrap();
        assert!(out.loss.is_finite());
        if call == 999 {
            after_warmup = rss_kib();
        }
    }
    let end = rss_kib();
    eprintln!("RSS after 1000 calls {after_warmup} KiB, after 10000 calls {end} KiB");
    assert!(
        (end as f64) <= after_warmup as f64 * 1.05,
        "RSS grew from {after_warmup} to {end} KiB"
    );
}
