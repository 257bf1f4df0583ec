//! `finalize`: The loss, the dataset-level values and the global counts. File:
//! `shaders/finalize.wgsl`. CPU twin: `reference::finish` (its loss).

use super::Access::{self, *};

/// The WGSL file (its `#import`s resolved by `Kernel::source`).
pub const SOURCE: &str = include_str!("../../shaders/finalize.wgsl");

/// Binding i's access.
pub const ACCESS: &[Access] = &[
    Read, Read, ReadWrite, ReadWrite, ReadWrite, ReadWrite, ReadWrite,
];

bindings! {
    super::Kernel::Finalize;
    /// 0: the call's params.
    params,
    /// 1: class weights, or a placeholder.
    weights,
    /// 2: status bits (atomic).
    status,
    /// 3: `[loss, status, values…]`.
    out,
    /// 4: the pixel terms' scales at `[B·C]`.
    coef,
    /// 5: the shared block.
    shared,
    /// 6: per-image sums and global counts.
    work,
}
