"""The metrics peers on PyTorch CPU, for `segloss bench`'s metrics row: torchmetrics'
`MeanIoU` (segmentation, index input) and the JDTLosses definitions of mIoU^D / mIoU^I /
mIoU^C written with torch ops the way its `mIoUDMetric` / `mIoUICMetric` compute them
(a confusion matrix by bincount; per-image one-hot sums), on the same [4, 19, 512, 512]
logits + index targets: argmax, then update, per batch.

    .venv/bin/pip install torch torchmetrics
    .venv/bin/python crates/segloss-cli/src/bench/metrics_bench.py [--runs 5] [--threads 2] [--json]
"""
import argparse, json, statistics, time

import torch
import torch.nn.functional as F
from torchmetrics.segmentation import MeanIoU

SHAPE = (4, 19, 512, 512)


def jdt_update(pred, label, c, conf, per_image):
    # Dataset level: a confusion matrix by bincount (as mIoUDMetric).
    conf += torch.bincount((pred + c * label).flatten(), minlength=c * c).reshape(c, c)
    # Image level: per-image one-hot intersection and union (as mIoUICMetric).
    b = pred.size(0)
    p = F.one_hot(pred.view(b, -1), c).sum(1)
    y = F.one_hot(label.view(b, -1), c).sum(1)
    inter = F.one_hot(torch.where(pred == label, pred, c).view(b, -1), c + 1)[..., :c].sum(1)
    per_image.append((inter, p + y - inter))


def bench(runs):
    g = torch.Generator().manual_seed(0)
    x = torch.empty(SHAPE).uniform_(-4, 4, generator=g)
    y = torch.randint(0, SHAPE[1], (SHAPE[0],) + SHAPE[2:], generator=g)
    c = SHAPE[1]
    tm = MeanIoU(num_classes=c, input_format="index")
    conf = torch.zeros(c, c, dtype=torch.int64)
    per_image = []
    out = {}
    for name, step in [("torchmetrics MeanIoU", lambda: tm.update(x.argmax(1), y)),
                       ("JDTLosses (torch ops)", lambda: jdt_update(x.argmax(1), y, c, conf, per_image))]:
        times = []
        for i in range(runs + 1):
            t = time.perf_counter()
            step()
            if i:
                times.append(time.perf_counter() - t)
        out[name] = statistics.median(times)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    n = 1
    for d in SHAPE:
        n *= d
    for name, t in bench(a.runs).items():
        row = {"impl": name, "shape": list(SHAPE), "target": "index", "op": "metrics (argmax + counts)",
               "ms": t * 1e3, "melem_per_s": n / t / 1e6}
        print(json.dumps(row) if a.json else f"| {name} | {t * 1e3:.1f} ms | {n / t / 1e6:.0f} Melem/s |")


if __name__ == "__main__":
    main()
