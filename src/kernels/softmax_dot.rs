//! `softmax_dot`: A chunked softmax's merged normaliser and Σ_j h_j per (image, class chunk, pixel). File: `shaders/softmax_dot.wgsl`. CPU twin: `reference::grad` (its softmax chain).

use super::Access::{self, *};
use super::{Kernel, Kernels, Variant};

/// The WGSL file (its `#import`s resolved by `Kernel::source`).
pub const SOURCE: &str = include_str!("../../shaders/softmax_dot.wgsl");

/// Binding i's access.
pub const ACCESS: &[Access] = &[Read, Read, Read, Read, Read, ReadWrite, Read, Read];

/// What one dispatch binds, by name.
pub struct Bindings<'a> {
    /// 0: the window's params.
    pub params: wgpu::BindingResource<'a>,
    /// 1: logits.
    pub input: wgpu::BindingResource<'a>,
    /// 2: targets.
    pub labels: wgpu::BindingResource<'a>,
    /// 3: keep-mask bytes, or a placeholder.
    pub mask: wgpu::BindingResource<'a>,
    /// 4: coefficients.
    pub coef: wgpu::BindingResource<'a>,
    /// 5: `[B, chunks, quads]` × (max, Σ exp, Σ_j h_j).
    pub pix: wgpu::BindingResource<'a>,
    /// 6: per-class constants of the compound terms.
    pub aux: wgpu::BindingResource<'a>,
    /// 7: `norm`'s partials.
    pub norms: wgpu::BindingResource<'a>,
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
            Kernel::SoftmaxDot,
            variant,
            &[
                self.params.clone(),
                self.input.clone(),
                self.labels.clone(),
                self.mask.clone(),
                self.coef.clone(),
                self.pix.clone(),
                self.aux.clone(),
                self.norms.clone(),
            ],
            groups,
        );
    }
}
