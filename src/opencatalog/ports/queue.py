"""The task queue port: durable background jobs with leases, retries and a dead letter.

The rules every implementation follows (the kit :mod:`opencatalog.testing.queue` checks them):

* **Job state lives with the queue's storage**, never only in a broker: ``get``, ``list`` and
  ``stats`` answer from it, whatever runs the jobs.
* **At-least-once delivery.** ``claim`` gives a job to one worker under a *lease*: while the
  lease is valid no other claim can return the job. A worker that dies stops heartbeating, its
  lease runs out and the job becomes claimable again (``attempts`` goes up by one). Handlers
  must therefore be idempotent.
* **A job is finished once.** ``complete`` and ``fail`` succeed only for the worker that holds
  the job (status ``processing`` and ``lease_owner == worker_id``); anyone else gets
  ``False`` and nothing changes. A worker whose lease expired may still finish the job as long
  as nobody has claimed it since; once another worker has, the first one's ``complete`` is
  refused, so no job is ever completed twice. Worker ids must be unique per claiming thread.
* **Retries with backoff, then a dead letter.** ``fail`` puts the job back to ``pending``
  with ``run_after = now + backoff(attempts)`` while ``attempts < max_attempts``, else
  marks it ``error``. A lease that expires on the last attempt also ends the job in
  ``error`` (a job that kills its worker every time is not retried for ever). ``retry``
  brings an ``error`` job back with its attempts reset.
* **Deduplication of pending work.** ``enqueue`` with a ``dedupe_key`` returns the pending
  job that already has that key instead of adding another (jobs already ``processing`` do not
  count: the change that asks for new work may come after they read their input).
* **Backoff** is the queue's policy: :func:`~opencatalog.domain.jobs.next_backoff` unless the
  implementation was given another (``backoff=`` option of the built-in queues).
* **Time** comes from the queue's clock (an injectable ``clock`` returning aware UTC
  datetimes), so tests can move it; all adapters compare leases and ``run_after`` with it.

Implementations are found by URL scheme through the entry-point group ``opencatalog.queue``;
each exposes ``from_url(url, **options)`` as a classmethod. ``open_catalog`` passes the
catalog's storage as the ``storage`` option to the ``sql`` and ``celery`` queues (they keep
job state in it). A queue that has a ``notify()`` method gets it called after every commit of
the catalog (a queue that announces jobs enqueued inside a transaction, once they exist).
"""

from __future__ import annotations

import abc
import builtins
from collections.abc import Collection, Mapping, Sequence
from datetime import timedelta
from typing import Any

from opencatalog.domain.jobs import Job, JobStatus, StepLog
from opencatalog.errors import ValidationFailed

__all__ = ["MAX_LIST_LIMIT", "TaskQueue", "check_enqueue", "check_lease", "check_page"]

MAX_LIST_LIMIT = 1000
"""The most jobs one ``list`` call returns."""


def check_enqueue(kind: str, payload: Mapping[str, Any], max_attempts: int) -> None:
    """Raise ValidationFailed for an empty kind, a non-mapping payload or ``max_attempts < 1``."""
    errors: dict[str, list[str]] = {}
    if not isinstance(kind, str) or not kind.strip():
        errors["kind"] = ["A job kind must be a non-empty string"]
    if not isinstance(payload, Mapping):
        errors["payload"] = ["A job payload must be a mapping"]
    if not isinstance(max_attempts, int) or max_attempts < 1:
        errors["max_attempts"] = ["max_attempts must be an integer of at least 1"]
    if errors:
        raise ValidationFailed(errors)


def check_lease(lease: timedelta) -> None:
    """Raise ValidationFailed for a lease that is not a positive timedelta."""
    if not isinstance(lease, timedelta) or lease <= timedelta(0):
        raise ValidationFailed({"lease": ["A lease must be a positive timedelta"]})


def check_page(offset: int, limit: int) -> None:
    """Raise ValidationFailed for a negative offset or a limit outside 1..MAX_LIST_LIMIT."""
    errors: dict[str, list[str]] = {}
    if offset < 0:
        errors["offset"] = ["offset must not be negative"]
    if not 1 <= limit <= MAX_LIST_LIMIT:
        errors["limit"] = [f"limit must be between 1 and {MAX_LIST_LIMIT}"]
    if errors:
        raise ValidationFailed(errors)


class TaskQueue(abc.ABC):
    """A durable queue of :class:`~opencatalog.domain.jobs.Job` records (see the module
    docstring for the rules)."""

    @abc.abstractmethod
    def enqueue(
        self,
        kind: str,
        payload: Mapping[str, Any],
        *,
        dedupe_key: str | None = None,
        max_attempts: int = 3,
    ) -> Job:
        """Add a pending job, runnable now, and return it.

        With a ``dedupe_key``, if a *pending* job with that key exists, nothing is added and
        that job (the oldest, if several) is returned unchanged. The payload is copied; it must
        be JSON-ready. Raises ValidationFailed for an empty kind or ``max_attempts < 1``.
        """

    @abc.abstractmethod
    def claim(
        self,
        worker_id: str,
        *,
        lease: timedelta,
        kinds: Collection[str] | None = None,
    ) -> Job | None:
        """Atomically take the oldest runnable job (of one of ``kinds``, if given), or None.

        Runnable: ``pending`` with ``run_after <= now``, or ``processing`` with an expired
        lease. "Oldest" is enqueue order. The job returned is ``processing``, owned by
        ``worker_id`` until ``now + lease``, with ``attempts`` one higher. Concurrent claims
        (threads or processes) never return the same job while its lease is valid. An expired
        lease on a job that has used all its attempts turns it to ``error`` instead.
        """

    @abc.abstractmethod
    def heartbeat(self, job_id: str, worker_id: str, lease: timedelta) -> bool:
        """Extend the lease of a job ``worker_id`` holds to ``now + lease``.

        Returns False (and changes nothing) when the worker no longer holds the job: it was
        claimed by another worker, finished, or does not exist.
        """

    @abc.abstractmethod
    def complete(self, job_id: str, worker_id: str, steps: Sequence[StepLog] = ()) -> bool:
        """Mark a job ``worker_id`` holds ``complete``, recording its step log.

        Returns False (and changes nothing) when the worker does not hold the job; this is how
        a stale worker learns that its run was superseded.
        """

    @abc.abstractmethod
    def fail(self, job_id: str, worker_id: str, error: str, steps: Sequence[StepLog] = ()) -> bool:
        """Record a failed attempt of a job ``worker_id`` holds.

        The job goes back to ``pending`` with ``run_after = now + backoff(attempts)``
        while ``attempts < max_attempts``, else to ``error``. ``error`` and ``steps`` are kept
        either way and the lease is released. Returns False (and changes nothing) when the
        worker does not hold the job.
        """

    @abc.abstractmethod
    def get(self, job_id: str) -> Job | None:
        """The job with this id, or None."""

    @abc.abstractmethod
    def list(
        self,
        *,
        status: JobStatus | str | None = None,
        kind: str | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> builtins.list[Job]:
        """Jobs in enqueue order (oldest first), optionally of one status and/or kind.

        Raises ValidationFailed for a negative offset or a limit outside 1..MAX_LIST_LIMIT.
        """

    @abc.abstractmethod
    def stats(self) -> dict[JobStatus, int]:
        """The number of jobs in each status; every status is present (0 when none)."""

    @abc.abstractmethod
    def retry(self, job_id: str) -> Job:
        """Bring a job in ``error`` back to ``pending``, runnable now, with ``attempts`` 0 and
        no error text, and return it.

        If a fresh pending job with the same dedupe key exists, that job is returned and the
        failed one stays in ``error``. Raises NotFound for an unknown id and Conflict for a
        job that is not in ``error``.
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the queue's resources (connections). Default: nothing to release."""
