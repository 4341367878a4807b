"""Convolutional parents: what the ``cnn1d`` and ``cnn`` families share.

A convolutional parent is a plain stack: convolutions (each optionally
followed by BatchNorm, then the activation, then, where the family pools, a
2x max-pooling), a flatten, hidden fully connected layers, a linear head. Its
nodes are the output channels of every convolution and the neurons of every
hidden fully connected layer; the head is never masked.

Weights are a list of ``ConvLayer``, one per convolution, hidden FC layer and
head, shaped as ``nn.Conv1d``/``nn.Conv2d``/``nn.Linear``/``nn.BatchNorm*``
hold them, so that the same list can be compacted or loaded into modules.

Masking semantics. A removed channel removes its filter, its bias, its
BatchNorm scale and shift (and running statistics) and its input slice in the
next layer (for the first FC layer: its block of flattened positions), so a
masked network computes exactly what the physically smaller network computes.
Masking only the filter is not enough: a surviving bias or BatchNorm shift
would feed a constant into the next layer (``tests/models/test_conv.py``
checks this leak). BatchNorm works per channel, in training mode too, so
removing a channel changes no kept channel's statistics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping, NamedTuple, Sequence

import torch
from torch import nn

from ..errors import ConfigError
from ..seeding import generator
from .base import GatedNetwork, NodeSpace, ParentFamily, gate_activations, kept_counts
from .mask import NodeMask

ACTIVATION_MODULES = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}
#: BatchNorm's epsilon and momentum: PyTorch's defaults, in every engine.
BN_EPS = 1e-5
BN_MOMENTUM = 0.1


class ConvLayer(NamedTuple):
    """One layer's parameters: a convolution ``(out, in, *kernel)`` or linear ``(out, in)`` weight,
    its bias ``(out,)``, and, for a convolution followed by BatchNorm, its scale and shift ``(out,)``."""

    weight: torch.Tensor
    bias: torch.Tensor
    bn_weight: torch.Tensor | None = None
    bn_bias: torch.Tensor | None = None


@dataclass(frozen=True)
class ConvNet(ParentFamily):
    """A convolutional parent shape. Subclasses fix the dimensionality, kernel, stride and pooling.

    ``channels`` are the convolutions' output channels, ``fc`` the hidden fully
    connected widths; together (in that order) they are the node space.
    """

    in_channels: int
    spatial: tuple[int, ...]
    channels: tuple[int, ...]
    fc: tuple[int, ...]
    n_classes: int
    batchnorm: bool = False
    activation: str = "relu"

    #: 1 for sequences (N, C, L), 2 for images (N, C, H, W).
    dims: ClassVar[int]
    kernel: ClassVar[int]
    stride: ClassVar[int] = 1
    padding: ClassVar[int]
    #: A 2x max-pooling after every ``pool_every``-th convolution (0: none).
    pool_every: ClassVar[int] = 0
    default_hidden: ClassVar[tuple[int, ...]]
    default_fc: ClassVar[tuple[int, ...]] = ()
    options: ClassVar[tuple[str, ...]] = ("hidden", "activation", "fc", "batchnorm")

    @classmethod
    def from_config(cls, values: Mapping[str, Any], example_shape: tuple[int, ...], n_classes: int) -> "ConvNet":
        shape = tuple(example_shape)
        if len(shape) == cls.dims:  # tabular data read as one channel (MNIST-1D: (N, 40) -> (N, 1, 40))
            shape = (1, *shape)
        fc = values.get("fc")
        family = cls(shape[0], shape[1:], tuple(values["hidden"]), tuple(cls.default_fc if fc is None else fc), n_classes,
                     bool(values.get("batchnorm") or False), values.get("activation", "relu"))
        family.check_spatial()
        return family

    # -- shape -------------------------------------------------------------
    def conv_sizes(self) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
        """The spatial size each convolution computes, and the size after its pooling (the same if none)."""
        sizes, size = [], self.spatial
        for i in range(len(self.channels)):
            computed = tuple((n + 2 * self.padding - self.kernel) // self.stride + 1 for n in size)
            size = tuple(n // 2 for n in computed) if self.pools_after(i) else computed
            sizes.append((computed, size))
        return sizes

    def conv_output_sizes(self) -> list[tuple[int, ...]]:
        """The spatial size after each convolution (and its pooling, if any)."""
        return [pooled for _, pooled in self.conv_sizes()]

    def pools_after(self, i: int) -> bool:
        return self.pool_every > 0 and (i + 1) % self.pool_every == 0

    def check_spatial(self) -> None:
        """Refuse, in one line, an input too small for the convolutions and poolings."""
        sizes = [self.spatial, *self.conv_output_sizes()]
        if min(min(s) for s in sizes) < 1:
            shown = " -> ".join("x".join(str(n) for n in s) for s in sizes)
            raise ConfigError(f"parent {self.name!r}: {len(self.channels)} convolutions shrink examples of size "
                              f"{'x'.join(str(n) for n in self.spatial)} to nothing ({shown}); allowed: fewer "
                              "convolutions (--hidden) or larger examples")

    def check_minibatches(self, n_train: int, batch_size: int) -> None:
        """BatchNorm in training mode needs more than one value per channel: a last minibatch of one example
        cannot be normalized after a convolution whose output has one position."""
        if not self.batchnorm or n_train % batch_size != 1:
            return
        if min(math.prod(computed) for computed, _ in self.conv_sizes()) == 1:
            raise ConfigError(f"batch_size: got {batch_size}; the {n_train} training rows leave a last minibatch of one "
                              f"example, which BatchNorm cannot normalize after a convolution whose output has one position "
                              f"(parent {self.name!r}); allowed: a batch size that leaves more than one example over, "
                              "or no BatchNorm")

    @property
    def positions(self) -> int:
        """Spatial positions of each channel of the last convolution's (pooled) output."""
        return math.prod(self.conv_output_sizes()[-1])

    @property
    def node_space(self) -> NodeSpace:
        names = [f"conv{i + 1}" for i in range(len(self.channels))] + [f"fc{i + 1}" for i in range(len(self.fc))]
        return NodeSpace(tuple(names), (*self.channels, *self.fc))

    def _fan_ins(self, kept: tuple[int, ...]) -> list[int]:
        """Each layer's inputs per output unit, for node layers keeping ``kept`` nodes, then the head."""
        n_conv = len(self.channels)
        conv_in = [self.in_channels, *kept[: n_conv - 1]]
        linear_in = [kept[n_conv - 1] * self.positions, *kept[n_conv:]]
        return [c * self.kernel**self.dims for c in conv_in] + linear_in

    # -- weights -----------------------------------------------------------
    def layer_shapes(self) -> list[tuple[tuple[int, ...], bool]]:
        """Each layer's weight shape (``nn.Conv*d``'s or ``nn.Linear``'s) and whether BatchNorm follows it."""
        widths = self.node_space.widths
        in_channels = [self.in_channels, *self.channels[:-1]]
        shapes = []
        for i, (out, fan_in) in enumerate(zip([*widths, self.n_classes], self._fan_ins(widths))):
            conv = i < len(self.channels)
            shape = (out, in_channels[i], *(self.kernel,) * self.dims) if conv else (out, fan_in)
            shapes.append((shape, self.batchnorm and conv))
        return shapes

    def init(self, seed: int) -> list[ConvLayer]:
        """As ``nn.Conv*d``/``nn.Linear`` draw them (uniform in ``±1/sqrt(fan_in)``), BatchNorm at scale 1, shift 0,
        from a generator derived from ``seed`` alone."""
        g = generator(seed, "parent-init")
        layers = []
        for shape, bn in self.layer_shapes():
            out, bound = shape[0], math.prod(shape[1:]) ** -0.5
            weight = (torch.rand(*shape, generator=g) * 2 - 1) * bound
            bias = (torch.rand(out, generator=g) * 2 - 1) * bound
            layers.append(ConvLayer(weight, bias, torch.ones(out) if bn else None, torch.zeros(out) if bn else None))
        return layers

    def compact(self, weights: list[ConvLayer], mask: NodeMask) -> list[ConvLayer]:
        rows = [*mask.index_tensors(weights[0].weight.device), None]
        cols = [None, *rows[:-1]]
        n_conv = len(self.channels)
        if cols[n_conv] is not None:  # the first FC layer reads each kept channel's block of positions
            p = self.positions
            cols[n_conv] = (cols[n_conv][:, None] * p + torch.arange(p, device=cols[n_conv].device)).flatten()
        return [_select(layer, r, c) for layer, r, c in zip(weights, rows, cols)]

    def expand(self, weights: list[ConvLayer], mask: NodeMask) -> list[ConvLayer]:
        """Full-width weights, zeros at the removed units and inputs.

        Compacting each parameter's flat element positions says where each compact element sits in the full one.
        """
        positions = [_positions(shape, bn) for shape, bn in self.layer_shapes()]
        out = []
        for layer, full_layer, where in zip(weights, positions, self.compact(positions, mask)):
            parts = []
            for value, full_positions, compact_positions in zip(layer, full_layer, where):
                if value is None:
                    parts.append(None)
                    continue
                full = torch.zeros(full_positions.shape, dtype=value.dtype, device=value.device)
                full.view(-1)[compact_positions.reshape(-1).to(value.device)] = value.reshape(-1)
                parts.append(full)
            out.append(ConvLayer(*parts))
        return out

    def count_params(self, kept: NodeMask | Sequence[int] | None = None) -> int:
        """Weights and biases, and BatchNorm's scales and shifts (its running statistics are not parameters)."""
        counts = kept_counts(kept, self.node_space)
        outs = [*counts, self.n_classes]
        bn = 2 * sum(counts[: len(self.channels)]) if self.batchnorm else 0
        return sum(o * f + o for o, f in zip(outs, self._fan_ins(counts))) + bn

    def flops(self, kept: NodeMask | Sequence[int] | None = None) -> int:
        """A multiply and an add per weight use, an add per bias per output position (BatchNorm, which folds into the
        convolution at inference, activations and pooling not counted).

        >>> from sparsebench.models.cnn1d import CNN1d
        >>> CNN1d(1, (8,), (2,), (), 3).flops()  # conv 8->4: 4*2*(2*1*5 + 1); head: 3*(2*8 + 1)
        139
        """
        counts = kept_counts(kept, self.node_space)
        outs = [*counts, self.n_classes]
        # Positions each convolution computes (before its pooling); one for each linear layer.
        positions = [math.prod(computed) for computed, _ in self.conv_sizes()] + [1] * (len(outs) - len(self.channels))
        return sum(p * o * (2 * f + 1) for p, o, f in zip(positions, outs, self._fan_ins(counts)))

    def incoming_weights(self, weights: list[ConvLayer]) -> list[torch.Tensor]:
        """A channel's incoming weights are its filter, flattened; an FC neuron's, its row.

        >>> from sparsebench.models.cnn1d import CNN1d
        >>> net = CNN1d(1, (40,), (8, 6), (), 10)
        >>> [tuple(w.shape) for w in net.incoming_weights(net.init(0))]
        [(8, 5), (6, 40)]
        """
        return [layer.weight.flatten(1) for layer in weights[: len(self.node_space.widths)]]

    def outgoing_weights(self, weights: list[ConvLayer]) -> list[torch.Tensor]:
        """What reads a node: a channel's input slice of the next filters (every filter, every kernel tap), for the
        last convolution its block of flattened positions in the first linear layer; an FC neuron's column.

        >>> from sparsebench.models.cnn1d import CNN1d
        >>> net = CNN1d(1, (40,), (8, 6), (4,), 10)  # lengths 20, 10: the first FC layer reads 6 x 10 inputs
        >>> [tuple(w.shape) for w in net.outgoing_weights(net.init(0))]
        [(8, 30), (6, 40), (4, 10)]
        """
        n_conv, n_nodes = len(self.channels), len(self.node_space.widths)
        out = []
        for i, layer in enumerate(weights[1: n_nodes + 1]):
            w = layer.weight
            if i < n_conv - 1:  # conv -> conv: (out, in, *kernel) -> (in, out * kernel)
                out.append(w.transpose(0, 1).flatten(1))
            elif i == n_conv - 1:  # last conv -> linear: (out, channels * positions) -> (channels, out * positions)
                out.append(w.view(w.shape[0], self.channels[-1], self.positions).transpose(0, 1).flatten(1))
            else:
                out.append(w.T)
        return out

    def gated_module(self, weights: list[ConvLayer]) -> GatedNetwork:
        """The parent's ``to_module`` with a gate per channel (and per FC neuron) after each activation, before the
        pooling that may follow it.

        >>> from sparsebench.models.cnn1d import CNN1d
        >>> net = CNN1d(1, (40,), (8, 6), (4,), 10)
        >>> [tuple(g.shape) for g in net.gated_module(net.init(0)).gates]
        [(8,), (6,), (4,)]
        """
        activations = tuple(ACTIVATION_MODULES.values())
        return gate_activations(self.to_module(weights), self.node_space.widths, activations,
                                (nn.Conv1d, nn.Conv2d, nn.Linear))

    # -- modules -----------------------------------------------------------
    def to_module(self, weights: list[ConvLayer], mask: NodeMask | None = None) -> nn.Sequential:
        """A plain ``nn.Sequential`` holding the (compact) weights, BatchNorm's running statistics at their start.

        >>> from sparsebench.models.cnn1d import CNN1d
        >>> net = CNN1d(1, (40,), (8, 8, 8), (), 10)
        >>> net.to_module(net.init(0), NodeMask.from_indices([[0, 1], [2], [3, 4]], (8, 8, 8)))[:3]
        Sequential(
          (0): Conv1d(1, 2, kernel_size=(5,), stride=(2,), padding=(2,))
          (1): ReLU()
          (2): Conv1d(2, 1, kernel_size=(5,), stride=(2,), padding=(2,))
        )
        """
        layers = weights if mask is None else self.compact(weights, mask)
        conv = nn.Conv1d if self.dims == 1 else nn.Conv2d
        norm = nn.BatchNorm1d if self.dims == 1 else nn.BatchNorm2d
        pool = nn.MaxPool1d if self.dims == 1 else nn.MaxPool2d
        act = ACTIVATION_MODULES[self.activation]
        modules: list[nn.Module] = []
        n_conv = len(self.channels)
        for i, layer in enumerate(layers):
            out, fan_in = layer.weight.shape[:2]
            if i < n_conv:
                module = conv(fan_in, out, self.kernel, stride=self.stride, padding=self.padding)
            else:
                if i == n_conv:
                    modules.append(nn.Flatten())
                module = nn.Linear(fan_in, out)
            _load(module, layer.weight, layer.bias)
            modules.append(module)
            if layer.bn_weight is not None:
                bn = norm(out, eps=BN_EPS, momentum=BN_MOMENTUM)
                _load(bn, layer.bn_weight, layer.bn_bias)
                modules.append(bn)
            if i < len(layers) - 1:
                modules.append(act())
            if i < n_conv and self.pools_after(i):
                modules.append(pool(2))
        return nn.Sequential(*modules)


def _load(module: nn.Module, weight: torch.Tensor, bias: torch.Tensor) -> None:
    with torch.no_grad():
        module.weight.copy_(weight)
        module.bias.copy_(bias)


def _select(layer: ConvLayer, rows: torch.Tensor | None, cols: torch.Tensor | None) -> ConvLayer:
    """The layer's parameters of the kept output units (``rows``) and inputs (``cols``); None keeps all."""
    weight = layer.weight if rows is None else layer.weight.index_select(0, rows)
    if cols is not None:
        weight = weight.index_select(1, cols)
    pick = (lambda t: t) if rows is None else (lambda t: t.index_select(0, rows))
    return ConvLayer(weight.contiguous(), pick(layer.bias),
                     None if layer.bn_weight is None else pick(layer.bn_weight),
                     None if layer.bn_bias is None else pick(layer.bn_bias))


def _positions(shape: tuple[int, ...], bn: bool) -> ConvLayer:
    """Each parameter's flat element positions, in its shape."""
    def at(*dims: int) -> torch.Tensor:
        return torch.arange(math.prod(dims)).view(dims)

    out = shape[0]
    return ConvLayer(at(*shape), at(out), at(out) if bn else None, at(out) if bn else None)


def mask_multipliers(family: ConvNet, mask: NodeMask) -> list[ConvLayer]:
    """0/1 tensors shaped like each layer's parameters: ones at the kept units and inputs, zeros elsewhere.

    What the reference trainer multiplies the parameters by, as ``torch.nn.utils.prune`` does.
    """
    ones = [ConvLayer(*(torch.ones(p.shape) if p is not None else None for p in _positions(shape, bn)))
            for shape, bn in family.layer_shapes()]
    return family.expand(family.compact(ones, mask), mask)


def layers_of(model: nn.Sequential, read=lambda p: p) -> list[ConvLayer]:
    """A ``to_module`` network's parameters (pruned ones: their unmasked originals) as ``ConvLayer``s;
    ``read`` maps each parameter first (``lambda p: p.grad`` gives the gradients)."""
    def get(module: nn.Module, name: str) -> torch.Tensor:
        return read(getattr(module, name + "_orig", None) if hasattr(module, name + "_orig") else getattr(module, name))

    layers: list[ConvLayer] = []
    for module in model:
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            layers.append(ConvLayer(get(module, "weight"), get(module, "bias")))
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            layers[-1] = layers[-1]._replace(bn_weight=get(module, "weight"), bn_bias=get(module, "bias"))
    return layers
