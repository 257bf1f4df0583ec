//! `norm`: A chunked softmax's partial normalisers per (image, class chunk, pixel). File: `shaders/norm.wgsl`. CPU twin: the softmax of `reference::activate` (one pass over all classes).

use super::Access::{self, *};
use super::{Kernel, Kernels, Variant};

/// The WGSL file (its `#import`s resolved by `Kernel::source`).
pub const SOURCE: &str = include_str!("../../shaders/norm.wgsl");

/// Binding i's access.
pub const ACCESS: &[Access] = &[Read, Read, Read, Read, ReadWrite];

/// What one dispatch binds, by name.
pub struct Bindings<'a> {
    /// 0: the window's params.
    pub params: wgpu::BindingResource<'a>,
    /// 1: logits `[B, C, N]` (or a window's chunk).
    pub input: wgpu::BindingResource<'a>,
    /// 2: targets (unused; shared layout).
    pub labels: wgpu::BindingResource<'a>,
    /// 3: keep-mask bytes, or a placeholder.
    pub mask: wgpu::BindingResource<'a>,
    /// 4: `[B, chunks, quads]` × (max, Σ exp).
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
            Kernel::Norm,
            variant,
            &[
                self.params.clone(),
                self.input.clone(),
                self.labels.clone(),
                self.mask.clone(),
                self.norms.clone(),
            ],
            groups,
        );
    }
}
