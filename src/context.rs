//! Where segloss runs: a wgpu device (its own, or one the application owns) or the CPU
//! reference when there is no GPU.

use std::sync::{Arc, Mutex};

use crate::kernels::{check_limits, Geometry, Kernels};
use crate::pool::Pool;
use crate::{Error, Result};

/// Which backend a [`Context`] computes on.
#[derive(Clone, Debug, PartialEq)]
pub enum Backend {
    /// A wgpu device.
    Gpu {
        /// Adapter name (e.g. "llvmpipe (LLVM 19.1.7, 256 bits)").
        adapter: String,
        /// wgpu backend (Vulkan, Metal, Dx12, Gl).
        backend: wgpu::Backend,
    },
    /// The f64 CPU reference (no adapter was found).
    Cpu,
}

pub(crate) struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub kernels: Kernels,
    pub info: wgpu::AdapterInfo,
    /// Set by the device-lost callback of a device that segloss created.
    pub lost: Arc<Mutex<Option<String>>>,
    /// The device's memory is the host's (a CPU or integrated adapter) and it has
    /// `MAPPABLE_PRIMARY_BUFFERS`: host calls map their storage buffers directly instead
    /// of going through staging copies (on lavapipe each staging copy is one more
    /// single-threaded memcpy of the whole array).
    pub unified: bool,
    /// Reusable buffers of host calls.
    pub pool: Arc<Pool>,
    /// The browser's error scopes not read yet (see [`crate::scope`]).
    #[cfg(target_arch = "wasm32")]
    pub deferred: Arc<crate::scope::Deferred>,
}

/// Whether `info`'s memory is the host's, so that mapping a storage buffer costs no
/// more than mapping a staging one.
pub(crate) fn host_memory(info: &wgpu::AdapterInfo) -> bool {
    matches!(
        info.device_type,
        wgpu::DeviceType::Cpu | wgpu::DeviceType::IntegratedGpu
    )
}

impl Gpu {
    /// A fresh command encoder.
    pub fn encoder(&self, label: &str) -> wgpu::CommandEncoder {
        self.device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) })
    }

    /// Error if the device was reported lost.
    pub fn check_alive(&self) -> Result<()> {
        let lost = self.lost.lock().unwrap_or_else(|e| e.into_inner());
        match &*lost {
            Some(reason) => Err(Error::DeviceLost(reason.clone())),
            None => Ok(()),
        }
    }
}

#[allow(clippy::large_enum_variant)] // one per context, behind an Arc
pub(crate) enum Inner {
    Gpu(Gpu),
    Cpu,
}

/// A device plus segloss's compiled kernels; cheap to clone, `Send + Sync`.
///
/// On wgpu's OpenGL backend, drive one context from any number of threads, but not two
/// contexts from two threads at once (wgpu-hal's EGL context then fails with BadAccess).
///
/// ```no_run
/// let ctx = segloss::Context::new_or_cpu();
/// println!("segloss runs on {:?}", ctx.backend());
/// ```
#[derive(Clone)]
pub struct Context {
    pub(crate) inner: Arc<Inner>,
    /// Why [`Context::new_or_cpu`] fell back to the CPU reference.
    fallback: Option<Arc<str>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("backend", &self.backend())
            .finish()
    }
}

impl Context {
    /// Creates a headless GPU context, honouring wgpu's environment variables
    /// (`WGPU_BACKEND`, `WGPU_ADAPTER_NAME`, `WGPU_POWER_PREF`) and requesting the
    /// adapter's own limits (larger storage bindings than WebGPU's defaults).
    /// Fails with [`Error::NoAdapter`] when no adapter matches.
    ///
    /// In the browser (wasm32) this returns [`Error::WouldBlock`]: use
    /// [`Context::new_async`].
    pub fn new() -> Result<Self> {
        #[cfg(target_arch = "wasm32")]
        return Err(Error::WouldBlock("Context::new".into()));
        #[cfg(not(target_arch = "wasm32"))]
        pollster::block_on(Self::new_async())
    }

    /// Async form of [`Context::new`]: the adapter [`crate::adapters::default_index`]
    /// picks among [`crate::adapters::list`] (the browser's one adapter on WebGPU). What
    /// blocks, exactly: the adapter and device requests are awaited (serialised per
    /// process: wgpu's EGL backend fails when two threads enumerate at once); the
    /// kernels' pipelines are then compiled on the calling thread (hundreds of
    /// milliseconds on a CPU adapter, driver-dependent elsewhere), and the error scope
    /// around that compilation is awaited (on native backends it resolves without
    /// waiting on GPU work). Run it on a blocking-friendly thread
    /// (e.g. `tokio::task::spawn_blocking`) where an executor thread must never stall.
    ///
    /// In the browser (wasm32, WebGPU) nothing blocks: the browser compiles the kernels
    /// and the error scope is awaited.
    pub async fn new_async() -> Result<Self> {
        Self::default_async().await
    }

    /// [`Context::new_or_cpu`] without blocking: a GPU context when one can be made
    /// (awaited), else the CPU reference with the reason kept. The form to use in the
    /// browser, where a page without WebGPU gets the CPU reference.
    pub async fn new_or_cpu_async() -> Self {
        match Self::new_async().await {
            Ok(ctx) => ctx,
            Err(e) => Self::fallback(e),
        }
    }

    /// Wraps a device and queue that the application already owns (e.g. its renderer's
    /// or its training framework's). segloss compiles its kernels on it; buffers passed
    /// to the GPU-resident API must come from this device. The device's limits decide
    /// the largest problem; a device below the kernels' needs (see
    /// [`Error::UnsupportedDevice`]) is refused. segloss does not install a device-lost callback on a
    /// wrapped device (that is the owner's); a lost device surfaces as an error of the
    /// next call. wgpu cannot tell buffers of devices from *different* `wgpu::Instance`s
    /// apart: keep the application's buffers on this device.
    pub fn from_wgpu(
        device: wgpu::Device,
        queue: wgpu::Queue,
        info: wgpu::AdapterInfo,
    ) -> Result<Self> {
        Self::build(device, queue, info, Arc::new(Mutex::new(None)))
    }

    /// A context on the f64 CPU reference: no GPU needed.
    pub fn cpu() -> Self {
        Context {
            inner: Arc::new(Inner::Cpu),
            fallback: None,
        }
    }

    /// A GPU context when one can be made, else the CPU reference (see
    /// [`Context::backend`]). The fallback is never silent: the reason the GPU context
    /// failed — no adapter, an adapter-name typo in `WGPU_ADAPTER_NAME`, a device below
    /// the kernels' needs, a driver that rejects a kernel — is kept
    /// ([`Context::fallback_reason`]) and printed once per process on stderr, since the
    /// CPU reference is an order of magnitude slower. Use [`Context::new`] to get the
    /// error itself.
    pub fn new_or_cpu() -> Self {
        match Self::new() {
            Ok(ctx) => ctx,
            Err(e) => Self::fallback(e),
        }
    }

    /// The CPU reference in place of a GPU context that failed with `e`.
    fn fallback(e: Error) -> Self {
        static NOTICE: std::sync::Once = std::sync::Once::new();
        NOTICE.call_once(|| {
            eprintln!("segloss: no GPU context ({e}); computing on the f64 CPU reference");
        });
        Context {
            fallback: Some(e.to_string().into()),
            ..Self::cpu()
        }
    }

    /// Why [`Context::new_or_cpu`] runs on the CPU reference (the GPU context's error),
    /// or `None` for a GPU context and for [`Context::cpu`].
    pub fn fallback_reason(&self) -> Option<&str> {
        self.fallback.as_deref()
    }

    fn build(
        device: wgpu::Device,
        queue: wgpu::Queue,
        info: wgpu::AdapterInfo,
        lost: Arc<Mutex<Option<String>>>,
    ) -> Result<Self> {
        let (ctx, scope) = Self::compile(device, queue, info, lost)?;
        let popped = scope.pop();
        // In the browser the compilation's errors come with the first awaited call.
        #[cfg(target_arch = "wasm32")]
        {
            let ready = std::future::ready(None);
            ctx.gpu()?.deferred.push(Box::pin(ready), Box::pin(popped));
            Ok(ctx)
        }
        #[cfg(not(target_arch = "wasm32"))]
        match pollster::block_on(popped) {
            Some(e) => Err(Error::from_wgpu(e)),
            None => Ok(ctx),
        }
    }

    /// The context, its kernels compiled inside a validation scope that the caller pops.
    pub(crate) fn compile(
        device: wgpu::Device,
        queue: wgpu::Queue,
        info: wgpu::AdapterInfo,
        lost: Arc<Mutex<Option<String>>>,
    ) -> Result<(Self, wgpu::ErrorScopeGuard)> {
        let geometry = Geometry::for_adapter(&info);
        let unified = host_memory(&info)
            && device
                .features()
                .contains(wgpu::Features::MAPPABLE_PRIMARY_BUFFERS);
        check_limits(&device.limits(), geometry).map_err(Error::UnsupportedDevice)?;
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let kernels = Kernels::new(&device, geometry);
        let pool = Arc::new(Pool::new(&device, &queue));
        let ctx = Context {
            fallback: None,
            inner: Arc::new(Inner::Gpu(Gpu {
                device,
                queue,
                kernels,
                info,
                lost,
                unified,
                pool,
                #[cfg(target_arch = "wasm32")]
                deferred: Arc::default(),
            })),
        };
        Ok((ctx, scope))
    }

    /// How many compute pipelines (shader variants) this context has compiled so far;
    /// 0 on the CPU reference. segloss compiles a variant on its first use and caches
    /// it: a diagnostic for training loops that change their loss (a [`crate::Schedule`]'s
    /// ramp compiles none).
    pub fn pipelines_built(&self) -> usize {
        match &*self.inner {
            Inner::Gpu(g) => g.kernels.pipelines_built(),
            Inner::Cpu => 0,
        }
    }

    /// Which backend this context computes on.
    pub fn backend(&self) -> Backend {
        match &*self.inner {
            Inner::Gpu(g) => Backend::Gpu {
                adapter: g.info.name.clone(),
                backend: g.info.backend,
            },
            Inner::Cpu => Backend::Cpu,
        }
    }

    /// The adapter's description (name, backend, device type, driver), for GPU contexts.
    pub fn adapter_info(&self) -> Option<&wgpu::AdapterInfo> {
        self.gpu().ok().map(|g| &g.info)
    }

    /// The wgpu device, for GPU contexts.
    pub fn device(&self) -> Option<&wgpu::Device> {
        self.gpu().ok().map(|g| &g.device)
    }

    /// The wgpu queue, for GPU contexts.
    pub fn queue(&self) -> Option<&wgpu::Queue> {
        self.gpu().ok().map(|g| &g.queue)
    }

    /// Frees the buffers that host calls keep for reuse. Host calls with the same shapes
    /// reuse their input, target, gradient and staging buffers (on lavapipe a fresh
    /// buffer costs a page fault per 4 KiB and a zero-fill); up to 16 free buffers are
    /// kept, the largest about the size of the largest array a call used. Call this
    /// after a burst of large calls to give that memory back; later calls allocate anew.
    pub fn release_buffers(&self) {
        if let Ok(g) = self.gpu() {
            g.pool.clear();
        }
    }

    pub(crate) fn gpu(&self) -> Result<&Gpu> {
        match &*self.inner {
            Inner::Gpu(g) => Ok(g),
            Inner::Cpu => Err(Error::NotOnGpu),
        }
    }
}
