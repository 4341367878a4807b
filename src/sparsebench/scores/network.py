"""Candidate sub-networks as one ``nn.Module`` skeleton and stacked parameters: what the training-free scores share.

Any family's ``to_module`` gives a plain ``nn.Sequential``; a candidate's compact weights (``engine.stack``)
are that module's parameters in order. ``torch.func.vmap`` over ``functional_call`` then runs a chunk of
candidates at once (one batched product per layer for the MLP, grouped convolutions for the CNNs), and
``torch.func.grad`` differentiates each candidate on its own. Batched values agree with one-at-a-time values to
float tolerance (a batched product may sum in another order), not to the bit.

The reference path (``reference=True``) computes each candidate alone on the **masked full-width** parent
(``family.expand``: zeros at the removed nodes), as a masked network computes it; ``kept`` then names the kept
nodes of each layer, for scores that must read only those (NASWOT).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch import nn
from torch.func import functional_call, vmap

from ..models.base import ParentFamily, Weights
from ..models.mask import NodeMask

#: Examples of the minibatch that NASWOT, jacob-cov and grad-norm read (Mellor et al. 2021 use 128).
MINIBATCH = 128
#: Activation elements (all candidates, examples, layers) one chunk of candidates may hold at once: about 64 MB.
CHUNK_ELEMENTS = 1 << 24
ACTIVATION_MODULES = (nn.ReLU, nn.Tanh, nn.GELU)
WEIGHTED_MODULES = (nn.Linear, nn.Conv1d, nn.Conv2d)
BATCHNORM_MODULES = (nn.BatchNorm1d, nn.BatchNorm2d)


def minibatch(x: torch.Tensor, y: torch.Tensor, size: int = MINIBATCH) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``size`` examples of the split (all, if fewer): the validation split's rows are in a random order
    fixed by the data seed, so this is a uniform sample, the same on every run and for every candidate."""
    return x[:size], y[:size]


@dataclass
class Candidates:
    """A chunk of candidates: the module skeleton, each parameter stacked over the chunk, and each candidate's
    kept nodes per node layer (None: all of its nodes, as in a compacted network)."""

    module: nn.Sequential
    names: list[str]
    params: list[torch.Tensor]
    kept: list[list[torch.Tensor]] | None = None

    def __len__(self) -> int:
        return len(self.params[0])

    def weight_names(self) -> list[str]:
        """The parameters that are weights of a Linear or Conv layer (not biases, not BatchNorm's)."""
        weighted = {f"{name}.weight" for name, m in self.module.named_children() if isinstance(m, WEIGHTED_MODULES)}
        return [n for n in self.names if n in weighted]


def _flat(layers: Weights) -> list[torch.Tensor]:
    """A family's per-layer weights (``Layer``/``ConvLayer`` tuples) as the tensors ``to_module`` holds, in order."""
    return [t for layer in layers for t in layer if t is not None]


def skeleton(family: ParentFamily, weights: Weights, mask: NodeMask | None, batch_statistics: bool) -> nn.Sequential:
    """The (sub-)network's module: BatchNorm on the minibatch's own statistics (``batch_statistics``, training
    mode, nothing updated), or in evaluation mode on its running statistics at their start (mean 0, variance 1)."""
    module = family.to_module(weights, mask)
    for m in module.modules():
        if isinstance(m, BATCHNORM_MODULES) and batch_statistics:
            m.track_running_stats, m.running_mean, m.running_var, m.num_batches_tracked = False, None, None, None
    module.train(batch_statistics)
    return module


def chunks(family: ParentFamily, weights: Weights, masks: list[NodeMask], x: torch.Tensor, reference: bool,
           batch_statistics: bool, dtype: torch.dtype = torch.float32, size: int | None = None) -> Iterator[Candidates]:
    """The masks in chunks that fit ``CHUNK_ELEMENTS`` for ``len(x)`` examples (``size``: that many a chunk);
    compacted and stacked, or (``reference``) each masked full-width network alone."""
    from ..engine.families import engine_for

    engine = engine_for(family)
    device = x.device
    weights = engine.to_device(weights, device)
    if reference:
        for mask in masks:
            full = family.expand(family.compact(weights, mask), mask)
            module = skeleton(family, full, None, batch_statistics).to(device, dtype)
            yield Candidates(module, [n for n, _ in module.named_parameters()],
                             [t.unsqueeze(0).to(dtype) for t in _flat(full)], [mask.index_tensors(device)])
        return
    module = skeleton(family, weights, masks[0], batch_statistics).to(device, dtype)
    names = [n for n, _ in module.named_parameters()]
    if size is None:
        size = max(1, CHUNK_ELEMENTS // max(1, len(x) * activation_elements(module, x[:1].to(dtype))))
    for start in range(0, len(masks), size):
        stacked = engine.stack([(weights, m) for m in masks[start : start + size]])
        params = [t.to(dtype) for t in _flat(stacked)]
        shapes = [tuple(p.shape) for p in module.parameters()]
        if [tuple(p.shape[1:]) for p in params] != shapes:
            raise ValueError(f"parent {family.name!r}: stacked weights {[tuple(p.shape[1:]) for p in params]} do "
                             f"not match its module's parameters {shapes}")
        yield Candidates(module, names, params)


@torch.no_grad()
def activation_elements(module: nn.Sequential, x: torch.Tensor) -> int:
    """Elements of every layer's output for the examples ``x`` (what one candidate holds during a pass)."""
    total, h = 0, x
    for m in module:
        h = m(h)
        total += h.numel()
    return total


def forward(module: nn.Sequential, names: list[str], params: list[torch.Tensor], x: torch.Tensor,
            ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """One candidate's logits and each node layer's output after its activation (before any pooling).

    ``params`` are its parameters (one slice of a chunk's stacked ones, under ``vmap``); the module's own
    parameters are not read.
    """
    by_module: dict[str, dict[str, torch.Tensor]] = {}
    for name, p in zip(names, params):
        owner, field = name.rsplit(".", 1)
        by_module.setdefault(owner, {})[field] = p
    h, activations = x, []
    for name, m in module.named_children():
        h = functional_call(m, by_module[name], (h,)) if name in by_module else m(h)
        if isinstance(m, ACTIVATION_MODULES):
            activations.append(h)
    return h, activations


def per_candidate(fn: Callable[..., torch.Tensor], chunk: Candidates, *args: torch.Tensor) -> torch.Tensor:
    """``fn(params, *args)`` for every candidate of the chunk at once (``vmap`` over the stacked parameters)."""
    return vmap(fn, in_dims=(0, *(None,) * len(args)))(chunk.params, *args)


def kept_units(activations: list[torch.Tensor], kept: list[torch.Tensor] | None) -> list[torch.Tensor]:
    """Each node layer's output restricted to the kept nodes (dimension 1: nodes, channels); None: all of them."""
    if kept is None:
        return activations
    return [a.index_select(1, k) for a, k in zip(activations, kept)]
