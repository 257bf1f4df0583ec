//! Stage 2 of `evaluate`, streamed: each pair's files read and decoded on a thread of
//! its own while the pairs before it are checked and counted, through a bounded queue
//! (at most [`AHEAD`] decoded pairs wait; memory is bounded by the queue, not by the
//! dataset). The first error, in name order, ends the stream.

use std::path::Path;
use std::sync::mpsc::sync_channel;

use segloss_eval::{decode, Array};

use super::list::Job;
use crate::AnyResult;

/// Decoded pairs waiting for the counter (besides the one being decoded and the one
/// being counted).
pub const AHEAD: usize = 1;

/// One pair's decoded arrays.
pub struct Decoded {
    /// The pairing name.
    pub name: String,
    /// The prediction's and the target's paths, for errors.
    pub files: (String, String),
    /// The prediction.
    pub pred: Array,
    /// The target.
    pub target: Array,
}

/// One file's array; an error names the file. Only regular files (or links to them) are
/// read: a FIFO or a device named `x.npy` would block or never end.
fn read(p: &Path) -> Result<Array, String> {
    let meta = std::fs::metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
    if !meta.is_file() {
        return Err(format!("{}: not a regular file", p.display()));
    }
    let bytes = std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
    decode(&p.display().to_string(), &bytes).map_err(|e| e.to_string())
}

fn read_pair((name, pp, tp): &Job) -> Result<Decoded, String> {
    // The target first: a missing or bad label map is reported before its prediction.
    let target = read(tp)?;
    let pred = read(pp)?;
    Ok(Decoded {
        name: name.clone(),
        files: (pp.display().to_string(), tp.display().to_string()),
        pred,
        target,
    })
}

/// Calls `each` on every pair of `jobs` in order, decoded ahead on another thread.
pub fn each_pair(jobs: &[Job], mut each: impl FnMut(Decoded) -> AnyResult<()>) -> AnyResult<()> {
    std::thread::scope(|s| {
        let (tx, rx) = sync_channel::<Result<Decoded, String>>(AHEAD);
        s.spawn(move || {
            for job in jobs {
                let item = read_pair(job);
                let stop = item.is_err();
                // A closed queue: the consumer stopped at an error of its own.
                if tx.send(item).is_err() || stop {
                    return;
                }
            }
        });
        // Returning drops the receiver, which ends the decoding thread's next send.
        for item in rx {
            each(item?)?;
        }
        Ok(())
    })
}
