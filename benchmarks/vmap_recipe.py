"""What a skilled PyTorch user writes instead of an engine: the ``torch.func`` model-ensembling recipe.

N compacted ``nn.Module``s of one shape, their parameters stacked with
``stack_module_state``, one forward pass ``vmap(functional_call(...))`` over
them, one ``torch.optim`` optimizer over the stacked parameters
(https://pytorch.org/tutorials/intermediate/ensembling.html). Each network
reads its seed's minibatch; the validation split is evaluated after every
epoch and the test split at the end, as the engines do. The benchmarks time
it beside the engine (``speedup_vs_vmap=``); it is not part of sparsebench.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from sparsebench.data.registry import DatasetSplits
from sparsebench.engine.common import TrainSettings, epoch_order, make_optimizer, steps_per_epoch

#: Candidates scored at once (bounds memory), as the engines chunk them.
SCORE_CHUNK = 16


def _ensemble(modules: list[nn.Module]):
    params, buffers = stack_module_state(modules)
    base = copy.deepcopy(modules[0]).to("meta")

    def call(p, b, x):
        return functional_call(base, (p, b), (x,))

    return base, params, buffers, call


@torch.no_grad()
def _evaluate(base, call, params, buffers, x, y) -> tuple[torch.Tensor, torch.Tensor]:
    base.eval()
    try:
        logits = vmap(call, in_dims=(0, 0, None))(params, buffers, x)  # (N, rows, classes)
    finally:
        base.train()
    n = logits.shape[0]
    loss = F.cross_entropy(logits.flatten(0, 1), y.repeat(n), reduction="none").view(n, -1).mean(1)
    return loss, (logits.argmax(2) == y).float().mean(1)


def score_vmap(modules: list[nn.Module], x: torch.Tensor, y: torch.Tensor, score: str = "loss") -> torch.Tensor:
    """Each untrained module's loss or accuracy on ``(x, y)``, ``SCORE_CHUNK`` modules at a time."""
    values = []
    for start in range(0, len(modules), SCORE_CHUNK):
        base, params, buffers, call = _ensemble(modules[start : start + SCORE_CHUNK])
        loss, acc = _evaluate(base, call, params, buffers, x, y)
        values.append(loss if score == "loss" else acc)
    return torch.cat(values) if values else torch.empty(0)


def train_vmap(modules: list[nn.Module], seeds: list[int], data: DatasetSplits, settings: TrainSettings) -> list[float]:
    """Train the modules together; module i follows ``seeds[i]``'s minibatch order. Returns the final test losses."""
    base, params, buffers, call = _ensemble(modules)
    optimizer = make_optimizer(list(params.values()), settings)
    n, n_train = len(modules), len(data.y_train)
    batched = vmap(call)
    for epoch in range(1, settings.epochs + 1):
        orders = {s: epoch_order(s, epoch, n_train) for s in set(seeds)}
        for step in range(steps_per_epoch(n_train, settings.batch_size)):
            rows = slice(step * settings.batch_size, (step + 1) * settings.batch_size)
            idx = torch.stack([orders[s][rows] for s in seeds])  # (N, B)
            x, y = data.x_train[idx], data.y_train[idx]
            logits = batched(params, buffers, x)
            # The sum of each network's mean loss: each network's gradient is its own.
            loss = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").view(n, -1).mean(1).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        _evaluate(base, call, params, buffers, data.x_val, data.y_val)
        if data.has_monitor:
            _evaluate(base, call, params, buffers, data.x_monitor, data.y_monitor)
    return _evaluate(base, call, params, buffers, data.x_test, data.y_test)[0].tolist()
