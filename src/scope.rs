//! wgpu error scopes around the recording of a call (`api::scoped`), and where they are
//! read: at once on native backends (where popping a scope resolves without waiting on
//! GPU work), at the call's next await in the browser (wasm32), whose one thread may
//! never block.

#[cfg(target_arch = "wasm32")]
use std::{future::Future, pin::Pin, sync::Mutex};

use crate::error::{Error, Result};
use crate::pool::Pool;

/// A popped scope's result, still to be awaited (in the browser).
#[cfg(target_arch = "wasm32")]
pub(crate) type Popped = Pin<Box<dyn Future<Output = Option<wgpu::Error>> + Send>>;

/// The first of a call's scope errors, out of memory first (the buffers it left
/// invalid then fail validation too). The pool's free buffers go back to the driver, so
/// that a retry has the room.
pub(crate) fn settle(
    pool: &Pool,
    oom: Option<wgpu::Error>,
    validation: Option<wgpu::Error>,
) -> Result<()> {
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
