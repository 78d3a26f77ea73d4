"""The SQL job queue: jobs as rows of the catalog's own database (SQLite or PostgreSQL).

``SqlJobQueue(storage)`` keeps jobs in the ``job`` table (created by migration ``0002``) of a
:class:`~opencatalog.adapters.sqlalchemy.SqlAlchemyStorage`, so job state is as durable as the
catalog and a job can be enqueued in the same transaction as the change that asks for it
(:meth:`SqlJobQueue.enqueue_in`).

Claiming is atomic per dialect:

* **SQLite**: one ``UPDATE job ... WHERE seq = (SELECT ... LIMIT 1) RETURNING ...`` inside the
  storage's write transaction (``BEGIN IMMEDIATE``, which holds the database's write lock), so
  two claims are serialised and never see the same candidate. A deferred read first checks
  that there is something to claim, so idle workers do not queue for the write lock.
* **PostgreSQL**: ``SELECT seq ... ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED`` then
  ``UPDATE ... RETURNING`` in one transaction: concurrent claimers skip each other's rows.

Time is the queue's ``clock`` (Python side, aware UTC), not the database's: every process
that shares a queue should have a synchronised clock (NTP), and leases should be much longer
than the clock skew between them.

Deduplication: a partial unique index allows one *fresh* (never attempted) pending job per
``dedupe_key``; ``enqueue`` first returns any pending job with the key.
"""

from __future__ import annotations

import builtins
import json
import logging
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    bindparam,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection, Row
from sqlalchemy.sql.elements import ColumnElement

from opencatalog.domain.jobs import Job, JobStatus, StepLog, next_backoff
from opencatalog.errors import ConfigurationError, Conflict, NotFound
from opencatalog.ports.queue import TaskQueue, check_enqueue, check_lease, check_page

from .repositories import translate_error
from .storage import SqlAlchemyStorage, SqlAlchemyUnitOfWork
from .tables import UtcDateTime, metadata

__all__ = ["SqlJobQueue", "job"]

logger = logging.getLogger(__name__)

_PENDING = JobStatus.PENDING.value
_PROCESSING = JobStatus.PROCESSING.value
_ERROR = JobStatus.ERROR.value
_COMPLETE = JobStatus.COMPLETE.value

#: The rows of the partial unique index: fresh pending jobs (at most one per dedupe key).
_FRESH_PENDING = "status = 'pending' AND attempts = 0 AND dedupe_key IS NOT NULL"

job = Table(
    "job",
    metadata,
    Column(
        "seq",
        BigInteger().with_variant(Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    Column("id", String(), nullable=False),
    Column("kind", String(), nullable=False),
    Column("payload", Text(), nullable=False),
    Column("dedupe_key", String(), nullable=True),
    Column("status", String(), nullable=False),
    Column("attempts", Integer(), nullable=False),
    Column("max_attempts", Integer(), nullable=False),
    Column("run_after", UtcDateTime(), nullable=False),
    Column("lease_owner", String(), nullable=True),
    Column("lease_until", UtcDateTime(), nullable=True),
    Column("error", Text(), nullable=True),
    Column("steps", Text(), nullable=False),
    Column("created", UtcDateTime(), nullable=False),
    Column("updated", UtcDateTime(), nullable=False),
    UniqueConstraint("id"),
    sqlite_autoincrement=True,
)
Index("ix_job_status_seq", job.c.status, job.c.seq)
Index("ix_job_status_lease_until", job.c.status, job.c.lease_until)
Index("ix_job_kind_seq", job.c.kind, job.c.seq)
Index(
    "uq_job_dedupe_key_fresh",
    job.c.dedupe_key,
    unique=True,
    sqlite_where=text(_FRESH_PENDING),
    postgresql_where=text(_FRESH_PENDING),
)

_COLUMNS = tuple(c for c in job.c if c.name != "seq")


def _system_clock() -> datetime:
    return datetime.now(UTC)


def _to_job(row: Row[Any]) -> Job:
    m = row._mapping
    return Job(
        id=m["id"],
        kind=m["kind"],
        payload=json.loads(m["payload"]),
        dedupe_key=m["dedupe_key"],
        status=JobStatus(m["status"]),
        attempts=m["attempts"],
        max_attempts=m["max_attempts"],
        run_after=m["run_after"],
        lease_owner=m["lease_owner"],
        lease_until=m["lease_until"],
        error=m["error"],
        steps=tuple(StepLog.from_dict(s) for s in json.loads(m["steps"])),
        created=m["created"],
        updated=m["updated"],
    )


def _steps_json(steps: Sequence[StepLog]) -> str:
    return json.dumps([s.to_dict() for s in steps], ensure_ascii=False)


class SqlJobQueue(TaskQueue):
    """A :class:`~opencatalog.ports.queue.TaskQueue` on the ``job`` table of a SQL storage.

    The storage must be initialised (schema at revision ``0002`` or later). ``clock`` (default:
    the system clock, UTC) is the queue's notion of now. The queue does not own the storage:
    :meth:`close` leaves it open. ``backoff`` maps the number of failed attempts to the wait
    before the next one (default :func:`~opencatalog.domain.jobs.next_backoff`).
    """

    def __init__(
        self,
        storage: SqlAlchemyStorage,
        *,
        clock: Callable[[], datetime] | None = None,
        backoff: Callable[[int], timedelta] = next_backoff,
    ) -> None:
        if not isinstance(storage, SqlAlchemyStorage):
            raise ConfigurationError(
                "The SQL job queue needs the catalog's SQL storage (sqlite:// or postgresql://)"
            )
        self._storage = storage
        self._clock = clock or _system_clock
        self._backoff = backoff
        self._postgres = storage.dialect_name == "postgresql"
        # built once: constructing a statement costs more than running it (enqueue_in runs in
        # every service call that creates or re-points a resource)
        self._find_pending = (
            select(*_COLUMNS)
            .where(job.c.dedupe_key == bindparam("key"), job.c.status == _PENDING)
            .order_by(job.c.seq)
            .limit(1)
        )
        insert = (pg_dialect.insert if self._postgres else sqlite_dialect.insert)(job)
        self._insert = insert.on_conflict_do_nothing(
            index_elements=[job.c.dedupe_key], index_where=text(_FRESH_PENDING)
        ).returning(*_COLUMNS)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> SqlJobQueue:
        """The queue for ``sql://``. Options: ``storage`` (required: the catalog's
        ``SqlAlchemyStorage``), ``clock`` and ``backoff``."""
        if url.split("?", 1)[0].rstrip("/") != "sql:":
            raise ConfigurationError(f"The SQL job queue takes the URL sql://, not {url!r}")
        unknown = set(options) - {"storage", "clock", "backoff"}
        if unknown:
            raise ConfigurationError(f"Unknown SQL queue options: {', '.join(sorted(unknown))}")
        storage = options.get("storage")
        if storage is None:
            raise ConfigurationError(
                "The sql:// job queue keeps jobs in the catalog's SQL storage: "
                "pass storage=<SqlAlchemyStorage>"
            )
        return cls(
            storage, clock=options.get("clock"), backoff=options.get("backoff", next_backoff)
        )

    @property
    def storage(self) -> SqlAlchemyStorage:
        """The storage whose database holds the jobs."""
        return self._storage

    # -- plumbing ------------------------------------------------------------------------------

    @contextmanager
    def _tx(self, *, write: bool) -> Iterator[Connection]:
        """A connection in a transaction of the right kind; commits on success."""
        try:
            with self._storage.unit_of_work(write=write) as uow:
                yield uow.connection
                uow.commit()
        except sa_exc.SQLAlchemyError as exc:
            raise translate_error(exc, noun="job") from exc

    def _now(self) -> datetime:
        return self._clock()

    def _select_by_id(self, connection: Connection, job_id: str) -> Job | None:
        row = connection.execute(select(*_COLUMNS).where(job.c.id == job_id)).first()
        return None if row is None else _to_job(row)

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
        with self._tx(write=True) as connection:
            return self._enqueue(connection, kind, payload, dedupe_key, max_attempts)

    def accepts(self, uow: object) -> bool:
        """True for a unit of work of the storage this queue keeps its jobs in."""
        return isinstance(uow, SqlAlchemyUnitOfWork) and uow.storage is self._storage

    def enqueue_in(
        self,
        uow: SqlAlchemyUnitOfWork | Connection,
        kind: str,
        payload: Mapping[str, Any],
        *,
        dedupe_key: str | None = None,
        max_attempts: int = 3,
    ) -> Job:
        """Like :meth:`enqueue`, inside the caller's open write unit of work (or connection):
        the job exists if and only if the caller's transaction commits (transactional
        enqueue, so a crash between a change and its job cannot lose the job)."""
        check_enqueue(kind, payload, max_attempts)
        connection = uow.connection if isinstance(uow, SqlAlchemyUnitOfWork) else uow
        try:
            return self._enqueue(connection, kind, payload, dedupe_key, max_attempts)
        except sa_exc.SQLAlchemyError as exc:
            raise translate_error(exc, noun="job") from exc

    def _enqueue(
        self,
        connection: Connection,
        kind: str,
        payload: Mapping[str, Any],
        dedupe_key: str | None,
        max_attempts: int,
    ) -> Job:
        body = json.dumps(dict(payload), ensure_ascii=False, sort_keys=True)
        for _ in range(5):
            if dedupe_key is not None:
                row = connection.execute(self._find_pending, {"key": dedupe_key}).first()
                if row is not None:
                    return _to_job(row)
            now = self._now()
            values = {
                "id": str(uuid.uuid4()),
                "kind": kind,
                "payload": body,
                "dedupe_key": dedupe_key,
                "status": _PENDING,
                "attempts": 0,
                "max_attempts": max_attempts,
                "run_after": now,
                "lease_owner": None,
                "lease_until": None,
                "error": None,
                "steps": "[]",
                "created": now,
                "updated": now,
            }
            row = connection.execute(self._insert, values).first()
            if row is not None:
                logger.debug("Enqueued job %s (%s)", values["id"], kind)
                return _to_job(row)
            # A concurrent enqueue with the same key won; read it on the next round.
        raise Conflict(f"Could not enqueue a job with dedupe key {dedupe_key!r}; try again")

    # -- consuming ---------------------------------------------------------------------------

    def _runnable(self, now: datetime, kinds: frozenset[str] | None) -> ColumnElement[bool]:
        condition = or_(
            and_(job.c.status == _PENDING, job.c.run_after <= now),
            and_(
                job.c.status == _PROCESSING,
                job.c.lease_until <= now,
                job.c.attempts < job.c.max_attempts,
            ),
        )
        if kinds is not None:
            condition = and_(condition, job.c.kind.in_(sorted(kinds)))
        return condition

    def _dead_lease(self, now: datetime) -> ColumnElement[bool]:
        return and_(
            job.c.status == _PROCESSING,
            job.c.lease_until <= now,
            job.c.attempts >= job.c.max_attempts,
        )

    def claim(
        self,
        worker_id: str,
        *,
        lease: timedelta,
        kinds: Collection[str] | None = None,
    ) -> Job | None:
        check_lease(lease)
        wanted = None if kinds is None else frozenset(kinds)
        if wanted is not None and not wanted:
            return None
        if not self._postgres:
            # A cheap deferred read first: idle pollers never take SQLite's write lock.
            now = self._now()
            with self._tx(write=False) as connection:
                found = connection.execute(
                    select(job.c.seq)
                    .where(or_(self._runnable(now, wanted), self._dead_lease(now)))
                    .limit(1)
                ).first()
            if found is None:
                return None
        with self._tx(write=True) as connection:
            now = self._now()
            self._bury_dead_leases(connection, now)
            assignment = {
                "status": _PROCESSING,
                "attempts": job.c.attempts + 1,
                "lease_owner": worker_id,
                "lease_until": now + lease,
                "updated": now,
            }
            candidate = (
                select(job.c.seq).where(self._runnable(now, wanted)).order_by(job.c.seq).limit(1)
            )
            if self._postgres:
                seq = connection.execute(candidate.with_for_update(skip_locked=True)).scalar()
                if seq is None:
                    return None
                statement = update(job).where(job.c.seq == seq)
            else:
                statement = update(job).where(job.c.seq == candidate.scalar_subquery())
            row = connection.execute(statement.values(**assignment).returning(*_COLUMNS)).first()
            return None if row is None else _to_job(row)

    def _bury_dead_leases(self, connection: Connection, now: datetime) -> None:
        """Jobs whose last attempt's lease expired go to ``error`` (the worker died on them)."""
        result = connection.execute(
            update(job)
            .where(self._dead_lease(now))
            .values(
                status=_ERROR,
                lease_owner=None,
                lease_until=None,
                error=func.coalesce(job.c.error, "The lease of the last attempt expired"),
                updated=now,
            )
        )
        if result.rowcount:
            logger.warning("%d job(s) lost the lease of their last attempt", result.rowcount)

    def _held(self, job_id: str, worker_id: str) -> ColumnElement[bool]:
        return and_(
            job.c.id == job_id,
            job.c.status == _PROCESSING,
            job.c.lease_owner == worker_id,
        )

    def heartbeat(self, job_id: str, worker_id: str, lease: timedelta) -> bool:
        check_lease(lease)
        with self._tx(write=True) as connection:
            now = self._now()
            result = connection.execute(
                update(job)
                .where(self._held(job_id, worker_id))
                .values(lease_until=now + lease, updated=now)
            )
            return bool(result.rowcount)

    def complete(self, job_id: str, worker_id: str, steps: Sequence[StepLog] = ()) -> bool:
        with self._tx(write=True) as connection:
            result = connection.execute(
                update(job)
                .where(self._held(job_id, worker_id))
                .values(
                    status=_COMPLETE,
                    lease_owner=None,
                    lease_until=None,
                    error=None,
                    steps=_steps_json(steps),
                    updated=self._now(),
                )
            )
            return bool(result.rowcount)

    def fail(self, job_id: str, worker_id: str, error: str, steps: Sequence[StepLog] = ()) -> bool:
        with self._tx(write=True) as connection:
            statement = select(job.c.attempts, job.c.max_attempts).where(
                self._held(job_id, worker_id)
            )
            if self._postgres:
                statement = statement.with_for_update()
            row = connection.execute(statement).first()
            if row is None:
                return False
            attempts, max_attempts = row
            now = self._now()
            values: dict[str, Any] = {
                "lease_owner": None,
                "lease_until": None,
                "error": error,
                "steps": _steps_json(steps),
                "updated": now,
            }
            if attempts < max_attempts:
                values["status"] = _PENDING
                values["run_after"] = now + self._backoff(attempts)
            else:
                values["status"] = _ERROR
            result = connection.execute(
                update(job).where(self._held(job_id, worker_id)).values(**values)
            )
            return bool(result.rowcount)

    # -- inspecting --------------------------------------------------------------------------

    def get(self, job_id: str) -> Job | None:
        with self._tx(write=False) as connection:
            return self._select_by_id(connection, job_id)

    def list(
        self,
        *,
        status: JobStatus | str | None = None,
        kind: str | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> builtins.list[Job]:
        check_page(offset, limit)
        statement = select(*_COLUMNS).order_by(job.c.seq).offset(offset).limit(limit)
        if status is not None:
            statement = statement.where(job.c.status == JobStatus(status).value)
        if kind is not None:
            statement = statement.where(job.c.kind == kind)
        with self._tx(write=False) as connection:
            return [_to_job(row) for row in connection.execute(statement)]

    def stats(self) -> dict[JobStatus, int]:
        counts = dict.fromkeys(JobStatus, 0)
        with self._tx(write=False) as connection:
            rows = connection.execute(select(job.c.status, func.count()).group_by(job.c.status))
            for status, count in rows:
                counts[JobStatus(status)] = int(count)
        return counts

    def retry(self, job_id: str) -> Job:
        with self._tx(write=True) as connection:
            statement = select(*_COLUMNS).where(job.c.id == job_id)
            if self._postgres:
                statement = statement.with_for_update()
            row = connection.execute(statement).first()
            if row is None:
                raise NotFound(f"No job {job_id}")
            current = _to_job(row)
            if current.status is not JobStatus.ERROR:
                raise Conflict(f"Job {job_id} is {current.status.value}, not error")
            if current.dedupe_key is not None:
                fresh = connection.execute(
                    select(*_COLUMNS)
                    .where(
                        job.c.dedupe_key == current.dedupe_key,
                        job.c.status == _PENDING,
                        job.c.attempts == 0,
                    )
                    .limit(1)
                ).first()
                if fresh is not None:
                    return _to_job(fresh)
            now = self._now()
            row = connection.execute(
                update(job)
                .where(job.c.id == job_id, job.c.status == _ERROR)
                .values(status=_PENDING, attempts=0, run_after=now, error=None, updated=now)
                .returning(*_COLUMNS)
            ).first()
            if row is None:  # pragma: no cover - the row is locked (PG) or the db is (SQLite)
                raise Conflict(f"Job {job_id} changed while being retried")
            return _to_job(row)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._storage!r})"
