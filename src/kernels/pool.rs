//! `pool`: a full-resolution target downsampled to a deep-supervision head's size (area
//! or nearest-exact), as a soft target and a keep-mask. File: `shaders/pool.wgsl`. CPU
//! twin: `deep::pool::pool_host`.

use super::Access::{self, *};

/// The WGSL file.
pub const SOURCE: &str = include_str!("../../shaders/pool.wgsl");

/// Binding i's access.
pub const ACCESS: &[Access] = &[Read, Read, Read, ReadWrite, ReadWrite];

/// Most spatial dimensions (`array<u32, 6>` in `PoolParams`).
pub const MAX_RANK: usize = 6;

/// Most target pixels one coarse cell may cover: an invocation walks its window once per
/// class of its chunk, about 3 loop iterations per pixel (the odometer's carries
/// included), within llvmpipe's budget of 65 535 iterations per invocation.
pub const MAX_WINDOW: usize = 16_384;

/// Classes per invocation for a window of `window` pixels: as many as llvmpipe's loop
/// budget allows (at least 1, at most `classes`).
pub fn chunk(classes: usize, window: usize) -> usize {
    (60_000 / (3 * window + 8)).clamp(1, classes.max(1))
}

/// One dispatch's parameters (`PoolParams` in pool.wgsl).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct PoolParams {
    pub batch: u32,
    pub classes: u32,
    pub rank: u32,
    /// 1: nearest-exact, 0: area.
    pub nearest: u32,
    /// 1: f32 soft target `[B, C, N]`; 0: labels `[B, N]`.
    pub soft: u32,
    pub has_ignore: u32,
    pub ignore: u32,
    pub has_mask: u32,
    pub src_pixels: u32,
    pub dst_pixels: u32,
    pub cell_base: u32,
    /// Invocations: B · class chunks · M.
    pub cells: u32,
    /// Classes per invocation.
    pub chunk: u32,
    pub src: [u32; MAX_RANK],
    pub dst: [u32; MAX_RANK],
    pub scale: [f32; MAX_RANK],
}

bindings! {
    super::Kernel::Pool;
    /// 0: the dispatch's params.
    params,
    /// 1: the full-resolution target: labels `[B, N]` (u32) or soft `[B, C, N]` (f32).
    target,
    /// 2: its keep-mask bytes, or a placeholder.
    mask,
    /// 3: the pooled soft target `[B, C, M]`.
    pooled,
    /// 4: the pooled keep-mask bytes `[B, M]` (cleared before), then a status word.
    keep,
}
