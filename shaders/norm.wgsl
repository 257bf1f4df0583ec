// norm: a softmax's partial normalisers per (image, class chunk, pixel), for softmaxes
// of more than one class chunk (CHUNKED). Dispatch: (tiles, rows) as `tile_sums`. `tile_sums`
// and `softmax_dot` merge the chunks' partials of a pixel (`load_norms`). CPU twin: the
// softmax of src/reference/mod.rs (one pass over all classes; the same value).

#import pixels

@group(0) @binding(0) var<storage, read> params: Params;
// [B, chunks, quads] × (max, Σ exp(x − max)) as two vec4 per quad.
@group(0) @binding(4) var<storage, read_write> norms: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let row = row_of(wid);
    if !row.valid {
        return;
    }
    let load_tile = wid.x + params.load_tile_base;
    let t = lid.x;
    var part: array<Norm, VPT>;
    softmax_norms(row.b, load_tile, t, row.c_lo, row.c_hi, &part);
    for (var k = 0u; k < VPT; k++) {
        let q = quad_index(load_tile, t, k);
        if q * 4u < params.pixels {
            let slot = pixel_slot(row.b, row.chunk, q);
            norms[2u * slot] = part[k].m;
            norms[2u * slot + 1u] = part[k].s;
        }
    }
}
