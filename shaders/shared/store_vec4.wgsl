// Gradient output when N is a multiple of 4 (aligned quads). Twin: store_scalar.wgsl.

#import common
@group(0) @binding(5) var<storage, read_write> grad: array<vec4<f32>>; // [B, C, N]

fn store_grad(row: u32, q: u32, g: vec4<f32>) {
    grad[row * (params.pixels / 4u) + q] = g;
}
