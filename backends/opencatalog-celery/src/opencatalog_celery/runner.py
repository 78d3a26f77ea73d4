"""What a Celery worker does with a wake-up: claim one job, run its handler, record the outcome.

A wake-up names the job it was published for, but the worker claims the *oldest* runnable
job of the kinds it has handlers for (the state queue's rule): wake-ups are interchangeable,
so their order, loss or duplication never matters. While the handler runs, a heartbeat thread
renews the lease; the outcome goes back to the state queue with the same rules as the
in-process :class:`~opencatalog.worker.Worker` (``JobFailed`` keeps its step log; any other
exception fails the attempt with its type and message).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from opencatalog.domain.jobs import Job, JobFailed, JobStatus
from opencatalog.errors import ConfigurationError, OpenCatalogError
from opencatalog.worker import Handler, Outcome, record_outcome

if TYPE_CHECKING:
    from opencatalog_celery.queue import CeleryTaskQueue

__all__ = ["JobRunner", "run_wakeup"]

logger = logging.getLogger(__name__)

_RESULTS: dict[Outcome, bool | None] = {
    Outcome.COMPLETED: True,
    Outcome.FAILED: False,
    Outcome.SUPERSEDED: None,
    Outcome.UNRECORDED: None,
}

#: Countdowns (seconds) of the redeliveries of a wake-up whose claim hit a backend error.
_CLAIM_RETRY_COUNTDOWN = 1.0


class JobRunner:
    """Runs claimed jobs of the kinds in ``handlers`` under ``lease`` (see :meth:`run`)."""

    def __init__(
        self,
        queue: CeleryTaskQueue,
        handlers: Mapping[str, Handler],
        *,
        lease: timedelta,
        heartbeat_interval: float | None = None,
    ) -> None:
        if not handlers:
            raise ConfigurationError("A Celery worker needs at least one job handler")
        if lease <= timedelta(0):
            raise ConfigurationError("A worker's lease must be positive")
        self.queue = queue
        self.handlers: dict[str, Handler] = dict(handlers)
        self.lease = lease
        self.heartbeat_interval = (
            heartbeat_interval if heartbeat_interval is not None else lease.total_seconds() / 3
        )
        if self.heartbeat_interval <= 0:
            raise ConfigurationError("The heartbeat interval must be positive")

    @property
    def kinds(self) -> frozenset[str]:
        """The job kinds this runner has handlers for."""
        return frozenset(self.handlers)

    def run(self, job: Job, worker_id: str) -> bool | None:
        """Run ``job`` (claimed by ``worker_id``) and record its outcome.

        Returns True when it completed, False when it failed, None when the outcome could not
        be recorded (the job was taken over, or storage kept failing; it runs again).
        """
        handler = self.handlers[job.kind]
        logger.info(
            "Job %s (%s) attempt %d/%d started by %s",
            job.id,
            job.kind,
            job.attempts,
            job.max_attempts,
            worker_id,
        )
        stop = threading.Event()
        beat = threading.Thread(
            target=self._beat,
            args=(job.id, worker_id, stop),
            name=f"opencatalog-celery-heartbeat-{job.id}",
            daemon=True,
        )
        beat.start()
        try:
            try:
                steps = tuple(handler(job))
            except JobFailed as exc:
                error: str | None = exc.message
                steps = exc.steps
            except Exception as exc:
                logger.warning(
                    "Job %s (%s) attempt %d failed", job.id, job.kind, job.attempts, exc_info=True
                )
                error, steps = f"{type(exc).__name__}: {exc}", ()
            else:
                error = None
        finally:
            stop.set()
            beat.join()
        outcome = record_outcome(self.queue, job, worker_id, error=error, steps=steps)
        return _RESULTS[outcome]

    def _beat(self, job_id: str, worker_id: str, stop: threading.Event) -> None:
        while not stop.wait(self.heartbeat_interval):
            try:
                held = self.queue.heartbeat(job_id, worker_id, self.lease)
            except OpenCatalogError as exc:
                logger.warning("Heartbeat of job %s failed: %s", job_id, exc)
                continue
            if not held:
                logger.warning("Worker %s lost the lease of job %s", worker_id, job_id)
                return


def run_wakeup(queue: CeleryTaskQueue, task: Any, job_id: str | None) -> None:
    """The body of the ``opencatalog.run_job`` task (``task`` is the bound Celery task)."""
    runner = queue.runner
    if runner is None:
        logger.error(
            "Wake-up for job %s on a worker without handlers: call CeleryTaskQueue.bind() "
            "before starting the worker (the sweep will publish it again)",
            job_id,
        )
        return
    worker_id = f"{task.request.hostname}:{task.request.id}"
    try:
        job = queue.claim(worker_id, lease=runner.lease, kinds=runner.kinds)
    except OpenCatalogError as exc:
        logger.warning("Could not claim a job (wake-up for %s): %s; trying again", job_id, exc)
        raise task.retry(exc=exc, countdown=_CLAIM_RETRY_COUNTDOWN) from exc
    if job is not None:
        runner.run(job, worker_id)
        return
    if job_id is None:
        return
    # Nothing to claim: the job was taken by an earlier wake-up (the usual case), is running,
    # finished, or is not due yet (a wake-up delivered early): then wake it at its time.
    wanted = queue.get(job_id)
    if wanted is None:
        logger.debug("Wake-up for job %s, which does not exist (rolled back?)", job_id)
    elif (
        wanted.status is JobStatus.PENDING
        and wanted.kind in runner.kinds
        and wanted.run_after > queue.now()
    ):
        queue.wake_at(wanted)
