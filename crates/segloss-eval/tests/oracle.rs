//! The readers against the formats' own tools: every file in `tests/oracle/files` was
//! written by NumPy or nibabel (`tests/oracle/make.py`), and `tests/oracle/manifest.json`
//! holds what `np.load` / `np.asarray(nibabel.load(f).dataobj)` read back from it. Each
//! file must decode to the same shape and the same values, element by element (labels
//! exactly; scores as the oracle's values rounded to f32, exactly), or be refused with
//! an error naming it where the oracle refuses it too.

use std::path::PathBuf;

use segloss_eval::{decode, Array};
use serde_json::Value;

fn oracle_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oracle")
}

#[test]
fn every_file_decodes_as_numpy_and_nibabel_read_it() {
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(oracle_dir().join("manifest.json")).expect("manifest"),
    )
    .expect("manifest JSON");
    let files = manifest["files"].as_array().expect("files");
    let (mut compared, mut refused, mut values) = (0, 0, 0usize);
    for e in files {
        let name = e["file"].as_str().expect("file");
        let bytes = std::fs::read(oracle_dir().join("files").join(name)).expect(name);
        let got = decode(name, &bytes);
        if let Some(why) = e.get("error") {
            let err = got.expect_err(&format!(
                "{name}: the oracle refused it ({why}), segloss read it"
            ));
            assert!(
                err.to_string().starts_with(name),
                "{err} does not name {name}"
            );
            refused += 1;
            continue;
        }
        let got = got.unwrap_or_else(|err| panic!("{name}: {err} (the oracle read it)"));
        let shape: Vec<usize> = e["shape"]
            .as_array()
            .expect("shape")
            .iter()
            .map(|d| d.as_u64().expect("dim") as usize)
            .collect();
        assert_eq!(got.shape(), &shape[..], "{name}: shape");
        let want = e["values"].as_array().expect("values");
        match (&got, e["kind"].as_str()) {
            (Array::Labels(v, _), Some("labels")) => {
                assert_eq!(v.len(), want.len(), "{name}: length");
                for (k, (g, w)) in v.iter().zip(want).enumerate() {
                    assert_eq!(Some(*g), w.as_i64(), "{name}: element {k}");
                }
            }
            (Array::Scores(v, _), Some("scores")) => {
                assert_eq!(v.len(), want.len(), "{name}: length");
                for (k, (g, w)) in v.iter().zip(want).enumerate() {
                    let w = w.as_f64().expect("float") as f32;
                    assert_eq!(g.to_bits(), w.to_bits(), "{name}: element {k}: {g} vs {w}");
                }
            }
            (g, k) => panic!("{name}: decoded as {g:?}, the oracle's kind is {k:?}"),
        }
        compared += 1;
        values += want.len();
    }
    eprintln!("{compared} files compared ({values} values), {refused} refused as by the oracle");
    assert!(
        compared >= 45 && refused >= 5,
        "{compared} compared, {refused} refused"
    );
}
