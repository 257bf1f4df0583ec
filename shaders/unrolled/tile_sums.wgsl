// tile_sums, unrolled over the classes: the twin of ../tile_sums.wgsl for CPU adapters
// (lavapipe, SwiftShader, WARP), a softmax over CLASSES ≤ 24 classes without a focal
// term (`Variant::unrolled_classes`). Same bindings, tile geometry, partials layout and
// status bits; `src/kernels/wgsl.rs` repeats each `#for c` block for c = 0 … CLASSES − 1.
// Per quad of pixels the CLASSES logits are loaded once into registers; the softmax
// (max, exponentials, normaliser) is computed once from them, and every class's terms
// accumulate into its own registers. The class-loop kernel loads each logit three times
// (max, Σ exp, terms) and recomputes the exponential; on a CPU adapter a divergent load
// and an `exp` are each tens of instructions per element (docs/performance.md).

#import pixels
#import pixel_terms
#import terms

@group(0) @binding(0) var<storage, read> params: Params;
@group(0) @binding(4) var<storage, read_write> partials: array<vec4<f32>>; // [B, C, tiles]
@group(0) @binding(5) var<storage, read_write> status: array<atomic<u32>>; // [1]

// Every invocation's (tp, fp, fn, present) per class, [CLASSES, WG]: one barrier, then
// invocation t sums classes t, t + WG, … (rather than one tree and three barriers per
// class, the cost that dominates a small tile on a CPU adapter).
var<workgroup> sums: array<vec4<f32>, CLASSES * WG>;
var<workgroup> red2: array<vec4<f32>, WG>; // compound: (ce, focal, kept, ce normaliser)

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let row = row_of(wid);
    if !row.valid {
        return;
    }
    let b = row.b;
    let load_tile = wid.x + params.load_tile_base;
    let t = lid.x;
    let zero = vec4<f32>(0.0);
    let one = vec4<f32>(1.0);
    let threshold = vec4<f32>(params.threshold);

#for c
    // The class's (tp, fp, fn, present), each quad's four pixels summed before they are
    // added: one vec4 of state per class rather than four (one per term, lane by lane).
    // SwiftShader ran the pass ~15 % faster so, lavapipe with 1–2 instructions per
    // element fewer (docs/performance.md); the order of the sums changes, not the terms.
    var acc{c} = zero;
    var cls{c}: Cls;
    if COMPOUND {
        cls{c} = class_consts({c}u);
    }
#end
    var flags = 0u;
    var kept_px = 0.0;
    var ce = zero;
    var cen = zero;
    var bad_x = vec4<bool>(false);
    var bad_y = vec4<bool>(false);
    var soft_classic = vec4<bool>(false);
    for (var k = 0u; k < VPT; k++) {
        let q = quad_index(load_tile, t, k);
        let valid = vec4<u32>(q * 4u) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(params.pixels);
        if !any(valid) {
            continue;
        }
        let quad = load_quad(b, q);
        if quad.bad_index {
            flags |= STATUS_BAD_INDEX;
        }
        let keep = quad.keep;
        // The softmax, as `softmax_norms` and `activate` compute it: max, then Σ exp in
        // class order, then p = exp / Σ.
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
        var lse = zero;
        if COMPOUND {
            lse = m + log(s);
            kept_px += sum4(select(zero, one, keep));
        }
#for c
        bad_x |= valid & !finite4(x{c});
        let y{c} = load_target(b, {c}u, q, quad);
        if !INDEX_TARGET {
            bad_y |= valid & !in_unit4(y{c});
            if FORMULATION == 2u {
                soft_classic |= keep & (y{c} > zero) & (y{c} < one);
            }
        }
        let r{c} = terms(e{c} / s, y{c});
        acc{c} += vec4<f32>(
            sum4(select(zero, r{c}.tp, keep)),
            sum4(select(zero, r{c}.fp, keep)),
            sum4(select(zero, r{c}.fn_, keep)),
            sum4(select(zero, one, keep & (y{c} > threshold))),
        );
        if CE_KIND != 0u {
            ce += select(zero, ce_value(cls{c}, x{c}, y{c}, lse), keep);
            if INDEX_TARGET {
                cen += select(zero, cls{c}.a.x * y{c}, keep);
            }
        }
#end
    }
    let tiles = params.tiles;
    let tile = wid.x + params.tile_base;
#for c
    sums[{c}u * WG + t] = acc{c};
#end
    workgroupBarrier();
    for (var c = t; c < CLASSES; c += WG) {
        // The tree order of ../tile_sums.wgsl's `red` (halves added until one is left);
        // the invocations' sums it adds are summed in another order (per quad first).
        var v: array<vec4<f32>, WG>;
        for (var i = 0u; i < WG; i++) {
            v[i] = sums[c * WG + i];
        }
        for (var s = WG / 2u; s > 0u; s >>= 1u) {
            for (var i = 0u; i < s; i++) {
                v[i] += v[i + s];
            }
        }
        partials[(b * CLASSES + c) * tiles + tile] = v[0];
    }
    if COMPOUND {
        // As in ../tile_sums.wgsl: (ce, focal, kept pixels, ce normaliser) in class 0's
        // slot of the second [B, C] block, zeros in the other classes' slots.
        var norm = kept_px;
        if INDEX_TARGET {
            norm = sum4(cen);
        }
        red2[t] = vec4<f32>(sum4(ce), 0.0, kept_px, norm);
        workgroupBarrier();
        for (var s = WG / 2u; s > 0u; s >>= 1u) {
            if t < s {
                red2[t] += red2[t + s];
            }
            workgroupBarrier();
        }
        if t == 0u {
#for c
            partials[((params.batch + b) * CLASSES + {c}u) * tiles + tile] = select(zero, red2[0], {c}u == 0u);
#end
        }
    }
    if any(bad_x) {
        flags |= STATUS_NONFINITE_INPUT;
    }
    if any(bad_y) {
        flags |= STATUS_BAD_SOFT_TARGET;
    }
    if any(soft_classic) {
        flags |= STATUS_SOFT_CLASSIC;
    }
    if flags != 0u {
        atomicOr(&status[0], flags);
    }
}
