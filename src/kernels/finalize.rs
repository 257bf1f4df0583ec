//! `finalize`: The loss, the dataset-level values and the global counts. File: `shaders/finalize.wgsl`. CPU twin: `reference::finish` (its loss).

use super::Access::{self, *};
use super::{Kernel, Kernels, Variant};

/// The WGSL file (its `#import`s resolved by `Kernel::source`).
pub const SOURCE: &str = include_str!("../../shaders/finalize.wgsl");

/// Binding i's access.
pub const ACCESS: &[Access] = &[
    Read, Read, ReadWrite, ReadWrite, ReadWrite, ReadWrite, ReadWrite,
];

/// What one dispatch binds, by name.
pub struct Bindings<'a> {
    /// 0: the call's params.
    pub params: wgpu::BindingResource<'a>,
    /// 1: class weights, or a placeholder.
    pub weights: wgpu::BindingResource<'a>,
    /// 2: status bits (atomic).
    pub status: wgpu::BindingResource<'a>,
    /// 3: `[loss, status, values…]`.
    pub out: wgpu::BindingResource<'a>,
    /// 4: the pixel terms' scales at `[B·C]`.
    pub coef: wgpu::BindingResource<'a>,
    /// 5: the shared block.
    pub shared: wgpu::BindingResource<'a>,
    /// 6: per-image sums and global counts.
    pub work: wgpu::BindingResource<'a>,
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
            Kernel::Finalize,
            variant,
            &[
                self.params.clone(),
                self.weights.clone(),
                self.status.clone(),
                self.out.clone(),
                self.coef.clone(),
                self.shared.clone(),
                self.work.clone(),
            ],
            groups,
        );
    }
}
