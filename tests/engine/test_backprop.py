"""The hand-written backward pass and the fused optimizer against PyTorch's own."""

import pytest
import torch
import torch.nn.functional as F

from sparsebench.engine import TrainSettings
from sparsebench.engine.backprop import loss_and_gradients
from sparsebench.engine.fused_optimizer import FusedOptimizer
from sparsebench.models.mlp import activation_fn

WIDTHS = (7, 5, 6, 4)  # input, two hidden layers, classes
N, BATCH = 3, 9


def _stacked_params(seed: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    weights = [torch.randn(N, a, b, generator=g) for a, b in zip(WIDTHS[:-1], WIDTHS[1:])]
    biases = [torch.randn(N, b, generator=g) for b in WIDTHS[1:]]
    return weights, biases


@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu"])
def test_hand_written_gradients_equal_autograd(activation):
    weights, biases = _stacked_params(0)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(N, BATCH, WIDTHS[0], generator=g)
    y = torch.randint(0, WIDTHS[-1], (N, BATCH), generator=g)
    grads, losses, correct = loss_and_gradients(weights, biases, x, y, activation)

    act = activation_fn(activation)
    for n in range(N):  # each network on its own, as plain autograd code would train it
        params = [t[n].clone().requires_grad_(True) for pair in zip(weights, biases) for t in pair]
        h = x[n]
        for i in range(len(weights)):
            h = h @ params[2 * i] + params[2 * i + 1]
            if i < len(weights) - 1:
                h = act(h)
        F.cross_entropy(h, y[n]).backward()
        for got, p in zip(grads, params):
            torch.testing.assert_close(got[n], p.grad, rtol=1e-5, atol=1e-6)
        assert float(losses[n]) == pytest.approx(float(F.cross_entropy(h.detach(), y[n], reduction="sum")), rel=1e-5)
        assert int(correct[n]) == int((h.argmax(1) == y[n]).sum())


@pytest.mark.parametrize(
    "optimizer,kwargs",
    [("adam", {"weight_decay": 0.0}), ("adam", {"weight_decay": 1e-2}), ("sgd", {"momentum": 0.9, "weight_decay": 1e-2}), ("sgd", {"momentum": 0.0})],
)
def test_fused_optimizer_steps_like_torch_optim(optimizer, kwargs):
    settings = TrainSettings(epochs=1, batch_size=1, optimizer=optimizer, lr=0.05, **kwargs)
    weights, biases = _stacked_params(2)
    ours = [t.clone() for t in weights + biases]
    theirs = [t.clone().requires_grad_(True) for t in weights + biases]
    fused = FusedOptimizer(ours, settings)
    cls = torch.optim.Adam if optimizer == "adam" else torch.optim.SGD
    extra = {} if optimizer == "adam" else {"momentum": settings.momentum}
    reference = cls(theirs, lr=settings.lr, weight_decay=settings.weight_decay, foreach=False, **extra)
    g = torch.Generator().manual_seed(3)
    for _ in range(5):
        grads = [torch.randn(t.shape, generator=g) for t in ours]
        fused.step(grads)
        for p, grad in zip(theirs, grads):
            p.grad = grad.clone()
        reference.step()
    for got, want in zip(ours, theirs):
        torch.testing.assert_close(got, want.detach(), rtol=1e-5, atol=1e-6)
    assert not torch.equal(ours[0], weights[0])  # it did step


@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu"])
def test_non_finite_values_propagate_as_in_plain_torch(activation):
    """A diverged network must stay NaN/inf: the divergence check reads it from the loss."""
    from sparsebench.engine.backprop import forward

    weights, biases = _stacked_params(4)
    biases[0][0, 1] = float("nan")
    biases[0][1, 2] = float("inf")
    x = torch.randn(N, BATCH, WIDTHS[0], generator=torch.Generator().manual_seed(5))
    logits = forward(weights, biases, x, activation)[0].transpose(1, 2)
    act = activation_fn(activation)
    h = x
    for i, (w, b) in enumerate(zip(weights, biases)):
        h = torch.bmm(h, w) + b.unsqueeze(1)
        if i < len(weights) - 1:
            h = act(h)
    torch.testing.assert_close(logits, h, equal_nan=True)
    assert torch.isnan(logits[0]).any()  # NaN survives every activation (inf only ReLU and GELU)
