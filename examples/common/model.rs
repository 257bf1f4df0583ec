//! The small model of the `train` and `stages` examples: a two-layer convolution written
//! out as an MLP over 3×3 patches (27 → 32 → 3), on the CPU, with Adam.

use super::{Rng, C, N, SIDE};

/// 3×3 patch × 3 channels.
pub const FEAT: usize = 27;
/// Hidden units.
pub const HIDDEN: usize = 32;

/// 3×3 patch of pixel i (zero padded), 27 features.
fn patch(image: &[f32], i: usize, out: &mut [f32; FEAT]) {
    let (x, y) = ((i % SIDE) as i32, (i / SIDE) as i32);
    let mut k = 0;
    for ch in 0..3 {
        for dy in -1..=1 {
            for dx in -1..=1 {
                let (nx, ny) = (x + dx, y + dy);
                out[k] = if (0..SIDE as i32).contains(&nx) && (0..SIDE as i32).contains(&ny) {
                    image[ch * N + ny as usize * SIDE + nx as usize]
                } else {
                    0.0
                };
                k += 1;
            }
        }
    }
}

/// Parameters (W1 [HIDDEN×FEAT], b1, W2 [C×HIDDEN], b2) as one flat vector, with Adam.
pub struct Model {
    w: Vec<f32>,
    m: Vec<f32>,
    v: Vec<f32>,
    t: i32,
}

const W1: usize = 0;
const B1: usize = W1 + HIDDEN * FEAT;
const W2: usize = B1 + HIDDEN;
const B2: usize = W2 + C * HIDDEN;
const PARAMS: usize = B2 + C;

impl Model {
    /// He-initialised weights drawn from `rng`.
    pub fn new(rng: &mut Rng) -> Self {
        let mut w = vec![0.0; PARAMS];
        for wj in w[W1..B1].iter_mut() {
            *wj = rng.normal() * (2.0 / FEAT as f32).sqrt();
        }
        for wj in w[W2..B2].iter_mut() {
            *wj = rng.normal() * (1.0 / HIDDEN as f32).sqrt();
        }
        Model {
            w,
            m: vec![0.0; PARAMS],
            v: vec![0.0; PARAMS],
            t: 0,
        }
    }

    /// Logits [B, C, N] of a batch of images ([3, N] each), and the hidden activations
    /// for backprop.
    pub fn forward(&self, images: &[&[f32]]) -> (Vec<f32>, Vec<f32>) {
        let b = images.len();
        let mut logits = vec![0.0; b * C * N];
        let mut hidden = vec![0.0; b * N * HIDDEN];
        let mut x = [0.0; FEAT];
        for (bi, image) in images.iter().enumerate() {
            for i in 0..N {
                patch(image, i, &mut x);
                let h = &mut hidden[(bi * N + i) * HIDDEN..][..HIDDEN];
                for (j, hj) in h.iter_mut().enumerate() {
                    let row = &self.w[W1 + j * FEAT..][..FEAT];
                    *hj = (row.iter().zip(&x).map(|(a, b)| a * b).sum::<f32>() + self.w[B1 + j])
                        .max(0.0);
                }
                for c in 0..C {
                    let row = &self.w[W2 + c * HIDDEN..][..HIDDEN];
                    logits[(bi * C + c) * N + i] =
                        row.iter().zip(h.iter()).map(|(a, b)| a * b).sum::<f32>() + self.w[B2 + c];
                }
            }
        }
        (logits, hidden)
    }

    /// d loss/d params from d loss/d logits.
    pub fn backward(&self, images: &[&[f32]], hidden: &[f32], dlogits: &[f32]) -> Vec<f32> {
        let mut g = vec![0.0; PARAMS];
        let mut x = [0.0; FEAT];
        let mut dh = [0.0; HIDDEN];
        for (bi, image) in images.iter().enumerate() {
            for i in 0..N {
                let h = &hidden[(bi * N + i) * HIDDEN..][..HIDDEN];
                dh.fill(0.0);
                for c in 0..C {
                    let dz = dlogits[(bi * C + c) * N + i];
                    g[B2 + c] += dz;
                    for j in 0..HIDDEN {
                        g[W2 + c * HIDDEN + j] += dz * h[j];
                        dh[j] += dz * self.w[W2 + c * HIDDEN + j];
                    }
                }
                patch(image, i, &mut x);
                for j in 0..HIDDEN {
                    if h[j] > 0.0 {
                        g[B1 + j] += dh[j];
                        for k in 0..FEAT {
                            g[W1 + j * FEAT + k] += dh[j] * x[k];
                        }
                    }
                }
            }
        }
        g
    }

    /// One Adam step of learning rate `lr`.
    pub fn adam(&mut self, g: &[f32], lr: f32) {
        let (b1, b2, eps) = (0.9f32, 0.999f32, 1e-8f32);
        self.t += 1;
        let (c1, c2) = (1.0 - b1.powi(self.t), 1.0 - b2.powi(self.t));
        for (((w, m), v), gj) in self.w.iter_mut().zip(&mut self.m).zip(&mut self.v).zip(g) {
            *m = b1 * *m + (1.0 - b1) * gj;
            *v = b2 * *v + (1.0 - b2) * gj * gj;
            *w -= lr * (*m / c1) / ((*v / c2).sqrt() + eps);
        }
    }
}

/// Softmax over the classes of logits [b, C, N].
pub fn softmax_pixelwise(logits: &[f32], b: usize) -> Vec<f32> {
    let mut p = vec![0.0; logits.len()];
    for bi in 0..b {
        for i in 0..N {
            let m = (0..C)
                .map(|c| logits[(bi * C + c) * N + i])
                .fold(f32::MIN, f32::max);
            let s: f32 = (0..C)
                .map(|c| (logits[(bi * C + c) * N + i] - m).exp())
                .sum();
            for c in 0..C {
                p[(bi * C + c) * N + i] = (logits[(bi * C + c) * N + i] - m).exp() / s;
            }
        }
    }
    p
}
