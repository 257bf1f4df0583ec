// stats_reduce: second reduction level, tiles → one (tp, fp, fn, present) per (b, c).
// CPU twin: src/reference/stats.rs. Dispatch: (C, B), one workgroup per item.
// Each invocation sums a fixed strided subset of the tiles, then a fixed tree: the
// order never depends on timing, so results are bit-identical run to run. Always 256
// invocations (whatever the tile geometry) to keep the sequential runs short.

@group(0) @binding(0) var<storage, read> params: Params;
@group(0) @binding(1) var<storage, read> partials: array<vec4<f32>>; // [B, C, tiles]
@group(0) @binding(2) var<storage, read_write> stats: array<vec4<f32>>; // [B, C]

const REDUCE_WG: u32 = 256u;
var<workgroup> red: array<vec4<f32>, REDUCE_WG>;

@compute @workgroup_size(REDUCE_WG)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let item = wid.y * params.classes + wid.x;
    let t = lid.x;
    let base = item * params.tiles;
    var acc = vec4<f32>(0.0);
    for (var j = t; j < params.tiles; j += REDUCE_WG) {
        acc += partials[base + j];
    }
    red[t] = acc;
    workgroupBarrier();
    for (var s = REDUCE_WG / 2u; s > 0u; s >>= 1u) {
        if t < s {
            red[t] += red[t + s];
        }
        workgroupBarrier();
    }
    if t == 0u {
        stats[item] = red[0];
    }
}
