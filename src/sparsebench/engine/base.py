"""The interface of the engine's per-family code: how one family's networks are stacked, scored, trained and evaluated."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable

import torch

from ..data.registry import DatasetSplits
from ..models.base import ParentFamily, Weights
from ..models.mask import NodeMask
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
