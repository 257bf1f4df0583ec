//! Inputs larger than a storage binding are processed in chunks (GPU-resident API) or
//! streamed (host API), bit-identically to the direct path; large volumes match the f64 reference; sums stay accurate at 10^8.
//! The large cases are `#[ignore]`d (minutes on 2 cores) and run by `.ci/run` with
//! `cargo test --release --test scale -- --ignored`.

mod common;

use common::{Data, Rng};
use segloss::{Aggregation, Context, Error, LossOptions, Reduction};

/// A context on a device whose storage bindings are limited to `binding` bytes (as small
/// as 1 MiB) and whose buffers to `buffer` bytes, so that modest inputs take the chunked
/// (GPU-resident) and streamed (host) paths.
fn limited_context(binding: u64, buffer: Option<u64>) -> Option<Context> {
    common::gpu()?;
    let instance = common::instance();
    let adapter = pollster::block_on(instance.request_adapter(&Default::default())).unwrap();
    let limits = adapter.limits();
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        required_limits: wgpu::Limits {
            max_storage_buffer_binding_size: binding,
            max_buffer_size: buffer.unwrap_or(limits.max_buffer_size),
            ..limits
        },
        ..Default::default()
    }))
    .unwrap();
    Some(Context::from_wgpu(device, queue, adapter.get_info()).unwrap())
}

fn small_binding_context(binding: u64) -> Option<Context> {
    limited_context(binding, None)
}

/// Bit-for-bit equality of two results: loss, values and gradient.
fn assert_bit_identical(what: &str, a: &segloss::LossOutput, b: &segloss::LossOutput) {
    assert_eq!(
        a.loss.to_bits(),
        b.loss.to_bits(),
        "{what}: loss {} vs {}",
        a.loss,
        b.loss
    );
    assert_eq!(a.values, b.values, "{what}");
    assert_eq!(a.grad.is_some(), b.grad.is_some(), "{what}");
    if let (Some(ga), Some(gb)) = (&a.grad, &b.grad) {
        let first_diff = ga
            .iter()
            .zip(gb)
            .position(|(x, y)| x.to_bits() != y.to_bits());
        assert_eq!(first_diff, None, "{what}: gradient differs");
    }
}

/// Loss options covering the kernels' variants: mixed levels, reduction none with
/// ignore_index, compound CE + focal on softmax, and sigmoid with binary CE.
fn option_sets(classes: usize) -> Vec<LossOptions> {
    vec![
        LossOptions::dice().aggregation(Aggregation {
            dataset: 0.5,
            image: 0.25,
            class: 0.25,
        }),
        LossOptions::jaccard()
            .aggregation(Aggregation::IMAGE)
            .reduction(Reduction::None)
            .ignore_index(1),
        LossOptions::dice()
            .aggregation(Aggregation::DATASET)
            .cross_entropy(segloss::CrossEntropy::softmax(0.5))
            .focal(segloss::Focal::softmax(0.25, 2.0)),
        LossOptions::tversky(0.3, 0.7)
            .activation(segloss::Activation::Sigmoid)
            .cross_entropy(segloss::CrossEntropy {
                class_weights: Some(vec![0.5; classes]),
                ..segloss::CrossEntropy::binary(0.5)
            }),
    ]
}

#[test]
fn streamed_host_calls_are_bit_identical_to_direct_ones() {
    // Host arrays over the (1 MiB) binding limit are streamed window by window.
    let Some(small) = small_binding_context(1 << 20) else {
        return;
    };
    let big = common::gpu().unwrap();
    let mut rng = Rng::new(41);
    // 1.1 M and 1.8 M elements (4.4 MB, 7.2 MB per array): 5-8 windows; N not a
    // multiple of 4 in the first and third shapes (scalar loads), aligned in the second.
    for (dims, index, mask) in [
        (vec![2, 5, 300, 367], false, true),
        (vec![1, 7, 512, 512], true, false),
        (vec![3, 3, 201, 331], true, true),
    ] {
        let data = Data::random(&mut rng, &dims, index, mask);
        for mut o in option_sets(dims[1]) {
            if !index {
                o.ignore_index = None; // a host-API rule on soft targets (MONAI's)
            }
            if index && o.activation == segloss::Activation::Sigmoid {
                continue; // index targets take softmax (or no) activation
            }
            let what = format!("{dims:?} {o:?}");
            for with_grad in [true, false] {
                let run = |ctx| {
                    let l = common::loss(ctx, o.clone());
                    if with_grad {
                        l.forward_backward(&data.batch()).unwrap()
                    } else {
                        l.forward(&data.batch()).unwrap()
                    }
                };
                let (a, b) = (run(&small), run(&big));
                assert_bit_identical(&what, &a, &b);
                if with_grad {
                    common::assert_close(&what, &b, &data.reference(&o), 1e-4);
                }
            }
        }
    }
}

#[test]
fn streamed_calls_with_many_rows_fall_back_from_the_unrolled_tile() {
    // B·C = 600 rows under a 1 MiB cap: a window of one class-loop tile (128 pixels)
    // fits (307 KB), one of the unrolled kernels' 512-pixel tile (1.2 MB) does not. The
    // streamed call keeps the class loops (it was `TooLarge` when the longer tile was
    // taken regardless); the direct call on a CPU adapter takes the unrolled kernels.
    // Both match the reference.
    let Some(small) = small_binding_context(1 << 20) else {
        return;
    };
    let big = common::gpu().unwrap();
    let mut rng = Rng::new(43);
    let data = Data::random(&mut rng, &[30, 20, 600], false, false);
    let o = LossOptions::dice();
    let want = data.reference(&o);
    for ctx in [&small, &big] {
        let got = common::loss(ctx, o.clone())
            .forward_backward(&data.batch())
            .unwrap();
        common::assert_close("[30, 20, 600]", &got, &want, 1e-4);
    }
}

fn batch_i64<'a>(data: &'a Data, t: &'a [i64]) -> segloss::Batch<'a> {
    segloss::Batch {
        shape: &data.shape,
        input: &data.input,
        target: segloss::Target::IndexI64(t),
        mask: None,
    }
}

#[test]
fn streamed_calls_take_i64_targets_async_calls_and_report_bad_data() {
    let Some(small) = small_binding_context(1 << 20) else {
        return;
    };
    let big = common::gpu().unwrap();
    let mut rng = Rng::new(45);
    let data = Data::random(&mut rng, &[2, 4, 300, 301], true, false);
    // PyTorch's i64 maps with a negative ignore value, converted window by window.
    let mut i64s: Vec<i64> = data.index.iter().map(|&v| i64::from(v)).collect();
    for v in i64s.iter_mut().step_by(7) {
        *v = -100;
    }
    let o = LossOptions::dice()
        .ignore_index(-100)
        .cross_entropy(segloss::CrossEntropy::softmax(1.0));
    let loss = common::loss(&small, o.clone());
    let a = loss.forward_backward(&batch_i64(&data, &i64s)).unwrap();
    let b = common::loss(&big, o.clone())
        .forward_backward(&batch_i64(&data, &i64s))
        .unwrap();
    assert_bit_identical("i64 targets", &a, &b);
    let fut = loss.forward_backward_async(&batch_i64(&data, &i64s));
    assert_bit_identical("async", &pollster::block_on(fut).unwrap(), &b);

    // Bad data in a late window: a typed error, its position global.
    let bad = data.shape.map_len() - 5;
    i64s[bad] = 4;
    assert!(matches!(
        loss.forward_backward(&batch_i64(&data, &i64s)),
        Err(Error::ClassIndexOutOfRange { value: Some(4), position: Some(p), .. }) if p == bad
    ));
    let n = data.shape.len();
    let mut x = data.input.clone();
    x[n - 3] = f32::NAN;
    let soft = segloss::Batch::soft(&data.shape, &x, &data.soft);
    assert!(matches!(
        loss.forward_backward(&soft),
        Err(Error::NonFiniteInput { .. })
    ));
    let mut y = data.soft.clone();
    y[n / 2] = 1.5;
    let soft = segloss::Batch::soft(&data.shape, &data.input, &y);
    assert!(matches!(
        loss.forward(&soft),
        Err(Error::SoftTargetOutOfRange { .. })
    ));
    // The context is still usable, its pooled buffers reused.
    let again = loss.forward_backward(&data.batch()).unwrap();
    let direct = common::loss(&big, o)
        .forward_backward(&data.batch())
        .unwrap();
    assert_bit_identical("after errors", &again, &direct);
}

#[test]
fn host_calls_beyond_max_buffer_size_are_streamed() {
    // Arrays of 4.8 MB on a device whose buffers stop at 2 MiB: no buffer could hold
    // one, the host API streams it (the split-phase API, which keeps the batch on the
    // device, says TooLarge).
    let Some(small) = limited_context(1 << 20, Some(2 << 20)) else {
        return;
    };
    let big = common::gpu().unwrap();
    let mut rng = Rng::new(46);
    let data = Data::random(&mut rng, &[2, 6, 316, 316], false, true);
    let o = LossOptions::dice().aggregation(Aggregation::IMAGE);
    let a = common::loss(&small, o.clone())
        .forward_backward(&data.batch())
        .unwrap();
    let b = common::loss(&big, o.clone())
        .forward_backward(&data.batch())
        .unwrap();
    assert_bit_identical("over max_buffer_size", &a, &b);
    assert!(matches!(
        common::loss(&small, o).stats(&data.batch()),
        Err(Error::TooLarge(_))
    ));
}

#[test]
fn forward_backward_into_fills_the_callers_buffer() {
    // Direct (GPU), streamed (GPU with 1 MiB bindings) and CPU-reference contexts: the
    // gradient written into the caller's slice equals `forward_backward`'s, bit for bit,
    // on every call (the second reuses pooled buffers).
    let Some(small) = small_binding_context(1 << 20) else {
        return;
    };
    let big = common::gpu().unwrap();
    let mut rng = Rng::new(48);
    let data = Data::random(&mut rng, &[2, 5, 300, 367], false, true);
    let o = LossOptions::jaccard().cross_entropy(segloss::CrossEntropy::kl(0.25));
    for ctx in [&small, &big, &Context::cpu()] {
        let loss = common::loss(ctx, o.clone());
        let want = loss.forward_backward(&data.batch()).unwrap();
        let mut grad = vec![f32::NAN; data.shape.len()];
        for _ in 0..2 {
            let got = loss
                .forward_backward_into(&data.batch(), &mut grad)
                .unwrap();
            assert!(got.grad.is_none());
            assert_bit_identical(
                &format!("{:?}", ctx.backend()),
                &segloss::LossOutput {
                    grad: Some(grad.clone()),
                    ..got
                },
                &want,
            );
        }
        let mut short = vec![0.0; 3];
        assert!(matches!(
            loss.forward_backward_into(&data.batch(), &mut short),
            Err(Error::LengthMismatch { what: "grad", .. })
        ));
    }
}

#[test]
fn gpu_resident_chunked_calls_are_bit_identical_to_direct_ones() {
    // Caller buffers over the binding limit: copied in chunks on the device.
    let Some(small) = small_binding_context(1 << 20) else {
        return;
    };
    let big = common::gpu().unwrap();
    let mut rng = Rng::new(47);
    let data = Data::random(&mut rng, &[2, 5, 300, 367], false, true);
    let dev = small.device().unwrap();
    let queue = small.queue().unwrap();
    let usage =
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
    let buf = |bytes: &[u8]| {
        let mut padded = bytes.to_vec();
        padded.resize(bytes.len().div_ceil(4) * 4, 0);
        let b = dev.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: padded.len() as u64,
            usage,
            mapped_at_creation: false,
        });
        queue.write_buffer(&b, 0, &padded);
        b
    };
    let mask: Vec<u8> = data
        .mask
        .as_ref()
        .unwrap()
        .iter()
        .map(|&k| u8::from(k))
        .collect();
    let (x, y, m) = (
        buf(bytemuck::cast_slice(&data.input)),
        buf(bytemuck::cast_slice(&data.soft)),
        buf(&mask),
    );
    let g = buf(&vec![0u8; 4 * data.shape.len()]);
    for mut o in option_sets(5) {
        o.ignore_index = None; // soft targets: a host-API rule
        let loss = common::loss(&small, o.clone());
        let gb = segloss::GpuBatch {
            shape: &data.shape,
            input: x.slice(..),
            target: segloss::GpuTarget::Soft(y.slice(..)),
            mask: Some(m.slice(..)),
        };
        let mut got = loss
            .read(&loss.run(&gb, Some(g.slice(..))).unwrap())
            .unwrap();
        got.grad = Some(common::read_f32(&small, &g));
        let want = common::loss(&big, o.clone())
            .forward_backward(&data.batch())
            .unwrap();
        assert_bit_identical(&format!("{o:?}"), &got, &want);
    }
}

#[test]
fn gpu_resident_chunking_needs_copy_usages() {
    // Over the binding limit the caller's buffers are copied from: without COPY_SRC the
    // call is a typed error, not a wgpu panic.
    let Some(ctx) = small_binding_context(1 << 20) else {
        return;
    };
    let dev = ctx.device().unwrap();
    let shape = segloss::Shape::new(&[1, 4, 512, 256]).unwrap(); // 2 MiB per array
    let buf = |usage| {
        dev.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: 4 * shape.len() as u64,
            usage,
            mapped_at_creation: false,
        })
    };
    let x = buf(wgpu::BufferUsages::STORAGE);
    let y = buf(wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC);
    let loss = common::loss(&ctx, LossOptions::dice());
    let gb = segloss::GpuBatch {
        shape: &shape,
        input: x.slice(..),
        target: segloss::GpuTarget::Soft(y.slice(..)),
        mask: None,
    };
    assert!(matches!(
        loss.run(&gb, None),
        Err(Error::InvalidBuffer { name: "input", .. })
    ));
}

/// `[1, 14, 160, 160, 160]`: 57 M elements, 229 MB per f32 array, over lavapipe's
/// 128 MiB binding limit. Soft and index targets against the f64 reference, and
/// bit-identical over 10 runs.
#[test]
#[ignore = "large: ~1-2 min on 2 cores; run by .ci/run"]
fn ct_volume_160_cubed_matches_reference_and_is_deterministic() {
    let Some(ctx) = common::gpu() else { return };
    let mut rng = Rng::new(42);
    let dims = [1, 14, 160, 160, 160];
    for index in [false, true] {
        let data = Data::random(&mut rng, &dims, index, false);
        let o = LossOptions::dice().aggregation(Aggregation::DATASET);
        let loss = common::loss(&ctx, o.clone());
        let first = loss.forward_backward(&data.batch()).unwrap();
        common::assert_close(
            &format!("160^3 index={index}"),
            &first,
            &data.reference(&o),
            1e-4,
        );
        let runs = if index { 1 } else { 9 };
        let g1 = first.grad.as_ref().unwrap();
        for _ in 0..runs {
            let again = loss.forward_backward(&data.batch()).unwrap();
            assert_eq!(again.loss.to_bits(), first.loss.to_bits());
            common::assert_bits_eq("repeated gradient", &again.grad.unwrap(), g1);
        }
        eprintln!("160^3 index={index}: loss {}", first.loss);
    }
}

/// tp/fp/fn of 10^8 elements against f64 sums: relative error ≤ 1e-5.
#[test]
#[ignore = "large: 10^8 elements; run by .ci/run"]
fn sums_of_1e8_elements_are_accurate() {
    let Some(ctx) = common::gpu() else { return };
    let mut rng = Rng::new(43);
    let dims = [1, 1, 10_000, 10_000];
    let data = Data::random(&mut rng, &dims, false, false);
    let o = LossOptions::dice().activation(segloss::Activation::Sigmoid);
    let got = common::loss(&ctx, o.clone()).stats(&data.batch()).unwrap();
    let want = common::loss(&Context::cpu(), o)
        .stats(&data.batch())
        .unwrap();
    // The CPU context sums in f64 (and rounds the result to f32 once).
    for (g, w) in got.items().iter().zip(want.items()) {
        for j in 0..3 {
            let rel = (f64::from(g[j]) - f64::from(w[j])).abs() / f64::from(w[j]).abs();
            eprintln!(
                "stat {j}: GPU {} vs f64 {} (relative error {rel:.2e})",
                g[j], w[j]
            );
            assert!(rel <= 1e-5, "stat {j}: relative error {rel:.2e}");
        }
    }
}

#[test]
fn oversized_caller_buffers_are_bound_for_what_the_shape_needs() {
    // Buffers of 2 MiB (e.g. from a pool) holding a 400 KB batch, on a device whose
    // bindings stop at 1 MiB: only the needed bytes are bound, so the call runs directly.
    let Some(ctx) = small_binding_context(1 << 20) else {
        return;
    };
    let dev = ctx.device().unwrap();
    let mut rng = Rng::new(44);
    let data = Data::random(&mut rng, &[2, 5, 100, 100], false, false);
    let big = |contents: &[f32]| {
        let b = dev.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: 2 << 20,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        ctx.queue()
            .unwrap()
            .write_buffer(&b, 0, bytemuck::cast_slice(contents));
        b
    };
    let (x, y, g) = (big(&data.input), big(&data.soft), big(&[]));
    let loss = common::loss(&ctx, LossOptions::dice());
    let gb = segloss::GpuBatch {
        shape: &data.shape,
        input: x.slice(..),
        target: segloss::GpuTarget::Soft(y.slice(..)),
        mask: None,
    };
    let result = loss.run(&gb, Some(g.slice(..))).unwrap();
    let host = loss.forward_backward(&data.batch()).unwrap();
    assert_eq!(
        loss.read(&result).unwrap().loss.to_bits(),
        host.loss.to_bits()
    );
}
