//! The GPU-resident API on byte ranges of caller buffers, as a framework's allocator
//! (cubecl, PyTorch's caching allocator) hands out tensors: several arrays sub-allocated
//! in one wgpu buffer, the gradient among them, and i32 class indices with a negative
//! ignore value.

mod common;

use common::{Data, Rng};
use segloss::{Error, GpuBatch, GpuTarget, LossOptions, Reduction, Target};

/// One buffer holding each array at an aligned offset after `lead` bytes; returns the
/// buffer and each array's byte range.
fn pack(
    dev: &wgpu::Device,
    queue: &wgpu::Queue,
    lead: u64,
    arrays: &[&[u8]],
) -> (wgpu::Buffer, Vec<std::ops::Range<u64>>) {
    let align = u64::from(dev.limits().min_storage_buffer_offset_alignment).max(256);
    let mut at = lead;
    let mut ranges = Vec::new();
    for a in arrays {
        at = at.div_ceil(align) * align;
        ranges.push(at..at + a.len() as u64);
        at += a.len() as u64;
    }
    let buf = dev.create_buffer(&wgpu::BufferDescriptor {
        label: Some("sub-allocated"),
        size: at.div_ceil(4) * 4,
        usage: wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_DST
            | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    for (a, r) in arrays.iter().zip(&ranges) {
        queue.write_buffer(&buf, r.start, a);
    }
    (buf, ranges)
}

fn mask_bytes(m: &[bool]) -> Vec<u8> {
    let mut bytes: Vec<u8> = m.iter().map(|&k| u8::from(k)).collect();
    bytes.resize(bytes.len().div_ceil(4) * 4, 0);
    bytes
}

fn read_range(ctx: &segloss::Context, buf: &wgpu::Buffer, r: &std::ops::Range<u64>) -> Vec<f32> {
    let all = common::read_f32(ctx, buf);
    all[(r.start / 4) as usize..(r.end / 4) as usize].to_vec()
}

#[test]
fn arrays_sub_allocated_in_one_buffer_equal_the_host_api() {
    let Some(ctx) = common::gpu() else { return };
    let (dev, queue) = (ctx.device().unwrap(), ctx.queue().unwrap());
    let mut rng = Rng::new(5);
    for (use_index, with_mask) in [(false, false), (true, true), (false, true)] {
        let data = Data::random(&mut rng, &[2, 4, 24, 17], use_index, with_mask);
        let o = LossOptions::dice().reduction(Reduction::None);
        let loss = common::loss(&ctx, o);
        let host = loss.forward_backward(&data.batch()).unwrap();
        let target: &[u8] = if use_index {
            bytemuck::cast_slice(&data.index)
        } else {
            bytemuck::cast_slice(&data.soft)
        };
        let mask = data.mask.as_deref().map(mask_bytes).unwrap_or_default();
        let zeros = vec![0u8; 4 * data.shape.len()];
        let (buf, r) = pack(
            dev,
            queue,
            512,
            &[bytemuck::cast_slice(&data.input), target, &mask, &zeros],
        );
        let gb = GpuBatch {
            shape: &data.shape,
            input: buf.slice(r[0].clone()),
            target: if use_index {
                GpuTarget::Index(buf.slice(r[1].clone()))
            } else {
                GpuTarget::Soft(buf.slice(r[1].clone()))
            },
            mask: with_mask.then(|| buf.slice(r[2].clone())),
        };
        // The gradient in the same wgpu buffer as the inputs, disjoint bytes.
        let out = loss.run(&gb, Some(buf.slice(r[3].clone()))).unwrap();
        let out = loss.read(&out).unwrap();
        assert_eq!(out.loss.to_bits(), host.loss.to_bits());
        assert_eq!(out.values, host.values);
        assert_eq!(read_range(&ctx, &buf, &r[3]), host.grad.clone().unwrap());
        // The inputs were not touched by the gradient's writes.
        assert_eq!(read_range(&ctx, &buf, &r[0]), data.input);
    }
}

#[test]
fn overlapping_or_misaligned_ranges_are_refused() {
    let Some(ctx) = common::gpu() else { return };
    let (dev, queue) = (ctx.device().unwrap(), ctx.queue().unwrap());
    let data = Data::random(&mut Rng::new(6), &[1, 3, 8, 8], false, false);
    let n = 4 * data.shape.len() as u64;
    let (buf, r) = pack(
        dev,
        queue,
        0,
        &[
            bytemuck::cast_slice(&data.input),
            bytemuck::cast_slice(&data.soft),
            &vec![0u8; n as usize],
        ],
    );
    let loss = common::loss(&ctx, LossOptions::dice());
    let gb = |input: std::ops::Range<u64>| GpuBatch {
        shape: &data.shape,
        input: buf.slice(input),
        target: GpuTarget::Soft(buf.slice(r[1].clone())),
        mask: None,
    };
    // The gradient overlapping the input by one word.
    let over = r[0].start + n - 4..r[0].start + 2 * n - 4;
    let res = loss.run(&gb(r[0].clone()), Some(buf.slice(over)));
    assert!(
        matches!(res, Err(Error::InvalidBuffer { name: "grad", .. })),
        "{res:?}"
    );
    // An input range starting between two storage-offset boundaries.
    let res = loss.run(&gb(r[0].start + 4..r[0].end + 4), None);
    assert!(
        matches!(res, Err(Error::InvalidBuffer { name: "input", .. })),
        "{res:?}"
    );
    // A range shorter than the shape needs.
    let res = loss.run(&gb(r[0].start..r[0].end - 4), None);
    assert!(
        matches!(res, Err(Error::InvalidBuffer { name: "input", .. })),
        "{res:?}"
    );
    // Still usable.
    let ok = loss.run(&gb(r[0].clone()), Some(buf.slice(r[2].clone())));
    assert!(loss.read(&ok.unwrap()).is_ok());
}

#[test]
fn i32_index_targets_with_a_negative_ignore_index() {
    let Some(ctx) = common::gpu() else { return };
    let (dev, queue) = (ctx.device().unwrap(), ctx.queue().unwrap());
    let mut rng = Rng::new(7);
    let data = Data::random(&mut rng, &[2, 3, 16, 9], true, false);
    // PyTorch's ignore value in an i32 label map (what burn and torch int tensors hold).
    let labels: Vec<i32> = data
        .index
        .iter()
        .map(|&k| if rng.below(5) == 0 { -100 } else { k as i32 })
        .collect();
    let o = LossOptions::jaccard().ignore_index(-100);
    let loss = common::loss(&ctx, o);
    let wide: Vec<i64> = labels.iter().map(|&k| i64::from(k)).collect();
    let host = loss
        .forward_backward(&segloss::Batch {
            shape: &data.shape,
            input: &data.input,
            target: Target::IndexI64(&wide),
            mask: None,
        })
        .unwrap();
    let zeros = vec![0u8; 4 * data.shape.len()];
    let (buf, r) = pack(
        dev,
        queue,
        0,
        &[
            bytemuck::cast_slice(&data.input),
            bytemuck::cast_slice(&labels),
            &zeros,
        ],
    );
    let gb = GpuBatch {
        shape: &data.shape,
        input: buf.slice(r[0].clone()),
        target: GpuTarget::Index(buf.slice(r[1].clone())),
        mask: None,
    };
    let out = loss.run(&gb, Some(buf.slice(r[2].clone()))).unwrap();
    let out = loss.read(&out).unwrap();
    assert_eq!(out.loss.to_bits(), host.loss.to_bits());
    assert_eq!(read_range(&ctx, &buf, &r[2]), host.grad.unwrap());
}

#[test]
fn a_device_side_gradient_factor_scales_every_term_and_not_the_loss() {
    let Some(ctx) = common::gpu() else { return };
    let (dev, queue) = (ctx.device().unwrap(), ctx.queue().unwrap());
    let mut rng = Rng::new(8);
    let options = [
        LossOptions::dice(),
        LossOptions::jaccard().cross_entropy(segloss::CrossEntropy::softmax(0.7)),
        LossOptions::tversky(0.3, 0.7).activation(segloss::Activation::Sigmoid),
        {
            let mut o = LossOptions::dice();
            o.overlap = segloss::Overlap::GeneralizedDice {
                weight: segloss::GdlWeight::Square,
            };
            o
        },
    ];
    for (case, o) in options.into_iter().enumerate() {
        let index = case % 2 == 1;
        let data = Data::random(&mut rng, &[2, 4, 13, 11], index, false);
        let loss = common::loss(&ctx, o);
        let host = loss.forward_backward(&data.batch()).unwrap();
        let target: &[u8] = if index {
            bytemuck::cast_slice(&data.index)
        } else {
            bytemuck::cast_slice(&data.soft)
        };
        let factor = -2.5f32;
        let zeros = vec![0u8; 4 * data.shape.len()];
        let (buf, r) = pack(
            dev,
            queue,
            0,
            &[
                bytemuck::cast_slice(&data.input),
                target,
                &zeros,
                bytemuck::bytes_of(&factor),
            ],
        );
        let gb = GpuBatch {
            shape: &data.shape,
            input: buf.slice(r[0].clone()),
            target: if index {
                GpuTarget::Index(buf.slice(r[1].clone()))
            } else {
                GpuTarget::Soft(buf.slice(r[1].clone()))
            },
            mask: None,
        };
        let want: Vec<f32> = host
            .grad
            .clone()
            .unwrap()
            .iter()
            .map(|g| g * factor)
            .collect();
        // One call.
        let mut enc = dev.create_command_encoder(&Default::default());
        let res = loss
            .encode_scaled(
                &mut enc,
                &gb,
                buf.slice(r[2].clone()),
                buf.slice(r[3].clone()),
            )
            .unwrap();
        queue.submit([enc.finish()]);
        assert_eq!(loss.read(&res).unwrap().loss.to_bits(), host.loss.to_bits());
        let got = read_range(&ctx, &buf, &r[2]);
        let max = want.iter().fold(0f32, |m, v| m.max(v.abs()));
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() <= 1e-6 * max, "case {case}: {g} vs {w}");
        }
        // Forward (statistics, then the loss), backward (the scaled gradient).
        let mut enc = dev.create_command_encoder(&Default::default());
        let st = loss.encode_stats(&mut enc, &gb).unwrap();
        let fwd = loss.encode_finish(&mut enc, &gb, &st, None).unwrap();
        queue.submit([enc.finish()]);
        assert_eq!(loss.read(&fwd).unwrap().loss.to_bits(), host.loss.to_bits());
        let mut enc = dev.create_command_encoder(&Default::default());
        queue.write_buffer(&buf, r[2].start, &zeros);
        loss.encode_finish_scaled(
            &mut enc,
            &gb,
            &st,
            buf.slice(r[2].clone()),
            buf.slice(r[3].clone()),
        )
        .unwrap();
        queue.submit([enc.finish()]);
        let split = read_range(&ctx, &buf, &r[2]);
        assert_eq!(split, got, "case {case}: split phases = one call");
    }
}
