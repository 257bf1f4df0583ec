// Gradient output for any N: lanes past the row's end are not written.

#import common
@group(0) @binding(5) var<storage, read_write> grad: array<f32>; // [B, C, N]

fn store_grad(row: u32, q: u32, g: vec4<f32>) {
    for (var l = 0u; l < 4u; l++) {
        let i = q * 4u + l;
        if i < params.pixels {
            grad[row * params.pixels + i] = g[l];
        }
    }
}
