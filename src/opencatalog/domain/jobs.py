"""Background jobs: the unit of work a task queue hands to a worker.

A :class:`Job` is a frozen record of one piece of background work (for example running the
resource pipeline on one resource) and of where it stands. The queue (see
:mod:`opencatalog.ports.queue`) owns the state transitions::

    pending ──claim──▶ processing ──complete──▶ complete
       ▲                  │  │
       │      fail, attempts < max_attempts (run_after = now + next_backoff(attempts))
       └──────────────────┘  │
                             └── fail, attempts >= max_attempts ──▶ error ──retry──▶ pending

A job in ``processing`` whose lease has expired (its worker died or stalled) is runnable
again: delivery is *at least once*, so every handler must be idempotent.

Everything here is stdlib + attrs; adapters map jobs to rows or messages explicitly.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from attrs import field, frozen

__all__ = [
    "BACKOFF_BASE",
    "BACKOFF_CAP",
    "Job",
    "JobFailed",
    "JobStatus",
    "StepLog",
    "StepStatus",
    "next_backoff",
]

BACKOFF_BASE = timedelta(seconds=10)
"""The wait before the second attempt of a failed job."""

BACKOFF_CAP = timedelta(minutes=15)
"""The longest wait between two attempts, however many have failed."""


class JobStatus(enum.StrEnum):
    """Where a job stands. ``complete`` and ``error`` are terminal (``error`` is the dead
    letter: only an explicit retry makes the job run again)."""

    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETE = "complete"
    ERROR = "error"

    @property
    def terminal(self) -> bool:
        """True for ``complete`` and ``error``."""
        return self in (JobStatus.COMPLETE, JobStatus.ERROR)


class StepStatus(enum.StrEnum):
    """The outcome of one step of a job."""

    OK = "ok"
    ERROR = "error"
    SKIPPED = "skipped"


def _utc(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is not UTC:
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    return value


def _payload(value: Mapping[str, Any] | None) -> dict[str, Any]:
    return dict(value or {})


def _steps(value: Sequence[StepLog] | None) -> tuple[StepLog, ...]:
    return tuple(value or ())


@frozen(kw_only=True)
class StepLog:
    """What one step of a job did: ``name`` (``fetch``, ``extract``...), its outcome and an
    optional message, with the times it started and finished (UTC)."""

    name: str
    status: StepStatus = field(converter=StepStatus)
    message: str | None = None
    started: datetime | None = field(default=None, converter=_utc)
    finished: datetime | None = field(default=None, converter=_utc)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (datetimes as ISO 8601 strings); inverse of :meth:`from_dict`."""
        return {
            "name": self.name,
            "status": self.status.value,
            "message": self.message,
            "started": self.started.isoformat() if self.started else None,
            "finished": self.finished.isoformat() if self.finished else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StepLog:
        """The step log :meth:`to_dict` produced."""

        def when(value: Any) -> datetime | None:
            return datetime.fromisoformat(value) if value else None

        return cls(
            name=str(data["name"]),
            status=StepStatus(data["status"]),
            message=data.get("message"),
            started=when(data.get("started")),
            finished=when(data.get("finished")),
        )


@frozen(kw_only=True)
class Job:
    """One piece of background work and its state.

    ``payload`` is a JSON-ready mapping (for a pipeline job ``{"resource_id": ...}``);
    ``dedupe_key``, when set, keeps a second *pending* job with the same key from being
    enqueued. ``attempts`` counts claims (it is 1 while the first attempt runs);
    ``run_after`` is the earliest time a pending job may be claimed (backoff after a
    failure). ``lease_owner`` and ``lease_until`` name the worker running a ``processing``
    job and the time its claim lapses. ``error`` holds the last failure's text and ``steps``
    the step log of the last attempt.
    """

    id: str
    kind: str
    payload: dict[str, Any] = field(factory=dict, converter=_payload)
    dedupe_key: str | None = None
    status: JobStatus = field(default=JobStatus.PENDING, converter=JobStatus)
    attempts: int = 0
    max_attempts: int = 3
    run_after: datetime = field(converter=_utc)
    lease_owner: str | None = None
    lease_until: datetime | None = field(default=None, converter=_utc)
    error: str | None = None
    steps: tuple[StepLog, ...] = field(default=(), converter=_steps)
    created: datetime = field(converter=_utc)
    updated: datetime = field(converter=_utc)

    def runnable(self, now: datetime) -> bool:
        """True when a claim at ``now`` may take this job: pending and due, or processing
        with an expired lease."""
        if self.status is JobStatus.PENDING:
            return self.run_after <= now
        if self.status is JobStatus.PROCESSING:
            return self.lease_until is not None and self.lease_until <= now
        return False


def next_backoff(
    attempts: int, *, base: timedelta = BACKOFF_BASE, cap: timedelta = BACKOFF_CAP
) -> timedelta:
    """The wait before the next attempt after ``attempts`` failed ones.

    Exponential: ``base`` after the first failure, doubling with each further one, never more
    than ``cap``. ``attempts`` below 1 count as 1.
    """
    exponent = max(attempts, 1) - 1
    if exponent >= 32:  # 2**32 * any sensible base is beyond any sensible cap
        return cap
    return min(base * (2**exponent), cap)


class JobFailed(Exception):
    """Raised by a job handler to fail the job while keeping the step log it has so far.

    Any other exception fails the job too; this one only carries ``steps`` along.
    """

    def __init__(self, message: str, steps: Sequence[StepLog] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.steps: tuple[StepLog, ...] = tuple(steps)
