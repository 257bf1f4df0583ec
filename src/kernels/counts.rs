//! `counts`: per-(image, class) counts (tp, predicted, labelled) of a hard prediction
//! against a label map, for [`crate::metrics`]. File: `shaders/counts.wgsl`. CPU twin:
//! `metrics::count`.

use super::Access::{self, *};

/// The WGSL file.
pub const SOURCE: &str = include_str!("../../shaders/counts.wgsl");

/// Binding i's access.
pub const ACCESS: &[Access] = &[Read, Read, Read, Read, ReadWrite];

/// Classes per workgroup row (`CHUNK` in counts.wgsl).
pub const CHUNK: usize = 1024;

/// Pixels per invocation of a count over `classes` classes. On a CPU adapter each
/// workgroup's histogram (cleared, a barrier, added to the global counts) costs as much
/// as hundreds of pixels, so label maps and argmax take up to `CPU_PX` pixels per
/// invocation (measured on lavapipe, 2D evaluate set: 4 → 64 pixels ran 2.4× faster);
/// a pixel's loop over the classes (argmax, threshold, multi-hot) keeps px × classes
/// within llvmpipe's budget of 65 535 loop iterations per invocation. GPUs keep 4
/// pixels (many small workgroups keep them busy).
pub fn pixels_per_invocation(classes: usize, per_class: bool, argmax: bool, cpu: bool) -> u32 {
    const CPU_PX: usize = 64;
    const BUDGET: usize = 16_384;
    if !cpu {
        return 4;
    }
    let looped = if per_class {
        classes.min(CHUNK)
    } else if argmax {
        classes
    } else {
        1
    };
    (BUDGET / looped.max(1)).clamp(4, CPU_PX) as u32
}

/// Most classes a scored prediction takes on the GPU (its argmax loops over every class
/// per pixel, within llvmpipe's loop budget).
pub const MAX_SCORED_CLASSES: usize = 4096;

/// One window's parameters (`CountParams` in counts.wgsl).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct CountParams {
    pub batch: u32,
    pub classes: u32,
    pub pixels: u32,
    pub scores: u32,
    pub ignore: u32,
    pub has_ignore: u32,
    pub has_mask: u32,
    pub pixel_base: u32,
    /// 1: `target` holds f32 one-hot / multi-hot `[B, C, N]`.
    pub multi_hot: u32,
    /// The raw-score cut of a threshold prediction (`scores` = 2).
    pub cut: f32,
    /// Pixels per invocation ([`pixels_per_invocation`]).
    pub px: u32,
}

bindings! {
    super::Kernel::Counts;
    /// 0: the window's params.
    params,
    /// 1: label map `[B, N]` (u32) or scores `[B, C, N]` (f32; argmax, or a per-class
    /// cut).
    pred,
    /// 2: label map `[B, N]` (u32) or one-hot / multi-hot `[B, C, N]` (f32).
    target,
    /// 3: keep-mask bytes, or a placeholder.
    mask,
    /// 4: `[B, C, 3]` counts + a status word.
    counts,
}
