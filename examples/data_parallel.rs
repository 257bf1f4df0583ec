//! Data-parallel loss under MPI: a batch sharded over the ranks, the statistics
//! all-reduced with `MPI_Allreduce`, each rank's loss equal to the single-process value.
//!
//! ```text
//! mpirun -n 2 cargo run --release --features mpi --example data_parallel
//! ```
//! (As root, Open MPI also wants `--allow-run-as-root`.) Every rank builds the same
//! global batch from a fixed seed, keeps its shard, runs the local phase
//! (`Loss::stats`), sums the shared block over the ranks, and finishes (`Loss::finish`)
//! to get the global loss and its shard's gradient. For comparison, each rank also
//! computes the whole batch in one call; the exit code is 1 when any difference
//! exceeds 1e-6 (loss, relative) or 1e-6 of max |grad| (gradient).

use mpi::collective::SystemOperation;
use mpi::traits::*;
use segloss::{monai, Batch, Context, Loss, LossOptions, Shape, Stats};

/// SplitMix64, so that every rank builds the same batch.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f32 {
        self.0 = self.0.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32
    }
}

fn main() {
    let universe = mpi::initialize().expect("MPI initialises once");
    let world = universe.world();
    let (rank, size) = (world.rank() as usize, world.size() as usize);

    // The global batch: [B, C, H, W] logits and soft labels (averaged raters).
    let (b, c, h, w) = (2 * size + 1, 4, 64, 64);
    let n = h * w;
    let mut rng = Rng(2026);
    let logits: Vec<f32> = (0..b * c * n).map(|_| 6.0 * rng.next() - 3.0).collect();
    let labels: Vec<f32> = (0..b * c * n)
        .map(|_| (rng.next() * 3.0).floor() / 2.0)
        .collect();

    // This rank's shard: contiguous images, the first ranks one more when uneven.
    let len = |r: usize| b / size + usize::from(r < b % size);
    let b0: usize = (0..rank).map(len).sum();
    let b1 = b0 + len(rank);
    let shard_shape = Shape::new(&[b1 - b0, c, h, w]).expect("valid shape");
    let (x, y) = (
        &logits[b0 * c * n..b1 * c * n],
        &labels[b0 * c * n..b1 * c * n],
    );

    let ctx = Context::new().unwrap_or_else(|e| {
        eprintln!("rank {rank}: no GPU ({e}); using the CPU reference");
        Context::cpu()
    });
    let levels: [(&str, LossOptions); 3] = [
        (
            "dataset (MONAI batch=True)",
            monai::DiceLoss {
                softmax: true,
                soft_label: true,
                batch: true,
                ..Default::default()
            }
            .options(),
        ),
        (
            "image (MONAI batch=False)",
            monai::DiceLoss {
                softmax: true,
                soft_label: true,
                ..Default::default()
            }
            .options(),
        ),
        (
            "class (JDTLoss mIoU^C)",
            LossOptions::jaccard().aggregation(segloss::Aggregation::CLASS),
        ),
    ];
    let mut ok = true;
    for (name, options) in levels {
        let loss = Loss::new(&ctx, options).expect("valid options");
        let mut st = loss
            .stats(&Batch::soft(&shard_shape, x, y))
            .expect("local phase");
        let mut sum = vec![0.0f32; Stats::shared_len(c)];
        world.all_reduce_into(st.shared(), &mut sum[..], SystemOperation::sum());
        st.shared_mut().copy_from_slice(&sum);
        let mine = loss.finish(&st, true).expect("global phase");

        // The same batch in one process, one call.
        let full_shape = Shape::new(&[b, c, h, w]).expect("valid shape");
        let full = loss
            .forward_backward(&Batch::soft(&full_shape, &logits, &labels))
            .expect("one call");
        let full_grad = full.grad.as_ref().expect("asked for");
        let slice = &full_grad[b0 * c * n..b1 * c * n];
        let gmax = full_grad.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let dgrad = mine
            .grad
            .as_ref()
            .expect("asked for")
            .iter()
            .zip(slice)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max)
            / gmax;
        let dloss = (mine.loss - full.loss).abs() / full.loss.abs();
        println!(
            "rank {rank}/{size} images {b0}..{b1} | {name:<27} | loss {:.9} | single process \
             {:.9} | rel. diff {dloss:.2e} | grad diff {dgrad:.2e} of max |grad|",
            mine.loss, full.loss
        );
        ok &= dloss <= 1e-6 && dgrad <= 1e-6;
    }
    if !ok {
        eprintln!("rank {rank}: a difference exceeds 1e-6");
        std::process::exit(1);
    }
}
