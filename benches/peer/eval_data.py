"""Writes the evaluate benchmark's datasets (benches/evaluate_vs_peers.sh), with NumPy and
nibabel, deterministic from a seed:

  2d: N label maps of H×W uint8 (19 classes, ignore 255 on ~5 % of the pixels), as .npy,
      predictions = targets with blocks of wrong classes (mIoU around 0.6–0.7);
  3d: N volumes of X×Y×Z uint8 (.nii.gz by nibabel), 5 classes, the same construction.

  python eval_data.py 2d OUT [--n 120] [--size 512x512]
  python eval_data.py 3d OUT [--n 20] [--size 256x256x128]
"""
import argparse
import os

import numpy as np


def blocks(rng, shape, classes, cell):
    """A piecewise-constant label map: random classes on a coarse grid, upsampled."""
    coarse = [max(1, s // cell) for s in shape]
    g = rng.integers(0, classes, size=coarse, dtype=np.uint8)
    for ax, s in enumerate(shape):
        g = np.repeat(g, -(-s // g.shape[ax]), axis=ax)
    return np.ascontiguousarray(g[tuple(slice(0, s) for s in shape)])


def pair(rng, shape, classes, cell):
    target = blocks(rng, shape, classes, cell)
    pred = target.copy()
    wrong = blocks(rng, shape, 2, cell // 2 or 1).astype(bool)
    noise = blocks(rng, shape, classes, cell // 2 or 1)
    pred = np.where(wrong, noise, target).astype(np.uint8)
    ign = blocks(rng, shape, 20, cell) == 0
    target = np.where(ign, 255, target).astype(np.uint8)
    return pred, target


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kind", choices=["2d", "3d"])
    ap.add_argument("out")
    ap.add_argument("--n", type=int)
    ap.add_argument("--size")
    ap.add_argument("--seed", type=int, default=35)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    two = a.kind == "2d"
    n = a.n or (120 if two else 20)
    shape = tuple(int(s) for s in (a.size or ("512x512" if two else "256x256x128")).split("x"))
    classes = 19 if two else 5
    for d in ("pred", "target"):
        os.makedirs(os.path.join(a.out, d), exist_ok=True)
    for i in range(n):
        pred, target = pair(rng, shape, classes, 32 if two else 16)
        name = f"case_{i:04d}"
        if two:
            np.save(os.path.join(a.out, "pred", name + ".npy"), pred)
            np.save(os.path.join(a.out, "target", name + ".npy"), target)
        else:
            import nibabel as nib
            for d, v in (("pred", pred), ("target", target)):
                img = nib.Nifti1Image(v, np.eye(4))
                img.set_data_dtype(np.uint8)
                nib.save(img, os.path.join(a.out, d, name + ".nii.gz"))
    print(f"{n} pairs of {shape} uint8 in {a.out}/{{pred,target}}")


if __name__ == "__main__":
    main()
