"""Adam or SGD with momentum over stacked tensors: one fused kernel a step.

``torch.optim``'s fused optimizers run the same kernels, but around them each
step spends about 150 µs in Python (grouping tensors by device, looking up
per-parameter state, one step counter per tensor). At high sparsity a whole
training step of 16 stacked networks takes about 800 µs, so that is a fifth of
it. Here the state is held in flat lists and handed straight to the kernels;
the arithmetic is PyTorch's own, which the equivalence tests check against
``torch.optim`` in the reference trainer. The kernels are private (underscored):
``kernels`` calls them where the running torch has them, and public operations
with the same arithmetic otherwise.
"""

from __future__ import annotations

import torch

from . import kernels
from .common import ADAM_BETAS, ADAM_EPS, TrainSettings


class FusedOptimizer:
    """The update of ``torch.optim.Adam`` / ``SGD(momentum)`` (their defaults otherwise) for ``params``.

    >>> p = torch.zeros(3)
    >>> opt = FusedOptimizer([p], TrainSettings(epochs=1, batch_size=1, optimizer="sgd", lr=0.5, momentum=0.0))
    >>> opt.step([torch.ones(3)]); p.tolist()
    [-0.5, -0.5, -0.5]
    """

    def __init__(self, params: list[torch.Tensor], settings: TrainSettings):
        self.params = params
        self.settings = settings
        if settings.optimizer == "adam":
            self.exp_avg = [torch.zeros_like(p) for p in params]
            self.exp_avg_sq = [torch.zeros_like(p) for p in params]
            # One counter shared by every tensor (they all step together); the kernel only reads it.
            self.steps = [torch.zeros((), dtype=torch.float32, device=params[0].device)] * len(params)
        else:
            self.momentum_buffers: list[torch.Tensor] = []

    def step(self, grads: list[torch.Tensor] | tuple[torch.Tensor, ...]) -> None:
        """Update the parameters in place from their gradients, in order."""
        s = self.settings
        with torch.no_grad():
            if s.optimizer == "adam":
                self.steps[0].add_(1)
                beta1, beta2 = ADAM_BETAS
                kernels.adam_step_(
                    self.params, list(grads), self.exp_avg, self.exp_avg_sq, self.steps,
                    lr=s.lr, beta1=beta1, beta2=beta2, weight_decay=s.weight_decay, eps=ADAM_EPS,
                )  # fmt: skip
                return
            first = s.momentum != 0 and not self.momentum_buffers
            if first:
                # As torch.optim.SGD: the buffers start as the first gradient, which the kernel copies in.
                self.momentum_buffers = [torch.empty_like(g) for g in grads]
            kernels.sgd_step_(
                self.params, list(grads), self.momentum_buffers if s.momentum != 0 else [],
                weight_decay=s.weight_decay, momentum=s.momentum, lr=s.lr, is_first_step=first,
            )  # fmt: skip
