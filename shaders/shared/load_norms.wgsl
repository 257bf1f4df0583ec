// The softmax normalisers of a chunked softmax (CHUNKED), from the partials that
// `norm.wgsl` wrote per class chunk, merged in chunk order.

#import pixels
@group(0) @binding(7) var<storage, read> norms: array<vec4<f32>>; // [B, chunks, quads] × 2

fn load_norms(b: u32, load_tile: u32, t: u32, out: ptr<function, array<Norm, VPT>>) {
    let n = chunks();
    for (var k = 0u; k < VPT; k++) {
        var m = Norm(vec4<f32>(-3.4028234663852886e38), vec4<f32>(0.0));
        let q = quad_index(load_tile, t, k);
        if q * 4u < params.pixels {
            for (var j = 0u; j < n; j++) {
                let slot = pixel_slot(b, j, q);
                m = merge_norm(m, norms[2u * slot], norms[2u * slot + 1u]);
            }
        }
        (*out)[k] = m;
    }
}
