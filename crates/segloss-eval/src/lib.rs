//! The core of segloss's `evaluate` tool, shared by the `segloss` command
//! (`crates/segloss-cli`, files from folders) and the browser page (`crates/segloss-web`,
//! files the user drops, never uploaded): one file's bytes decoded into an array
//! ([`decode`]), a prediction checked against its target and turned into a metrics
//! update ([`pair`]), and the results as the tool's JSON object ([`report`]); and the
//! page's picture of the soft-label problem, one pixel's loss against its prediction
//! ([`loss_curve`]).
//!
//! Every error is a message that names the file at fault.

mod curve;
mod decode;
mod nifti;
mod npy;
mod report;

pub use curve::{curve_batch, curve_options, loss_curve, CURVE_POINTS, CURVE_TVERSKY};
pub use decode::{decode, stem, Array, DecodeError};
pub use report::{pair, parse_worst, report, Pair};
