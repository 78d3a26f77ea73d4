"""An in-memory task queue: the fake for tests and notebooks, and the oracle for the others.

Jobs live in a dict for the life of the object, guarded by one lock, so any number of threads
may claim and finish jobs at once. It follows the whole ``TaskQueue`` contract (leases,
backoff, dead letter, dedupe); nothing survives the process, so it is no place for work that
must not be lost.
"""

from __future__ import annotations

import builtins
import copy
import logging
import threading
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from opencatalog.domain.jobs import Job, JobStatus, StepLog, next_backoff
from opencatalog.errors import ConfigurationError, Conflict, NotFound
from opencatalog.ports.queue import TaskQueue, check_enqueue, check_lease, check_page

__all__ = ["MemoryTaskQueue"]

logger = logging.getLogger(__name__)


def _system_clock() -> datetime:
    return datetime.now(UTC)


class MemoryTaskQueue(TaskQueue):
    """Jobs in a dict. ``clock`` (default: the system clock, UTC) is the queue's notion of
    now, for leases, backoff and timestamps; tests pass a manual clock to move time.
    ``backoff`` maps the number of failed attempts to the wait before the next one (default
    :func:`~opencatalog.domain.jobs.next_backoff`)."""

    def __init__(
        self,
        *,
        clock: Callable[[], datetime] | None = None,
        backoff: Callable[[int], timedelta] = next_backoff,
    ) -> None:
        self._clock = clock or _system_clock
        self._backoff = backoff
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}  # insertion order is enqueue order

    @classmethod
    def from_url(cls, url: str, **options: Any) -> MemoryTaskQueue:
        """A new, empty queue for ``memory://``. Options: ``clock``, ``backoff``."""
        if url.split("?", 1)[0].rstrip("/") != "memory:":
            raise ConfigurationError(f"The memory queue takes the URL memory://, not {url!r}")
        unknown = set(options) - {"clock", "backoff"}
        if unknown:
            raise ConfigurationError(f"Unknown memory queue options: {', '.join(sorted(unknown))}")
        return cls(clock=options.get("clock"), backoff=options.get("backoff", next_backoff))

    def _now(self) -> datetime:
        return self._clock()

    # -- producing ---------------------------------------------------------------------------

    def enqueue(
        self,
        kind: str,
        payload: Mapping[str, Any],
        *,
        dedupe_key: str | None = None,
        max_attempts: int = 3,
    ) -> Job:
        check_enqueue(kind, payload, max_attempts)
        with self._lock:
            if dedupe_key is not None:
                for job in self._jobs.values():
                    if job.dedupe_key == dedupe_key and job.status is JobStatus.PENDING:
                        return job
            now = self._now()
            job = Job(
                id=str(uuid.uuid4()),
                kind=kind,
                payload=copy.deepcopy(dict(payload)),
                dedupe_key=dedupe_key,
                max_attempts=max_attempts,
                run_after=now,
                created=now,
                updated=now,
            )
            self._jobs[job.id] = job
            logger.debug("Enqueued job %s (%s)", job.id, kind)
            return job

    # -- consuming ---------------------------------------------------------------------------

    def claim(
        self,
        worker_id: str,
        *,
        lease: timedelta,
        kinds: Collection[str] | None = None,
    ) -> Job | None:
        check_lease(lease)
        wanted = None if kinds is None else frozenset(kinds)
        with self._lock:
            now = self._now()
            for job in list(self._jobs.values()):
                if (
                    job.status is JobStatus.PROCESSING
                    and job.runnable(now)
                    and job.attempts >= job.max_attempts
                ):
                    self._jobs[job.id] = attrs.evolve(
                        job,
                        status=JobStatus.ERROR,
                        lease_owner=None,
                        lease_until=None,
                        error=job.error or "The lease of the last attempt expired",
                        updated=now,
                    )
                    logger.warning("Job %s lost the lease of its last attempt", job.id)
            for job in self._jobs.values():
                if (wanted is not None and job.kind not in wanted) or not job.runnable(now):
                    continue
                claimed = attrs.evolve(
                    job,
                    status=JobStatus.PROCESSING,
                    attempts=job.attempts + 1,
                    lease_owner=worker_id,
                    lease_until=now + lease,
                    updated=now,
                )
                self._jobs[job.id] = claimed
                return claimed
            return None

    def _held(self, job_id: str, worker_id: str) -> Job | None:
        # the caller holds the lock
        job = self._jobs.get(job_id)
        if job is None or job.status is not JobStatus.PROCESSING or job.lease_owner != worker_id:
            return None
        return job

    def heartbeat(self, job_id: str, worker_id: str, lease: timedelta) -> bool:
        check_lease(lease)
        with self._lock:
            job = self._held(job_id, worker_id)
            if job is None:
                return False
            now = self._now()
            self._jobs[job_id] = attrs.evolve(job, lease_until=now + lease, updated=now)
            return True

    def complete(self, job_id: str, worker_id: str, steps: Sequence[StepLog] = ()) -> bool:
        with self._lock:
            job = self._held(job_id, worker_id)
            if job is None:
                return False
            self._jobs[job_id] = attrs.evolve(
                job,
                status=JobStatus.COMPLETE,
                lease_owner=None,
                lease_until=None,
                error=None,
                steps=tuple(steps),
                updated=self._now(),
            )
            return True

    def fail(self, job_id: str, worker_id: str, error: str, steps: Sequence[StepLog] = ()) -> bool:
        with self._lock:
            job = self._held(job_id, worker_id)
            if job is None:
                return False
            now = self._now()
            again = job.attempts < job.max_attempts
            self._jobs[job_id] = attrs.evolve(
                job,
                status=JobStatus.PENDING if again else JobStatus.ERROR,
                run_after=now + self._backoff(job.attempts) if again else job.run_after,
                lease_owner=None,
                lease_until=None,
                error=error,
                steps=tuple(steps),
                updated=now,
            )
            return True

    # -- inspecting --------------------------------------------------------------------------

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def list(
        self,
        *,
        status: JobStatus | str | None = None,
        kind: str | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> builtins.list[Job]:
        check_page(offset, limit)
        wanted = None if status is None else JobStatus(status)
        with self._lock:
            jobs = [
                job
                for job in self._jobs.values()
                if (wanted is None or job.status is wanted) and (kind is None or job.kind == kind)
            ]
        return jobs[offset : offset + limit]

    def stats(self) -> dict[JobStatus, int]:
        counts = dict.fromkeys(JobStatus, 0)
        with self._lock:
            for job in self._jobs.values():
                counts[job.status] += 1
        return counts

    def retry(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise NotFound(f"No job {job_id}")
            if job.status is not JobStatus.ERROR:
                raise Conflict(f"Job {job_id} is {job.status.value}, not error")
            if job.dedupe_key is not None:
                for other in self._jobs.values():
                    if (
                        other.dedupe_key == job.dedupe_key
                        and other.status is JobStatus.PENDING
                        and other.attempts == 0
                    ):
                        return other
            now = self._now()
            retried = attrs.evolve(
                job,
                status=JobStatus.PENDING,
                attempts=0,
                run_after=now,
                error=None,
                updated=now,
            )
            self._jobs[job_id] = retried
            return retried
