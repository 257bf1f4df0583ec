//! `segloss evaluate` on folders this test writes: `.npy` (label maps of several integer
//! dtypes and float scores) and `.nii.gz` (NIfTI-1 label volumes), its JSON against the
//! library's own metrics, and a clear error (naming the file, no JSON, exit code 2) for
//! each kind of bad input. (Moved from the library's `tests/evaluate_tool.rs` with the
//! command.)

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use common::Rng;
use segloss::metrics::{Labels, Metrics, Prediction};
use segloss::{Context, Shape};
use serde_json::Value;

/// A version 1.0 `.npy` file: `descr` (e.g. "<i4") and raw little-endian data.
fn write_npy(path: &Path, descr: &str, shape: &[usize], data: &[u8]) {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let tuple = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {tuple}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut f = std::fs::File::create(path).unwrap();
    f.write_all(b"\x93NUMPY\x01\x00").unwrap();
    f.write_all(&(header.len() as u16).to_le_bytes()).unwrap();
    f.write_all(header.as_bytes()).unwrap();
    f.write_all(data).unwrap();
}

/// A gzipped NIfTI-1 file of u8 labels with spatial `dims`.
fn write_nii_gz(path: &Path, dims: &[usize], labels: &[u8]) {
    let mut h = vec![0u8; 352];
    h[0..4].copy_from_slice(&348i32.to_le_bytes());
    let mut dim = [1i16; 8];
    dim[0] = dims.len() as i16;
    for (i, &d) in dims.iter().enumerate() {
        dim[i + 1] = d as i16;
    }
    for (i, d) in dim.iter().enumerate() {
        h[40 + 2 * i..42 + 2 * i].copy_from_slice(&d.to_le_bytes());
    }
    h[70..72].copy_from_slice(&2i16.to_le_bytes()); // NIFTI_TYPE_UINT8
    h[72..74].copy_from_slice(&8i16.to_le_bytes()); // bitpix
    for i in 0..8 {
        h[76 + 4 * i..80 + 4 * i].copy_from_slice(&1f32.to_le_bytes());
    }
    h[108..112].copy_from_slice(&352f32.to_le_bytes()); // vox_offset
    h[344..348].copy_from_slice(b"n+1\0");
    let f = std::fs::File::create(path).unwrap();
    let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
    gz.write_all(&h).unwrap();
    gz.write_all(labels).unwrap();
    gz.finish().unwrap();
}

fn tempdir(name: &str) -> PathBuf {
    let d = common::tempdir(&format!("evaluate-{name}"));
    std::fs::create_dir_all(d.join("pred")).unwrap();
    std::fs::create_dir_all(d.join("target")).unwrap();
    d
}

/// Runs `segloss evaluate` on `dir`'s pred/ and target/ folders: (success, stdout and
/// stderr, the JSON written). A run on the CPU fallback fails the test in CI.
fn run(dir: &Path, classes: usize, extra: &[&str]) -> (bool, String, Option<Value>) {
    let json = dir.join("out.json");
    let _ = std::fs::remove_file(&json);
    let (pred, target) = (dir.join("pred"), dir.join("target"));
    let classes = classes.to_string();
    let mut args = vec![
        "evaluate",
        "--pred",
        pred.to_str().unwrap(),
        "--target",
        target.to_str().unwrap(),
        "--classes",
        &classes,
        "--json",
        json.to_str().unwrap(),
    ];
    args.extend(extra);
    let out = common::segloss(&args);
    let text = common::text(&out);
    common::ran_on_gpu(&out, "evaluate");
    let v = std::fs::read_to_string(&json)
        .ok()
        .map(|s| serde_json::from_str(&s).unwrap());
    if v.is_none() {
        assert_ne!(out.status.code(), Some(0), "no JSON after success: {text}");
    } else {
        assert_eq!(out.status.code(), Some(0), "{text}");
    }
    if !out.status.success() {
        assert_eq!(out.status.code(), Some(2), "an error exits with 2: {text}");
    }
    (out.status.success(), text, v)
}

fn close(a: &Value, b: f64, what: &str) {
    let a = a.as_f64().unwrap_or(f64::NAN);
    assert!(
        (a - b).abs() < 1e-12 || (a.is_nan() && b.is_nan()),
        "{what}: {a} vs {b}"
    );
}

#[test]
fn evaluate_on_npy_and_nifti_folders_matches_the_library() {
    let mut rng = Rng::new(77);
    let c = 4;
    // .npy: three images of different spatial shapes and dtypes, one as float scores.
    let dir = tempdir("npy");
    let mut want = Metrics::new(&Context::cpu(), c, Some(255)).unwrap();
    for (i, dims) in [vec![6usize, 5], vec![4, 7], vec![3, 3, 3]]
        .into_iter()
        .enumerate()
    {
        let n: usize = dims.iter().product();
        let label: Vec<u8> = (0..n)
            .map(|_| {
                if rng.below(8) == 0 {
                    255
                } else {
                    rng.below(c) as u8
                }
            })
            .collect();
        let name = format!("img{i}");
        write_npy(
            &dir.join("target").join(format!("{name}.npy")),
            "|u1",
            &dims,
            &label,
        );
        let mut full = vec![1, c];
        full.extend(&dims);
        let shape = Shape::new(&full).unwrap();
        let l64: Vec<i64> = label.iter().map(|&v| i64::from(v)).collect();
        if i == 1 {
            let scores: Vec<f32> = (0..c * n).map(|_| rng.range(-2.0, 2.0) as f32).collect();
            let mut sd = vec![c];
            sd.extend(&dims);
            write_npy(
                &dir.join("pred").join(format!("{name}.npy")),
                "<f4",
                &sd,
                bytemuck::cast_slice(&scores),
            );
            want.update(&shape, Prediction::Scores(&scores), Labels::I64(&l64), None)
                .unwrap();
        } else {
            let p: Vec<i32> = (0..n).map(|_| rng.below(c) as i32).collect();
            write_npy(
                &dir.join("pred").join(format!("{name}.npy")),
                "<i4",
                &dims,
                bytemuck::cast_slice(&p),
            );
            let p64: Vec<i64> = p.iter().map(|&v| i64::from(v)).collect();
            want.update(&shape, Prediction::LabelsI64(&p64), Labels::I64(&l64), None)
                .unwrap();
        }
    }
    let (ok, text, json) = run(
        &dir,
        c,
        &["--ignore-index", "255", "--worst", "50", "--worst", "5"],
    );
    assert!(ok, "{text}");
    let j = json.unwrap();
    let r = want.result().unwrap();
    assert_eq!(j["images"], 3);
    assert_eq!(j["classes"], c);
    for (k, v) in [
        ("miou_d", r.miou_d),
        ("mdice_d", r.mdice_d),
        ("miou_i", r.miou_i),
        ("mdice_i", r.mdice_i),
        ("miou_c", r.miou_c),
        ("mdice_c", r.mdice_c),
    ] {
        close(&j[k], v, k);
    }
    for (a, b) in j["iou_d_per_class"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&r.iou_d_per_class)
    {
        close(a, b.unwrap_or(f64::NAN), "iou_d_per_class");
    }
    let w = want.worst(50.0).unwrap();
    close(&j["worst"]["50"]["miou_i"], w.miou_i, "worst 50");
    close(
        &j["worst"]["5"]["mdice_c"],
        want.worst(5.0).unwrap().mdice_c,
        "worst 5",
    );
    let names: Vec<&str> = j["per_image"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["img0", "img1", "img2"]);
    close(
        &j["per_image"][1]["miou"],
        r.per_image[1].miou.unwrap(),
        "per image",
    );
    let keys: Vec<&String> = j.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 12, "{keys:?}");

    // .nii.gz: two label volumes.
    let dir = tempdir("nifti");
    let mut want = Metrics::new(&Context::cpu(), 3, None).unwrap();
    for i in 0..2 {
        let dims = [5usize, 4, 3];
        let label: Vec<u8> = (0..60).map(|_| rng.below(3) as u8).collect();
        let pred: Vec<u8> = (0..60).map(|_| rng.below(3) as u8).collect();
        write_nii_gz(
            &dir.join("target").join(format!("vol{i}.nii.gz")),
            &dims,
            &label,
        );
        write_nii_gz(
            &dir.join("pred").join(format!("vol{i}.nii.gz")),
            &dims,
            &pred,
        );
        let shape = Shape::new(&[1, 3, 5, 4, 3]).unwrap();
        let (p, l): (Vec<u32>, Vec<u32>) = (
            pred.iter().map(|&v| u32::from(v)).collect(),
            label.iter().map(|&v| u32::from(v)).collect(),
        );
        want.update(&shape, Prediction::Labels(&p), Labels::U32(&l), None)
            .unwrap();
    }
    let (ok, text, json) = run(&dir, 3, &[]);
    assert!(ok, "{text}");
    close(
        &json.unwrap()["miou_i"],
        want.result().unwrap().miou_i,
        "nifti miou_i",
    );
}

#[test]
fn bad_inputs_name_the_file_and_write_no_json() {
    let c = 3;
    type Make = Box<dyn Fn(&Path)>;
    let cases: [(&str, Make); 4] = [
        (
            "no target named",
            Box::new(|d: &Path| {
                write_npy(
                    &d.join("pred/a.npy"),
                    "<i4",
                    &[2, 2],
                    bytemuck::cast_slice(&[0i32, 1, 2, 0]),
                );
            }),
        ),
        (
            "b.npy",
            Box::new(|d: &Path| {
                write_npy(
                    &d.join("pred/b.npy"),
                    "<i4",
                    &[2, 2],
                    bytemuck::cast_slice(&[0i32, 1, 2, 0]),
                );
                write_npy(
                    &d.join("target/b.npy"),
                    "<i4",
                    &[2, 2],
                    bytemuck::cast_slice(&[0i32, 1, 7, 0]),
                );
            }),
        ),
        (
            "spatial shape",
            Box::new(|d: &Path| {
                write_npy(
                    &d.join("pred/c.npy"),
                    "<i4",
                    &[2, 2],
                    bytemuck::cast_slice(&[0i32, 1, 2, 0]),
                );
                write_npy(
                    &d.join("target/c.npy"),
                    "<i4",
                    &[4],
                    bytemuck::cast_slice(&[0i32, 1, 2, 0]),
                );
            }),
        ),
        (
            "dtype",
            Box::new(|d: &Path| {
                write_npy(
                    &d.join("pred/e.npy"),
                    "<i4",
                    &[2],
                    bytemuck::cast_slice(&[0i32, 1]),
                );
                write_npy(&d.join("target/e.npy"), "<c8", &[2], &[0u8; 16]);
            }),
        ),
    ];
    for (i, (want, make)) in cases.iter().enumerate() {
        let dir = tempdir(&format!("bad{i}"));
        make(&dir);
        let (ok, text, json) = run(&dir, c, &[]);
        assert!(!ok, "case {i} succeeded: {text}");
        assert!(
            text.contains(want),
            "case {i}: {text:?} does not mention {want:?}"
        );
        assert!(json.is_none(), "case {i} wrote JSON");
    }
}

#[test]
fn every_counting_path_writes_the_same_json_and_stops_at_the_first_bad_pair() {
    // 40 pairs through the streamed pipeline (more than the decode queue and than one
    // device readback batch), one prediction as scores: the default (a CPU adapter
    // counts on the host), a named adapter (counted by the shader) and the CPU
    // reference write the same JSON.
    let mut rng = Rng::new(35);
    let c = 4;
    let dir = tempdir("paths");
    let dims = [48usize, 64];
    let n = dims.iter().product::<usize>();
    for i in 0..40 {
        let mut label = Vec::with_capacity(n);
        while label.len() < n {
            let v = if rng.below(9) == 0 {
                255
            } else {
                rng.below(c) as u8
            };
            label.extend(std::iter::repeat_n(
                v,
                (1 + rng.below(30)).min(n - label.len()),
            ));
        }
        let name = format!("case{i:02}.npy");
        write_npy(&dir.join("target").join(&name), "|u1", &dims, &label);
        if i == 7 {
            let s: Vec<f32> = (0..c * n).map(|_| rng.range(-2.0, 2.0) as f32).collect();
            let sd = [c, dims[0], dims[1]];
            let p = dir.join("pred").join(&name);
            write_npy(&p, "<f4", &sd, bytemuck::cast_slice(&s));
        } else {
            let p: Vec<u8> = label
                .iter()
                .map(|&v| {
                    if v == 255 || rng.below(4) == 0 {
                        rng.below(c) as u8
                    } else {
                        v
                    }
                })
                .collect();
            write_npy(&dir.join("pred").join(&name), "|u1", &dims, &p);
        }
    }
    let ignore = ["--ignore-index", "255"];
    let (ok, text, auto) = run(&dir, c, &ignore);
    assert!(ok, "{text}");
    let auto = auto.unwrap();
    assert_eq!(auto["images"], 40);
    let (ok, text, device) = run(&dir, c, &[&ignore[..], &["--adapter", "0"]].concat());
    assert!(ok, "{text}");
    assert!(!text.contains("counted on the host"), "{text}");
    assert_eq!(device.unwrap(), auto, "--adapter 0 vs the default");
    let (ok, text, host) = run(&dir, c, &[&ignore[..], &["--cpu"]].concat());
    assert!(ok, "{text}");
    assert_eq!(host.unwrap(), auto, "--cpu vs the default");

    // A label out of range in the 23rd target: an error naming it on every path, no
    // JSON (the pairs before it were counted, the ones after it never decoded).
    let bad = dir.join("target").join("case22.npy");
    write_npy(&bad, "|u1", &dims, &vec![9u8; n]);
    for extra in [&[][..], &["--adapter", "0"], &["--cpu"]] {
        let (ok, text, json) = run(&dir, c, &[&ignore[..], extra].concat());
        assert!(!ok && json.is_none(), "{extra:?}: {text}");
        assert!(text.contains("case22.npy"), "{extra:?}: {text}");
    }
}
