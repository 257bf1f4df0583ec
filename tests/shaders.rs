//! Every kernel, in every variant the library builds, is parsed and validated by naga
//! and translated to SPIR-V (Vulkan), MSL (Metal), HLSL (DX12) and GLSL ES 3.10 (GL ES);
//! bindings, workgroup sizes and the `Params` layout must match the Rust side.

use naga::back::{glsl, hlsl, msl, spv};
use naga::valid::{Capabilities, ValidationFlags, Validator};
use segloss::kernels::{Access, Geometry, Kernel, Params, Variant};

fn validate(module: &naga::Module) -> naga::valid::ModuleInfo {
    Validator::new(ValidationFlags::all(), Capabilities::empty())
        .validate(module)
        .unwrap_or_else(|e| panic!("validation: {}", e.emit_to_string("")))
}

/// The module with `v`'s overrides applied (or the defaults for kernels without variants).
fn specialise(k: Kernel, g: Geometry, v: Variant) -> (naga::Module, naga::valid::ModuleInfo) {
    let src = k.variant_source(g, v);
    let module = naga::front::wgsl::parse_str(&src)
        .unwrap_or_else(|e| panic!("{}: {}", k.name(), e.emit_to_string(&src)));
    let info = validate(&module);
    let constants: naga::back::PipelineConstants = if k.has_variants() {
        v.constants()
            .iter()
            .map(|(n, x)| (n.to_string(), *x))
            .collect()
    } else {
        Default::default()
    };
    let (m, i) = naga::back::pipeline_constants::process_overrides(
        &module,
        &info,
        Some((naga::ShaderStage::Compute, "main")),
        &constants,
    )
    .unwrap_or_else(|e| panic!("{} {v:?}: overrides: {e}", k.name()));
    (m.into_owned(), i.into_owned())
}

fn variants(k: Kernel) -> Vec<Variant> {
    if k.has_variants() {
        Variant::all()
    } else {
        vec![Variant::default()]
    }
}

/// Translates a specialised module to SPIR-V, MSL, HLSL and GLSL ES 3.10.
fn translate(what: &str, module: &naga::Module, info: &naga::valid::ModuleInfo) {
    spv::write_vec(
        module,
        info,
        &spv::Options::default(),
        Some(&spv::PipelineOptions {
            shader_stage: naga::ShaderStage::Compute,
            entry_point: "main".into(),
        }),
    )
    .unwrap_or_else(|e| panic!("{what}: SPIR-V: {e}"));
    msl::write_string(
        module,
        info,
        &msl::Options::default(),
        &msl::PipelineOptions {
            entry_point: Some((naga::ShaderStage::Compute, "main".into())),
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{what}: MSL: {e}"));
    let mut hlsl_out = String::new();
    let hopts = hlsl::Options::default();
    let hpipe = hlsl::PipelineOptions {
        entry_point: Some((naga::ShaderStage::Compute, "main".into())),
    };
    hlsl::Writer::new(&mut hlsl_out, &hopts, &hpipe)
        .write(module, info, None)
        .unwrap_or_else(|e| panic!("{what}: HLSL: {e}"));
    let mut glsl_out = String::new();
    let gopts = glsl::Options {
        version: glsl::Version::Embedded {
            version: 310,
            is_webgl: false,
        },
        ..Default::default()
    };
    let gpipe = glsl::PipelineOptions {
        shader_stage: naga::ShaderStage::Compute,
        entry_point: "main".into(),
        multiview: None,
    };
    glsl::Writer::new(
        &mut glsl_out,
        module,
        info,
        &gopts,
        &gpipe,
        Default::default(),
    )
    .and_then(|mut w| w.write().map(|_| ()))
    .unwrap_or_else(|e| panic!("{what}: GLSL ES: {e}"));
}

#[test]
fn every_kernel_and_variant_validates_and_translates_to_four_targets() {
    let mut translated = 0;
    for g in [Geometry::CPU, Geometry::GPU] {
        for k in Kernel::ALL {
            for v in variants(k) {
                let (module, info) = specialise(k, g, v);
                translate(&format!("{} {g:?} {v:?}", k.name()), &module, &info);
                translated += 1;
            }
        }
    }
    // Counted from the SPEC's option space, not from the list looped over: per
    // formulation (3) × target kind (2) × mask (2) × alignment (2), softmax has 3 CE
    // kinds × 3 focal kinds × chunked or not (18), sigmoid 2 × 2 (4), none 1:
    // 24 × (18 + 4 + 1) = 552 variants, for each of the 4 kernels with variants (norm,
    // tile_sums, softmax_dot, grad); the 6 others have one form. Two geometries.
    const VARIANTS: usize = 3 * 2 * 2 * 2 * (3 * 3 * 2 + 2 * 2 + 1);
    assert_eq!(VARIANTS, 552);
    assert_eq!(Variant::all().len(), VARIANTS, "the variant space changed");
    assert_eq!(Kernel::ALL.len(), 10);
    assert_eq!(translated, 2 * (4 * VARIANTS + 6));
}

#[test]
fn bindings_and_workgroup_sizes_match_the_rust_side() {
    for (k, g) in Kernel::ALL
        .iter()
        .flat_map(|k| [(*k, Geometry::CPU), (*k, Geometry::GPU)])
    {
        // The parsed module, before overrides compact away bindings a variant leaves
        // unused.
        let module = naga::front::wgsl::parse_str(&k.source(g, true)).unwrap();
        let mut found: Vec<(u32, Access)> = module
            .global_variables
            .iter()
            .filter_map(|(_, g)| {
                let rb = g.binding.as_ref()?;
                assert_eq!(rb.group, 0, "{}: one bind group", k.name());
                let access = match g.space {
                    naga::AddressSpace::Storage { access } => {
                        if access.contains(naga::StorageAccess::STORE) {
                            Access::ReadWrite
                        } else {
                            Access::Read
                        }
                    }
                    s => panic!("{}: unexpected space {s:?}", k.name()),
                };
                Some((rb.binding, access))
            })
            .collect();
        found.sort_by_key(|b| b.0);
        let expected: Vec<(u32, Access)> = k
            .bindings()
            .iter()
            .enumerate()
            .map(|(i, a)| (i as u32, *a))
            .collect();
        assert_eq!(found, expected, "{}: bindings", k.name());
        let ep = &module.entry_points[0];
        let wg = k.workgroup_size(g);
        assert_eq!(
            ep.workgroup_size,
            [wg, 1, 1],
            "{}: workgroup size",
            k.name()
        );
    }
}

#[test]
fn params_struct_matches_wgsl_layout() {
    let src = Kernel::TileSums.source(Geometry::GPU, true);
    let module = naga::front::wgsl::parse_str(&src).expect("parses");
    let span = module
        .types
        .iter()
        .find(|(_, t)| t.name.as_deref() == Some("Params"))
        .map(|(_, t)| match &t.inner {
            naga::TypeInner::Struct { span, .. } => *span,
            other => panic!("Params is {other:?}"),
        })
        .expect("Params declared");
    assert_eq!(span as usize, std::mem::size_of::<Params>());
}

/// FNV-1a, 64 bits.
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[test]
fn gpu_adapters_run_the_class_loops_unchanged() {
    // A GPU adapter's pipelines are built from the class-loop sources whatever the call
    // (the unrolled twins are for CPU adapters only), and those sources are the ones the
    // unrolled kernels landed next to: the fingerprint of every kernel's GPU-geometry
    // source, both alignments, recorded before the change. Identical WGSL text gives
    // identical naga output. Update it only with a deliberate change of a GPU kernel
    // (issue 35 changed counts.wgsl: the row's histogram only, `params.px`, runs; issue
    // 36 added pool.wgsl).
    const GPU_SOURCES: u64 = 17_497_919_565_710_799_468;
    let g = Geometry::GPU;
    let mut all = String::new();
    for k in Kernel::ALL {
        for v in variants(k) {
            for classes in [0, 2, 19, segloss::kernels::UNROLL_MAX_CLASSES as u8] {
                let v = Variant { classes, ..v };
                let unrolled = v.unrolled_classes(g, usize::from(classes), 1 << 20);
                assert_eq!(unrolled, 0, "{} {v:?}: unrolled on a GPU", k.name());
                let v = Variant {
                    classes: unrolled,
                    ..v
                };
                assert_eq!(k.variant_source(g, v), k.source(g, v.aligned));
            }
        }
        for aligned in [false, true] {
            all.push_str(&k.source(g, aligned));
        }
    }
    assert_eq!(fnv(&all), GPU_SOURCES, "the GPU kernels' sources changed");
}

#[test]
fn unrolled_kernels_validate_and_translate_to_four_targets() {
    // CPU adapters' twins of tile_sums and grad, for the smallest, a typical and the
    // largest class count they take, in every variant they are built for.
    let g = Geometry::CPU;
    let mut translated = 0;
    for classes in [2, 19, segloss::kernels::UNROLL_MAX_CLASSES as u8] {
        for k in [Kernel::TileSums, Kernel::Grad] {
            for v in Variant::unrolled(classes) {
                assert_eq!(v.unrolled_classes(g, classes.into(), 1 << 20), classes);
                let src = k.variant_source(g, v);
                assert!(src.contains(&format!("x{}", classes - 1)), "{src}");
                let (module, info) = specialise(k, g, v);
                translate(&format!("{} {v:?}", k.name()), &module, &info);
                translated += 1;
            }
        }
    }
    // Softmax without focal, not chunked: 3 formulations × 2 targets × 2 masks × 2
    // alignments × 3 CE kinds, for 2 kernels and 3 class counts.
    assert_eq!(translated, 3 * 2 * (3 * 2 * 2 * 2 * 3));
}
