//! `encode`: checks a GPU-resident call's buffers (sizes, usages, device, aliasing),
//! plans the call and records it, binding the caller's buffers in place or copying
//! them in chunks on the device when an array exceeds one storage binding.

use super::{GpuBatch, GpuStats, GpuTarget};
use crate::context::Gpu;
use crate::error::{Error, Result};
use crate::options::LossOptions;
use crate::plan::{bytes_of_words as words, Binding, Phase, Plan, Targets, SCRATCH_CAP};
use crate::record::{prefix, range, scratch, Bound, Call, Encoded, Window};
use crate::shape::{mask_buffer_bytes, Shape};

/// Copies pixels `w.n0 .. w.n0 + w.len` of each of `rows` rows between a `[rows, N]`
/// array and a packed `[rows, w.len]` chunk (`to_full`: chunk → array).
fn copy_rows(
    encoder: &mut wgpu::CommandEncoder,
    src: wgpu::BufferSlice<'_>,
    dst: wgpu::BufferSlice<'_>,
    rows: usize,
    n: usize,
    w: &Window,
    to_full: bool,
) {
    let bytes = words(w.len());
    for r in 0..rows {
        let full = words(r * n + w.n0());
        let packed = words(r * w.len());
        let (so, d) = if to_full {
            (packed, full)
        } else {
            (full, packed)
        };
        encoder.copy_buffer_to_buffer(
            src.buffer(),
            src.offset() + so,
            dst.buffer(),
            dst.offset() + d,
            bytes,
        );
    }
}

/// A caller buffer is of `gpu`'s device (bound to a probe layout inside an error scope,
/// so that wgpu reports rather than panics). Natively the scope is read at once; in the
/// browser (one thread, which may never block) it joins the context's deferred scopes,
/// and a foreign buffer is the error of the next awaited readback.
pub(crate) fn check_owned(gpu: &Gpu, name: &'static str, buf: &wgpu::Buffer) -> Result<()> {
    let scope = gpu.device.push_error_scope(wgpu::ErrorFilter::Validation);
    let _probe = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("segloss.probe"),
        layout: gpu.kernels.probe(),
        entries: &[wgpu::BindGroupEntry {
            binding: 0,
            resource: prefix(buf, 4),
        }],
    });
    #[cfg(target_arch = "wasm32")]
    {
        let _ = name;
        gpu.deferred
            .push(Box::pin(std::future::ready(None)), Box::pin(scope.pop()));
        Ok(())
    }
    #[cfg(not(target_arch = "wasm32"))]
    match pollster::block_on(scope.pop()) {
        Some(e) => Err(Error::InvalidBuffer {
            name,
            reason: format!("not usable on this context's device (another device's?): {e}"),
        }),
        None => Ok(()),
    }
}

/// A caller slice has `usage`, at least `need` bytes, and is not mapped (a mapped
/// buffer cannot be used by a submission: the caller's would fail, or panic).
pub(crate) fn check_buffer(
    name: &'static str,
    s: wgpu::BufferSlice<'_>,
    need: u64,
    usage: wgpu::BufferUsages,
) -> Result<()> {
    let buf = s.buffer();
    // wgpu 30 has no `map_state`: a view of a buffer is granted only while it is mapped
    // (the probe view is dropped at once).
    if buf.slice(..).get_mapped_range().is_ok() {
        return Err(Error::InvalidBuffer {
            name,
            reason: "mapped by the caller: unmap it before the call".into(),
        });
    }
    if !buf.usage().contains(usage) {
        return Err(Error::InvalidBuffer {
            name,
            reason: format!("usage {:?} lacks {:?}", buf.usage(), usage),
        });
    }
    if s.size() < need {
        return Err(Error::InvalidBuffer {
            name,
            reason: format!("{} bytes, the shape needs {need}", s.size()),
        });
    }
    Ok(())
}

/// A slice starts at a multiple of `align` bytes (a storage binding's offset alignment,
/// or 4 for a copy).
pub(crate) fn check_offset(name: &'static str, s: wgpu::BufferSlice<'_>, align: u64) -> Result<()> {
    if s.offset() % align != 0 {
        return Err(Error::InvalidBuffer {
            name,
            reason: format!(
                "starts at byte {}, not a multiple of {align} (the offset alignment)",
                s.offset()
            ),
        });
    }
    Ok(())
}

/// The bytes `[offset, offset + bytes)` of two slices of one buffer overlap.
fn overlaps(a: (wgpu::BufferSlice<'_>, u64), b: (wgpu::BufferSlice<'_>, u64)) -> bool {
    a.0.buffer() == b.0.buffer()
        && a.0.offset() < b.0.offset() + b.1
        && b.0.offset() < a.0.offset() + a.1
}

/// What a recorded call reads and which part of it runs.
pub(crate) struct Request<'a> {
    pub batch: &'a GpuBatch<'a>,
    /// The ignore value as the kernels see it in the u32 target buffer.
    pub ignore: Option<u32>,
    pub grad: Option<wgpu::BufferSlice<'a>>,
    /// The gradient's factor: an f32 on the device (usage `COPY_SRC`), copied into the
    /// params block before `finalize` (see `Params::grad_scale`).
    pub scale: Option<wgpu::BufferSlice<'a>>,
    pub phase: Phase,
    /// The local phase a finishing call continues.
    pub from: Option<&'a GpuStats>,
    /// The buffers are the caller's (the GPU-resident API), not segloss's own uploads:
    /// they are probed for their device before anything is recorded.
    pub caller_buffers: bool,
}

/// What [`check_request`] found: the labels, whether they are class indices, and
/// whether the gradient shares a wgpu buffer (not bytes) with a buffer that is read.
struct Checked<'a> {
    labels: wgpu::BufferSlice<'a>,
    index: bool,
    grad_shares_buffer: bool,
}

/// Checks a request's buffers (sizes, usages, offsets, device, aliasing) before
/// anything is recorded.
fn check_request<'a>(gpu: &Gpu, r: &Request<'a>) -> Result<Checked<'a>> {
    let (shape, batch) = (r.batch.shape, r.batch);
    let storage = wgpu::BufferUsages::STORAGE;
    check_buffer("input", batch.input, words(shape.len()), storage)?;
    let (labels, index) = match batch.target {
        GpuTarget::Soft(t) => (t, false),
        GpuTarget::Index(t) => (t, true),
    };
    let label_words = if index { shape.map_len() } else { shape.len() };
    check_buffer("target", labels, words(label_words), storage)?;
    if let Some(m) = batch.mask {
        check_buffer("mask", m, mask_bytes(shape), storage)?;
    }
    let read = [
        ("input", Some((batch.input, words(shape.len())))),
        ("target", Some((labels, words(label_words)))),
        ("mask", batch.mask.map(|m| (m, mask_bytes(shape)))),
    ];
    let mut grad_shares_buffer = false;
    if let Some(g) = r.grad {
        check_buffer("grad", g, words(shape.len()), storage)?;
        // The gradient is written while the others are read: no byte may be both.
        let gr = (g, words(shape.len()));
        for (other, o) in read.iter().filter_map(|(n, o)| o.map(|o| (*n, o))) {
            if overlaps(gr, o) {
                return Err(Error::InvalidBuffer {
                    name: "grad",
                    reason: format!(
                        "overlaps the {other} buffer: the gradient needs bytes of its own"
                    ),
                });
            }
            // Disjoint ranges of one buffer (a framework's sub-allocations): wgpu
            // forbids one buffer read-only and read-write in a dispatch, so the
            // gradient is written to a scratch buffer and copied into place.
            grad_shares_buffer |= g.buffer() == o.0.buffer();
        }
    }
    let align = u64::from(gpu.device.limits().min_storage_buffer_offset_alignment).max(4);
    let bound = read
        .iter()
        .map(|(n, o)| (*n, o.map(|o| o.0)))
        .chain([("grad", r.grad)]);
    let mut probed: Vec<&wgpu::Buffer> = Vec::new();
    for (name, s) in bound {
        if let Some(s) = s {
            check_offset(name, s, align)?;
            // One probe per distinct buffer (a framework's tensors often share one).
            if r.caller_buffers && !probed.contains(&s.buffer()) {
                check_owned(gpu, name, s.buffer())?;
                probed.push(s.buffer());
            }
        }
    }
    if let Some(s) = r.scale {
        check_buffer("scale", s, 4, wgpu::BufferUsages::COPY_SRC)?;
        check_offset("scale", s, 4)?;
        let probe = s.buffer().usage().contains(storage) && !probed.contains(&s.buffer());
        if r.caller_buffers && probe {
            check_owned(gpu, "scale", s.buffer())?;
        }
    }
    let max_binding = gpu.device.limits().max_storage_buffer_binding_size;
    if mask_bytes(shape) > max_binding && batch.mask.is_some() {
        return Err(Error::TooLarge(format!(
            "the mask needs a {}-byte binding, the device allows {max_binding}",
            mask_bytes(shape)
        )));
    }
    Ok(Checked {
        labels,
        index,
        grad_shares_buffer,
    })
}

fn mask_bytes(shape: &Shape) -> u64 {
    mask_buffer_bytes(shape.map_len()) as u64
}

/// Records a call (or one phase of it) into `encoder`.
pub(crate) fn encode(
    gpu: &Gpu,
    options: &LossOptions,
    r: Request<'_>,
    encoder: &mut wgpu::CommandEncoder,
) -> Result<Encoded> {
    let (shape, batch) = (r.batch.shape, r.batch);
    let (b, c) = (shape.batch(), shape.classes());
    options.validate_for(c)?;
    if let Some(st) = r.from {
        st.check_device(&gpu.device)?;
        if st.shape != *shape {
            return Err(Error::InvalidStats(format!(
                "statistics of shape {:?}, the batch is {:?}",
                st.shape.dims(),
                shape.dims()
            )));
        }
        if st.options != *options {
            return Err(Error::InvalidStats(
                "statistics computed with other loss options".into(),
            ));
        }
    }
    let grad = r.grad.filter(|_| r.phase != Phase::Stats);
    let Checked {
        labels,
        index,
        grad_shares_buffer,
    } = check_request(gpu, &Request { grad, ..r })?;

    // Direct: the caller's buffers bound in place. Chunked (an array over the binding
    // limit): runs of whole tiles copied, per row, into bounded scratch buffers.
    let max_binding = gpu.device.limits().max_storage_buffer_binding_size;
    let label_rows = if index { b } else { b * c };
    let labels_bytes = words(label_rows * shape.pixels());
    let direct = words(shape.len()) <= max_binding && labels_bytes <= max_binding;
    let storage = wgpu::BufferUsages::STORAGE;
    let (src, dst) = (wgpu::BufferUsages::COPY_SRC, wgpu::BufferUsages::COPY_DST);
    if !direct {
        check_buffer("input", batch.input, 0, storage | src)?;
        check_buffer("target", labels, 0, storage | src)?;
    }
    if let Some(g) = grad.filter(|_| !direct || grad_shares_buffer) {
        check_buffer("grad", g, 0, storage | dst)?;
    }
    let binding = if direct {
        Binding::Direct
    } else {
        Binding::Chunk
    };
    let targets = Targets {
        index,
        ignore: r.ignore,
        mask: batch.mask.is_some(),
    };
    let limits = gpu.device.limits();
    let geometry = gpu.kernels.geometry();
    let cap = max_binding.min(SCRATCH_CAP);
    let plan = Plan::new(
        options, shape, targets, r.phase, geometry, &limits, binding, cap,
    )?;
    let run = plan.widest_window();
    let call = Call::new(gpu, options, plan, r.from.map(GpuStats::local))?;
    let windows = call.windows()?;
    if let (Some(s), Some(_)) = (r.scale, grad) {
        windows[0].scale_from(encoder, s);
    }
    let scratch = |label: &str, bytes: u64, usage| scratch(&gpu.device, label, bytes, usage);
    let chunk =
        |label, rows: usize, usage| (!direct).then(|| scratch(label, words(rows * run), usage));
    let sx = chunk("segloss.chunk_input", b * c, storage | dst);
    let sy = chunk("segloss.chunk_target", label_rows, storage | dst);
    // A gradient sharing its wgpu buffer with an input is written whole to a scratch
    // buffer and copied into place afterwards (direct calls only; chunked calls always
    // go through scratch).
    let staged = direct && grad_shares_buffer;
    let sg = grad.and(if staged {
        Some(scratch(
            "segloss.grad_staging",
            words(shape.len()),
            storage | src,
        ))
    } else {
        chunk("segloss.chunk_grad", b * c, storage | src)
    });
    let n = shape.pixels();
    let copy_in = |encoder: &mut wgpu::CommandEncoder, w: &Window| {
        if let (Some(sx), Some(sy)) = (&sx, &sy) {
            copy_rows(encoder, batch.input, sx.slice(..), b * c, n, w, false);
            copy_rows(encoder, labels, sy.slice(..), label_rows, n, w, false);
        }
    };
    // Caller buffers are bound for exactly the bytes the shape needs: they may be larger
    // (pooled, reused), even larger than a binding may be.
    fn bind<'a>(
        s: &'a Option<wgpu::Buffer>,
        full: wgpu::BufferSlice<'a>,
        bytes: u64,
    ) -> wgpu::BindingResource<'a> {
        match s {
            Some(s) => s.as_entire_binding(),
            None => range(full, bytes),
        }
    }
    let bound = Bound {
        x: bind(&sx, batch.input, words(shape.len())),
        y: bind(&sy, labels, labels_bytes),
        mask: batch
            .mask
            .map_or_else(|| call.placeholder(), |m| range(m, mask_bytes(shape))),
    };
    call.begin(encoder);
    if call.plan.local() {
        for w in &windows {
            copy_in(encoder, w);
            call.tile_sums(encoder, w, &bound);
        }
    }
    call.finalize(encoder, &windows[0]);
    if let Some(g) = grad {
        let g_res = bind(&sg, g, words(shape.len()));
        for w in &windows {
            copy_in(encoder, w);
            call.grad(encoder, w, &bound, g_res.clone());
            if let (Some(sg), false) = (&sg, staged) {
                copy_rows(encoder, sg.slice(..), g, b * c, n, w, true);
            }
        }
        if let (Some(sg), true) = (&sg, staged) {
            encoder.copy_buffer_to_buffer(sg, 0, g.buffer(), g.offset(), words(shape.len()));
        }
    }
    Ok(call.into_encoded())
}
