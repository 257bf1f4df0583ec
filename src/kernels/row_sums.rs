//! `row_sums`: Per-image (active classes, Σ ℓ) and per-class (Σ_b statistics, Σ_b active ℓ) sums. File: `shaders/row_sums.wgsl`. CPU twin: `reference::summarize`.

use super::Access::{self, *};
use super::{Kernel, Kernels, Variant};

/// The WGSL file (its `#import`s resolved by `Kernel::source`).
pub const SOURCE: &str = include_str!("../../shaders/row_sums.wgsl");

/// Binding i's access.
pub const ACCESS: &[Access] = &[Read, Read, Read, Read, ReadWrite, ReadWrite];

/// What one dispatch binds, by name.
pub struct Bindings<'a> {
    /// 0: the call's params.
    pub params: wgpu::BindingResource<'a>,
    /// 1: `[B, C]` statistics.
    pub items: wgpu::BindingResource<'a>,
    /// 2: class weights, or a placeholder.
    pub weights: wgpu::BindingResource<'a>,
    /// 3: status bits.
    pub status: wgpu::BindingResource<'a>,
    /// 4: per-image sums `[2B + 1]`.
    pub work: wgpu::BindingResource<'a>,
    /// 5: the shared block's class rows.
    pub shared: wgpu::BindingResource<'a>,
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
            Kernel::RowSums,
            variant,
            &[
                self.params.clone(),
                self.items.clone(),
                self.weights.clone(),
                self.status.clone(),
                self.work.clone(),
                self.shared.clone(),
            ],
            groups,
        );
    }
}
