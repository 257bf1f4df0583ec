//! `counts`: per-(image, class) counts (tp, predicted, labelled) of a hard prediction
//! against a label map, for [`crate::metrics`]. File: `shaders/counts.wgsl`. CPU twin:
//! `metrics::count`.

use super::Access::{self, *};
use super::{Kernel, Kernels, Variant};

/// The WGSL file.
pub const SOURCE: &str = include_str!("../../shaders/counts.wgsl");

/// Binding i's access.
pub const ACCESS: &[Access] = &[Read, Read, Read, Read, ReadWrite];

/// Pixels per invocation (`PX` in counts.wgsl).
pub const PX: u32 = 4;

/// Most classes a scored prediction takes on the GPU (its argmax loops over every class
/// per pixel, within llvmpipe's loop budget).
pub const MAX_SCORED_CLASSES: usize = 4096;

/// One window's parameters (`CountParams` in counts.wgsl).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct CountParams {
    pub batch: u32,
    pub classes: u32,
    pub pixels: u32,
    pub scores: u32,
    pub ignore: u32,
    pub has_ignore: u32,
    pub has_mask: u32,
    pub pixel_base: u32,
}

/// What one dispatch binds, by name.
pub struct Bindings<'a> {
    /// 0: the window's params.
    pub params: wgpu::BindingResource<'a>,
    /// 1: label map `[B, N]` (u32) or scores `[B, C, N]` (f32).
    pub pred: wgpu::BindingResource<'a>,
    /// 2: label map `[B, N]` (u32).
    pub target: wgpu::BindingResource<'a>,
    /// 3: keep-mask bytes, or a placeholder.
    pub mask: wgpu::BindingResource<'a>,
    /// 4: `[B, C, 3]` counts + a status word.
    pub counts: wgpu::BindingResource<'a>,
}

impl Bindings<'_> {
    /// Records one dispatch of `groups` workgroups.
    pub fn record(
        &self,
        kernels: &Kernels,
        encoder: &mut wgpu::CommandEncoder,
        groups: (u32, u32, u32),
    ) {
        kernels.dispatch(
            encoder,
            Kernel::Counts,
            Variant::default(),
            &[
                self.params.clone(),
                self.pred.clone(),
                self.target.clone(),
                self.mask.clone(),
                self.counts.clone(),
            ],
            groups,
        );
    }
}
