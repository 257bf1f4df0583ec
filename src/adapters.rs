//! Which adapter segloss runs on: the one chooser behind [`Context::new`] and the
//! `segloss` command's `--adapter N` / `doctor` list ([`list`], [`default_index`],
//! [`Context::on_adapter`]). Every adapter comes from segloss's
//! one wgpu instance (so that wgpu can tell its devices' buffers apart), and a context on
//! any of them gets the device [`Context::new`] requests, with its device-lost callback.

use std::sync::{Arc, Mutex, OnceLock};

use crate::context::host_memory;
use crate::{Context, Error, Result};

/// One wgpu instance for every context segloss creates in this process. Besides saving
/// the driver's start-up cost, it lets wgpu check that a buffer belongs to the device it
/// is used with: resource ids from two instances can alias each other.
pub(crate) fn instance() -> &'static wgpu::Instance {
    static INSTANCE: OnceLock<wgpu::Instance> = OnceLock::new();
    INSTANCE.get_or_init(|| {
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env())
    })
}

/// One adapter request at a time in this process: wgpu-hal's EGL backend, which every
/// request enumerates, fails with BadAccess (a panic inside wgpu) when two threads
/// enumerate at once; parallel tests hit it.
static ONE_AT_A_TIME: futures::lock::Mutex<()> = futures::lock::Mutex::new(());

/// Every adapter of segloss's wgpu instance on `backends` (within `WGPU_BACKEND`), in
/// wgpu's order: the numbers of `segloss --adapter N`. Empty in the browser, where
/// WebGPU offers one adapter through [`Context::new_async`] and no list.
pub async fn list_async(backends: wgpu::Backends) -> Vec<wgpu::Adapter> {
    let _one = ONE_AT_A_TIME.lock().await;
    instance().enumerate_adapters(backends).await
}

/// [`list_async`], blocking (native only).
#[cfg(not(target_arch = "wasm32"))]
pub fn list(backends: wgpu::Backends) -> Vec<wgpu::Adapter> {
    pollster::block_on(list_async(backends))
}

/// wgpu's preference among device types for `WGPU_POWER_PREF` (wgpu-core's
/// `request_adapter`: a stable sort, none for the default preference).
fn rank(t: wgpu::DeviceType, pref: wgpu::PowerPreference) -> u8 {
    use wgpu::{DeviceType as D, PowerPreference as P};
    match (pref, t) {
        (P::None, _) => 0,
        (P::LowPower, D::IntegratedGpu) | (P::HighPerformance, D::DiscreteGpu) => 1,
        (P::LowPower, D::DiscreteGpu) | (P::HighPerformance, D::IntegratedGpu) => 2,
        (_, D::Other) => 3,
        (_, D::VirtualGpu) => 4,
        (_, D::Cpu) => 5,
    }
}

/// The index in `adapters` (as [`list`] gives them) of the adapter [`Context::new`]
/// picks: the first whose name contains `WGPU_ADAPTER_NAME` (any case), else wgpu's own
/// rule for `request_adapter` under `WGPU_POWER_PREF` (the first adapter, or the first
/// of the preferred device type). Two identical adapters keep their own indices.
pub fn default_index(adapters: &[wgpu::Adapter]) -> Result<usize> {
    let infos: Vec<(String, wgpu::DeviceType)> = adapters
        .iter()
        .map(|a| {
            let i = a.get_info();
            (i.name, i.device_type)
        })
        .collect();
    pick(
        &infos,
        std::env::var("WGPU_ADAPTER_NAME").ok().as_deref(),
        wgpu::PowerPreference::from_env().unwrap_or_default(),
    )
}

/// [`default_index`]'s rule over (name, device type) pairs, without the environment.
fn pick(
    infos: &[(String, wgpu::DeviceType)],
    name: Option<&str>,
    pref: wgpu::PowerPreference,
) -> Result<usize> {
    if let Some(name) = name {
        let want = name.to_lowercase();
        return infos
            .iter()
            .position(|(n, _)| n.to_lowercase().contains(&want))
            .ok_or_else(|| {
                Error::NoAdapter(format!("no adapter name contains WGPU_ADAPTER_NAME={name}"))
            });
    }
    (0..infos.len())
        .min_by_key(|&k| (rank(infos[k].1, pref), k))
        .ok_or_else(|| Error::NoAdapter("wgpu finds no adapter here".into()))
}

impl Context {
    /// A context on `adapter` (one of [`list`]), with the device [`Context::new`]
    /// requests: the adapter's own limits, mapped primary buffers where its memory is
    /// the host's, and a device-lost callback (so that a lost device is an error of the
    /// next call).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn on_adapter(adapter: &wgpu::Adapter) -> Result<Self> {
        pollster::block_on(Self::on_adapter_async(adapter))
    }

    /// Async form of [`Context::on_adapter`].
    pub async fn on_adapter_async(adapter: &wgpu::Adapter) -> Result<Self> {
        let _one = ONE_AT_A_TIME.lock().await;
        let info = adapter.get_info();
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("segloss.device"),
                // Host calls map storage buffers directly where memory is the host's.
                required_features: if host_memory(&info) {
                    adapter.features() & wgpu::Features::MAPPABLE_PRIMARY_BUFFERS
                } else {
                    wgpu::Features::empty()
                },
                required_limits: adapter.limits(),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| {
                Error::RequestDevice(format!("{} ({:?}): {e}", info.name, info.backend))
            })?;
        let lost = Arc::new(Mutex::new(None));
        let flag = lost.clone();
        device.set_device_lost_callback(move |reason, msg| {
            let mut l = flag.lock().unwrap_or_else(|e| e.into_inner());
            *l = Some(format!("{reason:?}: {msg}"));
        });
        let (ctx, scope) = Self::compile(device, queue, info, lost)?;
        match scope.pop().await {
            Some(e) => Err(Error::from_wgpu(e)),
            None => Ok(ctx),
        }
    }

    /// The adapter chosen by [`default_index`] among [`list`] (natively), or the
    /// browser's adapter (WebGPU has no list).
    pub(crate) async fn default_async() -> Result<Self> {
        // The adapters not chosen are dropped under the lock: dropping an EGL adapter
        // makes its context current, which fails (a panic inside wgpu-hal) while another
        // thread enumerates (seen in parallel tests).
        #[cfg(not(target_arch = "wasm32"))]
        let adapter = {
            let _one = ONE_AT_A_TIME.lock().await;
            let list = instance().enumerate_adapters(wgpu::Backends::all()).await;
            let k = default_index(&list)?;
            list[k].clone()
        };
        #[cfg(target_arch = "wasm32")]
        let adapter = instance()
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::from_env().unwrap_or_default(),
                ..Default::default()
            })
            .await
            .map_err(|e| Error::NoAdapter(e.to_string()))?;
        Self::on_adapter_async(&adapter).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wgpu::{DeviceType as D, PowerPreference as P};

    fn infos(list: &[(&str, D)]) -> Vec<(String, D)> {
        list.iter().map(|(n, t)| (n.to_string(), *t)).collect()
    }

    #[test]
    fn the_rule_of_wgpus_request_adapter() {
        let a = infos(&[
            ("llvmpipe", D::Cpu),
            ("GPU A", D::DiscreteGpu),
            ("iGPU", D::IntegratedGpu),
            ("GPU A", D::DiscreteGpu),
        ]);
        // No preference: the first, whatever its type.
        assert_eq!(pick(&a, None, P::None).ok(), Some(0));
        // A preference sorts by type, stably: of two identical GPUs, the first.
        assert_eq!(pick(&a, None, P::HighPerformance).ok(), Some(1));
        assert_eq!(pick(&a, None, P::LowPower).ok(), Some(2));
        // A name (any case) wins over the preference; the first that contains it.
        assert_eq!(pick(&a, Some("gpu a"), P::LowPower).ok(), Some(1));
        assert!(matches!(
            pick(&a, Some("nvidia"), P::None),
            Err(Error::NoAdapter(_))
        ));
        assert!(matches!(pick(&[], None, P::None), Err(Error::NoAdapter(_))));
        // Other, virtual and CPU adapters come after GPUs, in that order.
        let b = infos(&[
            ("cpu", D::Cpu),
            ("virt", D::VirtualGpu),
            ("other", D::Other),
        ]);
        assert_eq!(pick(&b, None, P::HighPerformance).ok(), Some(2));
    }
}
