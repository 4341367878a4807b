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

Grouping invariance (issue 19): a network's numbers must not depend on which
others share its stack. The products are ``torch.bmm`` of the whole stack:
with MKL in its strict reproducibility mode (``MKL_CBWR=AUTO,STRICT``, which
the package sets on import) each matrix of a batched product gets the bits it
gets multiplied alone, at any alignment and thread count. What remains is
element-wise: PyTorch rounds the transcendental functions (``exp``, ``tanh``,
GELU and their backward) differently in its vector loop and in the scalar loop
that finishes each thread's part of a tensor, and where those tails fall
depends on the stack's size. ``vector_only`` runs them so that every element
takes the vector loop.
"""

from __future__ import annotations

import torch

from ..models.mlp import activation_fn


#: Elements (float32) of the element-wise kernels' unrolled vector step, with room to spare: two
#: AVX-512 vectors are 32; an AVX2 build's step (16) divides it too.
VECTOR_STEP = 64
#: PyTorch splits an element-wise kernel among threads from this many elements on
#: (``at::internal::GRAIN_SIZE``), into equal parts of the whole tensor.
PARALLEL_GRAIN = 32768


def vector_pieces(numel: int, threads: int) -> list[tuple[int, int]]:
    """(start, length) of the calls that run ``numel`` contiguous elements all in the vector loop.

    Every piece's length is a whole number of vector steps, and so is each part
    PyTorch's ``parallel_for`` gives a thread of it: a piece under the grain runs
    on one thread; a piece of at least ``threads`` grains is split in ``threads``
    equal parts. What is left at the end (under one step) is the caller's.

    >>> vector_pieces(100, 1), vector_pieces(40000, 2), vector_pieces(70000, 2)
    ([(0, 64)], [(0, 32704), (32704, 7296)], [(0, 69888), (69888, 64)])
    """
    whole = numel // VECTOR_STEP * VECTOR_STEP
    if threads == 1 or whole < PARALLEL_GRAIN:
        return [(0, whole)] if whole else []
    if whole >= threads * PARALLEL_GRAIN:
        split = numel // (VECTOR_STEP * threads) * VECTOR_STEP * threads
        return [(0, split), *((split + s, n) for s, n in vector_pieces(numel - split, threads))]
    piece = (PARALLEL_GRAIN - 1) // VECTOR_STEP * VECTOR_STEP
    return [(s, min(piece, whole - s)) for s in range(0, whole, piece)]


def vector_only(op, *tensors: torch.Tensor) -> None:
    """``op(*parts)`` over contiguous ``tensors`` of one size (the first written), every element in the vector loop.

    For the transcendental functions, whose vector and scalar loops round apart: an
    element's bits then depend on its value alone, not on where the tensor's (or a
    thread's) tail falls. The last partial step runs on a copy padded with zeros.
    """
    flat = [t.view(-1) for t in tensors]
    numel = flat[0].numel()
    for start, length in vector_pieces(numel, torch.get_num_threads()):
        op(*(f[start : start + length] for f in flat))
    done = numel // VECTOR_STEP * VECTOR_STEP
    if done < numel:
        padded = [f.new_zeros(VECTOR_STEP) for f in flat]
        for p, f in zip(padded, flat):
            p[: numel - done] = f[done:]
        op(*padded)
        flat[0][done:] = padded[0][: numel - done]


def _gelu(t: torch.Tensor) -> torch.Tensor:
    out = torch.empty_like(t)
    vector_only(lambda o, i: torch.ops.aten.gelu.out(i, out=o), out, t)
    return out


def bias_and_activation(z: torch.Tensor, bias: torch.Tensor, activation: str) -> torch.Tensor:
    """``activation(z + bias)``, in place in ``z`` where the backward needs only the output."""
    # Not PyTorch's fused ``_add_relu_``: it clamps to [0, FLT_MAX], turning
    # NaN into 0 and inf into FLT_MAX, and a diverged network must stay NaN.
    z.add_(bias)  # bmm then add: faster on CPU than baddbmm, which copies the bias first
    if activation == "relu":
        return z.relu_()  # exact: the same bits in the vector and the scalar loop
    if not z.is_contiguous():
        return activation_fn(activation)(z)
    if activation == "tanh":
        vector_only(torch.Tensor.tanh_, z)
        return z
    if activation == "gelu":
        return _gelu(z)  # GELU's backward needs its input: kept
    return activation_fn(activation)(z)


def _activation_backward_(grad: torch.Tensor, out: torch.Tensor, pre: torch.Tensor | None, activation: str) -> torch.Tensor:
    """The gradient at the pre-activation, written over ``grad`` (a fresh buffer no one else holds)."""
    aten = torch.ops.aten
    if activation == "relu":
        return aten.threshold_backward.grad_input(grad, out, 0, grad_input=grad)
    if activation == "tanh":
        vector_only(lambda g, o: aten.tanh_backward.grad_input(g, o, grad_input=g), grad, out)
        return grad
    vector_only(lambda g, p: aten.gelu_backward.grad_input(g, p, grad_input=g), grad, pre)
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
        z = torch.bmm(h, w)
        h = bias_and_activation(z, b.unsqueeze(1), activation)
        pre_activations.append(z if activation == "gelu" else None)
        inputs.append(h)
    logits = torch.bmm(weights[-1].transpose(1, 2), h.transpose(1, 2)).add_(biases[-1].unsqueeze(2))
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
) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
    """Gradients of each network's mean cross-entropy on its minibatch, and its summed loss and correct count.

    ``x`` is ``(N, B, in)``, ``y`` is ``(N, B)``. Returns the gradients in the
    order ``[w0, b0, w1, b1, ...]``, the per-network summed loss ``(N,)`` and
    count of correct predictions ``(N,)``.
    """
    logits, inputs, pre_activations = forward(weights, biases, x, activation)
    losses, correct, log_probs = loss_and_correct(logits, y)
    # d(mean loss)/d(logits) = (softmax - one-hot) / B
    target = y.unsqueeze(1)  # (N, 1, B)
    minus_one = torch.full(target.shape, -1.0, dtype=logits.dtype, device=logits.device)
    vector_only(torch.Tensor.exp_, log_probs)
    grad = log_probs.scatter_add_(1, target, minus_one).div_(y.shape[1])

    # Collected from the last layer back, bias before weight; reversed at the end.
    grads: list[torch.Tensor] = []
    # Output layer: logits^T = h @ W, so dW = h^T @ dlogits^T and dh = dlogits^T @ W^T.
    h, grad_t = inputs[-1], grad.transpose(1, 2)  # (N, B, C)
    grads += [grad.sum(dim=2), torch.bmm(h.transpose(1, 2), grad_t)]
    grad_h = torch.bmm(grad_t, weights[-1].transpose(1, 2))
    for i in range(len(weights) - 2, -1, -1):
        grad_z = _activation_backward_(grad_h, inputs[i + 1], pre_activations[i], activation)
        grads += [grad_z.sum(dim=1), torch.bmm(inputs[i].transpose(1, 2), grad_z)]
        if i > 0:
            grad_h = torch.bmm(grad_z, weights[i].transpose(1, 2))
    return grads[::-1], losses, correct
