//! `tile_sums`: Per-(image, class, tile) partial sums of (tp, fp, fn, present), and the
//! compound terms' tile sums. File: `shaders/tile_sums.wgsl`. CPU twin:
//! `reference::stats` (its per-pixel part).

use super::Access::{self, *};

/// The WGSL file (its `#import`s resolved by `Kernel::source`).
pub const SOURCE: &str = include_str!("../../shaders/tile_sums.wgsl");

/// Its twin unrolled over the classes, for CPU adapters (`Variant::classes`).
pub const UNROLLED: &str = include_str!("../../shaders/unrolled/tile_sums.wgsl");

/// Binding i's access.
pub const ACCESS: &[Access] = &[Read, Read, Read, Read, ReadWrite, ReadWrite, Read, Read];

bindings! {
    super::Kernel::TileSums;
    /// 0: the window's params.
    params,
    /// 1: logits or probabilities.
    input,
    /// 2: soft targets (f32 bits) or class indices.
    labels,
    /// 3: keep-mask bytes, or a placeholder.
    mask,
    /// 4: `[B, C, tiles]` (+ the compound block).
    partials,
    /// 5: status bits (atomic).
    status,
    /// 6: per-class constants of the compound terms.
    aux,
    /// 7: `norm`'s partials (chunked softmax), or a placeholder.
    norms,
}
