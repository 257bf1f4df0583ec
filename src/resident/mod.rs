//! The GPU-resident side of a call: the caller's buffers (`GpuBatch`), what a recorded
//! call leaves on the device (`GpuResult`, `GpuStats`), and `encode`, which checks the
//! buffers, plans the call and records it (bound in place, or copied in chunks on the
//! device when an array exceeds one binding). Nothing here submits or waits.

mod encode;

pub(crate) use encode::{check_buffer, check_offset, check_owned, encode, Request};

use crate::error::{Error, Result};
use crate::options::LossOptions;
use crate::pool::Pooled;
use crate::record::{Encoded, Local};
use crate::shape::Shape;

/// What a GPU-resident call reads: caller-owned buffers on the context's device.
///
/// Each array is a [`wgpu::BufferSlice`]: a whole buffer (`buffer.slice(..)`) or a byte
/// range of one (`buffer.slice(offset..offset + size)`), as a framework's allocator
/// hands out tensors. A slice must start at a multiple of the device's
/// `min_storage_buffer_offset_alignment` and hold at least the bytes the shape needs.
#[derive(Clone, Copy, Debug)]
pub struct GpuBatch<'a> {
    /// `[B, C, S...]`.
    pub shape: &'a Shape,
    /// f32 `[B, C, S...]`, usage `STORAGE`.
    pub input: wgpu::BufferSlice<'a>,
    /// Target buffer, usage `STORAGE`.
    pub target: GpuTarget<'a>,
    /// Optional keep-mask: one byte per pixel `[B, S...]` (0 = ignore), i.e. a PyTorch
    /// `bool` tensor's bytes; the slice is padded to a multiple of 4 bytes.
    pub mask: Option<wgpu::BufferSlice<'a>>,
}

/// Target buffer of a GPU-resident call.
#[derive(Clone, Copy, Debug)]
pub enum GpuTarget<'a> {
    /// f32 soft labels `[B, C, S...]`.
    Soft(wgpu::BufferSlice<'a>),
    /// Class indices `[B, S...]`, 32-bit: u32, or i32 (PyTorch's and burn's int
    /// tensors), in which case a negative `ignore_index` matches its two's-complement
    /// bit pattern (−100 is `0xFFFF_FF9C`).
    Index(wgpu::BufferSlice<'a>),
}

/// The GPU-side result of a call: a storage buffer holding
/// `[loss: f32, status: u32, values: f32 × values_len]`, readable whenever the caller
/// wants with [`crate::Loss::read`] (or copied by the caller's own code).
#[derive(Debug)]
pub struct GpuResult {
    pub(crate) buffer: wgpu::Buffer,
    pub(crate) stats: wgpu::Buffer,
    pub(crate) values_len: usize,
    pub(crate) classes: usize,
}

impl GpuResult {
    /// The result buffer (`STORAGE | COPY_SRC`): word 0 the loss (f32), word 1 the status
    /// bits (u32: 1 non-finite input, 2 soft target outside [0, 1], 4 class index out of
    /// range; 0 = valid), then the per-item values for `Reduction::None`.
    pub fn buffer(&self) -> &wgpu::Buffer {
        &self.buffer
    }
    /// The per-(b, c) statistics, `[B, C]` × `[tp, fp, fn, present]` f32 (`STORAGE |
    /// COPY_SRC`), for all C classes: plain sums over the kept pixels, where `present`
    /// counts pixels whose target exceeds the present(threshold) rule's threshold.
    pub fn stats_buffer(&self) -> &wgpu::Buffer {
        &self.stats
    }
    /// Number of per-item values after the two header words.
    pub fn values_len(&self) -> usize {
        self.values_len
    }
}

/// The local phase of a split GPU-resident call ([`crate::Loss::encode_stats`]): this
/// worker's per-(b, c) statistics and the shared block of plain sums, left on the GPU.
/// Sum [`GpuStats::shared_buffer`] across workers (any all-reduce), write the sum back
/// into it, then call [`crate::Loss::encode_finish`]. Layout: [`crate::Stats`].
#[derive(Debug)]
pub struct GpuStats {
    pub(crate) items: wgpu::Buffer,
    pub(crate) shared: wgpu::Buffer,
    pub(crate) status: wgpu::Buffer,
    pub(crate) out: wgpu::Buffer,
    pub(crate) shape: Shape,
    pub(crate) options: LossOptions,
    pub(crate) device: wgpu::Device,
    /// Held from writing the shared block to the submission that reads it: two threads
    /// finishing one statistics (or two clones of one [`crate::Stats`] with different
    /// sums) must not queue two unsynchronised copies into `shared` in one submission
    /// (the validation layer's SYNC-HAZARD-WRITE-AFTER-WRITE, a race on a real GPU).
    pub(crate) write: std::sync::Mutex<()>,
}

impl GpuStats {
    /// This worker's per-(b, c) statistics, `[B, C]` × `[tp, fp, fn, present]` f32
    /// (`STORAGE | COPY_SRC`); compound losses add a second `[B, C]` block whose sum
    /// over classes is each image's `[ce, focal, kept pixels, ce normaliser]` (how it is
    /// split over classes is not specified).
    pub fn items_buffer(&self) -> &wgpu::Buffer {
        &self.items
    }
    /// The shared block, [`crate::Stats::shared_len`] f32 words (`STORAGE | COPY_SRC |
    /// COPY_DST`): overwrite it with the sum over workers before `encode_finish`.
    pub fn shared_buffer(&self) -> &wgpu::Buffer {
        &self.shared
    }
    /// `[0, status]` after the local phase (`STORAGE | COPY_SRC`), status as in
    /// [`GpuResult::buffer`]; [`crate::Loss::read_shared`] checks it for you.
    pub fn status_buffer(&self) -> &wgpu::Buffer {
        &self.out
    }

    /// Statistics are finished on the device that computed them.
    pub(crate) fn check_device(&self, device: &wgpu::Device) -> Result<()> {
        if self.device != *device {
            return Err(Error::InvalidStats(
                "statistics computed on another device".into(),
            ));
        }
        Ok(())
    }
}

impl GpuResult {
    /// The result of a recorded call.
    pub(crate) fn from_encoded(e: Encoded, classes: usize) -> Self {
        GpuResult {
            buffer: e.out,
            stats: e.items,
            values_len: e.values_len,
            classes,
        }
    }
}

impl GpuStats {
    /// The local phase of a recorded call.
    pub(crate) fn from_encoded(
        e: Encoded,
        shape: &Shape,
        options: &LossOptions,
        device: &wgpu::Device,
    ) -> Self {
        GpuStats {
            device: device.clone(),
            items: e.items,
            shared: e.shared,
            status: e.status,
            out: e.out,
            shape: shape.clone(),
            options: options.clone(),
            write: std::sync::Mutex::new(()),
        }
    }

    /// The lock held from a write of the shared block to its submission (poisoning is
    /// harmless: the guarded state is the queue's, not the lock's).
    pub(crate) fn write_lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.write.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Its buffers, for the finishing call.
    pub(crate) fn local(&self) -> Local<'_> {
        Local {
            status: &self.status,
            items: &self.items,
            shared: &self.shared,
        }
    }
}

/// A host batch uploaded to the device (kept by [`crate::Stats`] for the gradient).
#[derive(Debug)]
pub(crate) struct Uploaded {
    pub shape: Shape,
    pub input: Pooled,
    pub labels: Pooled,
    pub index_target: bool,
    pub mask: Option<Pooled>,
    /// The ignore value as the kernel sees it in `labels`.
    pub ignore: Option<u32>,
}

impl Uploaded {
    pub fn batch(&self) -> GpuBatch<'_> {
        GpuBatch {
            shape: &self.shape,
            input: self.input.slice(..),
            target: if self.index_target {
                GpuTarget::Index(self.labels.slice(..))
            } else {
                GpuTarget::Soft(self.labels.slice(..))
            },
            mask: self.mask.as_deref().map(|m| m.slice(..)),
        }
    }
}
