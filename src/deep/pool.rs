//! Target downsampling for deep supervision: each coarse cell's window of target pixels
//! (area, as PyTorch's `adaptive_avg_pool`; nearest-exact, as `F.interpolate(mode=
//! "nearest-exact")`), the f64 host twin of `shaders/pool.wgsl`, and its GPU recording.

use super::{DeepTarget, Pooling};
use crate::context::Gpu;
use crate::error::{Error, Result};
use crate::kernels::pool::{chunk, Bindings, PoolParams, MAX_RANK, MAX_WINDOW};
use crate::kernels::{fold, DIM_MAX};
use crate::record::{range, scratch};
use crate::shape::mask_buffer_bytes;
use crate::transfer::upload;

/// Source indices `[start, start + len)` of coarse index `i` along an axis of `n` target
/// pixels and `o` head pixels.
pub(crate) fn window(pooling: Pooling, i: usize, n: usize, o: usize) -> (usize, usize) {
    match pooling {
        Pooling::Area => {
            let lo = i * n / o;
            let hi = ((i + 1) * n).div_ceil(o);
            (lo, hi - lo)
        }
        Pooling::NearestExact => {
            // PyTorch: min(floor((i + 0.5) * scale), n - 1), the scale in f32.
            let scale = n as f32 / o as f32;
            let src = ((i as f32 + 0.5) * scale).floor() as usize;
            (src.min(n - 1), 1)
        }
    }
}

/// The most target pixels one coarse cell covers along each axis.
pub(crate) fn max_window(pooling: Pooling, src: &[usize], dst: &[usize]) -> usize {
    src.iter()
        .zip(dst)
        .map(|(&n, &o)| {
            (0..o)
                .map(|i| window(pooling, i, n, o).1)
                .max()
                .unwrap_or(1)
        })
        .product()
}

/// Checks a head's spatial size against the target's (same rank, no axis larger, within
/// the kernel's limits).
pub(crate) fn check_sizes(pooling: Pooling, src: &[usize], dst: &[usize]) -> Result<()> {
    let bad = |reason: String| {
        Err(Error::InvalidShape {
            shape: dst.to_vec(),
            reason,
        })
    };
    if src.len() != dst.len() {
        return bad(format!(
            "{} spatial dimensions, the target has {}",
            dst.len(),
            src.len()
        ));
    }
    if let Some(d) = (0..src.len()).find(|&d| dst[d] > src[d]) {
        return bad(format!(
            "axis {d} is {} pixels, larger than the target's {}",
            dst[d], src[d]
        ));
    }
    if src.len() > MAX_RANK || src.iter().any(|&n| n >= 1 << 16) {
        return Err(Error::TooLarge(format!(
            "deep supervision takes at most {MAX_RANK} spatial dimensions of fewer than 65 536 pixels each"
        )));
    }
    let w = max_window(pooling, src, dst);
    if w > MAX_WINDOW {
        return Err(Error::TooLarge(format!(
            "a coarse cell covers up to {w} target pixels; at most {MAX_WINDOW} per cell"
        )));
    }
    Ok(())
}

/// The f64 host twin of `pool.wgsl`: the soft target `[B, C, M]` and keep-mask `[B, M]`
/// of a head of spatial size `dst` from the full-resolution target (`src`: its spatial
/// size; `b`, `c`: batch and classes). The caller has checked the target's values.
pub fn pool_host(
    (b, c, src): (usize, usize, &[usize]),
    target: DeepTarget<'_>,
    mask: Option<&[bool]>,
    ignore: Option<i64>,
    dst: &[usize],
    pooling: Pooling,
) -> (Vec<f32>, Vec<bool>) {
    let n: usize = src.iter().product();
    let m: usize = dst.iter().product();
    let mut stride = vec![1usize; src.len()];
    for d in (0..src.len().saturating_sub(1)).rev() {
        stride[d] = stride[d + 1] * src[d + 1];
    }
    let mut pooled = vec![0f32; b * c * m];
    let mut keep = vec![false; b * m];
    let mut sums = vec![0f64; c];
    for img in 0..b {
        for cell in 0..m {
            // The cell's window, then every pixel of it.
            let (mut rest, mut axes) = (cell, vec![(0usize, 0usize); src.len()]);
            for d in (0..src.len()).rev() {
                axes[d] = window(pooling, rest % dst[d], src[d], dst[d]);
                rest /= dst[d];
            }
            let count: usize = axes.iter().map(|a| a.1).product();
            sums.iter_mut().for_each(|s| *s = 0.0);
            let mut kept = 0usize;
            for w in 0..count {
                let (mut r, mut j) = (w, 0usize);
                for d in (0..src.len()).rev() {
                    j += (axes[d].0 + r % axes[d].1) * stride[d];
                    r /= axes[d].1;
                }
                if mask.is_some_and(|mk| !mk[img * n + j]) {
                    continue;
                }
                match target {
                    DeepTarget::Index(t) => {
                        let y = t[img * n + j];
                        if ignore == Some(i64::from(y)) || y as usize >= c {
                            continue;
                        }
                        sums[y as usize] += 1.0;
                    }
                    DeepTarget::Soft(t) => {
                        for (k, s) in sums.iter_mut().enumerate() {
                            *s += f64::from(t[(img * c + k) * n + j]);
                        }
                    }
                }
                kept += 1;
            }
            if kept > 0 {
                keep[img * m + cell] = true;
                for (k, s) in sums.iter().enumerate() {
                    pooled[(img * c + k) * m + cell] = (s / kept as f64) as f32;
                }
            }
        }
    }
    (pooled, keep)
}

/// A head's pooled target on the device: the soft target `[B, C, M]`, the keep-mask
/// bytes `[B, M]` and, after them, the status word.
pub(crate) struct Pooled {
    pub target: crate::pool::Pooled,
    pub keep: crate::pool::Pooled,
    /// Bytes of the keep-mask (the status word follows).
    pub keep_bytes: u64,
}

/// What one pooling reads: the full-resolution target on the device.
pub(crate) struct PoolInput<'a> {
    pub target: wgpu::BufferSlice<'a>,
    pub soft: bool,
    pub mask: Option<wgpu::BufferSlice<'a>>,
    /// The ignore label as it is in `target`.
    pub ignore: Option<u32>,
    pub batch: usize,
    pub classes: usize,
    pub src: &'a [usize],
}

/// Records the pooling of `input` to spatial size `dst` into `encoder`.
pub(crate) fn record(
    gpu: &Gpu,
    encoder: &mut wgpu::CommandEncoder,
    input: &PoolInput<'_>,
    dst: &[usize],
    pooling: Pooling,
) -> Result<Pooled> {
    let dev = &gpu.device;
    let (b, c) = (input.batch, input.classes);
    let n: usize = input.src.iter().product();
    let m: usize = dst.iter().product();
    let cells = b * c * m;
    if cells >= u32::MAX as usize || b * c * n >= u32::MAX as usize {
        return Err(Error::TooLarge(
            "deep supervision: more than 2^32 target elements".into(),
        ));
    }
    let keep_bytes = mask_buffer_bytes(b * m) as u64;
    // One invocation per (image, class chunk, cell).
    let per = chunk(c, max_window(pooling, input.src, dst));
    let invocations = b * c.div_ceil(per) * m;
    // Pooled device buffers, reused from call to call.
    let target = gpu.pool.take(
        "segloss.pooled",
        wgpu::BufferUsages::STORAGE,
        4 * cells as u64,
    );
    let usage =
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC;
    let keep = gpu.pool.take("segloss.pooled_keep", usage, keep_bytes + 4);
    encoder.clear_buffer(&keep, 0, None);
    let placeholder = scratch(dev, "segloss.placeholder", 16, wgpu::BufferUsages::STORAGE);
    let wg = gpu.kernels.geometry().wg as usize;
    let mut sizes = ([0u32; MAX_RANK], [0u32; MAX_RANK], [0f32; MAX_RANK]);
    for (d, (&n, &o)) in input.src.iter().zip(dst).enumerate() {
        sizes.0[d] = n as u32;
        sizes.1[d] = o as u32;
        sizes.2[d] = n as f32 / o as f32;
    }
    let per_dispatch = wg * DIM_MAX as usize * DIM_MAX as usize;
    for base in (0..invocations).step_by(per_dispatch) {
        let len = per_dispatch.min(invocations - base);
        let params = PoolParams {
            batch: b as u32,
            classes: c as u32,
            rank: dst.len() as u32,
            nearest: u32::from(pooling == Pooling::NearestExact),
            soft: u32::from(input.soft),
            has_ignore: u32::from(input.ignore.is_some()),
            ignore: input.ignore.unwrap_or(0),
            has_mask: u32::from(input.mask.is_some()),
            src_pixels: n as u32,
            dst_pixels: m as u32,
            cell_base: base as u32,
            cells: invocations as u32,
            chunk: per as u32,
            src: sizes.0,
            dst: sizes.1,
            scale: sizes.2,
        };
        let params = upload(
            dev,
            "segloss.pool_params",
            bytemuck::bytes_of(&params),
            wgpu::BufferUsages::STORAGE,
        )?;
        let (x, y) = fold(len.div_ceil(wg));
        Bindings {
            params: params.as_entire_binding(),
            target: range(
                input.target,
                4 * (if input.soft { b * c * n } else { b * n }) as u64,
            ),
            mask: match input.mask {
                Some(mk) => range(mk, mask_buffer_bytes(b * n) as u64),
                None => placeholder.as_entire_binding(),
            },
            pooled: range(target.slice(..), 4 * cells as u64),
            keep: range(keep.slice(..), keep_bytes + 4),
        }
        .record(&gpu.kernels, encoder, Default::default(), (x, y, 1));
    }
    Ok(Pooled {
        target,
        keep,
        keep_bytes,
    })
}
