// tile_sums: per-(image, class, tile) partial sums of tp, fp, fn and the present count
// (SPEC §2 steps 1-4), and for compound losses the tile's (ce, focal, kept, ce
// normaliser) in a second [B, C] block (at each chunk's first class). CPU twin:
// src/reference/stats.rs. Dispatch: (tiles, rows), one row per (image, class chunk). Invocation t owns quads t, t + WG, … of the tile (coalesced),
// computes each pixel's softmax normaliser once, then for every class accumulates its
// quads and the workgroup tree-reduces them in a fixed order (no float atomics). All
// loops are class-outer: one row of the input streams at a time.

#import pixels
#import pixel_terms
#import load_norms

@group(0) @binding(0) var<storage, read> params: Params;
@group(0) @binding(4) var<storage, read_write> partials: array<vec4<f32>>; // [B, C, tiles]
@group(0) @binding(5) var<storage, read_write> status: array<atomic<u32>>; // [1]

var<workgroup> red: array<vec4<f32>, WG>;
var<workgroup> red2: array<vec4<f32>, WG>; // compound: (ce, focal, kept, ce normaliser)

#import terms
@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let row = row_of(wid);
    if !row.valid {
        return;
    }
    let b = row.b;
    let load_tile = wid.x + params.load_tile_base;
    let t = lid.x;
    let C = params.classes;

    var quads: array<Quad, VPT>;
    var norms: array<Norm, VPT>;
    var flags = 0u;
    for (var k = 0u; k < VPT; k++) {
        quads[k] = load_quad(b, quad_index(load_tile, t, k));
        if quads[k].bad_index {
            flags |= STATUS_BAD_INDEX;
        }
    }
    if ACTIVATION == 0u {
        if CHUNKED {
            load_norms(b, load_tile, t, &norms);
        } else {
            softmax_norms(b, load_tile, t, 0u, C, &norms);
        }
    }

    let zero = vec4<f32>(0.0);
    // Compound: this invocation's kept pixels, counted by the first chunk of a row only
    // (the pixel terms' normalisers). Plain vec4 accumulators below, not per-quad
    // arrays (docs/performance.md).
    var kept_px = 0.0;
    if COMPOUND && row.chunk == 0u {
        for (var k = 0u; k < VPT; k++) {
            kept_px += sum4(select(zero, vec4<f32>(1.0), quads[k].keep));
        }
    }
    // Compound: per-lane sums over every class and quad of the CE, focal and (index
    // targets) w·y terms. The pixel terms need only the image's totals, so they are
    // reduced once per tile after the class loop, not per class.
    var ce = zero;
    var focal = zero;
    var cen = zero;
    var bad_x = vec4<bool>(false);
    var bad_y = vec4<bool>(false);
    var bad_p = vec4<bool>(false);
    var soft_classic = vec4<bool>(false);
    for (var c = row.c_lo; c < row.c_hi; c++) {
        var tp = zero;
        var fp = zero;
        var fn_ = zero;
        var present = zero;
        var cls: Cls;
        if COMPOUND {
            cls = class_consts(c);
        }
        for (var k = 0u; k < VPT; k++) {
            let q = quad_index(load_tile, t, k);
            let valid = vec4<u32>(q * 4u) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(params.pixels);
            if !any(valid) {
                continue;
            }
            // Every in-range element is validated, kept or not, branch-free
            // (docs/performance.md).
            let x = load_x(b * C + c, q);
            bad_x |= valid & !finite4(x);
            if ACTIVATION == 2u && params.check_probabilities != 0u {
                // No activation: the input must already be probabilities (logits
                // passed by mistake would give a negative loss).
                bad_p |= valid & !in_unit4(x);
            }
            let y = load_target(b, c, q, quads[k]);
            if !INDEX_TARGET {
                bad_y |= valid & !in_unit4(y);
            }
            let keep = quads[k].keep;
            if any(keep) {
                let norm = norms[k];
                let p = activate(x, norm);
                // Compound, softmax: log-normaliser from the loaded norm (recomputed per
                // class).
                var lse = zero;
                if COMPOUND && ACTIVATION == 0u {
                    lse = norm.m + log(norm.s);
                }
                if FORMULATION == 2u && !INDEX_TARGET {
                    // The guard (SPEC §8): a kept soft target strictly inside (0, 1)
                    // under the classic formulation; free, the target is loaded anyway.
                    soft_classic |= keep & (y > zero) & (y < vec4<f32>(1.0));
                }
                let e = terms(p, y);
                tp += select(zero, e.tp, keep);
                fp += select(zero, e.fp, keep);
                fn_ += select(zero, e.fn_, keep);
                present += select(zero, vec4<f32>(1.0), keep & (y > vec4<f32>(params.threshold)));
                if CE_KIND != 0u {
                    ce += select(zero, ce_value(cls, x, y, lse), keep);
                    if INDEX_TARGET && CE_KIND != 3u {
                        // Σ w_{y_i}: PyTorch's normaliser for weighted index targets.
                        cen += select(zero, cls.a.x * y, keep);
                    }
                }
                if FOCAL_KIND != 0u {
                    focal += select(zero, focal_value(cls, x, p, y, lse), keep);
                }
            }
        }
        red[t] = vec4<f32>(sum4(tp), sum4(fp), sum4(fn_), sum4(present));
        workgroupBarrier();
        for (var s = WG / 2u; s > 0u; s >>= 1u) {
            if t < s {
                red[t] += red[t + s];
            }
            workgroupBarrier();
        }
        if t == 0u {
            partials[(b * C + c) * params.tiles + wid.x + params.tile_base] = red[0];
        }
    }
    if COMPOUND {
        // The tile's (ce, focal, kept pixels, ce normaliser) of this chunk's classes in
        // the chunk's first class's slot of the second [B, C] block of items (the other
        // classes' slots hold 0). The normaliser
        // is kept pixels (soft targets), Σ w_{y_i} (index targets) or kept pixels × C
        // (binary).
        var norm = kept_px;
        if CE_KIND == 3u {
            norm = kept_px * f32(C);
        } else if INDEX_TARGET {
            norm = sum4(cen);
        }
        red2[t] = vec4<f32>(sum4(ce), sum4(focal), kept_px, norm);
        workgroupBarrier();
        for (var s = WG / 2u; s > 0u; s >>= 1u) {
            if t < s {
                red2[t] += red2[t + s];
            }
            workgroupBarrier();
        }
        if t == 0u {
            for (var c = row.c_lo; c < row.c_hi; c++) {
                let j = ((params.batch + b) * C + c) * params.tiles + wid.x + params.tile_base;
                partials[j] = select(vec4<f32>(0.0), red2[0], c == row.c_lo);
            }
        }
    }
    if any(bad_x) {
        flags |= STATUS_NONFINITE_INPUT;
    }
    if any(bad_y) {
        flags |= STATUS_BAD_SOFT_TARGET;
    }
    if any(bad_p) {
        flags |= STATUS_BAD_PROBABILITY;
    }
    if any(soft_classic) {
        flags |= STATUS_SOFT_CLASSIC;
    }
    if flags != 0u {
        atomicOr(&status[0], flags);
    }
}
