"""The executor interface: what runs jobs, while the driver (``runner.execute``) is the store's one writer.

The driver claims work groups in the store, turns each into a ``Job``, hands it to an executor, and
stores each ``JobResult`` in its own transaction as it comes back. An executor only runs jobs: it
never opens the store. ``local`` runs one job at a time in this process; ``ray`` runs many at once as
Ray tasks, on this machine or a cluster.
"""

from __future__ import annotations

from typing import Callable

from .work import Job, JobResult

#: Executor names, as ``sparsebench run --executor`` takes them.
EXECUTORS = ("local", "ray")


class Executor:
    """Runs jobs and hands back their results; subclasses say where."""

    name = "executor"

    def start(self) -> None:
        """Get ready to run jobs (connect to a cluster, say)."""

    def threads(self) -> int:
        """Torch's intra-op threads each job uses (part of what its numbers depend on)."""
        raise NotImplementedError

    def capacity(self) -> int:
        """How many jobs to keep computing at once (the driver claims as many work groups)."""
        raise NotImplementedError

    def busy(self) -> int:
        """How many jobs handed over are still computing (finished ones waiting for their turn do not count)."""
        raise NotImplementedError

    def submit(self, job: Job, on_progress: Callable[[int], None]) -> None:
        """Start ``job`` (or queue it); ``on_progress(n)``: ``n`` more network-epochs, where the executor can tell."""
        raise NotImplementedError

    def next_result(self, timeout: float) -> JobResult | None:
        """The result of the earliest job handed over and not yet returned, waiting at most ``timeout`` seconds
        for it to finish (None: not finished yet).

        Results come back in the order the jobs were handed over (the plan's order), not in the order they
        finish: so the store numbers its trials (``trial_id``) in the same order whatever ran them and how
        fast, and a Ray run exports byte-identical to a local one. A job that finished early waits for its
        turn without keeping a worker: ``busy`` does not count it. A job that raised a user error
        (``SparsebenchError``) raises it here.
        """
        raise NotImplementedError

    def stop(self) -> None:
        """Stop every job still running and let go of what ``start`` took; called once, also after an error."""
