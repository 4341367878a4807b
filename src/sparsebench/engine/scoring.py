"""Stacked scoring: many candidate masks evaluated at initialization at once."""

from __future__ import annotations

import torch

from ..models.compaction import gather_stacked
from ..models.mask import NodeMask
from ..models.mlp import Layer
from .stacked import EVAL_BUDGET_BYTES, evaluate_stacked


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
    """
    if not masks:
        return torch.empty(0)
    widest = max(max(m.kept_per_layer) for m in masks)
    chunk = max(1, EVAL_BUDGET_BYTES // (4 * len(y) * widest))
    scores = []
    for start in range(0, len(masks), chunk):
        stacked = gather_stacked(parent, masks[start : start + chunk])
        loss, acc = evaluate_stacked(stacked, x, y, activation)
        scores.append(loss if score == "loss" else acc)
    return torch.cat(scores).cpu()
