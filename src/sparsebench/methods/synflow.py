"""``synflow``: Iterative Synaptic Flow Pruning at node level (Tanaka, Kunin, Yamins and Ganguli, 2020,
"Pruning neural networks without any data by iteratively conserving synaptic flow", NeurIPS).

Data-free. The network's parameters are replaced by their absolute values
and an all-ones example goes in (no training data is read; only its shape);
``R = sum of the outputs``. A weight's synaptic flow is ``|theta| * dR/d|theta|``;
a node's score is the sum over its incoming weights (for a channel: its
filter). Removing nodes changes the flow of the others, so pruning runs in
``rounds`` (default 100, as the paper) on an exponential schedule: after round
r of R, each node layer keeps ``round(width * (kept/width) ** (r/R))`` nodes
(never fewer than ``kept``; the last round keeps exactly ``ctx.kept()``), the
highest-scoring of those still alive; a removed node's gate is set to 0.
Computed in float64: the flow is a product over layers and overflows float32.

BatchNorm is handled as the paper's code handles it: the network is in
evaluation mode (running statistics, at initialization mean 0 and variance 1)
and BatchNorm's scale, shift and statistics are made absolute like every other
parameter and buffer; biases too. Cost: ``rounds`` forward and backward passes
of one example.
"""

from __future__ import annotations

import torch

from ..models.base import GatedNetwork
from .base import SelectionContext
from .node_scores import NodeScoreMethod, check_count, highest


class SynFlow(NodeScoreMethod):
    """Score: the synaptic flow into each node, after the last round; the nodes removed in an earlier round -inf.

    >>> SynFlow(rounds=10)
    SynFlow(rounds=10)
    """

    def __init__(self, rounds: int = 100):
        self.rounds = check_count("rounds", rounds)

    def node_scores(self, ctx: SelectionContext) -> list[torch.Tensor]:
        net = linearized(ctx.gated_network())
        ones = torch.ones((1, *ctx.x_train.shape[1:]), dtype=torch.float64, device=ctx.x_train.device)
        widths, final = ctx.node_space.widths, ctx.kept()
        alive = [torch.ones(w, dtype=torch.bool) for w in widths]
        scores: list[torch.Tensor] = []
        for r in range(1, self.rounds + 1):
            scores = [torch.where(a, s, -torch.inf) for a, s in zip(alive, synaptic_flow(net, ones))]
            alive = [_kept(s, schedule(w, k, r, self.rounds)) for s, w, k in zip(scores, widths, final)]
            with torch.no_grad():
                for gate, a in zip(net.gates, alive):
                    gate.copy_(a.to(gate.dtype))
        return scores


def schedule(width: int, kept: int, r: int, rounds: int) -> int:
    """Nodes a layer keeps after round ``r`` of ``rounds``: exponential from ``width`` down to ``kept``.

    >>> [schedule(100, 10, r, 4) for r in range(1, 5)]
    [56, 32, 18, 10]
    """
    return max(kept, min(width, round(width * (kept / width) ** (r / rounds))))


def _kept(scores: torch.Tensor, k: int) -> torch.Tensor:
    alive = torch.zeros(len(scores), dtype=torch.bool)
    alive[highest(scores, k)] = True
    return alive


def linearized(net: GatedNetwork) -> GatedNetwork:
    """``net`` in float64, evaluation mode, every parameter and buffer made absolute (in place)."""
    net.module.double().eval()
    with torch.no_grad():
        for tensor in net.module.state_dict().values():
            if tensor.is_floating_point():
                tensor.abs_()
    return net


def synaptic_flow(net: GatedNetwork, x: torch.Tensor) -> list[torch.Tensor]:
    """Per node layer, the sum of ``w * dR/dw`` over each node's incoming weights, ``R`` the sum of ``net``'s
    outputs on ``x`` (``net`` linearized: the weights are their absolute values)."""
    total = net.module(x).sum()
    grads = torch.autograd.grad(total, net.incoming)
    return [(w.detach() * g).flatten(1).sum(1).cpu() for w, g in zip(net.incoming, grads)]
