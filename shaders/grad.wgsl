// grad: d(loss)/d(input), elementwise (SPEC §3). CPU twin: src/reference/grad.rs.
// Dispatch: (tiles, B), the same tile geometry as `stats`. Per element the gradient
// w.r.t. the probability is a combination of the item's coefficients
// d loss/d(tp, fp, fn) (from `finalize`); it is then chained through the activation.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(4) var<storage, read> coef: array<vec4<f32>>;        // [B, C]
@group(0) @binding(5) var<storage, read_write> grad: array<f32>;        // [B, C, N]

// d loss / d p for one element with coefficients g = d loss/d(tp, fp, fn).
fn prob_grad(g: vec4<f32>, p: f32, y: f32) -> f32 {
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
    let tile = wid.x + params.tile_base;
    let C = params.classes;
    let N = params.pixels;
    for (var k = 0u; k < PPT; k++) {
        let i = tile * TILE + k * WG + lid.x;
        if i >= N {
            continue;
        }
        let px = load_pixel(b, i);
        if !px.keep {
            // Ignored pixels are constant zeros after the activation: no gradient.
            for (var c = 0u; c < C; c++) {
                grad[(b * C + c) * N + i] = 0.0;
            }
            continue;
        }
        if ACTIVATION == 0u {
            // Softmax: dL/dz_k = p_k (g_k − Σ_j g_j p_j), recomputing p_k and g_k in a
            // second pass rather than holding C values per invocation.
            let norm = softmax_norm(b, i);
            var dot = 0.0;
            for (var c = params.class_start; c < C; c++) {
                let p = activate(input[(b * C + c) * N + i], norm);
                dot += prob_grad(coef[b * C + c], p, load_target(b, c, i, px)) * p;
            }
            for (var c = 0u; c < C; c++) {
                let p = activate(input[(b * C + c) * N + i], norm);
                var g = 0.0;
                if c >= params.class_start {
                    g = prob_grad(coef[b * C + c], p, load_target(b, c, i, px));
                }
                grad[(b * C + c) * N + i] = p * (g - dot);
            }
        } else {
            for (var c = 0u; c < C; c++) {
                let x = input[(b * C + c) * N + i];
                let p = activate(x, vec2<f32>(0.0, 1.0));
                var g = 0.0;
                if c >= params.class_start {
                    g = prob_grad(coef[b * C + c], p, load_target(b, c, i, px));
                }
                if ACTIVATION == 1u {
                    g *= p * (1.0 - p);
                }
                grad[(b * C + c) * N + i] = g;
            }
        }
    }
}
