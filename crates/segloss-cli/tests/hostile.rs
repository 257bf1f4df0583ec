//! `segloss evaluate` on files written by NumPy and nibabel, and on hostile ones (issue
//! 34): mixed `.npy` / NIfTI pairs score as the same arrays in `.npy`; NIfTI's
//! vox_offset and scaling are honoured; empty folders, stale JSON, headers that claim
//! gigabytes (under an address-space limit) are errors naming the input.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{ran_on_gpu, segloss, tempdir, text};
use serde_json::Value;

/// The differential files of segloss-eval (written by NumPy and nibabel).
fn oracle() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../segloss-eval/tests/oracle")
}

fn evaluate(pred: &Path, target: &Path, classes: usize, extra: &[&str]) -> Output {
    let (p, t, c) = (
        pred.to_str().unwrap(),
        target.to_str().unwrap(),
        classes.to_string(),
    );
    let mut args = vec!["evaluate", "--pred", p, "--target", t, "--classes", &c];
    args.extend(extra);
    segloss(&args)
}

/// The JSON that `--json -` printed on stdout.
fn json(out: &Output) -> Value {
    assert!(out.status.success(), "{}", text(out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(out)))
}

/// A `.npy` of i64 labels.
fn write_npy(path: &Path, shape: &[usize], v: &[i64]) {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let h = format!(
        "{{'descr': '<i8', 'fortran_order': False, 'shape': ({},), }}\n",
        dims.join(", ")
    );
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend((h.len() as u16).to_le_bytes());
    b.extend(h.as_bytes());
    b.extend(v.iter().flat_map(|x| x.to_le_bytes()));
    std::fs::write(path, b).unwrap();
}

/// What nibabel read back from one of the oracle's files: (shape, labels).
fn oracle_labels(file: &str) -> (Vec<usize>, Vec<i64>) {
    let m: Value =
        serde_json::from_str(&std::fs::read_to_string(oracle().join("manifest.json")).unwrap())
            .unwrap();
    let e = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["file"] == file)
        .unwrap();
    let shape = e["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize);
    let v = e["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_i64().unwrap());
    (shape.collect(), v.collect())
}

#[test]
fn mixed_npy_and_nifti_pairs_score_as_npy_pairs() {
    let d = oracle().join("files/dataset");
    for adapter in [&["--cpu"][..], &[][..]] {
        let mut extra = vec!["--json", "-"];
        extra.extend(adapter);
        let want = evaluate(&d.join("pred"), &d.join("target_npy"), 3, &extra);
        if adapter.is_empty() && !ran_on_gpu(&want, "mixed pairs") {
            continue;
        }
        let want = json(&want);
        assert!(
            want["miou_d"].as_f64().unwrap() < 0.99,
            "the dataset is not trivial"
        );
        for t in ["target_nii", "target_niigz"] {
            let got = json(&evaluate(&d.join("pred"), &d.join(t), 3, &extra));
            assert_eq!(got, want, "{t} against target_npy ({adapter:?})");
        }
    }
}

/// The case: a 2x3 map saved by NumPy as the prediction and by nibabel as the
/// target is a perfect score (it was 0.2222), and so are nibabel's vox_offset and
/// scaled files against what nibabel reads from them.
#[test]
fn nibabel_files_against_their_own_values_are_perfect() {
    for (file, classes) in [
        ("nii_2d_2x3.nii.gz", 3),
        ("nii_3d.nii", 4),
        ("nii_offset_368.nii", 3),
        ("nii_offset_1024.nii.gz", 3),
        ("nii_slope2.nii", 5),
        ("nii_slope_inter.nii.gz", 4),
        ("nii_big_endian.nii", 6),
        ("nii2_3d_be.nii.gz", 4),
    ] {
        let dir = tempdir(&format!("perfect-{file}"));
        let (pred, target) = (dir.join("pred"), dir.join("target"));
        std::fs::create_dir_all(&pred).unwrap();
        std::fs::create_dir_all(&target).unwrap();
        let (shape, v) = oracle_labels(file);
        write_npy(&pred.join("a.npy"), &shape, &v);
        let ext = if file.ends_with(".gz") {
            "nii.gz"
        } else {
            "nii"
        };
        std::fs::copy(
            oracle().join("files").join(file),
            target.join(format!("a.{ext}")),
        )
        .unwrap();
        let r = json(&evaluate(
            &pred,
            &target,
            classes,
            &["--cpu", "--json", "-"],
        ));
        assert_eq!(r["miou_d"].as_f64(), Some(1.0), "{file}: {r}");
        assert_eq!(r["images"].as_u64(), Some(1));
    }
}

#[test]
fn a_scaled_label_outside_the_classes_is_an_error() {
    // nii_slope2.nii holds labels 0, 2 and 4 once scaled: 3 classes cannot hold them.
    let dir = tempdir("slope-classes");
    let (pred, target) = (dir.join("pred"), dir.join("target"));
    std::fs::create_dir_all(&pred).unwrap();
    std::fs::create_dir_all(&target).unwrap();
    let (shape, v) = oracle_labels("nii_slope2.nii");
    write_npy(
        &pred.join("a.npy"),
        &shape,
        &v.iter().map(|x| x / 2).collect::<Vec<_>>(),
    );
    std::fs::copy(oracle().join("files/nii_slope2.nii"), target.join("a.nii")).unwrap();
    let out = evaluate(&pred, &target, 3, &["--cpu"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("a.nii"), "{}", text(&out));
}

#[test]
fn empty_folders_are_errors_and_leave_no_json() {
    let dir = tempdir("empty");
    let (pred, target) = (dir.join("pred"), dir.join("target"));
    std::fs::create_dir_all(&pred).unwrap();
    std::fs::create_dir_all(&target).unwrap();
    std::fs::write(pred.join("a.png"), b"not an array").unwrap();
    let out_json = dir.join("metrics.json");
    std::fs::write(&out_json, b"{\"miou_d\": 1.0}").unwrap(); // an earlier run's
    let out = evaluate(
        &pred,
        &target,
        3,
        &["--cpu", "--json", out_json.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("no .npy, .nii or .nii.gz file"),
        "{}",
        text(&out)
    );
    assert!(!out_json.exists(), "a stale JSON survived a failed run");
}

#[test]
fn upper_case_extensions_pair_by_name() {
    let dir = tempdir("upper");
    let (pred, target) = (dir.join("pred"), dir.join("target"));
    std::fs::create_dir_all(&pred).unwrap();
    std::fs::create_dir_all(&target).unwrap();
    write_npy(&pred.join("x.NPY"), &[2, 2], &[0, 1, 1, 0]);
    write_npy(&target.join("x.npy"), &[2, 2], &[0, 1, 0, 0]);
    let r = json(&evaluate(&pred, &target, 2, &["--cpu", "--json", "-"]));
    assert_eq!(r["images"].as_u64(), Some(1), "{r}");
}

/// Files whose headers claim far more than they hold, read by the command under a
/// 1 GiB address-space limit: each is an error naming the file (exit code 2), not an
/// abort on a failed allocation.
#[test]
fn headers_that_claim_gigabytes_under_an_address_space_limit() {
    let dir = tempdir("claims");
    let files = oracle().join("files");
    let nii = std::fs::read(files.join("nii_2d.nii")).unwrap();
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    // .npy v2 whose header length is 0xFFFFFFFF (npyz asked for a 4 GiB vector).
    cases.push((
        "npy_v2_len.npy",
        b"\x93NUMPY\x02\x00\xff\xff\xff\xff{}".to_vec(),
    ));
    // .npy whose shape needs 8 TB of int64.
    let h = "{'descr': '<i8', 'fortran_order': False, 'shape': (1000000, 1000000), }\n";
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend((h.len() as u16).to_le_bytes());
    b.extend(h.as_bytes());
    b.extend([0u8; 64]);
    cases.push(("npy_huge_shape.npy", b));
    // NIfTI: 32767^3 int64 voxels in a few hundred bytes; vox_offset 1e9 and -400.
    let mut huge = nii.clone();
    for k in 0..3 {
        huge[42 + 2 * k..44 + 2 * k].copy_from_slice(&32767i16.to_le_bytes());
    }
    huge[40..42].copy_from_slice(&3i16.to_le_bytes());
    huge[70..72].copy_from_slice(&1024i16.to_le_bytes());
    cases.push(("nii_huge.nii", huge));
    for (name, v) in [
        ("nii_offset_1e9.nii", 1e9f32),
        ("nii_offset_neg.nii", -400.0),
    ] {
        let mut b = nii.clone();
        b[108..112].copy_from_slice(&v.to_le_bytes());
        cases.push((name, b));
    }
    for (name, bytes) in cases {
        let case = dir.join(name.replace('.', "_"));
        let (pred, target) = (case.join("pred"), case.join("target"));
        std::fs::create_dir_all(&pred).unwrap();
        std::fs::create_dir_all(&target).unwrap();
        std::fs::write(target.join(name), &bytes).unwrap();
        std::fs::copy(files.join("npy_1d.npy"), pred.join(name)).unwrap();
        let script = format!(
            "ulimit -v 1048576; exec '{}' evaluate --cpu --pred '{}' --target '{}' --classes 4",
            common::bin(),
            pred.display(),
            target.display()
        );
        let out = std::process::Command::new("sh")
            .args(["-c", &script])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(name) && err.contains("error:"),
            "{name}: {err}"
        );
    }
}

/// Found in review: a negative ignore index is a value (`--ignore-index -1`), a FIFO
/// named like an array is an error rather than a hang, and a `.npy` whose dtype holds a
/// non-ASCII character is an error rather than a panic.
#[test]
fn negative_ignore_index_fifos_and_odd_dtypes() {
    let dir = tempdir("review");
    let (pred, target) = (dir.join("pred"), dir.join("target"));
    std::fs::create_dir_all(&pred).unwrap();
    std::fs::create_dir_all(&target).unwrap();
    write_npy(&pred.join("a.npy"), &[2, 2], &[0, 1, 1, 0]);
    write_npy(&target.join("a.npy"), &[2, 2], &[0, 1, -1, 0]);
    let r = json(&evaluate(
        &pred,
        &target,
        2,
        &["--cpu", "--ignore-index", "-1", "--json", "-"],
    ));
    assert_eq!(r["miou_d"].as_f64(), Some(1.0), "{r}");
    // A dtype whose second character is 'é' (two bytes in UTF-8).
    let h = "{'descr': '<\u{e9}4', 'fortran_order': False, 'shape': (2, 2), }\n";
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend((h.len() as u16).to_le_bytes());
    b.extend(h.as_bytes());
    b.extend([0u8; 32]);
    std::fs::write(target.join("a.npy"), b).unwrap();
    let out = evaluate(&pred, &target, 2, &["--cpu"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("not supported"), "{}", text(&out));
    // A FIFO named b.npy on both sides.
    write_npy(&target.join("a.npy"), &[2, 2], &[0, 1, 1, 0]);
    for d in [&pred, &target] {
        let made = std::process::Command::new("mkfifo")
            .arg(d.join("b.npy"))
            .status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
    }
    let out = evaluate(&pred, &target, 2, &["--cpu"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("not a regular file"), "{}", text(&out));
}
