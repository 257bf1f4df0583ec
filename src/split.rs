//! The split-phase API's statistics: what data-parallel workers exchange (the shared
//! block) and what each keeps for its gradient.

use crate::cpu::HostBatch;
use crate::error::{Error, Result};
use crate::options::LossOptions;
use crate::reference::{SHARED_HEADER, SHARED_ROW};
use crate::resident::{GpuStats, Uploaded};
use crate::shape::Shape;

/// The local phase of a split loss call ([`crate::Loss::stats`]): this worker's
/// statistics, ready to be summed across workers before [`crate::Loss::finish`].
///
/// # Data-parallel use
/// ```text
/// let mut st = loss.stats(&my_shard)?;        // local phase
/// all_reduce_sum(st.shared_mut());             // MPI, NCCL via the host, a channel…
/// let out = loss.finish(&st, true)?;           // global loss, this shard's gradient
/// ```
/// Every word of [`Stats::shared`] is a plain sum over images, so adding the blocks of
/// all workers (in any order or tree) and finishing gives each worker the loss of the
/// whole global batch and the gradient of its own shard, at every aggregation level.
///
/// # Shared block layout (version [`Stats::LAYOUT_VERSION`] = 1), f32 words
/// C is the number of classes of the input (all of them, whatever
/// `include_background`); `shared_len = 8 + 8·C`.
///
/// | words | content (each summed over the worker's images) |
/// |---|---|
/// | 0 | images: B |
/// | 1 | active images: images with ≥ 1 active class (image-level mean's divisor) |
/// | 2 | Σ over active images of (Σ active ℓ_bc / #active classes of b) |
/// | 3 | reserved (0) |
/// | 4 | compound losses: Σ cross-entropy term (unnormalised) |
/// | 5 | compound losses: Σ focal term (unnormalised) |
/// | 6 | compound losses: kept pixels |
/// | 7 | compound losses: cross-entropy normaliser (kept pixels; index targets with class weights: Σ w_{y_i}; binary: kept pixels × C) |
/// | 8 + 8c + 0..4 | class c: Σ_b tp, Σ_b fp, Σ_b fn, Σ_b present (dataset level) |
/// | 8 + 8c + 4 | class c: Σ over images where c is active of ℓ_bc (class level) |
/// | 8 + 8c + 5 | class c: number of images where c is active (class level) |
/// | 8 + 8c + 6..8 | reserved (0) |
///
/// ℓ_bc is the item loss w_c·h(T)^γ (SPEC §2.6) of image b, class c. Rows of a dropped
/// background hold its tp/fp/fn sums and zeros elsewhere.
///
/// What each level needs from other workers: compound terms words 4..8 (their means
/// divide by global pixel counts); dataset level the per-class tp/fp/fn sums;
/// image level the number of active images (the per-image terms are local); class level
/// each class's summed item losses and active-image count. `Reduction::None` at image or
/// class level needs nothing (its values are per image, and each worker's loss is the
/// sum of its own).
#[derive(Debug)]
pub struct Stats {
    pub(crate) shared: Vec<f32>,
    pub(crate) items: Vec<[f32; 4]>,
    pub(crate) shape: Shape,
    pub(crate) options: LossOptions,
    pub(crate) held: Held,
}

/// What `finish` needs besides the shared block: the batch, kept where it was computed.
#[derive(Debug)]
pub(crate) enum Held {
    /// The CPU reference: the batch widened to f64 and the f64 item statistics.
    Cpu {
        batch: HostBatch,
        items: Vec<[f64; 4]>,
    },
    /// A GPU context: the uploaded batch and the local phase's buffers.
    Gpu(Box<(Uploaded, GpuStats)>),
}

impl Stats {
    /// Version of the shared block's layout (documented above). It changes whenever the
    /// layout does; workers must agree on it.
    pub const LAYOUT_VERSION: u32 = 1;

    /// Length in f32 words of the shared block for `classes` classes.
    pub fn shared_len(classes: usize) -> usize {
        crate::reference::shared_len(classes)
    }

    /// The shared block: plain sums to add across workers.
    pub fn shared(&self) -> &[f32] {
        &self.shared
    }

    /// The shared block, to overwrite with the sum over workers (an in-place
    /// all-reduce).
    pub fn shared_mut(&mut self) -> &mut [f32] {
        &mut self.shared
    }

    /// Adds another worker's shared block into this one (in-process data parallelism).
    pub fn add_shared(&mut self, other: &[f32]) -> Result<()> {
        if other.len() != self.shared.len() {
            return Err(Error::InvalidStats(format!(
                "a shared block of {} words, this one has {}",
                other.len(),
                self.shared.len()
            )));
        }
        self.shared.iter_mut().zip(other).for_each(|(a, b)| *a += b);
        Ok(())
    }

    /// This worker's per-(b, c) statistics, `[B, C]` rows of `[tp, fp, fn, present]`
    /// over all C classes: plain sums over the kept pixels, where `present` counts
    /// pixels whose target exceeds the present(threshold) rule's threshold.
    pub fn items(&self) -> &[[f32; 4]] {
        &self.items
    }

    /// The shape of this worker's batch.
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// Checks that the (summed) shared block can finish a call of `options`.
    pub(crate) fn check(&self, options: &LossOptions) -> Result<()> {
        if *options != self.options {
            return Err(Error::InvalidStats(
                "statistics computed with other loss options".into(),
            ));
        }
        let c = self.shape.classes();
        if self.shared.len() != Self::shared_len(c) {
            return Err(Error::InvalidStats(format!(
                "the shared block holds {} words, {} classes need {}",
                self.shared.len(),
                c,
                Self::shared_len(c)
            )));
        }
        if let Some(i) = self.shared.iter().position(|v| !v.is_finite()) {
            return Err(Error::InvalidStats(format!(
                "shared word {i} is not finite ({})",
                self.shared[i]
            )));
        }
        if (self.shared[0] as f64) < self.shape.batch() as f64 {
            return Err(Error::InvalidStats(format!(
                "the shared block counts {} images, fewer than this worker's {}",
                self.shared[0],
                self.shape.batch()
            )));
        }
        debug_assert_eq!(SHARED_HEADER + SHARED_ROW * c, self.shared.len());
        Ok(())
    }
}
