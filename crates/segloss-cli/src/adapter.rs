//! Which adapter a command runs on: the flags every subcommand shares (`--backend`,
//! `--adapter N`, `--cpu`) over the library's adapter list and chooser
//! (`segloss::adapters`). Without flags the choice is `segloss::Context::new()`'s:
//! wgpu's environment variables (`WGPU_BACKEND`, `WGPU_ADAPTER_NAME`,
//! `WGPU_POWER_PREF`), then wgpu's default adapter.

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
#[derive(clap::Args, Clone, Debug)]
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

impl AdapterArgs {
    /// The backends `--backend` allows (all by default; `WGPU_BACKEND` narrows
    /// segloss's instance itself).
    fn backends(&self) -> wgpu::Backends {
        self.backend
            .map_or(wgpu::Backends::all(), BackendArg::backends)
    }
}

/// Every adapter segloss's instance sees on the allowed backends, in wgpu's order (the
/// numbers of `--adapter N`).
pub fn list(args: &AdapterArgs) -> Vec<wgpu::Adapter> {
    segloss::adapters::list(args.backends())
}

/// The adapter the flags choose among `adapters`, with its index: `--adapter N`, else
/// the library's own choice (`segloss::adapters::default_index`, as `Context::new()`);
/// `Ok(None)` when there is none and none was named.
pub fn choose(
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
    if adapters.is_empty() {
        return Ok(None);
    }
    let k = segloss::adapters::default_index(adapters)
        .map_err(|e| format!("{e} (unset it, or list the adapters with `segloss doctor`)"))?;
    Ok(Some((k, adapters[k].clone())))
}

/// A segloss context on `adapter`: the library's device request and device-lost
/// callback (`Context::on_adapter`).
pub fn open(adapter: &wgpu::Adapter) -> AnyResult<Context> {
    Ok(Context::on_adapter(adapter)?)
}

/// The context the flags ask for: the chosen adapter's, else (no adapter, none named)
/// the CPU reference with a notice on stderr.
pub fn context(args: &AdapterArgs) -> AnyResult<Context> {
    if args.cpu {
        return Ok(Context::cpu());
    }
    match choose(&list(args), args)? {
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
