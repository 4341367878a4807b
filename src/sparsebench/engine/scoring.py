"""Stacked scoring: many candidate masks evaluated at initialization at once."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..models.compaction import gather_stacked
from ..models.mask import NodeMask
from ..models.mlp import Layer, activation_fn
from .stacked import EVAL_BUDGET_BYTES


@torch.no_grad()
def score_masks(
    parent: list[Layer],
    masks: list[NodeMask],
    x: torch.Tensor,
    y: torch.Tensor,
    score: str = "loss",
    activation: str = "relu",
) -> torch.Tensor:
    """Each untrained sub-network's mean loss (or accuracy) on ``(x, y)``, shape ``(K,)``.

    Candidates are compacted and evaluated in chunks so that memory stays
    bounded for any K.

    >>> from sparsebench.models import MLPSpec, init_parent, random_masks
    >>> parent = init_parent(MLPSpec(4, (8, 8), 3), seed=0)
    >>> masks = random_masks((8, 8), 0.5, 5, torch.Generator().manual_seed(0))
    >>> score_masks(parent, masks, torch.randn(10, 4), torch.randint(0, 3, (10,))).shape
    torch.Size([5])
    """
    if not masks:
        return torch.empty(0)
    # Every candidate's first hidden layer is a subset of the parent's, whose
    # input is shared: compute the parent's once and gather columns, instead
    # of K thin matrix products.
    # Activations are kept node-major, (k, width, n): every product is then
    # W (k, out, in) @ H (k, in, n) on contiguous operands, and a candidate's
    # first layer is a gather of whole rows of the parent's.
    act = {"relu": torch.relu_, "tanh": torch.tanh_}.get(activation, activation_fn(activation))
    first = act(torch.addmm(parent[0].bias[:, None], parent[0].weight, x.t()))  # (w1, n)
    widest = max(max(m.kept_per_layer) for m in masks)
    chunk = max(1, EVAL_BUDGET_BYTES // (4 * len(y) * widest))
    scores = []
    for start in range(0, len(masks), chunk):
        part = masks[start : start + chunk]
        h = first[torch.stack([m.index_tensors(x.device)[0] for m in part])]  # (k, w1, n)
        rest = gather_stacked(parent, part)[1:]
        for i, (w, b) in enumerate(rest):
            h = torch.bmm(w, h).add_(b.unsqueeze(2))
            if i < len(rest) - 1:
                h = act(h)
        losses = F.cross_entropy(h, y.expand(len(part), -1), reduction="none").sum(dim=1)  # h: (k, C, n)
        correct = (h.argmax(dim=1) == y).sum(dim=1)
        scores.append(losses / len(y) if score == "loss" else correct.float() / len(y))
    return torch.cat(scores).cpu()
