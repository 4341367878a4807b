"""The parent family interface: all that sparsebench knows about a kind of parent network.

A *family* (``mlp``; later ``cnn1d``, ``cnn``, ...) is one class. An instance
is one parent shape, built from the config's values and the data's example
shape (``from_config``); it draws the parent's initial weights for a seed,
names its node space, compacts a sub-network, counts its parameters and FLOPs
and turns it into a plain ``nn.Module``. Weights are whatever the family
chooses (the MLP: a list of ``Layer``); code outside the family passes them
along without looking inside, so nothing outside ``models/<family>.py`` and
the engine's per-family code knows which family runs.

A third-party family subclasses ``ParentFamily`` and is installed through the
entry-point group ``sparsebench.parents`` (see ``models.registry``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, Sequence

import torch

from ..errors import ConfigError
from .mask import NodeMask, kept_count, random_masks

if TYPE_CHECKING:
    from torch import nn

#: What a family's weights are is the family's business: the rest of sparsebench passes them along.
Weights = Any

#: Names of data arrays by their number of dimensions (the example count first).
SHAPE_KINDS = {2: "tabular (N, F)", 3: "sequences (N, C, L)", 4: "images (N, C, H, W)"}


@dataclass(frozen=True)
class NodeSpace:
    """The maskable layers of a parent and their widths (nodes); the output layer is never one of them.

    >>> space = NodeSpace(("hidden1", "hidden2"), (8, 4))
    >>> space.kept(0.5), space.full_mask().kept_per_layer
    ((4, 2), (8, 4))
    """

    layers: tuple[str, ...]
    widths: tuple[int, ...]

    def kept(self, sparsity: float) -> tuple[int, ...]:
        """Nodes each layer keeps at ``sparsity``."""
        return tuple(kept_count(w, sparsity) for w in self.widths)

    def full_mask(self) -> NodeMask:
        return NodeMask.full(self.widths)

    def random_masks(self, sparsity: float, count: int, g: torch.Generator) -> list[NodeMask]:
        """``count`` masks drawn uniformly at ``sparsity`` from ``g``."""
        return random_masks(self.widths, sparsity, count, g)


def kept_counts(kept: NodeMask | Sequence[int] | None, space: NodeSpace) -> tuple[int, ...]:
    """Nodes kept per layer: of a mask, as given, or (None) every node of the parent."""
    if kept is None:
        return space.widths
    if isinstance(kept, NodeMask):
        return kept.kept_per_layer
    return tuple(int(k) for k in kept)


class ParentFamily(ABC):
    """One kind of parent network. Subclass, implement the abstract methods, list it in a registry.

    Parameter and FLOP counts depend only on how many nodes each layer keeps,
    so they take a ``NodeMask``, the kept counts per node layer, or None (the
    whole parent).
    """

    #: The family's name in configs and on the command line.
    name: ClassVar[str]
    #: Data arrays the family accepts, by number of dimensions (see ``SHAPE_KINDS``); None: any.
    accepted_dims: ClassVar[tuple[int, ...] | None] = None
    #: The node layers' widths when a config gives none (``hidden``).
    default_hidden: ClassVar[tuple[int, ...]] = (256, 256, 256)
    #: The ``[parent]`` options the family reads (config fields); a config setting another is refused.
    options: ClassVar[tuple[str, ...]] = ("hidden", "activation")

    @classmethod
    @abstractmethod
    def from_config(cls, values: Mapping[str, Any], example_shape: tuple[int, ...], n_classes: int) -> "ParentFamily":
        """The parent shape for these config values (plain, as stored) and one example's shape."""

    @classmethod
    def check_shape(cls, example_shape: tuple[int, ...]) -> None:
        """Refuse, in one line, data whose examples this family cannot take.

        >>> class Images(ParentFamily):
        ...     name, accepted_dims = "images-only", (4,)
        >>> Images.check_shape((40,))
        Traceback (most recent call last):
        ...
        sparsebench.errors.ConfigError: parent 'images-only': got data of shape (N, 40), tabular (N, F); allowed: images (N, C, H, W)
        """
        dims = len(example_shape) + 1
        if cls.accepted_dims is None or dims in cls.accepted_dims:
            return
        shape = "(N, " + ", ".join(str(d) for d in example_shape) + ")"
        kind = SHAPE_KINDS.get(dims, f"{dims}-D")
        allowed = " or ".join(SHAPE_KINDS.get(d, f"{d}-D") for d in cls.accepted_dims)
        raise ConfigError(f"parent {cls.name!r}: got data of shape {shape}, {kind}; allowed: {allowed}")

    @property
    @abstractmethod
    def node_space(self) -> NodeSpace:
        """The maskable layers and their widths."""

    @abstractmethod
    def init(self, seed: int) -> Weights:
        """The parent's initial weights for ``seed``, from a generator derived from ``seed`` alone."""

    @abstractmethod
    def compact(self, weights: Weights, mask: NodeMask) -> Weights:
        """The sub-network's own dense weights (inherited, not re-initialized)."""

    @abstractmethod
    def expand(self, weights: Weights, mask: NodeMask) -> Weights:
        """Compact weights back at full width, zeros at the removed nodes."""

    @abstractmethod
    def count_params(self, kept: NodeMask | Sequence[int] | None = None) -> int:
        """Weights and biases of the (sub-)network."""

    @abstractmethod
    def flops(self, kept: NodeMask | Sequence[int] | None = None) -> int:
        """Floating-point operations of one example's forward pass through the (sub-)network."""

    @abstractmethod
    def to_module(self, weights: Weights, mask: NodeMask | None = None) -> "nn.Module":
        """A plain compact ``nn.Module`` holding the (sub-)network's weights; ``mask`` None: the whole of ``weights``."""

    @abstractmethod
    def incoming_weights(self, weights: Weights) -> list[torch.Tensor]:
        """Per node layer, each node's incoming weights as a ``(width, fan_in)`` tensor (for scoring rules)."""

    # -- per-node quantities for scoring rules: optional for a third-party family -----
    def outgoing_weights(self, weights: Weights) -> list[torch.Tensor]:
        """Per node layer, the weights that read each node's output, as a ``(width, fan_out)`` tensor."""
        raise ConfigError(f"parent {self.name!r}: outgoing_weights is not implemented by this family; "
                          "allowed: a method that uses only incoming weights and validation scores")

    def gated_module(self, weights: Weights) -> "GatedNetwork":
        """The whole parent as an ``nn.Module`` with a multiplicative gate (ones) on each node's output."""
        raise ConfigError(f"parent {self.name!r}: gated_module is not implemented by this family; "
                          "allowed: a method that uses only incoming weights and validation scores")

    def check_minibatches(self, n_train: int, batch_size: int) -> None:
        """Refuse, in one line, minibatches this parent cannot train on (``n_train`` rows in batches of
        ``batch_size``, the last one smaller); any family can, unless it says otherwise."""

    # -- derived from the above: the same for every family ----------------
    def weight_sparsity(self, kept: NodeMask | Sequence[int] | None) -> float:
        """Fraction of the parent's weights and biases the sub-network drops."""
        return 1.0 - self.count_params(kept) / self.count_params()

    def flop_reduction(self, kept: NodeMask | Sequence[int] | None) -> float:
        """Fraction of the parent's FLOPs per example the sub-network saves."""
        return 1.0 - self.flops(kept) / self.flops()

    def bind(self, weights: Weights, seed: int) -> "Parent":
        return Parent(self, weights, seed)


@dataclass
class Parent:
    """A family bound to one seed's initial weights: what a method is given to choose a mask from."""

    family: ParentFamily
    weights: Weights
    seed: int

    @property
    def node_space(self) -> NodeSpace:
        return self.family.node_space

    def incoming_weights(self) -> list[torch.Tensor]:
        """Per node layer, each node's incoming weights ``(width, fan_in)``."""
        return self.family.incoming_weights(self.weights)

    def outgoing_weights(self) -> list[torch.Tensor]:
        """Per node layer, the weights reading each node's output ``(width, fan_out)``."""
        return self.family.outgoing_weights(self.weights)

    def gated_module(self) -> "GatedNetwork":
        """The parent with a gate of ones on each node's output (see ``GatedNetwork``)."""
        return self.family.gated_module(self.weights)

    def compact(self, mask: NodeMask) -> Weights:
        return self.family.compact(self.weights, mask)

    def to_module(self, mask: NodeMask | None = None) -> "nn.Module":
        return self.family.to_module(self.weights, mask)


# -- gates on nodes: what gradient-based node scores share ------------------


class NodeGate(torch.nn.Module):
    """Multiplies each node's output (a feature, or a channel at every position) by its gate.

    >>> gate = NodeGate(3)
    >>> gate(torch.ones(2, 3, 4)).shape, gate.gate.requires_grad
    (torch.Size([2, 3, 4]), True)
    """

    def __init__(self, width: int):
        super().__init__()
        self.gate = torch.nn.Parameter(torch.ones(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate.view(1, -1, *(1,) * (x.dim() - 2))


@dataclass
class GatedNetwork:
    """A parent as an ``nn.Module`` with one ``NodeGate`` per node layer, on the node's output *after* its activation.

    After the activation (and before any pooling) so that a gate at 0 is exactly the node's removal, as
    compaction removes it: before the activation, ``relu(0 * z + ...)`` of a node with a bias would still
    pass a constant on. ``incoming[i]`` is the weight parameter of node layer ``i`` (dimension 0: its nodes),
    for scores per incoming weight (SynFlow). The module starts in training mode (BatchNorm: batch statistics).
    """

    module: "nn.Module"
    gate_modules: list[NodeGate]
    incoming: list[torch.Tensor]

    @property
    def gates(self) -> list[torch.Tensor]:
        """One ``(width,)`` tensor of ones per node layer, requiring grad: d(loss)/d(gate) is the node's sensitivity."""
        return [m.gate for m in self.gate_modules]


def gate_activations(model: "nn.Sequential", widths: Sequence[int], activations: tuple[type, ...],
                     weighted: tuple[type, ...]) -> GatedNetwork:
    """``model`` with a ``NodeGate`` after each of its first ``len(widths)`` activation modules.

    The node layer's incoming weights are those of the last ``weighted`` module (Linear, Conv) before its
    activation (a BatchNorm between them is skipped). For the sequential modules the families build.
    """
    from torch import nn

    modules: list[nn.Module] = []
    gates: list[NodeGate] = []
    incoming: list[torch.Tensor] = []
    last_weighted = None
    for module in model:
        modules.append(module)
        if isinstance(module, weighted):
            last_weighted = module
        if isinstance(module, activations) and len(gates) < len(widths):
            gate = NodeGate(widths[len(gates)])
            gates.append(gate)
            incoming.append(last_weighted.weight)
            modules.append(gate)
    if len(gates) != len(widths):
        raise ValueError(f"gate_activations: found {len(gates)} activations for {len(widths)} node layers")
    return GatedNetwork(nn.Sequential(*modules), gates, incoming)
