"""``sparsebench run ... --dry-run``: the plan of an experiment and an estimate of its cost, without training.

What a user needs to size a cluster job: the work groups (``plan``), their
trials, the candidates the searches score, the FLOPs all of it takes, and an
estimated time on this machine. The time comes from a short calibration: a few
training steps of a small stack of each group's own shape (the actual parent,
compacted at the group's sparsity), timed here and scaled to the group's
networks, steps and epochs. Nothing is trained for real, and no store is
created or changed: an existing store is only read, to show what it holds.

>>> from sparsebench import ExperimentConfig
>>> est = dry_run(ExperimentConfig(dataset="digits", hidden=(8,), seeds=(0,), sparsities=(0.5,), epochs=1, candidates=2),
...               store=":memory:", calibrate=False)
>>> [(g.label, g.trials, g.candidates) for g in est.groups]
[('dense', 1, 0), ('s=0.5', 2, 2)]
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

import torch

from .config import ExperimentConfig
from .data.registry import DatasetSplits
from .engine.common import TrainSettings, steps_per_epoch
from .engine.families import FamilyEngine, engine_for
from .methods.registry import make_method
from .models.base import ParentFamily
from .names import DENSE, EVOLUTION, RANDOM, RANDOM_SEARCH, TRAINED_SEARCH
from .plan import WorkGroup, plan
from .seeding import generator

#: The most networks a calibration stacks (its time is scaled linearly to the group's).
CALIBRATION_NETWORKS = 4
#: Training steps of a calibration (each timing the fastest of a few, after an untimed warm-up: see ``_timed``).
CALIBRATION_STEPS = 3
#: Validation rows a calibration evaluates (its time is scaled to the splits' rows).
CALIBRATION_ROWS = 256
#: Candidates a calibration scores (scaled to K).
CALIBRATION_CANDIDATES = 4
#: The searches that score untrained candidates (K each per seed, timed as the loss score is).
SCORING_SEARCHES = (RANDOM_SEARCH, EVOLUTION)
#: The methods whose cost of choosing a mask the estimate includes (any other's: said not to be estimated).
ESTIMATED_METHODS = (DENSE, RANDOM, *SCORING_SEARCHES, TRAINED_SEARCH)
#: A training example's FLOPs per forward FLOP: the forward pass, and a backward pass of about twice its cost.
TRAINING_FLOPS_PER_FORWARD = 3


@dataclass(frozen=True)
class GroupEstimate:
    """One work group: its trials (how many the store holds), candidates scored, FLOPs and estimated seconds."""

    label: str
    trials: int
    stored: int
    candidates: int
    flops: float
    #: Estimated seconds to run it, every network training every epoch (0 when it is stored whole; None without calibration).
    seconds: float | None
    #: Estimated seconds of one epoch of all its networks (None without calibration).
    epoch_seconds: float | None = None

    @property
    def pending(self) -> bool:
        return self.stored < self.trials


@dataclass(frozen=True)
class DryRun:
    """The plan of an experiment and its estimated cost (``format_dry_run`` prints it)."""

    config_hash: str
    store: str
    #: The experiment's id in the store; None when the store does not hold it (or does not exist).
    experiment_id: int | None
    groups: list[GroupEstimate]
    device: str
    threads: int
    engine: str
    epochs: int
    #: What the time estimate is based on (one sentence), or why there is none.
    basis: str
    #: Methods whose cost of choosing a mask is not in the estimate (any not in ``ESTIMATED_METHODS``).
    unestimated: tuple[str, ...] = ()
    splits: dict[str, int] = field(default_factory=dict)
    #: The fewest epochs a network trains (unless it diverges): the stopping rule stops it ``patience`` epochs
    #: after its best, which is epoch 1 at the earliest.
    min_epochs: int | None = None

    @property
    def trials(self) -> int:
        return sum(g.trials for g in self.groups)

    @property
    def stored(self) -> int:
        return sum(g.stored for g in self.groups)

    @property
    def candidates(self) -> int:
        return sum(g.candidates for g in self.groups)

    @property
    def flops(self) -> float:
        return sum(g.flops for g in self.groups)

    @property
    def seconds(self) -> float | None:
        """Estimated seconds left: the groups not stored whole (a resumed run trains such a group whole)."""
        if any(g.seconds is None for g in self.groups):
            return None
        return sum(g.seconds for g in self.groups if g.pending)

    @property
    def seconds_at_least(self) -> float | None:
        """Estimated seconds left if every network stopped as early as the stopping rule allows."""
        if self.seconds is None:
            return None
        fewer = self.epochs - (self.min_epochs or self.epochs)
        return sum(g.seconds - fewer * g.epoch_seconds for g in self.groups if g.pending)


def dry_run(config: ExperimentConfig | Mapping[str, Any] | None = None, store: str | os.PathLike = "sparsebench.db",
            calibrate: bool = True) -> DryRun:
    """The plan and estimated cost of ``config`` (and what ``store`` already holds of it), nothing trained or stored.

    The config and data are checked as ``run`` checks them (a refusal is the same one line).
    """
    from .runner import as_config, load_checked_data, parent_family, resolve_device, store_exists
    from .store import Store, store_errors

    cfg = as_config(config)
    device = resolve_device(cfg.execution.device)
    path = os.fsdecode(os.fspath(store))
    exists = store_exists(path) and path != ":memory:"
    data = load_checked_data(cfg.data, cfg.training.batch_size, device)
    family = parent_family(cfg.model, data)
    family.check_minibatches(len(data.y_train), cfg.training.batch_size)
    groups = plan(cfg.design)
    stored: dict[str, int] = {}
    experiment_id = None
    if exists:
        with store_errors(path), Store(path, create=False) as st:  # read only: nothing is created beside it
            experiment_id = st.experiment_id(cfg.config_hash(), cfg.to_dict(), create=False)
            if experiment_id is not None:
                stored = stored_per_group(groups, st.finished_keys(experiment_id))
    engine = engine_for(family)
    prepared = engine.prepare(data)
    flat = {"candidates": cfg.search.candidates, "score": cfg.search.score, "probe": cfg.design.probe}
    estimates, unestimated = [], set()
    basis = "no calibration (calibrate=False)"
    for g in groups:
        ks = candidates_per_seed(g, flat)
        search_epochs = search_epochs_per_seed(g, flat)
        unestimated |= {label for label in g.methods if g.method_of(label)[0] not in ESTIMATED_METHODS}
        candidates = sum(ks) * len(g.seeds)
        n_stored = min(stored.get(g.key, 0), g.n_trials)
        seconds = epoch_seconds = None
        if calibrate:
            seconds, epoch_seconds = estimate_seconds(g, ks, family, engine, prepared, cfg.training, cfg.execution.engine, device,
                                                      search_epochs)
            seconds = 0.0 if n_stored >= g.n_trials else seconds
        estimates.append(GroupEstimate(g.label, g.n_trials, n_stored, candidates,
                                       group_flops(g, ks, family, prepared, cfg.training.epochs, search_epochs), seconds,
                                       epoch_seconds))
    if calibrate:
        basis = (f"1 and {CALIBRATION_STEPS} training steps of a stack of each group's shape (its trials, at most {CALIBRATION_NETWORKS} networks; minibatch "
                 f"{cfg.training.batch_size}), {CALIBRATION_ROWS}-row evaluations and {CALIBRATION_CANDIDATES} scored "
                 f"candidates, timed now on this machine and scaled linearly to each group's networks, steps, epochs "
                 f"and candidates; every network is counted for all {cfg.training.epochs} epochs (patience may stop "
                 "networks earlier: an upper bound in that respect)")
    splits = {name: len(getattr(data, f"y_{name}")) for name in ("train", "val", "monitor", "test")}
    return DryRun(cfg.config_hash(), path, experiment_id, estimates, device.type, torch.get_num_threads(),
                  cfg.execution.engine, cfg.training.epochs, basis, tuple(sorted(unestimated)), splits,
                  min(cfg.training.epochs, cfg.training.patience + 1) if cfg.training.patience else cfg.training.epochs)


def stored_per_group(groups: list[WorkGroup], finished: set[tuple]) -> dict[str, int]:
    """Trials the store holds per group key (``finished``: the store's ``finished_keys``), as ``pending_groups`` counts them."""
    by_shape = {(g.sparsity is None, 0.0 if g.sparsity is None else g.sparsity): g.key for g in groups}
    counts: dict[str, int] = {}
    for method, _role, _cand, sparsity, _seed in finished:
        key = by_shape.get((method == DENSE, sparsity))
        if key is not None:
            counts[key] = counts.get(key, 0) + 1
    return counts


def candidates_per_seed(group: WorkGroup, flat: Mapping[str, Any]) -> list[int]:
    """K of each search of ``group`` that scores untrained candidates (random-search, evolution: its own
    ``candidates``, else the flat key)."""
    if group.sparsity is None:
        return []
    ks = []
    for label in group.methods:
        name, params = group.method_of(label)
        if name in SCORING_SEARCHES:
            ks.append(make_method(label, name, params, flat).candidates)
    return ks


def search_epochs_per_seed(group: WorkGroup, flat: Mapping[str, Any]) -> int:
    """Network-epochs ``group``'s trained-searches train per seed to choose their masks: K x E each."""
    if group.sparsity is None:
        return 0
    total = 0
    for label in group.methods:
        name, params = group.method_of(label)
        if name == TRAINED_SEARCH:
            method = make_method(label, name, params, flat)
            total += method.candidates * method.epochs
    return total


def group_flops(group: WorkGroup, ks: list[int], family: ParentFamily, data: DatasetSplits, epochs: int,
                search_epochs: int = 0) -> float:
    """FLOPs of ``group``: every network's training (forward and backward, every example of every epoch), its
    evaluations (validation and monitoring each epoch, validation once at initialization, test twice at the end),
    the scoring of each search's candidates on the validation split (``ks``: K per search, per seed), and
    ``search_epochs`` network-epochs per seed of trained-search (training and validation, no test)."""
    kept = None if group.sparsity is None else family.node_space.kept(group.sparsity)
    forward = family.flops(kept)
    n_train, n_val, n_monitor, n_test = (len(data.y_train), len(data.y_val), len(data.y_monitor), len(data.y_test))
    per_network = epochs * (TRAINING_FLOPS_PER_FORWARD * n_train + n_val + n_monitor) + n_val + 2 * n_test
    scoring = sum(ks) * len(group.seeds) * n_val
    searching = search_epochs * len(group.seeds) * (TRAINING_FLOPS_PER_FORWARD * n_train + n_val)
    return float(forward * (group.n_trials * per_network + scoring + searching))


# -- calibration --------------------------------------------------------------------------------------
def _subset(data: DatasetSplits, train_rows: int, eval_rows: int) -> DatasetSplits:
    rows = {"train": train_rows, "val": eval_rows, "test": eval_rows, "monitor": min(eval_rows, len(data.y_monitor))}
    return dataclasses.replace(data, **{f"{p}_{split}": getattr(data, f"{p}_{split}")[:n]
                                        for split, n in rows.items() for p in ("x", "y")})


def _timed(fn, budget: float = 0.25, most: int = 9) -> float:
    """The fastest of several timed calls of ``fn`` (after an untimed one: first allocations, kernel selection): at
    least two, more while they take under ``budget`` seconds in all. On a shared machine a call is often descheduled
    for tens of milliseconds; the fastest is the least disturbed."""
    fn()
    times: list[float] = []
    while len(times) < 2 or (len(times) < most and sum(times) < budget):
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


def estimate_seconds(group: WorkGroup, ks: list[int], family: ParentFamily, engine: FamilyEngine, data: DatasetSplits,
                     training: TrainSettings, engine_name: str, device: torch.device,
                     search_epochs: int = 0) -> tuple[float, float]:
    """Estimated seconds to train (every epoch), evaluate and score ``group`` (and train ``search_epochs``
    network-epochs per seed of trained-search), and of one epoch of its networks, from timing a few steps of its
    own shape here."""
    n_cal = min(group.n_trials, CALIBRATION_NETWORKS) if engine_name == "stacked" else 1
    seed = group.seeds[0]
    parent = engine.to_device(family.init(seed), device)
    if group.sparsity is None:
        masks = [family.node_space.full_mask()] * n_cal
    else:
        masks = family.node_space.random_masks(group.sparsity, max(n_cal, CALIBRATION_CANDIDATES), generator(seed, "dry-run"))
    batch = training.batch_size
    steps = max(1, min(CALIBRATION_STEPS, len(data.y_train) // batch))
    eval_rows = min(CALIBRATION_ROWS, len(data.y_val))
    settings = dataclasses.replace(training, epochs=1, patience=0)
    stacked = engine.stack([(parent, m) for m in masks[:n_cal]])

    def train(n_steps: int) -> float:
        part = _subset(data, n_steps * batch, eval_rows)
        if engine_name == "stacked":
            return _timed(lambda: engine.train(stacked, [seed] * n_cal, part, settings))
        mask = None if group.sparsity is None else masks[0]
        return _timed(lambda: engine.train_reference(parent, mask, seed, part, settings))

    # A step's time is the difference between training 1 and ``steps`` steps: what a call costs besides its
    # steps (the evaluations, setting up) cancels out. Noise can make it negative: then the whole call counts.
    one = train(1)
    many = train(steps) if steps > 1 else one
    step = (many - one) / (steps - 1) if many > one else many / steps
    evaluation = _timed(lambda: engine.evaluate(stacked, data.x_val[:eval_rows], data.y_val[:eval_rows])) / eval_rows
    per_network_step, per_network_row = step / n_cal, evaluation / n_cal
    n_train, n_val, n_monitor, n_test = len(data.y_train), len(data.y_val), len(data.y_monitor), len(data.y_test)
    epoch = steps_per_epoch(n_train, batch) * per_network_step + (n_val + n_monitor) * per_network_row
    seconds = group.n_trials * (training.epochs * epoch + (n_val + 2 * n_test) * per_network_row)
    seconds += search_epochs * len(group.seeds) * (steps_per_epoch(n_train, batch) * per_network_step + n_val * per_network_row)
    if ks:
        k_cal = min(CALIBRATION_CANDIDATES, len(masks))
        scoring = _timed(lambda: engine.score(parent, masks[:k_cal], data.x_val[:eval_rows], data.y_val[:eval_rows],
                                               "loss", reference=engine_name == "reference"))
        seconds += scoring / (k_cal * eval_rows) * sum(ks) * len(group.seeds) * n_val
    return seconds, group.n_trials * epoch


# -- output -------------------------------------------------------------------------------------------
def clock(seconds: float | None) -> str:
    """``H:MM:SS`` rounded up (days as hours), or ``-`` without an estimate.

    >>> clock(3725.4), clock(None)
    ('1:02:06', '-')
    """
    if seconds is None:
        return "-"
    total = int(math.ceil(seconds))
    return f"{total // 3600}:{total % 3600 // 60:02d}:{total % 60:02d}"


def seconds_text(seconds: float | None) -> str:
    """Seconds with three significant digits, ``-`` without an estimate.

    >>> seconds_text(0.01234), seconds_text(1234.5), seconds_text(None)
    ('0.0123s', '1.23e+03s', '-')
    """
    return "-" if seconds is None else f"{seconds:.3g}s"


def format_dry_run(est: DryRun) -> str:
    """The plan as a table (one row per work group, then the total) and what the estimate rests on."""
    where = ("not in the store yet" if est.experiment_id is None else
             f"experiment {est.experiment_id} in the store: {est.stored} of {est.trials} trials stored")
    lines = [
        "dry run: nothing is trained, and no store is created or changed",
        f"experiment {est.config_hash} ({where}; store {est.store})",
        "data rows: " + ", ".join(f"{k} {v}" for k, v in est.splits.items()),
        f"device {est.device}, {est.threads} threads, engine {est.engine}, at most {est.epochs} epochs",
        "",
        f"{'group':<12} {'trials':>7} {'stored':>7} {'candidates':>11} {'GFLOPs':>14} {'est. time':>10} {'per epoch':>10}",
    ]
    for g in est.groups:
        lines.append(f"{g.label:<12} {g.trials:>7} {g.stored:>7} {g.candidates:>11} {g.flops / 1e9:>14.3f} "
                     f"{clock(g.seconds):>10} {seconds_text(g.epoch_seconds):>10}")
    epoch = None if est.seconds is None else sum(g.epoch_seconds for g in est.groups if g.pending)
    lines.append(f"{'total':<12} {est.trials:>7} {est.stored:>7} {est.candidates:>11} {est.flops / 1e9:>14.3f} "
                 f"{clock(est.seconds):>10} {seconds_text(epoch):>10}")
    lines += [
        "",
        f"estimated time left on this machine: {clock(est.seconds)} if every network trains all {est.epochs} epochs "
        f"({seconds_text(epoch)} an epoch; an estimate; a group not stored whole is trained whole)",
        *([f"at least {clock(est.seconds_at_least)} if the stopping rule stops every network at its earliest, epoch "
           f"{est.min_epochs} (none diverging)"] if est.min_epochs is not None and est.min_epochs < est.epochs else []),
        f"based on: {est.basis}",
        "GFLOPs: every network's forward and backward passes (3 forward passes per training example) for every epoch, "
        "its evaluations, the searches' scoring (random-search, evolution) and trained-search's brief training",
    ]
    if est.unestimated:
        lines.append(f"not estimated: the cost of choosing masks for {', '.join(est.unestimated)} (selection runs before training)")
    return "\n".join(lines)
