// Input access for any N: a quad is assembled from scalar loads, lanes past the row's
// end read as 0 (and are never kept). Twin: shared/load_vec4.wgsl.

#import common
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read> mask: array<u32>;

fn load_x(row: u32, q: u32) -> vec4<f32> {
    var v = vec4<f32>(0.0);
    for (var l = 0u; l < 4u; l++) {
        let i = q * 4u + l;
        if i < params.pixels {
            v[l] = input[row * params.pixels + i];
        }
    }
    return v;
}
fn load_labels(row: u32, q: u32) -> vec4<u32> {
    var v = vec4<u32>(0u);
    for (var l = 0u; l < 4u; l++) {
        let i = q * 4u + l;
        if i < params.pixels {
            v[l] = labels[row * params.pixels + i];
        }
    }
    return v;
}
fn load_mask(b: u32, q: u32) -> vec4<bool> {
    var v = vec4<bool>(false);
    for (var l = 0u; l < 4u; l++) {
        let i = q * 4u + l;
        if i < params.pixels {
            let j = b * params.map_pixels + params.pixel_base + i;
            v[l] = ((mask[j >> 2u] >> ((j & 3u) * 8u)) & 0xffu) != 0u;
        }
    }
    return v;
}
