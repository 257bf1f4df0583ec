//! The shared device and data of the burn tests.
#![allow(dead_code)]

use burn::tensor::wgpu::WgpuBackend;
use burn::tensor::Device;

/// The root crate's test logger: fails a test that makes wgpu log an error (the
/// validation layer's messages included) and gives Mesa a private runtime directory.
#[path = "../../../../tests/common/watch.rs"]
pub mod watch;

/// burn's wgpu device shared with segloss (the zero-copy path), once per process, on
/// the graphics API `WGPU_BACKEND` names (cubecl does not read that variable itself:
/// CI runs these tests once on Vulkan and once on GL).
pub fn shared() -> Device {
    static SHARED: std::sync::OnceLock<Device> = std::sync::OnceLock::new();
    watch::install();
    // A checkpoint: wgpu errors logged on this test's thread since its last call fail it.
    watch::check();
    SHARED
        .get_or_init(|| {
            let api = match std::env::var("WGPU_BACKEND").as_deref() {
                Ok("gl") | Ok("opengl") | Ok("gles") => WgpuBackend::Gl,
                Ok("vulkan") => WgpuBackend::Vulkan,
                _ => WgpuBackend::Auto,
            };
            let options = Device::wgpu_options();
            let options = if api == WgpuBackend::Auto {
                options
            } else {
                options.graphics_api(api)
            };
            let device = segloss_burn::init_wgpu(options).expect("burn's wgpu device");
            let ctx = segloss_burn::shared_context(&device).expect("shared context");
            eprintln!("burn + segloss on {:?}", ctx.backend());
            device
        })
        .clone()
}

/// Deterministic data in [lo, hi).
pub fn data(n: usize, seed: u64, lo: f32, hi: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            lo + (hi - lo) * ((s >> 40) as f32 / (1u64 << 24) as f32)
        })
        .collect()
}
