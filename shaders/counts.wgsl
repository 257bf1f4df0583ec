// counts: per-(image, class) counts of a hard prediction against its targets, for the
// metrics: (tp, predicted, labelled) pixels, u32, exact. The prediction is a label map
// [B, N], scores [B, C, N] (argmax over the classes, the first maximum, as PyTorch) or
// multi-label scores [B, C, N] cut per class (score ≥ cut); the targets a label map
// [B, N] or one-hot / multi-hot f32 [B, C, N] (each value 0 or 1).
// Dispatch: per window of pixels, (groups, rows) with rows = B · class chunks folded into
// two dimensions; each invocation takes params.px pixels. A workgroup counts into a histogram
// of its chunk's classes in workgroup memory (integer atomics: exact and deterministic),
// then adds it to the global counts. CPU twin: `metrics::count` in src/metrics/count.rs.

// One window's parameters.
struct CountParams {
    batch: u32,
    classes: u32,
    pixels: u32,      // N of each image
    scores: u32,      // 0 labels [B, N]; 1 f32 scores [B, C, N], argmax; 2 the same, cut
    ignore: u32,      // the ignore label (with has_ignore)
    has_ignore: u32,
    has_mask: u32,
    pixel_base: u32,  // this window's first pixel
    multi_hot: u32,   // 1: `label_map` holds f32 one-hot / multi-hot [B, C, N]
    cut: f32,         // scores = 2: class c predicted where its score ≥ cut
    px: u32,          // pixels per invocation (px × the classes a pixel loops over
                      // stays within llvmpipe's loop budget)
}

@group(0) @binding(0) var<storage, read> params: CountParams;
@group(0) @binding(1) var<storage, read> pred: array<u32>;
@group(0) @binding(2) var<storage, read> label_map: array<u32>;
@group(0) @binding(3) var<storage, read> mask: array<u32>;
// [B, C] × (tp, predicted, labelled), then one status word (1 label out of range,
// 2 prediction out of range, 4 non-finite score, 8 a multi-hot value not 0 or 1), then
// [B] kept pixels (multi-hot targets, counted by each image's first class chunk).
@group(0) @binding(4) var<storage, read_write> counts: array<atomic<u32>>;

const CHUNK: u32 = 1024u;    // classes per workgroup row
const DIM_MAX: u32 = 65535u;
var<workgroup> hist: array<atomic<u32>, 3072>;
var<workgroup> kept: atomic<u32>; // multi-hot targets: the row's kept pixels

fn keep(b: u32, i: u32) -> bool {
    if params.has_mask == 0u {
        return true;
    }
    let j = b * params.pixels + i;
    return ((mask[j >> 2u] >> ((j & 3u) * 8u)) & 0xffu) != 0u;
}

// The predicted class of pixel i of image b, or C when it is invalid (status set).
fn predicted(b: u32, i: u32) -> u32 {
    let C = params.classes;
    let N = params.pixels;
    if params.scores == 0u {
        let p = pred[b * N + i];
        if p >= C {
            atomicOr(&counts[3u * params.batch * C], 2u);
            return C;
        }
        return p;
    }
    var best = 0u;
    var m = bitcast<f32>(pred[b * C * N + i]);
    var bad = false;
    for (var c = 0u; c < C; c++) {
        let bits = pred[(b * C + c) * N + i];
        bad = bad || (bits & 0x7f800000u) == 0x7f800000u;
        let x = bitcast<f32>(bits);
        if x > m {
            m = x;
            best = c;
        }
    }
    if bad {
        atomicOr(&counts[3u * params.batch * C], 4u);
        return C;
    }
    return best;
}

// Counts pixel i of image b, class by class over the row's chunk [c_lo, c_hi): a
// threshold prediction or multi-hot targets (a pixel may predict or hold any number of
// classes). At most CHUNK iterations per pixel (llvmpipe's loop budget, see
// `CLASS_CHUNK`).
fn count_per_class(b: u32, i: u32, c_lo: u32, c_hi: u32) {
    let C = params.classes;
    let N = params.pixels;
    let status = 3u * params.batch * C;
    var y = C;
    if params.multi_hot == 0u {
        y = label_map[b * N + i];
        if params.has_ignore != 0u && y == params.ignore {
            return;
        }
        if y >= C {
            atomicOr(&counts[status], 1u);
            return;
        }
    }
    var p = C;
    if params.scores != 2u {
        p = predicted(b, i);
        if p >= C {
            return;
        }
    }
    for (var c = c_lo; c < c_hi; c++) {
        let at = (b * C + c) * N + i;
        var pc = p == c;
        if params.scores == 2u {
            let bits = pred[at];
            if (bits & 0x7f800000u) == 0x7f800000u {
                atomicOr(&counts[status], 4u);
                pc = false;
            } else {
                pc = bitcast<f32>(bits) >= params.cut;
            }
        }
        var yc = y == c;
        if params.multi_hot != 0u {
            let v = label_map[at];
            yc = v == 0x3f800000u;
            if !yc && (v & 0x7fffffffu) != 0u {
                atomicOr(&counts[status], 8u);
            }
        }
        let h = 3u * (c - c_lo);
        if pc {
            atomicAdd(&hist[h + 1u], 1u);
            if yc {
                atomicAdd(&hist[h], 1u);
            }
        }
        if yc {
            atomicAdd(&hist[h + 2u], 1u);
        }
    }
}

// Each of this invocation's pixels into the row's histogram.
fn count_each(b: u32, gx: u32, t: u32, c_lo: u32, c_hi: u32) {
    let C = params.classes;
    var run_p = 0u;
    var run_y = 0u;
    var run = 0u;
    for (var k = 0u; k < params.px; k++) {
        let i = params.pixel_base + (gx * params.px + k) * WG + t;
        if i >= params.pixels || !keep(b, i) {
            continue;
        }
        if params.scores == 2u || params.multi_hot != 0u {
            if params.multi_hot != 0u && c_lo == 0u {
                atomicAdd(&kept, 1u);
            }
            count_per_class(b, i, c_lo, c_hi);
            continue;
        }
        let y = label_map[b * params.pixels + i];
        if params.has_ignore != 0u && y == params.ignore {
            continue;
        }
        if y >= C {
            atomicOr(&counts[3u * params.batch * C], 1u);
            continue;
        }
        let p = predicted(b, i);
        if p >= C {
            continue;
        }
        // Label maps come in regions: a run of equal (prediction, label) pairs is
        // counted in a register and added once (fewer atomics, less contention).
        if p == run_p && y == run_y {
            run += 1u;
            continue;
        }
        add_run(run_p, run_y, run, c_lo, c_hi);
        run_p = p;
        run_y = y;
        run = 1u;
    }
    add_run(run_p, run_y, run, c_lo, c_hi);
}

// Adds `n` pixels predicted p and labelled y to the row's histogram.
fn add_run(p: u32, y: u32, n: u32, c_lo: u32, c_hi: u32) {
    if n == 0u {
        return;
    }
    if p >= c_lo && p < c_hi {
        atomicAdd(&hist[3u * (p - c_lo) + 1u], n);
        if p == y {
            atomicAdd(&hist[3u * (p - c_lo)], n);
        }
    }
    if y >= c_lo && y < c_hi {
        atomicAdd(&hist[3u * (y - c_lo) + 2u], n);
    }
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let C = params.classes;
    let chunks = (C + CHUNK - 1u) / CHUNK;
    let row = wid.y + wid.z * DIM_MAX;
    if row >= params.batch * chunks {
        return;
    }
    let b = row / chunks;
    let c_lo = (row % chunks) * CHUNK;
    let c_hi = min(c_lo + CHUNK, C);
    let t = lid.x;
    // Only the row's classes: clearing all 3 · CHUNK words would cost more than the
    // counting itself for a few classes.
    for (var j = t; j < 3u * (c_hi - c_lo); j += WG) {
        atomicStore(&hist[j], 0u);
    }
    if t == 0u {
        atomicStore(&kept, 0u);
    }
    workgroupBarrier();
    count_each(b, wid.x, t, c_lo, c_hi);
    workgroupBarrier();
    if t == 0u && params.multi_hot != 0u && c_lo == 0u {
        let k = atomicLoad(&kept);
        if k != 0u {
            atomicAdd(&counts[3u * params.batch * C + 1u + b], k);
        }
    }
    for (var j = t; j < 3u * (c_hi - c_lo); j += WG) {
        let v = atomicLoad(&hist[j]);
        if v != 0u {
            atomicAdd(&counts[3u * (b * C + c_lo) + j], v);
        }
    }
}
