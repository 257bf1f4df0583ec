//! What a pipeline is specialised on: the tile geometry of the adapter (a source
//! constant) and the variant of a call (override constants).

use crate::options::{Activation, Formulation};

/// Tile geometry of the elementwise kernels: `wg` invocations × `vpt` quads of 4 pixels,
/// chosen per adapter: one SIMD chunk per workgroup on CPU adapters, more invocations on
/// GPUs (the measurements behind it: docs/performance.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Geometry {
    pub wg: u32,
    pub vpt: u32,
    /// CPU adapters: calls of at least this many pixels (B·N) run a softmax over few
    /// classes with `tile_sums` and `grad` unrolled over the classes
    /// (`shaders/unrolled/`, [`Variant::classes`]); `None` on GPUs (the class loops).
    pub unroll_from: Option<usize>,
}

/// Most classes the unrolled kernels take: their per-class state lives in registers,
/// and llvmpipe's compile time grows faster than the class count (a `tile_sums` and
/// `grad` pair: ~0.3 s at 3 classes, ~1.5 s at 19, ~9 s at 32; docs/performance.md).
pub const UNROLL_MAX_CLASSES: usize = 24;

/// Largest workgroup the unrolled `tile_sums` takes: its per-class sums,
/// `16 · UNROLL_MAX_CLASSES · wg` bytes of workgroup memory, stay within WebGPU's
/// default 16 KiB (CPU adapters run 8; `SEGLOSS_GEOMETRY` can ask for more).
pub const UNROLL_MAX_WG: u32 = 32;

/// Quads per invocation of the unrolled kernels (a tile of `wg · 16 · 4` pixels, 512 on
/// CPU adapters): their per-tile cost (the class sums' reduction, the coefficient
/// loads) spread over 4× the pixels of the class-loop tile, and each class row read
/// and written in longer runs (docs/performance.md).
pub const UNROLL_VPT: u32 = 16;

/// Fewest pixels per call (B·N) for which a CPU adapter compiles the unrolled kernels
/// (`Geometry::unroll_from`): below it the generic pipelines, shared by every class
/// count, are compiled once and the call is too small for the unrolling to pay for its
/// compilation.
pub const UNROLL_MIN_PIXELS: usize = 16384;

impl Geometry {
    /// For CPU adapters (lavapipe, WARP, SwiftShader).
    pub const CPU: Geometry = Geometry {
        wg: 8,
        vpt: 4,
        unroll_from: Some(UNROLL_MIN_PIXELS),
    };
    /// For GPUs.
    pub const GPU: Geometry = Geometry {
        wg: 64,
        vpt: 4,
        unroll_from: None,
    };

    /// The geometry for an adapter; `SEGLOSS_GEOMETRY=wg,vpt` overrides the tile,
    /// `SEGLOSS_UNROLL=0` turns the unrolled kernels off and `SEGLOSS_UNROLL=always`
    /// uses them on every call size, on any adapter whose workgroup is at most
    /// [`UNROLL_MAX_WG`] (tuning, measurements, tests).
    pub fn for_adapter(info: &wgpu::AdapterInfo) -> Geometry {
        let mut g = if info.device_type == wgpu::DeviceType::Cpu {
            Geometry::CPU
        } else {
            Geometry::GPU
        };
        if let Ok(v) = std::env::var("SEGLOSS_GEOMETRY") {
            let mut it = v.split(',').filter_map(|x| x.trim().parse::<u32>().ok());
            if let (Some(wg), Some(vpt)) = (it.next(), it.next()) {
                if wg.is_power_of_two() && (1..=256).contains(&wg) && (1..=256).contains(&vpt) {
                    (g.wg, g.vpt) = (wg, vpt);
                }
            }
        }
        match std::env::var("SEGLOSS_UNROLL").as_deref().map(str::trim) {
            Ok("0") => g.unroll_from = None,
            Ok("always") => g.unroll_from = Some(0),
            _ => {}
        }
        g
    }

    /// Pixels per tile.
    pub fn tile(&self) -> u32 {
        self.wg * self.vpt * 4
    }

    /// The WGSL constants every kernel is prefixed with.
    pub fn prelude(&self) -> String {
        format!(
            "const WG: u32 = {}u;\nconst VPT: u32 = {}u;\n",
            self.wg, self.vpt
        )
    }
}

/// A specialisation of the elementwise kernels, set with override constants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Variant {
    pub activation: Activation,
    pub formulation: Formulation,
    pub index_target: bool,
    pub has_mask: bool,
    /// Compound cross-entropy term: 0 none, 1 softmax CE, 2 KL, 3 binary CE (an
    /// override, not a params field: lavapipe runs both sides of a data-dependent
    /// branch, so unused terms must be compiled out).
    pub ce_kind: u8,
    /// Compound focal term: 0 none, 1 sigmoid, 2 softmax.
    pub focal_kind: u8,
    /// N is a multiple of 4: vec4 bindings (a source choice, not an override).
    pub aligned: bool,
    /// A softmax over more than one class chunk: normalisers and Σ_j h_j come from
    /// `norm` and `softmax_dot` through buffers.
    pub chunked: bool,
    /// `tile_sums` and `grad` unrolled over this many classes (a source choice, CPU
    /// adapters: [`Variant::unrolled_classes`]); 0: the class loops.
    pub classes: u8,
}

impl Variant {
    /// The class count to unroll `tile_sums` and `grad` over for this variant of a
    /// call with `classes` classes and `pixels` pixels (B·N) under geometry `g`, or 0:
    /// a CPU adapter's softmax over 2 … [`UNROLL_MAX_CLASSES`] classes without a focal
    /// term, on calls of at least [`Geometry::unroll_from`] pixels. There each pixel's
    /// logits are loaded once into registers and its softmax is computed once per pass,
    /// where the class loops load them three times and keep per-pixel state in arrays
    /// (docs/performance.md).
    pub fn unrolled_classes(&self, g: Geometry, classes: usize, pixels: usize) -> u8 {
        let fits = g.unroll_from.is_some_and(|from| pixels >= from)
            && g.wg <= UNROLL_MAX_WG
            && self.activation == Activation::Softmax
            && !self.chunked
            && self.focal_kind == 0
            && (2..=UNROLL_MAX_CLASSES).contains(&classes);
        if fits {
            classes as u8
        } else {
            0
        }
    }

    /// The tile geometry of this variant's elementwise kernels on a device of geometry
    /// `g`: the unrolled kernels take [`UNROLL_VPT`] quads per invocation.
    pub fn geometry(&self, g: Geometry) -> Geometry {
        if self.classes > 0 {
            Geometry {
                vpt: UNROLL_VPT,
                ..g
            }
        } else {
            g
        }
    }

    /// The unrolled variants the library can build for `classes` classes (for
    /// validation tests): softmax, not chunked, no focal term.
    pub fn unrolled(classes: u8) -> Vec<Variant> {
        Variant::all()
            .into_iter()
            .filter(|v| v.activation == Activation::Softmax && !v.chunked && v.focal_kind == 0)
            .map(|v| Variant { classes, ..v })
            .collect()
    }

    /// Whether a cross-entropy or focal term is fused in.
    pub fn compound(&self) -> bool {
        self.ce_kind != 0 || self.focal_kind != 0
    }

    /// Override constants of `shaders/shared/common.wgsl`.
    pub fn constants(&self) -> [(&'static str, f64); 8] {
        let act = match self.activation {
            Activation::Softmax => 0.0,
            Activation::Sigmoid => 1.0,
            Activation::None => 2.0,
        };
        let form = match self.formulation {
            Formulation::Soft => 0.0,
            Formulation::Squared => 1.0,
            Formulation::Classic => 2.0,
        };
        [
            ("ACTIVATION", act),
            ("FORMULATION", form),
            ("INDEX_TARGET", f64::from(u8::from(self.index_target))),
            ("HAS_MASK", f64::from(u8::from(self.has_mask))),
            ("COMPOUND", f64::from(u8::from(self.compound()))),
            ("CE_KIND", f64::from(self.ce_kind)),
            ("FOCAL_KIND", f64::from(self.focal_kind)),
            ("CHUNKED", f64::from(u8::from(self.chunked))),
        ]
    }

    /// Every variant the library can build (for validation tests).
    pub fn all() -> Vec<Variant> {
        let mut v = Vec::new();
        for activation in [Activation::Softmax, Activation::Sigmoid, Activation::None] {
            for formulation in [
                Formulation::Soft,
                Formulation::Squared,
                Formulation::Classic,
            ] {
                for index_target in [false, true] {
                    for has_mask in [false, true] {
                        for aligned in [false, true] {
                            // Compound terms by activation: softmax takes the softmax
                            // CE kinds, sigmoid the binary one; focal sigmoid with both.
                            let (ce, focal): (&[u8], &[u8]) = match activation {
                                Activation::Softmax => (&[0, 1, 2], &[0, 1, 2]),
                                Activation::Sigmoid => (&[0, 3], &[0, 1]),
                                Activation::None => (&[0], &[0]),
                            };
                            let chunked: &[bool] = match activation {
                                Activation::Softmax => &[false, true],
                                _ => &[false],
                            };
                            for &ce_kind in ce {
                                for &focal_kind in focal {
                                    for &chunked in chunked {
                                        v.push(Variant {
                                            activation,
                                            formulation,
                                            index_target,
                                            has_mask,
                                            ce_kind,
                                            focal_kind,
                                            aligned,
                                            chunked,
                                            classes: 0,
                                        });
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        v
    }
}
