"""``taylor``: first-order Taylor importance of each node (Molchanov, Mallya, Tyree, Frosio and Kautz, 2019,
"Importance Estimation for Neural Network Pruning", CVPR).

The change of the loss when a node is removed, to first order, is the gate
gradient times the gate: ``|dL/d(gate)|`` at gate 1, accumulated over many
minibatches (the paper accumulates over training steps; here over
``batches`` minibatches at initialization, default 16, of ``batch_size``,
default 128). The paper squares the gradient; for one accumulated gradient the
square and the absolute value rank alike. Cost: one forward and backward pass
per minibatch.
"""

from __future__ import annotations

import torch

from .base import DEFAULT_BATCH_SIZE, SelectionContext
from .node_scores import NodeScoreMethod, check_count


class Taylor(NodeScoreMethod):
    """Score: ``|sum over minibatches of dL/d(gate)|`` per node.

    >>> Taylor()
    Taylor(batches=16, batch_size=128)
    """

    def __init__(self, batches: int = 16, batch_size: int = DEFAULT_BATCH_SIZE):
        self.batches = check_count("batches", batches)
        self.batch_size = check_count("batch_size", batch_size)

    def node_scores(self, ctx: SelectionContext) -> list[torch.Tensor]:
        return [g.abs() for g in ctx.gate_gradients(self.batches, self.batch_size, reduce="sum")]
