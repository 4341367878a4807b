"""Stacked training and scoring of N compacted convolutional networks of one shape.

Every network keeps its own weights, BatchNorm running statistics, optimizer
state (one fused Adam/SGD kernel a step, element by element as
``torch.optim``), its seed's minibatch order, the stopping rule and
divergence detection, as ``engine/stacked.py`` does for the MLP. One Python
loop and one backward pass per step serve all N networks.

How the convolutions are computed (``choose_strategy``, for training and for
evaluation apart), three strategies:

- ``loop``: each network's compacted convolutions as their own oneDNN call,
  channels last (a 1-D sequence as an image of height 1), its hidden FC
  layers and head as ``F.linear``; the networks share the step, the backward
  pass and the optimizer kernel. In 1-D the first convolution is instead one
  product of the unfolded input, unfolded once for the networks that share a
  minibatch: oneDNN's convolution of a one-channel input runs a slow path
  from 16 output channels on (128 rows, 64 channels: 420 us a network
  against 45 for the product; 1000 rows, 128 channels: 11.9 ms against 0.8,
  which the masked reference pays in every step).
- ``loop_first``: the same, channels first (oneDNN's 1-D convolutions in
  1-D), which is faster for networks of few channels.
- ``unfold``: all networks at once, channels first and the batch last
  (``(N, C, *spatial, B)``, so that every copied run is a whole batch); a
  convolution is the unfolded input (the input each output position's
  kernel reads, one strided view copied once, and a row of ones for the
  bias) times the weight, one ``bmm`` for the N networks; its backward
  written out (``UnfoldConv``: input and weight gradients one ``bmm`` each);
  max-pooling a max over each window's positions; hidden FC layers and the
  head one ``bmm`` each (``StackedLinear``). The products have the channels
  in their short dimension, where MKL multiplies thin matrices 2 to 6 times
  faster than with the positions there.

A trial's numbers must not depend on which other trials share its stack
(DESIGN.md, "Reproducibility at any scale"), and a network trains bit for bit
the same in a stack of 1 and of 3 (``tests/engine/test_conv_stacked.py``, at
1 and 2 threads). ``loop`` gives each network its own calls of fixed shapes.
``unfold`` multiplies the stack with ``stacked_bmm``: under MKL's strict mode
a batched product of two or more matrices gives each matrix the same bits in
any batch (each on one thread), but ``torch.bmm`` of a batch of one splits
its one product among the threads, and with 2 threads gives other bits (63
of 630 of this engine's shapes; ``benchmarks/conv_strategies.py
--bitwise``); so a stack of one is multiplied as a stack of two. BatchNorm,
cross-entropy and the sums of a bias's gradient run network by network; the
element-wise functions give an element the same bits in any tensor.

Measured and rejected: one grouped convolution with ``groups=N`` over the
stacked networks (what ``torch.func.vmap`` of a convolution becomes). It is
not bitwise independent of N: oneDNN picks its algorithm by the whole
convolution's shape, so a network's output or gradients change in the last
bits with the number of groups (G=1 against G=2 for a 1-D first layer and a
13-channel layer; for a 2-D first layer of 3 input channels, G=3, 8 and 17
against G=2; ``benchmarks/conv_strategies.py --bitwise``), and it is slower
than a per-network strategy in every case but the thinnest 2-D one.

Milliseconds per training step of 16 networks (forward, backward, optimizer)
and per evaluation of 1000 rows by the 16, AMD EPYC (2 cores, Zen 4), one
thread, while other work shared the machine (rows from separate runs:
compare within a row); 1-D batch 128, 2-D batch 32:

=====================================  =================  ===================  ===========
case (kept channels)                   step: loop,        evaluation: loop,    chosen
                                       loop_first,        loop_first, unfold   (training,
                                       unfold                                  evaluation)
=====================================  =================  ===================  ===========
cnn1d 128x3, s=0.5 (64)                62, 63, 78         110, 131, 400        loop, loop
cnn1d 128x3, s=0.75 (32)               34, -, 36          45, -, 222           loop, loop
cnn1d 128x3, s=0.8 (26)                31, -, 28          40, -, 162           unfold, loop
cnn1d 128x3, s=0.9 (13)                21, 25, 12         23, 20, 58           unfold, loop_first
cnn1d 128x3, s=0.98 (3)                13, 14, 4.0        15, 10, 11           unfold, loop_first
cnn Conv-4, s=0.5 (32, 32, 64, 64)     981, 1107, -       593, 889, -          loop, loop
cnn Conv-4, s=0.8 (13, 13, 26, 26)     215, 320, -        141, 257, -          loop, loop
cnn Conv-4, s=0.9 (6, 6, 13, 13)       108, 153, -        77, 117, -           loop, loop
cnn Conv-4, s=0.98 (1, 1, 3, 3)        77, 74, -          44, 34, -            loop_first
=====================================  =================  ===================  ===========

Before this table (same machine, one thread): the unfolded product channels
last (positions in the short dimension) took 14 ms a step at s=0.9 and 8.9
at s=0.98, and the channels-first loop with oneDNN's own first convolution
was the only loop. At s=0.5 in 1-D the step is bound by oneDNN's
convolutions of 64 channels (the second layer's backward, stride 2, 1.6 ms
of a network's 3.9), which run at most of the core's peak: the gain over
the masked reference is its FLOP ratio (4x) plus what the reference loses
on its 128-channel first convolution. In 2-D the unfolded input is k*k = 9
times the activations and its backward adds 9 shifted windows: 2-D never
unfolds. The strategy changes no number beyond float rounding: all three
are held to the reference by the same tests.
"""

from __future__ import annotations

import itertools
import math
import time
from functools import partial
from typing import Callable

import torch
import torch.nn.functional as F

from ..data.registry import DatasetSplits
from ..models.conv import BN_EPS, BN_MOMENTUM, ConvLayer, ConvNet
from .common import TrainResult, TrainSettings, epoch_order, record_epoch, steps_per_epoch
from .fused_optimizer import FusedOptimizer

#: Networks whose widest convolution keeps at most this many channels are trained with ``unfold``, by dimensions
#: (measured crossover between 26 and 32 channels; 2-D: never, see the module docstring).
UNFOLD_MAX_CHANNELS = {1: 28, 2: 0}
#: Networks whose widest convolution keeps at least this many channels run ``loop`` channels last, by dimensions
#: (below, channels first, ``loop_first``, is faster). In 1-D the first convolution is then one product of the
#: unfolded input: oneDNN's 1-D convolution of a one-channel input is up to 10 times slower from 16 channels on.
CHANNELS_LAST_MIN_CHANNELS = {1: 16, 2: 4}
#: Rows evaluated at once (the reference's chunk; fixed, so that no network's sums depend on the stack).
EVAL_ROWS = 1024
#: Candidates scored at once: bounds the memory of scoring any K.
SCORE_CHUNK = 16

ACTIVATIONS = {"relu": F.relu, "tanh": torch.tanh, "gelu": F.gelu}
#: In place, where no backward pass needs the input (evaluation): a tenth of an evaluation's time is ReLU's output.
ACTIVATIONS_INPLACE = {"relu": F.relu_, "tanh": torch.tanh_, "gelu": F.gelu}
#: Running mean and variance ``(N, out)`` of a convolution's BatchNorm, or None without BatchNorm.
Stats = list["tuple[torch.Tensor, torch.Tensor] | None"]


def stack_layers(networks: list[list[ConvLayer]]) -> list[ConvLayer]:
    """Compact networks of one shape, stacked per parameter along a new first dimension."""
    return [ConvLayer(*(None if parts[0] is None else torch.stack(parts) for parts in zip(*layers)))
            for layers in zip(*networks)]


def unstack(layers: list[ConvLayer], i: int) -> list[ConvLayer]:
    """Network ``i``'s layers: views into the stacked tensors."""
    return [ConvLayer(*(None if t is None else t[i] for t in layer)) for layer in layers]


def initial_stats(layers: list[ConvLayer]) -> Stats:
    """BatchNorm's running statistics at their start (mean 0, variance 1) for every stacked network."""
    return [None if l.bn_weight is None else (torch.zeros_like(l.bn_weight), torch.ones_like(l.bn_weight))
            for l in layers]


def choose_strategy(family: ConvNet, layers: list[ConvLayer], training: bool = True) -> str:
    """How to compute the stacked networks ``layers``, in training or in evaluation (measured: see the module
    docstring): ``loop`` (channels last), ``loop_first`` (channels first) or ``unfold``.

    ``unfold`` only on the CPU: its products span the stack, and that a network gets the same bits in any stack
    is shown for MKL's batched products (strict mode, ``stacked_bmm``), not for cuBLAS, which may choose its
    kernel by the batch count; on another device the per-network loops keep a trial independent of its stack."""
    n_conv = len(family.channels)
    widest = max(l.weight.shape[1] for l in layers[:n_conv])
    on_cpu = layers[0].weight.device.type == "cpu"
    if training and on_cpu and widest <= UNFOLD_MAX_CHANNELS[family.dims]:
        return "unfold"
    return "loop" if widest >= CHANNELS_LAST_MIN_CHANNELS[family.dims] else "loop_first"


# -- forward passes ---------------------------------------------------------
def _batch_norm(h, stats, i, n, layer, training):
    mean, var = stats[i]
    return F.batch_norm(h, mean[n], var[n], layer.bn_weight, layer.bn_bias, training, BN_MOMENTUM, BN_EPS)


def first_layer_cols(family: ConvNet, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
    """The unfolded input ``(B*positions, C*k)`` of a sequence ``x`` ``(B, C, L)`` for the first 1-D convolution
    (the only one the loop computes as a product), its columns in the order of ``weight.view(out, -1)``, and the
    output's length."""
    k, s, p = family.kernel, family.stride, family.padding
    cols = F.pad(x, (p, p)).unfold(2, k, s)  # (B, C, L', k)
    return cols.permute(0, 2, 1, 3).reshape(-1, x.shape[1] * k), (cols.shape[2],)


def _first_layer(cols: torch.Tensor, out_size: tuple[int, ...], layer: ConvLayer) -> torch.Tensor:
    """The first convolution as one product of the unfolded input: ``(B, out, *spatial)`` logically,
    channels last in memory (``(B, out, 1, L)`` in 1-D), as the convolutions after it take it."""
    h = torch.addmm(layer.bias, cols, layer.weight.reshape(layer.weight.shape[0], -1).t())
    b = cols.shape[0] // math.prod(out_size)
    return h.view(b, *((1,) if len(out_size) == 1 else ()), *out_size, -1).permute(0, 3, 1, 2)


def forward_loop(family: ConvNet, nets: list[list[ConvLayer]], stats: Stats, xs: list[torch.Tensor],
                 training: bool, last: bool = True) -> list[torch.Tensor]:
    """Each network's logits ``(B, classes)`` on its own input ``xs[n]`` ``(B, C, *spatial)``: its own calls.

    Channels last (``last``, strategy ``loop``): oneDNN's 2-D convolutions on channels-last activations (a 1-D
    sequence as an image of height 1), and in 1-D the first convolution as a product of the unfolded input,
    unfolded once for the networks that share it. Otherwise (strategy ``loop_first``) oneDNN's convolutions
    channels first.
    """
    first_product = last and family.dims == 1
    if family.dims == 1 and last:
        conv, stride, padding, pool = F.conv2d, (1, family.stride), (0, family.padding), partial(F.max_pool2d, kernel_size=(1, 2))
    elif family.dims == 1:
        conv, stride, padding, pool = F.conv1d, family.stride, family.padding, partial(F.max_pool1d, kernel_size=2)
    else:
        conv, stride, padding, pool = F.conv2d, family.stride, family.padding, partial(F.max_pool2d, kernel_size=2)
    act = (ACTIVATIONS if torch.is_grad_enabled() else ACTIVATIONS_INPLACE)[family.activation]
    n_conv = len(family.channels)
    shared: dict[int, object] = {}  # per distinct input: its unfolded or channels-last form
    logits = []
    for n, (layers, x) in enumerate(zip(nets, xs)):
        if id(x) not in shared:
            shared[id(x)] = (first_layer_cols(family, x) if first_product
                             else x.contiguous(memory_format=torch.channels_last) if last else x)
        h = shared[id(x)]
        for i, layer in enumerate(layers):
            if i == 0 and first_product:
                h = _first_layer(*h, layer)
            elif i < n_conv:
                weight = layer.weight.unsqueeze(2) if last and family.dims == 1 else layer.weight
                h = conv(h, weight, layer.bias, stride=stride, padding=padding)
                if last:
                    # A one-channel input is both layouts at once, so oneDNN answers channels first: turn it
                    # (free where it already is; the layout follows the shape, never the stack).
                    h = h.contiguous(memory_format=torch.channels_last)
            else:
                h = F.linear(h.flatten(1) if i == n_conv else h, layer.weight, layer.bias)
            if i < n_conv and layer.bn_weight is not None:
                h = _batch_norm(h, stats, i, n, layer, training)
            if i < len(layers) - 1:
                h = act(h)
            if i < n_conv and family.pools_after(i):
                h = pool(h)
        logits.append(h)
    return logits


def _unfolded(h: torch.Tensor, k: int, stride: int, pad: int, out_size: tuple[int, ...]) -> torch.Tensor:
    """The unfolded input ``(N, 1 + C*k**d, positions*B)`` of ``h`` ``(N, C, *spatial, B)`` (channels first, the
    batch last): the first row is ones, the bias's input (first, so that the product starts from the bias, as
    ``baddbmm`` does); row 1 + (channel, kernel position) holds, for every output position and example, the
    padded input its kernel reads there (in the order of ``weight.view(out, -1)``'s columns). The batch last
    makes every copied run B contiguous values."""
    n, c, *spatial, b = h.shape
    d = len(spatial)
    padded = F.pad(h, (0, 0) + (pad, pad) * d)
    st = padded.stride()
    space = st[2 : 2 + d]
    view = padded.as_strided((n, c, *(k,) * d, *out_size, b), (st[0], st[1], *space, *(stride * t for t in space), st[-1]))
    cols = h.new_empty(n, 1 + c * k**d, math.prod(out_size) * b)
    cols[:, 0].fill_(1.0)
    cols[:, 1:].view(n, c, *(k,) * d, *out_size, b).copy_(view)
    return cols


def stacked_bmm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``torch.bmm(a, b)``, with each network's matrix computed the same way whatever the stack's size.

    A batch of two or more matrices is multiplied matrix by matrix, each on one thread, and under MKL's strict
    mode each gets the same bits in any such batch; a batch of one is one product split among the threads,
    which gives other bits in the last place (with 2 threads: 63 of 630 shapes of this engine's products,
    ``benchmarks/conv_strategies.py --bitwise``). So a stack of one is multiplied as a stack of two, each
    operand in the same layout (rows or columns contiguous: MKL's transposed and plain products differ too).
    """
    a, b = _canonical(a), _canonical(b)
    if a.shape[0] != 1:
        return torch.bmm(a, b)
    return torch.bmm(_twice(a), _twice(b))[:1]


def _canonical(t: torch.Tensor) -> torch.Tensor:
    """``t`` if its matrices are contiguous or transposed contiguous, else a contiguous copy."""
    return t if t.is_contiguous() or t.transpose(1, 2).is_contiguous() else t.contiguous()


def _twice(t: torch.Tensor) -> torch.Tensor:
    """A stack of two copies of the one matrix ``t``, with ``t``'s strides (a size-1 dimension's too: they choose
    MKL's leading dimension)."""
    inner = t.stride()[1:]
    span = sum((size - 1) * stride for size, stride in zip(t.shape[1:], inner)) + 1
    out = t.new_empty(2 * span).as_strided((2, *t.shape[1:]), (span, *inner))
    return out.copy_(t.expand(2, *t.shape[1:]))


def _row_sums(grad: torch.Tensor) -> torch.Tensor:
    """Each network's sum over rows ``(N, out)`` of ``grad`` ``(N, rows, out)``, as a product with a row of
    ones: a reduction's split among threads depends on the whole tensor's size, a product's does not."""
    ones = grad.new_ones(grad.shape[0], 1, grad.shape[1])
    return stacked_bmm(ones, grad).squeeze(1)


class StackedLinear(torch.autograd.Function):
    """N stacked linear layers: ``x`` ``(N, B, in)``, ``weight`` ``(N, out, in)`` (as ``nn.Linear`` holds it),
    ``bias`` ``(N, out)`` -> ``(N, B, out)``; forward, input and weight gradients one ``bmm`` each."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        return stacked_bmm(x, weight.transpose(1, 2)).add_(bias.unsqueeze(1))

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad_x = stacked_bmm(grad, weight) if ctx.needs_input_grad[0] else None
        return grad_x, stacked_bmm(grad.transpose(1, 2), x), _row_sums(grad)


class UnfoldConv(torch.autograd.Function):
    """N stacked convolutions (1-D or 2-D), channels first, as one ``bmm`` of the unfolded input; backward written out.

    ``h`` ``(N, C, *spatial, B)``, ``weight`` ``(N, out, 1 + C*k**d)`` (the bias, then ``nn.Conv*d``'s weight
    flattened) -> ``(N, out, *spatial', B)``. The products have the output channels and the input rows
    in their short dimensions, where MKL runs thin matrices 2 to 6 times faster than with the positions there.
    Forward, input and weight gradients (the bias's too, from the row of ones) are one ``bmm`` each for the whole
    stack (``stacked_bmm``: each network's matrix gets the same bits in any stack). Autograd through the
    unfolding's slices would write a zero-filled input-sized gradient per kernel position; here they are added
    into one buffer.
    """

    @staticmethod
    def forward(ctx, h, weight, k: int, stride: int, pad: int):
        n, c, *spatial, b = h.shape
        out_size = tuple((size + 2 * pad - k) // stride + 1 for size in spatial)
        cols = _unfolded(h, k, stride, pad, out_size)
        ctx.save_for_backward(cols, weight)
        ctx.geometry = (tuple(spatial), c, k, stride, pad, out_size)
        return stacked_bmm(weight, cols).view(n, -1, *out_size, b)

    @staticmethod
    def backward(ctx, grad):
        cols, weight = ctx.saved_tensors
        spatial, c, k, stride, pad, out_size = ctx.geometry
        n, b, d = grad.shape[0], grad.shape[-1], len(spatial)
        grad = grad.reshape(n, grad.shape[1], -1)
        grad_weight = stacked_bmm(grad, cols.transpose(1, 2))
        # The bias's gradient (column 0) as each network's own sum over rows rather than the product's with the
        # ones: before BatchNorm it is zero up to rounding, which Adam turns into steps of size lr, and the
        # product's rounding drifted further from the reference's (2-D, BatchNorm, Adam: loss 1.1e-4 apart
        # after 3 epochs, against 1e-4 allowed).
        grad_weight[:, :, 0] = torch.stack([g.sum(1) for g in grad.unbind(0)])
        if not ctx.needs_input_grad[0]:  # the first convolution: its input is data
            return None, grad_weight, None, None, None
        grad_cols = stacked_bmm(weight[:, :, 1:].transpose(1, 2), grad).view(n, c, *(k,) * d, *out_size, b)
        grad_padded = grad.new_zeros(n, c, *(size + 2 * pad for size in spatial), b)
        for taps in itertools.product(range(k), repeat=d):
            window = tuple(slice(t, t + stride * (o - 1) + 1, stride) for t, o in zip(taps, out_size))
            grad_padded[(slice(None), slice(None), *window)] += grad_cols[(slice(None), slice(None), *taps)]
        inside = tuple(slice(pad, pad + size) for size in spatial)
        return grad_padded[(slice(None), slice(None), *inside)], grad_weight, None, None, None


def _unfold_conv(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, family: ConvNet) -> torch.Tensor:
    """``weight`` and ``bias`` as ``nn.Conv*d`` holds them, stacked ``(N, out, C, *kernel)`` and ``(N, out)``."""
    folded = torch.cat([bias.unsqueeze(2), weight.flatten(2)], dim=2)
    return UnfoldConv.apply(h, folded, family.kernel, family.stride, family.padding)


def _max_pool(h: torch.Tensor) -> torch.Tensor:
    """2x max-pooling of ``h`` ``(N, C, *spatial, B)``, as ``nn.MaxPool*d(2)``: odd edges dropped, the first
    maximum of a window (in its row-major order) takes the gradient."""
    n, c, *spatial, b = h.shape
    d = len(spatial)
    h = h[(slice(None), slice(None), *(slice(0, size // 2 * 2) for size in spatial))]
    split = h.reshape(n, c, *(x for size in spatial for x in (size // 2, 2)), b)
    # (N, C, o1, 2, o2, 2, B) -> (N, C, o1, o2, B, 2, 2): the window's positions last, row-major
    order = (0, 1, *(2 + 2 * i for i in range(d)), 2 + 2 * d, *(3 + 2 * i for i in range(d)))
    return split.permute(order).reshape(n, c, *(size // 2 for size in spatial), b, 2**d).max(-1).values


def forward_unfold(family: ConvNet, layers: list[ConvLayer], stats: Stats, x: torch.Tensor,
                   training: bool) -> list[torch.Tensor]:
    """Each network's logits ``(B, classes)``; ``x`` ``(N, B, C, *spatial)``, all N networks' convolutions as one ``bmm``."""
    act = (ACTIVATIONS if torch.is_grad_enabled() else ACTIVATIONS_INPLACE)[family.activation]
    n_conv = len(family.channels)
    h = x.movedim(1, -1)  # channels first, the batch last: (N, C, *spatial, B)
    for i, layer in enumerate(layers[:n_conv]):
        h = _unfold_conv(h, layer.weight, layer.bias, family)
        if layer.bn_weight is not None:
            # Per network, its (1, C, *spatial, B): a channel's statistics over the positions and the batch, as BatchNorm's.
            parts = [_batch_norm(part.unsqueeze(0), stats, i, j, ConvLayer(None, None, g, s), training)
                     for j, (part, g, s) in enumerate(zip(h.unbind(0), layer.bn_weight.unbind(0), layer.bn_bias.unbind(0)))]
            h = torch.cat(parts)
        h = act(h)
        if family.pools_after(i):
            h = _max_pool(h)
    h = h.movedim(-1, 1).flatten(2)  # (N, B, C*positions): channel-major, as nn.Flatten
    rest = layers[n_conv:]
    for j, layer in enumerate(rest):
        h = StackedLinear.apply(h, layer.weight, layer.bias)
        if j < len(rest) - 1:
            h = act(h)
    return list(h.unbind(0))


def _forward(family: ConvNet, strategy: str, layers: list[ConvLayer], stats: Stats, x: torch.Tensor,
             training: bool) -> list[torch.Tensor]:
    """Each stacked network's logits on the same input ``x`` ``(B, C, *spatial)``."""
    n = layers[0].weight.shape[0]
    if strategy == "unfold":
        return forward_unfold(family, layers, stats, x.expand(n, *x.shape), training)
    return forward_loop(family, [unstack(layers, i) for i in range(n)], stats, [x] * n, training, strategy == "loop")


@torch.no_grad()
def evaluate_stacked(family: ConvNet, layers: list[ConvLayer], stats: Stats | None, x: torch.Tensor, y: torch.Tensor,
                     strategy: str | None = None, features: Callable[[torch.Tensor], torch.Tensor] | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean loss and accuracy ``(N,)`` (float64) of each stacked network on ``(x, y)``, BatchNorm in evaluation mode.

    Rows are read ``EVAL_ROWS`` at a time, summed per network as the reference's ``_evaluate`` sums them;
    ``features`` converts each chunk of stored rows (``DatasetSplits.features``: uint8 images) to float inputs.
    """
    strategy = strategy or choose_strategy(family, layers, training=False)
    stats = initial_stats(layers) if stats is None else stats
    n = layers[0].weight.shape[0]
    loss_sum = torch.zeros(n, dtype=torch.float64, device=x.device)
    correct = torch.zeros(n, dtype=torch.long, device=x.device)
    for start in range(0, len(y), EVAL_ROWS):
        yb = y[start : start + EVAL_ROWS]
        xb = x[start : start + EVAL_ROWS]
        logits = _forward(family, strategy, layers, stats, xb if features is None else features(xb), False)
        loss_sum += torch.stack([F.cross_entropy(l, yb, reduction="sum") for l in logits]).double()
        correct += torch.stack([(l.argmax(1) == yb).sum() for l in logits])
    return loss_sum / len(y), correct.double() / len(y)


@torch.no_grad()
def score_stacked(family: ConvNet, parent: list[ConvLayer], masks, x: torch.Tensor, y: torch.Tensor, score: str) -> torch.Tensor:
    """Each untrained candidate's mean loss or accuracy ``(K,)``, ``SCORE_CHUNK`` compacted candidates at a time."""
    values = []
    for start in range(0, len(masks), SCORE_CHUNK):
        layers = stack_layers([family.compact(parent, m) for m in masks[start : start + SCORE_CHUNK]])
        loss, acc = evaluate_stacked(family, layers, None, x, y)
        values.append(loss if score == "loss" else acc)
    return torch.cat(values).float().cpu() if values else torch.empty(0)


# -- training ----------------------------------------------------------------
class _Parameters:
    """The stacked parameters (no autograd) and, per strategy, the leaf tensors autograd differentiates.

    ``loop``, ``loop_first``: each network's own views as leaves (indexing a stacked leaf would make
    every network's backward write a full-stack gradient). ``unfold``: the stacked
    tensors themselves. Either way the optimizer sees per-network tensors, so its
    element-wise kernel treats a network the same whatever the stack.
    """

    def __init__(self, layers: list[ConvLayer], strategy: str):
        self.strategy = strategy
        self.stacked = [ConvLayer(*(None if t is None else t.detach().clone() for t in l)) for l in layers]
        self.n = layers[0].weight.shape[0]
        self.flat = [t for l in self.stacked for t in l if t is not None]
        if strategy != "unfold":
            self.nets = [unstack(self.stacked, i) for i in range(self.n)]
            self.leaves = [net[li][f] for li, layer in enumerate(self.stacked) for f, t in enumerate(layer)
                           if t is not None for net in self.nets]
        else:
            self.leaves = self.flat
        for t in self.leaves:
            t.requires_grad_()
        # In the order of the leaves for ``loop`` (layer, parameter, network): the same order here.
        self.per_network = [t.detach()[i] for t in self.flat for i in range(self.n)]

    def grads(self) -> list[torch.Tensor]:
        """Gradients in the order of ``per_network``."""
        if self.strategy != "unfold":
            return [t.grad for t in self.leaves]
        return [t.grad[i] for t in self.flat for i in range(self.n)]

    def zero_grad(self) -> None:
        for t in self.leaves:
            t.grad = None

    def logits(self, family, stats, x, training):
        if self.strategy != "unfold":
            return forward_loop(family, self.nets, stats, x, training, self.strategy == "loop")
        return forward_unfold(family, self.stacked, stats, x, training)

    def snapshot(self) -> list[torch.Tensor]:
        return [t.detach().clone() for t in self.flat]

    def detached(self, tensors: list[torch.Tensor] | None = None) -> list[ConvLayer]:
        it = iter(self.flat if tensors is None else tensors)
        return [ConvLayer(*(None if t is None else next(it).detach() for t in l)) for l in self.stacked]


def _copy_rows(dst: list[torch.Tensor], src: list[torch.Tensor], rows: torch.Tensor) -> None:
    for d, s in zip(dst, src):
        d.index_copy_(0, rows, s.detach().index_select(0, rows))


def _stats_tensors(stats: Stats) -> list[torch.Tensor]:
    return [t for s in stats if s is not None for t in s]


def train_stacked(
    family: ConvNet,
    layers: list[ConvLayer],
    seeds: list[int],
    data: DatasetSplits,
    settings: TrainSettings,
    on_epoch: Callable[[int], None] | None = None,
    strategy: str | None = None,
) -> list[TrainResult]:
    """Train N stacked compact networks (``layers`` not modified); network i follows ``seeds[i]``'s minibatch order.

    The same bookkeeping as the reference ``train_module``: curves per epoch, best epoch by validation accuracy
    (weights and running statistics kept), the stopping rule, divergence, final and best test metrics.
    """
    start_time = time.perf_counter()
    # Evaluation has its own best strategy (no backward pass, larger chunks), unless one is forced.
    eval_strategy = strategy or choose_strategy(family, layers, training=False)
    strategy = strategy or choose_strategy(family, layers)
    params = _Parameters(layers, strategy)
    n, device = params.n, layers[0].weight.device
    stats = initial_stats(params.stacked)
    state = lambda: params.flat + _stats_tensors(stats)  # noqa: E731 - what "the weights" of an epoch are
    optimizer = FusedOptimizer(params.per_network, settings)
    n_train = len(data.y_train)
    results = [TrainResult() for _ in range(n)]
    best = [t.detach().clone() for t in state()]
    best_val_acc = torch.full((n,), -1.0, dtype=torch.float64, device=device)
    best_epoch = torch.zeros(n, dtype=torch.long, device=device)
    diverged_at: list[int | None] = [None] * n
    # A stopped network keeps its slot (the others' shapes and numbers never depend on when it stopped);
    # its weights of the stop epoch are kept here, nothing of it is recorded any more.
    stopped_at: list[int | None] = [None] * n
    frozen = [t.detach().clone() for t in state()] if settings.patience > 0 else []
    distinct = sorted(set(seeds))
    slot = [distinct.index(s) for s in seeds]
    for epoch in range(1, settings.epochs + 1):
        orders = [epoch_order(s, epoch, n_train).to(device) for s in distinct]
        draw = data.epoch_draw(distinct, epoch)  # each example's augmentation, per seed (None: none)
        loss_sum = torch.zeros(n, dtype=torch.float64, device=device)
        correct = torch.zeros(n, dtype=torch.long, device=device)
        for step in range(steps_per_epoch(n_train, settings.batch_size)):
            batch = slice(step * settings.batch_size, (step + 1) * settings.batch_size)
            idx = [o[batch] for o in orders]
            # Each seed's minibatch gathered on its own (converted, augmented with that seed's draw).
            xb_seed = [data.training_examples(i.unsqueeze(0), None if draw is None else draw.seed(k))[0]
                       for k, i in enumerate(idx)]
            yb_seed = [data.y_train[i] for i in idx]
            xs, ys = [xb_seed[k] for k in slot], [yb_seed[k] for k in slot]
            x = torch.stack(xs) if strategy == "unfold" else xs
            logits = params.logits(family, stats, x, True)
            losses = [F.cross_entropy(l, yb) for l, yb in zip(logits, ys)]
            params.zero_grad()
            # Each network's gradient is its own loss's: backward from every loss with weight 1.
            torch.autograd.backward(losses)
            optimizer.step(params.grads())
            with torch.no_grad():
                loss_sum += torch.stack(losses).detach().double() * len(idx[0])
                correct += torch.stack([(l.argmax(1) == yb).sum() for l, yb in zip(logits, ys)])
            del logits, losses
        current = params.detached()
        val_loss, val_acc = evaluate_stacked(family, current, stats, data.x_val, data.y_val, eval_strategy, data.features)
        if data.has_monitor:
            monitor_loss, monitor_acc = evaluate_stacked(family, current, stats, data.x_monitor, data.y_monitor, eval_strategy, data.features)
        train_loss, train_acc = loss_sum / n_train, correct.double() / n_train
        record_epoch(results, epoch, train_loss, train_acc, val_loss, val_acc,
                     (monitor_loss, monitor_acc) if data.has_monitor else None, diverged_at, stopped_at)
        alive = torch.tensor([d is None and s is None for d, s in zip(diverged_at, stopped_at)], device=device)
        improved = alive & ((val_acc > best_val_acc) | (best_epoch == 0))
        best_val_acc = torch.where(improved, val_acc, best_val_acc)
        best_epoch = torch.where(improved, torch.full_like(best_epoch, epoch), best_epoch)
        _copy_rows(best, state(), torch.nonzero(improved).flatten())
        if settings.patience > 0:
            stopping = [i for i in range(n) if alive[i] and settings.should_stop(epoch, int(best_epoch[i]))]
            for i in stopping:
                stopped_at[i] = epoch
            _copy_rows(frozen, state(), torch.tensor(stopping, dtype=torch.long, device=device))
        if on_epoch is not None:
            on_epoch(n)
        if all(d is not None or s is not None for d, s in zip(diverged_at, stopped_at)):
            break  # nothing more would be recorded

    with torch.no_grad():
        if settings.patience > 0:
            rows = torch.tensor([i for i in range(n) if stopped_at[i] is not None], dtype=torch.long, device=device)
            _copy_rows(state(), frozen, rows)
    final = params.detached()
    final_loss, final_acc = evaluate_stacked(family, final, stats, data.x_test, data.y_test, eval_strategy, data.features)
    best_layers = params.detached(best[: len(params.flat)])
    best_stats = _restack_stats(stats, best[len(params.flat):])
    best_loss, best_acc = evaluate_stacked(family, best_layers, best_stats, data.x_test, data.y_test, eval_strategy, data.features)
    seconds = (time.perf_counter() - start_time) / n
    for i, r in enumerate(results):
        r.seconds = seconds
        r.final_weights = [ConvLayer(*(None if t is None else t.clone() for t in l)) for l in unstack(final, i)]
        r.diverged_epoch, r.stop_epoch = diverged_at[i], stopped_at[i]
        if int(best_epoch[i]) > 0:
            r.best_epoch, r.best_val_acc = int(best_epoch[i]), float(best_val_acc[i])
        if r.diverged:
            continue  # no test metrics: NaN, never averaged
        r.final_test_loss, r.final_test_acc = float(final_loss[i]), float(final_acc[i])
        r.best_test_loss, r.best_test_acc = float(best_loss[i]), float(best_acc[i])
    return results


def _restack_stats(like: Stats, tensors: list[torch.Tensor]) -> Stats:
    it = iter(tensors)
    return [None if s is None else (next(it), next(it)) for s in like]
