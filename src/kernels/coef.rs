//! `coef`: Each (image, class) item's gradient coefficients d(loss)/d(tp, fp, fn). File: `shaders/coef.wgsl`. CPU twin: `reference::finish` (its coefficients).

use super::Access::{self, *};
use super::{Kernel, Kernels, Variant};

/// The WGSL file (its `#import`s resolved by `Kernel::source`).
pub const SOURCE: &str = include_str!("../../shaders/coef.wgsl");

/// Binding i's access.
pub const ACCESS: &[Access] = &[
    Read, Read, Read, ReadWrite, ReadWrite, ReadWrite, Read, Read,
];

/// What one dispatch binds, by name.
pub struct Bindings<'a> {
    /// 0: the call's params.
    pub params: wgpu::BindingResource<'a>,
    /// 1: `[B, C]` statistics.
    pub items: wgpu::BindingResource<'a>,
    /// 2: class weights, or a placeholder.
    pub weights: wgpu::BindingResource<'a>,
    /// 3: status bits (atomic).
    pub status: wgpu::BindingResource<'a>,
    /// 4: image-level values.
    pub out: wgpu::BindingResource<'a>,
    /// 5: `[B, C]` coefficients.
    pub coef: wgpu::BindingResource<'a>,
    /// 6: the shared block.
    pub shared: wgpu::BindingResource<'a>,
    /// 7: per-image sums and global counts.
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
            Kernel::Coef,
            variant,
            &[
                self.params.clone(),
                self.items.clone(),
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
