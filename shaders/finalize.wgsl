// finalize: per-item losses, aggregation, the scalar loss and the per-(b, c) gradient
// coefficients d(loss)/d(tp, fp, fn) (SPEC §2 steps 5-8, §3). CPU twin:
// src/reference/finalize.rs. Dispatch: (1, 1, 1). The work is O(B·C), tiny next to the
// elementwise passes, and one invocation keeps every sum in a fixed order.
//
// Two phases (params.phase bits), so that data-parallel workers can add up their
// statistics in between (layout: `Stats` in src/stats.rs):
//   1 summarize: this worker's stats [B, C] → the shared block of plain sums;
//   2 finish: the (possibly all-reduced) shared block + this worker's stats → the loss
//     and this worker's gradient coefficients.
// A one-call loss runs both (phase 3) in one dispatch.

@group(0) @binding(0) var<storage, read> params: Params;
@group(0) @binding(1) var<storage, read> stats: array<vec4<f32>>;     // [B, C] (+ [B, C])
@group(0) @binding(2) var<storage, read> weights: array<f32>;         // [C'] or dummy
@group(0) @binding(3) var<storage, read> status: array<u32>;          // [1]
@group(0) @binding(4) var<storage, read_write> out: array<f32>;       // [loss, status, values…]
@group(0) @binding(5) var<storage, read_write> coef: array<vec4<f32>>; // [B, C] + [1]
@group(0) @binding(6) var<storage, read_write> sh: array<vec4<f32>>; // [2 + 2C]

// Below this T, −ln T is clamped (keeps log_loss finite when an item has no overlap).
const LOG_T_MIN: f32 = 1e-12;

struct Item {
    loss: f32,
    grad: vec3<f32>, // d loss / d (tp, fp, fn)
}

// ℓ = w·h(T)^γ with T = (tp + s_nr)/(tp + α·fp + β·fn + s_dr), h = 1 − T or −ln T.
// An item with a zero denominator (empty prediction and target, no smoothing) has T = 1:
// loss 0, gradient 0.
fn item_loss(s: vec3<f32>, w: f32) -> Item {
    let den = s.x + params.alpha * s.y + params.beta * s.z + params.smooth_dr;
    if den <= 0.0 {
        return Item(0.0, vec3<f32>(0.0));
    }
    let T = (s.x + params.smooth_nr) / den;
    let dT = vec3<f32>(1.0 - T, -params.alpha * T, -params.beta * T) / den;
    var h = 1.0 - T;
    var dh = -1.0;
    if params.log_loss != 0u {
        h = -log(max(T, LOG_T_MIN));
        dh = select(0.0, -1.0 / T, T > LOG_T_MIN);
    }
    var l = h;
    var dl = dh;
    if params.gamma != 1.0 {
        // Focal power on a clamped base: a negative ℓ (s_nr > s_dr) has no real power.
        let hp = max(h, 0.0);
        l = pow(hp, params.gamma);
        dl = select(0.0, params.gamma * pow(hp, params.gamma - 1.0) * dh, hp > 0.0);
    }
    return Item(w * l, w * dl * dT);
}

fn class_weight(k: u32) -> f32 {
    if params.has_weights != 0u {
        return weights[k];
    }
    return 1.0;
}

fn is_active(present: f32) -> bool {
    return params.present_all != 0u || present > 0.0;
}

// Shared block, as vec4s: [0] (images, active images, Σ image terms, 0), [1] compound
// terms Σ (ce, focal, kept pixels, ce normaliser), then per class c: [2 + 2c] Σ_b (tp, fp, fn, present),
// [3 + 2c] (Σ_b active ℓ_bc, active images of c, 0, 0).
const HEADER: u32 = 2u;

fn is_compound() -> bool {
    return params.ce_kind != 0u || params.focal_kind != 0u;
}

// A pixel term's (loss, scale) from its sum and normaliser: mean divides, sum does not.
fn pixel_term(lambda: f32, sum: f32, norm: f32) -> vec2<f32> {
    if params.reduction != 0u {
        return vec2<f32>(lambda * sum, lambda);
    }
    if norm > 0.0 {
        return vec2<f32>(lambda * sum / norm, lambda / norm);
    }
    return vec2<f32>(0.0);
}

fn summarize() {
    let B = params.batch;
    let C = params.classes;
    let c0 = params.class_start;
    sh[0] = vec4<f32>(f32(B), 0.0, 0.0, 0.0);
    sh[1] = vec4<f32>(0.0);
    if is_compound() {
        for (var j = 0u; j < B * C; j++) {
            sh[1] += stats[B * C + j];
        }
    }
    for (var c = 0u; c < C; c++) {
        var sum = vec4<f32>(0.0);
        for (var b = 0u; b < B; b++) {
            sum += stats[b * C + c];
        }
        sh[HEADER + 2u * c] = sum;
        sh[HEADER + 2u * c + 1u] = vec4<f32>(0.0);
    }
    for (var b = 0u; b < B; b++) {
        var n_act = 0.0;
        var term = 0.0;
        for (var c = c0; c < C; c++) {
            let s = stats[b * C + c];
            if is_active(s.w) {
                let l = item_loss(s.xyz, class_weight(c - c0)).loss;
                n_act += 1.0;
                term += l;
                sh[HEADER + 2u * c + 1u] += vec4<f32>(l, 1.0, 0.0, 0.0);
            }
        }
        if n_act > 0.0 {
            sh[0] += vec4<f32>(0.0, 1.0, term / n_act, 0.0);
        }
    }
}

fn finish() {
    let B = params.batch;
    let C = params.classes;
    let c0 = params.class_start;
    let K = C - c0;
    var total = 0.0;

    // Dataset level: the global per-class sums (mIoU^D, MONAI batch=True).
    if params.w_dataset > 0.0 {
        var n_active = 0.0;
        for (var c = c0; c < C; c++) {
            n_active += select(0.0, 1.0, is_active(sh[HEADER + 2u * c].w));
        }
        for (var k = 0u; k < K; k++) {
            let sum = sh[HEADER + 2u * (c0 + k)];
            let it = item_loss(sum.xyz, class_weight(k));
            var scale = 0.0;
            if params.reduction == 2u {
                out[2u + k] = params.overlap_weight * it.loss;
                scale = 1.0;
            } else if is_active(sum.w) {
                scale = params.w_dataset;
                if params.reduction == 0u {
                    scale /= n_active;
                }
            }
            total += scale * it.loss;
            for (var b = 0u; b < B; b++) {
                coef[b * C + c0 + k] += vec4<f32>(scale * it.grad, 0.0);
            }
        }
    }

    // Image and class levels (mIoU^I, mIoU^C, MONAI batch=False): the loss from the
    // global sums of item terms, the gradient of this worker's items scaled by the
    // global counts.
    if params.w_image > 0.0 || params.w_class > 0.0 {
        let n_images = sh[0].y;
        var n_classes = 0.0;
        var class_sum = 0.0;
        var loss_sum = 0.0;
        for (var c = c0; c < C; c++) {
            let r = sh[HEADER + 2u * c + 1u];
            loss_sum += r.x;
            if r.y > 0.0 {
                n_classes += 1.0;
                class_sum += r.x / r.y;
            }
        }
        if params.reduction == 0u {
            if params.w_image > 0.0 && n_images > 0.0 {
                total += params.w_image * sh[0].z / n_images;
            }
            if params.w_class > 0.0 && n_classes > 0.0 {
                total += params.w_class * class_sum / n_classes;
            }
        } else if params.reduction == 1u {
            total += (params.w_image + params.w_class) * loss_sum;
        }
        for (var b = 0u; b < B; b++) {
            var per_image = 0.0;
            for (var k = 0u; k < K; k++) {
                per_image += select(0.0, 1.0, is_active(stats[b * C + c0 + k].w));
            }
            for (var k = 0u; k < K; k++) {
                let s = stats[b * C + c0 + k];
                let it = item_loss(s.xyz, class_weight(k));
                var scale = 0.0;
                if params.reduction == 2u {
                    out[2u + b * K + k] = params.overlap_weight * it.loss;
                    total += it.loss;
                    scale = 1.0;
                } else if is_active(s.w) {
                    if params.reduction == 1u {
                        scale = params.w_image + params.w_class;
                    } else {
                        if params.w_image > 0.0 {
                            scale += params.w_image / (n_images * per_image);
                        }
                        if params.w_class > 0.0 {
                            scale += params.w_class / (n_classes * sh[HEADER + 2u * (c0 + k) + 1u].y);
                        }
                    }
                }
                coef[b * C + c0 + k] += vec4<f32>(scale * it.grad, 0.0);
            }
        }
    }
    // λ_overlap weighs the overlap part; then the pixel terms (mean: over their
    // normalisers, kept pixels or Σ w_{y_i} for CE, kept pixels × C' for focal).
    for (var j = 0u; j < B * C; j++) {
        coef[j] *= params.overlap_weight;
    }
    total *= params.overlap_weight;
    var scales = vec2<f32>(0.0);
    if params.ce_kind != 0u {
        let ce = pixel_term(params.ce_weight, sh[1].x, sh[1].w);
        total += ce.x;
        scales.x = ce.y;
    }
    if params.focal_kind != 0u {
        let f = pixel_term(params.focal_weight, sh[1].y, sh[1].z * f32(K));
        total += f.x;
        scales.y = f.y;
    }
    coef[B * C] = vec4<f32>(scales, 0.0, 0.0);
    out[0] = total;
}

@compute @workgroup_size(1)
fn main() {
    let st = status[0];
    out[1] = bitcast<f32>(st);
    if st != 0u {
        // Invalid data: the host reads the status and returns an error; nothing else is
        // trusted, and the gradient stays zero.
        out[0] = bitcast<f32>(0x7fc00000u);
        for (var j = 0u; j <= params.batch * params.classes; j++) {
            coef[j] = vec4<f32>(0.0);
        }
        return;
    }
    if (params.phase & 1u) != 0u {
        summarize();
    }
    if (params.phase & 2u) != 0u {
        for (var j = 0u; j <= params.batch * params.classes; j++) {
            coef[j] = vec4<f32>(0.0);
        }
        finish();
    }
}
