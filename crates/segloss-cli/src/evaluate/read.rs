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
        let name = p.file_name().unwrap_or_default();
        let Some(s) = stem(&name.to_string_lossy()) else {
            others += 1;
            continue;
        };
        // Names pair the files: one that is not UTF-8 cannot be paired (or reported)
        // faithfully, and skipping it would drop an image without a word.
        if name.to_str().is_none() {
            return Err(format!("{}: the file name is not valid UTF-8", p.display()).into());
        }
        if let Some(old) = out.insert(s.clone(), p.clone()) {
            return Err(
                format!("{} and {}: two files named {s}", old.display(), p.display()).into(),
            );
        }
    }
    Ok((out, others))
}

/// One file's array; an error names the file. Only regular files (or links to them) are
/// read: a FIFO or a device named `x.npy` would block or never end.
pub fn read(p: &Path) -> AnyResult<Array> {
    let meta = std::fs::metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
    if !meta.is_file() {
        return Err(format!("{}: not a regular file", p.display()).into());
    }
    let bytes = std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
    Ok(decode(&p.display().to_string(), &bytes)?)
}
