"""The MLP's engine: stacked training and scoring with batched matrix products, and the masked reference loop.

The forward and backward passes behind it are in ``backprop``, ``stacked``, ``scoring`` and ``reference``.
"""

from __future__ import annotations

import dataclasses

import torch

from ..data.registry import SPLIT_TENSORS, DatasetSplits
from ..models.mask import NodeMask
from ..models.mlp import MLP, Layer, gather_stacked
from . import reference as reference_loop
from . import scoring, stacked
from .base import FamilyEngine


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
