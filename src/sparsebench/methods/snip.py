"""``snip``: connection sensitivity at node level (Lee, Ajanthan and Torr, 2019, "SNIP: Single-shot Network
Pruning based on Connection Sensitivity", ICLR).

SNIP scores a connection by |dL/dc| for a multiplicative indicator c at 1;
here the indicator is a gate on each node's output (``ctx.gate_gradients``),
as in the node/channel variant the paper discusses. Data: ``batches``
training minibatches (default 1, as the paper: one minibatch) of
``batch_size`` (default 128). Cost: one forward and backward pass per
minibatch.
"""

from __future__ import annotations

import torch

from .base import DEFAULT_BATCH_SIZE, SelectionContext
from .node_scores import NodeScoreMethod, check_count


class Snip(NodeScoreMethod):
    """Score: ``|sum over minibatches of dL/d(gate)|`` per node, at gate 1.

    >>> Snip()
    Snip(batches=1, batch_size=128)
    """

    def __init__(self, batches: int = 1, batch_size: int = DEFAULT_BATCH_SIZE):
        self.batches = check_count("batches", batches)
        self.batch_size = check_count("batch_size", batch_size)

    def node_scores(self, ctx: SelectionContext) -> list[torch.Tensor]:
        return [g.abs() for g in ctx.gate_gradients(self.batches, self.batch_size, reduce="sum")]
