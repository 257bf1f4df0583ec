//! `grad`: d(loss)/d(input), elementwise. File: `shaders/grad.wgsl`. CPU twin: `reference::grad`.

use super::Access::{self, *};
use super::{Kernel, Kernels, Variant};

/// The WGSL file (its `#import`s resolved by `Kernel::source`).
pub const SOURCE: &str = include_str!("../../shaders/grad.wgsl");

/// Binding i's access.
pub const ACCESS: &[Access] = &[Read, Read, Read, Read, Read, ReadWrite, Read, Read];

/// What one dispatch binds, by name.
pub struct Bindings<'a> {
    /// 0: the window's params.
    pub params: wgpu::BindingResource<'a>,
    /// 1: logits or probabilities.
    pub input: wgpu::BindingResource<'a>,
    /// 2: targets.
    pub labels: wgpu::BindingResource<'a>,
    /// 3: keep-mask bytes, or a placeholder.
    pub mask: wgpu::BindingResource<'a>,
    /// 4: coefficients and the pixel terms' scales.
    pub coef: wgpu::BindingResource<'a>,
    /// 5: the gradient `[B, C, N]` (or a window's chunk).
    pub grad: wgpu::BindingResource<'a>,
    /// 6: per-class constants of the compound terms.
    pub aux: wgpu::BindingResource<'a>,
    /// 7: `softmax_dot`'s rows (chunked softmax), or a placeholder.
    pub pix: wgpu::BindingResource<'a>,
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
            Kernel::Grad,
            variant,
            &[
                self.params.clone(),
                self.input.clone(),
                self.labels.clone(),
                self.mask.clone(),
                self.coef.clone(),
                self.grad.clone(),
                self.aux.clone(),
                self.pix.clone(),
            ],
            groups,
        );
    }
}
