"""The fast engine: N compacted networks of one shape, trained as one.

Weights are stacked per layer (given ``(N, out, in)``; trained as
``(N, in, out)``, which the forward product reads without a transpose); one
``bmm`` per layer runs all N forward passes, and since the loss is the sum of
the N networks' own losses, each network's gradient is exactly its own. Every
network may have its own minibatch order (its seed's), gathered per step.

A network's numbers do not depend on the others in its stack, their number or
order (issue 19): the products are exact per network under MKL's strict mode
(``backprop``); the optimizer runs over one flat buffer in which each network's tensors are
padded to whole vector units, so that no element falls in its kernel's scalar
tail (``_FlatStack``); evaluation is chunked by rows in chunks that depend on
the network's shape alone.
"""

from __future__ import annotations

import math
import time
from typing import Callable

import torch

from ..data.registry import DatasetSplits
from ..models.mlp import Layer
from .backprop import PARALLEL_GRAIN, forward, loss_and_correct, loss_and_gradients
from .common import TrainResult, TrainSettings, epoch_order, record_epoch, steps_per_epoch
from .fused_optimizer import FusedOptimizer

# One chunk of stacked evaluation: its widest activations take at most this many bytes.
EVAL_CHUNK_BYTES = 4 << 20
# Networks evaluated together. The chunk's rows are sized for this many, never for the
# stack's size: a network's rows per chunk (and so its sums) are then its own.
EVAL_NETWORKS = 8
# Elements (float32) in a multiple of which each network's part of the optimizer's buffer is
# laid out: 256 bytes, whole 64-byte units of the fused optimizers (and whole AVX-512 vectors).
VECTOR_STEP = 64
# Training examples gathered at once, for the next few steps of every seed.
GATHER_BYTES = 16 << 20


@torch.no_grad()
def evaluate_stacked(layers: list[Layer], x: torch.Tensor, y: torch.Tensor, activation: str = "relu",
                     features: Callable[[torch.Tensor], torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean loss and accuracy ``(N,)`` of each stacked network on a shared split, chunked by rows; ``features``
    converts a chunk of stored rows (``DatasetSplits.features``: uint8 images) to float inputs.

    Each network's numbers are its own, whatever else is stacked with it.
    """
    n = layers[0].weight.shape[0]
    widest = max(l.weight.shape[1] for l in layers)
    # Chunks of a few MB, as in scoring: products whose operands stay in cache run faster.
    rows = max(1, EVAL_CHUNK_BYTES // (4 * EVAL_NETWORKS * max(widest, 1)))
    # Under the size from which PyTorch sums one network's losses with several threads
    # (and a stack of one otherwise than a larger stack).
    rows = min(rows, PARALLEL_GRAIN // 2)
    loss_sum = torch.zeros(n, dtype=torch.float64, device=x.device)
    correct = torch.zeros(n, dtype=torch.long, device=x.device)
    parts = [slice(first, min(first + EVAL_NETWORKS, n)) for first in range(0, n, EVAL_NETWORKS)]
    for start in range(0, len(y), rows):
        xb, yb = x[start : start + rows], y[start : start + rows]
        xb = xb if features is None else features(xb)  # converted once a chunk, for every network
        for part in parts:
            k = part.stop - part.start
            weights, biases = [l.weight[part].transpose(1, 2) for l in layers], [l.bias[part] for l in layers]
            logits = forward(weights, biases, xb.expand(k, -1, -1), activation)[0]
            l, c, _ = loss_and_correct(logits, yb.expand(k, -1))
            loss_sum[part] += l.double()
            correct[part] += c
    return (loss_sum / len(y)).float(), correct.double().div(len(y)).float()


class _FlatStack:
    """The stacked parameters (or their gradients) as views of one flat buffer.

    Each network's part of each tensor is padded to whole ``VECTOR_STEP``s.
    PyTorch's fused Adam and SGD run a tensor in units of 64 bytes and the
    last, partial unit through a scalar loop that rounds apart from the vector
    loop (measured: Adam's update of the output bias of seed 2 differed
    between stacks of 3 and 1 from step 23 on); over one buffer of whole units
    only, no element is in it, and a thread's part of it is whole units too.
    The padding is zero and stays zero.
    """

    def __init__(self, n: int, shapes: list[tuple[int, ...]], like: torch.Tensor):
        slabs = [-(-math.prod(shape) // VECTOR_STEP) * VECTOR_STEP for shape in shapes]
        self.buffer = torch.zeros(n * sum(slabs), dtype=like.dtype, device=like.device)
        self.views, offset = [], 0
        for shape, slab in zip(shapes, slabs):
            strides = [1]
            for d in reversed(shape[1:]):
                strides.insert(0, strides[0] * d)
            self.views.append(self.buffer.as_strided((n, *shape), (slab, *strides), offset))
            offset += n * slab


def _per_network(per_seed: torch.Tensor, row_of_seed: torch.Tensor) -> torch.Tensor:
    """Network i's slice of a per-seed tensor: a view when there is one seed, else a gather."""
    if per_seed.shape[0] == 1:
        return per_seed.expand(len(row_of_seed), *per_seed.shape[1:])
    return per_seed.index_select(0, row_of_seed)


def train_stacked(
    layers: list[Layer],
    seeds: list[int],
    data: DatasetSplits,
    settings: TrainSettings,
    on_epoch: Callable[[int], None] | None = None,
) -> list[TrainResult]:
    """Train N stacked networks; network i follows the minibatch order of ``seeds[i]``.

    ``layers`` are the stacked initial weights (not modified). Returns one
    ``TrainResult`` per network, in order. ``on_epoch(n)`` is called after each
    epoch with the number of networks, for progress bars.
    """
    start_time = time.perf_counter()
    n = layers[0].weight.shape[0]
    device = layers[0].weight.device
    # Weights are trained as (N, in, out), so that the forward product reads
    # them without a transpose; ``as_layers`` gives the (N, out, in) views back.
    initial = [t.detach() for w, b in layers for t in (w.transpose(1, 2), b)]
    shapes = [tuple(t.shape[1:]) for t in initial]
    stack, grad_stack = _FlatStack(n, shapes, initial[0]), _FlatStack(n, shapes, initial[0])
    params = stack.views
    for p, t in zip(params, initial):
        p.copy_(t)

    def as_layers(tensors: list[torch.Tensor]) -> list[Layer]:
        return [Layer(tensors[2 * i].transpose(1, 2), tensors[2 * i + 1]) for i in range(len(layers))]

    optimizer = FusedOptimizer([stack.buffer], settings)
    weights, biases = params[0::2], params[1::2]
    n_train = len(data.y_train)
    results = [TrainResult() for _ in range(n)]
    best = [p.detach().clone() for p in params]
    best_val_acc = torch.full((n,), -1.0, device=device)
    best_epoch = torch.zeros(n, dtype=torch.long, device=device)
    diverged_at: list[int | None] = [None] * n
    distinct_seeds = sorted(set(seeds))
    row_of_seed = torch.tensor([distinct_seeds.index(s) for s in seeds], device=device)

    # The stopping rule: a stopped network keeps its slot in the stack (so the
    # others' shapes, and numbers, never depend on when it stopped) but nothing
    # of it is recorded any more; its weights at the stop epoch are kept here.
    stopped_at: list[int | None] = [None] * n
    frozen = [p.detach().clone() for p in params] if settings.patience > 0 else []
    row_bytes = len(distinct_seeds) * settings.batch_size * data.x_train[0].numel() * 4  # gathered as float32
    steps_per_gather = max(1, GATHER_BYTES // max(row_bytes, 1))
    for epoch in range(1, settings.epochs + 1):
        orders = torch.stack([epoch_order(s, epoch, n_train) for s in distinct_seeds]).to(device)  # (seeds, n_train)
        draw = data.epoch_draw(distinct_seeds, epoch)  # each example's augmentation, per seed (None: none)
        step_losses, step_correct = [], []
        for step in range(steps_per_epoch(n_train, settings.batch_size)):
            if step % steps_per_gather == 0:
                # The examples of the next few steps in each seed's order, gathered
                # at once (bounded memory); a step's minibatch is then a slice.
                block = orders[:, step * settings.batch_size : (step + steps_per_gather) * settings.batch_size]
                x_block, y_block = data.training_examples(block, draw), data.y_train[block]  # (seeds, rows, ...)
            batch = slice((step % steps_per_gather) * settings.batch_size, (step % steps_per_gather + 1) * settings.batch_size)
            xb = _per_network(x_block[:, batch], row_of_seed)
            yb = _per_network(y_block[:, batch], row_of_seed)
            grads, losses, c = loss_and_gradients(weights, biases, xb, yb, settings.activation)
            for g, view in zip(grads, grad_stack.views):
                view.copy_(g)
            del grads  # freed now, so that the next step reuses their memory while it is in cache
            optimizer.step([grad_stack.buffer])
            step_losses.append(losses)
            step_correct.append(c)
        loss_sum = torch.stack(step_losses).double().sum(dim=0)
        correct = torch.stack(step_correct).sum(dim=0)
        current = as_layers([p.detach() for p in params])
        val_loss, val_acc = evaluate_stacked(current, data.x_val, data.y_val, settings.activation, data.features)
        if data.has_monitor:
            monitor_loss, monitor_acc = evaluate_stacked(current, data.x_monitor, data.y_monitor, settings.activation, data.features)
        train_loss = (loss_sum / n_train).float()
        train_acc = correct.double().div(n_train).float()
        record_epoch(results, epoch, train_loss, train_acc, val_loss, val_acc,
                     (monitor_loss, monitor_acc) if data.has_monitor else None, diverged_at, stopped_at)
        # Once diverged or stopped, a network's later epochs are not recorded and cannot be its best.
        alive = torch.tensor([d is None and s is None for d, s in zip(diverged_at, stopped_at)], device=device)
        improved = alive & (val_acc > best_val_acc)
        best_val_acc = torch.where(improved, val_acc, best_val_acc)
        best_epoch = torch.where(improved, torch.full_like(best_epoch, epoch), best_epoch)
        # Only the improved networks' weights are copied (all of them, mostly, in early epochs).
        rows = torch.nonzero(improved).flatten()
        for b, p in zip(best, params):
            b.index_copy_(0, rows, p.index_select(0, rows))
        if settings.patience > 0:
            stopping = [i for i in range(n) if alive[i] and settings.should_stop(epoch, int(best_epoch[i]))]
            for i in stopping:
                stopped_at[i] = epoch
            rows = torch.tensor(stopping, dtype=torch.long, device=device)
            for f, p in zip(frozen, params):
                f.index_copy_(0, rows, p.index_select(0, rows))
        if on_epoch is not None:
            on_epoch(n)
        if all(d is not None or s is not None for d, s in zip(diverged_at, stopped_at)):
            break  # every network has stopped (or diverged): the rest would not be recorded

    if settings.patience > 0:
        # Each network's final weights: those of its stop epoch, or of the last epoch.
        stopped_rows = torch.tensor([s is not None for s in stopped_at], device=device)
        for f, p in zip(frozen, params):
            mask = stopped_rows.view(-1, *([1] * (p.dim() - 1)))
            p.copy_(torch.where(mask, f, p))
    final = as_layers([p.detach() for p in params])
    final_loss, final_acc = evaluate_stacked(final, data.x_test, data.y_test, settings.activation, data.features)
    # A network whose best epoch is its last has its best weights in hand
    # already: only the others are evaluated again.
    best_loss, best_acc = final_loss.clone(), final_acc.clone()
    alive = torch.tensor([d is None for d in diverged_at], device=device)
    last_epoch = torch.tensor([settings.epochs if s is None else s for s in stopped_at], device=device)
    earlier = torch.nonzero(alive & (best_epoch > 0) & (best_epoch < last_epoch)).flatten()
    if len(earlier):
        subset = [Layer(l.weight[earlier], l.bias[earlier]) for l in as_layers(best)]
        best_loss[earlier], best_acc[earlier] = evaluate_stacked(subset, data.x_test, data.y_test, settings.activation, data.features)
    seconds = (time.perf_counter() - start_time) / n
    for i, r in enumerate(results):
        r.seconds = seconds
        r.final_weights = [Layer(layer.weight[i].clone(), layer.bias[i].clone()) for layer in final]
        r.diverged_epoch = diverged_at[i]
        r.stop_epoch = stopped_at[i]
        if int(best_epoch[i]) > 0:  # the best finite epoch, also for a network that diverged later
            r.best_epoch, r.best_val_acc = int(best_epoch[i]), float(best_val_acc[i])
        if r.diverged:
            continue  # a diverged network has no test metrics: NaN, never averaged
        r.final_test_loss, r.final_test_acc = float(final_loss[i]), float(final_acc[i])
        r.best_test_loss, r.best_test_acc = float(best_loss[i]), float(best_acc[i])
    return results
