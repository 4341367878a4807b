"""Compaction: a node-sparse sub-network *is* a smaller dense network.

Dropping a removed node's row (its incoming weights and bias) and its column
in the next layer gives exactly the masked network's function, and the same
gradients for the kept weights. ``compact`` does that; ``expand`` goes back to
full width with zeros; ``gather_stacked`` compacts many masks at once into
stacked tensors for batched training and scoring.
"""

from __future__ import annotations

import torch

from .mask import NodeMask
from .mlp import Layer


def compact(parent: list[Layer], mask: NodeMask) -> list[Layer]:
    """The sub-network's own dense weights, inherited from ``parent`` (no re-init).

    >>> from sparsebench.models import MLPSpec, init_parent
    >>> parent = init_parent(MLPSpec(4, (6,), 3), seed=0)
    >>> sub = compact(parent, NodeMask.from_indices([[0, 2]], (6,)))
    >>> [tuple(l.weight.shape) for l in sub]
    [(2, 4), (3, 2)]
    """
    return [Layer(w[0], b[0]) for w, b in gather_stacked(parent, [mask])]


def gather_stacked(parent: list[Layer], masks: list[NodeMask]) -> list[Layer]:
    """Compact each mask and stack: weights ``(N, out_kept, in_kept)``, biases ``(N, out_kept)``.

    All masks must keep the same number of nodes per layer (same sparsity).
    """
    device = parent[0].weight.device
    per_mask = [m.index_tensors(device) for m in masks]
    rows = [torch.stack([idx[i] for idx in per_mask]) for i in range(len(masks[0].kept))]
    n_in = parent[0].weight.shape[1]
    n_out = parent[-1].weight.shape[0]
    everything_in = torch.arange(n_in, device=device).expand(len(masks), n_in)
    everything_out = torch.arange(n_out, device=device).expand(len(masks), n_out)
    outs = [*rows, everything_out]
    ins = [everything_in, *rows]
    stacked = []
    for layer, out_idx, in_idx in zip(parent, outs, ins):
        # One flat index_select of exactly the kept entries: faster than a
        # two-dimensional fancy index, or rows first and then columns.
        flat = (out_idx[:, :, None] * layer.weight.shape[1] + in_idx[:, None, :]).flatten()
        weight = layer.weight.reshape(-1).index_select(0, flat).view(len(masks), out_idx.shape[1], in_idx.shape[1])
        stacked.append(Layer(weight, layer.bias[out_idx].contiguous()))
    return stacked


def expand(sub: list[Layer], mask: NodeMask, widths: tuple[int, ...]) -> list[Layer]:
    """Full-width weights with zeros at the removed nodes' rows and columns.

    ``widths`` are the parent's layer widths, input to output.
    """
    device = sub[0].weight.device
    idx = [torch.arange(widths[0], device=device), *mask.index_tensors(device), torch.arange(widths[-1], device=device)]
    full = []
    for layer, (n_in, n_out), in_idx, out_idx in zip(sub, zip(widths[:-1], widths[1:]), idx[:-1], idx[1:]):
        weight = torch.zeros(n_out, n_in, dtype=layer.weight.dtype, device=device)
        weight[out_idx[:, None], in_idx[None, :]] = layer.weight
        bias = torch.zeros(n_out, dtype=layer.bias.dtype, device=device)
        bias[out_idx] = layer.bias
        full.append(Layer(weight, bias))
    return full


def to_module(layers: list[Layer], activation: str = "relu") -> "torch.nn.Sequential":
    """A plain ``nn.Sequential`` of ``Linear`` layers holding these (compact) weights.

    >>> from sparsebench.models import MLPSpec, init_parent
    >>> parent = init_parent(MLPSpec(4, (6,), 3), seed=0)
    >>> to_module(compact(parent, NodeMask.from_indices([[0, 2]], (6,))))
    Sequential(
      (0): Linear(in_features=4, out_features=2, bias=True)
      (1): ReLU()
      (2): Linear(in_features=2, out_features=3, bias=True)
    )
    """
    from torch import nn

    act = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}[activation]
    modules: list[nn.Module] = []
    for i, layer in enumerate(layers):
        linear = nn.Linear(layer.weight.shape[1], layer.weight.shape[0])
        with torch.no_grad():
            linear.weight.copy_(layer.weight)
            linear.bias.copy_(layer.bias)
        modules.append(linear)
        if i < len(layers) - 1:
            modules.append(act())
    return nn.Sequential(*modules)
