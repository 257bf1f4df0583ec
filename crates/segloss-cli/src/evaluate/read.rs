//! `evaluate`'s inputs: the supported files of a folder by name, and one file's array
//! (decoded by `segloss-eval`, shared with the browser page).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use segloss_eval::{decode, stem, Array};

use crate::AnyResult;

/// The supported files of `dir` by name (`.npy`, `.nii`, `.nii.gz`, in any case), and
/// how many other entries it holds.
pub fn files(dir: &Path) -> AnyResult<(BTreeMap<String, PathBuf>, usize)> {
    let mut out = BTreeMap::new();
    let mut others = 0usize;
    for e in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let p = e?.path();
        let Some(s) = p.file_name().and_then(|n| n.to_str()).and_then(stem) else {
            others += 1;
            continue;
        };
        if let Some(old) = out.insert(s.clone(), p.clone()) {
            return Err(
                format!("{} and {}: two files named {s}", old.display(), p.display()).into(),
            );
        }
    }
    Ok((out, others))
}

/// One file's array; an error names the file.
pub fn read(p: &Path) -> AnyResult<Array> {
    let bytes = std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
    Ok(decode(&p.display().to_string(), &bytes)?)
}
