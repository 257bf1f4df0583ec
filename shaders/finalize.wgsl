// finalize: the scalar loss, the dataset-level values and the global counts that `coef`
// scales the gradient with (SPEC §2 steps 5-8, §3). CPU twin: src/reference/finalize.rs.
// Dispatch: (1, 1, 1), one workgroup of 256 invocations: every loop is strided over
// them and every sum a fixed tree (`tree_sum`), so the order never depends on timing.
//
// Two phases (params.phase bits), so that data-parallel workers can add up their
// statistics in between (layout: `Stats` in src/stats.rs):
//   1 summarize: this worker's per-image sums (`row_sums`) → the shared block's
//     header (the per-class rows are written by `row_sums`);
//   2 finish: the (possibly all-reduced) shared block → the loss, values and counts.
// A one-call loss runs both (phase 3).

#import reduce
#import items

@group(0) @binding(0) var<storage, read> params: Params;
@group(0) @binding(1) var<storage, read> weights: array<f32>;          // [C'] or dummy
@group(0) @binding(2) var<storage, read_write> status: array<atomic<u32>>; // [1]
@group(0) @binding(3) var<storage, read_write> out: array<f32>;        // [loss, status, values…]
@group(0) @binding(4) var<storage, read_write> coef: array<vec4<f32>>; // [B, C] + [1]
@group(0) @binding(5) var<storage, read_write> sh: array<vec4<f32>>;   // [2 + 2C]
@group(0) @binding(6) var<storage, read_write> work: array<vec4<f32>>; // see items.wgsl

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

// The header of the shared block from this worker's per-image sums.
fn summarize(t: u32) {
    let B = params.batch;
    var h = vec4<f32>(0.0);
    var comp = vec4<f32>(0.0);
    for (var b = t; b < B; b += RWG) {
        let w = work[b];
        if w.x > 0.0 {
            h += vec4<f32>(0.0, 1.0, w.y / w.x, 0.0);
        }
        comp += work[B + b];
    }
    let r = tree_sum(t, h);
    let r2 = tree_sum(t, comp);
    if t == 0u {
        sh[0] = vec4<f32>(f32(B), r.y, r.z, 0.0);
        sh[1] = select(vec4<f32>(0.0), r2, is_compound());
    }
}

var<workgroup> wg_status: u32;

// A Generalized Dice's overlap part: (loss before λ, values that overflowed). Dataset
// level: one item from the global class sums, its (N, D, largest finite weight) into
// work[3B + 1] for `coef`; image level: the images' terms from the shared block.
fn finish_gdl(t: u32) -> vec2<f32> {
    let B = params.batch;
    let C = params.classes;
    let c0 = params.class_start;
    if params.w_dataset > 0.0 {
        var m = 0.0;
        for (var c = c0 + t; c < C; c += RWG) {
            let s = sh[HEADER + 2u * c];
            m = max(m, gdl_raw(s.x + s.z));
        }
        let wmax = segment_max(t, RWG, m);
        var nd = vec2<f32>(0.0);
        for (var c = c0 + t; c < C; c += RWG) {
            let s = sh[HEADER + 2u * c];
            nd += gdl_terms(s.xyz, gdl_weight(s.x + s.z, wmax));
        }
        let r = tree_sum(t, vec4<f32>(nd, 0.0, 0.0));
        let l = gdl_loss(r.xy);
        if t == 0u {
            work[gdl_globals_slot()] = vec4<f32>(r.xy, wmax, 0.0);
        }
        if params.reduction == 2u {
            let v = params.overlap_weight * l;
            if t == 0u {
                out[2] = v;
            }
            return vec2<f32>(l, select(1.0, 0.0, finite(v)));
        }
        return vec2<f32>(params.w_dataset * l, 0.0);
    }
    // Image level: (images, Σ image terms) in the header.
    if params.reduction == 0u {
        return vec2<f32>(select(0.0, params.w_image * sh[0].z / sh[0].y, sh[0].y > 0.0), 0.0);
    }
    if params.reduction == 1u {
        return vec2<f32>(params.w_image * sh[0].z, 0.0);
    }
    var sum = 0.0;
    for (var b = t; b < B; b += RWG) {
        sum += work[b].z;
    }
    return vec2<f32>(tree_sum(t, vec4<f32>(sum, 0.0, 0.0, 0.0)).x, 0.0);
}

// The loss from the shared block; the global counts into work[3B].
fn finish(t: u32) {
    let B = params.batch;
    let C = params.classes;
    let c0 = params.class_start;
    let K = C - c0;
    var total = 0.0;
    var globals = vec4<f32>(0.0);
    var overflow = 0.0; // values that came out non-finite
    if is_gdl() {
        let g = finish_gdl(t);
        total = g.x;
        overflow = g.y;
    }

    // Dataset level: the global per-class sums (mIoU^D, MONAI batch=True).
    if !is_gdl() && params.w_dataset > 0.0 {
        var n = 0.0;
        for (var c = c0 + t; c < C; c += RWG) {
            n += select(0.0, 1.0, is_active(sh[HEADER + 2u * c].w));
        }
        let n_active = tree_sum(t, vec4<f32>(n, 0.0, 0.0, 0.0)).x;
        globals.x = n_active;
        var part = 0.0;
        for (var k = t; k < K; k += RWG) {
            let sum = sh[HEADER + 2u * (c0 + k)];
            let it = item_loss(sum.xyz, class_weight(k));
            var scale = 0.0;
            if params.reduction == 2u {
                let v = params.overlap_weight * it.loss;
                out[2u + k] = v;
                overflow += select(1.0, 0.0, finite(v));
                scale = 1.0;
            } else if is_active(sum.w) {
                scale = params.w_dataset;
                if params.reduction == 0u {
                    scale /= n_active;
                }
            }
            part += scale * it.loss;
        }
        let r = tree_sum(t, vec4<f32>(part, overflow, 0.0, 0.0));
        total += r.x;
        overflow = r.y;
    }

    // Image and class levels (mIoU^I, mIoU^C, MONAI batch=False): the loss from the
    // global sums of item terms (`coef` scales this worker's items by the global counts).
    if !is_gdl() && (params.w_image > 0.0 || params.w_class > 0.0) {
        let n_images = sh[0].y;
        // (classes active somewhere, Σ_c mean over its images, Σ active ℓ, Σ all ℓ)
        var acc = vec4<f32>(0.0);
        for (var c = c0 + t; c < C; c += RWG) {
            let r = sh[HEADER + 2u * c + 1u];
            acc.z += r.x;
            if r.y > 0.0 {
                acc.x += 1.0;
                acc.y += r.x / r.y;
            }
        }
        if params.reduction == 2u {
            for (var b = t; b < B; b += RWG) {
                acc.w += work[b].z;
            }
        }
        let a = tree_sum(t, acc);
        globals.z = a.x;
        if params.reduction == 0u {
            if params.w_image > 0.0 && n_images > 0.0 {
                total += params.w_image * sh[0].z / n_images;
            }
            if params.w_class > 0.0 && a.x > 0.0 {
                total += params.w_class * a.y / a.x;
            }
        } else if params.reduction == 1u {
            total += (params.w_image + params.w_class) * a.z;
        } else {
            total += a.w;
        }
    }
    if t == 0u {
        work[globals_slot()] = globals;
        // λ_overlap weighs the overlap part; then the pixel terms (mean: over their
        // normalisers, kept pixels or Σ w_{y_i} for CE, kept pixels × C' for focal).
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
        coef[B * C] = vec4<f32>(params.grad_scale * scales, 0.0, 0.0);
        out[0] = total;
        if !finite(total) || overflow > 0.0 {
            atomicOr(&status[0], STATUS_NONFINITE_RESULT);
        }
    }
}

@compute @workgroup_size(RWG)
fn main(@builtin(local_invocation_id) lid: vec3<u32>) {
    let t = lid.x;
    if t == 0u {
        wg_status = atomicLoad(&status[0]);
    }
    // An overflow flag of an earlier finishing call on the same statistics (a
    // framework's forward, then its backward) is not invalid data.
    let st = workgroupUniformLoad(&wg_status) & STATUS_INVALID;
    if st != 0u {
        // Invalid data: the host reads the status and returns an error; nothing else is
        // trusted. coef[B·C].z = 1 tells `grad` to write zeros.
        if t == 0u {
            // A NaN made at run time (its payload the status): a constant NaN is a
            // shader-creation error in WGSL (Tint rejects it; naga folds it).
            out[0] = bitcast<f32>(0x7fc00000u | st);
            out[1] = bitcast<f32>(st);
            coef[params.batch * params.classes] = vec4<f32>(0.0, 0.0, 1.0, 0.0);
        }
        return;
    }
    if t == 0u {
        out[1] = 0.0; // the host's copy of `status` after `coef` replaces it
    }
    if (params.phase & 1u) != 0u {
        summarize(t);
        storageBarrier();
    }
    if (params.phase & 2u) != 0u {
        finish(t);
    }
}
