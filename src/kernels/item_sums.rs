//! `item_sums`: Tiles → one (tp, fp, fn, present) row per (image, class) item. File: `shaders/item_sums.wgsl`. CPU twin: `reference::stats` (its sums over pixels).

use super::Access::{self, *};
use super::{Kernel, Kernels, Variant};

/// The WGSL file (its `#import`s resolved by `Kernel::source`).
pub const SOURCE: &str = include_str!("../../shaders/item_sums.wgsl");

/// Binding i's access.
pub const ACCESS: &[Access] = &[Read, Read, ReadWrite];

/// What one dispatch binds, by name.
pub struct Bindings<'a> {
    /// 0: the call's params.
    pub params: wgpu::BindingResource<'a>,
    /// 1: `[B, C, tiles]`.
    pub partials: wgpu::BindingResource<'a>,
    /// 2: `[B, C]` (+ the compound block).
    pub items: wgpu::BindingResource<'a>,
}

impl Bindings<'_> {
    /// Records one dispatch of `groups` workgroups.
    pub fn record(
        &self,
        kernels: &Kernels,
        encoder: &mut wgpu::CommandEncoder,
        variant: Variant,
        groups: (u32, u32, u32),
    ) {
        kernels.dispatch(
            encoder,
            Kernel::ItemSums,
            variant,
            &[
                self.params.clone(),
                self.partials.clone(),
                self.items.clone(),
            ],
            groups,
        );
    }
}
