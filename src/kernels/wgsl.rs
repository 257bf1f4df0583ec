//! WGSL assembly. A shader file names the shared files it uses with `#import NAME` lines
//! (as vello's shaders do); they are resolved here, depth first, each file once, so a
//! kernel file says what it uses and nothing is glued by a list in Rust. `load`, `store`
//! and `touch` resolve to the vec4 or the scalar twin by the call's alignment. A kernel
//! unrolled over the classes (`shaders/unrolled/`) gets `const CLASSES` and each of its
//! `#for c` … `#end` blocks repeated for c = 0 … CLASSES − 1, `{c}` replaced by c.

use super::Geometry;

/// The shared files by import name.
const SHARED: &[(&str, &str)] = &[
    ("common", include_str!("../../shaders/shared/common.wgsl")),
    (
        "load_vec4",
        include_str!("../../shaders/shared/load_vec4.wgsl"),
    ),
    (
        "load_scalar",
        include_str!("../../shaders/shared/load_scalar.wgsl"),
    ),
    (
        "store_vec4",
        include_str!("../../shaders/shared/store_vec4.wgsl"),
    ),
    (
        "store_scalar",
        include_str!("../../shaders/shared/store_scalar.wgsl"),
    ),
    (
        "touch_vec4",
        include_str!("../../shaders/shared/touch_vec4.wgsl"),
    ),
    (
        "touch_scalar",
        include_str!("../../shaders/shared/touch_scalar.wgsl"),
    ),
    ("pixels", include_str!("../../shaders/shared/pixels.wgsl")),
    (
        "pixel_terms",
        include_str!("../../shaders/shared/pixel_terms.wgsl"),
    ),
    (
        "load_norms",
        include_str!("../../shaders/shared/load_norms.wgsl"),
    ),
    (
        "softmax_dot",
        include_str!("../../shaders/shared/softmax_dot.wgsl"),
    ),
    ("items", include_str!("../../shaders/shared/items.wgsl")),
    ("terms", include_str!("../../shaders/shared/terms.wgsl")),
    ("reduce", include_str!("../../shaders/shared/reduce.wgsl")),
];

/// The kernel file `body` with its imports resolved, after the geometry constants.
pub fn assemble(body: &str, g: Geometry, aligned: bool) -> String {
    let mut out = g.prelude();
    let mut seen = Vec::new();
    include(body, aligned, &mut seen, &mut out);
    out
}

/// `assemble` for a kernel unrolled over `classes` classes: `const CLASSES` and the
/// `#for c` blocks expanded.
pub fn assemble_unrolled(body: &str, g: Geometry, aligned: bool, classes: u32) -> String {
    let mut text = String::new();
    let mut block: Option<String> = None;
    for line in body.lines() {
        match (line.trim(), &mut block) {
            ("#for c", None) => block = Some(String::new()),
            ("#end", Some(b)) => {
                for c in 0..classes {
                    text.push_str(&b.replace("{c}", &c.to_string()));
                }
                block = None;
            }
            (_, Some(b)) => {
                b.push_str(line);
                b.push('\n');
            }
            (_, None) => {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    let mut out = assemble(&text, g, aligned);
    out.insert_str(0, &format!("const CLASSES: u32 = {classes}u;\n"));
    out
}

/// The shared file an import names (`load` / `store` / `touch`: the twin for the alignment).
fn resolve(name: &str, aligned: bool) -> (&'static str, Option<&'static str>) {
    let name: &'static str = match (name, aligned) {
        ("load", true) => "load_vec4",
        ("load", false) => "load_scalar",
        ("store", true) => "store_vec4",
        ("store", false) => "store_scalar",
        ("touch", true) => "touch_vec4",
        ("touch", false) => "touch_scalar",
        _ => SHARED
            .iter()
            .map(|(n, _)| *n)
            .find(|n| *n == name)
            .unwrap_or("unknown"),
    };
    let src = SHARED.iter().find(|(n, _)| *n == name).map(|(_, s)| *s);
    (name, src)
}

fn include(src: &str, aligned: bool, seen: &mut Vec<&'static str>, out: &mut String) {
    for line in src.lines() {
        match line.strip_prefix("#import ") {
            Some(name) => {
                let (name, file) = resolve(name.trim(), aligned);
                if seen.contains(&name) {
                    continue;
                }
                seen.push(name);
                match file {
                    Some(file) => include(file, aligned, seen, out),
                    // Left in place: naga then reports the line (a test covers every
                    // kernel's assembly).
                    None => out.push_str(&format!("{line} // unknown import\n")),
                }
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_resolve_once_in_dependency_order() {
        let g = Geometry::CPU;
        let src = assemble("#import pixels\n#import common\nfn main() {}", g, true);
        assert!(!src.contains("#import"), "{src}");
        // Positions in the assembled source (usize::MAX when missing fails the asserts).
        let at = |s: &str| src.find(s).unwrap_or(usize::MAX);
        let (common, load, pixels) = (at("struct Params"), at("fn load_x"), at("fn load_quad"));
        assert!(common < load && load < pixels && pixels < usize::MAX);
        assert_eq!(src.matches("struct Params").count(), 1);
        let scalar = assemble("#import load", g, false);
        assert!(scalar.contains("array<f32>") && !scalar.contains("array<vec4<f32>>;"));
        // `touch` brings the store twin of the same alignment (its `grad` binding).
        for aligned in [false, true] {
            let touch = assemble("#import touch", g, aligned);
            let store = assemble("#import store", g, aligned);
            assert!(touch.contains("fn touch_grad") && touch.contains(&store[g.prelude().len()..]));
        }
        assert!(assemble("#import nothing", g, true).contains("unknown import"));
    }

    #[test]
    fn for_blocks_repeat_per_class() {
        let body = "#import common\nfn f() {\n#for c\n    let x{c} = {c}u;\n#end\n}\n";
        let src = assemble_unrolled(body, Geometry::CPU, true, 3);
        assert!(src.starts_with("const CLASSES: u32 = 3u;\n"), "{src}");
        let lets: Vec<_> = src.lines().filter(|l| l.contains("let x")).collect();
        assert_eq!(
            lets,
            ["    let x0 = 0u;", "    let x1 = 1u;", "    let x2 = 2u;"]
        );
        assert!(!src.contains("#for") && !src.contains("#end") && !src.contains("{c}"));
    }
}
