"""Golden cases for compound losses (cross-entropy / KL / BCE / focal + overlap).

Produced in float64 by the peers themselves, gradients by autograd:
  * MONAI 1.6.1 `DiceCELoss`, `DiceFocalLoss`, `FocalLoss`, `DiceLoss(soft_label=True)`;
  * PyTorch 2.15 `CrossEntropyLoss(weight, label_smoothing, ignore_index)`,
    `BCEWithLogitsLoss(weight, pos_weight)` and `kl_div`.
Each case is restated in segloss's vocabulary (`spec`, the public golden format plus
`overlap_weight`, `cross_entropy` and `focal`); `peer` / `peer_args` record the call.

    python3 -m venv venv && venv/bin/pip install torch==2.15.0 && \
        venv/bin/pip install --no-deps monai==1.6.1 && venv/bin/pip install numpy
    venv/bin/python crates/segloss-golden/golden/make_compound.py > crates/segloss-golden/golden/compound.json

`cargo test` reads the committed JSON and needs no Python.
"""

import json
import sys

import monai
import numpy as np
import torch
import torch.nn.functional as F
from monai.losses import DiceCELoss, DiceFocalLoss, DiceLoss, FocalLoss

torch.set_default_dtype(torch.float64)
rng = np.random.default_rng(20261127)


def logits(shape, scale=3.0):
    return torch.tensor(rng.normal(0.0, scale, size=shape))


def soft_target(shape):
    """Mixed hard and soft values per class, normalised over classes (distributions)."""
    t = rng.random(shape) ** 2
    t[rng.random(shape) < 0.3] = 0.0
    t = t + 1e-3
    return torch.tensor(t / t.sum(axis=1, keepdims=True))


def multilabel_target(shape):
    t = rng.random(shape)
    t[t < 0.3] = 0.0
    t[t > 0.8] = 1.0
    return torch.tensor(t)


def index_target(shape_bs, c):
    return torch.tensor(rng.integers(0, c, size=shape_bs))


def spec(overlap="dice", formulation="soft", activation="softmax", smooth=(1e-5, 1e-5),
         include_background=True, batch=False, class_weights=None, reduction="mean",
         ignore_index=None, overlap_weight=1.0, cross_entropy=None, focal=None):
    ab = {"dice": (0.5, 0.5), "jaccard": (1.0, 1.0)}[overlap]
    return {
        "overlap": overlap, "alpha": ab[0], "beta": ab[1],
        "formulation": formulation, "activation": activation,
        "smooth_nr": smooth[0], "smooth_dr": smooth[1],
        "include_background": include_background,
        "aggregation": {"dataset": 1.0 if batch else 0.0, "image": 0.0 if batch else 1.0,
                        "class": 0.0},
        "active_classes": {"mode": "all", "threshold": 0.0},
        "class_weights": class_weights, "log_loss": False, "gamma": 1.0,
        "reduction": reduction, "ignore_index": ignore_index,
        "overlap_weight": overlap_weight, "cross_entropy": cross_entropy, "focal": focal,
    }


def ce_spec(weight, kind="softmax", class_weights=None, label_smoothing=0.0, pos_weight=None):
    return {"weight": weight, "kind": kind, "class_weights": class_weights,
            "label_smoothing": label_smoothing, "pos_weight": pos_weight}


def focal_spec(weight, gamma, softmax=False, alpha=None, class_weights=None):
    return {"weight": weight, "gamma": gamma, "softmax": softmax, "alpha": alpha,
            "class_weights": class_weights}


cases = []


def add(cid, peer, peer_args, sp, x, target, kind, fn):
    x = x.clone().requires_grad_(True)
    loss = fn(x)
    loss.backward()
    cases.append({
        "id": cid, "peer": peer, "peer_args": peer_args, "spec": sp,
        "shape": list(x.shape), "input": x.detach().flatten().tolist(),
        "target_kind": kind, "target": target.flatten().double().tolist(),
        "loss": float(loss), "loss_values": None, "grad": x.grad.flatten().tolist(),
    })


def onehot(t, c):
    return F.one_hot(t, c).movedim(-1, 1).double()


# 1. MONAI DiceCELoss, index targets (hard labels), softmax CE with weights and smoothing.
for i, (shape, weight, ls, lam, bg, batch) in enumerate([
    ((2, 3, 5, 4), None, 0.0, (1.0, 1.0), True, False),
    ((2, 4, 6, 5), [0.4, 1.3, 0.8, 2.0], 0.0, (0.75, 0.25), True, True),
    ((1, 3, 4, 4, 3), [0.5, 1.0, 1.5], 0.1, (1.0, 0.5), False, False),
    ((3, 5, 7), None, 0.2, (0.6, 1.4), True, True),
    ((2, 4, 5, 5), [1.0, 2.0, 0.5, 1.5], 0.05, (1.0, 1.0), False, True),
]):
    c = shape[1]
    x = logits(shape)
    t = index_target((shape[0],) + shape[2:], c)
    args = dict(to_onehot_y=True, softmax=True, include_background=bg, batch=batch,
                lambda_dice=lam[0], lambda_ce=lam[1], label_smoothing=ls,
                weight=None if weight is None else torch.tensor(weight))
    peer = DiceCELoss(**args)
    dice_w = None if weight is None else (weight if bg else weight[1:])
    sp = spec(formulation="classic", smooth=(0.5e-5, 0.5e-5), include_background=bg,
              batch=batch, class_weights=dice_w, overlap_weight=lam[0],
              cross_entropy=ce_spec(lam[1], class_weights=weight, label_smoothing=ls))
    pa = {k: (v.tolist() if torch.is_tensor(v) else v) for k, v in args.items()}
    add(f"monai-dicece-{i:03d}", "MONAI 1.6.1 DiceCELoss", pa, sp, x, t, "index",
        lambda x: peer(x, t.unsqueeze(1)))

# 2. MONAI DiceCELoss with one sigmoid channel: BCEWithLogits(pos_weight=weight).
for i, (shape, pw) in enumerate([((2, 1, 6, 5), None), ((3, 1, 4, 4), [2.5])]):
    x = logits(shape)
    t = multilabel_target(shape).round()
    args = dict(sigmoid=True, lambda_dice=0.8, lambda_ce=1.2,
                weight=None if pw is None else torch.tensor(pw))
    peer = DiceCELoss(**args)
    sp = spec(formulation="classic", activation="sigmoid", smooth=(0.5e-5, 0.5e-5),
              overlap_weight=0.8, cross_entropy=ce_spec(1.2, kind="binary", pos_weight=pw))
    pa = {k: (v.tolist() if torch.is_tensor(v) else v) for k, v in args.items()}
    add(f"monai-dicece-bce-{i:03d}", "MONAI 1.6.1 DiceCELoss", pa, sp, x, t, "soft",
        lambda x: peer(x, t))

# 3. MONAI DiceFocalLoss (its focal term is the sigmoid one), one-hot hard labels.
for i, (shape, gamma, alpha, weight, bg, act, lam) in enumerate([
    ((2, 3, 5, 4), 2.0, None, None, True, "softmax", (1.0, 1.0)),
    ((2, 4, 6, 4), 2.0, 0.25, None, True, "softmax", (0.7, 1.3)),
    ((1, 3, 4, 4, 2), 1.5, 0.75, [0.5, 2.0], False, "sigmoid", (1.0, 0.5)),
    ((3, 4, 9), 0.0, None, [1.0, 0.5, 2.0, 1.5], True, "softmax", (1.0, 1.0)),
]):
    c = shape[1]
    x = logits(shape)
    t = onehot(index_target((shape[0],) + shape[2:], c), c)
    args = dict(softmax=act == "softmax", sigmoid=act == "sigmoid", include_background=bg,
                gamma=gamma, alpha=alpha, weight=weight, lambda_dice=lam[0],
                lambda_focal=lam[1])
    peer = DiceFocalLoss(**args)
    sp = spec(formulation="classic", activation=act, smooth=(0.5e-5, 0.5e-5),
              include_background=bg, class_weights=weight, overlap_weight=lam[0],
              focal=focal_spec(lam[1], gamma, alpha=alpha, class_weights=weight))
    add(f"monai-dicefocal-{i:03d}", "MONAI 1.6.1 DiceFocalLoss", args, sp, x, t, "soft",
        lambda x: peer(x, t))

# 4. Index targets with ignore_index: MONAI DiceLoss(soft_label, ignore_index) +
#    PyTorch CrossEntropyLoss(weight, ignore_index).
for i, (shape, weight, ls) in enumerate([
    ((2, 3, 6, 5), [0.3, 1.0, 2.0], 0.0),
    ((2, 4, 5, 5), [1.0, 0.5, 1.5, 2.0], 0.1),
    ((3, 3, 8), None, 0.0),
]):
    c = shape[1]
    x = logits(shape)
    t = index_target((shape[0],) + shape[2:], c)
    t[torch.tensor(rng.random(t.shape) < 0.2)] = 255
    dice = DiceLoss(softmax=True, soft_label=True, to_onehot_y=True, ignore_index=255)
    ce = torch.nn.CrossEntropyLoss(weight=None if weight is None else torch.tensor(weight),
                                   ignore_index=255, label_smoothing=ls)
    sp = spec(smooth=(0.5e-5, 0.5e-5), ignore_index=255, overlap_weight=0.5,
              cross_entropy=ce_spec(0.5, class_weights=weight, label_smoothing=ls))
    pa = {"dice": {"softmax": True, "soft_label": True, "to_onehot_y": True,
                   "ignore_index": 255},
          "ce": {"weight": weight, "ignore_index": 255, "label_smoothing": ls},
          "combined": "0.5 * dice + 0.5 * ce"}
    add(f"torch-ce-ignore-{i:03d}", "MONAI 1.6.1 DiceLoss + PyTorch 2.15 CrossEntropyLoss",
        pa, sp, x, t, "index", lambda x: 0.5 * dice(x, t.unsqueeze(1)) + 0.5 * ce(x, t))

# 5. Soft labels, where MONAI's DiceLoss(soft_label=True) + PyTorch CE define the right
#    answer (MONAI's DiceCELoss would use the classic Dice here).
for i, (shape, weight, ls, lam, overlap, batch) in enumerate([
    ((2, 3, 5, 4), None, 0.0, (0.75, 0.25), "jaccard", True),
    ((2, 4, 6, 5), [0.5, 1.5, 1.0, 2.0], 0.1, (1.0, 1.0), "dice", False),
    ((1, 5, 4, 4, 3), None, 0.2, (0.5, 1.5), "dice", True),
]):
    x = logits(shape)
    t = soft_target(shape)
    dice = DiceLoss(softmax=True, soft_label=True, jaccard=overlap == "jaccard", batch=batch)
    ce = torch.nn.CrossEntropyLoss(weight=None if weight is None else torch.tensor(weight),
                                   label_smoothing=ls)
    sp = spec(overlap=overlap, smooth=(0.5e-5, 0.5e-5), batch=batch, overlap_weight=lam[0],
              cross_entropy=ce_spec(lam[1], class_weights=weight, label_smoothing=ls))
    pa = {"dice": {"softmax": True, "soft_label": True, "jaccard": overlap == "jaccard",
                   "batch": batch},
          "ce": {"weight": weight, "label_smoothing": ls},
          "combined": f"{lam[0]} * dice + {lam[1]} * ce (probability targets)"}
    add(f"soft-ce-{i:03d}", "MONAI 1.6.1 DiceLoss + PyTorch 2.15 CrossEntropyLoss", pa, sp,
        x, t, "soft", lambda x: lam[0] * dice(x, t) + lam[1] * ce(x, t))

# 6. The Jaccard Metric Loss recipe with soft labels: 0.25 KL + 0.75 soft Jaccard.
for i, shape in enumerate([(2, 3, 6, 5), (1, 4, 5, 4, 3)]):
    x = logits(shape)
    t = soft_target(shape)
    jac = DiceLoss(softmax=True, soft_label=True, jaccard=True, batch=True,
                   smooth_nr=0.0, smooth_dr=1e-6)
    pixels = shape[0] * int(np.prod(shape[2:]))
    sp = spec(overlap="jaccard", smooth=(0.0, 0.5e-6), batch=True, overlap_weight=0.75,
              cross_entropy=ce_spec(0.25, kind="kl"))
    pa = {"jaccard": {"softmax": True, "soft_label": True, "jaccard": True, "batch": True,
                      "smooth_nr": 0.0, "smooth_dr": 1e-6},
          "kl": "F.kl_div(log_softmax(x, 1), y, reduction='sum') / (B * N)",
          "combined": "0.75 * jaccard + 0.25 * kl"}
    add(f"soft-kl-{i:03d}", "MONAI 1.6.1 DiceLoss + PyTorch 2.15 kl_div", pa, sp, x, t,
        "soft", lambda x: 0.75 * jac(x, t)
        + 0.25 * F.kl_div(F.log_softmax(x, 1), t, reduction="sum") / pixels)

# 7. Multi-label sigmoid: BCEWithLogitsLoss(weight, pos_weight) + soft Dice, soft labels.
for i, shape in enumerate([(2, 3, 5, 5), (1, 2, 4, 4, 4)]):
    c = shape[1]
    x = logits(shape)
    t = multilabel_target(shape)
    w = [0.5 + 0.5 * k for k in range(c)]
    pw = [2.0 - 0.5 * k for k in range(c)]
    bshape = [1, c] + [1] * (len(shape) - 2)
    dice = DiceLoss(sigmoid=True, soft_label=True)
    bce = torch.nn.BCEWithLogitsLoss(weight=torch.tensor(w).view(bshape),
                                     pos_weight=torch.tensor(pw).view(bshape))
    sp = spec(activation="sigmoid", smooth=(0.5e-5, 0.5e-5),
              cross_entropy=ce_spec(1.0, kind="binary", class_weights=w, pos_weight=pw))
    pa = {"dice": {"sigmoid": True, "soft_label": True},
          "bce": {"weight": w, "pos_weight": pw}, "combined": "dice + bce"}
    add(f"soft-bce-{i:03d}", "MONAI 1.6.1 DiceLoss + PyTorch 2.15 BCEWithLogitsLoss", pa, sp,
        x, t, "soft", lambda x: dice(x, t) + bce(x, t))

# 8. Focal terms alone with the soft Dice: softmax focal (scalar or per-class α), sigmoid
#    focal with per-class α (applied where y = 1), soft and hard labels.
for i, (shape, use_softmax, alpha, weight, soft, gamma) in enumerate([
    ((2, 3, 5, 4), True, None, None, True, 2.0),
    ((2, 4, 5, 5), True, 0.3, [1.0, 2.0, 0.5, 1.0], False, 2.0),
    ((1, 3, 4, 4, 3), True, [0.2, 0.5, 0.8], None, True, 1.0),
    ((2, 3, 6, 4), False, [0.25, 0.5, 0.9], [0.5, 1.0, 2.0], False, 2.0),
    ((2, 3, 6, 4), False, 0.4, None, True, 3.0),
]):
    c = shape[1]
    x = logits(shape)
    t = soft_target(shape) if soft else onehot(index_target((shape[0],) + shape[2:], c), c)
    act = "softmax" if use_softmax else "sigmoid"
    dice = DiceLoss(softmax=use_softmax, sigmoid=not use_softmax, soft_label=True)
    focal = FocalLoss(use_softmax=use_softmax, gamma=gamma, alpha=alpha, weight=weight)
    sp = spec(activation=act, smooth=(0.5e-5, 0.5e-5),
              focal=focal_spec(0.5, gamma, softmax=use_softmax, alpha=alpha,
                               class_weights=weight))
    pa = {"dice": {act: True, "soft_label": True},
          "focal": {"use_softmax": use_softmax, "gamma": gamma, "alpha": alpha,
                    "weight": weight},
          "combined": "dice + 0.5 * focal"}
    add(f"focal-{i:03d}", "MONAI 1.6.1 DiceLoss + FocalLoss", pa, sp, x, t, "soft",
        lambda x: dice(x, t) + 0.5 * focal(x, t))

# 9. Sum reduction: MONAI DiceCELoss(reduction="sum").
for i, shape in enumerate([(2, 3, 4, 4)]):
    c = shape[1]
    x = logits(shape)
    t = index_target((shape[0],) + shape[2:], c)
    peer = DiceCELoss(to_onehot_y=True, softmax=True, reduction="sum")
    sp = spec(formulation="classic", smooth=(0.5e-5, 0.5e-5), reduction="sum",
              cross_entropy=ce_spec(1.0))
    add(f"monai-dicece-sum-{i:03d}", "MONAI 1.6.1 DiceCELoss",
        {"to_onehot_y": True, "softmax": True, "reduction": "sum"}, sp, x, t, "index",
        lambda x: peer(x, t.unsqueeze(1)))

json.dump({"schema": 1, "torch": torch.__version__, "monai": monai.__version__,
           "dtype": "float64", "cases": cases}, sys.stdout)
print(f"{len(cases)} cases", file=sys.stderr)
