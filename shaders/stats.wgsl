// stats: per-(image, class, tile) partial sums of tp, fp, fn and the present count
// (SPEC §2 steps 1-4). CPU twin: src/reference/stats.rs.
// Dispatch: (tiles, B). Each invocation owns PPT pixels strided by WG (coalesced loads);
// the workgroup tree-reduces each class in a fixed order (no float atomics).

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(4) var<storage, read_write> partials: array<vec4<f32>>; // [B, C, tiles]
@group(0) @binding(5) var<storage, read_write> status: array<atomic<u32>>; // [1]

var<workgroup> red: array<vec4<f32>, WG>;

// One element's (tp, fp, fn, present) by formulation. The soft form is computed per
// element as (|p| + |y| − |p − y|)/2, i.e. min(p, y) for p, y ≥ 0, which avoids the
// cancellation of (P + G − D)/2 on the sums (SPEC §3, accuracy hint).
fn contribution(p: f32, y: f32) -> vec4<f32> {
    let present = select(0.0, 1.0, y > params.threshold);
    switch FORMULATION {
        case 0u: {
            let tp = 0.5 * (abs(p) + abs(y) - abs(p - y));
            return vec4<f32>(tp, abs(p) - tp, abs(y) - tp, present);
        }
        case 1u: {
            return vec4<f32>(p * y, p * (p - y), y * (y - p), present);
        }
        default: {
            return vec4<f32>(p * y, p * (1.0 - y), y * (1.0 - p), present);
        }
    }
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let b = wid.y;
    let tile = wid.x + params.tile_base;
    let t = lid.x;
    let C = params.classes;
    let N = params.pixels;

    var px: array<Pixel, PPT>;
    var norm: array<vec2<f32>, PPT>;
    var flags = 0u;
    for (var k = 0u; k < PPT; k++) {
        let i = tile * TILE + k * WG + t;
        px[k] = load_pixel(b, i);
        if px[k].bad_index {
            flags |= STATUS_BAD_INDEX;
        }
        if ACTIVATION == 0u && i < N {
            norm[k] = softmax_norm(b, i);
        }
    }

    for (var c = 0u; c < C; c++) {
        var acc = vec4<f32>(0.0);
        for (var k = 0u; k < PPT; k++) {
            let i = tile * TILE + k * WG + t;
            if i >= N {
                continue;
            }
            // Every in-range element is validated, kept or not.
            let x = input[(b * C + c) * N + i];
            if !is_finite(x) {
                flags |= STATUS_NONFINITE_INPUT;
            }
            if !INDEX_TARGET {
                let yv = bitcast<f32>(labels[(b * C + c) * N + i]);
                if !(is_finite(yv) && yv >= 0.0 && yv <= 1.0) {
                    flags |= STATUS_BAD_SOFT_TARGET;
                }
            }
            if px[k].keep {
                let p = activate(x, norm[k]);
                let y = load_target(b, c, i, px[k]);
                acc += contribution(p, y);
            }
        }
        red[t] = acc;
        workgroupBarrier();
        for (var s = WG / 2u; s > 0u; s >>= 1u) {
            if t < s {
                red[t] += red[t + s];
            }
            workgroupBarrier();
        }
        if t == 0u {
            partials[(b * C + c) * params.tiles + tile] = red[0];
        }
    }
    if flags != 0u {
        atomicOr(&status[0], flags);
    }
}
