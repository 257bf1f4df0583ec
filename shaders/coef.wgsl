// coef: each item's gradient coefficients d(loss)/d(tp, fp, fn) (SPEC §3), one
// invocation per (b, c) item, from its statistics, the shared block and the global
// counts of `finalize`; and, for `reduction = none` at image level, its value. Dispatch:
// ceil(B·C / 64) workgroups folded into two dimensions. CPU twin: `finish` in
// src/reference/finalize.rs.

#import items

@group(0) @binding(0) var<storage, read> params: Params;
@group(0) @binding(1) var<storage, read> stats: array<vec4<f32>>;      // [B, C]
@group(0) @binding(2) var<storage, read> weights: array<f32>;          // [C'] or dummy
@group(0) @binding(3) var<storage, read_write> status: array<atomic<u32>>; // [1]
@group(0) @binding(4) var<storage, read_write> out: array<f32>;        // [loss, status, values…]
@group(0) @binding(5) var<storage, read_write> coef: array<vec4<f32>>; // [B, C] + [1]
@group(0) @binding(6) var<storage, read> sh: array<vec4<f32>>;         // [2 + 2C]
@group(0) @binding(7) var<storage, read> work: array<vec4<f32>>;       // see items.wgsl

const COEF_WG: u32 = 64u;

// A Generalized Dice's coefficients for item (b, c), scaled by the aggregation; at image
// level with `reduction = none` the first kept class also writes the image's value.
fn gdl_coef(j: u32, b: u32, c: u32) -> vec3<f32> {
    if params.w_dataset > 0.0 {
        let gl = work[gdl_globals_slot()];
        let s = sh[HEADER + 2u * c];
        let grad = gdl_grad(gl.xy, gdl_weight(s.x + s.z, gl.z));
        return select(params.w_dataset, 1.0, params.reduction == 2u) * grad;
    }
    let gi = work[gdl_image_slot(b)];
    let s = stats[j];
    let grad = gdl_grad(gi.xy, gdl_weight(s.x + s.z, gi.z));
    if params.reduction == 2u {
        if c == params.class_start {
            let v = params.overlap_weight * work[b].y;
            out[2u + b] = v;
            if !finite(v) {
                atomicOr(&status[0], STATUS_NONFINITE_RESULT);
            }
        }
        return grad;
    }
    if params.reduction == 1u {
        return params.w_image * grad;
    }
    return params.w_image / sh[0].y * grad;
}

@compute @workgroup_size(COEF_WG)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let j = flat_group(wid) * COEF_WG + lid.x;
    let B = params.batch;
    let C = params.classes;
    if j >= B * C {
        return;
    }
    if (atomicLoad(&status[0]) & STATUS_INVALID) != 0u {
        coef[j] = vec4<f32>(0.0);
        return;
    }
    let b = j / C;
    let c = j % C;
    let c0 = params.class_start;
    var g = vec3<f32>(0.0);
    if is_gdl() {
        if c >= c0 {
            g = gdl_coef(j, b, c);
        }
    } else if c >= c0 {
        let k = c - c0;
        let w = class_weight(k);
        let globals = work[globals_slot()];
        if params.w_dataset > 0.0 {
            let sum = sh[HEADER + 2u * c];
            let it = item_loss(sum.xyz, w);
            var scale = 0.0;
            if params.reduction == 2u {
                scale = 1.0;
            } else if is_active(sum.w) {
                scale = params.w_dataset;
                if params.reduction == 0u {
                    scale /= globals.x;
                }
            }
            g += scale * it.grad;
        }
        if params.w_image > 0.0 || params.w_class > 0.0 {
            let s = stats[j];
            let it = item_loss(s.xyz, w);
            var scale = 0.0;
            if params.reduction == 2u {
                let v = params.overlap_weight * it.loss;
                out[2u + b * (C - c0) + k] = v;
                if !finite(v) {
                    atomicOr(&status[0], STATUS_NONFINITE_RESULT);
                }
                scale = 1.0;
            } else if is_active(s.w) {
                if params.reduction == 1u {
                    scale = params.w_image + params.w_class;
                } else {
                    if params.w_image > 0.0 {
                        scale += params.w_image / (sh[0].y * work[b].x);
                    }
                    if params.w_class > 0.0 {
                        scale += params.w_class / (globals.z * sh[HEADER + 2u * c + 1u].y);
                    }
                }
            }
            g += scale * it.grad;
        }
    }
    let cj = params.overlap_weight * params.grad_scale * g;
    coef[j] = vec4<f32>(cj, 0.0);
    if !all(finite4(vec4<f32>(cj, 0.0))) {
        atomicOr(&status[0], STATUS_NONFINITE_RESULT);
    }
}
