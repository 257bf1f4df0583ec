//! Reading back the counts still on the device, in one submission for every pending
//! batch: blocking ([`Metrics::flush`], behind `state`, `result` and `worst`) or awaited
//! through `map_async` (`state_async`, `result_async`, `worst_async`: the forms that work
//! in the browser, wasm32, where the blocking ones return [`crate::Error::WouldBlock`]).

use super::gpu::DeviceCounts;
use super::{Metrics, MetricsResult, MetricsState, WorstCase};
use crate::context::Inner;
use crate::error::{Error, Result};
use crate::readback::Pending;
use crate::transfer::{read_back, whole};

impl Metrics {
    /// Async form of [`Metrics::state`].
    pub async fn state_async(&mut self) -> Result<&MetricsState> {
        self.flush_async().await?;
        Ok(&self.state)
    }

    /// Async form of [`Metrics::result`].
    pub async fn result_async(&mut self) -> Result<MetricsResult> {
        self.flush_async().await?;
        Ok(self.state.result())
    }

    /// Async form of [`Metrics::worst`].
    pub async fn worst_async(&mut self, q: f64) -> Result<WorstCase> {
        if !(q > 0.0 && q <= 100.0) {
            return Err(Error::option("q", format!("must lie in (0, 100], got {q}")));
        }
        self.flush_async().await?;
        Ok(self.state.worst(q))
    }

    /// [`Metrics::flush`], awaited.
    async fn flush_async(&mut self) -> Result<()> {
        match self.request_counts() {
            Some((pending, read)) => match read.wait_async().await {
                Ok(all) => self.add_read(&pending, all),
                Err(e) => Err(self.restore(pending, e)),
            },
            None => Ok(()),
        }
    }

    /// Reads back the counts still on the device (one submission for every pending
    /// batch), in the order they were added.
    pub(super) fn flush(&mut self) -> Result<()> {
        match self.request_counts() {
            Some((pending, read)) => match read.wait() {
                Ok(all) => self.add_read(&pending, all),
                Err(e) => Err(self.restore(pending, e)),
            },
            None => Ok(()),
        }
    }

    /// A readback that failed (`WouldBlock` in the browser, a lost device) leaves the
    /// state as it was: its batches go back to the front of the pending list, so that the
    /// next `state` / `result` reads them again (or fails again), never `Ok` without
    /// them.
    fn restore(&mut self, mut pending: Vec<DeviceCounts>, e: Error) -> Error {
        pending.append(&mut self.pending);
        self.pending = pending;
        e
    }

    /// The readback of every batch's counts still on the device, submitted.
    fn request_counts(&mut self) -> Option<(Vec<DeviceCounts>, Pending)> {
        let Inner::Gpu(gpu) = &*self.ctx.inner else {
            return None;
        };
        let pending = std::mem::take(&mut self.pending);
        if pending.is_empty() {
            return None;
        }
        let reads = pending.iter().map(|p| whole(&p.buffer)).collect();
        let read = read_back(gpu, gpu.encoder("segloss.metrics_read"), reads);
        Some((pending, read))
    }

    /// Appends the images of read-back counts.
    fn add_read(&mut self, pending: &[DeviceCounts], all: Vec<Vec<f32>>) -> Result<()> {
        let c = self.classes;
        // A batch with invalid data is left out with its error; the others are kept.
        let mut first_error = None;
        for (p, words) in pending.iter().zip(all) {
            match p.images(&words, c) {
                Ok(images) => self.state.images.extend(images),
                Err(e) => first_error = first_error.or(Some(e)),
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
