"""The method interface: given a parent and a sparsity, return a mask.

A method sees the parent through its family's interface (``ctx.parent``: node
space, incoming weights per node, compaction), never a particular family's
weights, so one method class works on every family.
"""

from __future__ import annotations

import dataclasses
import inspect
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import torch

from ..errors import ConfigError
from ..errors import invalid
from ..names import SCORES
from ..models.base import GatedNetwork, NodeSpace, Parent, ParentFamily
from ..models.mask import NodeMask

if TYPE_CHECKING:
    from ..engine.common import TrainResult, TrainSettings

#: Training examples per minibatch of the per-node quantities, unless a method says otherwise.
DEFAULT_BATCH_SIZE = 128
#: How ``gate_gradients`` returns its minibatches: summed, one row per minibatch, one row per example.
GATE_REDUCTIONS = ("sum", "batch", "example")


@dataclass
class SelectionContext:
    """Everything a method may use to choose a mask. The test split is not here, by design.

    ``parent`` is this seed's parent (a copy of its initial weights, bound to
    its family); ``node_space`` its maskable layers and their widths;
    ``generator`` the method's own random stream.

    Per-node quantities of the parent at initialization, for every family and
    from the training split alone: ``incoming_weights()``,
    ``outgoing_weights()``, ``gate_gradients(batches)`` (d(loss)/d(gate) of a
    gate on each node's output), ``activations(batches)``, and
    ``gated_network()`` for methods that differentiate further (GraSP). Their
    minibatches come from ``generator``: the same on every run. ``train(masks,
    epochs)`` trains candidates briefly, as the experiment trains, and returns
    their training and validation curves.
    """

    parent: Parent
    sparsity: float
    seed: int
    candidates: int
    score_name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    generator: torch.Generator
    #: "stacked" scores candidates in batches; "reference" one masked network at a time.
    engine: str = "stacked"
    #: How the experiment trains its networks (``ExperimentConfig.training``), for ``train``; None: not given.
    training: "TrainSettings | None" = None

    @property
    def node_space(self) -> NodeSpace:
        return self.parent.node_space

    @property
    def family(self) -> ParentFamily:
        return self.parent.family

    @property
    def spec(self) -> ParentFamily:
        """The parent's family (the name methods written for the MLP alone used: ``ctx.spec.hidden``)."""
        return self.parent.family

    def kept(self) -> tuple[int, ...]:
        """Nodes each node layer keeps at this sparsity."""
        return self.node_space.kept(self.sparsity)

    def sample(self, count: int) -> list[NodeMask]:
        """``count`` masks drawn uniformly at this sparsity, from this method's own stream."""
        return self.node_space.random_masks(self.sparsity, count, self.generator)

    def score(self, masks: list[NodeMask]) -> torch.Tensor:
        """The configured score (``score_name``, any of ``sparsebench.scores``) of each untrained sub-network,
        one float per mask ``(len(masks),)``, from the validation split (never the test split); the masks are
        scored in stacked batches (``engine`` "reference": each masked full-width network alone)."""
        from ..scores import score_masks

        return score_masks(self.score_name, self.family, self.parent.weights, masks, self.x_val, self.y_val,
                           reference=self.engine == "reference")

    # -- per-node quantities of the parent at initialization (training split only) ---------
    def incoming_weights(self) -> list[torch.Tensor]:
        """Per node layer, each node's incoming weights ``(width, fan_in)``."""
        return self.parent.incoming_weights()

    def outgoing_weights(self) -> list[torch.Tensor]:
        """Per node layer, the weights that read each node's output ``(width, fan_out)``."""
        return self.parent.outgoing_weights()

    def gated_network(self) -> GatedNetwork:
        """A fresh copy of the parent with a gate of ones on each node's output, on the data's device."""
        net = self.parent.gated_module()
        net.module.to(self.x_train.device)
        return net

    def minibatches(self, batches: int, batch_size: int = DEFAULT_BATCH_SIZE) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``batches`` training minibatches of ``batch_size`` examples (at most the training split), drawn without
        replacement from this method's stream (a fresh shuffle when one pass runs out): the same at every run."""
        check_count("batches", batches)
        check_count("batch_size", batch_size)
        n = len(self.x_train)
        size = min(batch_size, n)
        order: list[torch.Tensor] = []
        while sum(len(o) for o in order) < batches * size:
            order.append(torch.randperm(n, generator=self.generator))
        index = torch.cat(order)[: batches * size].view(batches, size).to(self.x_train.device)
        return [(self.x_train[i], self.y_train[i]) for i in index]

    def gate_gradients(self, batches: int = 1, batch_size: int = DEFAULT_BATCH_SIZE,
                       reduce: str = "sum") -> list[torch.Tensor]:
        """Per node layer, the gradient of the training loss (mean cross-entropy of a minibatch) with respect to a
        multiplicative gate on each node's output, at gate 1, over ``batches`` minibatches (``minibatches``).

        ``reduce``: "sum" (``(width,)``, summed over minibatches), "batch" (``(batches, width)``) or "example"
        (``(batches * size, width)``: each example's own gradient, the gradient of its loss alone; summed over a
        minibatch and divided by its size it is the minibatch's). Per example it is computed as
        ``size * sum over positions of activation * d(loss)/d(gated output)``; with BatchNorm, which couples the
        examples of a minibatch, that is each example's share of the minibatch's gradient.
        BatchNorm uses the minibatch's statistics, as in training.
        """
        if reduce not in GATE_REDUCTIONS:
            raise invalid("reduce", reduce, "one of " + ", ".join(GATE_REDUCTIONS))
        net = self.gated_network()  # one for all minibatches: in training mode BatchNorm reads only the minibatch
        rows = [_gate_pass(net, x, y, per_example=reduce == "example") for x, y in self.minibatches(batches, batch_size)]
        join = torch.cat if reduce == "example" else torch.stack
        per_layer = [join([r[i] for r in rows]) for i in range(len(self.node_space.widths))]
        return [p.sum(0) for p in per_layer] if reduce == "sum" else per_layer

    def activations(self, batches: int = 1, batch_size: int = DEFAULT_BATCH_SIZE) -> list[torch.Tensor]:
        """Per node layer, each node's mean output (after its activation; over examples and positions) on
        ``batches`` training minibatches; BatchNorm with the minibatch's statistics."""
        net = self.gated_network()
        totals = [torch.zeros(w, dtype=torch.float64) for w in self.node_space.widths]
        count = 0
        with torch.no_grad():
            for x, y in self.minibatches(batches, batch_size):
                inputs = _gate_inputs(net, x)
                for total, a in zip(totals, inputs):
                    total += a.transpose(0, 1).flatten(1).mean(1).double().cpu() * len(x)
                count += len(x)
        return [(t / count).to(torch.float32) for t in totals]

    def train(self, masks: list[NodeMask], epochs: int) -> list["TrainResult"]:
        """Train each sub-network for ``epochs`` with the engine, as the experiment trains (``training``: optimizer,
        learning rate, batch size), stacked, on this seed's minibatch order, without early stopping.

        Per mask, its per-epoch ``train_loss``, ``train_acc``, ``val_loss`` and ``val_acc``; the test fields are
        NaN: the test split is not given. All masks at this context's sparsity (the stacked engine needs one shape).
        """
        from ..data.registry import DatasetSplits
        from ..engine.families import engine_for

        check_count("epochs", epochs)
        if self.training is None:
            raise ConfigError("train: this selection context has no training settings (SelectionContext.training); "
                              "allowed: a context built with them")
        if not masks:
            return []
        engine = engine_for(self.family)
        data = engine.prepare(DatasetSplits("selection", self.x_train, self.y_train, self.x_val, self.y_val,
                                            self.x_val[:0], self.y_val[:0],  # no test split: empty
                                            n_classes=int(self.y_train.max()) + 1))
        weights = engine.to_device(self.parent.weights, self.x_train.device)
        stacked = engine.stack([(weights, mask) for mask in masks])
        settings = dataclasses.replace(self.training, epochs=epochs, patience=0)
        return engine.train(stacked, [self.seed] * len(masks), data, settings)

    def better(self, a: float, b: float) -> bool:
        """Whether score ``a`` ranks strictly above ``b`` in the score's direction (loss: lower; accuracy and the
        training-free scores: higher); a NaN score ranks below every number."""
        from ..scores import get_score

        return get_score(self.score_name).better(a, b)


#: The most probes of one (seed, sparsity) of one method: as the flat ``probe`` key allows.
MAX_PROBES = 1 << 12


def check_probe(probe: object, candidates: int) -> int:
    """A search's ``probe``: how many of its other scored candidates are also trained, in ``[0, candidates - 1]``.

    >>> check_probe(3, 16), check_probe(0, 1)
    (3, 0)
    """
    if isinstance(probe, bool) or not isinstance(probe, int) or not 0 <= probe <= MAX_PROBES:
        raise invalid("probe", probe, f"an integer in [0, {MAX_PROBES}]")
    if probe > candidates - 1 and probe > 0:
        raise invalid("probe", probe, f"at most candidates - 1 = {candidates - 1}")
    return probe


def check_score(score: object) -> str:
    """A search's ``score``: one of ``names.SCORES``, else a one-line error listing them."""
    if score not in SCORES:
        raise invalid("score", score, "one of " + ", ".join(SCORES))
    return score


def check_count(name: str, value: object) -> int:
    """A count (of minibatches, examples, rounds): a whole number >= 1, else a one-line error."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise invalid(name, value, "a whole number >= 1")
    return value


def _gate_pass(net: GatedNetwork, x: torch.Tensor, y: torch.Tensor, per_example: bool) -> list[torch.Tensor]:
    """One minibatch's gate gradients ``(width,)``, or per example ``(size, width)``, per node layer (on the CPU)."""
    captured: list[tuple[torch.Tensor, torch.Tensor]] = []
    hooks = [m.register_forward_hook(lambda _m, inp, out: captured.append((inp[0], out)))
             for m in net.gate_modules]
    try:
        loss = torch.nn.functional.cross_entropy(net.module(x), y)
    finally:
        for h in hooks:
            h.remove()
    if not per_example:
        return [g.detach().cpu() for g in torch.autograd.grad(loss, net.gates)]
    grads = torch.autograd.grad(loss, [out for _, out in captured])
    return [(len(x) * (a.detach() * d).flatten(2).sum(2) if a.dim() > 2 else len(x) * a.detach() * d).cpu()
            for (a, _), d in zip(captured, grads)]


def _gate_inputs(net: GatedNetwork, x: torch.Tensor) -> list[torch.Tensor]:
    """Each gate's input (the node layer's output after its activation) for the examples ``x``."""
    captured: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda _m, inp, _out: captured.append(inp[0])) for m in net.gate_modules]
    try:
        net.module(x)
    finally:
        for h in hooks:
            h.remove()
    return captured


@dataclass
class Selection:
    """A method's answer: the chosen mask (None: the dense parent) and what it scored.

    What the search cost is stored with the trial: ``evaluations``, how many sub-networks
    the method scored (None: one per returned candidate, ``len(candidates)``; a method
    that scores more than it returns says how many), and ``search_epochs``, the training
    epochs it spent on search (summed over every candidate it trained; 0 for a method that
    trains nothing).

    >>> Selection(None).cost(), Selection(None, evaluations=50, search_epochs=3).cost()
    ((0, 0), (50, 3))
    """

    mask: NodeMask | None
    candidates: list[NodeMask] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    chosen: int = -1
    evaluations: int | None = None
    search_epochs: int = 0

    def cost(self) -> tuple[int, int]:
        """``(candidate evaluations, search epochs)`` of this selection."""
        evaluations = len(self.candidates) if self.evaluations is None else self.evaluations
        return int(evaluations), int(self.search_epochs)


class Method(ABC):
    """A way to choose a sub-network. Subclass, implement ``select``, register.

    >>> class LargestIncomingNorm(Method):
    ...     '''Keeps the nodes whose incoming weights have the largest norm, in every family.'''
    ...     def select(self, ctx):
    ...         keep = [w.norm(dim=1).topk(k).indices.tolist()
    ...                 for w, k in zip(ctx.parent.incoming_weights(), ctx.kept())]
    ...         return Selection(NodeMask.from_indices(keep, ctx.node_space.widths))
    """

    #: Constructor parameters whose default is a flat config key (parameter name to config field):
    #: ``random-search`` takes ``candidates``, ``score`` and ``probe`` from the config unless a
    #: ``[methods.LABEL]`` table sets them, ``evolution`` ``candidates`` and ``score``. A method with a
    #: ``probe`` parameter (a count) has that many of its other returned candidates trained too, per seed
    #: and sparsity, as probes of whether its ranking predicts trained accuracy; it must then return more
    #: candidates than that.
    CONFIG_DEFAULTS: ClassVar[dict[str, str]] = {}

    @abstractmethod
    def select(self, ctx: SelectionContext) -> Selection:
        """Return the mask to train for ``ctx.sparsity``."""

    def params(self) -> dict[str, object]:
        """The constructor's keyword parameters and their values (each stored under its own name)."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {name: getattr(self, name) for name in names if hasattr(self, name)}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(" + ", ".join(f"{k}={v!r}" for k, v in self.params().items()) + ")"
