//! `segloss`: the command-line front door of the segloss library.
//!
//! - `segloss evaluate`: segmentation metrics over folders of `.npy` / NIfTI files;
//! - `segloss doctor`: the adapters wgpu sees, and the public golden cases run on one of
//!   them (the command to run, and paste into a bug report, when a GPU misbehaves);
//! - `segloss bench`: throughput of the losses and metrics on the chosen adapter.
//!
//! Exit codes: 0 success, 1 a check failed (`doctor`), 2 bad usage or an error (a bad
//! file, no adapter where one is required). Errors go to stderr and name the file or the
//! argument to fix.

mod adapter;
mod bench;
mod doctor;
mod evaluate;

use clap::{Parser, Subcommand};

/// The error type of the subcommands: a message for the user.
pub type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

#[derive(Parser)]
#[command(
    name = "segloss",
    version,
    about = "Soft-label-correct segmentation losses and metrics on any wgpu adapter",
    long_about = "Soft-label-correct Jaccard / Dice / Tversky losses and segmentation metrics \
on wgpu compute shaders (Vulkan, Metal, DX12, OpenGL; headless on Mesa's lavapipe), with an \
f64 CPU reference when there is no adapter.\n\nExit codes: 0 success, 1 a check failed \
(doctor), 2 bad usage or an error.",
    after_help = "Examples:\n  segloss doctor\n  segloss evaluate --pred preds/ --target labels/ --classes 4 --json out.json\n  segloss bench --shapes 2x4x256x256 --runs 3"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Segmentation metrics (mIoU / mDice at dataset, image and class level, worst case)
    /// over folders of .npy / .nii / .nii.gz files.
    Evaluate(evaluate::Args),
    /// List the adapters, run the public golden cases on one and print a verdict.
    Doctor(doctor::Args),
    /// Throughput of the losses and metrics on the chosen adapter (a table, or --json).
    Bench(bench::Args),
}

/// What a subcommand ended with.
pub enum Outcome {
    /// Everything worked (exit code 0).
    Ok,
    /// The command ran, and a check it makes failed (exit code 1).
    CheckFailed,
}

fn main() {
    let cli = Cli::parse(); // bad usage: clap prints it and exits with 2
    let result = match cli.command {
        Command::Evaluate(a) => evaluate::run(a),
        Command::Doctor(a) => doctor::run(a),
        Command::Bench(a) => bench::run(a),
    };
    match result {
        Ok(Outcome::Ok) => {}
        Ok(Outcome::CheckFailed) => std::process::exit(1),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
}
