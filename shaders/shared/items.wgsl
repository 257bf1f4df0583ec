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
// Σ ℓ, 0); [B + b] per image the compound sums; [2B + b] per image a Generalized Dice's
// (N, D, largest finite weight, 0); [3B] (active classes at dataset level, 0, classes
// active in some image, 0) and [3B + 1] a dataset-level Generalized Dice's (N, D, largest
// finite weight, 0), from `finalize` for `coef`.
fn gdl_image_slot(b: u32) -> u32 {
    return 2u * params.batch + b;
}
fn globals_slot() -> u32 {
    return 3u * params.batch;
}
fn gdl_globals_slot() -> u32 {
    return 3u * params.batch + 1u;
}

// A Generalized Dice (SPEC §6.1): items pool their classes with weights w(g) of the
// target volume g = tp + fn = Σ y.
fn is_gdl() -> bool {
    return params.gdl_weight != 0u;
}

// w(g) in f32, or −1 where it is infinite (g = 0, or 1/g² past f32): the caller puts the
// item's largest finite weight there.
fn gdl_raw(g: f32) -> f32 {
    var w = 1.0;
    if params.gdl_weight == 1u {
        if g <= 0.0 {
            return -1.0;
        }
        w = 1.0 / g;
    } else if params.gdl_weight == 2u {
        let g2 = g * g;
        if g2 <= 0.0 {
            return -1.0;
        }
        w = 1.0 / g2;
    }
    if !finite(w) {
        return -1.0;
    }
    return w;
}

fn gdl_weight(g: f32, wmax: f32) -> f32 {
    let w = gdl_raw(g);
    return select(w, wmax, w < 0.0);
}

// (w·tp, w·(tp + α fp + β fn)) of one class.
fn gdl_terms(s: vec3<f32>, w: f32) -> vec2<f32> {
    return vec2<f32>(w * s.x, w * (s.x + params.alpha * s.y + params.beta * s.z));
}

// ℓ = 1 − (N + s_nr)/(D + s_dr) from the sums (N, D); 0 for a zero denominator.
fn gdl_loss(nd: vec2<f32>) -> f32 {
    let d = nd.y + params.smooth_dr;
    return select(0.0, 1.0 - (nd.x + params.smooth_nr) / d, d > 0.0);
}

// dℓ/d(tp, fp, fn) of a class of weight w, from the item's sums (N, D).
fn gdl_grad(nd: vec2<f32>, w: f32) -> vec3<f32> {
    let n = nd.x + params.smooth_nr;
    let d = nd.y + params.smooth_dr;
    if d <= 0.0 {
        return vec3<f32>(0.0);
    }
    let q = n * w / (d * d);
    return vec3<f32>(q - w / d, params.alpha * q, params.beta * q);
}

