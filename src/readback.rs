//! The one place that maps buffers for reading (wgpu's polling API changes between
//! versions, so it lives here alone).

use futures::channel::oneshot;

use crate::pool::Pooled;
use crate::{Error, Result};

/// Blocks until submission `idx` of `device` is done. In the browser (wasm32), whose
/// thread may never wait, [`Error::WouldBlock`] instead.
pub(crate) fn wait_for(device: &wgpu::Device, idx: wgpu::SubmissionIndex) -> Result<()> {
    #[cfg(target_arch = "wasm32")]
    {
        let _ = (device, idx);
        Err(Error::WouldBlock("a blocking call".into()))
    }
    #[cfg(not(target_arch = "wasm32"))]
    device
        .poll(wgpu::PollType::Wait {
            submission_index: Some(idx),
            timeout: None,
        })
        .map(|_| ())
        .map_err(|e| Error::DeviceLost(e.to_string()))
}

/// A mapping request's outcome, as its callback sends it.
type Mapped =
    std::result::Result<std::result::Result<(), wgpu::BufferAsyncError>, oneshot::Canceled>;

/// Buffers whose `map_async` has been requested; resolve with [`Pending::wait`] or await.
pub(crate) struct Pending {
    device: wgpu::Device,
    /// Each buffer with the bytes to read from its start (pooled buffers may be larger).
    buffers: Vec<(Pooled, u64)>,
    receivers: Vec<oneshot::Receiver<std::result::Result<(), wgpu::BufferAsyncError>>>,
    submission: wgpu::SubmissionIndex,
    /// The browser's error scopes of the context, read before the buffers.
    #[cfg(target_arch = "wasm32")]
    scopes: (
        std::sync::Arc<crate::scope::Deferred>,
        std::sync::Arc<crate::pool::Pool>,
    ),
}

impl Pending {
    /// Requests a read mapping of the first `len` bytes of each (MAP_READ) buffer after
    /// `submission`.
    pub fn new(
        gpu: &crate::context::Gpu,
        buffers: Vec<(Pooled, u64)>,
        submission: wgpu::SubmissionIndex,
    ) -> Self {
        let device = &gpu.device;
        let receivers = buffers
            .iter()
            .map(|(b, len)| {
                let (tx, rx) = oneshot::channel();
                b.slice(..*len).map_async(wgpu::MapMode::Read, move |r| {
                    let _ = tx.send(r);
                });
                rx
            })
            .collect();
        Pending {
            device: device.clone(),
            buffers,
            receivers,
            submission,
            #[cfg(target_arch = "wasm32")]
            scopes: (gpu.deferred.clone(), gpu.pool.clone()),
        }
    }

    /// Blocks until the submission is done, then copies every buffer out as 4-byte words.
    pub fn wait(self) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(self.buffers.len());
        self.wait_each(|_, words| out.push(words.to_vec()))?;
        Ok(out)
    }

    /// Blocks until the submission is done, then hands each buffer's mapped words to
    /// `f` (with its index), without copying them out first.
    pub fn wait_each(mut self, f: impl FnMut(usize, &[f32])) -> Result<()> {
        wait_for(&self.device, self.submission.clone())?;
        // The poll above has run every callback of this submission.
        let mapped = std::mem::take(&mut self.receivers)
            .into_iter()
            .map(futures::executor::block_on)
            .collect();
        self.read_mapped(mapped, f)
    }

    /// In the browser: awaits the context's error scopes, then each mapping (the
    /// browser resolves them from its event loop; nothing polls, nothing blocks).
    #[cfg(target_arch = "wasm32")]
    pub async fn wait_async(mut self) -> Result<Vec<Vec<f32>>> {
        let (scopes, pool) = self.scopes.clone();
        scopes.settle(&pool).await?;
        let mut mapped = Vec::with_capacity(self.receivers.len());
        for rx in std::mem::take(&mut self.receivers) {
            mapped.push(rx.await);
        }
        let mut out = Vec::with_capacity(self.buffers.len());
        self.read_mapped(mapped, |_, words| out.push(words.to_vec()))?;
        Ok(out)
    }

    /// Waits on a helper thread (so the caller's executor is never blocked), then reads.
    #[cfg(not(target_arch = "wasm32"))]
    pub async fn wait_async(mut self) -> Result<Vec<Vec<f32>>> {
        let device = self.device.clone();
        let submission = self.submission.clone();
        let (tx, rx) = oneshot::channel();
        std::thread::spawn(move || {
            let _ = tx.send(wait_for(&device, submission));
        });
        match rx.await {
            Ok(Ok(())) => {
                let mapped = std::mem::take(&mut self.receivers)
                    .into_iter()
                    .map(futures::executor::block_on)
                    .collect();
                let mut out = Vec::with_capacity(self.buffers.len());
                self.read_mapped(mapped, |_, words| out.push(words.to_vec()))?;
                Ok(out)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::DeviceLost("poll thread ended".into())),
        }
    }

    /// After the submission: each buffer's mapping, handed to `f`, then unmapped.
    fn read_mapped(mut self, results: Vec<Mapped>, mut f: impl FnMut(usize, &[f32])) -> Result<()> {
        let mut buffers = std::mem::take(&mut self.buffers).into_iter();
        for (i, ((b, len), result)) in buffers.by_ref().zip(results).enumerate() {
            let mapped = match result {
                Ok(Ok(())) => b
                    .slice(..len)
                    .get_mapped_range()
                    .map_err(|e| Error::Validation(e.to_string())),
                Ok(Err(e)) => Err(Error::DeviceLost(format!("map failed: {e}"))),
                Err(_) => Err(Error::DeviceLost("map callback dropped".into())),
            };
            let view = match mapped {
                Ok(v) => v,
                Err(e) => {
                    // Left mapped or half-mapped: not fit for the pool.
                    b.discard();
                    buffers.for_each(|(b, _)| b.discard());
                    return Err(e);
                }
            };
            // Every buffer read back holds 4-byte words (f32, or u32 bits); the mapping is
            // aligned, so it is read as f32s in place.
            f(i, bytemuck::cast_slice::<u8, f32>(&view));
            drop(view);
            b.unmap();
            // Mapped after its submission finished: reusable at once.
            b.done();
        }
        Ok(())
    }
}

impl Drop for Pending {
    /// Buffers never read (a dropped future, a failed wait) may still have a mapping
    /// pending: they are not returned to the pool.
    fn drop(&mut self) {
        std::mem::take(&mut self.buffers)
            .into_iter()
            .for_each(|(b, _)| b.discard());
    }
}
