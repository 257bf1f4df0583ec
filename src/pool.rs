//! Reusable buffers for host calls.
//!
//! A training loop calls the loss with the same shapes every step. Creating its input,
//! target and gradient buffers afresh each time costs, on an adapter whose memory is the
//! host's (lavapipe, integrated GPUs), a page fault per 4 KiB page on first touch and
//! wgpu's zero-fill of every new buffer; so host calls take their large buffers from a
//! per-context pool and give them back when the call is done. A buffer is never handed
//! out twice at once, and wgpu orders a reused buffer's mapping after the work that
//! last used it, so reuse is safe even while that work is in flight, provided that work
//! was *submitted* before the buffer went back: a buffer is dropped only after the
//! submission that uses it (another thread's queue writes and submissions would
//! otherwise land first).

use std::sync::{Arc, Mutex};

/// Free buffers kept, at most: a loss+grad call takes three or four, a streamed one up
/// to eight (two windows in flight), so a loop with two alternating shapes still reuses.
const MAX_FREE: usize = 16;

/// Bytes of free buffers kept, at most: a `[4, 19, 512, 512]` loss+grad call's set
/// (input, target, gradient, staging: 320 MB) three times over. Larger sets are not
/// kept whole; their calls allocate as before.
const MAX_FREE_BYTES: u64 = 1 << 30;

/// The free buffers of one context.
#[derive(Default)]
pub(crate) struct Pool {
    free: Mutex<Vec<wgpu::Buffer>>,
}

impl Pool {
    /// A buffer of at least `size` bytes with exactly `usage`: a free one no more than
    /// twice as large (the kernels bind only the bytes a shape needs), else a new one.
    pub fn take(
        self: &Arc<Self>,
        device: &wgpu::Device,
        label: &str,
        usage: wgpu::BufferUsages,
        size: u64,
    ) -> Pooled {
        let size = size.max(4).div_ceil(4) * 4;
        let found = {
            let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
            let best = free
                .iter()
                .enumerate()
                .filter(|(_, b)| b.usage() == usage && b.size() >= size && b.size() <= 2 * size)
                .min_by_key(|(_, b)| b.size())
                .map(|(i, _)| i);
            best.map(|i| free.remove(i))
        };
        let buffer = found.unwrap_or_else(|| {
            device.create_buffer(&wgpu::BufferDescriptor {
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

    /// Drops every free buffer (their memory goes back to the driver).
    pub fn clear(&self) {
        self.free.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    fn give_back(&self, buffer: wgpu::Buffer) {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        free.push(buffer);
        // The oldest go first: a loop's working set is what it used last.
        while free.len() > MAX_FREE || free.iter().map(|b| b.size()).sum::<u64>() > MAX_FREE_BYTES {
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
        self.pool = None;
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
            pool.give_back(self.buffer.clone());
        }
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.free.lock().map_or(0, |f| f.len());
        write!(f, "Pool({n} free)")
    }
}
