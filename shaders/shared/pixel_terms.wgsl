// The pixelwise terms of a compound loss, per quad and class, shared by `tile_sums` (values)
// and `grad` (gradients). CPU twin: src/reference/pixel.rs. Only reached when the
// COMPOUND override is set. `aux` holds per-class constants, two vec4 per class:
// [2c] (ce weight, pos_weight, α a1, α a0), [2c + 1] (focal weight, 0, 0, 0); a dropped
// background has focal weight 0.

#import common

@group(0) @binding(6) var<storage, read> aux: array<vec4<f32>>; // [C, 2]

// ln(1 + eˣ) without overflow.
fn softplus(x: vec4<f32>) -> vec4<f32> {
    return max(x, vec4<f32>(0.0)) + log(1.0 + exp(-abs(x)));
}

// b^e with 0^e = 0 (e > 0) and b^0 = 1; WGSL leaves pow(0, e) undefined.
fn powz(b: vec4<f32>, e: f32) -> vec4<f32> {
    if e == 0.0 {
        return vec4<f32>(1.0);
    }
    return select(vec4<f32>(0.0), pow(max(b, vec4<f32>(1e-30)), vec4<f32>(e)), b > vec4<f32>(0.0));
}

// One class's constants, loaded once per class outside the pixel loops (storage reads
// inside them are not hoisted: the compiler cannot rule out aliasing).
struct Cls {
    a: vec4<f32>,    // (ce weight, pos_weight, α a1, α a0)
    fw: f32,         // focal class weight (0: no focal term for this class)
    wy: f32,         // w·(1 − ε): w·y' = wy·y + w0
    w0: f32,         // w·ε/C
    y1: f32,         // 1 − ε: y' = y1·y + y0 (KL's ln y', exact 1 at y = 1, ε = 0)
    y0: f32,         // ε/C
    gamma: f32,
    alpha_mode: u32,
}

fn class_consts(c: u32) -> Cls {
    let eps = params.label_smoothing;
    let a = aux[2u * c];
    var fw = aux[2u * c + 1u].x;
    if c < params.class_start {
        fw = 0.0;
    }
    let y0 = eps / f32(params.classes);
    return Cls(a, fw, a.x * (1.0 - eps), a.x * y0, 1.0 - eps, y0, params.focal_gamma, params.alpha_mode);
}

// The focal α factor times the focal class weight.
fn focal_factor(k: Cls, y: vec4<f32>) -> vec4<f32> {
    switch k.alpha_mode {
        case 0u: { return vec4<f32>(k.fw); }
        case 1u: {
            if FOCAL_KIND == 2u {
                return vec4<f32>(k.fw * k.a.z);
            }
            return k.fw * (y * k.a.z + (1.0 - y) * k.a.w);
        }
        default: {
            if FOCAL_KIND == 2u {
                return vec4<f32>(k.fw * k.a.z);
            }
            return k.fw * select(vec4<f32>(1.0), vec4<f32>(k.a.z), y == vec4<f32>(1.0));
        }
    }
}

// The weighted smoothed target w·y', y' = (1 − ε)·y + ε/C (softmax kinds).
fn weighted_target(k: Cls, y: vec4<f32>) -> vec4<f32> {
    return k.wy * y + k.w0;
}

// One class's cross-entropy term per lane, before masking: softmax kinds
// w·y'·(lse − x) (+ w·y'·ln y' for KL), binary w·(pw·y·softplus(−x) + (1 − y)·softplus(x)).
fn ce_value(k: Cls, x: vec4<f32>, y: vec4<f32>, lse: vec4<f32>) -> vec4<f32> {
    switch CE_KIND {
        case 1u, 2u: {
            let wys = weighted_target(k, y);
            var v = wys * (lse - x);
            if CE_KIND == 2u {
                let ys = k.y1 * y + k.y0;
                v += select(vec4<f32>(0.0), wys * log(max(ys, vec4<f32>(1e-30))), ys > vec4<f32>(0.0));
            }
            return v;
        }
        case 3u: {
            return k.a.x * (k.a.y * y * softplus(-x) + (1.0 - y) * softplus(x));
        }
        default: {
            return vec4<f32>(0.0);
        }
    }
}

// One class's focal term per lane, before masking (fw = 0 for a dropped background).
// `lse` is the softmax log-normaliser (unused for sigmoid).
fn focal_value(k: Cls, x: vec4<f32>, p: vec4<f32>, y: vec4<f32>, lse: vec4<f32>) -> vec4<f32> {
    let f = focal_factor(k, y);
    if FOCAL_KIND == 2u {
        return -f * powz(1.0 - p, k.gamma) * y * (x - lse);
    }
    let u = -x * (2.0 * y - 1.0);
    return f * exp(-k.gamma * softplus(-u)) * (softplus(x) - x * y);
}

// Softmax-chained gradient part h_c = p_c·∂L/∂p_c of the pixel terms for class c, with
// the global scales s = (s_ce, s_focal) from `finalize`.
fn pixel_h(k: Cls, x: vec4<f32>, p: vec4<f32>, y: vec4<f32>, lse: vec4<f32>, s: vec2<f32>) -> vec4<f32> {
    var h = vec4<f32>(0.0);
    if CE_KIND == 1u || CE_KIND == 2u {
        h -= s.x * weighted_target(k, y);
    }
    if FOCAL_KIND == 2u {
        let q = 1.0 - p;
        let d1 = select(vec4<f32>(0.0), k.gamma * p * powz(q, k.gamma - 1.0) * (x - lse), q > vec4<f32>(0.0));
        h += s.y * focal_factor(k, y) * y * (d1 - powz(q, k.gamma));
    }
    return h;
}

// Elementwise gradient part d loss/d x of the sigmoid pixel terms for class c.
fn pixel_e(k: Cls, x: vec4<f32>, y: vec4<f32>, s: vec2<f32>) -> vec4<f32> {
    var e = vec4<f32>(0.0);
    if CE_KIND == 3u {
        e += s.x * k.a.x * ((k.a.y * y + 1.0 - y) * sigmoid(x) - k.a.y * y);
    }
    if FOCAL_KIND == 1u {
        let sg = 2.0 * y - 1.0;
        let u = -x * sg;
        let m = exp(-k.gamma * softplus(-u));
        let bce = softplus(x) - x * y;
        e += s.y * focal_factor(k, y) * m * ((sigmoid(x) - y) - bce * k.gamma * sigmoid(-u) * sg);
    }
    return e;
}
