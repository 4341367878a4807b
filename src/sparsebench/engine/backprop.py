"""One training step's forward and backward pass of N stacked MLPs, written out.

At high sparsity a step's products take a few microseconds each, and
autograd's bookkeeping (recording and replaying some twenty nodes a step,
cross-entropy through a transposed copy) was most of the step: written out,
the benchmark's 16 networks at s=0.98 train in 30 ms instead of 41, and the
dense parent in 140 instead of 160. The backward pass calls the same ATen
kernels autograd calls (``threshold_backward`` for ReLU, ``tanh_backward``,
``gelu_backward``), so the gradients are the ones autograd gives, to float
rounding; the tests check them against ``torch.autograd`` and the reference
trainer.

Layout: weights ``(N, in, out)``; hidden activations ``(N, B, width)``; the
logits ``(N, C, B)``, classes in the middle, where PyTorch's CPU softmax runs
vectorized along the batch.

Grouping invariance: a network's numbers must not depend on which others share
its stack (issue 19). What made them depend on it, each measured on this CPU
build (MKL, AVX-512), stack {0,1,2} against {2} alone, one and two threads:

- ``torch.bmm`` into a contiguous result runs MKL's batched GEMM, whose
  rounding of one matrix depends on the batch: with one thread small
  products (5x100 @ 100x5) differ between odd and even batch sizes; with two,
  a batch of one is split across the threads while a larger one is not.
  ``bmm_`` writes into a result whose networks lie apart (``aligned_empty``):
  PyTorch then multiplies network by network, one plain GEMM each, the same
  call whatever else is stacked.
- MKL's GEMM rounds differently for operands at different alignments (widths
  5 and 10, offsets of 0 and 12 bytes): every network's operands start on a
  64-byte boundary, whatever its place in the stack.
- element-wise kernels round transcendental functions (``exp``, ``tanh``,
  GELU) differently in their vector loop, their scalar tail and (GELU) on
  strided tensors, and where the tail falls depended on the stack's size and
  on how the threads split it; ``torch.softmax`` over a stack of one is split
  among threads otherwise than over a larger stack. These functions run over
  runs of whole padded slabs (``_network_groups``), always in the vector loop.
- (the fused optimizer's scalar tail: see ``stacked._FlatStack``; evaluation's
  row chunks: ``stacked.evaluate_stacked``.)
"""

from __future__ import annotations

import torch

from ..models.mlp import activation_fn

#: Elements (float32) in a multiple of which every network's slab is laid out: 256 bytes.
#: So each slab starts on a 64-byte boundary (a cache line, an AVX-512 vector, the unit of
#: PyTorch's fused optimizers), and a run of whole slabs holds a whole number of the
#: element-wise kernels' unrolled vector steps (2 x 16 floats) even when halved between
#: two threads: no element of a network falls in a scalar tail.
ALIGN = 64


def padded_size(numel: int) -> int:
    """The slab of one network's ``numel`` elements: the next multiple of ``ALIGN`` strictly above it.

    Strictly above, so that a stack of several is never contiguous: ``torch.bmm``
    takes its network-by-network path only for a result that is not.

    >>> padded_size(10), padded_size(64), padded_size(65)
    (64, 128, 128)
    """
    return (numel // ALIGN + 1) * ALIGN


def aligned_empty(n: int, *shape: int, like: torch.Tensor) -> torch.Tensor:
    """An uninitialized ``(n, *shape)`` tensor: each network's part contiguous, starting on a 64-byte boundary.

    (PyTorch's allocators return 64-byte aligned memory; every slab is a multiple of it.)
    """
    numel = 1
    for d in shape:
        numel *= d
    slab = padded_size(numel)
    strides, step = [], 1
    for d in reversed(shape):
        strides.append(step)
        step *= d
    buffer = torch.empty(n * slab, dtype=like.dtype, device=like.device)
    return buffer.as_strided((n, *shape), (slab, *reversed(strides)))


def aligned(t: torch.Tensor) -> torch.Tensor:
    """A copy of ``t`` ``(N, ...)`` in which each network's part starts on a 64-byte boundary."""
    out = aligned_empty(t.shape[0], *t.shape[1:], like=t)
    return out.copy_(t)


def bmm_(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """``a @ b`` of N stacked matrices, each product the same GEMM whatever N (see the module's docstring).

    ``out``, when given, must be laid out as ``aligned_empty`` lays it out.
    """
    if out is None:
        out = aligned_empty(a.shape[0], a.shape[1], b.shape[2], like=a)
    if a.shape[0] == 1:
        # A stack of one is contiguous, which would take the batched path: the
        # network-by-network path's own call instead.
        torch.mm(a[0], b[0], out=out[0])
        return out
    return torch.bmm(a, b, out=out)


def bias_and_activation(z: torch.Tensor, bias: torch.Tensor, activation: str) -> torch.Tensor:
    """``activation(z + bias)``, in place in ``z`` where the backward needs only the output."""
    # Not PyTorch's fused ``_add_relu_``: it clamps to [0, FLT_MAX], turning
    # NaN into 0 and inf into FLT_MAX, and a diverged network must stay NaN.
    z.add_(bias)  # bmm then add: faster on CPU than baddbmm, which copies the bias first
    if activation == "relu":
        return z.relu_()  # exact: the same bits in the vector loop and the scalar tail
    if activation == "tanh":
        for part in _network_groups(z):
            part.tanh_()
        return z
    if activation == "gelu":  # GELU's backward needs its input: kept
        h = aligned_empty(*z.shape, like=z) if z.dim() == 3 else torch.empty_like(z)
        for part, out in zip(_network_groups(z), _network_groups(h)):
            torch.ops.aten.gelu.out(part, out=out)
        return h
    return activation_fn(activation)(z)


#: PyTorch splits an element-wise kernel among threads from this many elements on
#: (``at::internal::GRAIN_SIZE``), at a point that depends on the whole tensor's size.
PARALLEL_GRAIN = 32768


def _network_groups(t: torch.Tensor) -> list[torch.Tensor]:
    """The slabs of ``t`` (laid out by ``aligned_empty``) as flat runs of whole networks, pads included.

    For the transcendental functions, which PyTorch rounds differently in its
    vector loop, its scalar tail and (GELU) for strided tensors: each run is
    contiguous and a whole number of vector steps, so every element takes the
    vector path, whatever N. Runs are kept under the grain at which PyTorch
    splits a kernel among threads (at a point that depends on the size); one
    network over it alone is split at its own midpoint, a whole number of steps too.
    A tensor laid out otherwise (scoring's) is returned whole.
    """
    slab = t.stride(0) if t.dim() > 1 else 0
    if t.dim() < 2 or slab % ALIGN or slab < t[0].numel() or not t[0].is_contiguous():
        return [t]
    n = t.shape[0]
    size = n if torch.get_num_threads() == 1 or n * slab < PARALLEL_GRAIN else max(1, (PARALLEL_GRAIN - 1) // slab)
    return [t.as_strided(((min(i + size, n) - i) * slab,), (1,), t.storage_offset() + i * slab) for i in range(0, n, size)]


def _activation_backward_(grad: torch.Tensor, out: torch.Tensor, pre: torch.Tensor | None, activation: str) -> torch.Tensor:
    """The gradient at the pre-activation, written over ``grad`` (a fresh buffer no one else holds)."""
    aten = torch.ops.aten
    if activation == "relu":
        return aten.threshold_backward.grad_input(grad, out, 0, grad_input=grad)
    if activation == "tanh":
        for g, o in zip(_network_groups(grad), _network_groups(out)):
            aten.tanh_backward.grad_input(g, o, grad_input=g)
        return grad
    for g, p in zip(_network_groups(grad), _network_groups(pre)):
        aten.gelu_backward.grad_input(g, p, grad_input=g)
    return grad


def forward(
    weights: list[torch.Tensor], biases: list[torch.Tensor], x: torch.Tensor, activation: str = "relu"
) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor | None]]:
    """Logits ``(N, C, B)`` of N stacked networks on ``x`` ``(N, B, in)``, with what the backward pass needs.

    Also returns each layer's input (``x``, then every hidden activation) and
    the hidden pre-activations the activation's backward needs (GELU's; None
    for the others).
    """
    inputs, pre_activations = [x], []
    h = x
    for w, b in zip(weights[:-1], biases[:-1]):
        z = bmm_(h, w)
        h = bias_and_activation(z, b.unsqueeze(1), activation)
        pre_activations.append(z if activation == "gelu" else None)
        inputs.append(h)
    logits = bmm_(weights[-1].transpose(1, 2), h.transpose(1, 2)).add_(biases[-1].unsqueeze(2))
    return logits, inputs, pre_activations


def loss_and_correct(logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-network summed cross-entropy ``(N,)``, count of correct predictions ``(N,)``, and the log-probabilities.

    ``logits`` are ``(N, C, B)``, ``y`` is ``(N, B)``.
    """
    log_probs = torch.log_softmax(logits, dim=1)
    losses = log_probs.gather(1, y.unsqueeze(1)).sum(dim=(1, 2)).neg_()
    # ``max`` gives the first maximal index, as ``argmax`` does.
    correct = (logits.max(dim=1).indices == y).sum(dim=1)
    return losses, correct, log_probs


@torch.no_grad()
def loss_and_gradients(
    weights: list[torch.Tensor],
    biases: list[torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    activation: str = "relu",
    out: list[torch.Tensor] | None = None,
) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
    """Gradients of each network's mean cross-entropy on its minibatch, and its summed loss and correct count.

    ``x`` is ``(N, B, in)``, ``y`` is ``(N, B)``. Returns the gradients in the
    order ``[w0, b0, w1, b1, ...]``, the per-network summed loss ``(N,)`` and
    count of correct predictions ``(N,)``. ``out``: tensors, in that order, to
    write the gradients into (the weights' laid out as ``aligned_empty`` lays them out).
    """
    logits, inputs, pre_activations = forward(weights, biases, x, activation)
    losses, correct, log_probs = loss_and_correct(logits, y)
    # d(mean loss)/d(logits) = (softmax - one-hot) / B. The exponential runs over each
    # network's own slab (not torch.softmax: with two threads it splits a stack of one
    # differently from a larger one; nor exp over the contiguous stack, whose tail
    # elements the scalar loop rounds apart from the vector loop).
    target = y.unsqueeze(1)  # (N, 1, B)
    minus_one = torch.full(target.shape, -1.0, dtype=logits.dtype, device=logits.device)
    probs = aligned(log_probs)
    for part in _network_groups(probs):
        part.exp_()
    grad = probs.scatter_add_(1, target, minus_one).div_(y.shape[1])

    n_params = 2 * len(weights)
    slots = out if out is not None else [None] * n_params
    # Collected from the last layer back, bias before weight; reversed at the end.
    grads: list[torch.Tensor] = []
    # Output layer: logits^T = h @ W, so dW = h^T @ dlogits^T and dh = dlogits^T @ W^T.
    h, grad_t = inputs[-1], grad.transpose(1, 2)  # (N, B, C)
    grads += [_sum(grad, 2, slots[n_params - 1]), bmm_(h.transpose(1, 2), grad_t, slots[n_params - 2])]
    grad_h = bmm_(grad_t, weights[-1].transpose(1, 2))
    for i in range(len(weights) - 2, -1, -1):
        grad_z = _activation_backward_(grad_h, inputs[i + 1], pre_activations[i], activation)
        grads += [_sum(grad_z, 1, slots[2 * i + 1]), bmm_(inputs[i].transpose(1, 2), grad_z, slots[2 * i])]
        if i > 0:
            grad_h = bmm_(grad_z, weights[i].transpose(1, 2))
    return grads[::-1], losses, correct


def _sum(t: torch.Tensor, dim: int, out: torch.Tensor | None) -> torch.Tensor:
    return t.sum(dim=dim) if out is None else torch.sum(t, dim=dim, out=out)
