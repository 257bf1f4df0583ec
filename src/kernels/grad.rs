//! `grad`: d(loss)/d(input), elementwise. File: `shaders/grad.wgsl`. CPU twin:
//! `reference::grad`.

use super::Access::{self, *};

/// The WGSL file (its `#import`s resolved by `Kernel::source`).
pub const SOURCE: &str = include_str!("../../shaders/grad.wgsl");

/// Its twin unrolled over the classes, for CPU adapters (`Variant::classes`).
pub const UNROLLED: &str = include_str!("../../shaders/unrolled/grad.wgsl");

/// Binding i's access.
pub const ACCESS: &[Access] = &[Read, Read, Read, Read, Read, ReadWrite, Read, Read];

bindings! {
    super::Kernel::Grad;
    /// 0: the window's params.
    params,
    /// 1: logits or probabilities.
    input,
    /// 2: targets.
    labels,
    /// 3: keep-mask bytes, or a placeholder.
    mask,
    /// 4: coefficients and the pixel terms' scales.
    coef,
    /// 5: the gradient `[B, C, N]` (or a window's chunk).
    grad,
    /// 6: per-class constants of the compound terms.
    aux,
    /// 7: `softmax_dot`'s rows (chunked softmax), or a placeholder.
    pix,
}
