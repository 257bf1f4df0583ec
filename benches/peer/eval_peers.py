"""The evaluate benchmark's peers (benches/evaluate_vs_peers.sh): one PyTorch CPU loop over
the same files as `segloss evaluate` (np.load / nibabel, then the peer's update per image;
the label `--ignore` counts nowhere), printing one JSON line: the wall time from the
first file read to the final value, and the value next to the segloss figure it must
equal (its key in `segloss evaluate --json`).

  python eval_peers.py IMPL PRED_DIR TARGET_DIR --classes C [--ignore 255] [--threads N]

IMPL:
  torch        a confusion matrix by torch.bincount per image (JDTLosses' mIoUDMetric):
               mIoU over the dataset                                   = miou_d
  tm-miou      torchmetrics MeanIoU(per_class=True), index input:
               per class, the mean over the images where it occurs     = miou_c
  tm-gds       torchmetrics GeneralizedDiceScore(per_class=True), index input:
               per class, the mean Dice over the images                = mdice_c
  monai-miou   MONAI MeanIoU(reduction="mean_batch"), one-hot input    = miou_c
  monai-dice   MONAI DiceMetric(reduction="mean_batch"), one-hot input = mdice_c
The ignored pixels are a class C of their own in both prediction and target, dropped
before the mean (torchmetrics, torch), or zero in every one-hot channel (MONAI).
"""
import argparse
import json
import os
import time

import numpy as np
import torch


def load(path):
    if path.endswith(".npy"):
        return np.load(path)
    import nibabel as nib
    return np.asarray(nib.load(path).dataobj)


def stem(name):
    for ext in (".nii.gz", ".nii", ".npy"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("impl", choices=["torch", "tm-miou", "tm-gds", "monai-miou", "monai-dice"])
    ap.add_argument("pred")
    ap.add_argument("target")
    ap.add_argument("--classes", type=int, required=True)
    ap.add_argument("--ignore", type=int, default=255)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    c = a.classes
    preds = {stem(f): f for f in os.listdir(a.pred) if stem(f)}
    targets = {stem(f): f for f in os.listdir(a.target) if stem(f)}
    assert preds.keys() == targets.keys() and preds
    t0 = time.perf_counter()
    if a.impl == "torch":
        conf = torch.zeros(c + 1, c + 1, dtype=torch.int64)
    elif a.impl == "tm-miou":
        from torchmetrics.segmentation import MeanIoU
        m = MeanIoU(num_classes=c + 1, per_class=True, input_format="index")
    elif a.impl == "tm-gds":
        from torchmetrics.segmentation import GeneralizedDiceScore
        m = GeneralizedDiceScore(num_classes=c + 1, per_class=True, input_format="index")
    elif a.impl == "monai-miou":
        from monai.metrics import MeanIoU
        m = MeanIoU(include_background=True, reduction="mean_batch")
    else:
        from monai.metrics import DiceMetric
        m = DiceMetric(include_background=True, reduction="mean_batch")
    for name in sorted(preds):
        p = torch.from_numpy(load(os.path.join(a.pred, preds[name])).astype(np.int64))
        y = torch.from_numpy(load(os.path.join(a.target, targets[name])).astype(np.int64))
        ign = y == a.ignore
        y = torch.where(ign, c, y)
        p = torch.where(ign, c, p)
        if a.impl == "torch":
            conf += torch.bincount((p * (c + 1) + y).flatten(), minlength=(c + 1) ** 2).reshape(c + 1, c + 1)
        elif a.impl.startswith("tm-"):
            m.update(p[None], y[None])
        else:
            dims = (0, p.ndim + 1) + tuple(range(1, p.ndim + 1))
            ph = torch.nn.functional.one_hot(p[None], c + 1).permute(*dims)[:, :c]
            yh = torch.nn.functional.one_hot(y[None], c + 1).permute(*dims)[:, :c]
            m(y_pred=ph, y=yh)
    if a.impl == "torch":
        conf = conf[:c, :c].double()
        tp = conf.diag()
        union = conf.sum(0) + conf.sum(1) - tp
        value, key = (tp[union > 0] / union[union > 0]).mean().item(), "miou_d"
    elif a.impl == "tm-miou":
        # Per class: the sum of its scores and the images where it occurs.
        s, k = m.score[:c].double(), m.num_batches[:c].double()
        value, key = (s[k > 0] / k[k > 0]).mean().item(), "miou_c"
    elif a.impl == "tm-gds":
        value, key = m.compute()[:c].double().mean().item(), "mdice_c"
    else:
        v = m.aggregate().double()
        value, key = v[~torch.isnan(v)].mean().item(), ("miou_c" if a.impl == "monai-miou" else "mdice_c")
    t = time.perf_counter() - t0
    print(json.dumps({"impl": a.impl, "s": t, "value": value, "segloss_key": key,
                      "images": len(preds), "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
