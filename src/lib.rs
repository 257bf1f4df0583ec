//! # segloss
//!
//! Jaccard (IoU), Dice and Tversky losses for image segmentation and their gradients,
//! computed with WGSL compute shaders through wgpu, and **correct with soft labels**.
//!
//! The textbook overlap tp = Σp·y makes the loss of a pixel with label 0.5 smallest at
//! p = 1. segloss's default `Formulation::Soft` writes the overlap with the L1 distance,
//! tp = (Σ|p| + Σ|y| − Σ|p − y|)/2 (Wang & Blaschko, NeurIPS 2023 / MICCAI 2023; MONAI's
//! `soft_label=True`): equal on hard labels, minimised exactly at p = y on soft ones.
//!
//! * [`Context`]: a wgpu device (its own or the application's), or the CPU reference.
//! * [`LossOptions`] (+ [`monai`] and [`jdt`] constructors): the SPEC's options.
//! * [`Loss`]: host API ([`Loss::forward_backward`], [`Loss::forward_backward_into`],
//!   [`Loss::forward_async`]; batches of any size, streamed over the binding limit) and
//!   GPU-resident API ([`Loss::encode`], [`Loss::run`], [`Loss::read`]).
//! * Compound losses: [`CrossEntropy`] and [`Focal`] terms fused into the same passes.
//! * Generalized Dice ([`Overlap::GeneralizedDice`], [`monai::GeneralizedDiceLoss`],
//!   [`monai::GeneralizedDiceFocalLoss`]) in the same kernels.
//! * [`metrics`]: mIoU / Dice at dataset, image and class level, worst case, per class
//!   and per image, accumulated on the GPU; MONAI's and smp's metric semantics.
//! * Data-parallel training: the split-phase API ([`Loss::stats`] → sum
//!   [`Stats::shared`] over workers → [`Loss::finish`]; [`Loss::encode_stats`] /
//!   [`Loss::encode_finish`] on the GPU).
//! * [`reference`](mod@reference): the f64 CPU reference the GPU is tested against.
//!
//! The contract (formulas, options, the peers' behaviour) is the SPEC in `docs/SPEC.md`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod adapters;
mod api;
mod context;
mod cpu;
pub mod deep;
mod error;
#[doc(hidden)]
pub mod kernels;
pub mod metrics;
mod options;
mod output;
mod peers;
mod plan;
mod pool;
mod readback;
mod record;
pub mod reference;
mod resident;
mod schedule;
mod scope;
mod shape;
mod split;
mod stream;
mod transfer;

/// The wgpu segloss is built on (version 30): use this re-export so that your
/// application's `wgpu::Device` and buffers are the types segloss takes.
pub use wgpu;

pub use api::Loss;
pub use context::{Backend, Context};
pub use error::{Error, Result};
pub use options::{
    Activation, ActiveClasses, Aggregation, CrossEntropy, CrossEntropyKind, Focal, FocalAlpha,
    Formulation, GdlWeight, LossOptions, Overlap, Reduction, SingleChannelSoftmax, SoftLabelGuard,
};
pub use output::LossOutput;
pub use peers::{jdt, monai};
pub use plan::{MAX_CLASSES, MAX_ITEMS};
pub use resident::{GpuBatch, GpuResult, GpuStats, GpuTarget};
pub use schedule::{Ramp, Schedule, Stage};

pub use shape::{Batch, Shape, Target};
pub use split::Stats;
