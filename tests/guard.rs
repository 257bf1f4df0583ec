//! The soft-label guard (issue 23): the classic formulation on a kept soft target
//! strictly inside (0, 1) is reported by every path — the GPU's statistics kernel (a
//! status bit), the CPU reference, host, GPU-resident and split-phase calls, the MONAI
//! constructors — as `LossOutput::soft_targets_with_classic`, or as
//! `Error::SoftTargetsWithClassic` under `SoftLabelGuard::Error`; values are unchanged.

mod common;

use common::{assert_close, Data, Rng};
use segloss::monai::DiceLoss;
use segloss::{Context, Error, Formulation, GpuBatch, GpuTarget, LossOptions, SoftLabelGuard};
use wgpu::util::DeviceExt;

/// The data cases: (name, data, whether a kept target lies strictly inside (0, 1)).
fn cases() -> Vec<(&'static str, Data, bool)> {
    let mut rng = Rng::new(0x5afe);
    let dims = [2usize, 3, 4, 4];
    let base = Data::random(&mut rng, &dims, false, false);
    let (c, n) = (base.shape.classes(), base.shape.pixels());
    // One-hot soft targets from the index map: hard labels.
    let onehot: Vec<f32> = (0..base.shape.len())
        .map(|j| {
            let (b, rest) = (j / (c * n), j % (c * n));
            let (cls, i) = (rest / n, rest % n);
            f32::from(base.index[b * n + i] as usize == cls)
        })
        .collect();
    let hard = Data {
        soft: onehot.clone(),
        ..clone(&base)
    };
    // The same with one soft value, at image 1, class 2, pixel 5.
    let at = (c + 2) * n + 5;
    let mut one = onehot;
    one[at] = 0.5;
    let soft = Data {
        soft: one.clone(),
        ..clone(&base)
    };
    // That pixel masked out: nothing kept is soft.
    let mut mask = vec![true; base.shape.map_len()];
    mask[n + 5] = false;
    let masked = Data {
        soft: one,
        mask: Some(mask),
        ..clone(&base)
    };
    let index = Data {
        use_index: true,
        ..clone(&base)
    };
    vec![
        ("hard one-hot", hard, false),
        ("one soft value", soft, true),
        ("soft value masked", masked, false),
        ("index targets", index, false),
        ("random soft", base, true),
    ]
}

fn clone(d: &Data) -> Data {
    Data {
        shape: d.shape.clone(),
        input: d.input.clone(),
        soft: d.soft.clone(),
        index: d.index.clone(),
        mask: d.mask.clone(),
        use_index: d.use_index,
    }
}

/// Host and split-phase calls on `ctx`, every formulation, warn and error.
fn host_paths(ctx: &Context) {
    let mut checked = 0;
    for (name, data, soft) in cases() {
        for form in [
            Formulation::Classic,
            Formulation::Soft,
            Formulation::Squared,
        ] {
            let o = LossOptions::dice().formulation(form);
            let fires = soft && form == Formulation::Classic;
            let what = format!("{name}, {form:?}, {:?}", ctx.backend());
            let loss = common::loss(ctx, o.clone());
            let out = loss.forward_backward(&data.batch()).unwrap();
            assert_eq!(out.soft_targets_with_classic, fires, "{what}: host");
            // The notice changes nothing else: values and gradient are the reference's.
            assert_close(&what, &out, &data.reference(&o), 2e-4);
            let st = loss.stats(&data.batch()).unwrap();
            let fin = loss.finish(&st, true).unwrap();
            assert_eq!(fin.soft_targets_with_classic, fires, "{what}: split");
            let mut grad = vec![0.0; data.shape.len()];
            let into = loss
                .forward_backward_into(&data.batch(), &mut grad)
                .unwrap();
            assert_eq!(into.soft_targets_with_classic, fires, "{what}: into");

            let strict = common::loss(ctx, o.soft_label_guard(SoftLabelGuard::Error));
            let r = strict.forward(&data.batch());
            if fires {
                assert!(
                    matches!(r, Err(Error::SoftTargetsWithClassic)),
                    "{what}: {r:?}"
                );
                let st = strict.stats(&data.batch()).unwrap();
                let r = strict.finish(&st, false);
                assert!(
                    matches!(r, Err(Error::SoftTargetsWithClassic)),
                    "{what}: {r:?}"
                );
            } else {
                assert!(!r.unwrap().soft_targets_with_classic, "{what}: strict");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 15);
}

#[test]
fn the_guard_fires_exactly_on_classic_with_kept_soft_targets_on_the_gpu() {
    let Some(ctx) = common::gpu() else { return };
    host_paths(&ctx);
}

#[test]
fn the_guard_fires_exactly_on_classic_with_kept_soft_targets_on_the_cpu_reference() {
    host_paths(&Context::cpu());
}

#[test]
fn the_guard_on_the_gpu_resident_path() {
    let Some(ctx) = common::gpu() else { return };
    for (name, data, soft) in cases().into_iter().filter(|c| !c.1.use_index) {
        let x = common::storage(&ctx, &data.input);
        let y = common::storage(&ctx, &data.soft);
        let m = data.mask.as_ref().map(|m| {
            // One byte per pixel, padded to whole words (a PyTorch bool tensor's bytes).
            let mut bytes: Vec<u8> = m.iter().map(|&k| u8::from(k)).collect();
            bytes.resize(bytes.len().div_ceil(4) * 4, 0);
            let dev = ctx.device().unwrap();
            dev.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: None,
                contents: &bytes,
                usage: wgpu::BufferUsages::STORAGE,
            })
        });
        let gb = GpuBatch {
            shape: &data.shape,
            input: x.slice(..),
            target: GpuTarget::Soft(y.slice(..)),
            mask: m.as_ref().map(|m| m.slice(..)),
        };
        for form in [Formulation::Classic, Formulation::Soft] {
            let o = LossOptions::dice().formulation(form);
            let fires = soft && form == Formulation::Classic;
            let loss = common::loss(&ctx, o.clone());
            let out = loss.read(&loss.run(&gb, None).unwrap()).unwrap();
            assert_eq!(out.soft_targets_with_classic, fires, "{name} {form:?}");
            assert_close(name, &out, &data.reference(&o), 2e-4);
            let strict = common::loss(&ctx, o.soft_label_guard(SoftLabelGuard::Error));
            let r = strict.read(&strict.run(&gb, None).unwrap());
            assert_eq!(
                matches!(r, Err(Error::SoftTargetsWithClassic)),
                fires,
                "{name} {form:?}: {r:?}"
            );
        }
    }
}

#[test]
fn monai_constructors_report_without_refusing() {
    let ctx = common::gpu().unwrap_or_else(Context::cpu);
    let (_, data, _) = cases().remove(1);
    for soft_label in [false, true] {
        let o = DiceLoss {
            softmax: true,
            soft_label,
            ..Default::default()
        }
        .options();
        assert_eq!(o.soft_label_guard, SoftLabelGuard::Warn);
        for ctx in [&ctx, &Context::cpu()] {
            let out = common::loss(ctx, o.clone()).forward(&data.batch()).unwrap();
            assert_eq!(
                out.soft_targets_with_classic, !soft_label,
                "soft_label={soft_label}"
            );
        }
    }
    // The error names the fix.
    let msg = Error::SoftTargetsWithClassic.to_string();
    assert!(msg.contains("Formulation::Soft"), "{msg}");
}
