"""The engine's per-family code: how one family's networks are stacked, scored, trained and evaluated.

The runner asks ``engine_for(family)`` and never looks inside a family's
weights. Only the MLP has an engine today; the forward and backward passes
behind it are in ``backprop``, ``stacked``, ``scoring`` and ``reference``.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from typing import Callable

import torch

from ..data.registry import SPLIT_TENSORS, DatasetSplits
from ..errors import ConfigError
from ..models.base import ParentFamily, Weights
from ..models.mask import NodeMask
from ..models.mlp import MLP, Layer, gather_stacked
from . import reference as reference_loop
from . import scoring, stacked
from .common import TrainResult, TrainSettings


class FamilyEngine(ABC):
    """Stacked training and scoring of one family's compacted networks, and its reference loop."""

    def __init__(self, family: ParentFamily):
        self.family = family

    def prepare(self, data: DatasetSplits) -> DatasetSplits:
        """The data as this family's networks read it (the splits unchanged, unless the family says otherwise)."""
        return data

    @abstractmethod
    def to_device(self, weights: Weights, device: torch.device) -> Weights:
        """``weights`` on ``device``."""

    @abstractmethod
    def stack(self, networks: list[tuple[Weights, NodeMask]]) -> Weights:
        """The compacted initial weights of each (parent weights, mask), stacked in order (all of one shape)."""

    @abstractmethod
    def evaluate(self, stacked: Weights, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean loss and accuracy ``(N,)`` of each stacked network on ``(x, y)``."""

    @abstractmethod
    def train(self, stacked: Weights, seeds: list[int], data: DatasetSplits, settings: TrainSettings,
              on_epoch: Callable[[int], None] | None = None) -> list[TrainResult]:
        """Train the stacked networks; network i follows the minibatch order of ``seeds[i]``."""

    @abstractmethod
    def score(self, weights: Weights, masks: list[NodeMask], x: torch.Tensor, y: torch.Tensor, score: str,
              reference: bool = False) -> torch.Tensor:
        """Each untrained sub-network's ``score`` ("loss" or "accuracy") on ``(x, y)``, shape ``(K,)``."""

    @abstractmethod
    def train_reference(self, weights: Weights, mask: NodeMask | None, seed: int, data: DatasetSplits,
                        settings: TrainSettings) -> TrainResult:
        """One masked full-width network (None: the dense parent) trained the plain way."""


class MLPEngine(FamilyEngine):
    family: MLP

    def prepare(self, data: DatasetSplits) -> DatasetSplits:
        """Each example flattened into a row of features: the MLP takes data of any shape.

        Tabular data (N, F) is returned as it is, the very tensors, so its numbers cannot change.
        """
        if data.x_train.dim() == 2:
            return data
        flat = {k: getattr(data, k).flatten(1) for k in SPLIT_TENSORS if k.startswith("x_")}
        return dataclasses.replace(data, **flat)

    def to_device(self, weights: list[Layer], device: torch.device) -> list[Layer]:
        return [Layer(w.to(device), b.to(device)) for w, b in weights]

    def stack(self, networks: list[tuple[list[Layer], NodeMask]]) -> list[Layer]:
        per_net = [gather_stacked(weights, [mask]) for weights, mask in networks]
        return [
            Layer(torch.cat([p[i].weight for p in per_net]), torch.cat([p[i].bias for p in per_net]))
            for i in range(len(per_net[0]))
        ]

    # The engine modules' functions are looked up when called, not bound at import: a test
    # (or a profiler) that replaces one, e.g. ``scoring.score_masks``, replaces it here too.
    def evaluate(self, weights, x, y):
        return stacked.evaluate_stacked(weights, x, y, self.family.activation)

    def train(self, weights, seeds, data, settings, on_epoch=None):
        return stacked.train_stacked(weights, seeds, data, settings, on_epoch=on_epoch)

    def score(self, weights, masks, x, y, score, reference=False):
        scorer = reference_loop.score_reference if reference else scoring.score_masks
        return scorer(weights, masks, x, y, score, self.family.activation)

    def train_reference(self, weights, mask, seed, data, settings):
        return reference_loop.train_reference(weights, mask, seed, data, settings)[0]


#: Each family's engine, by family name.
ENGINES: dict[str, type[FamilyEngine]] = {MLP.name: MLPEngine}


def engine_for(family: ParentFamily) -> FamilyEngine:
    """The engine that trains ``family``'s networks; a family without one is refused in one line."""
    if family.name not in ENGINES:
        raise ConfigError(f"parent {family.name!r}: this version of sparsebench has no engine to train it; "
                          f"allowed: one of {', '.join(sorted(ENGINES))}")
    return ENGINES[family.name](family)
