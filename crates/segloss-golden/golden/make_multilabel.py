"""Golden cases for segloss's multi-label metrics (threshold predictions, one-hot /
multi-hot targets): torchmetrics 1.9's MultilabelJaccardIndex / MultilabelF1Score
(per class, over the dataset) and smp 0.6's get_stats(mode="multilabel") (per image,
per class tp / fp / fn), in float64.

    python crates/segloss-golden/golden/make_multilabel.py > crates/segloss-golden/golden/multilabel.json

Threshold semantics: smp and MONAI cut with score >= t, torchmetrics with score > t; the
scores are drawn so that no score equals a threshold. With `sigmoid`, the scores are
logits: smp gets their sigmoid, torchmetrics the logits (it applies the sigmoid itself).
"""

import importlib.util
import json
import os

import numpy as np
import torch
import torchmetrics
from torchmetrics.classification import MultilabelF1Score, MultilabelJaccardIndex

_spec = importlib.util.find_spec("segmentation_models_pytorch")
_path = os.path.join(os.path.dirname(_spec.origin), "metrics", "functional.py")
_s = importlib.util.spec_from_file_location("smp_functional", _path)
smpf = importlib.util.module_from_spec(_s)
_s.loader.exec_module(smpf)

rng = np.random.default_rng(20261201)


def case(cid, shape, threshold, sigmoid, p_label=0.3, empty_class=None, one_hot=False):
    b, c = shape[0], shape[1]
    target = (rng.random(shape) < p_label).astype(np.float64)
    if one_hot:
        labels = rng.integers(0, c, (b,) + tuple(shape[2:]))
        target = np.moveaxis(np.eye(c)[labels], -1, 1)
    if empty_class is not None:
        target[:, empty_class] = 0.0
    if sigmoid:
        # Logits whose sigmoid follows the labels loosely, never exactly at the cut.
        scores = rng.normal(0.0, 1.5, shape) + 1.2 * (2 * target - 1)
        scores[np.abs(scores - np.log(threshold / (1 - threshold))) < 1e-3] += 0.01
        probs = 1.0 / (1.0 + np.exp(-scores))
    else:
        scores = np.clip(rng.random(shape) * 0.7 + 0.3 * target, 0.0, 1.0)
        scores[np.abs(scores - threshold) < 1e-3] += 0.01
        probs = scores
    scores = scores.astype(np.float32).astype(np.float64)
    if sigmoid:
        probs = 1.0 / (1.0 + np.exp(-scores))
    else:
        probs = scores
    tp, fp, fn, tn = smpf.get_stats(
        torch.tensor(probs), torch.tensor(target).long(), mode="multilabel", threshold=threshold
    )
    jac = MultilabelJaccardIndex(num_labels=c, threshold=threshold, average=None, zero_division=0)
    f1 = MultilabelF1Score(num_labels=c, threshold=threshold, average=None, zero_division=0)
    pt = torch.tensor(scores if sigmoid else probs, dtype=torch.float64)
    tt = torch.tensor(target).long()
    tm_iou = jac(pt, tt).double().tolist()
    tm_f1 = f1(pt, tt).double().tolist()
    return {
        "id": cid,
        "shape": list(shape),
        "threshold": threshold,
        "sigmoid": sigmoid,
        "scores": scores.reshape(-1).tolist(),
        "target": target.reshape(-1).tolist(),
        "smp_tp": tp.tolist(),
        "smp_fp": fp.tolist(),
        "smp_fn": fn.tolist(),
        "smp_tn": tn.tolist(),
        "tm_iou": tm_iou,
        "tm_f1": tm_f1,
    }


cases = [
    case("2d-sigmoid-0.5", (3, 4, 9, 7), 0.5, True),
    case("2d-prob-0.3", (2, 3, 8, 8), 0.3, False),
    case("2d-prob-0.6-empty-class", (2, 5, 6, 5), 0.6, False, empty_class=2),
    case("3d-sigmoid-0.7", (2, 3, 4, 5, 6), 0.7, True),
    case("one-hot-2d-sigmoid-0.5", (2, 3, 7, 9), 0.5, True, one_hot=True),
]
print(json.dumps({"torchmetrics": torchmetrics.__version__, "cases": cases}))
