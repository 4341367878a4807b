"""Plan → claim → select masks → train → store, resumable: the experiment pipeline.

A run claims one work group at a time in the store (a lease renewed while it
trains), stores the group whole in one transaction together with releasing the
claim, and goes on until no group is pending. So a run can be killed anywhere
and resumed, and several runs of one config can share a store at once.

>>> import sparsebench
>>> cfg = sparsebench.ExperimentConfig(seeds=(0,), sparsities=(0.9,), epochs=1, candidates=4)
>>> trials = sparsebench.run(cfg, store=":memory:", progress=False)
>>> sorted(trials["method"].unique())
['dense', 'random', 'random-search']
"""

from __future__ import annotations

import copy
import json
import math
import operator
import os
import sqlite3
import threading
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import pandas as pd
import torch
from tqdm import tqdm

from .config import DataSection, DesignSection, ExperimentConfig, ParentSection, SearchSection
from .data.fingerprint import data_stats, short
from .data.registry import DatasetSplits, load_dataset
from .engine import kernels
from .engine.allocator import keep_freed_memory
from .engine.common import TrainResult, TrainSettings
from .engine.families import FamilyEngine, engine_for
from .errors import ConfigError, PluginError, ResourceError, SparsebenchError, SparsebenchWarning, StoreError, describe, invalid, show
from .execution import Executor, make_executor
from .execution.local import LocalExecutor
from .execution.work import Job
from .methods.base import Selection, SelectionContext
from .methods.registry import NO_PARAMS, PROBE, make_method
from .models.base import NodeSpace, ParentFamily, Weights
from .models.mask import NodeMask
from .models.registry import family_for
from .names import DENSE, RANDOM_SEARCH, SCORES
from .identity import computing_environment
from .numerics import warn_if_mkl_not_strict
from .plan import WorkGroup, plan, remaining_parts
from .scores import score_masks
from .seeding import generator
from .store import (
    CandidateRecord, Store, TrialRecord, check_store_file, connect_for_lease, renew_claim, store_errors, worker_id,
)

#: The smallest training split (after the validation split) a run accepts, in rows and in rows of
#: each class: fewer cannot be trained on, nor give a validation curve and minibatches that mean anything.
MIN_TRAIN_ROWS = 10
MIN_ROWS_PER_CLASS = 2
#: How long a claim on a work group lasts unless renewed. A run killed on another
#: machine (or in another PID namespace) blocks the groups it held at most this
#: long; on the same machine a dead owner is seen at once. Override it with the
#: environment variable below (tests use about a second).
LEASE_SECONDS = 60.0
LEASE_ENV = "SPARSEBENCH_LEASE_SECONDS"
#: A claim's lease is renewed this often (at most; a quarter of the lease if shorter).
RENEW_SECONDS = 5.0
#: A run whose remaining groups are all claimed by others looks again this often (at most).
POLL_SECONDS = 1.0


@dataclass
class Network:
    """One network of a work group, before training."""

    method: str  # its label
    role: str
    candidate: int
    seed: int
    mask: NodeMask
    #: What choosing it cost (a probe's and the dense parent's are 0: the selected trial carries the search's cost).
    selection_seconds: float = 0.0
    candidate_evaluations: int = 0
    search_epochs: int = 0
    #: The method's registered name and canonical parameters (JSON); None: the label is the name, at its defaults.
    method_name: str | None = None
    method_params: str = "{}"
    #: How its initial score is measured (None: the config's ``score``; a random-search's own ``score``).
    score_name: str | None = None


def as_config(config: ExperimentConfig | Mapping[str, Any] | None) -> ExperimentConfig:
    if config is None:
        return ExperimentConfig()
    if isinstance(config, ExperimentConfig):
        return config
    values = dict(config)
    preset = values.pop("preset", None)  # as in a TOML file: a preset, then the values over it
    return ExperimentConfig.from_sources(preset=preset, overrides=values) if preset is not None else ExperimentConfig.from_dict(values)


def resolve_device(name: str) -> torch.device:
    """The device ``name``; on CUDA, with deterministic computation set up for this process first (see below)."""
    if name == "cuda":
        # Before CUDA is first asked about; the process-wide switches only once it is there.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE_CONFIG)
        if not torch.cuda.is_available():
            raise ConfigError("device: got 'cuda' but no CUDA device is available; allowed: cpu")
        make_cuda_deterministic()
    return torch.device(name)


#: cuBLAS's workspace setting under which its products are deterministic (``:16:8`` is the other one allowed).
CUBLAS_WORKSPACE_CONFIG = ":4096:8"


def make_cuda_deterministic() -> None:
    """Deterministic algorithms for every CUDA operation of this process, so that a trial trained again (a resumed
    run, another worker, a store to merge) gets the same bits on the same GPU and software.

    ``CUBLAS_WORKSPACE_CONFIG`` must be set before CUDA creates its cuBLAS handle: here, before the device is first
    asked for (a value the user set is kept). TF32 is off: products and convolutions in float32, as on the CPU,
    so that a GPU's numbers agree with a CPU's to float tolerance. Process-wide, as torch's switches are.
    """
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE_CONFIG)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def run(
    config: ExperimentConfig | Mapping[str, Any] | None = None,
    store: str | os.PathLike = "sparsebench.db",
    progress: bool = True,
    executor: Executor | str = "local",
) -> pd.DataFrame:
    """Run (or resume) an experiment and return its trials as a DataFrame.

    Trials already in ``store`` for the same config are not run again, nor are those another experiment
    of the store holds with the same identity and environment (identity.py): they are reused. Several
    runs of one config may share a store at once: each claims a work group,
    trains it and stores it whole, then claims the next; when every remaining
    group is claimed by another live run, it waits for them, so that each run
    returns the complete result.

    ``executor`` runs the work groups: ``"local"`` (in this process), ``"ray"`` (Ray tasks on a local
    Ray instance), or an ``Executor`` (``execution.ray.RayExecutor(address=..., num_cpus=...)``). It is
    not part of the experiment's identity: any executor resumes any other's experiment.

    >>> df = run({"seeds": 1, "sparsities": [0.5], "epochs": 1, "candidates": 2}, store=":memory:", progress=False)
    >>> len(df)
    3
    """
    cfg = as_config(config)
    device = resolve_device(cfg.execution.device)
    lease = lease_seconds()
    kernels.requested()  # a bad $SPARSEBENCH_KERNELS is refused now, before a store exists
    if isinstance(executor, str):
        executor = make_executor(executor)  # Ray missing is refused before anything is loaded
    path = os.fsdecode(os.fspath(store))
    # The data is loaded and checked on every run, before the store is opened: a refused
    # dataset leaves no file behind, and its fingerprint is what a resumed experiment is checked against.
    store_exists(path)  # a path that cannot be a store is refused first, before the data is loaded
    data = load_checked_data(cfg.data, cfg.training.batch_size, device)
    warn_if_mkl_not_strict()
    family = parent_family(cfg.model, data)  # a shape the family cannot take is refused before the store is opened too
    family.check_minibatches(len(data.y_train), cfg.training.batch_size)
    stats = dataset_stats(data)
    # What the jobs compute with: their thread count is the executor's (a Ray task's, not this driver's).
    software = recorded_software(device, executor.threads())
    with store_errors(path), Store(path) as st:
        experiment_id = st.experiment_id(cfg.config_hash(), cfg.to_dict(), create=False)
        if experiment_id is None:
            experiment_id = st.experiment_id(cfg.config_hash(), cfg.to_dict(), software=software,
                                             data_fingerprint=data.fingerprint, data_stats=stats)
        else:
            warn_if_resumed_with_other_software(cfg.design, st, experiment_id, device, executor.threads())
        # Also after creating it: a concurrent run may have created it first, from other data.
        check_data_identity(cfg.data, st, experiment_id, path, data.fingerprint, stats)
        # Trials another experiment of the store already holds (same identity, data and environment) are reused.
        st.adopt_units(experiment_id, computing_environment(software, str(device)))
        if isinstance(executor, LocalExecutor) and executor.loaded is None:
            executor.loaded = (data, family)  # the data this run loaded and checked: not loaded again
        execute(cfg, st, experiment_id, device, lease, progress, data, family, executor)
        return st.trials(experiment_id)


def parent_family(parent: ParentSection | Mapping[str, Any], data: DatasetSplits) -> ParentFamily:
    """The parent ``parent`` (``cfg.model``) describes, for this data (refused in one line if its family
    cannot take the data's shape), with an engine to train it."""
    family = family_for(parent, tuple(data.x_train.shape[1:]), data.n_classes)
    engine_for(family)  # a family the engine cannot train is refused now, not after the store is opened
    return family


def store_exists(path: str) -> bool:
    """Whether ``path`` is an existing store (refusing at once, in one line, a path that
    cannot be one); an in-memory store always "exists": there is no file to leave behind."""
    if path == ":memory:":
        return True
    with store_errors(path):
        return check_store_file(path)


def load_checked_data(source: DataSection, batch_size: int, device: torch.device) -> DatasetSplits:
    """The splits of the dataset ``source`` (``cfg.data``) describes, on ``device``, refused in one line if the
    held-out splits leave no training example, standardizing overflows, or too little is left to train on
    in minibatches of ``batch_size``."""
    torch.set_num_threads(compute_threads())
    with warnings.catch_warnings():
        # numpy's complaints about standardizing an empty training split: refused below, in one line.
        warnings.filterwarnings("ignore", "Mean of empty slice|invalid value encountered|Degrees of freedom", RuntimeWarning)
        # Features so large that their standardization overflows (in the loader's float32, say) would
        # otherwise print numpy's warning and train on features that became all zero or infinite.
        warnings.filterwarnings("error", "overflow encountered", RuntimeWarning)
        try:
            data = load_dataset(source.dataset, source.data_seed, source.val_fraction, source.monitor_fraction,
                                source.standardize, source.data_dir, source.train_limit, source.augment).to(device)
        except RuntimeWarning as exc:
            raise ConfigError(f"dataset {source.dataset!r}: standardizing its features overflows ({describe(exc)}); "
                              "allowed: features small enough to standardize in their dtype and in float32 (rescale them, or return float64)") from None
    if len(data.y_train) == 0:
        n = len(data.y_val)
        raise invalid("val_fraction", source.val_fraction, f"a fraction that leaves training examples ({source.dataset} has {n} to split)")
    check_training_split(source, batch_size, data)
    return data


def dataset_stats(data: DatasetSplits) -> dict:
    """Split sizes, classes and chance accuracy of the loaded data, as the experiment records them."""
    return data_stats(data.y_train.cpu().numpy(), data.y_val.cpu().numpy(), data.y_test.cpu().numpy(), data.n_classes,
                      len(data.y_monitor))


def check_data_identity(source: DataSection, st: Store, experiment_id: int, path: str, fingerprint: str, stats: dict) -> None:
    """Refuse to resume an experiment on other data than it was stored from; an experiment
    stored before fingerprints were recorded adopts the current one (with a warning)."""
    recorded, _ = st.data_identity(experiment_id)
    if recorded is None:
        if st.adopt_data_identity(experiment_id, fingerprint, stats):
            warnings.warn(
                f"experiment {experiment_id} was stored before data fingerprints were recorded; it now records the "
                f"fingerprint {short(fingerprint)} of the {source.dataset!r} data loaded today, which cannot be checked "
                "against the data its stored trials were trained on",
                SparsebenchWarning,
                stacklevel=3,
            )
            return
        recorded, _ = st.data_identity(experiment_id)  # another run recorded one just now
    if recorded != fingerprint:
        raise ConfigError(
            f"dataset {source.dataset!r}: the data loaded now (fingerprint {short(fingerprint)}) differs from the data "
            f"experiment {experiment_id} in {show(path)} was run on ({short(recorded)}); nothing was changed; allowed: "
            "restore the data it was run on, or run the changed data into a new store (--store)"
        )


def check_training_split(source: DataSection, batch_size: int, data: DatasetSplits) -> None:
    """Refuse, in one line, a training split too small to train on or standardized features that are not finite.

    At least ``MIN_TRAIN_ROWS`` rows and ``MIN_ROWS_PER_CLASS`` of every class must
    remain after the validation split (``data`` as ``source``, ``cfg.data``, split it),
    and a minibatch (``batch_size``) cannot be larger than the split.
    """
    n_train = len(data.y_train)
    counts = torch.bincount(data.y_train.cpu(), minlength=data.n_classes)
    where = f"holding out val_fraction {source.val_fraction:g} for validation" + (" and monitoring" if source.monitor_fraction else "")
    if n_train < MIN_TRAIN_ROWS or int(counts.min()) < MIN_ROWS_PER_CLASS:
        rarest = int(counts.argmin())
        raise ConfigError(
            f"dataset {source.dataset!r}: the training split has {n_train} rows ({int(counts[rarest])} of class {rarest}) after "
            f"{where}; allowed: at least {MIN_TRAIN_ROWS} training rows and {MIN_ROWS_PER_CLASS} of every class "
            "(more data or a smaller val_fraction)"
        )
    if batch_size > n_train:
        raise invalid("batch_size", batch_size, f"at most the {n_train} rows of the training split ({source.dataset!r} after {where})")
    for split in ("x_train", "x_val", "x_monitor", "x_test"):
        if not bool(torch.isfinite(getattr(data, split)).all()):
            raise ConfigError(f"dataset {source.dataset!r}: standardized {split[2:]} features are not all finite in float32; "
                              "allowed: features whose standardized values fit float32 (rescale the data)")


def software_versions() -> dict[str, str]:
    """What computes the numbers: recorded with each new experiment.

    With ``threads``, torch's intra-op thread count (``compute_threads``, set before this is
    read), and ``mkl_cbwr``, MKL's reproducibility mode in effect: numbers are bit-identical
    for the same hardware, software, thread count and mode (``numerics``).
    """
    import platform

    from . import __version__
    from .numerics import compute_environment

    return {"sparsebench": __version__, "torch": torch.__version__, "python": platform.python_version(),
            **compute_environment()}


def recorded_software(device: torch.device | str = "cpu", threads: int | None = None) -> dict[str, str]:
    """``software_versions`` and the kernels a run on ``device`` uses (``engine/kernels.py``: ``private``, ``public``,
    or which ones are public): what an experiment records of what computed its numbers. ``threads``: the intra-op
    threads its jobs use where they are not this process's (a Ray task's ``--ray-num-cpus``)."""
    software = {**software_versions(), "kernels": kernels.summary(device)}
    return software if threads is None else {**software, "threads": str(threads)}  # as compute_environment writes it


def warn_if_resumed_with_other_software(design: DesignSection, st: Store, experiment_id: int,
                                        device: torch.device | str = "cpu", threads: int | None = None) -> None:
    """Bit-identical numbers need the same software: say so when an unfinished experiment
    (of the trials ``design``, ``cfg.design``, plans) is resumed with other versions (or kernels, on ``device``)
    than it was started with."""
    recorded = st.software(experiment_id)
    if recorded and "kernels" not in recorded:
        recorded = {**recorded, "kernels": kernels.LEGACY_SUMMARY}  # recorded before the kernels were: the private ones
    # Stores written before the thread count and MKL mode were recorded are compared on the versions alone.
    current = {k: v for k, v in recorded_software(device, threads).items() if k in recorded or k not in ("threads", "mkl_cbwr")}
    if not recorded or recorded == current or len(st.finished_keys(experiment_id)) >= sum(g.n_trials for g in plan(design)):
        return
    differences = ", ".join(f"{k} {recorded.get(k, '?')} -> {v}" for k, v in current.items() if recorded.get(k) != v)
    warnings.warn(
        f"experiment {experiment_id} was started with other software ({differences}); "
        "trials trained now may differ from its earlier ones in the last bits",
        SparsebenchWarning,
        stacklevel=3,
    )


def lease_seconds() -> float:
    """The lease of a claim: ``$SPARSEBENCH_LEASE_SECONDS`` if set, else ``LEASE_SECONDS``."""
    text = os.environ.get(LEASE_ENV, "").strip()
    if not text:
        return LEASE_SECONDS
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise invalid(LEASE_ENV, text, "a number of seconds > 0")
    return value


def compute_threads() -> int:
    """Torch's CPU threads: ``$OMP_NUM_THREADS`` if set to a positive integer, else every core.

    Runs sharing one machine (e.g. two workers on one store) should each set it,
    or their threads oversubscribe the cores and both slow down many times over.
    """
    text = os.environ.get("OMP_NUM_THREADS", "").strip()
    return int(text) if text.isdigit() and int(text) > 0 else (os.cpu_count() or 1)


def execute(
    cfg: ExperimentConfig,
    st: Store,
    experiment_id: int,
    device: torch.device,
    lease: float,
    progress: bool,
    data: DatasetSplits,
    family: ParentFamily,
    executor: Executor | None = None,
) -> None:
    """Claim work groups, have ``executor`` run them, and store each as it returns, until every group is stored.

    ``data`` is what ``run`` loaded and checked (and whose fingerprint it matched); ``family`` the parent built for it.
    This process is the store's one writer: it claims as many groups as ``executor`` runs at once (the local
    executor: one, in this process), renews their leases while they run, and stores each group's records in one
    transaction together with releasing its claim. Each job receives its sections of ``cfg`` (see ``Job``).
    """
    keep_freed_memory()
    design, training = cfg.design, cfg.training
    groups = {g.key: g for g in plan(design)}
    if executor is None:
        executor = LocalExecutor(data, family)
    owner = worker_id()
    poll = max(0.01, min(POLL_SECONDS, lease / 4))
    bar: tqdm | None = None
    outstanding: set[str] = set()  # groups on the progress bar, not yet counted as done
    running: dict[str, LeaseKeeper] = {}  # groups claimed and handed to the executor, not yet stored
    reported: dict[str, float] = {}  # progress already shown of each running group
    try:
        executor.start()
        threads = executor.threads()
        while True:
            claim = None
            while executor.busy() < executor.capacity():
                claim = st.claim_next(experiment_id, owner, lease,
                                      lambda: [g.key for g in pending_groups(design, st, experiment_id) if g.key not in running])
                if bar is None:
                    outstanding = set(claim.pending)
                    bar = progress_bar(sum(work_units(training, groups[k], family) for k in outstanding), progress)
                finished_elsewhere = outstanding - set(claim.pending) - set(running)
                bar.update(sum(work_units(training, groups[k], family) for k in finished_elsewhere))
                outstanding -= finished_elsewhere
                if claim.key is None:
                    break
                group = groups[claim.key]
                running[group.key] = LeaseKeeper(st.path, experiment_id, group.key, owner, lease).__enter__()
                reported[group.key] = 0.0
                per_network_epoch = work_units(training, group, family) / (group.n_trials * training.epochs)
                parts = tuple(remaining_parts(group, st.stored_units(experiment_id)))  # only what is not stored (or reused)
                if not parts:  # pending, yet every unit stored whole: the store holds trials its plan does not
                    raise StoreError(f"{st.path}: experiment {experiment_id}, group {group.label}: {group.n_trials} trials "
                                     "planned and every selection unit stored, but the group's count differs; allowed: "
                                     "a store written by sparsebench (export the experiment, or run it in a new store)")
                skipped = (group.n_trials - sum(p.n_trials for p in parts)) * per_network_epoch * training.epochs
                reported[group.key] += skipped
                bar.update(skipped)

                def on_progress(n: int, key: str = group.key, unit: float = per_network_epoch) -> None:
                    reported[key] += n * unit
                    bar.update(n * unit)

                executor.submit(Job.of(cfg, group, data.fingerprint, threads, parts), on_progress)
            if not running:
                if claim is not None and not claim.pending:
                    bar.update(sum(work_units(training, groups[k], family) for k in outstanding))
                    return
                # Every remaining group is being trained by another live run: wait for
                # it to be stored, or for its lease to expire and take it over.
                bar.set_postfix_str("waiting for another run")
                delay = poll if claim is None or claim.retry_at is None else min(poll, max(0.0, claim.retry_at - time.time()) + 0.01)
                time.sleep(delay)
                continue
            bar.set_postfix_str(running_label([groups[k] for k in running]))
            result = executor.next_result(timeout=poll)
            if result is None:
                continue  # none finished yet: look for groups freed meanwhile, then wait again
            running.pop(result.key).__exit__(None, None, None)
            st.save_group(experiment_id, result.trials, result.candidates, claim=(result.key, owner))
            bar.update(work_units(training, groups[result.key], family) - reported.pop(result.key))
            outstanding.discard(result.key)
    finally:
        executor.stop()
        for keeper in running.values():
            keeper.__exit__(None, None, None)
        if bar is not None:
            bar.close()
        try:
            st.release_claims(owner)  # at once, so a resumed or concurrent run need not wait for the lease
            st.checkpoint()  # stopped by an error or an interruption too: the store file alone holds what was stored
        except sqlite3.Error:
            pass  # the claims then expire with their lease


def running_label(running: list[WorkGroup]) -> str:
    """The progress bar's note on what is being trained: the group, or how many run at once.

    >>> running_label([WorkGroup(0.5, (0,), ("random",), 0)])
    's=0.5'
    >>> running_label([WorkGroup(0.5, (0,), ("random",), 0), WorkGroup(0.9, (0,), ("random",), 0)])
    '2 groups running'
    """
    return running[0].label if len(running) == 1 else f"{len(running)} groups running"


#: A work group's fixed cost per epoch (the minibatch loop, moving data, launching kernels),
#: counted as if it were this many more trained parameters. Fitted on CPU timings (one
#: thread) of stacks of six sparse networks: 30k to 60k for widths 128 to 512.
GROUP_OVERHEAD_PARAMS = 40_000


def work_units(training: TrainSettings, group: WorkGroup, family: ParentFamily) -> float:
    """An estimate of the cost of training ``group`` (for ``training.epochs``), in the progress bar's units.

    Each epoch costs every network its multiply-adds per example (half its FLOPs: an
    MLP's parameter count, near enough; a CNN's counts each channel's positions), and
    the group a fixed overhead. Counting network-epochs instead would make the dense parent,
    trained first and the most costly per network, predict far too long a run: in
    the quick preset a sparse network-epoch takes a tenth to a half of a dense one,
    and the bar's time left after the dense group was 4.7 times the truth (now 0.6).
    """
    kept = None if group.sparsity is None else family.node_space.kept(group.sparsity)
    multiply_adds = family.flops(kept) / 2
    return float(training.epochs * (group.n_trials * multiply_adds + GROUP_OVERHEAD_PARAMS))


def progress_bar(total: float, enabled: bool) -> tqdm:
    """Percent done and the time left; the units (estimated work, see ``work_units``) are not shown."""
    return tqdm(total=total, desc="training", disable=not enabled, dynamic_ncols=True,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}{postfix}")


class LeaseKeeper:
    """Renews one claim's lease from a background thread while its group is selected and trained.

    A thread, not the training loop, so that a long epoch or a slow method's
    selection never lets the lease lapse. If the lease is lost anyway (the
    process was suspended longer than the lease), another run may train the
    same group; both store the same numbers and the store keeps the first.
    """

    def __init__(self, path: str, experiment_id: int, key: str, owner: str, lease: float):
        self.path, self.experiment_id, self.key, self.owner, self.lease = path, experiment_id, key, owner, lease
        self.interval = min(RENEW_SECONDS, lease / 4)
        self.renewals = 0
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "LeaseKeeper":
        if self.path != ":memory:":  # an in-memory store has no other runs
            self._thread = threading.Thread(target=self._renew_until_stopped, name="sparsebench-lease", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)

    def _renew_until_stopped(self) -> None:
        try:
            con = connect_for_lease(self.path)
        except sqlite3.Error:
            return  # the claim then expires with its lease
        try:
            while not self._stop.wait(self.interval):
                try:
                    if renew_claim(con, self.experiment_id, self.key, self.owner, self.lease):
                        self.renewals += 1
                    else:
                        self.lost = True
                except sqlite3.OperationalError:
                    continue  # locked for now: try again at the next interval
        finally:
            con.close()


def _is_out_of_memory(exc: BaseException) -> bool:
    """An allocation failure, as Python or torch (CPU or CUDA) reports it."""
    text = " ".join(str(exc).split())
    return isinstance(exc, MemoryError) or (
        isinstance(exc, RuntimeError) and ("out of memory" in text.lower() or "can't allocate memory" in text)
    )


@contextmanager
def _out_of_memory_as_error(family: ParentFamily, group: WorkGroup):
    """An allocation that fails because the config is too large becomes a one-line ``ResourceError``."""
    try:
        yield
    except (MemoryError, RuntimeError) as exc:
        if not _is_out_of_memory(exc):
            raise
        raise ResourceError(
            f"memory: training {group.label} ({group.n_trials} networks, hidden {list(family.node_space.widths)}) needs more memory "
            f"than is free ({shorten(str(exc), 160)}); allowed: smaller hidden widths, fewer seeds or candidates, or a smaller batch size"
        ) from None


def shorten(text: str, limit: int) -> str:
    """``text`` on one line, cut at a word boundary to at most ``limit`` characters, with "..." if cut."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 3]
    space = cut.rfind(" ")
    if space > 0 and (text[limit - 3] != " "):
        cut = cut[:space]
    return cut.rstrip(" ,;:.") + "..."


def pending_groups(design: DesignSection, st: Store, experiment_id: int) -> list[WorkGroup]:
    """The work groups of ``design`` (``cfg.design``) not yet stored whole."""
    stored: dict[tuple[bool, float], int] = {}
    for method, _role, _cand, sparsity, _seed in st.finished_keys(experiment_id):
        key = (method == DENSE, sparsity)
        stored[key] = stored.get(key, 0) + 1
    pending = []
    for g in plan(design):
        key = (True, 0.0) if g.sparsity is None else (False, g.sparsity)
        if stored.get(key, 0) < g.n_trials:
            pending.append(g)
    return pending


def select_networks(
    search: SearchSection, group: WorkGroup, parent: Weights, seed: int, data: DatasetSplits, family: ParentFamily, engine: str,
    training: TrainSettings | None = None,
) -> tuple[list[Network], list[CandidateRecord]]:
    """Ask each method of the group for its mask at this seed (``parent``: the seed's initial weights; ``search``:
    ``cfg.search``; ``engine``: the one that scores); add each search's probes (``WorkGroup.probes_for``).

    A method's random stream is keyed by its registered name and canonical parameters, not by its label, so
    relabelling a method changes no number; at its default parameters the key is the name alone, as it always was.
    """
    if group.sparsity is None:
        return [Network(DENSE, "selected", -1, seed, family.node_space.full_mask(), method_name=DENSE)], []
    networks, candidates = [], []
    flat = {"candidates": search.candidates, "score": search.score, "probe": group.probes}
    for label in group.methods:
        name, params = group.method_of(label)
        method = make_method(label, name, params, flat)
        stream = selection_stream(name, params)
        # Copies: a method that changed the parent or the data in place would
        # silently change what every other method of this seed trains on.
        ctx = SelectionContext(
            parent=family.bind(copy.deepcopy(parent), seed),
            sparsity=group.sparsity,
            seed=seed,
            candidates=search.candidates,
            score_name=search.score,
            x_train=data.float_copy("x_train"),  # float32 features, also of uint8 images
            y_train=data.y_train.clone(),
            x_val=data.float_copy("x_val"),
            y_val=data.y_val.clone(),
            generator=generator(seed, "method", *stream, group.sparsity),
            engine=engine,
            training=training,  # what ctx.train trains candidates with: the experiment's own settings
        )
        # Wall-clock of the method's own work only (not of copying the parent and data for it above).
        started = time.perf_counter()
        selection = _select(label, method, ctx)
        seconds = time.perf_counter() - started
        check_selected_mask(label, selection.mask, family.node_space, group.sparsity)
        evaluations, search_epochs = selection.cost()
        # A search that ranks by a score (random-search, evolution) ranks, and so its trials' initial scores are,
        # by its own score; any other method's by the flat score.
        own_score = getattr(method, "score", None)
        score_name = own_score if isinstance(own_score, str) and own_score in SCORES else None
        networks.append(Network(label, "selected", selection.chosen, seed, selection.mask, seconds, evaluations, search_epochs,
                                name, params, score_name))
        candidates += [
            CandidateRecord(label, group.sparsity, seed, i, score, i == selection.chosen, m.to_bytes())
            for i, (m, score) in enumerate(zip(selection.candidates, selection.scores))
        ]
        probes = group.probes_for(label)
        if probes:
            others = [i for i in range(len(selection.candidates)) if i != selection.chosen]
            if len(others) < probes or selection.chosen < 0:
                raise PluginError(f"method {label!r} at sparsity {group.sparsity:g}, seed {seed}: its probe is {probes} "
                                  f"but its Selection has {len(others)} other candidates"
                                  f"{'' if selection.chosen >= 0 else ' and no chosen one'}; allowed: a Selection "
                                  "whose candidates include the chosen mask (chosen >= 0) and at least probe others")
            probe_stream = () if params == NO_PARAMS and name == RANDOM_SEARCH else (name, params)
            order = torch.randperm(len(others), generator=generator(seed, "probe", *probe_stream, group.sparsity)).tolist()
            for i in sorted(others[j] for j in order[:probes]):
                networks.append(Network(label, "probe", i, seed, selection.candidates[i], method_name=name, method_params=params,
                                        score_name=score_name))
    return networks, candidates


def selection_stream(name: str, params: str) -> tuple[str, ...]:
    """What a method's random stream is keyed by: its registered name, and its canonical parameters where they
    are not the defaults; except ``probe``, which says what is trained besides, not how the mask is chosen (so
    probing a search changes none of its choices). random-search keeps ``probe`` in its key, as its results
    have been stored with it.

    >>> selection_stream("evolution", '{"probe":2}'), selection_stream("evolution", '{"population":4,"probe":2}')
    (('evolution',), ('evolution', '{"population":4}'))
    >>> selection_stream("random-search", '{"probe":2}')
    ('random-search', '{"probe":2}')
    """
    if name != RANDOM_SEARCH:
        values = json.loads(params)
        values.pop(PROBE, None)
        params = json.dumps(values, sort_keys=True, separators=(",", ":"))
    return (name,) if params == NO_PARAMS else (name, params)


def _select(name: str, instance: Any, ctx: SelectionContext) -> Selection:
    """The Selection of method ``instance`` (labelled ``name``); a failure inside the user's code is reported in
    one line, not as a traceback."""
    method = type(instance)
    where = f"{method.__module__}.{method.__qualname__}.select"
    try:
        selection = instance.select(ctx)
    except SystemExit as exc:
        # sys.exit() in a plugin would otherwise end the whole run as if it had succeeded (exit 0),
        # with the experiment incomplete. (A KeyboardInterrupt stays an interruption: resumable, exit 130.)
        raise PluginError(f"method {name!r}: {where} called sys.exit({show(exc.code)}) at sparsity {ctx.sparsity:g}, "
                          f"seed {ctx.seed}; allowed: return a Selection, or raise an exception") from None
    except Exception as exc:
        # Our own methods' failures are bugs (a traceback) or out-of-memory (a
        # ResourceError, further up); only a user's code is told in one line.
        if method.__module__.split(".")[0] == "sparsebench" or isinstance(exc, SparsebenchError) or _is_out_of_memory(exc):
            raise
        raise PluginError(f"method {name!r}: {where} failed at sparsity {ctx.sparsity:g}, seed {ctx.seed} "
                          f"({describe(exc)})") from None
    if not isinstance(selection, Selection):
        raise invalid(f"method {name!r} select() result", type(selection).__name__, "a sparsebench.methods.Selection")
    check_selection_scores(name, selection, ctx)
    check_selection_cost(name, selection, ctx)
    return selection


def check_selection_cost(name: str, selection: Selection, ctx: SelectionContext) -> None:
    """A Selection's ``evaluations`` (None or a count) and ``search_epochs`` are whole numbers >= 0."""
    for field_name, value, allowed in (
        ("evaluations", selection.evaluations, "None (one per candidate) or a whole number >= 0"),
        ("search_epochs", selection.search_epochs, "a whole number >= 0"),
    ):
        if value is None and field_name == "evaluations":
            continue
        try:
            whole = None if isinstance(value, bool) else operator.index(value)  # int, numpy integers; not 2.5, "3"
        except TypeError:
            whole = None
        if whole is None or whole < 0:
            raise PluginError(f"method {name!r}: its Selection at sparsity {ctx.sparsity!r}, seed {ctx.seed} has "
                              f"{field_name} {show(value)}; allowed: {allowed}")


def check_selection_scores(name: str, selection: Selection, ctx: SelectionContext) -> None:
    """A Selection's candidates and scores pair up one to one, and every score is a finite number."""
    at = f"at sparsity {ctx.sparsity!r}, seed {ctx.seed}"
    try:
        n_candidates, n_scores = len(selection.candidates), len(selection.scores)
    except TypeError as exc:
        raise PluginError(f"method {name!r}: its Selection {at} has candidates or scores without a length ({describe(exc)}); "
                          "allowed: two lists of equal length") from None
    if n_candidates != n_scores:
        raise PluginError(f"method {name!r}: its Selection {at} has {n_candidates} candidates but {n_scores} scores; "
                          "allowed: one score per candidate (or neither)")
    for i, score in enumerate(selection.scores):
        try:
            value = float(score)
        except (TypeError, ValueError, RuntimeError):  # RuntimeError: a tensor of more than one element
            value = None
        if value is None or not math.isfinite(value):
            raise PluginError(f"method {name!r}: its Selection {at} has score {show(score)} for candidate {i}; "
                              "allowed: finite numbers")


def check_selected_mask(method: str, mask: object, space: NodeSpace, sparsity: float) -> None:
    """A method's mask must be a valid NodeMask of the parent keeping exactly the nodes the sparsity allows."""
    expected = space.kept(sparsity)
    allowed = f"a NodeMask over node widths {list(space.widths)} keeping {list(expected)} nodes"
    if not isinstance(mask, NodeMask):
        raise invalid(f"method {method!r} mask at sparsity {sparsity:g}", type(mask).__name__, allowed)
    try:
        mask.check()
    except ValueError as exc:
        raise invalid(f"method {method!r} mask at sparsity {sparsity:g}", str(exc), allowed) from None
    if mask.widths != space.widths or mask.kept_per_layer != expected:
        raise invalid(f"method {method!r} mask at sparsity {sparsity:g}", f"{list(mask.kept_per_layer)} nodes kept", allowed)


def run_group(
    settings: TrainSettings,
    group: WorkGroup,
    data: DatasetSplits,
    family: ParentFamily,
    device: torch.device,
    on_progress: Callable[[int], None] = lambda n: None,
    *,
    search: SearchSection,
    engine: str,
) -> tuple[list[TrialRecord], list[CandidateRecord]]:
    """Select (``search``: ``cfg.search``), train (``settings``: ``cfg.training``, with ``engine``, "stacked" or
    "reference") and evaluate every network of one work group of ``family``'s parents."""
    family_engine: FamilyEngine = engine_for(family)
    data = family_engine.prepare(data)
    parents = {seed: family_engine.to_device(family.init(seed), device) for seed in group.seeds}
    networks: list[Network] = []
    candidates: list[CandidateRecord] = []
    for seed in group.seeds:
        nets, cands = select_networks(search, group, parents[seed], seed, data, family, engine, settings)
        networks += nets
        candidates += cands
    # Compacted initial weights of all networks, stacked (each from its own seed's parent).
    stacked = family_engine.stack([(parents[n.seed], n.mask) for n in networks])
    init_loss, init_acc = family_engine.evaluate(stacked, data.features(data.x_val), data.y_val)
    init_scores = [float(loss if (n.score_name or search.score) == "loss" else acc)
                   for n, loss, acc in zip(networks, init_loss.tolist(), init_acc.tolist())]
    for i, net in enumerate(networks):
        name = net.score_name or search.score
        if name not in ("loss", "accuracy"):
            # A training-free score: the network's own, computed alone (a function of this trial alone).
            init_scores[i] = float(score_masks(name, family, parents[net.seed], [net.mask], data.x_val, data.y_val)[0])

    reported = 0

    def report(count: int) -> None:
        nonlocal reported
        reported += count
        on_progress(count)

    if engine == "stacked":
        results = family_engine.train(stacked, [n.seed for n in networks], data, settings, on_epoch=report)
    else:
        results = []
        for net in networks:
            # The dense parent is trained as a plain module, not multiplied by all-ones masks.
            mask = None if net.method == DENSE else net.mask
            results.append(family_engine.train_reference(parents[net.seed], mask, net.seed, data, settings))
            report(settings.epochs)
    on_progress(len(networks) * settings.epochs - reported)  # epochs the stopping rule saved
    environment = computing_environment(recorded_software(device), str(device))  # where these numbers were computed
    trials = [_record(settings, group, family, net, res, score, environment)
              for net, res, score in zip(networks, results, init_scores)]
    return trials, candidates


def _monitor(values: list[float], epoch_index: int) -> float | None:
    """A monitoring-split value of one epoch; None without a monitoring split."""
    return values[epoch_index] if epoch_index < len(values) else None


def _finite_or_none(x: float) -> float | None:
    return x if x == x and abs(x) != float("inf") else None


def _record(settings: TrainSettings, group: WorkGroup, family: ParentFamily, net: Network, res: TrainResult, init_score: float,
            environment: str | None = None) -> TrialRecord:
    dense = group.sparsity is None
    kept = net.mask.kept_per_layer
    return TrialRecord(
        method=net.method,
        method_name=net.method_name or net.method,
        method_params=net.method_params,
        environment=environment,
        role=net.role,
        candidate=net.candidate,
        sparsity=0.0 if dense else group.sparsity,
        seed=net.seed,
        weight_sparsity=family.weight_sparsity(net.mask),
        kept_nodes=json.dumps(list(kept)),
        n_params=family.count_params(net.mask),
        mask=None if dense else net.mask.to_bytes(),
        init_score=_finite_or_none(init_score),
        status="diverged" if res.diverged else "done",
        diverged_epoch=res.diverged_epoch,
        epochs=settings.epochs,
        stop_epoch=res.stop_epoch,
        final_test_loss=_finite_or_none(res.final_test_loss),
        final_test_acc=_finite_or_none(res.final_test_acc),
        best_epoch=res.best_epoch or None,
        best_val_acc=_finite_or_none(res.best_val_acc),
        best_test_loss=_finite_or_none(res.best_test_loss),
        best_test_acc=_finite_or_none(res.best_test_acc),
        train_seconds=res.seconds,
        selection_seconds=net.selection_seconds,
        candidate_evaluations=net.candidate_evaluations,
        search_epochs=net.search_epochs,
        # A conv weight is used at every position, so for CNNs FLOPs removed and weights removed differ a lot.
        flops=family.flops(net.mask),
        flop_reduction=family.flop_reduction(net.mask),
        curves=[
            (e + 1, res.train_loss[e], res.train_acc[e], res.val_loss[e], res.val_acc[e],
             _monitor(res.monitor_loss, e), _monitor(res.monitor_acc, e))
            for e in range(len(res.train_loss))
        ],
    )
