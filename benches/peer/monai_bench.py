"""MONAI's soft-label DiceLoss forward+backward on PyTorch CPU, the peer that segloss's
`segloss bench` (crates/segloss-cli/src/bench) is compared with. Same shapes and data kinds as the Rust bench.

    python3 -m venv .venv && .venv/bin/pip install torch monai
    .venv/bin/python benches/peer/monai_bench.py [--threads 2] [--runs 5] [--shape 4x19x512x512]

Prints a markdown table (median of --runs after one warm-up) or, with --json, one JSON
object per line.
"""
import argparse, json, statistics, time

import torch
from monai.losses import DiceLoss

SHAPES = [(2, 4, 256, 256), (4, 19, 512, 512), (1, 14, 128, 128, 128)]


def bench(shape, target_kind, runs):
    g = torch.Generator().manual_seed(0)
    x = torch.empty(shape).uniform_(-4, 4, generator=g).requires_grad_(True)
    if target_kind == "soft":
        y = torch.rand(shape, generator=g)
        loss_fn = DiceLoss(softmax=True, soft_label=True)
    else:
        # Index map [B, 1, S...], one-hot encoded by MONAI.
        y = torch.randint(0, shape[1], (shape[0], 1) + tuple(shape[2:]), generator=g)
        loss_fn = DiceLoss(softmax=True, soft_label=True, to_onehot_y=True)
    times = []
    for i in range(runs + 1):
        t = time.perf_counter()
        loss = loss_fn(x, y)
        loss.backward()
        x.grad = None
        if i:
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--shape", help="one shape, e.g. 4x19x512x512 (default: the bench's three)")
    args = ap.parse_args()
    shapes = [tuple(int(d) for d in args.shape.split("x"))] if args.shape else SHAPES
    torch.set_num_threads(args.threads)
    if not args.json:
        print(f"torch {torch.__version__}, {args.threads} threads; MONAI DiceLoss(softmax=True, soft_label=True) forward+backward\n")
        print("| shape | target | ms | Melem/s |")
        print("|---|---|---:|---:|")
    for shape in shapes:
        n = 1
        for d in shape:
            n *= d
        for kind in ("soft", "index"):
            t = bench(shape, kind, args.runs)
            row = {"shape": list(shape), "target": kind, "op": "loss+grad", "ms": t * 1e3,
                   "melem_per_s": n / t / 1e6, "peer": "monai", "threads": args.threads}
            if args.json:
                print(json.dumps(row))
            else:
                print(f"| {list(shape)} | {kind} | {t*1e3:.1f} | {n/t/1e6:.0f} |")


if __name__ == "__main__":
    main()
