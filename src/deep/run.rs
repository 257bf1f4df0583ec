//! A deep-supervision host call on a GPU context: the target and the heads uploaded once,
//! each coarse head's target pooled on the device (`shaders/pool.wgsl`) into buffers
//! that the loss reads as a soft target and keep-mask, every head's loss recorded into
//! one encoder and submitted once; the gradients and the status words read back together.

use super::pool::{self, PoolInput, Pooled};
use super::{in_head, DeepSupervision, DeepTarget, Head};
use crate::api::scoped;
use crate::context::Gpu;
use crate::error::{Error, Result};
use crate::output::{guard, parse};
use crate::plan::bytes_of_words as words;
use crate::readback::Pending;
use crate::resident::{GpuBatch, GpuResult, GpuTarget};
use crate::shape::{ignore_u32, mask_bytes, Shape};
use crate::transfer::{grad_buffer, read_back, whole, write};

/// A submitted deep-supervision call: each head's result on the device, and the
/// readback of the gradients and the pooling status words.
pub(super) struct Submitted {
    pub results: Vec<GpuResult>,
    pub pending: Pending,
    pub n_grads: usize,
}

/// Uploads, records and submits every head; nothing is waited for.
pub(super) fn submit(
    ds: &DeepSupervision,
    gpu: &Gpu,
    heads: &[Head<'_>],
    (shape, target, mask): (&Shape, DeepTarget<'_>, Option<&[bool]>),
    with_grad: bool,
) -> Result<Submitted> {
    // Pooled buffers, written in place where memory is the host's (as the host API's).
    let storage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
    let up =
        |label: &str, bytes: &[u8]| write(gpu, label, storage, bytes.len() as u64, &[(0, bytes)]);
    let spatial = &shape.dims()[2..];
    scoped(gpu, || {
        let (target_buf, soft) = match target {
            DeepTarget::Index(t) => (up("segloss.deep_target", bytemuck::cast_slice(t))?, false),
            DeepTarget::Soft(t) => (up("segloss.deep_target", bytemuck::cast_slice(t))?, true),
        };
        let mask_buf = match mask {
            Some(m) => Some(up("segloss.deep_mask", &mask_bytes(m))?),
            None => None,
        };
        let input = PoolInput {
            target: target_buf.slice(..),
            soft,
            mask: mask_buf.as_ref().map(|m| m.slice(..)),
            ignore: ignore_u32(ds.options().ignore_index),
            batch: shape.batch(),
            classes: shape.classes(),
            src: spatial,
        };
        let mut encoder = gpu.encoder("segloss.deep");
        let mut results: Vec<GpuResult> = Vec::new();
        let mut grads = Vec::new();
        let mut pooled: Vec<Pooled> = Vec::new();
        // Buffers that must live until the submission (wgpu keeps them; the handles
        // here are dropped at the end of the scope).
        let mut inputs = Vec::new();
        for (k, h) in heads.iter().enumerate() {
            let named = in_head(k);
            let x = up("segloss.deep_input", bytemuck::cast_slice(h.input)).map_err(&named)?;
            let grad = with_grad.then(|| grad_buffer(gpu, h.input.len()));
            let dst = &h.shape.dims()[2..];
            let result = if dst == spatial {
                let t = if soft {
                    GpuTarget::Soft(target_buf.slice(..))
                } else {
                    GpuTarget::Index(target_buf.slice(..))
                };
                let batch = GpuBatch {
                    shape: h.shape,
                    input: x.slice(..),
                    target: t,
                    mask: input.mask,
                };
                ds.full
                    .encode(&mut encoder, &batch, grad.as_ref().map(|g| g.slice(..)))
            } else {
                let p = pool::record(gpu, &mut encoder, &input, dst, ds.pooling).map_err(&named)?;
                let batch = GpuBatch {
                    shape: h.shape,
                    input: x.slice(..),
                    target: GpuTarget::Soft(p.target.slice(..)),
                    mask: Some(p.keep.slice(..p.keep_bytes)),
                };
                let r = ds
                    .coarse
                    .encode(&mut encoder, &batch, grad.as_ref().map(|g| g.slice(..)));
                pooled.push(p);
                r
            }
            .map_err(&named)?;
            results.push(result);
            grads.extend(grad);
            inputs.push(x);
        }
        // Every head's result, the gradients, then the pooling status words: one
        // readback for the whole call.
        let mut reads: Vec<_> = results.iter().map(|r| whole(r.buffer())).collect();
        let n_grads = grads.len();
        reads.extend(
            heads
                .iter()
                .zip(grads.drain(..))
                .map(|(h, g)| (g, words(h.input.len()))),
        );
        reads.extend(pooled.drain(..).map(|p| (p.keep, p.keep_bytes + 4)));
        let pending = read_back(gpu, encoder, reads);
        Ok(Submitted {
            results,
            pending,
            n_grads,
        })
    })
}

/// Each head's loss and gradient from the words read back: the pooling status words
/// first (a bad target value is the target's error), then each head's result (its
/// status, as `Loss::read` reports it), then the gradients.
pub(super) fn finish(
    ds: &DeepSupervision,
    heads: &[Head<'_>],
    shape: &Shape,
    (results, n_grads): (&[GpuResult], usize),
    mut bufs: Vec<Vec<f32>>,
) -> Result<(Vec<f32>, Vec<Vec<f32>>)> {
    let k = heads.len();
    for words in &bufs[k + n_grads..] {
        let status = words.last().map_or(0, |w| w.to_bits());
        if status & 1 != 0 {
            return Err(Error::ClassIndexOutOfRange {
                value: None,
                classes: shape.classes(),
                position: None,
            });
        }
        if status & 2 != 0 {
            return Err(Error::SoftTargetOutOfRange { position: None });
        }
    }
    bufs.truncate(k + n_grads);
    let grads = bufs.split_off(k);
    let mut losses = Vec::with_capacity(k);
    for (i, ((h, r), words)) in heads.iter().zip(results).zip(bufs).enumerate() {
        let loss = if h.shape.dims()[2..] == shape.dims()[2..] {
            &ds.full
        } else {
            &ds.coarse
        };
        let out = parse(vec![words], r.values_len, r.classes)
            .and_then(|o| guard(loss.options(), o))
            .map_err(in_head(i))?;
        losses.push(out.loss);
    }
    let grads = grads
        .into_iter()
        .zip(heads)
        .map(|(mut g, h)| {
            g.truncate(h.input.len());
            g
        })
        .collect();
    Ok((losses, grads))
}
