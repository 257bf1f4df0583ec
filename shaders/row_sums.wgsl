// row_sums: the sums over items that `finalize` needs, per image and (summarize
// phase) per class, each a strided loop and a fixed tree over a segment of `lanes`
// invocations. Dispatch: the image rows' workgroups, then the class rows', folded into
// two dimensions (`kernels::row_sums_groups`). CPU twin:
// `summarize` in src/reference/finalize.rs.
//   image b: work[b] = (active classes, Σ active ℓ_bc, Σ ℓ_bc, 0) over kept classes,
//            work[B + b] = the compound sums of the image; a Generalized Dice's
//            image is one item: work[b] = (1, ℓ_b, ℓ_b, 0), work[2B + b] its sums;
//   class c: sh[2 + 2c] = Σ_b (tp, fp, fn, present), sh[3 + 2c] = (Σ_b active ℓ_bc,
//            active images, 0, 0) (zero for a dropped background).

#import reduce
#import items

@group(0) @binding(0) var<storage, read> params: Params;
@group(0) @binding(1) var<storage, read> stats: array<vec4<f32>>; // [B, C] (+ [B, C])
@group(0) @binding(2) var<storage, read> weights: array<f32>;     // [C'] or dummy
@group(0) @binding(3) var<storage, read> status: array<u32>;      // [1]
@group(0) @binding(4) var<storage, read_write> work: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> sh: array<vec4<f32>>; // [2 + 2C]

@compute @workgroup_size(RWG)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    // Invalid data (an overflow flag of an earlier finishing call on the same
    // statistics is not): `finalize` reports it, `coef` zeroes the gradient.
    if (status[0] & STATUS_INVALID) != 0u {
        return;
    }
    let g = flat_group(wid);
    let t = lid.x;
    let B = params.batch;
    let C = params.classes;
    let c0 = params.class_start;
    let zero = vec4<f32>(0.0);
    // Rows of images (over their classes), then of classes (over the images), each
    // `lanes` invocations wide, RWG / lanes rows to a workgroup.
    let li = lanes(C);
    let img_groups = (B + RWG / li - 1u) / (RWG / li);
    if g < img_groups {
        let b = g * (RWG / li) + t / li;
        var acc = zero;
        var comp = zero;
        if b < B {
            for (var c = c0 + t % li; c < C; c += li) {
                let l = item_loss(stats[b * C + c].xyz, class_weight(c - c0)).loss;
                if is_active(stats[b * C + c].w) {
                    acc += vec4<f32>(1.0, l, l, 0.0);
                } else {
                    acc += vec4<f32>(0.0, 0.0, l, 0.0);
                }
            }
            if is_compound() {
                for (var c = t % li; c < C; c += li) {
                    comp += stats[(B + b) * C + c];
                }
            }
        }
        let r2 = segment_sum(t, li, comp);
        if is_gdl() {
            // One item per image: its largest finite weight, then the weighted sums.
            var m = 0.0;
            if b < B {
                for (var c = c0 + t % li; c < C; c += li) {
                    let s = stats[b * C + c];
                    m = max(m, gdl_raw(s.x + s.z));
                }
            }
            let wmax = segment_max(t, li, m);
            var nd = vec2<f32>(0.0);
            if b < B {
                for (var c = c0 + t % li; c < C; c += li) {
                    let s = stats[b * C + c];
                    nd += gdl_terms(s.xyz, gdl_weight(s.x + s.z, wmax));
                }
            }
            let r = segment_sum(t, li, vec4<f32>(nd, 0.0, 0.0));
            if b < B && t % li == 0u {
                let l = gdl_loss(r.xy);
                work[b] = vec4<f32>(1.0, l, l, 0.0);
                work[B + b] = r2;
                work[gdl_image_slot(b)] = vec4<f32>(r.xy, wmax, 0.0);
            }
            return;
        }
        let r = segment_sum(t, li, acc);
        if b < B && t % li == 0u {
            work[b] = r;
            work[B + b] = r2;
        }
        return;
    }
    let lc = lanes(B);
    let c = (g - img_groups) * (RWG / lc) + t / lc;
    var sum = zero;
    var act = zero;
    if c < C {
        for (var b = t % lc; b < B; b += lc) {
            let s = stats[b * C + c];
            sum += s;
            if c >= c0 && !is_gdl() && is_active(s.w) {
                act += vec4<f32>(item_loss(s.xyz, class_weight(c - c0)).loss, 1.0, 0.0, 0.0);
            }
        }
    }
    let r = segment_sum(t, lc, sum);
    let r2 = segment_sum(t, lc, act);
    if c < C && t % lc == 0u {
        sh[HEADER + 2u * c] = r;
        sh[HEADER + 2u * c + 1u] = r2;
    }
}
