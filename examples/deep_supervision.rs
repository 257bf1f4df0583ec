//! Deep supervision's coarse targets: how many small structures survive downsampling.
//!
//! Synthetic label maps (256 × 256, 3 classes: background, large regions, and small
//! structures of class 2, 1 to 6 pixels wide: lesions, vessels) are downsampled to a
//! U-Net's coarse heads (1/2, 1/4, 1/8) the two ways segloss offers: `NearestExact` (what
//! MONAI's `DeepSupervisionLoss` and nnU-Net do) and `Area` (segloss's default: each cell
//! holds the fraction of each class it covers). For each scale it prints the share of the
//! small structures still present in the coarse target (a structure is present when some
//! cell it touches holds class 2 > 0), and the coarse target's total class-2 mass against
//! the full resolution's (area pooling keeps it exactly; nearest sampling does not).
//! Then it runs one deep-supervision call (soft Dice, area pooling) over random heads at
//! those scales on the default adapter, and prints the per-head losses and weights.
//!
//! `cargo run --release --example deep_supervision [-- --images N --seed S]`

use segloss::deep::{pool_host, DeepSupervision, DeepTarget, Head, Pooling};
use segloss::{Context, Formulation, LossOptions, Shape};

const SIZE: usize = 256;
const CLASSES: usize = 3;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One label map: a few large rectangles of class 1 on background, then 12 small
/// squares of class 2 (1–6 pixels wide) anywhere.
fn label_map(rng: &mut Rng) -> Vec<u32> {
    let mut y = vec![0u32; SIZE * SIZE];
    for _ in 0..4 {
        let (r, c) = (rng.below(SIZE - 64), rng.below(SIZE - 64));
        let (h, w) = (32 + rng.below(32), 32 + rng.below(32));
        for i in r..r + h {
            y[i * SIZE + c..i * SIZE + c + w].fill(1);
        }
    }
    for _ in 0..12 {
        let s = 1 + rng.below(6);
        let (r, c) = (rng.below(SIZE - s), rng.below(SIZE - s));
        for i in r..r + s {
            y[i * SIZE + c..i * SIZE + c + s].fill(2);
        }
    }
    y
}

/// The 4-connected components of class 2, as pixel lists.
fn structures(y: &[u32]) -> Vec<Vec<usize>> {
    let mut seen = vec![false; y.len()];
    let mut out = Vec::new();
    for start in 0..y.len() {
        if y[start] != 2 || seen[start] {
            continue;
        }
        let (mut stack, mut comp) = (vec![start], Vec::new());
        seen[start] = true;
        while let Some(p) = stack.pop() {
            comp.push(p);
            let (r, c) = (p / SIZE, p % SIZE);
            let near = [
                (r > 0).then(|| p - SIZE),
                (r + 1 < SIZE).then(|| p + SIZE),
                (c > 0).then(|| p - 1),
                (c + 1 < SIZE).then(|| p + 1),
            ];
            for q in near.into_iter().flatten() {
                if y[q] == 2 && !seen[q] {
                    seen[q] = true;
                    stack.push(q);
                }
            }
        }
        out.push(comp);
    }
    out
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> segloss::Result<()> {
    let images = arg("--images", 50) as usize;
    let mut rng = Rng(arg("--seed", 36) | 1);
    let maps: Vec<Vec<u32>> = (0..images).map(|_| label_map(&mut rng)).collect();
    let total: usize = maps.iter().map(|y| structures(y).len()).sum();
    println!(
        "{images} label maps of {SIZE}×{SIZE}, {total} small structures (class 2, 1–6 px wide)\n"
    );
    println!("| head | pooling | structures present | class-2 mass vs full resolution |");
    println!("|---|---|---:|---:|");
    for factor in [2usize, 4, 8] {
        let o = SIZE / factor;
        for pooling in [Pooling::NearestExact, Pooling::Area] {
            let (mut present, mut mass, mut full_mass) = (0usize, 0f64, 0f64);
            for y in &maps {
                let (t, _) = pool_host(
                    (1, CLASSES, &[SIZE, SIZE]),
                    DeepTarget::Index(y),
                    None,
                    None,
                    &[o, o],
                    pooling,
                );
                let class2 = &t[2 * o * o..3 * o * o];
                // A structure is present when a cell it touches holds class 2.
                for s in structures(y) {
                    let hit = s.iter().any(|&p| {
                        let (r, c) = (p / SIZE * o / SIZE, p % SIZE * o / SIZE);
                        class2[r * o + c] > 0.0
                    });
                    present += usize::from(hit);
                }
                mass +=
                    class2.iter().map(|&v| f64::from(v)).sum::<f64>() * (factor * factor) as f64;
                full_mass += y.iter().filter(|&&v| v == 2).count() as f64;
            }
            println!(
                "| 1/{factor} ({o}×{o}) | {pooling:?} | {:.1} % ({present}/{total}) | {:.3} |",
                100.0 * present as f64 / total as f64,
                mass / full_mass
            );
        }
    }

    // One call over a U-Net's heads on the default adapter: random logits, the first map.
    let ctx = Context::new_or_cpu();
    let ds = DeepSupervision::new(&ctx, LossOptions::dice().formulation(Formulation::Soft))?;
    let shapes: Vec<Shape> = [1usize, 2, 4, 8]
        .iter()
        .map(|f| Shape::new(&[1, CLASSES, SIZE / f, SIZE / f]))
        .collect::<segloss::Result<_>>()?;
    let inputs: Vec<Vec<f32>> = shapes
        .iter()
        .map(|s| {
            (0..s.len())
                .map(|_| (rng.below(2000) as f32) / 500.0 - 2.0)
                .collect()
        })
        .collect();
    let heads: Vec<Head<'_>> = shapes
        .iter()
        .zip(&inputs)
        .map(|(s, x)| Head { shape: s, input: x })
        .collect();
    let out = ds.forward_backward(&heads, &shapes[0], DeepTarget::Index(&maps[0]), None)?;
    println!(
        "\none deep-supervision call on {:?}: total {:.4} = Σ w·loss, weights {:?}, per-head losses {:?}",
        ctx.backend(),
        out.loss,
        out.weights,
        out.losses
    );
    Ok(())
}
