// item_sums: second reduction level, tiles → one (tp, fp, fn, present) per (b, c).
// CPU twin: src/reference/stats.rs. Each item is a row of `lanes(tiles)` invocations
// (items.wgsl), 256 / lanes items to a workgroup, folded into two dimensions
// (`kernels::item_sums_groups`). Each invocation sums a fixed strided subset of the
// item's tiles, then a fixed tree over its row: the order never depends on timing, so
// results are bit-identical run to run.

#import reduce

@group(0) @binding(0) var<storage, read> params: Params;
@group(0) @binding(1) var<storage, read> partials: array<vec4<f32>>; // [B, C, tiles]
@group(0) @binding(2) var<storage, read_write> stats: array<vec4<f32>>; // [B, C]

@compute @workgroup_size(RWG)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    var items = params.batch * params.classes;
    if params.ce_kind != 0u || params.focal_kind != 0u {
        items *= 2u;
    }
    let t = lid.x;
    let ln = lanes(params.tiles);
    let item = flat_group(wid) * (RWG / ln) + t / ln;
    var acc = vec4<f32>(0.0);
    if item < items {
        let base = item * params.tiles;
        for (var j = t % ln; j < params.tiles; j += ln) {
            acc += partials[base + j];
        }
    }
    let r = segment_sum(t, ln, acc);
    if item < items && t % ln == 0u {
        stats[item] = r;
    }
}
