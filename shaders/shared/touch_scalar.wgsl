// A read of the gradient's quad before the kernel computes and stores it, for any N: its
// first word (the caller skips quads past the row's end). Twin: touch_vec4.wgsl.

#import store

fn touch_grad(row: u32, q: u32) -> f32 {
    return grad[row * params.pixels + q * 4u];
}
