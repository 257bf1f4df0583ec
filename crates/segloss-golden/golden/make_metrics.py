"""Golden cases for segloss::metrics, from the peers in float64:
  * the fine-grained mIoU / mDice of Wang & Blaschko (NeurIPS 2023) at dataset, image and
    class level and their worst-case versions, as JDTLosses defines them
    (metrics/mioud_metric.py, metrics/miouic_metric.py), re-implemented below from
    those definitions (JDTLosses is not on PyPI) and returned as fractions;
  * torchmetrics 1.9 `MulticlassJaccardIndex(average=None, ignore_index)` (dataset-level
    per-class IoU) and `MulticlassF1Score(average=None, ignore_index)` (dataset Dice);
  * MONAI 1.6.1 `DiceMetric` / `MeanIoU` per image and class, and with every
    include_background / ignore_empty / reduction (cases without ignored pixels);
  * segmentation_models_pytorch 0.6.0 `metrics.get_stats(mode="multiclass",
    ignore_index)` + `iou_score` / `f1_score` with every reduction, with and without
    class weights.
Label maps with ignored pixels, classes missing from some images, two-class data,
2D and 3D, label and score predictions.

    venv/bin/pip install torch==2.15.0 torchmetrics==1.9.0 numpy && \
        venv/bin/pip install --no-deps monai==1.6.1 segmentation-models-pytorch==0.6.0
    venv/bin/python crates/segloss-golden/golden/make_metrics.py > crates/segloss-golden/golden/metrics.json
"""

import json
import math
import sys

import importlib.util
import os

import monai
import numpy as np
import torch
import torchmetrics
from monai.metrics import DiceMetric, MeanIoU
from torchmetrics.classification import MulticlassF1Score, MulticlassJaccardIndex

torch.set_default_dtype(torch.float64)
rng = np.random.default_rng(20261130)

# smp 0.6.0's metrics module alone (the package's __init__ imports its models and their
# dependencies): `pip install --no-deps segmentation-models-pytorch==0.6.0`.
_spec = importlib.util.find_spec("segmentation_models_pytorch")
_path = os.path.join(os.path.dirname(_spec.origin), "metrics", "functional.py")
_s = importlib.util.spec_from_file_location("smp_functional", _path)
smpf = importlib.util.module_from_spec(_s)
_s.loader.exec_module(smpf)


def jdt(pred, label, c, ignore, qs):
    """The JDTLosses definitions: D from one confusion over the dataset (zero-union
    classes, and the background of two-class data, left out of the means; 1 when none is
    left); I and C from per-image IoU / Dice over the classes in the label (two classes:
    the foreground when prediction or label hold both classes, else 1); worst case over
    the lowest max(1, int(q / 100 * n)) values."""
    keep = label != ignore if ignore is not None else np.ones_like(label, dtype=bool)
    tp = np.zeros(c)
    fp = np.zeros(c)
    fn = np.zeros(c)
    img_iou, img_dice = [], []
    cls_iou = [[] for _ in range(c)]
    cls_dice = [[] for _ in range(c)]
    for b in range(pred.shape[0]):
        p = pred[b][keep[b]]
        y = label[b][keep[b]]
        itp = np.array([np.sum((p == k) & (y == k)) for k in range(c)], dtype=float)
        ip = np.array([np.sum(p == k) for k in range(c)], dtype=float)
        iy = np.array([np.sum(y == k) for k in range(c)], dtype=float)
        tp += itp
        fp += ip - itp
        fn += iy - itp
        if y.size == 0:
            continue
        iou = itp / (ip + iy - itp)
        dice = 2 * itp / (ip + iy)
        if c == 2:
            present = [k for k in range(2) if ip[k] + iy[k] > 0]
            if len(present) == 2:
                ks = [1]
            else:
                img_iou.append(1.0)
                img_dice.append(1.0)
                cls_iou[1].append(1.0)
                cls_dice[1].append(1.0)
                continue
        else:
            ks = [k for k in range(c) if iy[k] > 0]
        img_iou.append(float(np.mean(iou[ks])))
        img_dice.append(float(np.mean(dice[ks])))
        for k in ks:
            cls_iou[k].append(float(iou[k]))
            cls_dice[k].append(float(dice[k]))
    total = tp + fp + fn
    if c == 2:
        total[0] = 0
    sel = total != 0
    if sel.sum() == 0:
        miou_d = mdice_d = 1.0
    else:
        miou_d = float(np.mean(tp[sel] / total[sel]))
        mdice_d = float(np.mean(2 * tp[sel] / (2 * tp[sel] + fp[sel] + fn[sel])))

    def worst(v, q):
        v = sorted(v)
        n = len(v) if q is None else max(1, int(q / 100 * len(v)))
        return sum(v[:n]) / n

    def levels(q):
        iou_i, dice_i = worst(img_iou, q), worst(img_dice, q)
        if c == 2:
            return iou_i, dice_i, iou_i, dice_i
        iou_c = [worst(v, q) for v in cls_iou if v]
        dice_c = [worst(v, q) for v in cls_dice if v]
        return iou_i, dice_i, sum(iou_c) / len(iou_c), sum(dice_c) / len(dice_c)

    out = {"miou_d": miou_d, "mdice_d": mdice_d}
    out.update(dict(zip(["miou_i", "mdice_i", "miou_c", "mdice_c"], levels(None))))
    out["worst"] = {str(q): dict(zip(["miou_i", "mdice_i", "miou_c", "mdice_c"], levels(q)))
                    for q in qs}
    return out


cases = []
qs = [5, 10, 25, 50, 100]
for i, (b, c, spatial, ignore, scores, missing) in enumerate([
    (4, 3, (8, 7), 255, False, True),
    (3, 5, (6, 6, 4), None, True, True),
    (6, 2, (9, 5), 255, False, False),
    (5, 2, (4, 4), None, True, True),
    (2, 19, (16, 12), 255, False, True),
    (8, 4, (5, 5), None, False, True),
    (3, 6, (3, 4, 5), 255, True, False),
]):
    label = rng.integers(0, c, size=(b,) + spatial)
    if missing:
        # Some classes absent from some images, an image of background only.
        label[0][label[0] == c - 1] = 0
        label[-1][...] = 0
    pred = label.copy()
    flip = rng.random(label.shape) < 0.35
    pred[flip] = rng.integers(0, c, size=int(flip.sum()))
    if ignore is not None:
        label[rng.random(label.shape) < 0.1] = ignore
    case = {"id": f"metrics-{i:03d}", "classes": c, "ignore_index": ignore,
            "shape": [b] + list(spatial), "label": label.flatten().tolist()}
    if scores:
        x = rng.normal(0.0, 1.0, size=(b, c) + spatial)
        # Make the argmax the chosen prediction.
        np.put_along_axis(x, pred[:, None], x.max(axis=1, keepdims=True) + 1.0, axis=1)
        case["scores"] = x.flatten().tolist()
        pred = torch.tensor(x).argmax(1).numpy()
    else:
        case["pred"] = pred.flatten().tolist()
    case["jdt"] = jdt(pred, label, c, ignore, qs)
    tp_, lb = torch.tensor(pred), torch.tensor(label)
    ji = MulticlassJaccardIndex(num_classes=c, average=None, ignore_index=ignore)
    f1 = MulticlassF1Score(num_classes=c, average=None, ignore_index=ignore)
    case["torchmetrics_iou_per_class"] = ji(tp_, lb).tolist()
    case["torchmetrics_dice_per_class"] = f1(tp_, lb).tolist()
    # smp: get_stats (multiclass, ignore_index) and iou / f1 with every reduction.
    st = smpf.get_stats(torch.tensor(pred), torch.tensor(label), mode="multiclass",
                        num_classes=c, ignore_index=ignore)
    weights = [float(k + 1) for k in range(c)]
    smp_runs = []
    for metric, fn in [("iou", smpf.iou_score), ("f1", smpf.f1_score)]:
        for red in ["micro", "macro", "weighted", "micro-imagewise", "macro-imagewise",
                    "weighted-imagewise", "none"]:
            for w in [None, weights]:
                if w is None and "weighted" in red:
                    continue
                v = fn(*st, reduction=red, class_weights=w, zero_division=1.0)
                smp_runs.append({"metric": metric, "reduction": red, "class_weights": w,
                                 "values": [None if math.isnan(x) else x
                                            for x in torch.as_tensor(v).flatten().tolist()]})
    case["smp_runs"] = smp_runs
    if ignore is None:
        oh = lambda t: torch.nn.functional.one_hot(torch.tensor(t), c).movedim(-1, 1).double()
        dm = DiceMetric(include_background=True, reduction="none", ignore_empty=True)
        mi = MeanIoU(include_background=True, reduction="none", ignore_empty=True)
        d = dm(oh(pred), oh(label))
        m = mi(oh(pred), oh(label))
        nan = lambda v: [[None if math.isnan(x) else x for x in row] for row in v.tolist()]
        case["monai_dice"] = nan(d)
        case["monai_iou"] = nan(m)
        # MONAI's reductions and flags, on the same data.
        runs = []
        for metric, cls in [("dice", DiceMetric), ("iou", MeanIoU)]:
            for bg in [True, False]:
                for ie in [True, False]:
                    for red in ["none", "mean", "sum", "mean_batch", "sum_batch",
                                "mean_channel", "sum_channel"]:
                        mm = cls(include_background=bg, reduction=red, ignore_empty=ie)
                        mm(oh(pred), oh(label))
                        v = mm.aggregate()
                        v = v[0] if isinstance(v, (list, tuple)) else v
                        runs.append({"metric": metric, "include_background": bg,
                                     "ignore_empty": ie, "reduction": red,
                                     "values": [None if math.isnan(x) else x
                                                for x in v.flatten().tolist()]})
        case["monai_runs"] = runs
    cases.append(case)

json.dump({"schema": "segloss-golden-metrics-1", "torch": torch.__version__,
           "torchmetrics": torchmetrics.__version__, "monai": monai.__version__,
           "cases": cases}, sys.stdout)
