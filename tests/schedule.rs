//! Staged and mixed loss strategies (issue 23): a `Schedule`'s boundaries and ramps
//! follow the SPEC's formulas, a ramp compiles no pipeline, and a scheduled step equals a
//! hand-built `Loss` of the same options on the host, GPU-resident and split paths.

mod common;

use common::{Data, Rng};
use segloss::{
    Context, CrossEntropy, Error, Formulation, GpuBatch, GpuTarget, LossOptions, LossOutput, Ramp,
    Schedule,
};

fn warm_up() -> LossOptions {
    LossOptions::jaccard()
        .overlap_weight(0.0)
        .cross_entropy(CrossEntropy::kl(1.0))
}

fn jml() -> LossOptions {
    LossOptions::jaccard()
        .overlap_weight(0.75)
        .cross_entropy(CrossEntropy::kl(0.25))
}

fn jaccard_only() -> LossOptions {
    LossOptions::jaccard().overlap_weight(1.0)
}

/// Warm-up (0..100), a linear ramp into JML (100..150), JML, a cosine ramp (300..400)
/// into plain Jaccard (the CE term ramped to weight 0).
fn three_stages(ctx: &Context) -> Schedule {
    Schedule::new(ctx, warm_up())
        .unwrap()
        .then(100, jml(), Ramp::Linear { steps: 50 })
        .unwrap()
        .then(300, jaccard_only(), Ramp::Cosine { steps: 100 })
        .unwrap()
}

fn weights(o: &LossOptions) -> (f64, f64) {
    (
        o.overlap_weight,
        o.cross_entropy.as_ref().map_or(0.0, |c| c.weight),
    )
}

#[test]
fn boundaries_and_ramps_follow_the_formulas() {
    let s = three_stages(&Context::cpu());
    assert_eq!(s.options_at(0), warm_up());
    assert_eq!(s.options_at(99), warm_up());
    for step in 100..150u64 {
        let u = (step - 100) as f64 / 50.0;
        let want = (0.0 + (0.75 - 0.0) * u, 1.0 + (0.25 - 1.0) * u);
        assert_eq!(weights(&s.options_at(step)), want, "step {step}");
        assert_eq!(s.stage_at(step), 1);
    }
    assert_eq!(s.options_at(150), jml());
    assert_eq!(s.options_at(299), jml());
    for step in 300..400u64 {
        let u = (step - 300) as f64 / 100.0;
        let f = (1.0 - (std::f64::consts::PI * u).cos()) / 2.0;
        let want = (0.75 + (1.0 - 0.75) * f, 0.25 + (0.0 - 0.25) * f);
        assert_eq!(weights(&s.options_at(step)), want, "step {step}");
    }
    // After the ramp: the stage's own options (no CE term left).
    assert_eq!(s.options_at(400), jaccard_only());
    assert_eq!(s.options_at(u64::MAX), jaccard_only());
    assert_eq!(s.stages().len(), 3);
    // Two workers building the same schedule agree at every step.
    let t = three_stages(&Context::cpu());
    for step in (0..500).step_by(7) {
        assert_eq!(s.options_at(step), t.options_at(step));
    }
}

#[test]
fn invalid_schedules_are_typed_errors() {
    let ctx = Context::cpu();
    let s = || Schedule::new(&ctx, warm_up()).unwrap();
    let bad = |r: segloss::Result<Schedule>, what: &str| {
        assert!(
            matches!(
                r,
                Err(Error::InvalidOption {
                    name: "schedule",
                    ..
                })
            ),
            "{what}: {r:?}"
        );
    };
    bad(s().then(0, jml(), Ramp::Step), "a stage at step 0 again");
    let ramped = s().then(10, jml(), Ramp::Linear { steps: 20 }).unwrap();
    bad(
        ramped.then(20, jaccard_only(), Ramp::Step),
        "inside the previous ramp",
    );
    bad(
        s().then(10, jml(), Ramp::Linear { steps: 0 }),
        "a ramp of 0 steps",
    );
    let classic = jml().formulation(Formulation::Classic);
    bad(
        s().then(10, classic.clone(), Ramp::Cosine { steps: 5 }),
        "a ramp across a formulation switch",
    );
    // A step change may switch anything.
    assert!(s().then(10, classic, Ramp::Step).is_ok());
    // Options are validated as a Loss would.
    let r = s().then(10, jml().overlap_weight(-1.0), Ramp::Step);
    assert!(matches!(r, Err(Error::InvalidOption { .. })), "{r:?}");
}

fn same(what: &str, a: &LossOutput, b: &LossOutput) {
    assert_eq!(a.loss.to_bits(), b.loss.to_bits(), "{what}: loss");
    common::assert_bits_eq(
        what,
        a.grad.as_deref().unwrap_or(&[]),
        b.grad.as_deref().unwrap_or(&[]),
    );
}

#[test]
fn a_ramp_compiles_no_pipeline_and_equals_a_hand_built_loss_on_every_path() {
    let Some(ctx) = common::gpu() else { return };
    let mut rng = Rng::new(0x5c4ed);
    let data = Data::random(&mut rng, &[2, 4, 16, 16], false, false);
    let s = three_stages(&ctx);
    // First call of each stage (and of its ramp) may compile; note the count after.
    for step in [0u64, 100, 150, 300, 400] {
        s.at(step).unwrap().forward_backward(&data.batch()).unwrap();
    }
    let built = ctx.pipelines_built();
    assert!(built > 0);
    for step in (100..150).chain(300..400).step_by(3) {
        let scheduled = s.at(step).unwrap().forward_backward(&data.batch()).unwrap();
        let hand = segloss::Loss::new(&ctx, s.options_at(step)).unwrap();
        same(
            &format!("step {step}"),
            &scheduled,
            &hand.forward_backward(&data.batch()).unwrap(),
        );
        assert_close_ref(step, &scheduled, &data, &s);
    }
    assert_eq!(
        ctx.pipelines_built(),
        built,
        "a step inside a ramp compiled a pipeline"
    );

    // Split phase and GPU-resident at a ramp step: the same loss and gradient.
    let step = 125;
    let loss = s.at(step).unwrap();
    let host = loss.forward_backward(&data.batch()).unwrap();
    let st = loss.stats(&data.batch()).unwrap();
    same("split", &loss.finish(&st, true).unwrap(), &host);
    let x = common::storage(&ctx, &data.input);
    let y = common::storage(&ctx, &data.soft);
    let g = common::storage(&ctx, &vec![0.0; data.input.len()]);
    let gb = GpuBatch {
        shape: &data.shape,
        input: x.slice(..),
        target: GpuTarget::Soft(y.slice(..)),
        mask: None,
    };
    let mut out = loss
        .read(&loss.run(&gb, Some(g.slice(..))).unwrap())
        .unwrap();
    out.grad = Some(common::read_f32(&ctx, &g));
    same("GPU-resident", &out, &host);
    assert_eq!(ctx.pipelines_built(), built);
}

fn assert_close_ref(step: u64, got: &LossOutput, data: &Data, s: &Schedule) {
    common::assert_close(
        &format!("step {step}"),
        got,
        &data.reference(&s.options_at(step)),
        2e-4,
    );
}
