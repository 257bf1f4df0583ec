// Shared by every segloss kernel: the params block, the tile geometry and the variant
// constants. Keep `Params` in sync with `src/kernels/params.rs`, which a test checks.
//
// Every kernel binds `params` as a read-only storage buffer at binding 0, not as a
// uniform (lavapipe re-JITs shaders per uniform value set: docs/performance.md).

// One loss call's shape and options (SPEC §1-§2).
struct Params {
    batch: u32,        // B
    classes: u32,      // C (all classes, including a dropped background)
    pixels: u32,       // N of the bound buffers (all pixels, or one chunk's)
    tiles: u32,        // ceil(N / TILE): partial sums per (b, c)
    class_start: u32,  // 0, or 1 when the background is dropped (SPEC §2.3)
    ignore_index: u32, // index targets: a pixel holding this value is ignored
    has_ignore: u32,   // 1 when ignore_index is set
    tile_base: u32,    // global index of this dispatch's first tile (partials)
    threshold: f32,    // present(threshold) active-class rule
    alpha: f32,
    beta: f32,
    smooth_nr: f32,
    smooth_dr: f32,
    gamma: f32,
    w_dataset: f32,
    w_image: f32,
    w_class: f32,
    log_loss: u32,
    reduction: u32,    // 0 mean, 1 sum, 2 none
    has_weights: u32,  // 1 when class weights are bound
    present_all: u32,  // 1: every item is active (mode `all`)
    map_pixels: u32,     // N of the whole image (mask addressing)
    pixel_base: u32,     // global pixel of the bound buffers' pixel 0 (chunks)
    load_tile_base: u32, // this dispatch's first tile within the bound buffers
    phase: u32,        // finalize: 1 summarize, 2 finish, 3 both
    // Compound losses (see shared/pixel_terms.wgsl).
    overlap_weight: f32, // λ_overlap
    ce_kind: u32,        // 0 none, 1 softmax CE, 2 KL, 3 binary CE
    ce_weight: f32,      // λ_ce
    label_smoothing: f32,
    focal_kind: u32,     // 0 none, 1 sigmoid, 2 softmax
    focal_weight: f32,   // λ_focal
    focal_gamma: f32,
    alpha_mode: u32,     // 0 none, 1 scalar (linear in y), 2 per class (where y = 1)
    check_probabilities: u32, // 1: activation none, inputs must lie in [0, 1]
    gdl_weight: u32,          // Generalized Dice: 0 no, 1 simple 1/g, 2 square 1/g², 3 uniform
    grad_scale: f32,          // the gradient's factor (1, or a framework's upstream gradient)
}

fn sum4(v: vec4<f32>) -> f32 {
    return (v.x + v.y) + (v.z + v.w);
}

// Finite test per lane, on the bits rather than `x != x`: WGSL lets compilers assume
// floats are finite, so a float comparison could be folded away; an integer test cannot.
fn finite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}

fn finite4(x: vec4<f32>) -> vec4<bool> {
    return (bitcast<vec4<u32>>(x) & vec4<u32>(0x7f800000u)) != vec4<u32>(0x7f800000u);
}

// y in [0, 1] per lane, on the bits too: non-negative floats order as their bit
// patterns, 1.0 is 0x3f800000, and every NaN, infinity and negative number (sign bit set)
// lies above it, except −0.0 (0x80000000), which is 0. Two integer compares, cheaper
// than the float form (docs/performance.md).
fn in_unit4(y: vec4<f32>) -> vec4<bool> {
    let u = bitcast<vec4<u32>>(y);
    return (u <= vec4<u32>(0x3f800000u)) | (u == vec4<u32>(0x80000000u));
}


// Tile geometry. `WG` (workgroup size) and `VPT` (pixel quads per invocation) are
// prepended as constants by `src/kernels/variant.rs` (`Geometry`), chosen per adapter. A tile,
// WG·VPT quads of 4 pixels, is the unit of the first reduction level: its partial sum
// depends only on its pixels, so results do not depend on how tiles are dispatched.
const QUADS: u32 = WG * VPT;  // quads per tile
const TILE: u32 = QUADS * 4u; // pixels per tile

// Variants, set as pipeline-overridable constants (`src/kernels/variant.rs`, `Variant`).
override ACTIVATION: u32 = 0u;  // 0 softmax, 1 sigmoid, 2 none
override FORMULATION: u32 = 0u; // 0 soft (L1), 1 squared (L2), 2 classic (product)
override INDEX_TARGET: bool = false;
override HAS_MASK: bool = false;
override COMPOUND: bool = false; // a cross-entropy or focal term is added
override CE_KIND: u32 = 0u;       // its kinds (params.ce_kind / focal_kind), compiled in:
override FOCAL_KIND: u32 = 0u;    // lavapipe runs both sides of data-dependent branches

// Status bits raised by the statistics kernel (integer atomics only: deterministic).
const STATUS_NONFINITE_INPUT: u32 = 1u;
const STATUS_BAD_SOFT_TARGET: u32 = 2u;
const STATUS_BAD_INDEX: u32 = 4u;
const STATUS_BAD_PROBABILITY: u32 = 8u; // activation none: an input outside [0, 1]
const STATUS_NONFINITE_RESULT: u32 = 16u; // finalize / coef: the loss or a coefficient overflowed
// Not an error: the classic formulation met a kept soft target strictly inside (0, 1)
// (the soft-label bug; reported by the host, an error only when the caller asks).
const STATUS_SOFT_CLASSIC: u32 = 32u;
// The bits that make a result invalid (everything but the overflow flag of an earlier
// finishing call and the notice above).
const STATUS_INVALID: u32 = ~(STATUS_NONFINITE_RESULT | STATUS_SOFT_CLASSIC);

fn sigmoid(x: vec4<f32>) -> vec4<f32> {
    return 1.0 / (1.0 + exp(-x));
}

// Classes per chunk: an elementwise workgroup handles one (image, class chunk) row, so
// that no invocation loops over more than CLASS_CHUNK classes. llvmpipe (lavapipe and
// GL) ends every loop of an invocation once 65 535 iterations of all its loops together
// have run (LP_MAX_TGSI_LOOP_ITERATIONS, shared by every loop of a shader), silently: a
// loop over all C classes came out wrong from C ≈ 5 000 on. Every loop of every kernel
// is therefore bounded by a constant, a chunk, or a 256-way split of B or C.
const CLASS_CHUNK: u32 = 256u;
// A softmax with more than one chunk reads its normalisers (`norm.wgsl`) and, in the
// gradient, its Σ_j g_j p_j (`softmax_dot.wgsl`) from buffers.
override CHUNKED: bool = false;

// Largest workgroup count per dispatch dimension that every device allows (WebGPU's
// default limit). Dispatches over more groups fold them into a second dimension.
const DIM_MAX: u32 = 65535u;

fn chunks() -> u32 {
    return (params.classes + CLASS_CHUNK - 1u) / CLASS_CHUNK;
}

// The (image, class chunk) row of an elementwise workgroup: dispatched as
// (tiles, min(rows, DIM_MAX), ceil(rows / DIM_MAX)) with rows = B · chunks.
struct Row {
    b: u32,
    chunk: u32,
    c_lo: u32,
    c_hi: u32,
    valid: bool,
}

fn row_of(wid: vec3<u32>) -> Row {
    let n = chunks();
    let r = wid.y + wid.z * DIM_MAX;
    let chunk = r % n;
    let c_lo = chunk * CLASS_CHUNK;
    return Row(r / n, chunk, c_lo, min(c_lo + CLASS_CHUNK, params.classes), r < params.batch * n);
}

// Flat index of a workgroup dispatched as (min(g, DIM_MAX), ceil(g / DIM_MAX)).
fn flat_group(wid: vec3<u32>) -> u32 {
    return wid.x + wid.y * DIM_MAX;
}
