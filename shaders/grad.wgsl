// grad: d(loss)/d(input), elementwise (SPEC §3). CPU twin: src/reference/grad.rs.
// Dispatch: (tiles, B), the same tile geometry as `stats`. Per element the gradient
// w.r.t. the probability is a combination of the item's coefficients
// d loss/d(tp, fp, fn) (from `finalize`); it is then chained through the activation.
// Loops are class-outer (one row streams at a time), with per-quad state in VPT-long
// private arrays.

@group(0) @binding(0) var<storage, read> params: Params;
@group(0) @binding(4) var<storage, read> coef: array<vec4<f32>>; // [B, C] + [1] pixel scales

// d loss / d p for one quad with coefficients g = d loss/d(tp, fp, fn).
fn prob_grad(g: vec4<f32>, p: vec4<f32>, y: vec4<f32>) -> vec4<f32> {
    switch FORMULATION {
        case 0u: {
            // dtp/dp = (sgn p − sgn(p − y))/2, dfp/dp = sgn p − dtp/dp, dfn/dp = −dtp/dp,
            // with sgn(0) = 0 (PyTorch's convention).
            let dtp = 0.5 * (sign(p) - sign(p - y));
            return g.x * dtp + g.y * (sign(p) - dtp) - g.z * dtp;
        }
        case 1u: {
            return g.x * y + g.y * (2.0 * p - y) - g.z * y;
        }
        default: {
            return g.x * y + g.y * (1.0 - y) - g.z * y;
        }
    }
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let b = wid.y;
    let t = lid.x;
    let load_tile = wid.x + params.load_tile_base;
    let C = params.classes;
    let zero = vec4<f32>(0.0);

    var quads: array<Quad, VPT>;
    var norms: array<Norm, VPT>;
    var dot: array<vec4<f32>, VPT>; // Σ_j g_j p_j per pixel (softmax)
    var lse: array<vec4<f32>, VPT>;
    for (var k = 0u; k < VPT; k++) {
        quads[k] = load_quad(b, quad_index(load_tile, t, k));
        dot[k] = zero;
    }
    // Compound: the pixel terms' scales (s_ce, s_focal) from `finalize`.
    let ps = coef[params.batch * C].xy;
    if ACTIVATION == 0u {
        softmax_norms(b, load_tile, t, &norms);
        // Softmax: dL/dz_k = p_k (g_k − Σ_j g_j p_j) = h_k − p_k Σ_j h_j, h_j = p_j g_j.
        var c_first = params.class_start;
        if COMPOUND {
            c_first = 0u; // cross-entropy covers every class
        }
        if FOCAL_KIND == 2u {
            // log p = x − lse for the softmax focal term (the CE gradient needs no log).
            for (var k = 0u; k < VPT; k++) {
                lse[k] = norms[k].m + log(norms[k].s);
            }
        }
        for (var c = c_first; c < C; c++) {
            let g = coef[b * C + c];
            var cls: Cls;
            if COMPOUND {
                cls = class_consts(c);
            }
            for (var k = 0u; k < VPT; k++) {
                let q = quad_index(load_tile, t, k);
                if any(quads[k].keep) {
                    let x = load_x(b * C + c, q);
                    let p = activate(x, norms[k]);
                    let y = load_target(b, c, q, quads[k]);
                    if c >= params.class_start {
                        dot[k] += prob_grad(g, p, y) * p;
                    }
                    if COMPOUND {
                        dot[k] += pixel_h(cls, x, p, y, lse[k], ps);
                    }
                }
            }
        }
    }
    for (var c = 0u; c < C; c++) {
        let g = coef[b * C + c];
        let kept_class = c >= params.class_start;
        var cls: Cls;
        if COMPOUND {
            cls = class_consts(c);
        }
        for (var k = 0u; k < VPT; k++) {
            let q = quad_index(load_tile, t, k);
            if q * 4u >= params.pixels {
                continue;
            }
            var d = zero;
            // Ignored pixels are constant zeros after the activation: no gradient.
            if any(quads[k].keep) {
                let x = load_x(b * C + c, q);
                let p = activate(x, norms[k]);
                let y = load_target(b, c, q, quads[k]);
                var gp = zero;
                if kept_class {
                    gp = prob_grad(g, p, y);
                }
                switch ACTIVATION {
                    case 0u: {
                        if COMPOUND {
                            d = p * gp + pixel_h(cls, x, p, y, lse[k], ps) - p * dot[k];
                        } else {
                            d = p * (gp - dot[k]);
                        }
                        // A one-class softmax is the constant 1: its gradient is exactly
                        // 0, not the ulp that h − p·Σh cancels to.
                        if C == 1u {
                            d = zero;
                        }
                    }
                    case 1u: { d = gp * p * (1.0 - p); }
                    default: { d = gp; }
                }
                if COMPOUND {
                    d += pixel_e(cls, x, y, ps);
                }
                d = select(zero, d, quads[k].keep);
            }
            store_grad(b * C + c, q, d);
        }
    }
}
