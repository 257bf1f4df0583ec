//! Split-phase API (`Loss::stats` → sum the shared blocks → `Loss::finish`): a batch
//! sharded over 1-4 workers, each with its own `Context`, gives the loss of the whole
//! batch and, per shard, the slice of its gradient, at every aggregation level.

mod common;

use common::{Data, Rng};
use segloss::{
    ActiveClasses, Aggregation, Context, CrossEntropy, Focal, GdlWeight, GpuBatch, GpuStats,
    GpuTarget, Loss, LossOptions, LossOutput, Overlap, Reduction, Shape, Stats,
};

/// Images `b0..b1` of `d`, as their own batch.
fn shard(d: &Data, b0: usize, b1: usize) -> Data {
    let dims = d.shape.dims();
    let (c, n) = (d.shape.classes(), d.shape.pixels());
    let mut sd = dims.to_vec();
    sd[0] = b1 - b0;
    Data {
        shape: Shape::new(&sd).unwrap(),
        input: d.input[b0 * c * n..b1 * c * n].to_vec(),
        soft: d.soft[b0 * c * n..b1 * c * n].to_vec(),
        index: d.index[b0 * n..b1 * n].to_vec(),
        mask: d.mask.as_ref().map(|m| m[b0 * n..b1 * n].to_vec()),
        use_index: d.use_index,
    }
}

/// Uneven contiguous shards of `b` images over `w` workers (the first ones larger).
fn bounds(b: usize, w: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut b0 = 0;
    for i in 0..w {
        let len = b / w + usize::from(i < b % w);
        out.push((b0, b0 + len));
        b0 += len;
    }
    out
}

/// Runs the split API over `workers` (one context each): every worker's output.
fn sharded(ctxs: &[Context], o: &LossOptions, d: &Data) -> Vec<LossOutput> {
    let w = ctxs.len();
    let shards: Vec<Data> = bounds(d.shape.batch(), w)
        .into_iter()
        .map(|(b0, b1)| shard(d, b0, b1))
        .collect();
    let losses: Vec<Loss> = ctxs.iter().map(|c| common::loss(c, o.clone())).collect();
    let mut stats: Vec<Stats> = losses
        .iter()
        .zip(&shards)
        .map(|(l, s)| l.stats(&s.batch()).unwrap())
        .collect();
    // The all-reduce: a plain sum, in worker order.
    let mut sum = vec![0.0f32; stats[0].shared().len()];
    for st in &stats {
        for (a, b) in sum.iter_mut().zip(st.shared()) {
            *a += b;
        }
    }
    for st in &mut stats {
        st.shared_mut().copy_from_slice(&sum);
    }
    losses
        .iter()
        .zip(&stats)
        .map(|(l, st)| l.finish(st, true).unwrap())
        .collect()
}

/// The option sets: every level alone and mixed, both active-class rules, the three
/// reductions where they apply, with and without the background.
fn option_sets() -> Vec<(String, LossOptions)> {
    let levels = [
        ("dataset", Aggregation::DATASET),
        ("image", Aggregation::IMAGE),
        ("class", Aggregation::CLASS),
        (
            "mixed",
            Aggregation {
                dataset: 0.5,
                image: 0.3,
                class: 0.2,
            },
        ),
    ];
    let mut out = Vec::new();
    for (name, agg) in levels {
        let reductions: &[Reduction] = if agg.levels() == 1 {
            &[Reduction::Mean, Reduction::Sum, Reduction::None]
        } else {
            &[Reduction::Mean]
        };
        for &r in reductions {
            for present in [false, true] {
                let mut o = LossOptions::jaccard().aggregation(agg).reduction(r);
                if present {
                    o = o
                        .active_classes(ActiveClasses::Present { threshold: 0.5 })
                        .include_background(false);
                }
                out.push((format!("{name}/{r:?}/present={present}"), o.clone()));
                // Compound: CE (weighted, smoothed: a global normaliser) + focal.
                if r != Reduction::None {
                    let mut ce = CrossEntropy::softmax(0.5);
                    ce.class_weights = Some(vec![0.5, 1.0, 1.5, 2.0]);
                    ce.label_smoothing = 0.1;
                    let o = o
                        .overlap_weight(0.75)
                        .cross_entropy(ce)
                        .focal(Focal::softmax(0.3, 2.0));
                    out.push((format!("{name}/{r:?}/present={present}/compound"), o));
                }
            }
        }
    }
    // Generalized Dice at both of its levels (dataset: weights from the global class
    // volumes, computed after the all-reduce; image: per-image items), every reduction,
    // and with its focal term.
    for (name, agg) in [
        ("dataset", Aggregation::DATASET),
        ("image", Aggregation::IMAGE),
    ] {
        for r in [Reduction::Mean, Reduction::Sum, Reduction::None] {
            for weight in [GdlWeight::Square, GdlWeight::Simple, GdlWeight::Uniform] {
                let mut o = LossOptions::dice().aggregation(agg).reduction(r);
                o.overlap = Overlap::GeneralizedDice { weight };
                o.include_background = weight != GdlWeight::Simple;
                out.push((format!("gdl/{name}/{r:?}/{weight:?}"), o.clone()));
                if r != Reduction::None && weight == GdlWeight::Square {
                    let o = o.overlap_weight(0.8).focal(Focal::sigmoid(0.6, 2.0));
                    out.push((format!("gdl/{name}/{r:?}/focal"), o));
                }
            }
        }
    }
    out
}

/// Largest |a − b| / (|b| + floor) over a slice.
fn max_rel(a: &[f32], b: &[f32], floor: f64) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).abs() / (f64::from(*y).abs() + floor))
        .fold(0.0, f64::max)
}

fn check_sharding(ctxs: &[Context], name: &str) {
    let mut rng = Rng::new(606);
    let mut worst = (0.0f64, 0.0f64);
    for (case, o) in option_sets() {
        for use_index in [false, true] {
            // Sparse index maps: some classes are absent from some images, so the
            // present(threshold) rule gives images different active counts.
            let mut d = Data::random(&mut rng, &[5, 4, 6, 7], use_index, use_index);
            if use_index {
                for (j, v) in d.index.iter_mut().enumerate() {
                    if j / 42 == 1 && *v == 2 {
                        *v = 1; // class 2 absent from image 1
                    }
                }
            }
            let full = common::loss(&ctxs[0], o.clone())
                .forward_backward(&d.batch())
                .unwrap();
            let want = d.reference(&o);
            common::assert_close(&format!("{name} unsharded {case}"), &full, &want, 1e-4);
            let (c, n) = (d.shape.classes(), d.shape.pixels());
            for w in 1..=ctxs.len() {
                let outs = sharded(&ctxs[..w], &o, &d);
                let what = format!("{name} {case} index={use_index} workers={w}");
                let local_values = o.reduction == Reduction::None && o.aggregation.dataset == 0.0;
                for (out, (b0, b1)) in outs.iter().zip(bounds(d.shape.batch(), w)) {
                    // The loss: the whole batch's (image-level `none`: the sum of this
                    // shard's values).
                    let want_loss = if local_values {
                        let k = want.values.as_ref().unwrap().len() / d.shape.batch();
                        want.values.as_ref().unwrap()[b0 * k..b1 * k].iter().sum()
                    } else {
                        want.loss
                    };
                    let dl = (f64::from(out.loss) - want_loss).abs();
                    assert!(
                        dl <= 1e-4 * want_loss.abs() + 1e-6,
                        "{what}: loss {} vs {want_loss}",
                        out.loss
                    );
                    if !local_values {
                        let d1 = (out.loss - full.loss).abs() as f64;
                        worst.0 = worst.0.max(d1 / (f64::from(full.loss).abs() + 1e-6));
                    }
                    // The gradient: this shard's slice of the whole batch's.
                    let g = out.grad.as_ref().unwrap();
                    let slice = &want.grad.as_ref().unwrap()[b0 * c * n..b1 * c * n];
                    let gmax = want
                        .grad
                        .as_ref()
                        .unwrap()
                        .iter()
                        .fold(0.0f64, |m, x| m.max(x.abs()));
                    for (i, (a, b)) in g.iter().zip(slice).enumerate() {
                        assert!(
                            (f64::from(*a) - b).abs() <= 1e-4 * gmax + 1e-7,
                            "{what}: grad[{i}] of shard {b0}..{b1}: {a} vs {b}"
                        );
                    }
                    let full_slice = &full.grad.as_ref().unwrap()[b0 * c * n..b1 * c * n];
                    let gd = g
                        .iter()
                        .zip(full_slice)
                        .map(|(a, b)| f64::from((a - b).abs()) / gmax)
                        .fold(0.0, f64::max);
                    worst.1 = worst.1.max(gd);
                    // Per-item values: global [C'] at dataset level, this shard's rows
                    // of [B, C'] otherwise.
                    if let Some(v) = &out.values {
                        let all = want.values.as_ref().unwrap();
                        let want_v: Vec<f32> = if local_values {
                            let k = all.len() / d.shape.batch();
                            all[b0 * k..b1 * k].iter().map(|&x| x as f32).collect()
                        } else {
                            all.iter().map(|&x| x as f32).collect()
                        };
                        assert!(max_rel(v, &want_v, 1e-3) <= 1e-4, "{what}: values");
                    }
                }
                if w == 1 && name == "gpu" {
                    // One worker: the split API is the one-call API, bit for bit.
                    assert_eq!(outs[0], full, "{what}: one worker vs one call");
                }
            }
        }
    }
    eprintln!(
        "{name}: sharded vs unsharded, worst loss relative difference {:.2e}, worst gradient \
         difference {:.2e} of max |grad|",
        worst.0, worst.1
    );
}

#[test]
fn sharding_over_1_to_4_gpu_contexts_matches_the_whole_batch() {
    let Some(first) = common::gpu() else { return };
    // One context per worker: separate wgpu devices (lavapipe makes as many as asked).
    let mut ctxs = vec![first];
    for _ in 1..4 {
        ctxs.push(common::gpu().unwrap());
    }
    check_sharding(&ctxs, "gpu");
}

#[test]
fn sharding_over_cpu_contexts_matches_the_whole_batch() {
    let ctxs: Vec<Context> = (0..4).map(|_| Context::cpu()).collect();
    check_sharding(&ctxs, "cpu");
}

/// What each level must exchange: with only the documented words summed (the others
/// left local), the result is the global one; without them it is not.
#[test]
fn each_level_exchanges_exactly_what_the_layout_says() {
    let ctx = common::gpu().unwrap_or_else(Context::cpu);
    let mut rng = Rng::new(77);
    let d = Data::random(&mut rng, &[4, 3, 5, 5], true, false);
    let c = d.shape.classes();
    let words = |level: &str| -> Vec<usize> {
        let row = |c: usize, j: usize| 8 + 8 * c + j;
        match level {
            "dataset" => (0..c)
                .flat_map(|k| (0..4).map(move |j| row(k, j)))
                .collect(),
            "image" => vec![1, 2],
            _ => (0..c).flat_map(|k| [row(k, 4), row(k, 5)]).collect(),
        }
    };
    for (level, agg) in [
        ("dataset", Aggregation::DATASET),
        ("image", Aggregation::IMAGE),
        ("class", Aggregation::CLASS),
    ] {
        let o = LossOptions::dice()
            .aggregation(agg)
            .active_classes(ActiveClasses::Present { threshold: 0.5 });
        let loss = common::loss(&ctx, o.clone());
        let want = loss.forward_backward(&d.batch()).unwrap();
        for exchange in [true, false] {
            let shards = [shard(&d, 0, 1), shard(&d, 1, 4)];
            let mut st: Vec<Stats> = shards
                .iter()
                .map(|s| loss.stats(&s.batch()).unwrap())
                .collect();
            let total: Vec<f32> = (0..st[0].shared().len())
                .map(|i| st[0].shared()[i] + st[1].shared()[i])
                .collect();
            for s in &mut st {
                s.shared_mut()[0] = total[0];
                if exchange {
                    for &i in &words(level) {
                        s.shared_mut()[i] = total[i];
                    }
                }
            }
            let out: Vec<LossOutput> = st.iter().map(|s| loss.finish(s, true).unwrap()).collect();
            let ok = out
                .iter()
                .all(|x| (x.loss - want.loss).abs() <= 1e-5 * want.loss.abs() + 1e-6);
            assert_eq!(
                ok,
                exchange,
                "{level}: exchange={exchange}: losses {:?} vs {}",
                out.iter().map(|x| x.loss).collect::<Vec<_>>(),
                want.loss
            );
            if exchange {
                let g: Vec<f32> = out.iter().flat_map(|x| x.grad.clone().unwrap()).collect();
                let gw = want.grad.as_ref().unwrap();
                let gmax = gw.iter().fold(0.0f32, |m, x| m.max(x.abs()));
                for (a, b) in g.iter().zip(gw) {
                    assert!(
                        (a - b).abs() <= 1e-5 * gmax + 1e-7,
                        "{level}: grad {a} vs {b}"
                    );
                }
            }
        }
    }
}

/// The GPU-resident split API: statistics left on the GPU, the shared buffers summed
/// through the host, the loss and gradients finished on each device.
#[test]
fn gpu_resident_split_phase_matches_the_host_api() {
    let Some(ctx_a) = common::gpu() else { return };
    let ctx_b = common::gpu().unwrap();
    let mut rng = Rng::new(5);
    let d = Data::random(&mut rng, &[3, 4, 9, 9], false, false);
    let o = LossOptions::dice().aggregation(Aggregation::DATASET);
    let want = d.reference(&o);
    let (c, n) = (d.shape.classes(), d.shape.pixels());
    let parts = [(0, 1, &ctx_a), (1, 3, &ctx_b)];
    let storage = |ctx: &Context, data: &[f32]| {
        let b = ctx
            .device()
            .unwrap()
            .create_buffer(&wgpu::BufferDescriptor {
                label: None,
                size: 4 * data.len() as u64,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_DST
                    | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
        ctx.queue()
            .unwrap()
            .write_buffer(&b, 0, bytemuck::cast_slice(data));
        b
    };
    // The local phase on one device: encode_stats, submitted.
    fn local_phase(
        ctx: &Context,
        loss: &Loss,
        shape: &Shape,
        x: &wgpu::Buffer,
        y: &wgpu::Buffer,
    ) -> GpuStats {
        let mut enc = ctx
            .device()
            .unwrap()
            .create_command_encoder(&Default::default());
        let batch = GpuBatch {
            shape,
            input: x.slice(..),
            target: GpuTarget::Soft(y.slice(..)),
            mask: None,
        };
        let st = loss.encode_stats(&mut enc, &batch).unwrap();
        ctx.queue().unwrap().submit([enc.finish()]);
        st
    }
    // Invalid data in the local phase: read_shared reports it.
    {
        let s = shard(&d, 0, 1);
        let mut bad = s.input.clone();
        bad[3] = f32::NAN;
        let (x, y) = (storage(&ctx_a, &bad), storage(&ctx_a, &s.soft));
        let loss = common::loss(&ctx_a, o.clone());
        let st = local_phase(&ctx_a, &loss, &s.shape, &x, &y);
        assert!(matches!(
            loss.read_shared(&st),
            Err(segloss::Error::NonFiniteInput { .. })
        ));
    }
    let mut held = Vec::new();
    let mut sum = vec![0.0f32; Stats::shared_len(c)];
    for &(b0, b1, ctx) in &parts {
        let s = shard(&d, b0, b1);
        let (x, y, g) = (
            storage(ctx, &s.input),
            storage(ctx, &s.soft),
            storage(ctx, &vec![0.0; s.input.len()]),
        );
        let loss = common::loss(ctx, o.clone());
        let st = local_phase(ctx, &loss, &s.shape, &x, &y);
        for (a, b) in sum.iter_mut().zip(loss.read_shared(&st).unwrap()) {
            *a += b;
        }
        held.push((s, x, y, g, loss, st, ctx));
    }
    for (s, x, y, g, loss, st, ctx) in &held {
        let queue = ctx.queue().unwrap();
        loss.write_shared(st, &sum).unwrap();
        assert!(loss.write_shared(st, &sum[1..]).is_err());
        let mut enc = ctx
            .device()
            .unwrap()
            .create_command_encoder(&Default::default());
        let batch = GpuBatch {
            shape: &s.shape,
            input: x.slice(..),
            target: GpuTarget::Soft(y.slice(..)),
            mask: None,
        };
        let out = loss
            .encode_finish(&mut enc, &batch, st, Some(g.slice(..)))
            .unwrap();
        queue.submit([enc.finish()]);
        let got = loss.read(&out).unwrap();
        assert!((f64::from(got.loss) - want.loss).abs() <= 1e-5 * want.loss + 1e-6);
        let grad = common::read_f32(ctx, g);
        let b0 = if s.shape.batch() == 1 { 0 } else { 1 };
        let slice = &want.grad.as_ref().unwrap()[b0 * c * n..][..grad.len()];
        let gmax = slice.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        for (a, b) in grad.iter().zip(slice) {
            assert!((f64::from(*a) - b).abs() <= 1e-4 * gmax + 1e-7);
        }
    }
}

/// Statistics that cannot finish this call are typed errors.
#[test]
fn mismatched_statistics_are_errors() {
    let ctx = common::gpu().unwrap_or_else(Context::cpu);
    let mut rng = Rng::new(9);
    let d = Data::random(&mut rng, &[2, 3, 4, 4], false, false);
    let dice = common::loss(&ctx, LossOptions::dice());
    let jac = common::loss(&ctx, LossOptions::jaccard());
    let mut st = dice.stats(&d.batch()).unwrap();
    assert!(matches!(
        jac.finish(&st, false),
        Err(segloss::Error::InvalidStats(_))
    ));
    st.shared_mut()[9] = f32::NAN;
    assert!(matches!(
        dice.finish(&st, false),
        Err(segloss::Error::InvalidStats(_))
    ));
    st.shared_mut()[9] = 0.0;
    st.shared_mut()[0] = 1.0; // fewer images than this worker holds
    assert!(matches!(
        dice.finish(&st, false),
        Err(segloss::Error::InvalidStats(_))
    ));
    assert!(st.add_shared(&[0.0; 3]).is_err());
    // Statistics of another device: a typed error, not a panic.
    if let Some(other) = ctx.device().and_then(|_| common::gpu()) {
        let st = dice.stats(&d.batch()).unwrap();
        let err = common::loss(&other, LossOptions::dice()).finish(&st, true);
        assert!(
            matches!(err, Err(segloss::Error::InvalidStats(_))),
            "finished on another device: {err:?}"
        );
    }
    let cpu = common::loss(&Context::cpu(), LossOptions::dice());
    let st_cpu = cpu.stats(&d.batch()).unwrap();
    if ctx.device().is_some() {
        assert!(matches!(
            dice.finish(&st_cpu, false),
            Err(segloss::Error::InvalidStats(_))
        ));
    }
}
