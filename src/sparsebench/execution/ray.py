"""The Ray executor: each job a Ray task, on a local Ray instance or a cluster.

The driver (this process) stays the store's one writer: tasks return their records and the driver
stores each in its own transaction as it arrives. A task whose worker process dies is run again by
Ray (``max_retries``); its group is stored once, whichever attempt returns. A task asks Ray for
``num_cpus`` CPUs and sets torch's threads to as many (Ray starts workers at one thread), so that
``OMP_NUM_THREADS=N sparsebench run`` and ``--executor ray --ray-num-cpus N`` store the same numbers.

Workers import sparsebench and any plugin a config names (``module:Class`` methods, datasets,
parents) themselves: install them on every node, or ship them with ``runtime_env`` (Ray's
``py_modules``, ``working_dir`` or ``env_vars: {"PYTHONPATH": ...}``).

Ray is an optional extra (``pip install "sparsebench[ray]"``); this module imports it only when
an executor starts.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any, Callable

from ..errors import ConfigError, invalid, show
from .base import Executor
from .work import Job, JobFailure, JobResult, run_job_on_worker

INSTALL_HINT = 'pip install "sparsebench[ray]"'
#: Ray's own default for tasks: a task whose worker dies is run again this many times.
MAX_RETRIES = 3


def import_ray() -> Any:
    """The ``ray`` module, or a one-line ``ConfigError`` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(f"executor: got 'ray' but Ray is not installed; allowed: local, or install it with {INSTALL_HINT}") from None
    return ray


def one_line(exc: BaseException, limit: int = 300) -> str:
    """An exception's message on one line, cut to ``limit`` characters."""
    return " ".join(str(exc).split())[:limit]


def runtime_env_from_json(text: str) -> dict:
    """``--ray-runtime-env``'s JSON object, refused in one line if it is not one.

    >>> runtime_env_from_json('{"working_dir": "."}')
    {'working_dir': '.'}
    """
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise invalid("ray-runtime-env", text, 'a JSON object, e.g. {"py_modules": ["my_methods.py"]} or {"working_dir": "."}')
    return value


class RayExecutor(Executor):
    """Runs jobs as Ray tasks.

    ``address``: None starts a local Ray instance of its own (unless this process is already connected to one);
    ``"auto"`` joins the cluster this machine belongs to; ``"HOST:PORT"`` or ``"ray://HOST:PORT"`` a given one.
    ``num_cpus``/``num_gpus``: what each task asks for (its torch threads are ``num_cpus``).
    ``runtime_env``: Ray's runtime environment for the tasks (how plugins reach the workers).
    """

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int = 1, num_gpus: float = 0, runtime_env: dict | None = None,
                 max_retries: int = MAX_RETRIES):
        if isinstance(num_cpus, bool) or not isinstance(num_cpus, int) or num_cpus < 1:
            raise invalid("ray-num-cpus", num_cpus, "an integer >= 1 (CPUs, and torch threads, per task)")
        if isinstance(num_gpus, bool) or not isinstance(num_gpus, (int, float)) or not (math.isfinite(num_gpus) and num_gpus >= 0):
            raise invalid("ray-num-gpus", num_gpus, "a number >= 0 (GPUs per task; a fraction shares one)")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise invalid("ray-max-retries", max_retries, "an integer >= 0")
        if address is not None and (not isinstance(address, str) or not address.strip()):
            raise invalid("ray-address", address, "auto, HOST:PORT or ray://HOST:PORT (none: start a local Ray instance)")
        self.address, self.num_cpus, self.num_gpus = address, num_cpus, num_gpus
        self.runtime_env, self.max_retries = runtime_env, max_retries
        self.ray: Any = None
        self.connected_here = False
        self.remote: Any = None
        self.running: list[Any] = []  # object refs of the jobs handed over and not yet returned, in the order given

    def start(self) -> None:
        ray = self.ray = import_ray()
        options: dict[str, Any] = {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus, "max_retries": self.max_retries,
                                   "retry_exceptions": False}
        if not ray.is_initialized():
            # "local": a new instance of our own, even where this machine runs a cluster (that is --ray-address auto).
            where = {"address": "local", "include_dashboard": False} if self.address is None else {"address": self.address}
            try:
                # The runtime environment goes with the job: only there may it name local files to upload.
                ray.init(logging_level=logging.WARNING, runtime_env=self.runtime_env, **where)
            except (ConnectionError, ValueError, RuntimeError, TypeError) as exc:
                what = "a local Ray instance" if self.address is None else f"the Ray cluster at {show(self.address)}"
                raise ConfigError(f"executor ray: could not start or reach {what} ({one_line(exc)}); allowed: --ray-address "
                                  "auto (this machine's cluster), HOST:PORT, or none (a local instance), and a valid "
                                  "--ray-runtime-env") from None
            self.connected_here = True
        elif self.runtime_env:
            options["runtime_env"] = self.runtime_env  # connected by the caller: for these tasks only
        try:
            self.remote = ray.remote(run_job_on_worker).options(**options)
        except ValueError as exc:
            raise ConfigError(f"executor ray: {one_line(exc)}; allowed: pass a runtime_env that names local files to "
                              "ray.init yourself, or let sparsebench connect (--ray-address)") from None

    def threads(self) -> int:
        return self.num_cpus

    def capacity(self) -> int:
        """As many tasks as the cluster can run at once (at least one): its CPUs (and GPUs) over each task's."""
        resources = self.ray.cluster_resources()
        fits = int(resources.get("CPU", 0) // self.num_cpus)
        if self.num_gpus:
            fits = min(fits, int(resources.get("GPU", 0) // self.num_gpus))
        return max(1, fits)

    def busy(self) -> int:
        if not self.running:
            return 0
        ready, _ = self.ray.wait(self.running, num_returns=len(self.running), timeout=0, fetch_local=False)
        return len(self.running) - len(ready)

    def submit(self, job: Job, on_progress: Callable[[int], None]) -> None:
        self.running.append(self.remote.remote(job))

    def next_result(self, timeout: float) -> JobResult | None:
        """The first job handed over, once it has finished (results come back in the order jobs were given, see ``Executor``)."""
        if not self.running:
            return None
        done, _ = self.ray.wait(self.running[:1], num_returns=1, timeout=timeout)
        if not done:
            return None
        ref = self.running.pop(0)
        result = self.ray.get(ref)
        if isinstance(result, JobFailure):
            raise result.error()
        return result

    def stop(self) -> None:
        ray = self.ray
        if ray is None:
            return
        for ref in list(self.running):
            try:
                ray.cancel(ref, force=True)
            except Exception:  # already finished, or the cluster is gone: nothing left to stop
                pass
        self.running.clear()
        if self.connected_here:
            ray.shutdown()
