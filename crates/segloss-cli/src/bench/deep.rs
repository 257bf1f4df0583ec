//! `segloss bench --deep`: deep supervision on a 4-scale pyramid of each shape's spatial
//! size (S, S/2, S/4, S/8 per axis, the U-Net's heads), soft and index targets, host API:
//! one `DeepSupervision::forward_backward` call, alternated with the sum of K separate
//! `Loss::forward_backward` calls on targets pooled beforehand (what a user writes without
//! it; the pooling not timed) and with one full-resolution call; MONAI's
//! `DeepSupervisionLoss(DiceLoss(softmax=True, soft_label=True))` forward + backward on
//! PyTorch CPU (`benches/peer/monai_ds_bench.py`, a child process) in the same run.

use segloss::deep::{pool_host, DeepSupervision, DeepTarget, Head, Pooling};
use segloss::{Batch, Context, Formulation, Loss, LossOptions, Shape, Target};

use super::data::Data;
use super::timing::time_pair;
use crate::AnyResult;

/// The heads of a pyramid over `dims` ([B, C, S...]): S / 2^k per axis, k = 0..4.
pub fn pyramid(dims: &[usize]) -> AnyResult<Vec<Shape>> {
    (0..4)
        .map(|k| {
            let mut d = dims[..2].to_vec();
            d.extend(dims[2..].iter().map(|&s| (s >> k).max(1)));
            Ok(Shape::new(&d)?)
        })
        .collect()
}

/// The rows of one shape: (target, what, ms per call) and, on stdout, the table rows or
/// JSON lines.
pub fn rows(ctx: &Context, dims: &[usize], runs: usize, json: bool) -> AnyResult<()> {
    let options = LossOptions::dice().formulation(Formulation::Soft);
    let ds = DeepSupervision::new(ctx, options.clone())?;
    let loss = Loss::new(ctx, options)?;
    let shapes = pyramid(dims)?;
    let data: Vec<Data> = shapes.iter().map(Data::new).collect();
    let full = &shapes[0];
    let heads: Vec<Head<'_>> = shapes
        .iter()
        .zip(&data)
        .map(|(s, d)| Head {
            shape: s,
            input: &d.logits,
        })
        .collect();
    let (b, c) = (full.batch(), full.classes());
    for kind in ["soft", "index"] {
        let target = match kind {
            "soft" => DeepTarget::Soft(&data[0].soft),
            _ => DeepTarget::Index(&data[0].index),
        };
        // The separate calls' targets, pooled beforehand (not timed).
        let pooled: Vec<(Vec<f32>, Vec<bool>)> = shapes[1..]
            .iter()
            .map(|s| {
                pool_host(
                    (b, c, &full.dims()[2..]),
                    target,
                    None,
                    None,
                    &s.dims()[2..],
                    Pooling::Area,
                )
            })
            .collect();
        let full_target = match target {
            DeepTarget::Soft(t) => Target::Soft(t),
            DeepTarget::Index(t) => Target::Index(t),
        };
        let one_call = || {
            let batch = Batch {
                shape: full,
                input: &data[0].logits,
                target: full_target,
                mask: None,
            };
            loss.forward_backward(&batch).expect("full-resolution call");
        };
        let separate = || {
            one_call();
            for ((s, d), (t, m)) in shapes[1..].iter().zip(&data[1..]).zip(&pooled) {
                let batch = Batch {
                    shape: s,
                    input: &d.logits,
                    target: Target::Soft(t),
                    mask: Some(m),
                };
                loss.forward_backward(&batch).expect("separate call");
            }
        };
        let deep = || {
            ds.forward_backward(&heads, full, target, None)
                .expect("deep supervision call");
        };
        let (t_deep, t_sep, _) = time_pair(runs, deep, separate);
        let (t_deep2, t_one, _) = time_pair(runs, deep, one_call);
        let t_deep = t_deep.min(t_deep2);
        let sizes: Vec<Vec<usize>> = shapes.iter().map(|s| s.dims()[2..].to_vec()).collect();
        for (what, t) in [
            ("deep supervision", t_deep),
            ("4 separate calls (targets pooled before)", t_sep),
            ("one full-resolution call", t_one),
        ] {
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "shape": dims, "heads": sizes, "target": kind, "op": what,
                        "api": "host", "ms": t * 1e3, "vs_deep": t / t_deep,
                    })
                );
            } else {
                println!(
                    "| {dims:?} | {kind} | {what} | host | {:.1} | {:.2}× the deep call |",
                    t * 1e3,
                    t / t_deep
                );
            }
        }
    }
    Ok(())
}
