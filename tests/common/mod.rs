//! Shared test helpers: the GPU context (which must exist in CI), a small deterministic
//! RNG, random batches and the tolerance checks.
#![allow(dead_code)]

pub mod watch;

use segloss::{reference, Batch, Context, Loss, LossOptions, LossOutput, Shape, Target};

/// The GPU context, found through wgpu's environment variables. Without an adapter the
/// test is skipped on a developer machine, and fails when `CI` or `SEGLOSS_REQUIRE_GPU`
/// is set: a GPU test must never pass by skipping in CI.
pub fn gpu() -> Option<Context> {
    watch::install();
    watch::check();
    match Context::new() {
        Ok(c) => {
            announce(&c);
            Some(c)
        }
        Err(e) => {
            if std::env::var_os("CI").is_some() || std::env::var_os("SEGLOSS_REQUIRE_GPU").is_some()
            {
                panic!("no GPU adapter, and CI / SEGLOSS_REQUIRE_GPU is set: {e}");
            }
            // Past the test harness's capture (it captures print macros only), so that a
            // skip shows in the normal output, not only on failure.
            use std::io::Write;
            let name = std::thread::current().name().unwrap_or("?").to_string();
            let _ = writeln!(
                std::io::stderr().lock(),
                "SKIPPED {name}: no GPU adapter ({e}); set SEGLOSS_REQUIRE_GPU=1 to fail instead"
            );
            None
        }
    }
}

/// Prints the adapter the binary runs on, once per binary, past the harness's capture:
/// a CI log then shows which implementation each test binary passed on.
pub fn announce(ctx: &Context) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use std::io::Write;
        let bin = std::env::args().next().unwrap_or_default();
        let bin = std::path::Path::new(&bin)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let validation = std::env::var_os("WGPU_VALIDATION").is_some();
        let _ = writeln!(
            std::io::stderr().lock(),
            "{bin}: GPU tests on {:?}{}",
            ctx.backend(),
            if validation {
                " (WGPU_VALIDATION set)"
            } else {
                ""
            }
        );
    });
}

/// A wgpu instance for tests that build their own devices: `WGPU_BACKEND`'s backends,
/// else the primary ones only. (Enumerating GL/EGL adapters from parallel test threads
/// makes wgpu-hal panic with EGL BadAccess; the GL runs name `WGPU_BACKEND=gl` and use
/// one test thread.)
pub fn instance() -> wgpu::Instance {
    watch::install();
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    if std::env::var_os("WGPU_BACKEND").is_none() {
        desc.backends = wgpu::Backends::PRIMARY;
    }
    wgpu::Instance::new(desc)
}

/// A GPU context on a device segloss did not create (`Context::from_wgpu`, no optional
/// features): host calls then go through staging copies and `queue.write_buffer`
/// rather than mapping storage buffers in place, as on a discrete GPU.
pub fn gpu_staged() -> Option<Context> {
    gpu()?;
    let instance = instance();
    let adapter = pollster::block_on(instance.request_adapter(&Default::default())).ok()?;
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        required_limits: adapter.limits(),
        ..Default::default()
    }))
    .ok()?;
    Some(Context::from_wgpu(device, queue, adapter.get_info()).unwrap())
}

/// The contents of a `COPY_SRC` buffer of `ctx`'s device, as f32 words (blocking).
pub fn read_f32(ctx: &Context, buf: &wgpu::Buffer) -> Vec<f32> {
    let (dev, queue) = (ctx.device().unwrap(), ctx.queue().unwrap());
    let staging = dev.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: buf.size(),
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut enc = dev.create_command_encoder(&Default::default());
    enc.copy_buffer_to_buffer(buf, 0, &staging, 0, buf.size());
    queue.submit([enc.finish()]);
    staging
        .slice(..)
        .map_async(wgpu::MapMode::Read, |r| r.unwrap());
    dev.poll(wgpu::PollType::wait_indefinitely()).unwrap();
    watch::check();
    let v = bytemuck::cast_slice(&staging.slice(..).get_mapped_range().unwrap()).to_vec();
    v
}

/// SplitMix64: small, deterministic, good enough for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.f64()
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    pub fn bool(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }
}

/// Owned test data for one call.
#[derive(Clone)]
pub struct Data {
    pub shape: Shape,
    pub input: Vec<f32>,
    pub soft: Vec<f32>,
    pub index: Vec<u32>,
    pub mask: Option<Vec<bool>>,
    pub use_index: bool,
}

impl Data {
    pub fn random(rng: &mut Rng, dims: &[usize], use_index: bool, with_mask: bool) -> Self {
        let shape = Shape::new(dims).unwrap();
        let c = shape.classes();
        let input = (0..shape.len())
            .map(|_| rng.range(-4.0, 4.0) as f32)
            .collect();
        // Soft targets: a mix of hard 0/1 values and soft values, as in label smoothing.
        let soft = (0..shape.len())
            .map(|_| match rng.below(4) {
                0 => 0.0,
                1 => 1.0,
                _ => rng.f64() as f32,
            })
            .collect();
        let index = (0..shape.map_len()).map(|_| rng.below(c) as u32).collect();
        let mask = with_mask.then(|| (0..shape.map_len()).map(|_| rng.below(5) != 0).collect());
        Data {
            shape,
            input,
            soft,
            index,
            mask,
            use_index,
        }
    }

    pub fn batch(&self) -> Batch<'_> {
        Batch {
            shape: &self.shape,
            input: &self.input,
            target: if self.use_index {
                Target::Index(&self.index)
            } else {
                Target::Soft(&self.soft)
            },
            mask: self.mask.as_deref(),
        }
    }

    /// The f64 reference on the same (f32) data.
    pub fn reference(&self, options: &LossOptions) -> reference::Output {
        let input: Vec<f64> = self.input.iter().map(|&v| f64::from(v)).collect();
        let soft: Vec<f64> = self.soft.iter().map(|&v| f64::from(v)).collect();
        let index: Vec<i64> = self.index.iter().map(|&v| i64::from(v)).collect();
        let rb = reference::RefBatch {
            shape: &self.shape,
            input: &input,
            target: if self.use_index {
                reference::RefTarget::Index(&index)
            } else {
                reference::RefTarget::Soft(&soft)
            },
            mask: self.mask.as_deref(),
        };
        reference::evaluate(options, &rb, true).unwrap()
    }
}

/// Checks f32 results against the f64 reference: values within
/// `rel·|ref| + 1e-6`, gradient norm-wise within `rel·max|ref| + 1e-7`, as the golden
/// README states for the GPU path. Prints index / actual / expected on failure.
pub fn assert_close(what: &str, got: &LossOutput, want: &reference::Output, rel: f64) {
    watch::check();
    let lv = f64::from(got.loss);
    assert!(
        (lv - want.loss).abs() <= rel * want.loss.abs() + 1e-6,
        "{what}: loss {lv} vs reference {}",
        want.loss
    );
    if let (Some(v), Some(r)) = (&got.values, &want.values) {
        assert_eq!(v.len(), r.len(), "{what}: values length");
        for (i, (a, b)) in v.iter().zip(r).enumerate() {
            let a = f64::from(*a);
            assert!(
                (a - b).abs() <= rel * b.abs() + 1e-6,
                "{what}: value[{i}] {a} vs {b}"
            );
        }
    } else {
        assert_eq!(
            got.values.is_some(),
            want.values.is_some(),
            "{what}: values presence"
        );
    }
    if let (Some(g), Some(r)) = (&got.grad, &want.grad) {
        assert_eq!(g.len(), r.len(), "{what}: grad length");
        let gmax = r.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        let tol = rel * gmax + 1e-7;
        for (i, (a, b)) in g.iter().zip(r).enumerate() {
            let a = f64::from(*a);
            assert!(
                (a - b).abs() <= tol,
                "{what}: grad[{i}] {a} vs {b} (tolerance {tol:.3e}, max |grad| {gmax:.3e})"
            );
        }
    }
}

/// A loss on `ctx`, panicking on invalid options (test helper only).
pub fn loss(ctx: &Context, o: LossOptions) -> Loss {
    watch::check();
    Loss::new(ctx, o).expect("valid options")
}

/// Adds random compound terms (cross-entropy / KL / binary CE and focal, with random
/// weights, smoothing, α) where the options allow them: logits in (softmax or sigmoid)
/// and a mean or sum reduction. `which`: 1 CE, 2 focal, 3 both.
pub fn add_compound(rng: &mut Rng, o: &mut LossOptions, classes: usize, which: usize) {
    use segloss::{Activation, CrossEntropy, Focal, FocalAlpha, Reduction};
    if which == 0 || o.activation == Activation::None || o.reduction == Reduction::None {
        return;
    }
    let kept = classes - o.class_start(classes);
    let weights = |rng: &mut Rng, n: usize| (0..n).map(|_| rng.range(0.2, 2.0)).collect();
    o.overlap_weight = [1.0, 0.75, 0.3][rng.below(3)];
    if which & 1 != 0 {
        let mut ce = match o.activation {
            Activation::Softmax if rng.bool() => CrossEntropy::kl(0.25),
            Activation::Softmax => CrossEntropy::softmax(rng.range(0.1, 1.5)),
            _ => CrossEntropy::binary(rng.range(0.1, 1.5)),
        };
        if rng.bool() {
            ce.class_weights = Some(weights(rng, classes));
        }
        if o.activation == Activation::Softmax {
            ce.label_smoothing = [0.0, 0.1][rng.below(2)];
        } else if rng.bool() {
            ce.pos_weight = Some(weights(rng, classes));
        }
        o.cross_entropy = Some(ce);
    }
    if which & 2 != 0 {
        let gamma = [0.0, 1.0, 2.0, 2.5][rng.below(4)];
        let mut f = if o.activation == Activation::Softmax && rng.bool() {
            Focal::softmax(rng.range(0.2, 1.5), gamma)
        } else {
            Focal::sigmoid(rng.range(0.2, 1.5), gamma)
        };
        f.alpha = match rng.below(3) {
            0 => None,
            1 => Some(FocalAlpha::Scalar(rng.range(0.1, 0.9))),
            _ => Some(FocalAlpha::PerClass(weights(rng, kept))),
        };
        if rng.bool() {
            f.class_weights = Some(weights(rng, kept));
        }
        o.focal = Some(f);
    }
}

/// Makes random options and data fit each other's domain: `Activation::None` takes
/// probabilities (logits are mapped into (0, 1)), and a softmax over one channel (an
/// error natively) becomes a sigmoid.
pub fn fit(o: &mut LossOptions, data: &mut Data) {
    use segloss::Activation;
    if o.activation == Activation::Softmax && data.shape.classes() == 1 {
        o.activation = Activation::Sigmoid;
        if let Some(ce) = &mut o.cross_entropy {
            *ce = segloss::CrossEntropy::binary(ce.weight);
        }
        if let Some(f) = &mut o.focal {
            f.softmax = false;
        }
    }
    if o.activation == Activation::None {
        data.input
            .iter_mut()
            .for_each(|x| *x = (*x + 4.0).clamp(0.0, 8.0) / 8.0);
    }
}

/// A `STORAGE | COPY_DST | COPY_SRC` buffer of `ctx`'s device holding `v`.
pub fn storage(ctx: &Context, v: &[f32]) -> wgpu::Buffer {
    let (dev, queue) = (ctx.device().unwrap(), ctx.queue().unwrap());
    let b = dev.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: 4 * v.len() as u64,
        usage: wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_DST
            | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    queue.write_buffer(&b, 0, bytemuck::cast_slice(v));
    b
}

/// A JSON array of numbers (null as NaN), for the golden files. Anything else — a
/// missing key, a string, a nested array — fails the test: an expected array that
/// vanished must not turn into an empty comparison.
pub fn f64s(v: &serde_json::Value) -> Vec<f64> {
    let a = v
        .as_array()
        .unwrap_or_else(|| panic!("golden file: expected an array of numbers, found {v}"));
    a.iter()
        .map(|x| match x {
            serde_json::Value::Null => f64::NAN,
            x => x
                .as_f64()
                .unwrap_or_else(|| panic!("golden file: expected a number, found {x}")),
        })
        .collect()
}

/// `a` and `b` side by side, after checking that they are as long as each other and
/// not empty: a comparison that compares nothing, or stops at the shorter side, fails.
pub fn zip_eq<A, B>(what: &str, a: A, b: B) -> std::iter::Zip<A::IntoIter, B::IntoIter>
where
    A: IntoIterator,
    B: IntoIterator,
    A::IntoIter: ExactSizeIterator,
    B::IntoIter: ExactSizeIterator,
{
    let (a, b) = (a.into_iter(), b.into_iter());
    assert_eq!(a.len(), b.len(), "{what}: lengths differ");
    assert!(a.len() > 0, "{what}: nothing to compare");
    a.zip(b)
}

/// Bit-identical f32 arrays (same length, same bits).
pub fn assert_bits_eq(what: &str, a: &[f32], b: &[f32]) {
    for (i, (x, y)) in zip_eq(what, a, b).enumerate() {
        assert_eq!(x.to_bits(), y.to_bits(), "{what}: [{i}] {x} vs {y}");
    }
}
