//! No `Ok` with a wrong value (issue 26): a GPU-resident result read before its encoder
//! was submitted, and the metrics' GPU path given a buffer it cannot use. Each is a typed
//! error, and the context stays usable.

mod common;

use common::{Data, Rng};
use segloss::metrics::{Counting, GpuLabels, GpuMetricBatch, GpuPrediction, Metrics};
use segloss::{Error, GpuBatch, GpuTarget, LossOptions, Shape};

#[test]
fn a_result_read_before_its_submission_is_an_error() {
    let Some(ctx) = common::gpu() else { return };
    let (dev, queue) = (ctx.device().unwrap(), ctx.queue().unwrap());
    let shape = Shape::new(&[1, 2, 8]).unwrap();
    let x = common::storage(&ctx, &[0.5; 16]);
    let y: Vec<f32> = (0..16).map(|i| (i % 3) as f32 / 2.0).collect();
    let y = common::storage(&ctx, &y);
    let batch = GpuBatch {
        shape: &shape,
        input: x.slice(..),
        target: GpuTarget::Soft(y.slice(..)),
        mask: None,
    };
    let loss = common::loss(&ctx, LossOptions::dice());

    // One call: not submitted, then submitted.
    let mut enc = dev.create_command_encoder(&Default::default());
    let result = loss.encode(&mut enc, &batch, None).unwrap();
    assert_eq!(loss.read(&result), Err(Error::NotSubmitted));
    queue.submit([enc.finish()]);
    let out = loss.read(&result).unwrap();
    let want = loss
        .run(&batch, None)
        .map(|r| loss.read(&r))
        .unwrap()
        .unwrap();
    assert_eq!(out.loss.to_bits(), want.loss.to_bits());
    assert!(out.loss > 0.0 && out.loss < 1.0);

    // Split phases: the local phase's shared block, and a finishing call whose local
    // phase was never submitted (its statistics would read as zeros).
    let mut enc = dev.create_command_encoder(&Default::default());
    let stats = loss.encode_stats(&mut enc, &batch).unwrap();
    assert_eq!(loss.read_shared(&stats), Err(Error::NotSubmitted));
    let mut fin = dev.create_command_encoder(&Default::default());
    let result = loss.encode_finish(&mut fin, &batch, &stats, None).unwrap();
    queue.submit([fin.finish()]);
    assert_eq!(loss.read(&result), Err(Error::NotSubmitted));
    // Submitted in order, the same objects give the one-call loss.
    queue.submit([enc.finish()]);
    loss.read_shared(&stats).unwrap();
    let mut fin = dev.create_command_encoder(&Default::default());
    let result = loss.encode_finish(&mut fin, &batch, &stats, None).unwrap();
    queue.submit([fin.finish()]);
    assert_eq!(
        loss.read(&result).unwrap().loss.to_bits(),
        want.loss.to_bits()
    );
}

#[test]
fn the_metrics_gpu_path_refuses_buffers_it_cannot_use() {
    let Some(ctx) = common::gpu() else { return };
    let dev = ctx.device().unwrap();
    let shape = Shape::new(&[1, 3, 40]).unwrap();
    // Scores [1, 3, 40] whose argmax is pixel % 3; labels (pixel % 3, or 0 every 4th).
    let scores: Vec<f32> = (0..120)
        .map(|i| f32::from(u8::from((i % 40) % 3 == i / 40)))
        .collect();
    let labels: Vec<u32> = (0..40)
        .map(|p| if p % 4 == 0 { 0 } else { p % 3 })
        .collect();
    let labels_f32: Vec<f32> = labels.iter().map(|&l| f32::from_bits(l)).collect();
    let x = common::storage(&ctx, &scores);
    let y = common::storage(&ctx, &labels_f32);
    let mut m = Metrics::new(&ctx, 3, None)
        .unwrap()
        .with_counting(Counting::Device);
    let mk = |size: u64, usage, mapped| {
        dev.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size,
            usage,
            mapped_at_creation: mapped,
        })
    };
    let st = wgpu::BufferUsages::STORAGE;
    let other = common::gpu().unwrap();
    let foreign = other
        .device()
        .unwrap()
        .create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: 480,
            usage: st,
            mapped_at_creation: false,
        });
    let small = mk(476, st, false);
    let mapped = mk(480, st, true);
    let no_storage = mk(480, wgpu::BufferUsages::COPY_DST, false);
    let wide = mk(4096, st, false);
    let batch = |pred, target| scored(&shape, pred, target);
    let cases = [
        (
            "another device's buffer",
            batch(foreign.slice(..), y.slice(..)),
            "pred",
        ),
        ("too small", batch(small.slice(..), y.slice(..)), "pred"),
        ("mapped", batch(mapped.slice(..), y.slice(..)), "pred"),
        (
            "no STORAGE",
            batch(x.slice(..), no_storage.slice(..)),
            "target",
        ),
        (
            "misaligned",
            batch(x.slice(..), wide.slice(4..164)),
            "target",
        ),
    ];
    for (what, b, at) in cases {
        let mut enc = dev.create_command_encoder(&Default::default());
        let r = m.encode(&mut enc, &b);
        assert!(
            matches!(&r, Err(Error::InvalidBuffer { name, .. }) if *name == at),
            "encode, {what}: {r:?}"
        );
        let r = m.run(&b);
        assert!(
            matches!(&r, Err(Error::InvalidBuffer { name, .. }) if *name == at),
            "run, {what}: {r:?}"
        );
    }
    // Nothing was counted, and the accumulator still works: the same batch on its own
    // buffers gives the host API's result.
    m.run(&batch(x.slice(..), y.slice(..))).unwrap();
    let gpu = m.result().unwrap();
    let mut host = Metrics::new(&segloss::Context::cpu(), 3, None).unwrap();
    let pred = segloss::metrics::Prediction::Scores(&scores);
    host.update(&shape, pred, segloss::metrics::Labels::U32(&labels), None)
        .unwrap();
    let want = host.result().unwrap();
    assert_eq!(gpu.per_image.len(), 1);
    assert_eq!(gpu.miou_d.to_bits(), want.miou_d.to_bits());
    assert!(want.miou_d > 0.3 && want.miou_d < 1.0, "{}", want.miou_d);
}

fn scored<'a>(
    shape: &'a Shape,
    pred: wgpu::BufferSlice<'a>,
    target: wgpu::BufferSlice<'a>,
) -> GpuMetricBatch<'a> {
    GpuMetricBatch {
        shape,
        pred: GpuPrediction::Scores(pred),
        target: GpuLabels::Index(target),
        mask: None,
    }
}

/// "Any batch size through the host API": on a device whose `max_buffer_size` is below
/// its binding limit, a batch between the two is streamed, not refused with `TooLarge`.
#[test]
fn a_batch_over_one_buffer_but_under_one_binding_is_streamed() {
    if common::gpu().is_none() {
        return;
    }
    let instance = common::instance();
    let adapter = pollster::block_on(instance.request_adapter(&Default::default())).unwrap();
    let mut limits = adapter.limits();
    limits.max_buffer_size = 1 << 20;
    assert!(limits.max_storage_buffer_binding_size > 2 << 20);
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        required_limits: limits,
        ..Default::default()
    }))
    .unwrap();
    let ctx = segloss::Context::from_wgpu(device, queue, adapter.get_info()).unwrap();
    // A 2 MiB input: twice the largest buffer.
    let mut rng = common::Rng::new(26);
    for index in [false, true] {
        let data = common::Data::random(&mut rng, &[2, 4, 256, 256], index, index);
        let o = LossOptions::dice();
        let got = common::loss(&ctx, o.clone())
            .forward_backward(&data.batch())
            .unwrap();
        common::assert_close("over max_buffer_size", &got, &data.reference(&o), 1e-4);
    }
}

/// Eight threads finishing one statistics at once (a data loader's workers sharing the
/// local phase): every result bit-identical to a sequential one. Each finish writes the
/// shared block through the queue; without the per-statistics lock two such writes
/// landed in one submission unordered (the validation layer's
/// SYNC-HAZARD-WRITE-AFTER-WRITE, which the validation run's logger turns into a failure
/// here).
#[test]
fn concurrent_finishes_of_one_statistics_are_ordered_and_identical() {
    let Some(ctx) = common::gpu() else { return };
    let mut rng = Rng::new(0xf1_0158);
    let data = Data::random(&mut rng, &[2, 3, 24, 24], false, false);
    let loss = common::loss(&ctx, LossOptions::dice());
    let st = loss.stats(&data.batch()).unwrap();
    let want = loss.finish(&st, true).unwrap();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| loss.finish(&st, true).unwrap()))
            .collect();
        for h in handles {
            let got = h.join().unwrap();
            assert_eq!(got.loss.to_bits(), want.loss.to_bits());
            common::assert_bits_eq(
                "concurrent finish",
                got.grad.as_deref().unwrap_or(&[]),
                want.grad.as_deref().unwrap_or(&[]),
            );
        }
    });
    common::watch::check();
}

/// A host call on a GPU context whose kernels report invalid data (one status bit per
/// kind) locates it in the host slices, as the CPU reference does: the first offending
/// element and an index's value, not `position: None`.
#[test]
fn gpu_host_calls_locate_invalid_data() {
    use segloss::{Activation, Batch, Context};
    let Some(ctx) = common::gpu() else { return };
    let shape = Shape::new(&[2, 3, 4]).unwrap();
    let mut rng = Rng::new(0x10ca7e);
    let good = Data::random(&mut rng, &[2, 3, 4], false, false);
    let mut index = good.index.clone();
    index[5] = 7;
    index[6] = 9;
    let mut input = good.input.clone();
    input[11] = f32::NAN;
    let mut soft = good.soft.clone();
    soft[13] = 1.5;
    let probs: Vec<f32> = (0..shape.len())
        .map(|i| if i == 17 { 2.0 } else { 0.5 })
        .collect();
    let dice = LossOptions::dice();
    let none = LossOptions::dice().activation(Activation::None);
    let cases: [(&str, &LossOptions, Batch<'_>, Error); 4] = [
        (
            "index",
            &dice,
            Batch::index(&shape, &good.input, &index),
            Error::ClassIndexOutOfRange {
                value: Some(7),
                classes: 3,
                position: Some(5),
            },
        ),
        (
            "non-finite input",
            &dice,
            Batch::soft(&shape, &input, &good.soft),
            Error::NonFiniteInput { position: Some(11) },
        ),
        (
            "soft target",
            &dice,
            Batch::soft(&shape, &good.input, &soft),
            Error::SoftTargetOutOfRange { position: Some(13) },
        ),
        (
            "probability",
            &none,
            Batch::soft(&shape, &probs, &good.soft),
            Error::ProbabilityOutOfRange { position: Some(17) },
        ),
    ];
    for (what, o, batch, want) in cases {
        for c in [&ctx, &Context::cpu()] {
            let loss = common::loss(c, o.clone());
            let got = loss.forward(&batch).unwrap_err();
            assert_eq!(
                got.to_string(),
                want.to_string(),
                "{what} on {:?}",
                c.backend()
            );
            let mut grad = vec![0.0; shape.len()];
            let got = loss.forward_backward_into(&batch, &mut grad).unwrap_err();
            assert_eq!(got.to_string(), want.to_string(), "{what} (into)");
        }
    }
}
