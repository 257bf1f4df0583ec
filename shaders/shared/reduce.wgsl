// Fixed-order workgroup reductions (trees, no atomics) shared by `item_sums`,
// `row_sums` and `finalize`.

#import common

// Fixed-order sum over the 256 invocations of a workgroup (a tree; no atomics), uniform
// in the result. Call from uniform control flow.
const RWG: u32 = 256u;
var<workgroup> red: array<vec4<f32>, RWG>;

fn tree_sum(t: u32, v: vec4<f32>) -> vec4<f32> {
    red[t] = v;
    workgroupBarrier();
    for (var s = RWG / 2u; s > 0u; s >>= 1u) {
        if t < s {
            red[t] += red[t + s];
        }
        workgroupBarrier();
    }
    let r = workgroupUniformLoad(&red[0]);
    workgroupBarrier();
    return r;
}

// Invocations that share one row of `len` items in `row_sums`: a power of two, as
// few as keep each invocation's loop at ≤ 32 items (≤ len / 256 past 8192 items), so
// that short rows do not pay a 256-wide tree. Twin: `kernels::lanes` in src/kernels/mod.rs.
fn lanes(len: u32) -> u32 {
    let want = (len + 31u) / 32u;
    if want <= 1u {
        return 1u;
    }
    return min(RWG, 1u << (32u - countLeadingZeros(want - 1u)));
}

// Fixed-order sums over segments of `lanes` consecutive invocations (a tree per
// segment), each invocation getting its segment's sum. Call from uniform control flow.
fn segment_sum(t: u32, lanes: u32, v: vec4<f32>) -> vec4<f32> {
    red[t] = v;
    workgroupBarrier();
    let lane = t % lanes;
    for (var s = lanes / 2u; s > 0u; s >>= 1u) {
        if lane < s {
            red[t] += red[t + s];
        }
        workgroupBarrier();
    }
    let r = red[t - lane];
    workgroupBarrier();
    return r;
}

// Max of `v` (≥ 0) over segments of `lanes` invocations, as `segment_sum`.
fn segment_max(t: u32, lanes: u32, v: f32) -> f32 {
    red[t] = vec4<f32>(v, 0.0, 0.0, 0.0);
    workgroupBarrier();
    let lane = t % lanes;
    for (var s = lanes / 2u; s > 0u; s >>= 1u) {
        if lane < s {
            red[t].x = max(red[t].x, red[t + s].x);
        }
        workgroupBarrier();
    }
    let r = red[t - lane].x;
    workgroupBarrier();
    return r;
}
