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
//! `stream`) in each shape the timed bench tries (`ceiling.WGxQPI.reduce`, …; the
//! script keeps the cheapest pair), then per target kind
//! (soft, index) soft Dice and 0.5·CE + 0.5·soft Dice, GPU-resident, loss alone (the
//! statistics pass and the small reductions) and loss+grad (the gradient pass is the
//! difference). Stdout: one line per workload, `NAME ELEMENTS`, in order.

use segloss::wgpu;
use segloss::{GpuBatch, GpuTarget, Loss, LossOptions, Shape};

use super::ceiling::{Ceiling, Pass};
use super::data::{compound, grad_buffer, upload, Data};
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
    // The same data as the timed bench.
    let data = Data::new(&shape);
    let usage = wgpu::BufferUsages::STORAGE;
    let x = upload(&dev, bytemuck::cast_slice(&data.logits), usage);
    let ys = upload(&dev, bytemuck::cast_slice(&data.soft), usage);
    let yi = upload(&dev, bytemuck::cast_slice(&data.index), usage);
    let grad = grad_buffer(&dev, len, usage);
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
    for (wg, qpi) in Ceiling::SHAPES {
        let ceiling = Ceiling::new(&dev, wg, qpi);
        for pass in [Pass::Reduce, Pass::Stream] {
            let name = format!("ceiling.{wg}x{qpi}.{}", pass.name());
            block(&name, &mut || {
                ceiling.run_pass(ctx, pass, &x, &ys, &grad, len, len)
            });
        }
    }
    let dice = Loss::new(ctx, LossOptions::dice())?;
    let compound = Loss::new(ctx, compound())?;
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
