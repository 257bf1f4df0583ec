// Shared by `grad` and `softmax_dot`: the gradient w.r.t. the probabilities, and a
// softmax's Σ_j h_j over a range of classes (h_j = p_j · dL/dp_j, plus the pixel terms).

#import pixels
#import pixel_terms

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

// Adds Σ_{c in c_lo..c_hi} h_c to dot[k] for the invocation's VPT quads (softmax):
// dL/dz_k = h_k − p_k Σ_j h_j. Cross-entropy covers every class, the overlap only the
// kept ones (c ≥ class_start).
fn softmax_dot(
    b: u32,
    load_tile: u32,
    t: u32,
    c_lo: u32,
    c_hi: u32,
    quads: ptr<function, array<Quad, VPT>>,
    norms: ptr<function, array<Norm, VPT>>,
    lse: ptr<function, array<vec4<f32>, VPT>>,
    ps: vec2<f32>,
    dot: ptr<function, array<vec4<f32>, VPT>>,
) {
    let C = params.classes;
    var first = c_lo;
    if !COMPOUND {
        first = max(c_lo, params.class_start);
    }
    for (var c = first; c < c_hi; c++) {
        let g = coef[b * C + c];
        var cls: Cls;
        if COMPOUND {
            cls = class_consts(c);
        }
        for (var k = 0u; k < VPT; k++) {
            let q = quad_index(load_tile, t, k);
            if any((*quads)[k].keep) {
                let x = load_x(b * C + c, q);
                let p = activate(x, (*norms)[k]);
                let y = load_target(b, c, q, (*quads)[k]);
                if c >= params.class_start {
                    (*dot)[k] += prob_grad(g, p, y) * p;
                }
                if COMPOUND {
                    (*dot)[k] += pixel_h(cls, x, p, y, (*lse)[k], ps);
                }
            }
        }
    }
}
