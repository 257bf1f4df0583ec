//! Executes a [`Plan`] on the device: the per-call buffers (status, statistics, shared
//! block, coefficients, result, per-window params) and the recording of each kernel's
//! dispatches. [`crate::resident::encode`] feeds it caller buffers (bound in place, or
//! copied in chunks on the device); [`crate::stream`] feeds it host slices one chunk at a
//! time.

use crate::context::Gpu;
use crate::error::Result;
use crate::kernels::{coef, finalize, grad, item_sums, norm, row_sums, softmax_dot, tile_sums};
use crate::options::LossOptions;
use crate::output::STATUS_NOT_RUN;
use crate::plan::{Plan, WindowPlan};
use crate::transfer::upload;

/// A segloss-owned buffer of `bytes` (at least 4), not mapped.
pub(crate) fn scratch(
    dev: &wgpu::Device,
    label: &str,
    bytes: u64,
    usage: wgpu::BufferUsages,
) -> wgpu::Buffer {
    dev.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes.max(4),
        usage,
        mapped_at_creation: false,
    })
}

/// The first `bytes` of `buf` as a binding.
pub(crate) fn prefix(buf: &wgpu::Buffer, bytes: u64) -> wgpu::BindingResource<'_> {
    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
        buffer: buf,
        offset: 0,
        size: wgpu::BufferSize::new(bytes),
    })
}

/// The first `bytes` bytes of a slice as a binding (at the slice's offset).
pub(crate) fn range(s: wgpu::BufferSlice<'_>, bytes: u64) -> wgpu::BindingResource<'_> {
    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
        buffer: s.buffer(),
        offset: s.offset(),
        size: wgpu::BufferSize::new(bytes),
    })
}

/// Byte offset of the gradient's factor in the params block.
pub(crate) const GRAD_SCALE_OFFSET: u64 =
    std::mem::offset_of!(crate::kernels::Params, grad_scale) as u64;

/// A planned window with its params block on the device.
pub(crate) struct Window {
    pub plan: WindowPlan,
    params: wgpu::Buffer,
}

impl Window {
    /// First pixel of the window in every row.
    pub fn n0(&self) -> usize {
        self.plan.n0
    }
    /// Pixels of the window.
    pub fn len(&self) -> usize {
        self.plan.len
    }
    /// Copies the f32 at `scale` into this window's gradient factor (on the device, in
    /// `encoder`'s order): `finalize` and `coef` read the first window's.
    pub fn scale_from(&self, encoder: &mut wgpu::CommandEncoder, scale: wgpu::BufferSlice<'_>) {
        encoder.copy_buffer_to_buffer(
            scale.buffer(),
            scale.offset(),
            &self.params,
            GRAD_SCALE_OFFSET,
            4,
        );
    }
}

/// What one window's dispatch binds for input, labels and mask.
pub(crate) struct Bound<'a> {
    pub x: wgpu::BindingResource<'a>,
    pub y: wgpu::BindingResource<'a>,
    pub mask: wgpu::BindingResource<'a>,
}

/// The buffers of a local phase that a finishing call reuses.
pub(crate) struct Local<'a> {
    pub status: &'a wgpu::Buffer,
    pub items: &'a wgpu::Buffer,
    pub shared: &'a wgpu::Buffer,
}

/// The buffers a recorded call leaves.
pub(crate) struct Encoded {
    pub out: wgpu::Buffer,
    pub items: wgpu::Buffer,
    pub shared: wgpu::Buffer,
    pub status: wgpu::Buffer,
    pub values_len: usize,
}

/// The per-call state of one loss call.
pub(crate) struct Call<'g> {
    gpu: &'g Gpu,
    pub plan: Plan,
    status: wgpu::Buffer,
    items: wgpu::Buffer,
    shared: wgpu::Buffer,
    partials: Option<wgpu::Buffer>,
    coef: wgpu::Buffer,
    aux: wgpu::Buffer,
    weights: wgpu::Buffer,
    out: wgpu::Buffer,
    placeholder: wgpu::Buffer,
    work: wgpu::Buffer,
    norms: Option<wgpu::Buffer>,
    pix: Option<wgpu::Buffer>,
}

impl<'g> Call<'g> {
    /// Creates the buffers of `plan` (a finishing call reuses `local`'s).
    pub fn new(
        gpu: &'g Gpu,
        options: &LossOptions,
        plan: Plan,
        local: Option<Local<'_>>,
    ) -> Result<Self> {
        let dev = &gpu.device;
        let (b, c) = (plan.batch, plan.classes);
        let rw = wgpu::BufferUsages::STORAGE;
        let src = wgpu::BufferUsages::COPY_SRC;
        let dst = wgpu::BufferUsages::COPY_DST;
        let scratch = |label: &str, bytes: u64, usage| scratch(dev, label, bytes, usage);
        let (status, items, shared) = match local {
            Some(l) => (l.status.clone(), l.items.clone(), l.shared.clone()),
            None => (
                // Starts "not run" (cleared by `begin`): a finishing call whose local
                // phase never ran reports it instead of finishing from zeros.
                upload(
                    dev,
                    "segloss.status",
                    &STATUS_NOT_RUN.to_le_bytes(),
                    rw | src | dst,
                )?,
                scratch("segloss.items", plan.items_bytes(), rw | src),
                scratch(
                    "segloss.shared",
                    4 * crate::reference::shared_len(c) as u64,
                    rw | src | dst,
                ),
            ),
        };
        let partials = plan
            .local()
            .then(|| scratch("segloss.partials", plan.partials_bytes(), rw));
        // Per-(b, c) coefficients, then the pixel terms' scales.
        let coef = scratch("segloss.coef", 16 * (b * c + 1) as u64, rw);
        let aux: Vec<f32> = crate::reference::pixel::aux_table(options, c)
            .iter()
            .flatten()
            .map(|&v| v as f32)
            .collect();
        let aux = upload(dev, "segloss.aux", bytemuck::cast_slice(&aux), rw)?;
        // Status "not run" until `finalize` copies the final status in: a result read
        // before its encoder was submitted is an error, not a zero loss. (The loss word
        // stays 0: a local phase never writes it.)
        let mut header = vec![0u32; 2 + plan.values_len];
        header[1] = STATUS_NOT_RUN;
        let out = upload(
            dev,
            "segloss.out",
            bytemuck::cast_slice(&header),
            rw | src | dst,
        )?;
        let weights: Vec<f32> = match &options.class_weights {
            Some(w) => w.iter().map(|&v| v as f32).collect(),
            None => vec![0.0],
        };
        let weights = upload(dev, "segloss.weights", bytemuck::cast_slice(&weights), rw)?;
        let (norms, pix) = match plan.pixel_bytes() {
            Some((n, p)) => (
                Some(scratch("segloss.norms", n, rw)),
                Some(scratch("segloss.pix", p, rw)),
            ),
            None => (None, None),
        };
        Ok(Call {
            gpu,
            status,
            items,
            shared,
            partials,
            coef,
            aux,
            weights,
            out,
            // 16 bytes: the smallest binding of an array<vec4<f32>>.
            placeholder: scratch("segloss.placeholder", 16, rw),
            work: scratch("segloss.work", 16 * (3 * b + 2) as u64, rw),
            norms,
            pix,
            plan,
        })
    }

    /// Records the start of a local phase: the status word cleared (it starts "not
    /// run"). Before the first `tile_sums`.
    pub fn begin(&self, encoder: &mut wgpu::CommandEncoder) {
        if self.plan.local() {
            encoder.clear_buffer(&self.status, 0, None);
        }
    }

    /// The planned windows with their params blocks uploaded.
    pub fn windows(&self) -> Result<Vec<Window>> {
        self.plan
            .windows
            .iter()
            .map(|w| {
                // COPY_DST: a scaled gradient's factor is copied into the first one.
                let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST;
                let bytes = bytemuck::bytes_of(&w.params);
                Ok(Window {
                    plan: *w,
                    params: upload(&self.gpu.device, "segloss.params", bytes, usage)?,
                })
            })
            .collect()
    }

    /// The placeholder bound where a variant reads nothing (no mask, no chunked softmax).
    pub fn placeholder(&self) -> wgpu::BindingResource<'_> {
        self.placeholder.as_entire_binding()
    }

    fn or_placeholder<'a>(&'a self, b: &'a Option<wgpu::Buffer>) -> wgpu::BindingResource<'a> {
        b.as_ref().unwrap_or(&self.placeholder).as_entire_binding()
    }

    /// `norm` over window `w` (a chunked softmax only).
    fn norm(&self, encoder: &mut wgpu::CommandEncoder, w: &Window, input: &Bound<'_>) {
        let Some(norms) = &self.norms else { return };
        norm::Bindings {
            params: w.params.as_entire_binding(),
            input: input.x.clone(),
            labels: input.y.clone(),
            mask: input.mask.clone(),
            norms: norms.as_entire_binding(),
        }
        .record(
            &self.gpu.kernels,
            encoder,
            self.plan.variant,
            self.plan.row_groups(&w.plan),
        );
    }

    /// `tile_sums` over window `w` (after `norm`): its tiles' partial sums (local
    /// phases only).
    pub fn tile_sums(&self, encoder: &mut wgpu::CommandEncoder, w: &Window, input: &Bound<'_>) {
        let Some(partials) = &self.partials else {
            return;
        };
        self.norm(encoder, w, input);
        tile_sums::Bindings {
            params: w.params.as_entire_binding(),
            input: input.x.clone(),
            labels: input.y.clone(),
            mask: input.mask.clone(),
            partials: partials.as_entire_binding(),
            status: self.status.as_entire_binding(),
            aux: self.aux.as_entire_binding(),
            norms: self.or_placeholder(&self.norms),
        }
        .record(
            &self.gpu.kernels,
            encoder,
            self.plan.variant,
            self.plan.row_groups(&w.plan),
        );
    }

    /// After every window's `tile_sums`: `item_sums` (local phases), `row_sums`,
    /// `finalize`, and `coef` when the call finishes; then the final status word into the
    /// result.
    pub fn finalize(&self, encoder: &mut wgpu::CommandEncoder, first: &Window) {
        let (k, v) = (&self.gpu.kernels, self.plan.variant);
        let params = || first.params.as_entire_binding();
        if let Some(partials) = &self.partials {
            item_sums::Bindings {
                params: params(),
                partials: partials.as_entire_binding(),
                items: self.items.as_entire_binding(),
            }
            .record(k, encoder, v, self.plan.item_sums_groups());
        }
        row_sums::Bindings {
            params: params(),
            items: self.items.as_entire_binding(),
            weights: self.weights.as_entire_binding(),
            status: self.status.as_entire_binding(),
            work: self.work.as_entire_binding(),
            shared: self.shared.as_entire_binding(),
        }
        .record(k, encoder, v, self.plan.row_sums_groups());
        finalize::Bindings {
            params: params(),
            weights: self.weights.as_entire_binding(),
            status: self.status.as_entire_binding(),
            out: self.out.as_entire_binding(),
            coef: self.coef.as_entire_binding(),
            shared: self.shared.as_entire_binding(),
            work: self.work.as_entire_binding(),
        }
        .record(k, encoder, v, (1, 1, 1));
        if self.plan.finishes() {
            coef::Bindings {
                params: params(),
                items: self.items.as_entire_binding(),
                weights: self.weights.as_entire_binding(),
                status: self.status.as_entire_binding(),
                out: self.out.as_entire_binding(),
                coef: self.coef.as_entire_binding(),
                shared: self.shared.as_entire_binding(),
                work: self.work.as_entire_binding(),
            }
            .record(k, encoder, v, self.plan.coef_groups());
        }
        // The final status word (with `finalize`'s and `coef`'s overflow flags).
        encoder.copy_buffer_to_buffer(&self.status, 0, &self.out, 4, 4);
    }

    /// `grad` over window `w` into `grad` (the window's pixels of every row); for a
    /// chunked softmax `softmax_dot` first, after `norm` again where the window's
    /// normalisers are not in place.
    pub fn grad(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        w: &Window,
        input: &Bound<'_>,
        grad: wgpu::BindingResource<'_>,
    ) {
        let (k, v) = (&self.gpu.kernels, self.plan.variant);
        let groups = self.plan.row_groups(&w.plan);
        if let (Some(norms), Some(pix)) = (&self.norms, &self.pix) {
            // With one window the statistics pass of this call left its normalisers in
            // place; otherwise later windows overwrote them, or (finishing call) no
            // statistics pass ran.
            if !(self.plan.local() && self.plan.windows.len() == 1) {
                self.norm(encoder, w, input);
            }
            softmax_dot::Bindings {
                params: w.params.as_entire_binding(),
                input: input.x.clone(),
                labels: input.y.clone(),
                mask: input.mask.clone(),
                coef: self.coef.as_entire_binding(),
                pix: pix.as_entire_binding(),
                aux: self.aux.as_entire_binding(),
                norms: norms.as_entire_binding(),
            }
            .record(k, encoder, v, groups);
        }
        grad::Bindings {
            params: w.params.as_entire_binding(),
            input: input.x.clone(),
            labels: input.y.clone(),
            mask: input.mask.clone(),
            coef: self.coef.as_entire_binding(),
            grad,
            aux: self.aux.as_entire_binding(),
            pix: self.or_placeholder(&self.pix),
        }
        .record(k, encoder, v, groups);
    }

    /// The result buffer (`[loss, status, values…]`).
    pub fn out(&self) -> &wgpu::Buffer {
        &self.out
    }

    /// The buffers the call leaves.
    pub fn into_encoded(self) -> Encoded {
        Encoded {
            out: self.out,
            items: self.items,
            shared: self.shared,
            status: self.status,
            values_len: self.plan.values_len,
        }
    }
}
