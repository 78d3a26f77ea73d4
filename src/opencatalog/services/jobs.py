"""Background jobs as administrators see them: statistics, listings, retries, and running
the pending ones now."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Protocol

from opencatalog.domain.jobs import Job, JobStatus, StepLog
from opencatalog.domain.permissions import Action
from opencatalog.errors import ConfigurationError, NotFound, ValidationFailed
from opencatalog.ports.queue import TaskQueue

from ._base import Principal, Service, ServiceContext

__all__ = ["JobHandler", "JobRunner", "JobService"]

JobHandler = Callable[[Job], Sequence[StepLog]]
"""Runs one job and returns its step log; raises to fail it (see :mod:`opencatalog.worker`)."""


class JobRunner(Protocol):
    """Runs a catalog's jobs in its own process (:class:`opencatalog.worker.InProcessJobs`)."""

    def run_pending(self, *, max_jobs: int | None = None, timeout: float | None = None) -> int:
        """Run every runnable job before returning; how many ran in the calling thread."""
        ...


class JobService(Service):
    """The catalog's job queue for sysadmins (job state lives in storage, not a broker).

    ``handlers`` are the job handlers of this catalog by kind (what a worker runs);
    ``runner`` runs them inside this process (:meth:`run_pending`).
    """

    def __init__(
        self,
        ctx: ServiceContext,
        principal: Principal,
        *,
        handlers: Mapping[str, JobHandler] | None = None,
        runner: JobRunner | None = None,
    ) -> None:
        super().__init__(ctx, principal)
        self._handlers: Mapping[str, JobHandler] = MappingProxyType(dict(handlers or {}))
        self._runner = runner

    @property
    def handlers(self) -> Mapping[str, JobHandler]:
        """The job handlers of this catalog by job kind (read-only), for workers."""
        return self._handlers

    @property
    def queue(self) -> TaskQueue:
        """The catalog's task queue (sysadmins), for workers."""
        return self._queue()

    def run_pending(self, *, max_jobs: int | None = None, timeout: float | None = None) -> int:
        """Run the jobs that are runnable now, in the calling thread, and wait for the ones
        the catalog's background worker is running; return how many ran here. Afterwards no
        job is runnable (a job waiting out its retry backoff is not runnable yet). For
        notebooks, tests and scripts::

            catalog.resources.add("water", ResourceInput(url="https://example.org/a.csv"))
            catalog.jobs.run_pending()
            catalog.pipeline.status(resource_id).status   # "complete"

        ``max_jobs`` caps the jobs run here; ``timeout`` (seconds) caps the wait for the
        background worker. Sysadmins only.
        """
        self._queue()
        if self._runner is None:
            raise ConfigurationError("This catalog runs no jobs in its own process")
        return self._runner.run_pending(max_jobs=max_jobs, timeout=timeout)

    def _queue(self) -> TaskQueue:
        with self._call() as call:
            self._require(call, Action.JOBS_ADMIN, self._policy.base_role(call.actor))
        if self._ctx.task_queue is None:
            raise ConfigurationError("This catalog has no job queue (setting 'queue')")
        return self._ctx.task_queue

    def stats(self) -> dict[str, int]:
        """How many jobs are in each status."""
        return {status.value: n for status, n in self._queue().stats().items()}

    def list(
        self,
        *,
        status: str | None = None,
        kind: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> builtins.list[Job]:
        """Jobs, oldest first, optionally of one status and kind."""
        queue = self._queue()
        try:
            wanted = JobStatus(status) if status is not None else None
        except ValueError:
            raise ValidationFailed({"status": ["Unknown job status"]}) from None
        return queue.list(status=wanted, kind=kind, offset=offset, limit=limit)

    def get(self, job_id: str) -> Job:
        job = self._queue().get(job_id)
        if job is None:
            raise NotFound("Job not found")
        return job

    def retry(self, job_id: str) -> Job:
        """Put a job that ended in error back in the queue with its attempts reset."""
        return self._queue().retry(job_id)
