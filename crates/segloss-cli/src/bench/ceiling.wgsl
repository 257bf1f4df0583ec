// The bandwidth ceiling for segloss's fused loss+grad path: the simplest kernels that
// move the same bytes. `reduce` reads input and target once and writes one partial per
// workgroup (like `stats`); `stream` reads them again and writes one f32 per element
// (like `grad`). vec4 loads, WG invocations × QPI quads per workgroup; the bench runs it
// with (WG, QPI) = (8, 4), (256, 4) and (8, 16) and keeps the fastest (shapes must have
// N % 4 == 0).

struct Params {
    quads: u32,        // input elements / 4
    label_quads: u32,  // target elements / 4 (B·C·N soft, B·N index)
    ratio: u32,        // input elements per target element (1 soft, C index)
    base: u32,         // first workgroup of this dispatch
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> input: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> labels: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>;

var<workgroup> red: array<vec4<f32>, WG>;

@compute @workgroup_size(WG)
fn reduce(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let g = wid.x + params.base;
    var acc = vec4<f32>(0.0);
    for (var k = 0u; k < QPI; k++) {
        let q = (g * QPI + k) * WG + lid.x;
        if q < params.quads {
            acc += input[q];
        }
        if q < params.label_quads {
            acc += labels[q];
        }
    }
    red[lid.x] = acc;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if lid.x < s {
            red[lid.x] += red[lid.x + s];
        }
        workgroupBarrier();
    }
    if lid.x == 0u {
        out[g] = red[0];
    }
}

@compute @workgroup_size(WG)
fn stream(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let g = wid.x + params.base;
    for (var k = 0u; k < QPI; k++) {
        let q = (g * QPI + k) * WG + lid.x;
        if q < params.quads {
            // Index targets: one label word per pixel, C elements share it.
            out[q] = input[q] + labels[q / params.ratio];
        }
    }
}
