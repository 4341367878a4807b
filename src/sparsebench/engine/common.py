"""What both engines share: settings, the minibatch order, the optimizer's definition, results."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..seeding import generator


@dataclass(frozen=True)
class TrainSettings:
    epochs: int
    batch_size: int
    optimizer: str
    lr: float
    momentum: float = 0.9
    weight_decay: float = 0.0
    activation: str = "relu"
    #: Stop a network once its validation accuracy has not improved for this many epochs (0: never).
    patience: int = 0

    def should_stop(self, epoch: int, best_epoch: int) -> bool:
        """The stopping rule, the same for every method and both engines: no improvement of the
        validation accuracy for ``patience`` epochs, before the last epoch (a network that
        trains every epoch has no stop epoch)."""
        return self.patience > 0 and epoch < self.epochs and epoch - best_epoch >= self.patience


def epoch_order(seed: int, epoch: int, n: int) -> torch.Tensor:
    """The training-set permutation of ``epoch`` for every trial of ``seed`` (the paired design).

    It depends on the seed and the epoch only, never on the method or sparsity.
    """
    return torch.randperm(n, generator=generator(seed, "minibatch-order", epoch))


def steps_per_epoch(n: int, batch_size: int) -> int:
    return math.ceil(n / batch_size)


# Adam's betas and epsilon (PyTorch's defaults), shared by both engines' optimizers.
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


def make_optimizer(params: list[torch.Tensor], s: TrainSettings) -> torch.optim.Optimizer:
    """Adam or SGD with momentum as research code builds them (``torch.optim``'s defaults).

    The stacked engine's ``FusedOptimizer`` performs the same update; both act
    element by element, so stacking N networks' tensors into one parameter
    gives each network exactly its own update.
    """
    if s.optimizer == "adam":
        return torch.optim.Adam(params, lr=s.lr, betas=ADAM_BETAS, eps=ADAM_EPS, weight_decay=s.weight_decay)
    return torch.optim.SGD(params, lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay)


@dataclass
class TrainResult:
    """One trained network: its curves (index e is epoch e+1) and test metrics.

    A network the stopping rule stopped has curves up to ``stop_epoch``, and its
    final weights and final test metrics are those of that epoch.
    """

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    #: Per epoch on the monitoring split; empty when there is none.
    monitor_loss: list[float] = field(default_factory=list)
    monitor_acc: list[float] = field(default_factory=list)
    stop_epoch: int | None = None
    final_test_loss: float = math.nan
    final_test_acc: float = math.nan
    best_epoch: int = 0
    best_val_acc: float = math.nan
    best_test_loss: float = math.nan
    best_test_acc: float = math.nan
    diverged_epoch: int | None = None
    seconds: float = 0.0
    #: The trained weights as the engine holds them (compacted for the stacked engine).
    final_weights: list = field(default_factory=list, repr=False)

    @property
    def diverged(self) -> bool:
        return self.diverged_epoch is not None


def record_epoch(results: list[TrainResult], epoch: int, train_loss: torch.Tensor, train_acc: torch.Tensor,
                 val_loss: torch.Tensor, val_acc: torch.Tensor, monitor: tuple[torch.Tensor, torch.Tensor] | None,
                 diverged_at: list[int | None], stopped_at: list[int | None]) -> None:
    """Append one epoch's metrics ``(N,)`` to each stacked network still training, and mark the networks whose
    training or validation loss is no longer finite as diverged at ``epoch`` (both stacked engines)."""
    finite = torch.isfinite(train_loss) & torch.isfinite(val_loss)
    for i, r in enumerate(results):
        if diverged_at[i] is not None or stopped_at[i] is not None:
            continue
        r.train_loss.append(float(train_loss[i]))
        r.train_acc.append(float(train_acc[i]))
        r.val_loss.append(float(val_loss[i]))
        r.val_acc.append(float(val_acc[i]))
        if monitor is not None:
            r.monitor_loss.append(float(monitor[0][i]))
            r.monitor_acc.append(float(monitor[1][i]))
        if not finite[i]:
            diverged_at[i] = epoch
