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

/// Most loop iterations one invocation may run (window × (rank + 1)), within llvmpipe's
/// budget of 65 535 per invocation.
pub const MAX_WINDOW_STEPS: usize = 60_000;

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
    pub cells: u32,
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
