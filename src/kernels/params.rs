//! The params block every kernel reads at binding 0 (a read-only storage buffer; see
//! `shaders/shared/common.wgsl`, whose `Params` it mirrors).

use bytemuck::{Pod, Zeroable};

/// The params block of every kernel (binding 0). Keep in sync with `shaders/shared/common.wgsl`
/// (`Params`); `tests/shaders.rs` checks the size against naga's layout.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct Params {
    pub batch: u32,
    pub classes: u32,
    pub pixels: u32,
    pub tiles: u32,
    pub class_start: u32,
    pub ignore_index: u32,
    pub has_ignore: u32,
    pub tile_base: u32,
    pub threshold: f32,
    pub alpha: f32,
    pub beta: f32,
    pub smooth_nr: f32,
    pub smooth_dr: f32,
    pub gamma: f32,
    pub w_dataset: f32,
    pub w_image: f32,
    pub w_class: f32,
    pub log_loss: u32,
    pub reduction: u32,
    pub has_weights: u32,
    pub present_all: u32,
    pub map_pixels: u32,
    pub pixel_base: u32,
    pub load_tile_base: u32,
    /// `finalize` phases: 1 summarize, 2 finish, 3 both.
    pub phase: u32,
    pub overlap_weight: f32,
    pub ce_kind: u32,
    pub ce_weight: f32,
    pub label_smoothing: f32,
    pub focal_kind: u32,
    pub focal_weight: f32,
    pub focal_gamma: f32,
    pub alpha_mode: u32,
    /// 1: `Activation::None` inputs must lie in [0, 1] (status bit 8 otherwise).
    pub check_probabilities: u32,
    /// Generalized Dice weights: 0 none (per-class items), 1 simple, 2 square, 3 uniform.
    pub gdl_weight: u32,
    /// The gradient's factor (1, or a framework's incoming gradient of the loss, copied
    /// in on the device by [`crate::Loss::encode_finish_scaled`]): scales the
    /// coefficients and the pixel terms' scales, hence every gradient element.
    pub grad_scale: f32,
}
