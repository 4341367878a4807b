"""The method interface: given a parent and a sparsity, return a mask.

A method sees the parent through its family's interface (``ctx.parent``: node
space, incoming weights per node, compaction), never a particular family's
weights, so one method class works on every family.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import torch

from ..models.base import NodeSpace, Parent, ParentFamily
from ..models.mask import NodeMask


@dataclass
class SelectionContext:
    """Everything a method may use to choose a mask. The test split is not here, by design.

    ``parent`` is this seed's parent (a copy of its initial weights, bound to
    its family); ``node_space`` its maskable layers and their widths;
    ``generator`` the method's own random stream.
    """

    parent: Parent
    sparsity: float
    seed: int
    candidates: int
    score_name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    generator: torch.Generator
    #: "stacked" scores candidates in batches; "reference" one masked network at a time.
    engine: str = "stacked"

    @property
    def node_space(self) -> NodeSpace:
        return self.parent.node_space

    @property
    def family(self) -> ParentFamily:
        return self.parent.family

    @property
    def spec(self) -> ParentFamily:
        """The parent's family (the name methods written for the MLP alone used: ``ctx.spec.hidden``)."""
        return self.parent.family

    def kept(self) -> tuple[int, ...]:
        """Nodes each node layer keeps at this sparsity."""
        return self.node_space.kept(self.sparsity)

    def sample(self, count: int) -> list[NodeMask]:
        """``count`` masks drawn uniformly at this sparsity, from this method's own stream."""
        return self.node_space.random_masks(self.sparsity, count, self.generator)

    def score(self, masks: list[NodeMask]) -> torch.Tensor:
        """The configured score of each untrained sub-network on the validation split."""
        from ..engine.families import engine_for

        return engine_for(self.family).score(self.parent.weights, masks, self.x_val, self.y_val, self.score_name,
                                             reference=self.engine == "reference")

    def better(self, a: float, b: float) -> bool:
        """Whether score ``a`` ranks above ``b`` (loss: lower; accuracy: higher)."""
        return a < b if self.score_name == "loss" else a > b


@dataclass
class Selection:
    """A method's answer: the chosen mask (None: the dense parent) and what it scored.

    What the search cost is stored with the trial: ``evaluations``, how many sub-networks
    the method scored (None: one per returned candidate, ``len(candidates)``; a method
    that scores more than it returns says how many), and ``search_epochs``, the training
    epochs it spent on search (summed over every candidate it trained; 0 for a method that
    trains nothing).

    >>> Selection(None).cost(), Selection(None, evaluations=50, search_epochs=3).cost()
    ((0, 0), (50, 3))
    """

    mask: NodeMask | None
    candidates: list[NodeMask] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    chosen: int = -1
    evaluations: int | None = None
    search_epochs: int = 0

    def cost(self) -> tuple[int, int]:
        """``(candidate evaluations, search epochs)`` of this selection."""
        evaluations = len(self.candidates) if self.evaluations is None else self.evaluations
        return int(evaluations), int(self.search_epochs)


class Method(ABC):
    """A way to choose a sub-network. Subclass, implement ``select``, register.

    >>> class LargestIncomingNorm(Method):
    ...     '''Keeps the nodes whose incoming weights have the largest norm, in every family.'''
    ...     def select(self, ctx):
    ...         keep = [w.norm(dim=1).topk(k).indices.tolist()
    ...                 for w, k in zip(ctx.parent.incoming_weights(), ctx.kept())]
    ...         return Selection(NodeMask.from_indices(keep, ctx.node_space.widths))
    """

    @abstractmethod
    def select(self, ctx: SelectionContext) -> Selection:
        """Return the mask to train for ``ctx.sparsity``."""
