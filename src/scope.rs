//! wgpu error scopes around the recording of a call, and where they are read: at once
//! on native backends (where popping a scope resolves without waiting on GPU work), at
//! the call's next await in the browser (wasm32), whose one thread may never block.

use std::future::Future;
use std::pin::Pin;
#[cfg(target_arch = "wasm32")]
use std::sync::Mutex;

use crate::context::Gpu;
use crate::error::{Error, Result};
use crate::pool::Pool;

/// A popped scope's result, still to be awaited.
pub(crate) type Popped = Pin<Box<dyn Future<Output = Option<wgpu::Error>> + Send>>;

/// Runs `f` inside validation and out-of-memory error scopes, returning the first wgpu
/// error as a segloss error instead of letting wgpu's default handler panic. In the
/// browser the scopes' results arrive through the event loop: they are kept in the
/// context ([`Deferred`]) and returned by the next awaited readback.
pub(crate) fn scoped<T>(gpu: &Gpu, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let oom = gpu.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let validation = gpu.device.push_error_scope(wgpu::ErrorFilter::Validation);
    let r = f();
    // Scopes are a stack: the inner one first.
    let v: Popped = Box::pin(validation.pop());
    let o: Popped = Box::pin(oom.pop());
    #[cfg(not(target_arch = "wasm32"))]
    settle(&gpu.pool, pollster::block_on(o), pollster::block_on(v))?;
    #[cfg(target_arch = "wasm32")]
    gpu.deferred.push(o, v);
    gpu.check_alive()?;
    r
}

/// The first of a call's scope errors, out of memory first (the buffers it left
/// invalid then fail validation too). The pool's free buffers go back to the driver, so
/// that a retry has the room.
fn settle(pool: &Pool, oom: Option<wgpu::Error>, validation: Option<wgpu::Error>) -> Result<()> {
    if oom.is_some() {
        pool.clear();
    }
    match oom.or(validation) {
        Some(e) => Err(Error::from_wgpu(e)),
        None => Ok(()),
    }
}

/// The browser's error scopes whose results are still to be read, oldest first: the
/// next awaited readback of the context reads them all and returns the first error.
#[cfg(target_arch = "wasm32")]
#[derive(Default)]
pub(crate) struct Deferred {
    scopes: Mutex<Vec<(Popped, Popped)>>,
}

#[cfg(target_arch = "wasm32")]
impl Deferred {
    pub fn push(&self, oom: Popped, validation: Popped) {
        let mut s = self.scopes.lock().unwrap_or_else(|e| e.into_inner());
        s.push((oom, validation));
    }

    /// Awaits every scope popped so far.
    pub async fn settle(&self, pool: &Pool) -> Result<()> {
        let scopes = std::mem::take(&mut *self.scopes.lock().unwrap_or_else(|e| e.into_inner()));
        let mut first = Ok(());
        for (o, v) in scopes {
            let r = settle(pool, o.await, v.await);
            first = first.and(r);
        }
        first
    }
}
