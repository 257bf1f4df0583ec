//! The two APIs in a few lines: host slices in, loss and gradient out; then the same on
//! buffers that already live on the GPU.
//!
//! `cargo run --release --example quickstart`

use segloss::{monai, Batch, Context, GpuBatch, GpuTarget, Loss, Shape};
use wgpu::util::DeviceExt;

fn main() -> segloss::Result<()> {
    let ctx = Context::new_or_cpu();
    println!("backend: {:?}", ctx.backend());

    // MONAI's DiceLoss(softmax=True, soft_label=True, batch=True), in segloss terms.
    let options = monai::DiceLoss {
        softmax: true,
        soft_label: true,
        batch: true,
        ..Default::default()
    }
    .options();
    let loss = Loss::new(&ctx, options)?;

    // [B, C, H, W] logits and label-smoothed soft targets.
    let shape = Shape::new(&[2, 3, 64, 64])?;
    let logits: Vec<f32> = (0..shape.len())
        .map(|i| ((i * 7919) % 13) as f32 / 6.0 - 1.0)
        .collect();
    let target: Vec<f32> = (0..shape.len())
        .map(|i| {
            let (c, px) = ((i / shape.pixels()) % 3, i % shape.pixels());
            if px % 3 == c {
                0.9
            } else {
                0.05
            }
        })
        .collect();

    // Host API.
    let out = loss.forward_backward(&Batch::soft(&shape, &logits, &target))?;
    let grad = out.grad.as_deref().unwrap_or_default();
    let gnorm = grad.iter().map(|g| g * g).sum::<f32>().sqrt();
    println!("host API:         loss {:.6}, |grad| {gnorm:.3e}", out.loss);

    // GPU-resident API: the caller's buffers, nothing read back until asked.
    if let (Some(dev), Some(queue)) = (ctx.device(), ctx.queue()) {
        let storage = |bytes: &[u8], extra| {
            dev.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: None,
                contents: bytes,
                usage: wgpu::BufferUsages::STORAGE | extra,
            })
        };
        let x = storage(bytemuck::cast_slice(&logits), wgpu::BufferUsages::empty());
        let y = storage(bytemuck::cast_slice(&target), wgpu::BufferUsages::empty());
        let g = storage(&vec![0u8; 4 * shape.len()], wgpu::BufferUsages::COPY_SRC);
        let batch = GpuBatch {
            shape: &shape,
            input: x.slice(..),
            target: GpuTarget::Soft(y.slice(..)),
            mask: None,
        };
        let mut encoder = dev.create_command_encoder(&Default::default());
        let result = loss.encode(&mut encoder, &batch, Some(g.slice(..)))?;
        queue.submit([encoder.finish()]);
        // …the gradient in `g` can feed the next kernel of a training step here…
        let read = loss.read(&result)?;
        println!(
            "GPU-resident API: loss {:.6} (same as host: {})",
            read.loss,
            read.loss == out.loss
        );
    }
    Ok(())
}
