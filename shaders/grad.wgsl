// grad: d(loss)/d(input), elementwise (SPEC §3). CPU twin: src/reference/grad.rs.
// Dispatch: (tiles, rows), the same tile geometry and (image, class chunk) rows as
// `tile_sums`. Per element the gradient
// w.r.t. the probability is a combination of the item's coefficients
// d loss/d(tp, fp, fn) (from `finalize`); it is then chained through the activation.
// Loops are class-outer (one row streams at a time), with per-quad state in VPT-long
// private arrays.

#import softmax_dot
#import store

@group(0) @binding(0) var<storage, read> params: Params;
@group(0) @binding(4) var<storage, read> coef: array<vec4<f32>>; // [B, C] + [1] pixel scales
// CHUNKED softmax: [B, chunks, quads] × (max, Σ exp, Σ_j h_j of the chunk), from
// `softmax_dot`.
@group(0) @binding(7) var<storage, read> pix: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let row = row_of(wid);
    if !row.valid {
        return;
    }
    let b = row.b;
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
    // Invalid data (`finalize` flags it): the gradient is written as zeros, NaN inputs
    // included.
    let invalid = coef[params.batch * C].z != 0.0;
    if ACTIVATION == 0u {
        if CHUNKED {
            // Normalisers and Σ_j h_j from `softmax_dot` (merged over the chunks).
            for (var k = 0u; k < VPT; k++) {
                let q = quad_index(load_tile, t, k);
                norms[k] = Norm(vec4<f32>(0.0), vec4<f32>(1.0));
                if q * 4u < params.pixels {
                    let s0 = pixel_slot(b, 0u, q);
                    norms[k] = Norm(pix[3u * s0], pix[3u * s0 + 1u]);
                    for (var j = 0u; j < chunks(); j++) {
                        dot[k] += pix[3u * pixel_slot(b, j, q) + 2u];
                    }
                }
            }
        } else {
            softmax_norms(b, load_tile, t, 0u, C, &norms);
        }
        if FOCAL_KIND == 2u {
            // log p = x − lse for the softmax focal term (the CE gradient needs no log).
            for (var k = 0u; k < VPT; k++) {
                lse[k] = norms[k].m + log(norms[k].s);
            }
        }
        if !CHUNKED {
            softmax_dot(b, load_tile, t, 0u, C, &quads, &norms, &lse, ps, &dot);
        }
    }
    for (var c = row.c_lo; c < row.c_hi; c++) {
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
            if invalid {
                d = zero;
            }
            store_grad(b * C + c, q, d);
        }
    }
}
