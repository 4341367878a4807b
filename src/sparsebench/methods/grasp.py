"""``grasp``: Gradient Signal Preservation at node level (Wang, Zhang and Grosse, 2020, "Picking Winning
Tickets Before Training by Preserving Gradient Flow", ICLR).

GraSP scores a parameter ``theta`` by ``S = -theta * (H g)``, with ``g`` the
gradient of the loss and ``H`` its Hessian, and removes the parameters of
*highest* S: those whose removal reduces the gradient norm least (or raises
it). Here the parameters are the node gates (at 1), so ``S_i = -(H g)_i``
with ``g`` and ``H`` taken with respect to the gates, and the nodes kept are
those of **lowest** S, i.e. of highest ``(H g)_i``: the nodes whose removal
would shrink the gradient flow most. ``node_scores`` returns ``(H g)_i``
(= ``-S_i``), so higher means kept, as for every method.

Data: ``batches`` training minibatches (default 1) of ``batch_size``
(default 128); the logits are divided by ``temperature`` (default 200, the
value of the paper's code) in both passes. Cost: per minibatch one forward and
backward pass for ``g``, then one forward and a double backward for ``H g``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import DEFAULT_BATCH_SIZE, SelectionContext
from .node_scores import NodeScoreMethod, check_count, check_positive


class Grasp(NodeScoreMethod):
    """Score: ``(H g)`` per node gate (the negated GraSP score; the highest are kept).

    >>> Grasp()
    Grasp(batches=1, batch_size=128, temperature=200.0)
    """

    def __init__(self, batches: int = 1, batch_size: int = DEFAULT_BATCH_SIZE, temperature: float = 200.0):
        self.batches = check_count("batches", batches)
        self.batch_size = check_count("batch_size", batch_size)
        self.temperature = check_positive("temperature", temperature)

    def node_scores(self, ctx: SelectionContext) -> list[torch.Tensor]:
        data = ctx.minibatches(self.batches, self.batch_size)
        net = ctx.gated_network()
        gates = net.gates
        return hessian_gradient(lambda x, y: F.cross_entropy(net.module(x) / self.temperature, y), gates, data)


def hessian_gradient(loss_fn, params: list[torch.Tensor], data) -> list[torch.Tensor]:
    """``H g`` for ``params``: ``g`` the loss gradient summed over the minibatches ``data``, ``H`` the Hessian of
    the summed loss; both computed batch by batch (``loss_fn(x, y)`` a minibatch's loss)."""
    g = [torch.zeros_like(p) for p in params]
    for x, y in data:
        for total, d in zip(g, _grad(loss_fn(x, y), params)):
            total += d
    hg = [torch.zeros_like(p) for p in params]
    for x, y in data:
        grads = _grad(loss_fn(x, y), params, create_graph=True)
        z = sum((d * fixed).sum() for d, fixed in zip(grads, g))
        for total, d in zip(hg, _grad(z, params)):
            total += d
    return [h.detach().cpu() for h in hg]


def _grad(output: torch.Tensor, params: list[torch.Tensor], create_graph: bool = False) -> list[torch.Tensor]:
    """Gradients of ``output``; zeros for a parameter it does not depend on (e.g. a ReLU's flat second derivative)."""
    if not output.requires_grad:
        return [torch.zeros_like(p) for p in params]
    grads = torch.autograd.grad(output, params, create_graph=create_graph, allow_unused=True)
    return [torch.zeros_like(p) if d is None else d for p, d in zip(params, grads)]
