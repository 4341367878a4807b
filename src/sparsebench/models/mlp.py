"""The MLP parent: a shape, and its weights as plain tensors.

Weights are kept as a list of ``Layer(weight, bias)`` with ``weight`` of shape
``(out, in)`` like ``nn.Linear``, so that the same list can be compacted,
stacked for batched training, or loaded into an ``nn.Module``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

from ..seeding import generator


class Layer(NamedTuple):
    weight: torch.Tensor  # (out, in), or (N, out, in) when stacked
    bias: torch.Tensor  # (out,), or (N, out) when stacked


@dataclass(frozen=True)
class MLPSpec:
    """Input size, hidden widths (the node space) and number of classes."""

    n_inputs: int
    hidden: tuple[int, ...]
    n_classes: int
    activation: str = "relu"

    @property
    def widths(self) -> tuple[int, ...]:
        return (self.n_inputs, *self.hidden, self.n_classes)


def init_parent(spec: MLPSpec, seed: int) -> list[Layer]:
    """The parent's initial weights for ``seed``, as ``nn.Linear`` would draw them.

    Uniform in ``±1/sqrt(fan_in)`` for weights and biases (PyTorch's default),
    from a generator derived from ``seed`` alone.

    >>> layers = init_parent(MLPSpec(40, (8, 8), 10), seed=0)
    >>> [tuple(l.weight.shape) for l in layers]
    [(8, 40), (8, 8), (10, 8)]
    """
    g = generator(seed, "parent-init")
    layers = []
    for fan_in, fan_out in zip(spec.widths[:-1], spec.widths[1:]):
        bound = fan_in**-0.5
        weight = (torch.rand(fan_out, fan_in, generator=g) * 2 - 1) * bound
        bias = (torch.rand(fan_out, generator=g) * 2 - 1) * bound
        layers.append(Layer(weight, bias))
    return layers


def count_params(widths: tuple[int, ...]) -> int:
    """Weights and biases of an MLP with these layer widths (input to output)."""
    return sum(a * b + b for a, b in zip(widths[:-1], widths[1:]))


def activation_fn(name: str):
    return {"relu": torch.relu, "tanh": torch.tanh, "gelu": torch.nn.functional.gelu}[name]
