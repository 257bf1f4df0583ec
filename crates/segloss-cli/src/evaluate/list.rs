//! Stage 1 of `evaluate`: the supported files of the two folders, paired by name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use segloss_eval::stem;

use crate::AnyResult;

/// One image's files: its name, the prediction's path, the target's path.
pub type Job = (String, PathBuf, PathBuf);

/// The supported files of `dir` by name (`.npy`, `.nii`, `.nii.gz`, in any case), and
/// how many other entries it holds.
fn files(dir: &Path) -> AnyResult<(BTreeMap<String, PathBuf>, usize)> {
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

/// The pairs of `pred` and `target` by name, in name order: every file of each folder
/// must have its partner, and at least one pair must exist.
pub fn pairs(pred: &Path, target: &Path) -> AnyResult<Vec<Job>> {
    let (preds, others) = files(pred)?;
    let (mut targets, _) = files(target)?;
    if let Some(n) = targets.keys().find(|n| !preds.contains_key(*n)) {
        return Err(format!("{}: no prediction named {n}", pred.display()).into());
    }
    if let Some(n) = preds.keys().find(|n| !targets.contains_key(*n)) {
        return Err(format!("{}: no target named {n}", target.display()).into());
    }
    if preds.is_empty() {
        // Both folders are empty of arrays: no images is an error, not a perfect score.
        return Err(format!(
            "{}: no .npy, .nii or .nii.gz file ({others} other entries)",
            pred.display()
        )
        .into());
    }
    Ok(preds
        .into_iter()
        .map(|(name, p)| {
            let t = targets.remove(&name).unwrap_or_default();
            (name, p, t)
        })
        .collect())
}
