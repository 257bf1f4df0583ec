//! `tile_sums`: Per-(image, class, tile) partial sums of (tp, fp, fn, present), and the compound terms' tile sums. File: `shaders/tile_sums.wgsl`. CPU twin: `reference::stats` (its per-pixel part).

use super::Access::{self, *};
use super::{Kernel, Kernels, Variant};

/// The WGSL file (its `#import`s resolved by `Kernel::source`).
pub const SOURCE: &str = include_str!("../../shaders/tile_sums.wgsl");

/// Binding i's access.
pub const ACCESS: &[Access] = &[Read, Read, Read, Read, ReadWrite, ReadWrite, Read, Read];

/// What one dispatch binds, by name.
pub struct Bindings<'a> {
    /// 0: the window's params.
    pub params: wgpu::BindingResource<'a>,
    /// 1: logits or probabilities.
    pub input: wgpu::BindingResource<'a>,
    /// 2: soft targets (f32 bits) or class indices.
    pub labels: wgpu::BindingResource<'a>,
    /// 3: keep-mask bytes, or a placeholder.
    pub mask: wgpu::BindingResource<'a>,
    /// 4: `[B, C, tiles]` (+ the compound block).
    pub partials: wgpu::BindingResource<'a>,
    /// 5: status bits (atomic).
    pub status: wgpu::BindingResource<'a>,
    /// 6: per-class constants of the compound terms.
    pub aux: wgpu::BindingResource<'a>,
    /// 7: `norm`'s partials (chunked softmax), or a placeholder.
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
            Kernel::TileSums,
            variant,
            &[
                self.params.clone(),
                self.input.clone(),
                self.labels.clone(),
                self.mask.clone(),
                self.partials.clone(),
                self.status.clone(),
                self.aux.clone(),
                self.norms.clone(),
            ],
            groups,
        );
    }
}
