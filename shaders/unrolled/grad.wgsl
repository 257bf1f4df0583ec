// grad, unrolled over the classes: the twin of ../grad.wgsl for CPU adapters, a softmax
// over CLASSES ≤ 24 classes without a focal term (`Variant::unrolled_classes`). Same
// bindings, tile geometry and output; `src/kernels/wgsl.rs` repeats each `#for c` block
// for c = 0 … CLASSES − 1. Per quad of pixels the logits and targets are loaded once
// into registers, the softmax is computed once, Σ_j h_j (h_j = p_j · dL/dp_j plus the
// cross-entropy term) accumulates in class order, and every class's gradient is stored.
// The class-loop kernel loads each logit four times and recomputes each exponential
// three times (docs/performance.md).

#import softmax_dot
#import store
#import touch

@group(0) @binding(0) var<storage, read> params: Params;
@group(0) @binding(4) var<storage, read> coef: array<vec4<f32>>; // [B, C] + [1] pixel scales

// d loss / d p of the soft form, `prob_grad`'s case 0 for p ≥ 0 (a softmax) with
// a = g.x − g.y − g.z per class: g.x·dtp + g.y·(sgn p − dtp) − g.z·dtp.
fn soft_grad(g: vec4<f32>, a: f32, p: vec4<f32>, y: vec4<f32>) -> vec4<f32> {
    let sp = select(vec4<f32>(0.0), vec4<f32>(1.0), p > vec4<f32>(0.0));
    return a * (0.5 * (sp - sign(p - y))) + g.y * sp;
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let row = row_of(wid);
    if !row.valid {
        return;
    }
    let b = row.b;
    let t = lid.x;
    let load_tile = wid.x + params.load_tile_base;
    let zero = vec4<f32>(0.0);
    // Compound: the pixel terms' scales (s_ce, s_focal) from `finalize`.
    let ps = coef[params.batch * CLASSES].xy;
    // Invalid data (`finalize` flags it): the gradient is written as zeros.
    let invalid = vec4<bool>(coef[params.batch * CLASSES].z != 0.0);
#for c
    let g{c} = coef[b * CLASSES + {c}u];
    let a{c} = g{c}.x - g{c}.y - g{c}.z;
    // A dropped background has no overlap gradient (its CE gradient stays).
    let kept{c} = vec4<bool>({c}u >= params.class_start);
    var cls{c}: Cls;
    if COMPOUND {
        cls{c} = class_consts({c}u);
    }
#end
    // Soft targets: each output quad is read before it is computed (`touch_grad`); the
    // sum is stored under a condition no call meets (a row of 2^32 − 1 pixels does not
    // fit a binding), which keeps the loads from being optimised away.
    var touch = 0.0;
    for (var k = 0u; k < VPT; k++) {
        let q = quad_index(load_tile, t, k);
        if q * 4u >= params.pixels {
            continue;
        }
        let quad = load_quad(b, q);
        let keep = quad.keep;
        if !INDEX_TARGET {
#for c
            touch += touch_grad(b * CLASSES + {c}u, q);
#end
        }
        var m = vec4<f32>(-3.4028234663852886e38);
#for c
        let x{c} = load_x(b * CLASSES + {c}u, q);
        m = max(m, x{c});
#end
        var s = zero;
#for c
        let e{c} = exp(x{c} - m);
        s += e{c};
#end
        // Σ_j h_j in class order, as `softmax_dot` sums it.
        var dot = zero;
#for c
        let p{c} = e{c} / s;
        let y{c} = load_target(b, {c}u, q, quad);
        var gp{c} = zero;
        if FORMULATION == 0u {
            gp{c} = soft_grad(g{c}, a{c}, p{c}, y{c});
        } else {
            gp{c} = prob_grad(g{c}, p{c}, y{c});
        }
        gp{c} = select(zero, gp{c}, kept{c});
        dot += gp{c} * p{c};
        var h{c} = zero;
        if COMPOUND {
            h{c} = pixel_h(cls{c}, x{c}, p{c}, y{c}, zero, ps);
            dot += h{c};
        }
#end
#for c
        var d{c} = p{c} * (gp{c} - dot);
        if COMPOUND {
            d{c} = p{c} * gp{c} + h{c} - p{c} * dot;
        }
        store_grad(b * CLASSES + {c}u, q, select(select(zero, d{c}, keep), zero, invalid));
#end
    }
    if params.pixels == 0xffffffffu {
        store_grad(0u, 0u, vec4<f32>(touch));
    }
}
