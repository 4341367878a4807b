"""What a score is: a name, a direction, whether it is stored as a log, and how to compute it for many masks.

A score ranks candidate sub-networks of one parent at initialization (untrained): one float per mask. The
registry (``sparsebench.scores``) lists the members; ``SelectionContext.score`` and ``SelectionContext.better``
use them, so every search method ranks by any of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from ..models.base import ParentFamily, Weights
from ..models.mask import NodeMask

#: ``compute(family, weights, masks, x, y, reference)``: one value per mask, shape ``(K,)``, on the CPU (float64 for the training-free scores).
ScoreFunction = Callable[[ParentFamily, Weights, "list[NodeMask]", torch.Tensor, torch.Tensor, bool], torch.Tensor]


@dataclass(frozen=True)
class Score:
    """One way to rank untrained sub-networks.

    ``higher_is_better``: the direction; ``log``: the stored value is the natural log of the quantity (scores
    that span many orders of magnitude); ``reads``: what data it reads, in words; ``batchnorm``: how BatchNorm
    runs while it is computed, in words. ``compute`` takes the parent's family and weights, the masks (all of one
    sparsity), the split ``(x, y)`` (prepared for the family) and ``reference`` (True: each masked full-width
    network alone, the plain way; False: compacted candidates, batched).

    >>> s = Score("toy", higher_is_better=False, log=False, reads="", batchnorm="", compute=None)
    >>> s.better(1.0, 2.0), s.better(float("nan"), 2.0), s.better(2.0, float("nan"))
    (True, False, True)
    """

    name: str
    higher_is_better: bool
    log: bool
    reads: str
    batchnorm: str
    compute: ScoreFunction

    def __call__(self, family: ParentFamily, weights: Weights, masks: list[NodeMask], x: torch.Tensor,
                 y: torch.Tensor, reference: bool = False) -> torch.Tensor:
        if not masks:
            return torch.empty(0)
        return self.compute(family, weights, masks, x, y, reference)

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` ranks strictly above ``b`` in this score's direction; NaN ranks below every number
        (a candidate whose score is undefined is never preferred to one whose score is defined)."""
        if math.isnan(a):
            return False
        if math.isnan(b):
            return True
        return a > b if self.higher_is_better else a < b

    def describe(self) -> str:
        """The score in words, for reports and help: ``naswot (log, higher is better)``."""
        return f"{self.name} ({'log, ' if self.log else ''}{'higher' if self.higher_is_better else 'lower'} is better)"
