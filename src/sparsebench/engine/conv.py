"""The engine's code for convolutional parents (``cnn1d``, ``cnn``).

Two ways to train a sub-network, which compute the same function:

- the **reference** (``engine = "reference"``): the full-width network with
  every parameter multiplied by its 0/1 mask on each forward pass, through
  ``torch.nn.utils.prune``, as research code does it;
- the **stacked** engine (``engine = "stacked"``, the default): the
  physically smaller (compacted) networks of one shape trained together, each
  with its own weights, BatchNorm statistics, optimizer state and minibatch
  order (``conv_stacked``: how, and the measurements behind its strategy).
  Its cost falls with the kept channels; its numbers agree with the reference
  to float tolerance (tests/engine/test_conv_engine.py,
  tests/engine/test_conv_stacked.py), and a network's numbers do not depend,
  to the bit, on which others share its stack.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable

import torch
from torch import nn
from torch.nn.utils import prune

from ..data.registry import SPLIT_TENSORS, DatasetSplits
from ..models.conv import ConvLayer, ConvNet, mask_multipliers
from ..models.mask import NodeMask
from .common import TrainResult, TrainSettings
from .base import FamilyEngine
from . import conv_stacked
from .reference import _evaluate, train_module

#: Evaluation of a convolutional network reads at most this many examples at once (its activations can be large).
EVAL_CHUNK = 1024


def masked_module(family: ConvNet, weights: list[ConvLayer], mask: NodeMask | None) -> nn.Sequential:
    """The full-width network with each parameter multiplied by its mask (``prune.custom_from_mask``);
    no mask, or one that keeps every node: the plain parent."""
    model = family.to_module(weights)
    if mask is None or mask == family.node_space.full_mask():
        return model
    multipliers = iter(mask_multipliers(family, mask))
    for module in model:
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            layer = next(multipliers)
            prune.custom_from_mask(module, "weight", layer.weight.to(module.weight.device))
            prune.custom_from_mask(module, "bias", layer.bias.to(module.weight.device))
            pending_bn = layer
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            # The scale and the shift: a removed channel's surviving shift would leak a constant into the next layer.
            prune.custom_from_mask(module, "weight", pending_bn.bn_weight.to(module.weight.device))
            prune.custom_from_mask(module, "bias", pending_bn.bn_bias.to(module.weight.device))
    return model


class ConvEngine(FamilyEngine):
    """Trains and scores a convolutional family's networks: compacted and stacked, or masked full-width one at a time."""

    family: ConvNet

    def prepare(self, data: DatasetSplits) -> DatasetSplits:
        """Tabular data ``(N, F)`` given to a sequence family becomes one channel ``(N, 1, F)``."""
        if data.x_train.dim() != self.family.dims + 1:
            return data
        return dataclasses.replace(data, **{k: getattr(data, k).unsqueeze(1) for k in SPLIT_TENSORS if k.startswith("x_")})

    def to_device(self, weights: list[ConvLayer], device: torch.device) -> list[ConvLayer]:
        return [ConvLayer(*(None if t is None else t.to(device) for t in layer)) for layer in weights]

    def stack(self, networks: list[tuple[list[ConvLayer], NodeMask]]) -> list[ConvLayer]:
        """Each network's compact initial weights, stacked along a first dimension (all of one shape)."""
        return conv_stacked.stack_layers([self.family.compact(weights, mask) for weights, mask in networks])

    def evaluate(self, stacked, x, y):
        loss, acc = conv_stacked.evaluate_stacked(self.family, stacked, None, x, y)
        return loss.float(), acc.float()

    def train(self, stacked, seeds, data, settings: TrainSettings, on_epoch: Callable[[int], None] | None = None) -> list[TrainResult]:
        return conv_stacked.train_stacked(self.family, stacked, seeds, data, settings, on_epoch=on_epoch)

    def score(self, weights, masks, x, y, score, reference=False):
        if not reference:
            return conv_stacked.score_stacked(self.family, weights, masks, x, y, score)
        values = [_evaluate(masked_module(self.family, weights, m).to(x.device), x, y, EVAL_CHUNK) for m in masks]
        return torch.tensor([v[0] if score == "loss" else v[1] for v in values])

    def train_reference(self, weights, mask, seed, data, settings):
        start = time.perf_counter()
        model = masked_module(self.family, weights, mask).to(weights[0].weight.device)
        return train_module(model, seed, data, settings, EVAL_CHUNK, start=start)
