"""Compaction: a node-sparse sub-network *is* a smaller dense network.

Dropping a removed node's row (its incoming weights and bias) and its column
in the next layer gives exactly the masked network's function, and the same
gradients for the kept weights. ``compact`` does that; ``expand`` goes back to
full width with zeros; ``gather_stacked`` compacts many masks at once into
stacked tensors for batched training and scoring.
"""

from __future__ import annotations

import torch

from .mask import NodeMask, stacked_indices
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
    return gather_indexed(parent, stacked_indices(masks, parent[0].weight.device))


def gather_indexed(parent: list[Layer], kept: list[torch.Tensor]) -> list[Layer]:
    """``gather_stacked`` from ``stacked_indices``: per hidden layer, the ``(N, kept)`` node indices."""
    # The input and the output layer keep everything: None, no index needed.
    rows, cols = [*kept, None], [None, *kept]
    n = len(kept[0])
    return [
        Layer(_gather(l.weight, r, c, n), l.bias.expand(n, -1).contiguous() if r is None else l.bias[r])
        for l, r, c in zip(parent, rows, cols)
    ]


def _gather(weight: torch.Tensor, rows: torch.Tensor | None, cols: torch.Tensor | None, n: int) -> torch.Tensor:
    """``weight[rows[i]][:, cols[i]]`` for each i, stacked ``(n, len(rows[i]), len(cols[i]))``."""
    # Whole rows first (contiguous copies), then columns within them: faster
    # than one two-dimensional fancy index, and it needs no (n, out, in) index.
    if rows is None:
        block = weight.unsqueeze(0).expand(n, -1, -1)
    else:
        block = weight.index_select(0, rows.flatten()).view(n, rows.shape[1], weight.shape[1])
    if cols is None:
        return block.contiguous()
    return block.gather(2, cols[:, None, :].expand(-1, block.shape[1], -1))


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
