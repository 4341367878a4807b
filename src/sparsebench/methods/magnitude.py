"""``magnitude``: keep the nodes whose weights are largest at initialization.

The node-level form of magnitude pruning (Han et al., 2015, "Learning both
Weights and Connections for Efficient Neural Networks"; for whole filters, Li
et al., 2017, "Pruning Filters for Efficient ConvNets", which ranks filters by
the L1 norm of their weights). Data-free; one pass over the weights.
"""

from __future__ import annotations

import torch

from ..errors import invalid
from .base import SelectionContext
from .node_scores import NodeScoreMethod

NORMS = {"l1": 1, "l2": 2}


class Magnitude(NodeScoreMethod):
    """Score: the norm of a node's incoming weights (a channel: its filter; bias and BatchNorm not counted).

    ``norm``: "l1" (default, as Li et al.) or "l2". ``include_outgoing`` (default False): add the same norm of
    the weights that read the node (``ctx.outgoing_weights()``).

    >>> Magnitude(norm="l2")
    Magnitude(norm='l2', include_outgoing=False)
    """

    def __init__(self, norm: str = "l1", include_outgoing: bool = False):
        if norm not in NORMS:
            raise invalid("norm", norm, "one of " + ", ".join(NORMS))
        if not isinstance(include_outgoing, bool):
            raise invalid("include_outgoing", include_outgoing, "true or false")
        self.norm = norm
        self.include_outgoing = include_outgoing

    def node_scores(self, ctx: SelectionContext) -> list[torch.Tensor]:
        p = NORMS[self.norm]
        scores = [w.detach().double().norm(p=p, dim=1) for w in ctx.incoming_weights()]
        if self.include_outgoing:
            scores = [s + w.detach().double().norm(p=p, dim=1) for s, w in zip(scores, ctx.outgoing_weights())]
        return scores
