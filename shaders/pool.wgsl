// pool: a full-resolution target downsampled to one head's spatial size, for deep
// supervision. One invocation per coarse (image, class chunk, cell): over the target pixels the
// cell covers (`Area`: PyTorch's adaptive_avg_pool cell [⌊i·I/O⌋, ⌈(i+1)·I/O⌉) per axis;
// `NearestExact`: the one pixel min(⌊(i + ½)·I/O⌋, I − 1), the scale in f32 as PyTorch),
// the mean of the class's one-hot (index targets) or soft value over the kept pixels
// (not the ignore label, not masked out). A cell with no kept pixel is 0 and masked out.
// Writes the soft target [B, C, M] and the keep-mask bytes [B, M] (cleared before; set by
// the class-0 invocations with atomicOr). CPU twin: `deep::pool_host` in src/deep/pool.rs.

struct PoolParams {
    batch: u32,
    classes: u32,
    rank: u32,        // spatial dimensions (≤ 6)
    nearest: u32,     // 1: NearestExact, 0: Area
    soft: u32,        // 1: target holds f32 [B, C, N]; 0: labels [B, N]
    has_ignore: u32,
    ignore: u32,
    has_mask: u32,
    src_pixels: u32,  // N
    dst_pixels: u32,  // M
    cell_base: u32,   // this dispatch's first (image, class, cell)
    cells: u32,       // B · chunks · M invocations
    chunk: u32,       // classes per invocation
    src: array<u32, 6>,
    dst: array<u32, 6>,
    scale: array<f32, 6>, // I / O in f32 (NearestExact)
}

@group(0) @binding(0) var<storage, read> params: PoolParams;
@group(0) @binding(1) var<storage, read> full: array<u32>;
@group(0) @binding(2) var<storage, read> mask: array<u32>;
@group(0) @binding(3) var<storage, read_write> pooled: array<f32>;
// [B, M] keep bytes in words, then one status word (1 a label ≥ C, not ignored; 2 a soft
// value non-finite or outside [0, 1]).
@group(0) @binding(4) var<storage, read_write> keep: array<atomic<u32>>;

const DIM_MAX: u32 = 65535u;

fn kept_pixel(b: u32, j: u32) -> bool {
    if params.has_mask == 0u {
        return true;
    }
    let k = b * params.src_pixels + j;
    return ((mask[k >> 2u] >> ((k & 3u) * 8u)) & 0xffu) != 0u;
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    // One invocation per (image, class chunk, cell): the window is found once, then
    // walked once per class of the chunk (an odometer over the axes, no division).
    let id = params.cell_base + (wid.x + wid.y * DIM_MAX) * WG + lid.x;
    if id >= params.cells {
        return;
    }
    let C = params.classes;
    let M = params.dst_pixels;
    let N = params.src_pixels;
    let R = params.rank;
    let chunks = (C + params.chunk - 1u) / params.chunk;
    let m = id % M;
    let bk = id / M;
    let b = bk / chunks;
    let c_lo = (bk % chunks) * params.chunk;
    let c_hi = min(c_lo + params.chunk, C);
    let status = (params.batch * M + 3u) / 4u;
    // The cell's window per axis (first source index, length) and the source strides.
    var start: array<u32, 6>;
    var len: array<u32, 6>;
    var stride: array<u32, 6>;
    var rest = m;
    var s = 1u;
    var window = 1u;
    var first = 0u;
    for (var k = 0u; k < R; k++) {
        let d = R - 1u - k;
        let o = params.dst[d];
        let n = params.src[d];
        let i = rest % o;
        rest = rest / o;
        stride[d] = s;
        if params.nearest != 0u {
            start[d] = min(u32(floor((f32(i) + 0.5) * params.scale[d])), n - 1u);
            len[d] = 1u;
        } else {
            let lo = (i * n) / o;
            start[d] = lo;
            len[d] = ((i + 1u) * n + o - 1u) / o - lo;
        }
        first += start[d] * s;
        s = s * n;
        window = window * len[d];
    }
    var kept = 0u;
    for (var c = c_lo; c < c_hi; c++) {
        var sum = 0.0;
        var off: array<u32, 6>;
        var j = first;
        for (var w = 0u; w < window; w++) {
            var keep_it = kept_pixel(b, j);
            var v = 0.0;
            if keep_it {
                if params.soft != 0u {
                    let bits = full[(b * C + c) * N + j];
                    v = bitcast<f32>(bits);
                    if (bits & 0x7f800000u) == 0x7f800000u || !(v >= 0.0 && v <= 1.0) {
                        atomicOr(&keep[status], 2u);
                        keep_it = false;
                        v = 0.0;
                    }
                } else {
                    let y = full[b * N + j];
                    if params.has_ignore != 0u && y == params.ignore {
                        keep_it = false;
                    } else if y >= C {
                        atomicOr(&keep[status], 1u);
                        keep_it = false;
                    } else {
                        v = select(0.0, 1.0, y == c);
                    }
                }
            }
            sum += v;
            if c == c_lo && keep_it {
                kept += 1u;
            }
            // The next pixel of the window: the last axis fastest, carrying leftwards.
            var d = R - 1u;
            loop {
                off[d] += 1u;
                j += stride[d];
                if off[d] < len[d] || d == 0u {
                    break;
                }
                j -= stride[d] * len[d];
                off[d] = 0u;
                d -= 1u;
            }
        }
        var value = 0.0;
        if kept > 0u {
            value = sum / f32(kept);
        }
        pooled[(b * C + c) * M + m] = value;
    }
    if c_lo == 0u && kept > 0u {
        let k = b * M + m;
        atomicOr(&keep[k >> 2u], 1u << ((k & 3u) * 8u));
    }
}
