"""The MLP family: a shape, its weights as plain tensors, and compaction.

Weights are kept as a list of ``Layer(weight, bias)`` with ``weight`` of shape
``(out, in)`` like ``nn.Linear``, so that the same list can be compacted,
stacked for batched training, or loaded into an ``nn.Module``.

Compaction: a node-sparse sub-network *is* a smaller dense network. Dropping a
removed node's row (its incoming weights and bias) and its column in the next
layer gives exactly the masked network's function, and the same gradients for
the kept weights. ``compact`` does that; ``expand`` goes back to full width
with zeros; ``gather_stacked`` compacts many masks at once into stacked
tensors for batched training and scoring.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping, NamedTuple, Sequence

import torch

from ..seeding import generator
from .base import GatedNetwork, NodeSpace, ParentFamily, gate_activations, kept_counts
from .mask import NodeMask, stacked_indices


class Layer(NamedTuple):
    weight: torch.Tensor  # (out, in), or (N, out, in) when stacked
    bias: torch.Tensor  # (out,), or (N, out) when stacked


@dataclass(frozen=True)
class MLP(ParentFamily):
    """Input size, hidden widths (the node space) and number of classes.

    It takes data of any shape, flattening each example into ``n_inputs`` features.

    >>> mlp = MLP(40, (8, 8), 10)
    >>> mlp.node_space
    NodeSpace(layers=('hidden1', 'hidden2'), widths=(8, 8))
    >>> mlp.count_params(), mlp.count_params((4, 2)), round(mlp.weight_sparsity((4, 2)), 3)
    (490, 204, 0.584)
    """

    n_inputs: int
    hidden: tuple[int, ...]
    n_classes: int
    activation: str = "relu"

    name: ClassVar[str] = "mlp"

    @classmethod
    def from_config(cls, values: Mapping[str, Any], example_shape: tuple[int, ...], n_classes: int) -> "MLP":
        return cls(math.prod(example_shape), tuple(values["hidden"]), n_classes, values.get("activation", "relu"))

    @property
    def widths(self) -> tuple[int, ...]:
        """Layer widths, input to output."""
        return (self.n_inputs, *self.hidden, self.n_classes)

    @property
    def node_space(self) -> NodeSpace:
        return NodeSpace(tuple(f"hidden{i + 1}" for i in range(len(self.hidden))), tuple(self.hidden))

    def init(self, seed: int) -> list[Layer]:
        return init_parent(self, seed)

    def compact(self, weights: list[Layer], mask: NodeMask) -> list[Layer]:
        return compact(weights, mask)

    def expand(self, weights: list[Layer], mask: NodeMask) -> list[Layer]:
        return expand(weights, mask, self.widths)

    def count_params(self, kept: NodeMask | Sequence[int] | None = None) -> int:
        return count_params((self.n_inputs, *kept_counts(kept, self.node_space), self.n_classes))

    def flops(self, kept: NodeMask | Sequence[int] | None = None) -> int:
        """A multiply and an add per weight, an add per bias (activations not counted).

        >>> MLP(4, (3,), 2).flops()  # 2*4*3 + 3  +  2*3*2 + 2
        41
        """
        widths = (self.n_inputs, *kept_counts(kept, self.node_space), self.n_classes)
        return sum(2 * a * b + b for a, b in zip(widths[:-1], widths[1:]))

    def to_module(self, weights: list[Layer], mask: NodeMask | None = None) -> "torch.nn.Sequential":
        return to_module(weights if mask is None else compact(weights, mask), self.activation)

    def incoming_weights(self, weights: list[Layer]) -> list[torch.Tensor]:
        """A hidden node's incoming weights are its row of its layer's weight matrix.

        >>> mlp = MLP(4, (6, 5), 3)
        >>> [tuple(w.shape) for w in mlp.incoming_weights(mlp.init(0))]
        [(6, 4), (5, 6)]
        """
        return [layer.weight for layer in weights[: len(self.hidden)]]

    def outgoing_weights(self, weights: list[Layer]) -> list[torch.Tensor]:
        """A hidden node's outgoing weights are its column of the next layer's weight matrix.

        >>> mlp = MLP(4, (6, 5), 3)
        >>> [tuple(w.shape) for w in mlp.outgoing_weights(mlp.init(0))]
        [(6, 5), (5, 3)]
        """
        return [layer.weight.T for layer in weights[1: len(self.hidden) + 1]]

    def gated_module(self, weights: list[Layer]) -> GatedNetwork:
        """The parent's ``to_module`` with a gate after each hidden activation.

        >>> mlp = MLP(4, (6, 5), 3)
        >>> net = mlp.gated_module(mlp.init(0))
        >>> [tuple(g.shape) for g in net.gates], net.module[2]
        ([(6,), (5,)], NodeGate())
        """
        from torch import nn

        activations = (nn.ReLU, nn.Tanh, nn.GELU)
        return gate_activations(self.to_module(weights), self.hidden, activations, (nn.Linear,))


#: The name the MLP's shape had before it became a family; kept for code written against it.
MLPSpec = MLP


def init_parent(spec: MLP, seed: int) -> list[Layer]:
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


# -- compaction ------------------------------------------------------------


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
