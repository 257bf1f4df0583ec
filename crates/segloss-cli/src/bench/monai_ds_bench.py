"""MONAI 1.6's DeepSupervisionLoss(DiceLoss(softmax=True, soft_label=True)) forward +
backward on PyTorch CPU, for `segloss bench --deep --peers PYTHON`: a 4-scale pyramid of
`--shape` (S, S/2, S/4, S/8 per axis), soft targets [B, C, S...] and index targets
[B, 1, S...] (to_onehot_y=True), MONAI's default weights; one JSON line per target with
the median milliseconds of `--runs` calls after one warm-up.

    python monai_ds_bench.py --shape 4x19x512x512 [--runs 5] [--threads N]
"""
import argparse
import json
import statistics
import time

import torch
from monai.losses import DeepSupervisionLoss, DiceLoss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    dims = [int(d) for d in a.shape.split("x")]
    b, c, spatial = dims[0], dims[1], dims[2:]
    g = torch.Generator().manual_seed(0)
    heads = [torch.empty([b, c] + [max(1, s >> k) for s in spatial]).uniform_(-4, 4, generator=g)
             .requires_grad_() for k in range(4)]
    soft = torch.rand([b, c] + spatial, generator=g)
    index = torch.randint(0, c, [b, 1] + spatial, generator=g).float()
    for kind, target, onehot in [("soft", soft, False), ("index", index, True)]:
        loss = DeepSupervisionLoss(DiceLoss(softmax=True, soft_label=True, to_onehot_y=onehot))
        times = []
        for i in range(a.runs + 1):
            for h in heads:
                h.grad = None
            t = time.perf_counter()
            loss(heads, target).backward()
            if i:
                times.append(time.perf_counter() - t)
        print(json.dumps({"impl": "MONAI DeepSupervisionLoss", "shape": dims, "target": kind,
                          "op": "deep supervision", "ms": statistics.median(times) * 1e3,
                          "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
