// Per-quad pixel facts shared by the elementwise kernels, on top of a load_*.wgsl file.

#import common
#import load

// Which pixels of quad q of image b are kept, and their class index (index targets).
struct Quad {
    keep: vec4<bool>,
    class_index: vec4<u32>,
    bad_index: bool,
}

fn load_quad(b: u32, q: u32) -> Quad {
    let i = vec4<u32>(q * 4u) + vec4<u32>(0u, 1u, 2u, 3u);
    var quad = Quad(i < vec4<u32>(params.pixels), vec4<u32>(0u), false);
    if HAS_MASK {
        quad.keep = quad.keep & load_mask(b, q);
    }
    if INDEX_TARGET {
        let v = load_labels(b, q);
        let ignored = vec4<bool>(params.has_ignore != 0u) & (v == vec4<u32>(params.ignore_index));
        // Out of range and not ignored: flagged (SPEC §1), and the pixel is skipped.
        let bad = !ignored & (v >= vec4<u32>(params.classes));
        quad.bad_index = any(bad & quad.keep);
        quad.keep = quad.keep & !ignored & !bad;
        quad.class_index = v;
    }
    return quad;
}

// Softmax normaliser of a quad: (max, Σ exp(x − max)) over the class axis, per lane.
struct Norm {
    m: vec4<f32>,
    s: vec4<f32>,
}

// Quad k of this invocation within a tile: quads are strided by WG (coalesced).
fn quad_index(load_tile: u32, t: u32, k: u32) -> u32 {
    return load_tile * QUADS + k * WG + t;
}

// The softmax normalisers of an invocation's VPT quads over classes c_lo..c_hi (all of
// them, or one chunk's). Loops run class-outer, so each pass streams one row at a time
// (row-hopping per pixel defeats CPU prefetchers).
fn softmax_norms(
    b: u32,
    load_tile: u32,
    t: u32,
    c_lo: u32,
    c_hi: u32,
    norms: ptr<function, array<Norm, VPT>>,
) {
    let C = params.classes;
    for (var k = 0u; k < VPT; k++) {
        (*norms)[k] = Norm(vec4<f32>(-3.4028234663852886e38), vec4<f32>(0.0));
    }
    for (var c = c_lo; c < c_hi; c++) {
        for (var k = 0u; k < VPT; k++) {
            let q = quad_index(load_tile, t, k);
            if q * 4u < params.pixels {
                (*norms)[k].m = max((*norms)[k].m, load_x(b * C + c, q));
            }
        }
    }
    for (var c = c_lo; c < c_hi; c++) {
        for (var k = 0u; k < VPT; k++) {
            let q = quad_index(load_tile, t, k);
            if q * 4u < params.pixels {
                (*norms)[k].s += exp(load_x(b * C + c, q) - (*norms)[k].m);
            }
        }
    }
}

// Probabilities p of one quad (SPEC §2.1).
fn activate(x: vec4<f32>, norm: Norm) -> vec4<f32> {
    switch ACTIVATION {
        case 0u: { return exp(x - norm.m) / norm.s; }
        case 1u: { return sigmoid(x); }
        default: { return x; }
    }
}

// Targets y of class c for a quad.
fn load_target(b: u32, c: u32, q: u32, quad: Quad) -> vec4<f32> {
    if INDEX_TARGET {
        return select(vec4<f32>(0.0), vec4<f32>(1.0), quad.class_index == vec4<u32>(c));
    }
    return bitcast<vec4<f32>>(load_labels(b * params.classes + c, q));
}

// Two partial normalisers of disjoint class sets merged (log-sum-exp), per lane.
fn merge_norm(a: Norm, m: vec4<f32>, s: vec4<f32>) -> Norm {
    let mm = max(a.m, m);
    return Norm(mm, a.s * exp(a.m - mm) + s * exp(m - mm));
}

// Index of pixel-quad q of image b, chunk j in a [B, chunks, N] per-pixel array (in
// quads: N is the bound window's pixel count, rounded up to whole quads).
fn pixel_slot(b: u32, j: u32, q: u32) -> u32 {
    return (b * chunks() + j) * ((params.pixels + 3u) / 4u) + q;
}
