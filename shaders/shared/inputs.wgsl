// The read-only inputs shared by the `stats` and `grad` kernels (bindings 1-3).
// input:  f32 [B, C, N]
// labels: soft targets as f32 bits [B, C, N], or class indices u32 [B, N]
// mask:   keep-mask, one byte per pixel [B, N] packed four to a word (bool tensor layout)
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read> mask: array<u32>;

// What one pixel contributes: whether it is kept, and its class index (index targets).
struct Pixel {
    keep: bool,
    class_index: u32,
    bad_index: bool,
}

fn load_pixel(b: u32, i: u32) -> Pixel {
    var px = Pixel(i < params.pixels, 0u, false);
    if !px.keep {
        return px;
    }
    let j = b * params.pixels + i;
    if HAS_MASK {
        let byte = (mask[j >> 2u] >> ((j & 3u) * 8u)) & 0xffu;
        px.keep = byte != 0u;
    }
    if INDEX_TARGET {
        let v = labels[j];
        if params.has_ignore != 0u && v == params.ignore_index {
            px.keep = false;
        } else if v >= params.classes {
            // Out of range and not ignored: flagged (SPEC §1), the pixel is skipped.
            px.bad_index = px.keep;
            px.keep = false;
        }
        px.class_index = v;
    }
    return px;
}

// Softmax normaliser of one pixel: (max, Σ exp(x − max)) over the class axis.
fn softmax_norm(b: u32, i: u32) -> vec2<f32> {
    let C = params.classes;
    let N = params.pixels;
    var m = -3.4028235e38;
    for (var c = 0u; c < C; c++) {
        m = max(m, input[(b * C + c) * N + i]);
    }
    var s = 0.0;
    for (var c = 0u; c < C; c++) {
        s += exp(input[(b * C + c) * N + i] - m);
    }
    return vec2<f32>(m, s);
}

// Probability p of class c at pixel i (SPEC §2.1), given the softmax normaliser.
fn activate(x: f32, norm: vec2<f32>) -> f32 {
    switch ACTIVATION {
        case 0u: { return exp(x - norm.x) / norm.y; }
        case 1u: { return sigmoid(x); }
        default: { return x; }
    }
}

// Target y of (b, c) at pixel i, for a kept pixel.
fn load_target(b: u32, c: u32, i: u32, px: Pixel) -> f32 {
    if INDEX_TARGET {
        return select(0.0, 1.0, px.class_index == c);
    }
    return bitcast<f32>(labels[(b * params.classes + c) * params.pixels + i]);
}
