//! `item_sums`: Tiles → one (tp, fp, fn, present) row per (image, class) item. File:
//! `shaders/item_sums.wgsl`. CPU twin: `reference::stats` (its sums over pixels).

use super::Access::{self, *};

/// The WGSL file (its `#import`s resolved by `Kernel::source`).
pub const SOURCE: &str = include_str!("../../shaders/item_sums.wgsl");

/// Binding i's access.
pub const ACCESS: &[Access] = &[Read, Read, ReadWrite];

bindings! {
    super::Kernel::ItemSums;
    /// 0: the call's params.
    params,
    /// 1: `[B, C, tiles]`.
    partials,
    /// 2: `[B, C]` (+ the compound block).
    items,
}
