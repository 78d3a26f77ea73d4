"""Background jobs as administrators see them: statistics, listings, retries."""

from __future__ import annotations

import builtins

from opencatalog.domain.jobs import Job, JobStatus
from opencatalog.domain.permissions import Action
from opencatalog.errors import ConfigurationError, NotFound, ValidationFailed
from opencatalog.ports.queue import TaskQueue

from ._base import Service

__all__ = ["JobService"]


class JobService(Service):
    """The catalog's job queue for sysadmins (job state lives in storage, not a broker)."""

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
