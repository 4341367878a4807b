"""The method interface: given a parent and a sparsity, return a mask."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from ..models.mask import NodeMask, random_masks
from ..models.mlp import Layer, MLPSpec


@dataclass
class SelectionContext:
    """Everything a method may use to choose a mask. The test split is not here, by design."""

    parent: list[Layer]
    spec: MLPSpec
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

    def sample(self, count: int) -> list[NodeMask]:
        """``count`` masks drawn uniformly at this sparsity, from this method's own stream."""
        return random_masks(self.spec.hidden, self.sparsity, count, self.generator)

    def score(self, masks: list[NodeMask]) -> torch.Tensor:
        """The configured score of each untrained sub-network on the validation split."""
        from ..engine.reference import score_reference
        from ..engine.scoring import score_masks

        scorer = score_reference if self.engine == "reference" else score_masks
        return scorer(self.parent, masks, self.x_val, self.y_val, self.score_name, self.spec.activation)

    def better(self, a: float, b: float) -> bool:
        """Whether score ``a`` ranks above ``b`` (loss: lower; accuracy: higher)."""
        return a < b if self.score_name == "loss" else a > b


@dataclass
class Selection:
    """A method's answer: the chosen mask (None: the dense parent) and what it scored."""

    mask: NodeMask | None
    candidates: list[NodeMask] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    chosen: int = -1


class Method(ABC):
    """A way to choose a sub-network. Subclass, implement ``select``, register.

    >>> class FirstNodes(Method):
    ...     def select(self, ctx):
    ...         from sparsebench.models import NodeMask, kept_count
    ...         keep = [list(range(kept_count(w, ctx.sparsity))) for w in ctx.spec.hidden]
    ...         return Selection(NodeMask.from_indices(keep, ctx.spec.hidden))
    """

    #: Search methods sample and score candidates; their scores are stored.
    searches: ClassVar[bool] = False

    @abstractmethod
    def select(self, ctx: SelectionContext) -> Selection:
        """Return the mask to train for ``ctx.sparsity``."""
