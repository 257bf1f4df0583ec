//! Reusable buffers for host calls.
//!
//! A training loop calls the loss with the same shapes every step. Creating its input,
//! target and gradient buffers afresh each time costs, on an adapter whose memory is the
//! host's (lavapipe, integrated GPUs), a page fault per 4 KiB page on first touch and
//! wgpu's zero-fill of every new buffer; so host calls take their large buffers from a
//! per-context pool and give them back when the call is done. A buffer given back is
//! handed out again only once its work has finished, so a call never waits on another
//! one in flight: idle at once when the call waited for that work ([`Pooled::done`]),
//! else when `queue.on_submitted_work_done` says so. A buffer is dropped only after the submission that uses it is queued
//! (another thread could otherwise take it and queue its own work first).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Free buffers kept, at most: a loss+grad call takes three or four, a streamed one up
/// to eight (two windows in flight), so a loop with two alternating shapes still reuses.
const MAX_FREE: usize = 16;

/// Bytes of free buffers kept, at most: a `[4, 19, 512, 512]` loss+grad call's set
/// (input, target, gradient, staging: 320 MB) three times over. Larger sets are not
/// kept whole; their calls allocate as before.
const MAX_FREE_BYTES: u64 = 1 << 30;

/// A free buffer, and whether the work submitted before it came back has finished.
struct Free {
    buffer: wgpu::Buffer,
    idle: Arc<AtomicBool>,
}

/// The free buffers of one context.
pub(crate) struct Pool {
    device: wgpu::Device,
    queue: wgpu::Queue,
    free: Mutex<Vec<Free>>,
}

impl Pool {
    pub fn new(device: &wgpu::Device, queue: &wgpu::Queue) -> Self {
        Pool {
            device: device.clone(),
            queue: queue.clone(),
            free: Mutex::default(),
        }
    }

    /// A buffer of at least `size` bytes with exactly `usage`: a free one no more than
    /// twice as large (the kernels bind only the bytes a shape needs) whose last work
    /// has finished, else a new one. Only idle buffers are reused, so a call never
    /// waits on another call still in flight (`Loss::forward_async`): each owns its
    /// buffers until it is done. No poll here to refresh the idle flags (on wgpu's GL
    /// backend it races a waiting thread: docs/performance.md); buffers whose work a
    /// call has waited for come back idle through [`Pooled::done`].
    pub fn take(self: &Arc<Self>, label: &str, usage: wgpu::BufferUsages, size: u64) -> Pooled {
        let size = size.max(4).div_ceil(4) * 4;
        let buffer = self.find(usage, size).unwrap_or_else(|| {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage,
                mapped_at_creation: false,
            })
        });
        Pooled {
            buffer,
            pool: Some(self.clone()),
        }
    }

    fn find(&self, usage: wgpu::BufferUsages, size: u64) -> Option<wgpu::Buffer> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        let best = free
            .iter()
            .enumerate()
            .filter(|(_, f)| {
                f.buffer.usage() == usage
                    && f.buffer.size() >= size
                    && f.buffer.size() <= 2 * size
                    && f.idle.load(Ordering::Acquire)
            })
            .min_by_key(|(_, f)| f.buffer.size())
            .map(|(i, _)| i);
        best.map(|i| free.remove(i).buffer)
    }

    /// Drops every free buffer (their memory goes back to the driver).
    pub fn clear(&self) {
        self.free.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Returns `buffer`; `idle` when the caller knows its work has finished, else it
    /// becomes idle once everything submitted so far (its last use included) has.
    fn give_back(&self, buffer: wgpu::Buffer, idle: bool) {
        let idle = Arc::new(AtomicBool::new(idle));
        if !idle.load(Ordering::Relaxed) {
            let flag = idle.clone();
            self.queue
                .on_submitted_work_done(move || flag.store(true, Ordering::Release));
        }
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        free.push(Free { buffer, idle });
        // The oldest go first: a loop's working set is what it used last.
        while free.len() > MAX_FREE
            || free.iter().map(|f| f.buffer.size()).sum::<u64>() > MAX_FREE_BYTES
        {
            free.remove(0);
        }
    }
}

/// A buffer that returns to its pool when dropped (or a plain one, `pool: None`).
#[derive(Debug)]
pub(crate) struct Pooled {
    buffer: wgpu::Buffer,
    pool: Option<Arc<Pool>>,
}

impl Pooled {
    /// A buffer that is dropped, not pooled, when done with.
    pub fn owned(buffer: wgpu::Buffer) -> Self {
        Pooled { buffer, pool: None }
    }

    /// Not to be reused: left mapped or in an unknown state by an error.
    pub fn discard(mut self) {
        self.poison();
    }

    /// As [`Pooled::discard`], for a borrowed buffer: it is dropped, not pooled.
    pub fn poison(&mut self) {
        self.pool = None;
    }

    /// Back to the pool, idle at once: the caller has waited for the work that used it.
    pub fn done(mut self) {
        if let Some(pool) = self.pool.take() {
            pool.give_back(self.buffer.clone(), true);
        }
    }
}

impl std::ops::Deref for Pooled {
    type Target = wgpu::Buffer;
    fn deref(&self) -> &wgpu::Buffer {
        &self.buffer
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            pool.give_back(self.buffer.clone(), false);
        }
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.free.lock().map_or(0, |f| f.len());
        write!(f, "Pool({n} free)")
    }
}
