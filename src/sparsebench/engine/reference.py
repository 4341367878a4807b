"""The reference trainer: the plain loop research code uses today.

One full-width ``nn.Module`` at a time, with the mask applied as a
multiplication of the weights (as ``torch.nn.utils.prune`` does), the same
optimizer, data order and hyperparameters as the stacked engine. It is the ground truth the tests compare the fast
engine with, and the baseline the benchmark measures against.
"""

from __future__ import annotations

import math
import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..data.registry import DatasetSplits
from ..models.mask import NodeMask
from ..models.mlp import Layer, activation_fn
from .common import TrainResult, TrainSettings, epoch_order, make_optimizer, steps_per_epoch


class _Linear(nn.Module):
    """``nn.Linear``'s parameters, holding a copy of a given layer (no random init drawn first)."""

    def __init__(self, layer: Layer):
        super().__init__()
        self.weight = nn.Parameter(layer.weight.detach().clone())
        self.bias = nn.Parameter(layer.bias.detach().clone())


class MaskedMLP(nn.Module):
    """A full-width MLP whose removed nodes are zeroed by weight masks; no mask: the plain dense MLP."""

    def __init__(self, parent: list[Layer], mask: NodeMask | None, activation: str = "relu"):
        super().__init__()
        self.linears = nn.ModuleList()
        self.act = activation_fn(activation)
        self.masked = mask is not None
        device = parent[0].weight.device
        for layer in parent:
            self.linears.append(_Linear(layer))
        if not self.masked:
            return  # a dense network, trained as research code trains one: no multiplications by ones
        in_mask = torch.ones(parent[0].weight.shape[1], device=device)
        out_masks = [m.to(device) for m in mask.bool_tensors()] + [torch.ones(parent[-1].weight.shape[0], device=device)]
        for i, out_mask in enumerate(out_masks):
            self.register_buffer(f"weight_mask_{i}", torch.outer(out_mask, in_mask))
            self.register_buffer(f"bias_mask_{i}", out_mask.clone())
            in_mask = out_mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, (weight, bias) in enumerate(self._layers()):
            x = F.linear(x, weight, bias)
            if i < len(self.linears) - 1:
                x = self.act(x)
        return x

    def _layers(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The weights as they act: masked anew on every call, as ``torch.nn.utils.prune`` does."""
        if not self.masked:
            return [(l.weight, l.bias) for l in self.linears]
        return [
            (l.weight * getattr(self, f"weight_mask_{i}"), l.bias * getattr(self, f"bias_mask_{i}"))
            for i, l in enumerate(self.linears)
        ]

    def effective_layers(self) -> list[Layer]:
        """The masked weights as they act, full width."""
        return [Layer(w.detach(), b.detach()) for w, b in self._layers()]


@torch.no_grad()
def score_reference(
    parent: list[Layer],
    masks: list[NodeMask],
    x: torch.Tensor,
    y: torch.Tensor,
    score: str = "loss",
    activation: str = "relu",
) -> torch.Tensor:
    """``score_masks`` the plain way: one masked full-width network per candidate."""
    scores = []
    for mask in masks:
        loss, accuracy = _evaluate(MaskedMLP(parent, mask, activation), x, y)
        scores.append(loss if score == "loss" else accuracy)
    return torch.tensor(scores)


@torch.no_grad()
def _evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int | None = None,
              features: Callable[[torch.Tensor], torch.Tensor] | None = None) -> tuple[float, float]:
    """Mean loss and accuracy, in evaluation mode (BatchNorm's running statistics); the model is left in training mode.

    ``chunk`` rows at a time (convolutions' activations can be large), or all at once (None: the MLP's numbers as ever);
    ``features`` converts stored rows (``DatasetSplits.features``: uint8 images) to float inputs, chunk by chunk.
    """
    features = features or (lambda rows: rows)
    model.eval()
    try:
        if chunk is None or len(y) <= chunk:
            logits = model(features(x))
            return float(F.cross_entropy(logits, y)), float((logits.argmax(1) == y).float().mean())
        loss_sum, correct = 0.0, 0
        for start in range(0, len(y), chunk):
            logits = model(features(x[start : start + chunk]))
            yb = y[start : start + chunk]
            loss_sum += float(F.cross_entropy(logits, yb, reduction="sum"))
            correct += int((logits.argmax(1) == yb).sum())
        return loss_sum / len(y), correct / len(y)
    finally:
        model.train()


def train_reference(
    parent: list[Layer],
    mask: NodeMask | None,
    seed: int,
    data: DatasetSplits,
    settings: TrainSettings,
) -> tuple[TrainResult, MaskedMLP]:
    """Train one masked full-width network; returns its result and the trained model."""
    start = time.perf_counter()
    model = MaskedMLP(parent, mask, settings.activation)
    return train_module(model, seed, data, settings, start=start), model


def train_module(
    model: nn.Module,
    seed: int,
    data: DatasetSplits,
    settings: TrainSettings,
    eval_chunk: int | None = None,
    start: float | None = None,
    on_epoch: Callable[[int], None] | None = None,
) -> TrainResult:
    """Train ``model`` (any ``nn.Module`` of the data's examples) the plain way: ``torch.optim``, the seed's
    minibatch order, evaluation after every epoch, the stopping rule; it ends holding its final weights."""
    start = time.perf_counter() if start is None else start
    model.train()
    optimizer = make_optimizer(list(model.parameters()), settings)
    result = TrainResult()
    best_state = {k: v.clone() for k, v in model.state_dict().items()}
    n_train = len(data.y_train)
    for epoch in range(1, settings.epochs + 1):
        order = epoch_order(seed, epoch, n_train).to(data.x_train.device)
        draw = data.epoch_draw([seed], epoch)  # each example's augmentation (None: none)
        loss_sum, correct = 0.0, 0
        for step in range(steps_per_epoch(n_train, settings.batch_size)):
            idx = order[step * settings.batch_size : (step + 1) * settings.batch_size]
            logits = model(data.training_examples(idx.unsqueeze(0), draw)[0])
            loss = F.cross_entropy(logits, data.y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == data.y_train[idx]).sum())
        val_loss, val_acc = _evaluate(model, data.x_val, data.y_val, eval_chunk, data.features)
        result.train_loss.append(loss_sum / n_train)
        result.train_acc.append(correct / n_train)
        result.val_loss.append(val_loss)
        result.val_acc.append(val_acc)
        if data.has_monitor:
            monitor_loss, monitor_acc = _evaluate(model, data.x_monitor, data.y_monitor, eval_chunk, data.features)
            result.monitor_loss.append(monitor_loss)
            result.monitor_acc.append(monitor_acc)
        if on_epoch is not None:
            on_epoch(1)
        if not (math.isfinite(result.train_loss[-1]) and math.isfinite(val_loss)):
            result.diverged_epoch = epoch
            break
        if val_acc > result.best_val_acc or result.best_epoch == 0:
            result.best_epoch, result.best_val_acc = epoch, val_acc
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        if settings.should_stop(epoch, result.best_epoch):
            result.stop_epoch = epoch
            break
    if not result.diverged:
        result.final_test_loss, result.final_test_acc = _evaluate(model, data.x_test, data.y_test, eval_chunk, data.features)
        final_state = model.state_dict()
        final_state = {k: v.clone() for k, v in final_state.items()}
        model.load_state_dict(best_state)
        result.best_test_loss, result.best_test_acc = _evaluate(model, data.x_test, data.y_test, eval_chunk, data.features)
        model.load_state_dict(final_state)
    result.seconds = time.perf_counter() - start
    return result
