//! The one place that maps buffers for reading (wgpu's polling API changes between
//! versions, so it lives here alone).

use futures::channel::oneshot;

use crate::{Error, Result};

/// Buffers whose `map_async` has been requested; resolve with [`Pending::wait`] or await.
pub(crate) struct Pending {
    device: wgpu::Device,
    buffers: Vec<wgpu::Buffer>,
    receivers: Vec<oneshot::Receiver<std::result::Result<(), wgpu::BufferAsyncError>>>,
    submission: wgpu::SubmissionIndex,
}

impl Pending {
    /// Requests a read mapping of each (MAP_READ) buffer after `submission`.
    pub fn new(
        device: &wgpu::Device,
        buffers: Vec<wgpu::Buffer>,
        submission: wgpu::SubmissionIndex,
    ) -> Self {
        let receivers = buffers
            .iter()
            .map(|b| {
                let (tx, rx) = oneshot::channel();
                b.slice(..).map_async(wgpu::MapMode::Read, move |r| {
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
        }
    }

    /// Blocks until the submission is done, then copies every buffer out as 4-byte words.
    pub fn wait(self) -> Result<Vec<Vec<f32>>> {
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: Some(self.submission.clone()),
                timeout: None,
            })
            .map_err(|e| Error::DeviceLost(e.to_string()))?;
        self.collect_blocking()
    }

    /// Waits on a helper thread (so the caller's executor is never blocked), then reads.
    pub async fn wait_async(self) -> Result<Vec<Vec<f32>>> {
        let device = self.device.clone();
        let submission = self.submission.clone();
        let (tx, rx) = oneshot::channel();
        std::thread::spawn(move || {
            let r = device.poll(wgpu::PollType::Wait {
                submission_index: Some(submission),
                timeout: None,
            });
            let _ = tx.send(r.map(|_| ()).map_err(|e| e.to_string()));
        });
        match rx.await {
            Ok(Ok(())) => self.collect_blocking(),
            Ok(Err(e)) => Err(Error::DeviceLost(e)),
            Err(_) => Err(Error::DeviceLost("poll thread ended".into())),
        }
    }

    fn collect_blocking(self) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(self.buffers.len());
        for (b, rx) in self.buffers.iter().zip(self.receivers) {
            // The poll above has run every callback of this submission.
            match futures::executor::block_on(rx) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(Error::DeviceLost(format!("map failed: {e}"))),
                Err(_) => return Err(Error::DeviceLost("map callback dropped".into())),
            }
            let view = b
                .slice(..)
                .get_mapped_range()
                .map_err(|e| Error::Validation(e.to_string()))?;
            // Every buffer read back holds 4-byte words (f32, or u32 bits); the mapping is
            // aligned, so one copy straight into f32s.
            out.push(bytemuck::cast_slice::<u8, f32>(&view).to_vec());
            drop(view);
            b.unmap();
        }
        Ok(out)
    }
}
