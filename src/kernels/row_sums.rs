//! `row_sums`: Per-image (active classes, Σ ℓ) and per-class (Σ_b statistics, Σ_b
//! active ℓ) sums. File: `shaders/row_sums.wgsl`. CPU twin: `reference::summarize`.

use super::Access::{self, *};

/// The WGSL file (its `#import`s resolved by `Kernel::source`).
pub const SOURCE: &str = include_str!("../../shaders/row_sums.wgsl");

/// Binding i's access.
pub const ACCESS: &[Access] = &[Read, Read, Read, Read, ReadWrite, ReadWrite];

bindings! {
    super::Kernel::RowSums;
    /// 0: the call's params.
    params,
    /// 1: `[B, C]` statistics.
    items,
    /// 2: class weights, or a placeholder.
    weights,
    /// 3: status bits.
    status,
    /// 4: per-image sums `[2B + 1]`.
    work,
    /// 5: the shared block's class rows.
    shared,
}
