// finalize: per-item losses, aggregation, the scalar loss and the per-(b, c) gradient
// coefficients d(loss)/d(tp, fp, fn) (SPEC §2 steps 5-8, §3). CPU twin:
// src/reference/finalize.rs. Dispatch: (1, 1, 1). The work is O(B·C), tiny next to the
// elementwise passes, and one invocation keeps every sum in a fixed order.

@group(0) @binding(0) var<storage, read> params: Params;
@group(0) @binding(1) var<storage, read> stats: array<vec4<f32>>;     // [B, C]
@group(0) @binding(2) var<storage, read> weights: array<f32>;         // [C'] or dummy
@group(0) @binding(3) var<storage, read> status: array<u32>;          // [1]
@group(0) @binding(4) var<storage, read_write> out: array<f32>;       // [loss, status, values…]
@group(0) @binding(5) var<storage, read_write> coef: array<vec4<f32>>; // [B, C]
@group(0) @binding(6) var<storage, read_write> counts: array<f32>;    // [B + C] scratch

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

@compute @workgroup_size(1)
fn main() {
    let B = params.batch;
    let C = params.classes;
    let c0 = params.class_start;
    let K = C - c0;
    let st = status[0];
    out[1] = bitcast<f32>(st);
    for (var j = 0u; j < B * C; j++) {
        coef[j] = vec4<f32>(0.0);
    }
    if st != 0u {
        // Invalid data: the host reads the status and returns an error; nothing else is
        // trusted, and the gradient stays zero.
        out[0] = bitcast<f32>(0x7fc00000u);
        return;
    }
    var total = 0.0;

    // Dataset level: tp, fp, fn summed over the batch first (mIoU^D, MONAI batch=True).
    if params.w_dataset > 0.0 {
        var n_active = 0.0;
        for (var k = 0u; k < K; k++) {
            var present = 0.0;
            for (var b = 0u; b < B; b++) {
                present += stats[b * C + c0 + k].w;
            }
            n_active += select(0.0, 1.0, is_active(present));
        }
        for (var k = 0u; k < K; k++) {
            var sum = vec4<f32>(0.0);
            for (var b = 0u; b < B; b++) {
                sum += stats[b * C + c0 + k];
            }
            let it = item_loss(sum.xyz, class_weight(k));
            let counted = is_active(sum.w);
            var scale = 0.0;
            if params.reduction == 2u {
                out[2u + k] = it.loss;
                scale = 1.0;
            } else if counted {
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

    // Image and class levels: one ℓ per (b, c) (mIoU^I, mIoU^C, MONAI batch=False).
    if params.w_image > 0.0 || params.w_class > 0.0 {
        // Active counts per image (counts[b]) and per class (counts[B + k]).
        for (var j = 0u; j < B + K; j++) {
            counts[j] = 0.0;
        }
        var n_images = 0.0;
        var n_classes = 0.0;
        for (var b = 0u; b < B; b++) {
            for (var k = 0u; k < K; k++) {
                if is_active(stats[b * C + c0 + k].w) {
                    counts[b] += 1.0;
                    counts[B + k] += 1.0;
                }
            }
            n_images += select(0.0, 1.0, counts[b] > 0.0);
        }
        for (var k = 0u; k < K; k++) {
            n_classes += select(0.0, 1.0, counts[B + k] > 0.0);
        }
        for (var b = 0u; b < B; b++) {
            for (var k = 0u; k < K; k++) {
                let s = stats[b * C + c0 + k];
                let it = item_loss(s.xyz, class_weight(k));
                var scale = 0.0;
                if params.reduction == 2u {
                    out[2u + b * K + k] = it.loss;
                    scale = 1.0;
                } else if is_active(s.w) {
                    if params.reduction == 1u {
                        scale = params.w_image + params.w_class;
                    } else {
                        if params.w_image > 0.0 {
                            scale += params.w_image / (n_images * counts[b]);
                        }
                        if params.w_class > 0.0 {
                            scale += params.w_class / (n_classes * counts[B + k]);
                        }
                    }
                }
                total += scale * it.loss;
                coef[b * C + c0 + k] += vec4<f32>(scale * it.grad, 0.0);
            }
        }
    }
    out[0] = total;
}
