//! Staged and mixed loss strategies (SPEC §8.1): a [`Schedule`] of stages over training
//! steps, each a [`LossOptions`], entered with a step change or a linear or cosine ramp
//! of the terms' weights from the previous stage.
//!
//! ```
//! # fn main() -> segloss::Result<()> {
//! use segloss::{Context, CrossEntropy, LossOptions, Ramp, Schedule};
//! let ctx = Context::new_or_cpu();
//! // Cross-entropy (KL form) alone for a 100-step warm-up, then a 50-step linear ramp
//! // into soft Jaccard + KL, the Jaccard Metric Loss paper's recipe.
//! let warm_up = LossOptions::jaccard()
//!     .overlap_weight(0.0)
//!     .cross_entropy(CrossEntropy::kl(1.0));
//! let jml = LossOptions::jaccard()
//!     .overlap_weight(0.75)
//!     .cross_entropy(CrossEntropy::kl(0.25));
//! let schedule = Schedule::new(&ctx, warm_up)?.then(100, jml, Ramp::Linear { steps: 50 })?;
//! assert_eq!(schedule.options_at(125).overlap_weight, 0.375);
//! let loss = schedule.at(125)?; // the `Loss` in force at step 125
//! # let _ = loss;
//! # Ok(())
//! # }
//! ```

use crate::api::Loss;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::options::{Aggregation, LossOptions};

/// How a stage is entered from the previous one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ramp {
    /// At once: the stage's options from its first step.
    Step,
    /// Weights move linearly over `steps` steps: w = w₀ + (w₁ − w₀)·u,
    /// u = (step − start) / steps.
    Linear {
        /// Length of the ramp (≥ 1).
        steps: u64,
    },
    /// Weights move along a half cosine over `steps` steps: w = w₀ + (w₁ − w₀)·(1 −
    /// cos πu)/2, u = (step − start) / steps (slow at both ends).
    Cosine {
        /// Length of the ramp (≥ 1).
        steps: u64,
    },
}

impl Ramp {
    /// The fraction of the way from the previous stage's weights at `into` steps past
    /// the stage's start (1 from the end of the ramp on).
    pub fn fraction(&self, into: u64) -> f64 {
        let (steps, cosine) = match *self {
            Ramp::Step => return 1.0,
            Ramp::Linear { steps } => (steps, false),
            Ramp::Cosine { steps } => (steps, true),
        };
        if into >= steps {
            return 1.0;
        }
        let u = into as f64 / steps as f64;
        if cosine {
            (1.0 - (std::f64::consts::PI * u).cos()) / 2.0
        } else {
            u
        }
    }
}

/// One stage of a [`Schedule`]: from step `start` on, `options`, entered by `ramp`.
#[derive(Clone, Debug, PartialEq)]
pub struct Stage {
    /// The first step of the stage.
    pub start: u64,
    /// The options in force once the ramp is over.
    pub options: LossOptions,
    /// How the weights move from the previous stage's.
    pub ramp: Ramp,
}

/// A loss that changes over training: stages of [`LossOptions`] over steps (or epochs:
/// a step is whatever the caller counts). [`Schedule::at`] gives the [`Loss`] in force.
///
/// Within a ramp only weights move — λ_overlap, the cross-entropy's and the focal term's
/// λ, and the three aggregation levels — so a ramp's two stages must agree on every
/// other option ([`Error::InvalidOption`] otherwise); a term present on one side only is
/// ramped from (or to) weight 0. Weights live in the kernels' parameter block and a
/// formulation or term switch selects pipelines cached per context, so a step compiles
/// no shader after the first call of each distinct stage, and `at` costs the building of
/// one [`Loss`] (a validation and a clone of the options). `at` is a pure function of the
/// step: split-phase workers at the same step use the same loss.
#[derive(Clone, Debug)]
pub struct Schedule {
    ctx: Context,
    stages: Vec<Stage>,
}

impl Schedule {
    /// A schedule whose first stage, from step 0, is `first`.
    pub fn new(ctx: &Context, first: LossOptions) -> Result<Self> {
        first.validate()?;
        Ok(Schedule {
            ctx: ctx.clone(),
            stages: vec![Stage {
                start: 0,
                options: first,
                ramp: Ramp::Step,
            }],
        })
    }

    /// Adds a stage from step `start` (after the previous stage's start, and after the
    /// previous stage's ramp has ended).
    pub fn then(mut self, start: u64, options: LossOptions, ramp: Ramp) -> Result<Self> {
        options.validate()?;
        let bad = |reason: String| Error::InvalidOption {
            name: "schedule",
            reason,
        };
        // `new` makes the first stage and nothing removes one: never empty.
        let Some(prev) = self.stages.last() else {
            return Err(bad("a schedule without a first stage".into()));
        };
        let prev_end = prev.start.saturating_add(ramp_len(prev.ramp));
        if start <= prev.start || start < prev_end {
            return Err(bad(format!(
                "a stage at step {start} must start after step {} (the previous stage's \
                 start) and not before step {prev_end} (the end of its ramp)",
                prev.start
            )));
        }
        if matches!(ramp, Ramp::Linear { steps: 0 } | Ramp::Cosine { steps: 0 }) {
            return Err(bad("a ramp of 0 steps: use Ramp::Step".into()));
        }
        if ramp != Ramp::Step {
            let a = weightless(&with_terms_of(&prev.options, &options));
            let b = weightless(&with_terms_of(&options, &prev.options));
            if a != b {
                return Err(bad(format!(
                    "a ramp changes weights only; these stages differ in other options \
                     ({a:?} vs {b:?}): use Ramp::Step"
                )));
            }
            // Both ends of the ramp, and so every point of it, must be valid options.
            blend(&prev.options, &options, 0.5).validate()?;
        }
        self.stages.push(Stage {
            start,
            options,
            ramp,
        });
        Ok(self)
    }

    /// The stages, in order.
    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    /// The index of the stage in force at `step`.
    pub fn stage_at(&self, step: u64) -> usize {
        self.stages
            .iter()
            .rposition(|s| s.start <= step)
            .unwrap_or(0)
    }

    /// The options in force at `step`: a stage's own, or inside its ramp the weights
    /// interpolated from the previous stage's (SPEC §8.1).
    pub fn options_at(&self, step: u64) -> LossOptions {
        let k = self.stage_at(step);
        let stage = &self.stages[k];
        let t = stage.ramp.fraction(step - stage.start);
        if k == 0 || t >= 1.0 {
            return stage.options.clone();
        }
        blend(&self.stages[k - 1].options, &stage.options, t)
    }

    /// The [`Loss`] in force at `step`, on the schedule's context.
    pub fn at(&self, step: u64) -> Result<Loss> {
        Loss::new(&self.ctx, self.options_at(step))
    }
}

fn ramp_len(r: Ramp) -> u64 {
    match r {
        Ramp::Step => 0,
        Ramp::Linear { steps } | Ramp::Cosine { steps } => steps,
    }
}

/// The options with every ramped weight zeroed and every term present: what two stages
/// of one ramp must share.
fn weightless(o: &LossOptions) -> LossOptions {
    let mut o = o.clone();
    o.overlap_weight = 0.0;
    o.aggregation = Aggregation {
        dataset: 0.0,
        image: 0.0,
        class: 0.0,
    };
    if let Some(ce) = &mut o.cross_entropy {
        ce.weight = 0.0;
    }
    if let Some(f) = &mut o.focal {
        f.weight = 0.0;
    }
    o
}

/// `o` with the terms only `other` has, at weight 0.
fn with_terms_of(o: &LossOptions, other: &LossOptions) -> LossOptions {
    let mut o = o.clone();
    if o.cross_entropy.is_none() {
        o.cross_entropy = other.cross_entropy.clone().map(|mut ce| {
            ce.weight = 0.0;
            ce
        });
    }
    if o.focal.is_none() {
        o.focal = other.focal.clone().map(|mut f| {
            f.weight = 0.0;
            f
        });
    }
    o
}

/// `a`'s options with every weight moved the fraction `t` towards `b`'s (a term absent
/// on one side counts as weight 0 there, with the other side's settings).
fn blend(a: &LossOptions, b: &LossOptions, t: f64) -> LossOptions {
    let mix = |x: f64, y: f64| x + (y - x) * t;
    let mut o = b.clone();
    o.overlap_weight = mix(a.overlap_weight, b.overlap_weight);
    o.aggregation = Aggregation {
        dataset: mix(a.aggregation.dataset, b.aggregation.dataset),
        image: mix(a.aggregation.image, b.aggregation.image),
        class: mix(a.aggregation.class, b.aggregation.class),
    };
    let w = |x: Option<f64>| x.unwrap_or(0.0);
    o.cross_entropy = b
        .cross_entropy
        .clone()
        .or(a.cross_entropy.clone())
        .map(|mut ce| {
            ce.weight = mix(
                w(a.cross_entropy.as_ref().map(|c| c.weight)),
                w(b.cross_entropy.as_ref().map(|c| c.weight)),
            );
            ce
        });
    o.focal = b.focal.clone().or(a.focal.clone()).map(|mut f| {
        f.weight = mix(
            w(a.focal.as_ref().map(|f| f.weight)),
            w(b.focal.as_ref().map(|f| f.weight)),
        );
        f
    });
    o
}
