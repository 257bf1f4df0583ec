//! `softmax_dot`: A chunked softmax's merged normaliser and Σ_j h_j per (image, class
//! chunk, pixel). File: `shaders/softmax_dot.wgsl`. CPU twin: `reference::grad` (its
//! softmax chain).

use super::Access::{self, *};

/// The WGSL file (its `#import`s resolved by `Kernel::source`).
pub const SOURCE: &str = include_str!("../../shaders/softmax_dot.wgsl");

/// Binding i's access.
pub const ACCESS: &[Access] = &[Read, Read, Read, Read, Read, ReadWrite, Read, Read];

bindings! {
    super::Kernel::SoftmaxDot;
    /// 0: the window's params.
    params,
    /// 1: logits.
    input,
    /// 2: targets.
    labels,
    /// 3: keep-mask bytes, or a placeholder.
    mask,
    /// 4: coefficients.
    coef,
    /// 5: `[B, chunks, quads]` × (max, Σ exp, Σ_j h_j).
    pix,
    /// 6: per-class constants of the compound terms.
    aux,
    /// 7: `norm`'s partials.
    norms,
}
