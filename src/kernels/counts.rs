//! `counts`: per-(image, class) counts (tp, predicted, labelled) of a hard prediction
//! against a label map, for [`crate::metrics`]. File: `shaders/counts.wgsl`. CPU twin:
//! `metrics::count`.

use super::Access::{self, *};

/// The WGSL file.
pub const SOURCE: &str = include_str!("../../shaders/counts.wgsl");

/// Binding i's access.
pub const ACCESS: &[Access] = &[Read, Read, Read, Read, ReadWrite];

/// Pixels per invocation (`PX` in counts.wgsl).
pub const PX: u32 = 4;

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
