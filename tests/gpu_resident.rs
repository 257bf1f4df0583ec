//! The GPU-resident API (caller buffers, caller encoder, wrapped device) gives the same
//! results as the host API, and the async host API can have several calls in flight.

mod common;

use common::{Data, Rng};
use segloss::{Aggregation, Context, GpuBatch, GpuTarget, LossOptions, Reduction};
use wgpu::util::DeviceExt;

fn upload(dev: &wgpu::Device, bytes: &[u8]) -> wgpu::Buffer {
    dev.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: None,
        contents: bytes,
        usage: wgpu::BufferUsages::STORAGE,
    })
}

#[test]
fn gpu_resident_equals_host_api() {
    let Some(ctx) = common::gpu() else { return };
    let dev = ctx.device().unwrap().clone();
    let mut rng = Rng::new(21);
    for (use_index, with_mask) in [(false, false), (true, true), (false, true)] {
        let data = Data::random(&mut rng, &[2, 5, 40, 33], use_index, with_mask);
        let mut o = LossOptions::jaccard()
            .aggregation(Aggregation::IMAGE)
            .reduction(Reduction::None);
        if use_index {
            o = o.ignore_index(2); // on soft targets a host-API rule (MONAI's)
        }
        let loss = common::loss(&ctx, o.clone());
        let host = loss.forward_backward(&data.batch()).unwrap();

        let input = upload(&dev, bytemuck::cast_slice(&data.input));
        let target = if use_index {
            upload(&dev, bytemuck::cast_slice(&data.index))
        } else {
            upload(&dev, bytemuck::cast_slice(&data.soft))
        };
        let mask = data.mask.as_ref().map(|m| {
            let mut bytes: Vec<u8> = m.iter().map(|&k| u8::from(k)).collect();
            bytes.resize(bytes.len().div_ceil(4) * 4, 0);
            upload(&dev, &bytes)
        });
        let grad = dev.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: 4 * data.shape.len() as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let gb = GpuBatch {
            shape: &data.shape,
            input: input.slice(..),
            target: if use_index {
                GpuTarget::Index(target.slice(..))
            } else {
                GpuTarget::Soft(target.slice(..))
            },
            mask: mask.as_ref().map(|m| m.slice(..)),
        };
        // Recorded into the caller's encoder, submitted by the caller.
        let mut enc = dev.create_command_encoder(&Default::default());
        let result = loss.encode(&mut enc, &gb, Some(grad.slice(..))).unwrap();
        ctx.queue().unwrap().submit([enc.finish()]);
        let out = loss.read(&result).unwrap();
        assert_eq!(out.loss.to_bits(), host.loss.to_bits());
        assert_eq!(out.values, host.values);
        assert_eq!(common::read_f32(&ctx, &grad), host.grad.unwrap());
    }
}

/// A device the application created itself, with the given limits.
fn app_device(limits: wgpu::Limits) -> Option<(wgpu::Device, wgpu::Queue, wgpu::AdapterInfo)> {
    common::gpu()?;
    let instance = common::instance();
    let adapter = pollster::block_on(instance.request_adapter(&Default::default())).unwrap();
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        required_limits: limits,
        ..Default::default()
    }))
    .unwrap();
    Some((device, queue, adapter.get_info()))
}

#[test]
fn webgpu_default_limits_device_runs_the_golden_cases() {
    // WebGPU's defaults (128 MiB bindings, 256 MiB buffers, 16 KiB workgroup storage,
    // 256 invocations): what browsers and many applications' devices have.
    let Some((device, queue, info)) = app_device(wgpu::Limits::default()) else {
        return;
    };
    let ctx = Context::from_wgpu(device, queue, info).unwrap();
    let text = segloss_golden::text("public.json").unwrap();
    for c in segloss_golden::case::parse(text, "public.json").unwrap() {
        let got = c.run(&common::loss(&ctx, c.options.clone())).unwrap();
        c.check(&got, 1e-4)
            .unwrap_or_else(|e| panic!("{}: {e}", c.id));
    }
    let mut rng = Rng::new(22);
    let data = Data::random(&mut rng, &[3, 4, 70, 70], true, false);
    let o = LossOptions::dice().aggregation(Aggregation::DATASET);
    let out = common::loss(&ctx, o.clone())
        .forward_backward(&data.batch())
        .unwrap();
    common::assert_close("default limits", &out, &data.reference(&o), 1e-4);
}

#[test]
fn a_device_below_the_kernels_needs_is_a_typed_error() {
    // GLES 3.1's minimum: 4 storage buffers per compute stage (finalize binds 7).
    let limits = wgpu::Limits {
        max_storage_buffers_per_shader_stage: 4,
        ..wgpu::Limits::downlevel_defaults()
    };
    let Some((device, queue, info)) = app_device(limits) else {
        return;
    };
    let r = Context::from_wgpu(device, queue, info);
    assert!(
        matches!(&r, Err(segloss::Error::UnsupportedDevice(m)) if m.contains("max_storage_buffers_per_shader_stage")),
        "{r:?}"
    );
}

#[test]
fn async_calls_can_be_in_flight_together() {
    let Some(ctx) = common::gpu() else { return };
    let mut rng = Rng::new(23);
    let o = LossOptions::dice();
    let loss = common::loss(&ctx, o.clone());
    let datas: Vec<Data> = (0..4)
        .map(|i| Data::random(&mut rng, &[1 + i % 2, 3, 50 + i, 20], i % 2 == 0, false))
        .collect();
    // All four are submitted before any is awaited.
    let futures: Vec<_> = datas
        .iter()
        .map(|d| loss.forward_backward_async(&d.batch()))
        .collect();
    let outs = pollster::block_on(futures::future::join_all(futures));
    for (d, out) in datas.iter().zip(outs) {
        common::assert_close("async", &out.unwrap(), &d.reference(&o), 1e-4);
    }
}
