"""Executors: what runs the jobs of an experiment (``local``: in this process; ``ray``: Ray tasks).

``runner.execute`` is the driver: it claims work groups in the store, hands each to an executor as a
``Job`` and stores each ``JobResult`` as it arrives; an executor never touches the store.
"""

from __future__ import annotations

from .base import EXECUTORS, Executor
from .work import Job, JobFailure, JobResult, run_job

__all__ = ["EXECUTORS", "Executor", "Job", "JobFailure", "JobResult", "run_job", "make_executor"]


def make_executor(name: str = "local", **options) -> Executor:
    """The executor called ``name`` (``local`` or ``ray``), with its options (``RayExecutor``'s keywords).

    >>> make_executor("local").name
    'local'
    """
    if name == "local":
        if options:
            from ..errors import invalid

            raise invalid("executor options", sorted(options), "none for the local executor (the --ray-* flags need --executor ray)")
        from .local import LocalExecutor

        return LocalExecutor()
    if name == "ray":
        from .ray import RayExecutor, import_ray

        import_ray()  # refused at once, before any data is loaded, where Ray is not installed
        return RayExecutor(**options)
    from ..errors import invalid

    raise invalid("executor", name, " or ".join(EXECUTORS))
