//! `segloss bench --instructions`: the workloads that `benches/instructions.sh` counts
//! under `valgrind --tool=callgrind` (lavapipe on one thread, `LP_NUM_THREADS=1`), so
//! that a kernel change is judged by instruction counts, which machine load does not
//! move. No timing here: for each workload, one warm-up call (pipelines compiled), then
//! a block of `n1` calls and a block of `n2` calls, each block between two calls of
//! [`mark`]; callgrind dumps its counters before every `mark`
//! (`--dump-before='*instructions*mark*'`), so that block k's count is one dump, and
//! (count(n2) − count(n1)) / (n2 − n1) is one call without setup or compilation.
//!
//! Workloads, on the first `--shapes` shape: the ceiling's two kernels (`reduce`,
//! `stream`; 8 invocations per workgroup, the faster on lavapipe), then per target kind
//! (soft, index) soft Dice and 0.5·CE + 0.5·soft Dice, GPU-resident, loss alone (the
//! statistics pass and the small reductions) and loss+grad (the gradient pass is the
//! difference). Stdout: one line per workload, `NAME ELEMENTS`, in order.

use segloss::wgpu::{self, util::DeviceExt};
use segloss::{GpuBatch, GpuTarget, Loss, LossOptions, Shape};

use super::ceiling::{Ceiling, Pass};
use crate::AnyResult;

/// Calls per block: the two iteration counts.
pub const BLOCKS: [usize; 2] = [1, 3];

/// Where callgrind dumps (its `--dump-before` pattern matches this function's name).
#[inline(never)]
pub fn mark(label: &str) {
    std::hint::black_box(label);
}

/// Runs every workload on `dims` (see the module docs).
pub fn run(ctx: &segloss::Context, dims: &[usize]) -> AnyResult<()> {
    let dev = ctx
        .device()
        .cloned()
        .ok_or("--instructions needs an adapter")?;
    let shape = Shape::new(dims)?;
    let len = shape.len();
    // The same deterministic data kinds as the timed bench (xorshift).
    let mut s = 0x9E37_79B9u32;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        s
    };
    let logits: Vec<f32> = (0..len)
        .map(|_| (next() % 2000) as f32 / 250.0 - 4.0)
        .collect();
    let soft: Vec<f32> = (0..len).map(|_| (next() % 1001) as f32 / 1000.0).collect();
    let index: Vec<u32> = (0..shape.map_len())
        .map(|_| next() % shape.classes() as u32)
        .collect();
    let usage = wgpu::BufferUsages::STORAGE;
    let up = |bytes: &[u8]| {
        dev.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: None,
            contents: bytes,
            usage,
        })
    };
    let x = up(bytemuck::cast_slice(&logits));
    let ys = up(bytemuck::cast_slice(&soft));
    let yi = up(bytemuck::cast_slice(&index));
    let grad = dev.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: 4 * len as u64,
        usage,
        mapped_at_creation: false,
    });
    let block = |name: &str, f: &mut dyn FnMut()| {
        f();
        println!("{name} {len}");
        mark(name);
        for n in BLOCKS {
            for _ in 0..n {
                f();
            }
            mark(name);
        }
    };
    let ceiling = Ceiling::new(&dev, 8);
    for pass in [Pass::Reduce, Pass::Stream] {
        let name = format!("ceiling.{}", pass.name());
        block(&name, &mut || {
            ceiling.run_pass(ctx, pass, &x, &ys, &grad, len, len)
        });
    }
    let dice = Loss::new(ctx, LossOptions::dice())?;
    let compound = Loss::new(
        ctx,
        LossOptions::dice()
            .overlap_weight(0.5)
            .cross_entropy(segloss::CrossEntropy::softmax(0.5)),
    )?;
    for (kind, y) in [("soft", &ys), ("index", &yi)] {
        let gb = GpuBatch {
            shape: &shape,
            input: x.slice(..),
            target: if kind == "soft" {
                GpuTarget::Soft(y.slice(..))
            } else {
                GpuTarget::Index(y.slice(..))
            },
            mask: None,
        };
        for (loss_name, l) in [("dice", &dice), ("ce+dice", &compound)] {
            // Checked once: an error is reported, not a panic in the blocks.
            l.read(&l.run(&gb, Some(grad.slice(..)))?)?;
            for (op, with_grad) in [("loss", false), ("loss+grad", true)] {
                let name = format!("{kind}.{loss_name}.{op}");
                block(&name, &mut || {
                    let r = l
                        .run(&gb, with_grad.then(|| grad.slice(..)))
                        .expect("checked above");
                    l.read(&r).expect("checked above");
                });
            }
        }
    }
    Ok(())
}
