"""Golden cases for deep supervision (issue 36), in float64 with autograd gradients:

  * nearest-exact: MONAI 1.6.1 `DeepSupervisionLoss(DiceLoss(softmax=True,
    to_onehot_y=True, ...), weight_mode=..., weights=...)` itself, on a list of heads
    and one index target `[B, 1, S...]` (MONAI interpolates it with "nearest-exact");
  * area: the PyTorch composition segloss's `Pooling::Area` stands for: per head, the
    one-hot target averaged over each cell (`F.adaptive_avg_pool2d/3d`, PyTorch's cells
    for any ratio), then MONAI's `DiceLoss(softmax=True, soft_label=True, ...)`, weighted
    by MONAI's `weight_mode` and summed (no ignored pixel: every cell keeps its pixels).

Each case: `target_shape` [B, C, S...], `target` (labels, flat), `heads` ([{shape,
input}]), the wrapped loss's MONAI arguments (`dice`), `pooling`, `weight_mode`,
`weights`, and the results: `loss`, `losses` (per head, unweighted), `grads` (per head,
of the total).

    venv/bin/python crates/segloss-golden/golden/make_deep.py > crates/segloss-golden/golden/deep.json

`cargo test` reads the committed JSON and needs no Python.
"""

import json

import monai
import numpy as np
import torch
import torch.nn.functional as F
from monai.losses import DeepSupervisionLoss, DiceLoss

torch.set_default_dtype(torch.float64)
rng = np.random.default_rng(20261208)


def labels(shape, classes, blob=True):
    """Random label maps with a few small structures (one or two pixels of class C-1)."""
    y = rng.integers(0, classes - 1, size=shape)
    for _ in range(3):
        idx = tuple(rng.integers(0, s) for s in shape)
        y[idx] = classes - 1
    return torch.tensor(y)


def case(name, target_shape, head_spatial, pooling, dice, weight_mode="exp", weights=None):
    b, c = target_shape[:2]
    y = labels([b] + target_shape[2:], c)
    heads = [torch.tensor(rng.normal(0.0, 2.0, size=[b, c] + s), requires_grad=True)
             for s in head_spatial]
    if pooling == "nearest-exact":
        loss_fn = DeepSupervisionLoss(DiceLoss(softmax=True, to_onehot_y=True, **dice),
                                      weight_mode=weight_mode, weights=weights)
        total = loss_fn(heads, y[:, None].double())
        ds = loss_fn
        levels = ds.get_weights(len(heads))
        losses = [DiceLoss(softmax=True, to_onehot_y=True, **dice)(
            h, F.interpolate(y[:, None].double(), size=h.shape[2:], mode="nearest-exact")).item()
            for h in heads]
    else:
        onehot = F.one_hot(y, c).movedim(-1, 1).double()
        pool = F.adaptive_avg_pool2d if len(target_shape) == 4 else F.adaptive_avg_pool3d
        levels = DeepSupervisionLoss(DiceLoss(), weight_mode=weight_mode,
                                     weights=weights).get_weights(len(heads))
        total = 0.0
        losses = []
        for w, h in zip(levels, heads):
            t = onehot if list(h.shape[2:]) == target_shape[2:] else pool(onehot, h.shape[2:])
            l = DiceLoss(softmax=True, soft_label=True, **dice)(h, t)
            losses.append(l.item())
            total = total + w * l
    total.backward()
    return {
        "id": name,
        "target_shape": target_shape,
        "target": y.flatten().tolist(),
        "heads": [{"shape": list(h.shape), "input": h.detach().flatten().tolist()} for h in heads],
        "pooling": pooling,
        "dice": dice,
        "weight_mode": weight_mode,
        "weights": weights,
        "applied_weights": [float(v) for v in levels],
        "loss": total.item(),
        "losses": losses,
        "grads": [h.grad.flatten().tolist() for h in heads],
    }


cases = [
    case("nearest 2D exp", [2, 4, 12, 10], [[12, 10], [6, 5], [3, 3]], "nearest-exact", {}),
    case("nearest 2D two, batch, soft_label", [2, 3, 9, 14], [[9, 14], [5, 7], [2, 4]],
         "nearest-exact", {"batch": True, "soft_label": True}, weight_mode="two"),
    case("nearest 3D same", [1, 3, 8, 6, 5], [[8, 6, 5], [4, 3, 3]], "nearest-exact", {},
         weight_mode="same"),
    case("nearest 2D explicit weights (more than heads)", [1, 3, 8, 8], [[8, 8], [4, 4]],
         "nearest-exact", {}, weights=[0.7, 0.2, 0.1]),
    case("area 2D exp", [2, 4, 12, 10], [[12, 10], [6, 5], [3, 3]], "area", {}),
    case("area 2D non-integer ratios, batch", [2, 3, 11, 13], [[11, 13], [4, 5], [3, 2]], "area",
         {"batch": True}),
    case("area 3D two", [1, 3, 8, 6, 5], [[8, 6, 5], [4, 3, 2]], "area", {}, weight_mode="two"),
]
print(json.dumps({"monai": monai.__version__, "torch": torch.__version__, "cases": cases}))
