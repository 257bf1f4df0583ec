//! The public loss object and its entry points: the host API here and in [`host`], the
//! split-phase (data-parallel) API in [`split`], the GPU-resident API in [`resident`].
//! The CPU backend is [`crate::cpu`]; every GPU path plans and records a call through
//! [`crate::plan`] and [`crate::record`].

mod host;
mod resident;
mod split;

use std::future::Future;

use crate::context::{Context, Gpu, Inner};
use crate::cpu;
use crate::error::Result;
use crate::options::LossOptions;
use crate::output::LossOutput;
use crate::shape::{Batch, Shape};

/// A validated loss bound to a context. `Send + Sync`; share it across threads.
///
/// ```
/// # fn main() -> segloss::Result<()> {
/// use segloss::{Batch, Context, Loss, LossOptions, Shape};
/// let ctx = Context::new_or_cpu();
/// let loss = Loss::new(&ctx, LossOptions::dice())?;
/// let shape = Shape::new(&[1, 2, 4])?;
/// let logits = [2.0, -1.0, 0.5, 0.0, -2.0, 1.0, 0.5, 0.0];
/// let target = [1.0, 0.0, 0.5, 0.5, 0.0, 1.0, 0.5, 0.5];
/// let out = loss.forward_backward(&Batch::soft(&shape, &logits, &target))?;
/// assert!(out.loss > 0.0);
/// assert_eq!(out.grad.map(|g| g.len()), Some(8));
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Loss {
    ctx: Context,
    options: LossOptions,
}

impl Loss {
    /// Validates `options` and binds them to `ctx`.
    pub fn new(ctx: &Context, options: LossOptions) -> Result<Self> {
        options.validate()?;
        Ok(Loss {
            ctx: ctx.clone(),
            options,
        })
    }

    /// Checks that this loss's options fit a batch of `shape` (class weights' length,
    /// `ignore_index`, the one-channel rules) without computing anything: the errors a
    /// call on that shape would give for its options.
    pub fn check_shape(&self, shape: &Shape) -> Result<()> {
        self.options.validate_for(shape.classes())
    }

    /// The options of this loss.
    pub fn options(&self) -> &LossOptions {
        &self.options
    }

    /// The context this loss runs on.
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// The loss (and per-item values) of one batch, without the gradient.
    pub fn forward(&self, batch: &Batch<'_>) -> Result<LossOutput> {
        self.run_host(batch, false)
    }

    /// The loss and d(loss)/d(input).
    pub fn forward_backward(&self, batch: &Batch<'_>) -> Result<LossOutput> {
        self.run_host(batch, true)
    }

    /// Async loss (no gradient). The data is uploaded and the work submitted before this
    /// returns, so the borrowed slices are free at once and several calls can be in
    /// flight; the future resolves when the GPU is done.
    ///
    /// What blocks, exactly: this call itself copies the batch into wgpu's staging memory
    /// and submits (no wait on the GPU); on a CPU context, and for a batch that streams
    /// (over the device's binding or buffer-size limit, see `docs/SPEC.md`), it computes
    /// the whole result before returning and the future is ready at once. Awaiting the
    /// future parks no executor thread: one short-lived helper OS thread per pending
    /// future polls the device until the readback is mapped. An input-data error
    /// (non-finite value, label out of range) found by the kernels comes back without a
    /// position here, since the slices are no longer borrowed; the blocking calls
    /// locate it.
    pub fn forward_async(
        &self,
        batch: &Batch<'_>,
    ) -> impl Future<Output = Result<LossOutput>> + Send + 'static {
        self.host_async(batch, false)
    }

    /// Async loss and gradient: as [`Loss::forward_async`], with d(loss)/d(input).
    pub fn forward_backward_async(
        &self,
        batch: &Batch<'_>,
    ) -> impl Future<Output = Result<LossOutput>> + Send + 'static {
        self.host_async(batch, true)
    }

    /// Blocking host call: uploads, computes in one submission, reads back.
    pub(crate) fn run_host(&self, batch: &Batch<'_>, with_grad: bool) -> Result<LossOutput> {
        let mut owned = None;
        let batch = &self.prepared(batch, &mut owned)?;
        self.run_prepared(batch, with_grad)
    }

    /// [`Loss::run_host`] of a batch [`Loss::prepared`] has checked.
    pub(crate) fn run_prepared(&self, batch: &Batch<'_>, with_grad: bool) -> Result<LossOutput> {
        if let Inner::Cpu = &*self.ctx.inner {
            return cpu::evaluate(&self.options, batch, with_grad);
        }
        if !with_grad {
            return self.evaluate_located(batch, None);
        }
        // Zeroed pages come from the allocator untouched: filled once, by the readback.
        let mut grad = vec![0.0f32; batch.shape.len()];
        let out = self.evaluate_located(batch, Some(&mut grad))?;
        Ok(LossOutput {
            grad: Some(grad),
            ..out
        })
    }

    /// The loss, with d(loss)/d(input) written into `grad` (`[B, C, S...]`, the input's
    /// length) rather than into a new vector: for training loops that keep one gradient
    /// buffer, or write straight into a framework's tensor. The returned
    /// [`LossOutput::grad`] is `None`. On error `grad` may be partly written.
    ///
    /// ```
    /// # fn main() -> segloss::Result<()> {
    /// use segloss::{Batch, Context, Loss, LossOptions, Shape};
    /// let ctx = Context::new_or_cpu();
    /// let loss = Loss::new(&ctx, LossOptions::dice())?;
    /// let shape = Shape::new(&[1, 2, 2])?;
    /// let mut grad = vec![0.0; 4];
    /// for step in 0..3 {
    ///     let x = [0.5, -0.5 * step as f32, 0.25, 1.0];
    ///     let out = loss
    ///         .forward_backward_into(&Batch::soft(&shape, &x, &[1.0, 0.0, 0.0, 1.0]), &mut grad)
    ///         ?;
    ///     assert!(out.loss > 0.0 && out.grad.is_none());
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn forward_backward_into(&self, batch: &Batch<'_>, grad: &mut [f32]) -> Result<LossOutput> {
        let mut owned = None;
        let batch = &self.prepared(batch, &mut owned)?;
        crate::shape::check_len("grad", grad.len(), batch.shape.len())?;
        if let Inner::Cpu = &*self.ctx.inner {
            let out = cpu::evaluate(&self.options, batch, true)?;
            if let Some(g) = &out.grad {
                grad.copy_from_slice(g);
            }
            return Ok(LossOutput { grad: None, ..out });
        }
        self.evaluate_located(batch, Some(grad))
    }

    /// The GPU host call, a data error located in the host data (the kernels report
    /// its kind only).
    fn evaluate_located(&self, batch: &Batch<'_>, grad: Option<&mut [f32]>) -> Result<LossOutput> {
        self.evaluate_into(batch, grad)
            .map_err(|e| cpu::locate(&self.options, batch, e))
    }

    /// The batch a host call computes: every length and option checked before anything
    /// is allocated (a valid huge shape with short slices is an error, not an
    /// allocation of the shape's size), and `ignore_index`'s soft-target rule folded into
    /// the keep-mask (held by `owned`).
    fn prepared<'a>(
        &self,
        batch: &Batch<'a>,
        owned: &'a mut Option<Vec<bool>>,
    ) -> Result<Batch<'a>> {
        batch.check_lengths()?;
        self.options.validate_for(batch.shape.classes())?;
        *owned = batch.soft_ignore_mask(self.options.ignore_index)?;
        let owned: &'a Option<Vec<bool>> = owned;
        Ok(match owned {
            Some(m) => Batch {
                mask: Some(m.as_slice()),
                ..*batch
            },
            None => *batch,
        })
    }
}

/// Runs `f` inside validation and out-of-memory error scopes, returning the first wgpu
/// error as a segloss error instead of letting wgpu's default handler panic. In the
/// browser the scopes' results arrive through the event loop: they are kept in the
/// context ([`crate::scope::Deferred`]) and returned by the next awaited readback.
pub(crate) fn scoped<T>(gpu: &Gpu, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let oom = gpu.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let validation = gpu.device.push_error_scope(wgpu::ErrorFilter::Validation);
    let r = f();
    // Scopes are a stack: the inner one first.
    let (v, o) = (validation.pop(), oom.pop());
    #[cfg(not(target_arch = "wasm32"))]
    crate::scope::settle(&gpu.pool, pollster::block_on(o), pollster::block_on(v))?;
    #[cfg(target_arch = "wasm32")]
    gpu.deferred.push(Box::pin(o), Box::pin(v));
    gpu.check_alive()?;
    r
}

// Compile-time check: losses and contexts are shared across threads.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Loss>();
    send_sync::<Context>();
};
