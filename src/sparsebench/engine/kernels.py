"""PyTorch's private fused kernels where the running torch has them, public operations otherwise.

The stacked engines call five underscored kernels for speed: ``torch._fused_adam_``
and ``torch._fused_sgd_`` (one optimizer step over many tensors, see
``fused_optimizer``) and the ATen backward ops ``threshold_backward``,
``tanh_backward`` and ``gelu_backward`` (``.grad_input``, written in place; see
``backprop``). They are not public API: a torch release may drop them or
change their signature. So each is *probed* once per device type, at first
use, by a tiny call whose result is compared with the public path's; where the
call fails or disagrees, the public path is used. The public path is the same
arithmetic in public tensor operations (``torch.optim``'s single-tensor Adam
and SGD, the activations' derivatives written out): the same numbers to float
rounding, slower (one Python loop over the tensors a step).

``SPARSEBENCH_KERNELS=public`` forces the public path (``private`` or unset:
probe). Like the thread count it is not part of the config or its hash; a run
records the path it used with its experiment (``summary``, in the software
versions).

>>> kernel_paths("cpu")["adam"] in (PRIVATE, PUBLIC)
True
"""

from __future__ import annotations

import math
import os
from typing import Callable, Sequence

import torch

from ..errors import invalid

#: The environment variable that chooses the kernels: ``public`` forces the fallback; ``private`` (the default) probes.
KERNELS_ENV = "SPARSEBENCH_KERNELS"
PRIVATE, PUBLIC = "private", "public"
#: The kernels that are probed, by the name a run records.
KERNELS = ("adam", "sgd", "relu_backward", "tanh_backward", "gelu_backward")
#: What a store written before the path was recorded used: torch was pinned, the private kernels were always there.
LEGACY_SUMMARY = PRIVATE

_probed: dict[tuple[str, str], bool] = {}


def requested() -> str:
    """The path ``$SPARSEBENCH_KERNELS`` asks for: ``private`` (probe; the default) or ``public``."""
    text = os.environ.get(KERNELS_ENV, "").strip().lower()
    if text in ("", PRIVATE):
        return PRIVATE
    if text != PUBLIC:
        raise invalid(KERNELS_ENV, os.environ[KERNELS_ENV], f"{PRIVATE} (the default: each private kernel where the running torch has it) or {PUBLIC}")
    return PUBLIC


def uses_private(kernel: str, device: torch.device | str = "cpu") -> bool:
    """Whether ``kernel`` runs PyTorch's private kernel on ``device``'s type (probed once per type, then cached)."""
    if requested() == PUBLIC:
        return False
    # Called every training step: a device's type is read without building a new torch.device.
    key = (kernel, device.type if isinstance(device, torch.device) else torch.device(device).type)
    if key not in _probed:
        _probed[key] = _probe(*key)
    return _probed[key]


def kernel_paths(device: torch.device | str = "cpu") -> dict[str, str]:
    """Each kernel's path on ``device``: ``private`` or ``public``."""
    return {k: PRIVATE if uses_private(k, device) else PUBLIC for k in KERNELS}


def summary(device: torch.device | str = "cpu") -> str:
    """What a run records: ``private`` or ``public`` when every kernel takes that path, else the public ones named.

    >>> summary() in (PRIVATE, PUBLIC) or summary().startswith("public for ")
    True
    """
    paths = kernel_paths(device)
    if len(set(paths.values())) == 1:
        return next(iter(paths.values()))
    return "public for " + ",".join(k for k, p in paths.items() if p == PUBLIC)


# -- the probe -----------------------------------------------------------------------------------
def _probe(kernel: str, device_type: str) -> bool:
    """A tiny call of the private kernel on ``device_type``, compared with the public path: True if both agree."""
    try:
        device = torch.device(device_type)
        private, public = _PROBES[kernel](device)
        return all(a.shape == b.shape and bool(torch.allclose(a, b, rtol=1e-5, atol=1e-7)) for a, b in zip(private, public))
    except Exception:  # missing (AttributeError), another signature (TypeError, RuntimeError), no kernel for the device
        return False


def _probe_inputs(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.tensor([0.5, -1.0, 2.0, -0.25, 0.0, 3.0], device=device)
    g = torch.tensor([0.1, -0.2, 0.3, 0.05, -0.4, 0.0], device=device)
    return x, g


def _probe_adam(device: torch.device) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    x, g = _probe_inputs(device)
    results = []
    for step in (_adam_private, _adam_public):
        p, m, v = [x.clone()], [torch.full_like(x, 0.01)], [torch.full_like(x, 0.02)]
        steps = [torch.tensor(3.0, device=device)]
        step(p, [g.clone()], m, v, steps, lr=0.1, beta1=0.9, beta2=0.999, weight_decay=0.01, eps=1e-8)
        results.append(p + m + v)
    return results[0], results[1]


def _probe_sgd(device: torch.device) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    x, g = _probe_inputs(device)
    results = []
    for step in (_sgd_private, _sgd_public):
        p, buffers = [x.clone()], [torch.empty_like(x)]
        step(p, [g.clone()], buffers, weight_decay=0.01, momentum=0.9, lr=0.1, is_first_step=True)
        step(p, [g.clone()], buffers, weight_decay=0.01, momentum=0.9, lr=0.1, is_first_step=False)
        step(p, [g.clone()], [], weight_decay=0.0, momentum=0.0, lr=0.1, is_first_step=False)
        results.append(p + buffers)
    return results[0], results[1]


def _probe_activation(activation: str) -> Callable[[torch.device], tuple[list[torch.Tensor], list[torch.Tensor]]]:
    def probe(device: torch.device) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        pre, g = _probe_inputs(device)
        out = _ACTIVATIONS[activation](pre)
        private = _BACKWARD_PRIVATE[activation](g.clone(), out, pre)
        public = _BACKWARD_PUBLIC[activation](g.clone(), out, pre)
        return [private], [public]

    return probe


# -- optimizers ------------------------------------------------------------------------------------
def adam_step_(params: list[torch.Tensor], grads: Sequence[torch.Tensor], exp_avg: list[torch.Tensor],
               exp_avg_sq: list[torch.Tensor], steps: list[torch.Tensor], *, lr: float, beta1: float, beta2: float,
               weight_decay: float, eps: float) -> None:
    """One step of ``torch.optim.Adam`` (no amsgrad) in place; ``steps`` (already counted) is only read."""
    step = _adam_private if uses_private("adam", params[0].device) else _adam_public
    step(params, list(grads), exp_avg, exp_avg_sq, steps, lr=lr, beta1=beta1, beta2=beta2, weight_decay=weight_decay, eps=eps)


def sgd_step_(params: list[torch.Tensor], grads: Sequence[torch.Tensor], momentum_buffers: list[torch.Tensor], *,
              weight_decay: float, momentum: float, lr: float, is_first_step: bool) -> None:
    """One step of ``torch.optim.SGD`` (no dampening, no Nesterov) in place; ``momentum_buffers`` empty when
    ``momentum`` is 0, else filled from the gradients at the first step, as ``torch.optim.SGD`` does."""
    step = _sgd_private if uses_private("sgd", params[0].device) else _sgd_public
    step(params, list(grads), momentum_buffers, weight_decay=weight_decay, momentum=momentum, lr=lr, is_first_step=is_first_step)


def _adam_private(params, grads, exp_avg, exp_avg_sq, steps, *, lr, beta1, beta2, weight_decay, eps) -> None:
    torch._fused_adam_(
        params, grads, exp_avg, exp_avg_sq, [], steps,
        lr=lr, beta1=beta1, beta2=beta2, weight_decay=weight_decay, eps=eps, amsgrad=False, maximize=False,
    )  # fmt: skip


def _adam_public(params, grads, exp_avg, exp_avg_sq, steps, *, lr, beta1, beta2, weight_decay, eps) -> None:
    """``torch.optim.Adam``'s single-tensor update, in public operations."""
    step = float(steps[0])
    bias_correction1 = 1 - beta1**step
    bias_correction2_sqrt = math.sqrt(1 - beta2**step)
    for p, g, m, v in zip(params, grads, exp_avg, exp_avg_sq):
        if weight_decay != 0:
            g = g.add(p, alpha=weight_decay)
        m.lerp_(g, 1 - beta1)
        v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        denom = (v.sqrt() / bias_correction2_sqrt).add_(eps)
        p.addcdiv_(m, denom, value=-lr / bias_correction1)


def _sgd_private(params, grads, momentum_buffers, *, weight_decay, momentum, lr, is_first_step) -> None:
    torch._fused_sgd_(
        params, grads, momentum_buffers,
        weight_decay=weight_decay, momentum=momentum, lr=lr, dampening=0.0,
        nesterov=False, maximize=False, is_first_step=is_first_step,
    )  # fmt: skip


def _sgd_public(params, grads, momentum_buffers, *, weight_decay, momentum, lr, is_first_step) -> None:
    """``torch.optim.SGD``'s single-tensor update (dampening 0, no Nesterov), in public operations."""
    for i, (p, g) in enumerate(zip(params, grads)):
        if weight_decay != 0:
            g = g.add(p, alpha=weight_decay)
        if momentum != 0:
            buffer = momentum_buffers[i]
            if is_first_step:
                buffer.copy_(g)
            else:
                buffer.mul_(momentum).add_(g)
            g = buffer
        p.add_(g, alpha=-lr)


# -- activations' backward -------------------------------------------------------------------------
def activation_backward_(grad: torch.Tensor, out: torch.Tensor, pre: torch.Tensor | None, activation: str) -> torch.Tensor:
    """The gradient at the pre-activation, written over ``grad``: ``out`` is the activation's output, ``pre``
    its input (needed by GELU only)."""
    name = f"{activation}_backward"
    backward = _BACKWARD_PRIVATE if uses_private(name, grad.device) else _BACKWARD_PUBLIC
    return backward[activation](grad, out, pre)


def _relu_backward_private(grad, out, pre):
    return torch.ops.aten.threshold_backward.grad_input(grad, out, 0, grad_input=grad)


def _tanh_backward_private(grad, out, pre):
    return torch.ops.aten.tanh_backward.grad_input(grad, out, grad_input=grad)


def _gelu_backward_private(grad, out, pre):
    return torch.ops.aten.gelu_backward.grad_input(grad, pre, grad_input=grad)


def _relu_backward_public(grad, out, pre):
    # threshold_backward: zero where the output is <= 0 (a NaN output passes its gradient), whatever the gradient.
    return grad.masked_fill_(out <= 0, 0)


def _tanh_backward_public(grad, out, pre):
    return grad.mul_(1 - out * out)


def _gelu_backward_public(grad, out, pre):
    # d/dx x*Phi(x) = Phi(x) + x*phi(x), the exact GELU's (torch's default, approximate="none").
    cdf = 0.5 * (1 + torch.erf(pre * math.sqrt(0.5)))
    pdf = torch.exp(-0.5 * pre * pre) * (1 / math.sqrt(2 * math.pi))
    return grad.mul_(cdf + pre * pdf)


_ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh, "gelu": torch.nn.functional.gelu}
_BACKWARD_PRIVATE = {"relu": _relu_backward_private, "tanh": _tanh_backward_private, "gelu": _gelu_backward_private}
_BACKWARD_PUBLIC = {"relu": _relu_backward_public, "tanh": _tanh_backward_public, "gelu": _gelu_backward_public}
_PROBES = {"adam": _probe_adam, "sgd": _probe_sgd, **{f"{a}_backward": _probe_activation(a) for a in _ACTIVATIONS}}
