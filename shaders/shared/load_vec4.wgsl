// Input access when N is a multiple of 4: every quad of 4 pixels is one aligned vec4
// (vector loads are several times faster than scalar ones on CPU adapters such as
// lavapipe). Twin: shared/load_scalar.wgsl (same functions, any N).
// input:  f32 [B, C, N];  labels: soft f32 bits [B, C, N] or class indices u32 [B, N]
// mask:   keep-mask, one byte per pixel [B, N], four to a word (bool tensor layout)

#import common
@group(0) @binding(1) var<storage, read> input: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> labels: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> mask: array<u32>;

// Quad q of row `row` (= b·C + c) of a [·, N] array.
fn load_x(row: u32, q: u32) -> vec4<f32> {
    return input[row * (params.pixels / 4u) + q];
}
fn load_labels(row: u32, q: u32) -> vec4<u32> {
    return labels[row * (params.pixels / 4u) + q];
}
// Keep bytes of quad q of image b: one mask word.
fn load_mask(b: u32, q: u32) -> vec4<bool> {
    let w = mask[(b * params.map_pixels + params.pixel_base) / 4u + q];
    return ((vec4<u32>(w) >> vec4<u32>(0u, 8u, 16u, 24u)) & vec4<u32>(0xffu)) != vec4<u32>(0u);
}
