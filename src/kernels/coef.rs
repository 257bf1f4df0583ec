//! `coef`: Each (image, class) item's gradient coefficients d(loss)/d(tp, fp, fn).
//! File: `shaders/coef.wgsl`. CPU twin: `reference::finish` (its coefficients).

use super::Access::{self, *};

/// The WGSL file (its `#import`s resolved by `Kernel::source`).
pub const SOURCE: &str = include_str!("../../shaders/coef.wgsl");

/// Binding i's access.
pub const ACCESS: &[Access] = &[
    Read, Read, Read, ReadWrite, ReadWrite, ReadWrite, Read, Read,
];

bindings! {
    super::Kernel::Coef;
    /// 0: the call's params.
    params,
    /// 1: `[B, C]` statistics.
    items,
    /// 2: class weights, or a placeholder.
    weights,
    /// 3: status bits (atomic).
    status,
    /// 4: image-level values.
    out,
    /// 5: `[B, C]` coefficients.
    coef,
    /// 6: the shared block.
    shared,
    /// 7: per-image sums and global counts.
    work,
}
