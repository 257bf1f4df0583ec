//! burn's wgpu runtime and a segloss context on one `wgpu::Device`: the devices the
//! zero-copy path runs on.

use std::sync::Mutex;

use burn::tensor::wgpu::{WgpuOptions, WgpuSetup};
use burn::tensor::Device;
use segloss::{Context, Error};

/// The burn devices registered here, each with its segloss context.
static SHARED: Mutex<Vec<(Device, Context)>> = Mutex::new(Vec::new());

fn register(device: Device, ctx: Context) {
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    shared.retain(|(d, _)| *d != device);
    shared.push((device, ctx));
}

fn init_error(e: impl std::fmt::Display) -> Error {
    Error::RequestDevice(format!(
        "burn's wgpu runtime could not be initialised ({e}); it cannot be once a tensor \
         has touched the device: call this before creating the model"
    ))
}

/// Initialises burn's wgpu runtime with `options` and a segloss context on the same
/// `wgpu::Device` and queue, and returns the burn device: [`crate::SegLoss`] then runs
/// zero-copy on tensors of this device (and of its `.autodiff()` form).
///
/// Call it before any tensor touches the device (burn initialises a runtime lazily,
/// once). `Device::wgpu_options()` selects burn's default device, so
/// `Device::default()` then names the same runtime.
pub fn init_wgpu(options: WgpuOptions) -> segloss::Result<Device> {
    let (device, setup) = options.init_with_setup().map_err(init_error)?;
    let info = setup.adapter.get_info();
    let ctx = Context::from_wgpu(setup.device, setup.queue, info)?;
    register(device.clone(), ctx);
    Ok(device)
}

/// [`init_wgpu`] on burn's default wgpu device with its default options.
pub fn init_default_wgpu() -> segloss::Result<Device> {
    init_wgpu(Device::wgpu_options())
}

/// Registers an application's own wgpu device and queue with burn (a new burn device on
/// them, as `Device::wgpu_options().setup(setup).init()` does) and with segloss, for
/// an application that already owns a `wgpu::Device` (its renderer's, say).
pub fn register_wgpu(setup: WgpuSetup) -> segloss::Result<Device> {
    let info = setup.adapter.get_info();
    let ctx = Context::from_wgpu(setup.device.clone(), setup.queue.clone(), info)?;
    let device = Device::wgpu_options()
        .setup(setup)
        .init()
        .map_err(init_error)?;
    register(device.clone(), ctx);
    Ok(device)
}

/// The segloss context sharing `device`'s `wgpu::Device`, if `device` (or the device
/// it is the autodiff form of) was set up by [`init_wgpu`], [`init_default_wgpu`] or
/// [`register_wgpu`].
pub fn shared_context(device: &Device) -> Option<Context> {
    let inner = device.clone().inner();
    let shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    shared
        .iter()
        .find(|(d, _)| *d == inner)
        .map(|(_, c)| c.clone())
}
