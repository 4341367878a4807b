"""``fisher``: Fisher pruning (Theis, Korshunova, Tejani and Huszár, 2018, "Faster gaze prediction with dense
networks and Fisher pruning", arXiv:1801.05787).

The loss increase when a node's gate goes from 1 to 0 is approximated by the
diagonal of the empirical Fisher information of the gate:
``(1 / 2N) * sum over examples of (dL_n/d(gate))^2`` with ``L_n`` one
example's loss (``ctx.gate_gradients(reduce="example")``). Data: ``batches``
training minibatches (default 16) of ``batch_size`` (default 128), N
examples in all. Cost: one forward and backward pass per minibatch.
"""

from __future__ import annotations

import torch

from .base import DEFAULT_BATCH_SIZE, SelectionContext
from .node_scores import NodeScoreMethod, check_count


class Fisher(NodeScoreMethod):
    """Score: ``sum_n g_n^2 / (2N)`` per node, ``g_n`` the gate gradient of example n's loss.

    >>> Fisher(batches=4)
    Fisher(batches=4, batch_size=128)
    """

    def __init__(self, batches: int = 16, batch_size: int = DEFAULT_BATCH_SIZE):
        self.batches = check_count("batches", batches)
        self.batch_size = check_count("batch_size", batch_size)

    def node_scores(self, ctx: SelectionContext) -> list[torch.Tensor]:
        per_example = ctx.gate_gradients(self.batches, self.batch_size, reduce="example")
        return [g.double().pow(2).sum(0) / (2 * len(g)) for g in per_example]
