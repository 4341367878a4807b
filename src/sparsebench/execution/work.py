"""One job: the work of one work group as a plain, picklable function from a ``Job`` to a ``JobResult``.

A job carries the config's sections as plain frozen dataclasses, the work group, and what a worker
needs to load the data again (the data section, with its dataset name and folder) and to check that
it loaded the same data as the driver (the data fingerprint). Its numbers depend on the job alone,
so any executor, in this process or on another machine, stores the same numbers for it.

>>> import pickle
>>> from sparsebench.config import ExperimentConfig
>>> from sparsebench.plan import plan
>>> cfg = ExperimentConfig(seeds=(0,), sparsities=(0.5,), epochs=1, candidates=2)
>>> job = Job.of(cfg, plan(cfg.design)[0], fingerprint="f" * 64, threads=1)
>>> pickle.loads(pickle.dumps(job)) == job
True
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from ..engine.common import TrainSettings
from ..errors import ConfigError, SparsebenchError
from ..plan import WorkGroup


@dataclass(frozen=True)
class Job:
    """Everything one work group's selection, training and evaluation depends on, as plain data."""

    data: Any  # DataSection: which dataset, from which folder, split how
    model: Any  # ParentSection
    search: Any  # SearchSection
    training: TrainSettings
    engine: str
    device: str
    group: WorkGroup
    #: The sha256 of the data the driver loaded: a worker that loads other data refuses the job.
    fingerprint: str
    #: Torch's intra-op threads for this job (a thread count is part of what the numbers depend on).
    threads: int
    #: What of ``group`` is trained: the parts of it that the store does not hold yet (``plan.remaining_parts``);
    #: None: all of it.
    parts: tuple[WorkGroup, ...] | None = None

    @classmethod
    def of(cls, cfg: Any, group: WorkGroup, fingerprint: str, threads: int,
           parts: "tuple[WorkGroup, ...] | None" = None) -> "Job":
        """The job of ``group`` (or of its ``parts`` alone) of the experiment ``cfg`` (an ``ExperimentConfig``)."""
        return cls(cfg.data, cfg.model, cfg.search, cfg.training, cfg.execution.engine, cfg.execution.device, group,
                   fingerprint, threads, parts)

    @property
    def key(self) -> str:
        """The group's key in the store's claims."""
        return self.group.key


@dataclass
class JobResult:
    """What a job computed: its group's trial and candidate records, ready for ``Store.save_group``."""

    key: str
    trials: list = field(default_factory=list)
    candidates: list = field(default_factory=list)


@dataclass(frozen=True)
class JobFailure:
    """A user error (``SparsebenchError``) raised by a job on a worker, sent back as plain data.

    Returned rather than raised so that a remote executor neither retries it nor wraps it in its own
    traceback: the driver raises it again as the same class, one line, as the local executor would.
    """

    key: str
    kind: type
    message: str
    host: str

    def error(self) -> SparsebenchError:
        return self.kind(f"{self.message} (on worker host {self.host}, where plugins must be importable too: "
                         "installed there, or shipped with --ray-runtime-env)")


#: The data and parent a worker process loaded last: jobs of one experiment that land on the same
#: worker process load the data once. One entry: a worker serves one experiment at a time.
_loaded: dict[tuple, tuple[Any, Any]] = {}


def load_for(job: Job) -> tuple[Any, Any]:
    """The data (checked against the job's fingerprint) and parent family that ``job`` trains on."""
    from ..runner import load_checked_data, parent_family, resolve_device

    key = (job.data, job.model, job.training.batch_size, job.device)
    cached = _loaded.get(key)
    if cached is not None and cached[0].fingerprint == job.fingerprint:
        return cached
    _loaded.clear()
    data = load_checked_data(job.data, job.training.batch_size, resolve_device(job.device))
    if data.fingerprint != job.fingerprint:
        raise ConfigError(
            f"dataset {job.data.dataset!r}: the data loaded on host {socket.gethostname()} (fingerprint "
            f"{data.fingerprint[:12]}) differs from the data the run started from ({job.fingerprint[:12]}); nothing was "
            "stored; allowed: the same data files on every machine (--data-dir, $SPARSEBENCH_DATA)")
    family = parent_family(job.model, data)
    _loaded[key] = (data, family)
    return data, family


def run_job(job: Job, loaded: tuple[Any, Any] | None = None, on_progress: Callable[[int], None] = lambda n: None) -> JobResult:
    """Select, train and evaluate every network of ``job``'s work group.

    ``loaded``: the ``(data, family)`` the caller already loaded and checked (the local executor's, the
    driver's own); else they are loaded here, and the data checked against the job's fingerprint.
    ``on_progress(n)``: ``n`` more network-epochs trained.
    """
    from ..runner import _out_of_memory_as_error, resolve_device, run_group

    data, family = loaded if loaded is not None else load_for(job)
    # Ray starts workers at one thread; a job's numbers depend on its thread count, so the job sets it.
    torch.set_num_threads(job.threads)
    trials, candidates = [], []
    with _out_of_memory_as_error(family, job.group):
        for part in (job.group,) if job.parts is None else job.parts:
            part_trials, part_candidates = run_group(job.training, part, data, family, resolve_device(job.device),
                                                     on_progress, search=job.search, engine=job.engine)
            trials += part_trials
            candidates += part_candidates
    return JobResult(job.key, trials, candidates)


def run_job_on_worker(job: Job) -> JobResult | JobFailure:
    """``run_job`` as a remote task runs it: a user error comes back as a ``JobFailure``."""
    try:
        return run_job(job)
    except SparsebenchError as exc:
        return JobFailure(job.key, type(exc), str(exc), socket.gethostname())
