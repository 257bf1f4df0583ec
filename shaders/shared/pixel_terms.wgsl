// The pixelwise terms of a compound loss, per quad and class, shared by `stats` (values)
// and `grad` (gradients). CPU twin: src/reference/pixel.rs. Only reached when the
// COMPOUND override is set. `aux` holds per-class constants, two vec4 per class:
// [2c] (ce weight, pos_weight, α a1, α a0), [2c + 1] (focal weight, 0, 0, 0); a dropped
// background has focal weight 0.

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

// The focal α factor times the focal class weight.
fn focal_factor(c: u32, y: vec4<f32>) -> vec4<f32> {
    let a = aux[2u * c];
    let w = aux[2u * c + 1u].x;
    switch params.alpha_mode {
        case 0u: { return vec4<f32>(w); }
        case 1u: {
            if params.focal_kind == 2u {
                return vec4<f32>(w * a.z);
            }
            return w * (y * a.z + (1.0 - y) * a.w);
        }
        default: {
            if params.focal_kind == 2u {
                return vec4<f32>(w * a.z);
            }
            return w * select(vec4<f32>(1.0), vec4<f32>(a.z), y == vec4<f32>(1.0));
        }
    }
}

// Smoothed target y' = (1 − ε)·y + ε/C (softmax kinds).
fn smoothed(y: vec4<f32>) -> vec4<f32> {
    return (1.0 - params.label_smoothing) * y + params.label_smoothing / f32(params.classes);
}

// Per-class statistics of one quad: (ce, focal, kept, ce normaliser), per lane, before
// masking. `lse` is the softmax log-normaliser (unused for sigmoid).
struct PixelStats {
    ce: vec4<f32>,
    focal: vec4<f32>,
    norm: vec4<f32>,
}

fn pixel_stats(c: u32, x: vec4<f32>, p: vec4<f32>, y: vec4<f32>, lse: vec4<f32>) -> PixelStats {
    var r = PixelStats(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    let a = aux[2u * c];
    let logp = x - lse;
    switch params.ce_kind {
        case 1u, 2u: {
            let ys = smoothed(y);
            r.ce = -a.x * ys * logp;
            if params.ce_kind == 2u {
                r.ce += a.x * select(vec4<f32>(0.0), ys * log(max(ys, vec4<f32>(1e-30))), ys > vec4<f32>(0.0));
            }
            if INDEX_TARGET {
                r.norm = a.x * y;
            } else {
                r.norm = vec4<f32>(select(0.0, 1.0, c == 0u));
            }
        }
        case 3u: {
            r.ce = a.x * (a.y * y * softplus(-x) + (1.0 - y) * softplus(x));
            r.norm = vec4<f32>(1.0);
        }
        default: {}
    }
    if params.focal_kind != 0u && c >= params.class_start {
        let f = focal_factor(c, y);
        if params.focal_kind == 2u {
            r.focal = -f * powz(1.0 - p, params.focal_gamma) * y * logp;
        } else {
            let u = -x * (2.0 * y - 1.0);
            r.focal = f * exp(-params.focal_gamma * softplus(-u)) * (softplus(x) - x * y);
        }
    }
    return r;
}

// Softmax-chained gradient part h_c = p_c·∂L/∂p_c of the pixel terms for class c, with
// the global scales s = (s_ce, s_focal) from `finalize`.
fn pixel_h(c: u32, x: vec4<f32>, p: vec4<f32>, y: vec4<f32>, lse: vec4<f32>, s: vec2<f32>) -> vec4<f32> {
    var h = vec4<f32>(0.0);
    if params.ce_kind == 1u || params.ce_kind == 2u {
        h -= s.x * aux[2u * c].x * smoothed(y);
    }
    if params.focal_kind == 2u && c >= params.class_start {
        let q = 1.0 - p;
        let d1 = select(vec4<f32>(0.0), params.focal_gamma * p * powz(q, params.focal_gamma - 1.0) * (x - lse), q > vec4<f32>(0.0));
        h += s.y * focal_factor(c, y) * y * (d1 - powz(q, params.focal_gamma));
    }
    return h;
}

// Elementwise gradient part d loss/d x of the sigmoid pixel terms for class c.
fn pixel_e(c: u32, x: vec4<f32>, y: vec4<f32>, s: vec2<f32>) -> vec4<f32> {
    var e = vec4<f32>(0.0);
    if params.ce_kind == 3u {
        let a = aux[2u * c];
        e += s.x * a.x * ((a.y * y + 1.0 - y) * sigmoid(x) - a.y * y);
    }
    if params.focal_kind == 1u && c >= params.class_start {
        let sg = 2.0 * y - 1.0;
        let u = -x * sg;
        let m = exp(-params.focal_gamma * softplus(-u));
        let bce = softplus(x) - x * y;
        e += s.y * focal_factor(c, y) * m * ((sigmoid(x) - y) - bce * params.focal_gamma * sigmoid(-u) * sg);
    }
    return e;
}
