//! The zero-copy path (burn's default wgpu device shared with segloss) against the host
//! path (a wgpu device burn created on its own, so segloss copies): the same loss and
//! gradient, with masks, i64 and negative ignored labels, non-contiguous logits and
//! several steps; invalid data gives a NaN loss and a zero gradient, not a panic.

mod common;

use burn::tensor::{Device, Int, Tensor, TensorData};
use segloss::{Aggregation, Context, LossOptions, Reduction};
use segloss_burn::{SegLossConfig, Targets};

use common::{data, shared};

/// A second wgpu runtime, registered with burn but not with segloss-burn: segloss
/// cannot share it (the host path).
fn unshared() -> Device {
    static UNSHARED: std::sync::OnceLock<Device> = std::sync::OnceLock::new();
    UNSHARED
        .get_or_init(|| {
            use segloss::wgpu;
            let instance = wgpu::Instance::new(
                wgpu::InstanceDescriptor::new_without_display_handle_from_env(),
            );
            let adapter =
                pollster::block_on(instance.request_adapter(&Default::default())).unwrap();
            // burn's kernels want the adapter's features (float atomics) and limits.
            let (device, queue) =
                pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
                    required_features: adapter.features(),
                    required_limits: adapter.limits(),
                    ..Default::default()
                }))
                .unwrap();
            let backend = adapter.get_info().backend;
            let setup = burn::tensor::wgpu::WgpuSetup {
                instance,
                adapter,
                device,
                queue,
                backend,
            };
            Device::wgpu_options().setup(setup).init().unwrap()
        })
        .clone()
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.to_data_as::<f32>().as_slice::<f32>().unwrap().to_vec()
}

fn close(what: &str, got: &[f32], want: &[f32], rel: f32) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let max = want.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-12);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= rel * max, "{what}[{i}]: {g} vs {w}");
    }
}

/// Loss and logits gradient of one call on `dev` (with autodiff).
fn run(
    dev: &Device,
    options: &LossOptions,
    x: &[f32],
    dims: [usize; 4],
    target: Result<&[f32], &[i64]>,
    mask: Option<&[bool]>,
    permuted: bool,
) -> (f32, Vec<f32>) {
    let dev = dev.clone().autodiff();
    let loss = SegLossConfig::new(options.clone())
        .init_on(&Context::new_or_cpu())
        .unwrap();
    // Non-contiguous logits: stored [B, H, W, C], viewed [B, C, H, W].
    let logits = if permuted {
        let mut nhwc = vec![0.0; x.len()];
        let [b, c, h, w] = dims;
        for (i, v) in x.iter().enumerate() {
            let (bi, ci, p) = (i / (c * h * w), (i / (h * w)) % c, i % (h * w));
            nhwc[(bi * h * w + p) * c + ci] = *v;
        }
        Tensor::<4>::from_data(TensorData::new(nhwc, [b, h, w, c]), &dev).permute([0, 3, 1, 2])
    } else {
        Tensor::<4>::from_data(TensorData::new(x.to_vec(), dims), &dev)
    }
    .require_grad();
    let targets = match target {
        Ok(y) => Targets::<4, 3>::Soft(Tensor::from_data(TensorData::new(y.to_vec(), dims), &dev)),
        Err(k) => Targets::Index(Tensor::<3, Int>::from_data(
            TensorData::new(k.to_vec(), [dims[0], dims[2], dims[3]]),
            &dev,
        )),
    };
    let l = loss.forward_masked(logits.clone(), targets, mask).unwrap();
    let grads = l.clone().backward();
    let g = values(logits.grad(&grads).unwrap());
    assert!(loss.take_error().is_none());
    (l.into_scalar::<f32>(), g)
}

#[test]
fn zero_copy_equals_the_host_path() {
    let (z, h) = (shared(), unshared());
    let probe = SegLossConfig::new(LossOptions::dice()).init().unwrap();
    assert!(probe.is_zero_copy(&z) && probe.is_zero_copy(&z.clone().autodiff()));
    assert!(!probe.is_zero_copy(&h));
    let dims = [2usize, 5, 12, 9];
    let n: usize = dims.iter().product();
    let x = data(n, 1, -3.0, 3.0);
    let y = data(n, 2, 0.0, 1.0);
    let k: Vec<i64> = data(n / 5, 3, 0.0, 5.0)
        .iter()
        .enumerate()
        .map(|(i, v)| if i % 7 == 0 { -100 } else { (*v as i64).min(4) })
        .collect();
    let mask: Vec<bool> = (0..n / 5).map(|i| i % 5 != 1).collect();
    let cases: Vec<(&str, LossOptions, bool, bool, bool)> = vec![
        ("dice soft", LossOptions::dice(), false, false, false),
        (
            "jaccard index ignore -100, mask",
            LossOptions::jaccard()
                .ignore_index(-100)
                .aggregation(Aggregation::DATASET),
            true,
            true,
            false,
        ),
        (
            "tversky soft, permuted logits",
            LossOptions::tversky(0.3, 0.7).reduction(Reduction::Sum),
            false,
            false,
            true,
        ),
        (
            "dice + CE, index",
            LossOptions::dice().cross_entropy(segloss::CrossEntropy::softmax(0.5)),
            true,
            false,
            false,
        ),
    ];
    for (what, o, index, masked, permuted) in cases {
        let k_ok: Vec<i64> = if o.ignore_index.is_some() {
            k.clone()
        } else {
            k.iter().map(|v| v.rem_euclid(5)).collect()
        };
        let t: Result<&[f32], &[i64]> = if index { Err(&k_ok) } else { Ok(&y) };
        let m = masked.then_some(&mask[..]);
        let (lz, gz) = run(&z, &o, &x, dims, t, m, permuted);
        let (lh, gh) = run(&h, &o, &x, dims, t, m, permuted);
        assert!(
            (lz - lh).abs() <= 1e-6 * lh.abs().max(1.0),
            "{what}: {lz} vs {lh}"
        );
        close(what, &gz, &gh, 1e-6);
        // Repeated steps give the same numbers (deterministic, nothing left pending).
        let (lz2, gz2) = run(&z, &o, &x, dims, t, m, permuted);
        assert_eq!(lz.to_bits(), lz2.to_bits(), "{what}: repeat");
        assert_eq!(gz, gz2, "{what}: repeat grad");
    }
}

#[test]
fn invalid_data_gives_nan_and_a_zero_gradient_not_a_panic() {
    let dev = shared().autodiff();
    let dims = [1usize, 3, 4, 4];
    let n: usize = dims.iter().product();
    let mut x = data(n, 4, -1.0, 1.0);
    x[5] = f32::NAN;
    let loss = SegLossConfig::new(LossOptions::dice()).init().unwrap();
    let logits = Tensor::<4>::from_data(TensorData::new(x, dims), &dev).require_grad();
    let y = Tensor::<4>::from_data(TensorData::new(data(n, 5, 0.0, 1.0), dims), &dev);
    let l = loss
        .forward(logits.clone(), Targets::<4, 3>::Soft(y))
        .unwrap();
    let g = values(logits.grad(&l.clone().backward()).unwrap());
    assert!(l.into_scalar::<f32>().is_nan());
    assert!(g.iter().all(|v| *v == 0.0));
    // Shapes are checked before anything is queued.
    let short = Tensor::<3, Int>::zeros([1, 4, 3], &dev);
    let logits = Tensor::<4>::zeros(dims, &dev);
    assert!(matches!(
        loss.forward(logits, Targets::Index(short)),
        Err(segloss::Error::LengthMismatch { what: "target", .. })
    ));
}

#[test]
fn a_training_step_moves_the_logits_toward_the_labels() {
    // Plain gradient descent on the logits themselves, through burn's autodiff: the
    // zero-copy loss must decrease.
    let dev = shared().autodiff();
    let dims = [2usize, 4, 8, 8];
    let n: usize = dims.iter().product();
    let y = Tensor::<4>::from_data(TensorData::new(data(n, 9, 0.0, 1.0), dims), &dev);
    let loss = SegLossConfig::new(LossOptions::jaccard()).init().unwrap();
    let mut x = Tensor::<4>::from_data(TensorData::new(data(n, 8, -1.0, 1.0), dims), &dev);
    let mut seen = Vec::new();
    for _ in 0..20 {
        let xi = x.clone().require_grad();
        let l = loss
            .forward(xi.clone(), Targets::<4, 3>::Soft(y.clone()))
            .unwrap();
        let g = xi.grad(&l.clone().backward()).unwrap();
        seen.push(l.into_scalar::<f32>());
        x = x - g.mul_scalar(500.0);
    }
    assert!(seen[19] < 0.85 * seen[0], "{seen:?}");
}

#[test]
fn the_incoming_gradient_scales_the_gradient_on_the_device() {
    // The backward op reads the loss's incoming gradient on the device: a loss used
    // inside a larger expression (-1.5 · L + other terms) gets -1.5 · dL/dx.
    let dev = shared().autodiff();
    let dims = [2usize, 3, 6, 5];
    let n: usize = dims.iter().product();
    let x = data(n, 11, -2.0, 2.0);
    let k: Vec<i64> = (0..n / 3).map(|i| (i % 3) as i64).collect();
    let loss =
        SegLossConfig::new(LossOptions::dice().cross_entropy(segloss::CrossEntropy::softmax(0.3)))
            .init()
            .unwrap();
    let grad_of = |scale: Option<f32>| {
        let logits = Tensor::<4>::from_data(TensorData::new(x.clone(), dims), &dev).require_grad();
        let labels = Tensor::<3, Int>::from_data(TensorData::new(k.clone(), [2, 6, 5]), &dev);
        let l = loss
            .forward(logits.clone(), Targets::Index(labels))
            .unwrap();
        let total = match scale {
            Some(s) => l.mul_scalar(s) + logits.clone().sum().mul_scalar(0.0),
            None => l,
        };
        values(logits.grad(&total.backward()).unwrap())
    };
    let plain = grad_of(None);
    let scaled = grad_of(Some(-1.5));
    let want: Vec<f32> = plain.iter().map(|g| -1.5 * g).collect();
    close("-1.5 · grad", &scaled, &want, 1e-6);
    assert!(plain.iter().any(|g| *g != 0.0));
}

#[test]
fn soft_targets_with_ignore_index_take_the_host_path_and_agree() {
    // MONAI's ignore rule on soft targets reads every channel of a pixel: the GPU-resident
    // kernels do not implement it, so such a call takes the host path, on any device.
    let dims = [1usize, 3, 5, 4];
    let n: usize = dims.iter().product();
    let x = data(n, 21, -2.0, 2.0);
    let mut y = data(n, 22, 0.0, 1.0);
    // Channel 1 (the ignore channel, MONAI's rule) holds 0 or 1: pixels where it is 1
    // are ignored.
    y[20..40]
        .iter_mut()
        .enumerate()
        .for_each(|(i, v)| *v = f32::from(u8::from(i % 3 == 0)));
    let o = LossOptions::dice().ignore_index(1);
    let (lz, gz) = run(&shared(), &o, &x, dims, Ok(&y), None, false);
    let (lh, gh) = run(&unshared(), &o, &x, dims, Ok(&y), None, false);
    assert!(lz.is_finite() && (lz - lh).abs() <= 1e-6 * lh.abs().max(1.0));
    close("soft + ignore_index", &gz, &gh, 1e-6);
}

#[test]
fn the_soft_label_guard_is_read_back_on_demand_on_both_paths() {
    use segloss::{Formulation, SoftLabelGuard};
    let dims = [2usize, 3, 4, 5];
    let n: usize = dims.iter().product();
    let x = data(n, 31, -2.0, 2.0);
    // Soft targets strictly inside (0, 1), and one-hot ones.
    let soft = data(n, 32, 0.1, 0.9);
    let hard: Vec<f32> = (0..n)
        .map(|i| f32::from(u8::from((i / 20) % 3 == (i % 20) % 3)))
        .collect();
    for (path, dev) in [("zero-copy", shared()), ("host", unshared())] {
        let dev = dev.autodiff();
        let call = |loss: &segloss_burn::SegLoss, x: &[f32], y: &[f32]| {
            let logits = Tensor::<4>::from_data(TensorData::new(x.to_vec(), dims), &dev);
            let y = Tensor::<4>::from_data(TensorData::new(y.to_vec(), dims), &dev);
            // Reading the loss runs burn's queue, the zero-copy op included.
            let l = loss.forward(logits, Targets::<4, 3>::Soft(y))?;
            Ok::<f32, segloss::Error>(l.into_scalar::<f32>())
        };
        let classic = LossOptions::dice().formulation(Formulation::Classic);
        let loss = SegLossConfig::new(classic.clone()).init().unwrap();
        assert_eq!(loss.is_zero_copy(&dev), path == "zero-copy");
        assert_eq!(loss.soft_targets_with_classic().unwrap(), None, "{path}");
        // The last call that has run decides: soft, hard, soft again.
        for (y, fires) in [(&soft, true), (&hard, false), (&soft, true)] {
            assert!(call(&loss, &x, y).unwrap().is_finite());
            assert_eq!(
                loss.soft_targets_with_classic().unwrap(),
                Some(fires),
                "{path}: classic, soft targets {fires}"
            );
        }
        let fine = SegLossConfig::new(LossOptions::dice()).init().unwrap();
        call(&fine, &x, &soft).unwrap();
        assert_eq!(fine.soft_targets_with_classic().unwrap(), Some(false));
        // Strict: the host path refuses the call; the zero-copy one (already run) reports.
        let strict = classic.soft_label_guard(SoftLabelGuard::Error);
        let strict = SegLossConfig::new(strict).init().unwrap();
        match call(&strict, &x, &soft) {
            Ok(v) => {
                assert!(path == "zero-copy" && v.is_finite(), "{path}: {v}");
                assert_eq!(strict.soft_targets_with_classic().unwrap(), Some(true));
            }
            Err(e) => {
                assert!(path == "host", "{path}: {e:?}");
                assert!(matches!(e, segloss::Error::SoftTargetsWithClassic), "{e:?}");
            }
        }
    }
    // The zero-copy read-back reports the call's data errors too.
    let mut bad = x.clone();
    bad[3] = f32::NAN;
    let dev = shared().autodiff();
    let loss = SegLossConfig::new(LossOptions::dice()).init().unwrap();
    let logits = Tensor::<4>::from_data(TensorData::new(bad, dims), &dev);
    let y = Tensor::<4>::from_data(TensorData::new(soft, dims), &dev);
    let l = loss.forward(logits, Targets::<4, 3>::Soft(y)).unwrap();
    assert!(l.into_scalar::<f32>().is_nan());
    assert!(matches!(
        loss.soft_targets_with_classic(),
        Err(segloss::Error::NonFiniteInput { .. })
    ));
}
