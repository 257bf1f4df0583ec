"""Golden cases for the Generalized Dice losses, produced by MONAI 1.6.1 itself in float64
with autograd gradients: `GeneralizedDiceLoss` (each w_type, batch true/false, soft and
hard labels, classes empty in some images, include_background false, reductions mean /
sum / none, sigmoid and softmax) and `GeneralizedDiceFocalLoss` (with focal weights).
`peer_args` records each call; the Rust test builds `segloss::monai::GeneralizedDiceLoss`
/ `GeneralizedDiceFocalLoss` from them.

    python3 -m venv venv && venv/bin/pip install torch==2.15.0 && \
        venv/bin/pip install --no-deps monai==1.6.1 && venv/bin/pip install numpy
    venv/bin/python crates/segloss-golden/golden/make_gdl.py > crates/segloss-golden/golden/gdl.json

`cargo test` reads the committed JSON and needs no Python.
"""

import json

import monai
import numpy as np
import torch
from monai.losses import GeneralizedDiceFocalLoss, GeneralizedDiceLoss

torch.set_default_dtype(torch.float64)
rng = np.random.default_rng(20261130)


def logits(shape, scale=2.5):
    return torch.tensor(rng.normal(0.0, scale, size=shape))


def soft_target(shape, empty=()):
    """Soft labels, normalised over classes; classes in `empty` ((b, c) pairs) are 0."""
    t = rng.random(shape) ** 2
    t[rng.random(shape) < 0.3] = 0.0
    t = t + 1e-3
    t = t / t.sum(axis=1, keepdims=True)
    for b, c in empty:
        t[b, c] = 0.0
    return torch.tensor(t)


def multilabel_target(shape, empty=()):
    t = rng.random(shape)
    t[t < 0.4] = 0.0
    t[t > 0.8] = 1.0
    for b, c in empty:
        t[b, c] = 0.0
    return torch.tensor(t)


def index_target(shape_bs, c, missing=()):
    """Class indices; class `m` absent from image `b` for (b, m) in `missing`."""
    t = rng.integers(0, c, size=shape_bs)
    for b, m in missing:
        t[b][t[b] == m] = (m + 1) % c
    return torch.tensor(t)


cases = []


def add(cid, peer, args, x, target, kind, fn):
    x = x.clone().requires_grad_(True)
    out = fn(x)
    values = None
    if out.dim() > 0:
        values = out.detach().flatten().tolist()
        loss = out.sum()
    else:
        loss = out
    loss.backward()
    cases.append({
        "id": cid, "peer": peer,
        "peer_args": {k: (v.tolist() if torch.is_tensor(v) else v) for k, v in args.items()},
        "shape": list(x.shape), "input": x.detach().flatten().tolist(),
        "target_kind": kind, "target": target.flatten().double().tolist(),
        "loss": float(loss), "loss_values": values, "grad": x.grad.flatten().tolist(),
    })


gdl = "MONAI 1.6.1 GeneralizedDiceLoss"
i = 0
# 1. Index targets (to_onehot_y), softmax: each w_type × batch × reduction, a class
#    missing from some images, with and without the background.
for w_type in ["square", "simple", "uniform"]:
    for batch in [False, True]:
        for reduction in ["mean", "sum", "none"]:
            bg = (i % 3) != 1
            shape = [(2, 4, 6, 5), (3, 3, 5, 4), (2, 5, 4, 3, 3)][i % 3]
            c = shape[1]
            x = logits(shape)
            t = index_target((shape[0],) + shape[2:], c, missing=[(0, c - 1), (1, 1)])
            args = dict(to_onehot_y=True, softmax=True, include_background=bg, w_type=w_type,
                        batch=batch, reduction=reduction, soft_label=(i % 2 == 0))
            peer = GeneralizedDiceLoss(**args)
            add(f"monai-gdl-{i:03d}", gdl, args, x, t, "index",
                lambda x: peer(x, t.unsqueeze(1)))
            i += 1

# 2. Soft labels (averaged annotators), soft_label true and false, empty classes.
for w_type, batch, reduction, soft in [("square", False, "mean", True),
                                       ("simple", True, "mean", True),
                                       ("uniform", False, "none", True),
                                       ("square", True, "sum", False),
                                       ("simple", False, "sum", True),
                                       ("square", False, "none", False)]:
    shape = (3, 4, 5, 6)
    x = logits(shape)
    t = soft_target(shape, empty=[(0, 2), (2, 1), (2, 3)])
    args = dict(softmax=True, w_type=w_type, batch=batch, reduction=reduction,
                soft_label=soft, include_background=(i % 2 == 0))
    peer = GeneralizedDiceLoss(**args)
    add(f"monai-gdl-{i:03d}", gdl, args, x, t, "soft", lambda x: peer(x, t))
    i += 1

# 3. Sigmoid (multi-label), hard and soft targets, a class empty everywhere.
for w_type, batch, reduction, soft in [("square", False, "mean", False),
                                       ("simple", True, "none", True),
                                       ("uniform", True, "sum", True)]:
    shape = (2, 3, 7, 5)
    x = logits(shape)
    t = multilabel_target(shape, empty=[(0, 1), (1, 1)])
    if not soft:
        t = t.round()
    args = dict(sigmoid=True, w_type=w_type, batch=batch, reduction=reduction,
                soft_label=soft)
    peer = GeneralizedDiceLoss(**args)
    add(f"monai-gdl-{i:03d}", gdl, args, x, t, "soft", lambda x: peer(x, t))
    i += 1

# 4. GeneralizedDiceFocalLoss: GDL (classic form) on the activation + sigmoid focal on
#    the logits, with focal class weights.
gdfl = "MONAI 1.6.1 GeneralizedDiceFocalLoss"
for j, (shape, act, w_type, batch, bg, weight, gamma, lam) in enumerate([
    ((2, 3, 5, 4), "softmax", "square", False, True, None, 2.0, (1.0, 1.0)),
    ((2, 4, 6, 4), "softmax", "simple", True, True, [0.5, 1.0, 1.5, 2.0], 2.0, (0.7, 1.3)),
    ((1, 3, 4, 4, 2), "sigmoid", "uniform", False, False, [0.5, 2.0], 1.5, (1.0, 0.5)),
    ((2, 3, 6, 5), "softmax", "square", True, False, [1.2, 0.8], 2.5, (1.0, 2.0)),
]):
    c = shape[1]
    x = logits(shape)
    if act == "softmax":
        t = index_target((shape[0],) + shape[2:], c, missing=[(0, c - 1)])
        kind, tt = "index", t.unsqueeze(1)
        onehot = True
    else:
        t = multilabel_target(shape, empty=[(0, 1)]).round()
        kind, tt = "soft", t
        onehot = False
    args = dict(to_onehot_y=onehot, softmax=act == "softmax", sigmoid=act == "sigmoid",
                include_background=bg, w_type=w_type, batch=batch, gamma=gamma,
                weight=None if weight is None else torch.tensor(weight),
                lambda_gdl=lam[0], lambda_focal=lam[1])
    peer = GeneralizedDiceFocalLoss(**args)
    add(f"monai-gdfl-{j:03d}", gdfl, args, x, t, kind, lambda x: peer(x, tt))

json.dump({"schema": "segloss-golden-gdl-1", "torch": torch.__version__,
           "monai": monai.__version__, "dtype": "float64", "cases": cases},
          __import__("sys").stdout)
