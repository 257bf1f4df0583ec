//! Host ↔ device transfers of the host API, through pooled buffers.
//!
//! Where the device's memory is the host's ([`Gpu::unified`]: lavapipe, integrated
//! GPUs), the storage buffers themselves are mapped: uploads are one memcpy into the
//! buffer, readbacks one memcpy out of it, with no staging buffer and no device-side
//! copy (on lavapipe each of those is a single-threaded memcpy of the whole array). On
//! other devices uploads go through `queue.write_buffer` (wgpu's staging belt) and
//! readbacks through a pooled `MAP_READ` staging buffer.

use futures::channel::oneshot;

use crate::context::Gpu;
use crate::error::{Error, Result};
use crate::plan::bytes_of_words as words;
use crate::pool::Pooled;
use crate::readback::Pending;

/// A pooled buffer of `size` bytes with `usage` (plus what writing it needs), holding
/// `parts`: `(byte offset, bytes)`, offsets and lengths multiples of 4. Bytes not
/// covered by a part are unspecified (the kernels never read them).
pub(crate) fn write(
    gpu: &Gpu,
    label: &str,
    usage: wgpu::BufferUsages,
    size: u64,
    parts: &[(u64, &[u8])],
) -> Result<Pooled> {
    let mut buf = writable(gpu, label, usage, size);
    fill(gpu, &mut buf, parts)?;
    Ok(buf)
}

/// A pooled buffer of at least `size` bytes with `usage`, that [`fill`] can write.
pub(crate) fn writable(gpu: &Gpu, label: &str, usage: wgpu::BufferUsages, size: u64) -> Pooled {
    let extra = if gpu.unified {
        wgpu::BufferUsages::MAP_WRITE
    } else {
        wgpu::BufferUsages::COPY_DST
    };
    gpu.pool.take(label, usage | extra, size)
}

/// Writes `parts` into a [`writable`] buffer: in place through a mapping where memory
/// is the host's (waiting for the buffer's last work, if any), else through
/// `queue.write_buffer` (ordered before the next submission). A buffer an error left
/// mapped is not returned to the pool.
pub(crate) fn fill(gpu: &Gpu, buf: &mut Pooled, parts: &[(u64, &[u8])]) -> Result<()> {
    if !gpu.unified {
        for &(offset, bytes) in parts {
            gpu.queue.write_buffer(buf, offset, bytes);
        }
        return Ok(());
    }
    let end = parts
        .iter()
        .map(|&(o, b)| o + b.len() as u64)
        .max()
        .unwrap_or(0)
        .max(4)
        .div_ceil(4)
        * 4;
    let slice = buf.slice(..end);
    let (tx, rx) = oneshot::channel();
    slice.map_async(wgpu::MapMode::Write, move |r| {
        let _ = tx.send(r);
    });
    let mapped = wait_for_map(gpu, rx).and_then(|()| {
        slice
            .get_mapped_range_mut()
            .map_err(|e| Error::Validation(e.to_string()))
    });
    match mapped {
        Ok(mut view) => {
            for &(offset, bytes) in parts {
                let o = offset as usize;
                view.slice(o..o + bytes.len()).copy_from_slice(bytes);
            }
        }
        Err(e) => {
            buf.poison();
            return Err(e);
        }
    }
    buf.unmap();
    Ok(())
}

/// Resolves a mapping request. A pooled buffer that no submission still uses maps at the
/// next poll; one still in use (a call in flight) maps once that work is done.
fn wait_for_map(
    gpu: &Gpu,
    mut rx: oneshot::Receiver<std::result::Result<(), wgpu::BufferAsyncError>>,
) -> Result<()> {
    let poll = |kind| {
        gpu.device
            .poll(kind)
            .map(|_| ())
            .map_err(|e| Error::DeviceLost(e.to_string()))
    };
    poll(wgpu::PollType::Poll)?;
    let ready = match rx.try_recv() {
        Ok(Some(r)) => Some(r),
        Ok(None) => None,
        Err(_) => return Err(Error::DeviceLost("map callback dropped".into())),
    };
    let r = match ready {
        Some(r) => r,
        None => {
            poll(wgpu::PollType::wait_indefinitely())?;
            futures::executor::block_on(rx)
                .map_err(|_| Error::DeviceLost("map callback dropped".into()))?
        }
    };
    r.map_err(|e| Error::DeviceLost(format!("map failed: {e}")))
}

/// Submits `encoder` and requests read mappings of the first `len` bytes of each
/// buffer: in place for a `MAP_READ` buffer, else through a copy (recorded at the end of
/// `encoder`) to a pooled staging buffer.
pub(crate) fn read_back(
    gpu: &Gpu,
    mut encoder: wgpu::CommandEncoder,
    reads: Vec<(Pooled, u64)>,
) -> Pending {
    // A copied source goes back to its pool only after the submission is queued: until
    // then another thread could take it and queue its own work on it first.
    let mut sources = Vec::new();
    let staged: Vec<(Pooled, u64)> = reads
        .into_iter()
        .map(|(src, len)| {
            if src.usage().contains(wgpu::BufferUsages::MAP_READ) {
                return (src, len);
            }
            let usage = wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST;
            let st = gpu.pool.take("segloss.staging", usage, len);
            encoder.copy_buffer_to_buffer(&src, 0, &st, 0, len);
            sources.push(src);
            (st, len)
        })
        .collect();
    let idx = gpu.queue.submit([encoder.finish()]);
    drop(sources);
    Pending::new(gpu, staged, idx)
}

/// The whole of a buffer of segloss's own (the result, statistics) to read back.
pub(crate) fn whole(buf: &wgpu::Buffer) -> (Pooled, u64) {
    (Pooled::owned(buf.clone()), buf.size())
}

/// A pooled gradient buffer of `len` f32 for a host call: `STORAGE | COPY_SRC |
/// COPY_DST`, and `MAP_READ` (read in place) where memory is the host's.
pub(crate) fn grad_buffer(gpu: &Gpu, len: usize) -> Pooled {
    let mut usage =
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
    if gpu.unified {
        usage |= wgpu::BufferUsages::MAP_READ;
    }
    gpu.pool.take("segloss.grad", usage, words(len))
}

/// A buffer holding `bytes` (padded to 4), written through a mapping at creation (the
/// fast path on lavapipe: ~7 GB/s against ~1.5 GB/s for `queue.write_buffer`). Unlike
/// `wgpu::util::DeviceExt::create_buffer_init`, which panics when the mapping fails
/// (a lost or destroyed device), this returns an error.
pub(crate) fn upload(
    dev: &wgpu::Device,
    label: &str,
    bytes: &[u8],
    usage: wgpu::BufferUsages,
) -> Result<wgpu::Buffer> {
    let size = (bytes.len() as u64).div_ceil(4).max(1) * 4;
    let buf = dev.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size,
        usage,
        mapped_at_creation: true,
    });
    {
        let mut view = buf
            .get_mapped_range_mut(..)
            .map_err(|e| Error::DeviceLost(format!("cannot map `{label}`: {e}")))?;
        view.slice(..bytes.len()).copy_from_slice(bytes);
    }
    buf.unmap();
    Ok(buf)
}
