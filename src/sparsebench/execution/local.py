"""The local executor: one job at a time, in this process (the default).

The driver's claims and leases in the store (``runner.execute``) let several local runs of one
experiment share a store, each training other work groups.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable

from .base import Executor
from .work import Job, JobResult, run_job


class LocalExecutor(Executor):
    """Runs each job in this process, on the data and parent the run already loaded and checked."""

    name = "local"

    def __init__(self, data: Any = None, family: Any = None):
        self.loaded = (data, family) if data is not None else None
        self.queue: deque[tuple[Job, Callable[[int], None]]] = deque()

    def threads(self) -> int:
        from ..runner import compute_threads  # runner imports this module

        return compute_threads()

    def capacity(self) -> int:
        return 1

    def busy(self) -> int:
        return len(self.queue)

    def submit(self, job: Job, on_progress: Callable[[int], None]) -> None:
        self.queue.append((job, on_progress))

    def next_result(self, timeout: float) -> JobResult | None:
        if not self.queue:
            return None
        job, on_progress = self.queue.popleft()
        return run_job(job, self.loaded, on_progress)

    def stop(self) -> None:
        self.queue.clear()
