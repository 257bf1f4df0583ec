//! The benchmark's inputs, shared by the timed runs and `--instructions`: deterministic
//! pseudo-random data (xorshift, no RNG dependency), its device buffers, and the
//! compound loss measured beside soft Dice.

use segloss::wgpu::{self, util::DeviceExt};
use segloss::{LossOptions, Shape};

/// Logits, soft targets and a label map of one shape.
pub struct Data {
    /// Logits in [−4, 4), `[B, C, S...]`.
    pub logits: Vec<f32>,
    /// Soft targets in [0, 1], `[B, C, S...]`.
    pub soft: Vec<f32>,
    /// Class indices in 0..C, `[B, S...]`.
    pub index: Vec<u32>,
}

impl Data {
    /// The same values for the same shape, every run.
    pub fn new(shape: &Shape) -> Self {
        let mut s = 0x9E37_79B9u32;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            s
        };
        let logits = (0..shape.len())
            .map(|_| (next() % 2000) as f32 / 250.0 - 4.0)
            .collect();
        let soft = (0..shape.len())
            .map(|_| (next() % 1001) as f32 / 1000.0)
            .collect();
        let index = (0..shape.map_len())
            .map(|_| next() % shape.classes() as u32)
            .collect();
        Data {
            logits,
            soft,
            index,
        }
    }
}

/// A buffer holding `bytes`.
pub fn upload(dev: &wgpu::Device, bytes: &[u8], usage: wgpu::BufferUsages) -> wgpu::Buffer {
    dev.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: None,
        contents: bytes,
        usage,
    })
}

/// A gradient buffer of `len` f32.
pub fn grad_buffer(dev: &wgpu::Device, len: usize, usage: wgpu::BufferUsages) -> wgpu::Buffer {
    dev.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: 4 * len as u64,
        usage,
        mapped_at_creation: false,
    })
}

/// 0.5·CE + 0.5·soft Dice: the compound loss of the benchmark.
pub fn compound() -> LossOptions {
    LossOptions::dice()
        .overlap_weight(0.5)
        .cross_entropy(segloss::CrossEntropy::softmax(0.5))
}
