//! `norm`: A chunked softmax's partial normalisers per (image, class chunk, pixel).
//! File: `shaders/norm.wgsl`. CPU twin: the softmax of `reference::activate` (one pass
//! over all classes).

use super::Access::{self, *};

/// The WGSL file (its `#import`s resolved by `Kernel::source`).
pub const SOURCE: &str = include_str!("../../shaders/norm.wgsl");

/// Binding i's access.
pub const ACCESS: &[Access] = &[Read, Read, Read, Read, ReadWrite];

bindings! {
    super::Kernel::Norm;
    /// 0: the window's params.
    params,
    /// 1: logits `[B, C, N]` (or a window's chunk).
    input,
    /// 2: targets (unused; shared layout).
    labels,
    /// 3: keep-mask bytes, or a placeholder.
    mask,
    /// 4: `[B, chunks, quads]` × (max, Σ exp).
    norms,
}
