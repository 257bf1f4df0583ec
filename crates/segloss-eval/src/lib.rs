//! The core of segloss's `evaluate` tool, shared by the `segloss` command
//! (`crates/segloss-cli`, files from folders) and the browser page (`crates/segloss-web`,
//! files the user drops, never uploaded). `evaluate` is a straight pipeline, one stage
//! per module, each taking the one before's output:
//!
//! 1. list: the callers' (folders, or the page's dropped files), pairing names
//!    ([`stem`]);
//! 2. decode: one file's bytes into an array ([`decode`]);
//! 3. pair: a prediction checked against its target, as a metrics update ([`pair`]);
//! 4. count: updates counted, errors naming the pair ([`Counter`]);
//! 5. report: the tool's JSON object ([`report`]) and table ([`table`]).
//!
//! Also the page's picture of the soft-label problem, one pixel's loss against its
//! prediction ([`loss_curve`]).
//!
//! Every error is a message that names the file at fault.

mod count;
mod curve;
mod decode;
mod nifti;
mod npy;
mod pair;
mod report;

pub use count::{Counted, Counter, READ_EVERY, READ_EVERY_BYTES};
pub use curve::{curve_batch, curve_options, loss_curve, CURVE_POINTS, CURVE_TVERSKY};
pub use decode::{decode, stem, Array, DecodeError};
pub use pair::{pair, Pair};
pub use report::{parse_worst, report, table};
