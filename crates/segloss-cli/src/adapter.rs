//! Which adapter a command runs on: the flags every subcommand shares (`--backend`,
//! `--adapter N`, `--cpu`), the adapters wgpu sees, and the segloss context on the
//! chosen one. Without flags the choice is `segloss::Context::new()`'s: wgpu's
//! environment variables (`WGPU_BACKEND`, `WGPU_ADAPTER_NAME`, `WGPU_POWER_PREF`), then
//! wgpu's default adapter.

use segloss::wgpu;
use segloss::Context;

use crate::AnyResult;

/// A wgpu backend, as `--backend` names it.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum BackendArg {
    /// Vulkan (Linux, Windows, Android; lavapipe and SwiftShader headless).
    Vulkan,
    /// OpenGL / OpenGL ES (through EGL on Linux: llvmpipe headless).
    Gl,
    /// Metal (Apple).
    Metal,
    /// DirectX 12 (Windows).
    Dx12,
}

impl BackendArg {
    fn backends(self) -> wgpu::Backends {
        match self {
            BackendArg::Vulkan => wgpu::Backends::VULKAN,
            BackendArg::Gl => wgpu::Backends::GL,
            BackendArg::Metal => wgpu::Backends::METAL,
            BackendArg::Dx12 => wgpu::Backends::DX12,
        }
    }
}

/// The adapter flags of every subcommand.
#[derive(clap::Args, Debug)]
pub struct AdapterArgs {
    /// Only this wgpu backend's adapters (default: WGPU_BACKEND, else all).
    #[arg(long, value_enum)]
    pub backend: Option<BackendArg>,
    /// The N-th adapter of `segloss doctor`'s list (default: the one
    /// segloss::Context::new() picks).
    #[arg(long, value_name = "N")]
    pub adapter: Option<usize>,
    /// Run on segloss's f64 CPU reference, not on an adapter.
    #[arg(long, conflicts_with_all = ["backend", "adapter"])]
    pub cpu: bool,
}

/// The wgpu instance of this run: wgpu's environment (`WGPU_BACKEND`, `WGPU_VALIDATION`,
/// …), its backends narrowed by `--backend`.
pub fn instance(args: &AdapterArgs) -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    if let Some(b) = args.backend {
        desc.backends = b.backends();
    }
    wgpu::Instance::new(desc)
}

/// Every adapter the instance sees, in wgpu's order (the numbers of `--adapter N`).
pub fn list(instance: &wgpu::Instance) -> Vec<wgpu::Adapter> {
    pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
}

/// The adapter the flags choose among `adapters`, with its index; `Ok(None)` when there
/// is none and none was named.
pub fn choose(
    instance: &wgpu::Instance,
    adapters: &[wgpu::Adapter],
    args: &AdapterArgs,
) -> AnyResult<Option<(usize, wgpu::Adapter)>> {
    if let Some(n) = args.adapter {
        return match adapters.get(n) {
            Some(a) => Ok(Some((n, a.clone()))),
            None => Err(format!(
                "--adapter {n}: wgpu sees {} adapter(s) here, numbered from 0 (list them with `segloss doctor`)",
                adapters.len()
            )
            .into()),
        };
    }
    // As segloss::Context::new(): WGPU_ADAPTER_NAME, else wgpu's default request.
    let chosen = match std::env::var("WGPU_ADAPTER_NAME") {
        Ok(name) => {
            let want = name.to_lowercase();
            let found = adapters
                .iter()
                .find(|a| a.get_info().name.to_lowercase().contains(&want))
                .cloned();
            if found.is_none() {
                return Err(format!(
                    "no adapter name contains WGPU_ADAPTER_NAME={name} (unset it, or list the adapters with `segloss doctor`)"
                )
                .into());
            }
            found
        }
        Err(_) => pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::from_env().unwrap_or_default(),
            ..Default::default()
        }))
        .ok(),
    };
    Ok(chosen.map(|a| {
        let info = a.get_info();
        let index = adapters
            .iter()
            .position(|b| b.get_info() == info)
            .unwrap_or(0);
        (index, a)
    }))
}

/// A segloss context on `adapter`, with the device segloss::Context::new() would
/// request (the adapter's own limits; mapped primary buffers where memory is the host's).
pub fn open(adapter: &wgpu::Adapter) -> AnyResult<Context> {
    let info = adapter.get_info();
    let host_memory = matches!(
        info.device_type,
        wgpu::DeviceType::Cpu | wgpu::DeviceType::IntegratedGpu
    );
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("segloss.device"),
        required_features: if host_memory {
            adapter.features() & wgpu::Features::MAPPABLE_PRIMARY_BUFFERS
        } else {
            wgpu::Features::empty()
        },
        required_limits: adapter.limits(),
        ..Default::default()
    }))
    .map_err(|e| {
        format!(
            "{} ({:?}): cannot open a device: {e}",
            info.name, info.backend
        )
    })?;
    Ok(Context::from_wgpu(device, queue, info)?)
}

/// The context the flags ask for: the chosen adapter's, else (no adapter, none named)
/// the CPU reference with a notice on stderr.
pub fn context(args: &AdapterArgs) -> AnyResult<Context> {
    if args.cpu {
        return Ok(Context::cpu());
    }
    let instance = instance(args);
    let adapters = list(&instance);
    match choose(&instance, &adapters, args)? {
        Some((_, a)) => open(&a),
        None => {
            eprintln!("{}", fallback_notice());
            Ok(Context::cpu())
        }
    }
}

/// The one line that says a command runs on the CPU because no adapter exists.
pub fn fallback_notice() -> &'static str {
    "notice: no GPU adapter found, running on segloss's f64 CPU reference"
}

/// One adapter's description: backend, name, type, driver, and the limits that bound
/// segloss's problems (one storage binding, one buffer, a workgroup, subgroups).
pub fn describe(index: usize, adapter: &wgpu::Adapter) -> String {
    let i = adapter.get_info();
    let l = adapter.limits();
    let mib = |b: u64| format!("{:.0} MiB", b as f64 / (1u64 << 20) as f64);
    let subgroups = if adapter.features().contains(wgpu::Features::SUBGROUP) {
        format!("{}..{}", i.subgroup_min_size, i.subgroup_max_size)
    } else {
        "not supported".to_string()
    };
    format!(
        "[{index}] {:?}: {} ({:?})\n    driver: {} | {}\n    max_storage_buffer_binding_size {}, max_buffer_size {}, max_compute_workgroup_size_x {}, subgroup sizes {subgroups}",
        i.backend,
        i.name,
        i.device_type,
        if i.driver.is_empty() { "?" } else { &i.driver },
        if i.driver_info.is_empty() { "?" } else { &i.driver_info },
        mib(l.max_storage_buffer_binding_size),
        mib(l.max_buffer_size),
        l.max_compute_workgroup_size_x,
    )
}
