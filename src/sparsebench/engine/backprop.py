"""One training step's forward and backward pass of N stacked MLPs, written out.

At high sparsity a step's products take a few microseconds each, and
autograd's bookkeeping (recording and replaying some twenty nodes a step,
cross-entropy through a transposed copy) was most of the step: written out,
the benchmark's 16 networks at s=0.98 train in 30 ms instead of 41, and the
dense parent in 140 instead of 160. The backward pass calls the same ATen
kernels autograd calls (``threshold_backward`` for ReLU, ``tanh_backward``,
``gelu_backward``; through ``kernels``, which falls back to the same derivatives
in public operations where a torch lacks them), so the gradients are the ones autograd gives, to float
rounding; the tests check them against ``torch.autograd`` and the reference
trainer.

Layout: weights ``(N, in, out)``; hidden activations ``(N, B, width)``; the
logits ``(N, C, B)``, classes in the middle, where PyTorch's CPU softmax runs
vectorized along the batch.

Grouping invariance (issue 19): a network's numbers must not depend on which
others share its stack. The products are ``torch.bmm`` of the whole stack:
with MKL in its strict reproducibility mode (``MKL_CBWR=AUTO,STRICT``, which
the package sets on import) each matrix of a batched product gets the bits it
gets multiplied alone, at any alignment and thread count (without it, with two
threads, a network's products differed between a stack of 1 and of 3). The
element-wise functions here (``exp``, ``tanh``, GELU and their backward) give
an element the same bits wherever its tensor's or a thread's part ends
(measured for torch 2.13 on AVX-512: stacks of 1 and 3, sizes with partial
vectors, over the grain, 1 and 2 threads); ``tests/engine/test_grouping_invariance.py``
would catch a build where they do not.
"""

from __future__ import annotations

import torch

from ..models.mlp import activation_fn
from . import kernels

#: PyTorch splits a kernel (a reduction's sum too) among threads from this many elements on
#: (``at::internal::GRAIN_SIZE``), at a point that depends on the whole tensor's size.
PARALLEL_GRAIN = 32768


def bias_and_activation(z: torch.Tensor, bias: torch.Tensor, activation: str) -> torch.Tensor:
    """``activation(z + bias)``, in place in ``z`` where the backward needs only the output."""
    # Not PyTorch's fused ``_add_relu_``: it clamps to [0, FLT_MAX], turning
    # NaN into 0 and inf into FLT_MAX, and a diverged network must stay NaN.
    z.add_(bias)  # bmm then add: faster on CPU than baddbmm, which copies the bias first
    if activation == "relu":
        return z.relu_()
    if activation == "tanh":
        return z.tanh_()
    return activation_fn(activation)(z)  # GELU's backward needs its input: kept


def _activation_backward_(grad: torch.Tensor, out: torch.Tensor, pre: torch.Tensor | None, activation: str) -> torch.Tensor:
    """The gradient at the pre-activation, written over ``grad`` (a fresh buffer no one else holds)."""
    # ATen's backward kernels where the running torch has them, else the same derivative in public operations.
    return kernels.activation_backward_(grad, out, pre, activation)


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
    grad = log_probs.exp_().scatter_add_(1, target, minus_one).div_(y.shape[1])

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
