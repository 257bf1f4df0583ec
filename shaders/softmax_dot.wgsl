// softmax_dot: for a CHUNKED softmax, per (image, class chunk, pixel) the merged
// normaliser and the chunk's Σ_j h_j (see shared/softmax_dot.wgsl), which `grad` sums
// over the chunks. Dispatch: (tiles, rows) as `grad`. CPU twin: src/reference/grad.rs.

#import load_norms
#import softmax_dot

@group(0) @binding(0) var<storage, read> params: Params;
@group(0) @binding(4) var<storage, read> coef: array<vec4<f32>>; // [B, C] + [1] pixel scales
// [B, chunks, quads] × (max, Σ exp, Σ_j h_j of the chunk).
@group(0) @binding(5) var<storage, read_write> pix: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let row = row_of(wid);
    if !row.valid {
        return;
    }
    let b = row.b;
    let t = lid.x;
    let load_tile = wid.x + params.load_tile_base;
    let C = params.classes;

    var quads: array<Quad, VPT>;
    var norms: array<Norm, VPT>;
    var dot: array<vec4<f32>, VPT>;
    var lse: array<vec4<f32>, VPT>;
    for (var k = 0u; k < VPT; k++) {
        quads[k] = load_quad(b, quad_index(load_tile, t, k));
        dot[k] = vec4<f32>(0.0);
    }
    load_norms(b, load_tile, t, &norms);
    if FOCAL_KIND == 2u {
        for (var k = 0u; k < VPT; k++) {
            lse[k] = norms[k].m + log(norms[k].s);
        }
    }
    let ps = coef[params.batch * C].xy;
    softmax_dot(b, load_tile, t, row.c_lo, row.c_hi, &quads, &norms, &lse, ps, &dot);
    for (var k = 0u; k < VPT; k++) {
        let q = quad_index(load_tile, t, k);
        if q * 4u < params.pixels {
            let slot = pixel_slot(b, row.chunk, q);
            pix[3u * slot] = norms[k].m;
            pix[3u * slot + 1u] = norms[k].s;
            pix[3u * slot + 2u] = dot[k];
        }
    }
}
