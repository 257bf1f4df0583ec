// A read of the gradient's quad before the kernel computes and stores it (CPU adapters'
// unrolled grad): on llvmpipe the load brings the output line into the cache early, so
// the store that follows no longer waits for it (a software read-for-ownership
// prefetch; SwiftShader: no measurable change; docs/performance.md, issue 24). The value
// read is never used. Twin: touch_scalar.wgsl.

#import store

fn touch_grad(row: u32, q: u32) -> f32 {
    return grad[row * (params.pixels / 4u) + q].x;
}
