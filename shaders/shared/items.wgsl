// Per-item losses and the fixed-order workgroup sums shared by `row_sums`,
// `finalize` and `coef` (SPEC §2 steps 5-8, §3). CPU twin: src/reference/finalize.rs.
// Each kernel declares `weights` (per kept class, or a dummy) itself.

#import common

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
// terms Σ (ce, focal, kept pixels, ce normaliser), then per class c: [2 + 2c] Σ_b (tp,
// fp, fn, present), [3 + 2c] (Σ_b active ℓ_bc, active images of c, 0, 0).
const HEADER: u32 = 2u;

fn is_compound() -> bool {
    return params.ce_kind != 0u || params.focal_kind != 0u;
}

// The per-call work block (`work`, vec4s): [b] per image (active classes, Σ active ℓ,
// Σ ℓ, 0); [B + b] per image the compound sums; [2B] (active classes at dataset level,
// 0, classes active in some image, 0), from `finalize` for `coef`.
fn globals_slot() -> u32 {
    return 2u * params.batch;
}

