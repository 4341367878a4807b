"""What the node-level scoring methods share: keep, per node layer, the nodes of highest score.

Each method scores every node of the parent at initialization and keeps, per
node layer, exactly the number of nodes ``random`` keeps there
(``ctx.kept()``), so that every comparison is at equal widths. Ties go to the
node of lower index, and a NaN score ranks lowest: the same scores give the
same mask on every run.
"""

from __future__ import annotations

import inspect
from abc import abstractmethod

import torch

from ..errors import invalid
from ..models.mask import NodeMask
from .base import Method, Selection, SelectionContext, check_count  # noqa: F401 (check_count: for the methods)


def highest(scores: torch.Tensor, k: int) -> list[int]:
    """The indices of the ``k`` highest scores, ascending; ties to the lower index, NaN lowest.

    >>> highest(torch.tensor([1.0, 3.0, 3.0, float("nan"), 2.0]), 3)
    [1, 2, 4]
    """
    values = torch.nan_to_num(scores.detach().double().cpu(), nan=-float("inf"))
    order = torch.argsort(-values, stable=True)
    return sorted(order[:k].tolist())


def keep_highest(scores: list[torch.Tensor], kept: tuple[int, ...], widths: tuple[int, ...]) -> NodeMask:
    """Per node layer, the mask keeping that layer's ``kept`` highest-scoring nodes."""
    return NodeMask.from_indices([highest(s, k) for s, k in zip(scores, kept)], widths)


def check_positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or value == float("inf"):
        raise invalid(name, value, "a finite number > 0")
    return float(value)


class NodeScoreMethod(Method):
    """A method that scores every node and keeps the highest per layer. Subclass and implement ``node_scores``.

    Options are constructor keyword arguments, each stored under its own name (``repr`` shows them).
    """

    @abstractmethod
    def node_scores(self, ctx: SelectionContext) -> list[torch.Tensor]:
        """Per node layer, a ``(width,)`` score per node: the higher, the more worth keeping."""

    def select(self, ctx: SelectionContext) -> Selection:
        scores = self.node_scores(ctx)
        return Selection(mask=keep_highest(scores, ctx.kept(), ctx.node_space.widths))

    def params(self) -> dict[str, object]:
        """The constructor's options and their values."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {name: getattr(self, name) for name in names}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(" + ", ".join(f"{k}={v!r}" for k, v in self.params().items()) + ")"
