"""``CeleryTaskQueue``: job state in storage, wake-ups through a Celery broker.

The queue keeps every job in a *state queue* (the catalog's SQL job table, or any
:class:`~opencatalog.ports.queue.TaskQueue`) and delegates every state operation to it; the
broker only carries *wake-ups*: messages of the Celery task ``opencatalog.run_job`` that make a
worker claim the oldest runnable job from the state queue, run it and record the outcome there.
So status queries never depend on the broker, a message is never the only copy of a job, and a
lost or duplicated message costs at most one empty claim.

When wake-ups are published:

* ``enqueue`` and ``retry``: right after the job is stored;
* ``enqueue_in`` (transactional enqueue): after the caller's transaction commits, when
  :meth:`CeleryTaskQueue.notify` runs (the catalog calls it among its after-commit hooks), so
  a worker never looks for a job that is not committed yet;
* ``fail`` that puts the job back to ``pending``: with a countdown to its ``run_after``;
* :meth:`CeleryTaskQueue.sweep` (Celery beat's ``opencatalog.sweep`` every ``sweep_interval``,
  or ``opencatalog-celery sweep``): one per runnable job that has waited longer than
  ``sweep_grace``, less the messages already waiting in the broker, so a lost message (broker
  restart, purge, a publish that failed, a worker that died) never loses a job.

Publishing is best effort: a broker that is down is logged, never raised, since the job is
already durable and the next sweep publishes again.
"""

from __future__ import annotations

import builtins
import logging
import threading
import weakref
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

from celery import Celery
from opencatalog.domain.jobs import Job, JobStatus, StepLog, next_backoff
from opencatalog.errors import ConfigurationError
from opencatalog.ports.capabilities import SupportsTransactionalEnqueue
from opencatalog.ports.queue import MAX_LIST_LIMIT, TaskQueue

if TYPE_CHECKING:
    from opencatalog.worker import Handler

    from opencatalog_celery.runner import JobRunner

__all__ = [
    "DEFAULT_QUEUE_NAME",
    "TASK_RUN_JOB",
    "TASK_SWEEP",
    "CeleryTaskQueue",
    "parse_url",
]

logger = logging.getLogger(__name__)

TASK_RUN_JOB = "opencatalog.run_job"
"""The Celery task a wake-up message calls: claim one job and run it."""

TASK_SWEEP = "opencatalog.sweep"
"""The Celery task beat calls every ``sweep_interval``: :meth:`CeleryTaskQueue.sweep`."""

DEFAULT_QUEUE_NAME = "opencatalog"
DEFAULT_SWEEP_INTERVAL = timedelta(seconds=60)
DEFAULT_SWEEP_GRACE = timedelta(seconds=30)
DEFAULT_LEASE = timedelta(minutes=5)

#: Query parameters of a ``celery+...`` URL that are options of the queue, not of the broker.
_URL_OPTIONS = frozenset({"queue", "sweep_interval", "sweep_grace"})
_OPTIONS = frozenset(
    {"storage", "state", "clock", "backoff", "config", "queue", "sweep_interval", "sweep_grace"}
)


def _system_clock() -> datetime:
    return datetime.now(UTC)


def _seconds(name: str, value: Any) -> timedelta:
    if isinstance(value, timedelta):
        result = value
    else:
        try:
            result = timedelta(seconds=float(value))
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"{name} must be a number of seconds, not {value!r}") from exc
    if result < timedelta(0):
        raise ConfigurationError(f"{name} must not be negative")
    return result


def parse_url(url: str) -> tuple[str, dict[str, str]]:
    """Split ``celery+<broker URL>`` into the broker URL and the queue's own options.

    ``celery+amqp://guest:guest@127.0.0.1:5672//?queue=jobs`` gives
    ``("amqp://guest:guest@127.0.0.1:5672//", {"queue": "jobs"})``; query parameters other
    than ``queue``, ``sweep_interval`` and ``sweep_grace`` stay on the broker URL.
    """
    scheme, sep, rest = url.partition("://")
    prefix, plus, broker_scheme = scheme.partition("+")
    if not sep or prefix.lower() != "celery":
        raise ConfigurationError(f"The Celery job queue takes a celery+<broker> URL, not {url!r}")
    if not plus or not broker_scheme:
        raise ConfigurationError(
            "Name the Celery broker in the URL: celery+amqp://user:password@host:5672/vhost "
            "(RabbitMQ) or celery+redis://host:6379/0 (Redis)"
        )
    location, _, query = rest.partition("?")
    ours: dict[str, str] = {}
    theirs: list[tuple[str, str]] = []
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name in _URL_OPTIONS:
            ours[name] = value
        else:
            theirs.append((name, value))
    broker = f"{broker_scheme}://{location}"
    if theirs:
        broker += "?" + urlencode(theirs)
    return broker, ours


class _Pending(threading.local):
    """The jobs this thread enqueued inside a transaction and has not announced yet."""

    def __init__(self) -> None:
        self.uow: Callable[[], object | None] | None = None
        self.ids: list[str] = []


class CeleryTaskQueue(TaskQueue):
    """A :class:`~opencatalog.ports.queue.TaskQueue` run by Celery workers.

    ``state`` holds the jobs (see the module docstring); ``broker`` is a Celery broker URL
    (``amqp://...`` for RabbitMQ, ``redis://...`` for Redis; ``memory://`` in one process
    for tests). ``queue_name`` names the broker queue (and its exchange) the wake-ups go
    through. ``clock`` should be the state queue's clock. ``config`` is merged into the Celery
    configuration last (for example ``{"broker_transport_options": {...}}``).

    Workers: :meth:`bind` the job handlers, then start a Celery worker on :attr:`app` (pool
    ``threads`` or ``solo``), or run ``opencatalog-celery worker``.
    """

    def __init__(
        self,
        state: TaskQueue,
        *,
        broker: str,
        queue_name: str = DEFAULT_QUEUE_NAME,
        clock: Callable[[], datetime] | None = None,
        sweep_interval: timedelta = DEFAULT_SWEEP_INTERVAL,
        sweep_grace: timedelta = DEFAULT_SWEEP_GRACE,
        config: Mapping[str, Any] | None = None,
        owns_state: bool = False,
    ) -> None:
        if not isinstance(state, TaskQueue):
            raise ConfigurationError("The Celery job queue needs a TaskQueue to keep job state in")
        if isinstance(state, CeleryTaskQueue):
            raise ConfigurationError("A Celery job queue cannot keep its state in another one")
        if not queue_name:
            raise ConfigurationError("The Celery queue name must not be empty")
        if sweep_interval <= timedelta(0):
            raise ConfigurationError("sweep_interval must be positive")
        self._state = state
        self._owns_state = owns_state
        self._broker = broker
        self._queue_name = queue_name
        self._clock = clock or _system_clock
        self._sweep_interval = sweep_interval
        self._sweep_grace = sweep_grace
        self._pending = _Pending()
        self._runner: JobRunner | None = None
        self._app = self._make_app(config or {})

    @classmethod
    def from_url(cls, url: str, **options: Any) -> CeleryTaskQueue:
        """The queue for ``celery+<broker URL>[?queue=...&sweep_interval=...&sweep_grace=...]``.

        Options: ``storage`` (the catalog's ``SqlAlchemyStorage``: jobs go to its job table)
        or ``state`` (any ``TaskQueue``), exactly one; ``clock`` and ``backoff`` (given to the
        SQL job queue built on ``storage``); ``config`` (Celery settings); ``queue``,
        ``sweep_interval`` and ``sweep_grace`` (seconds), which override the URL's.
        """
        broker, from_query = parse_url(url)
        unknown = set(options) - _OPTIONS
        if unknown:
            raise ConfigurationError(f"Unknown Celery queue options: {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {**from_query, **options}
        storage: Any = values.get("storage")
        given: TaskQueue | None = values.get("state")
        clock = values.get("clock")
        if (storage is None) == (given is None):
            raise ConfigurationError(
                "The celery job queue keeps job state in storage: pass storage=<the catalog's "
                "SqlAlchemyStorage> (or state=<a TaskQueue>), not both"
            )
        state: TaskQueue
        if given is not None:
            if "backoff" in values:
                raise ConfigurationError("backoff is an option of the state queue, not this one")
            state = given
        else:
            from opencatalog.adapters.sqlalchemy.jobs import SqlJobQueue

            state = SqlJobQueue(storage, clock=clock, backoff=values.get("backoff", next_backoff))
        return cls(
            state,
            broker=broker,
            queue_name=str(values.get("queue", DEFAULT_QUEUE_NAME)),
            clock=clock,
            sweep_interval=_seconds(
                "sweep_interval", values.get("sweep_interval", DEFAULT_SWEEP_INTERVAL)
            ),
            sweep_grace=_seconds("sweep_grace", values.get("sweep_grace", DEFAULT_SWEEP_GRACE)),
            config=values.get("config"),
            owns_state=given is None,
        )

    # -- the Celery side -------------------------------------------------------------------

    def _make_app(self, config: Mapping[str, Any]) -> Celery:
        app = Celery("opencatalog", broker=self._broker, set_as_current=False)
        app.conf.update(
            task_default_queue=self._queue_name,
            task_default_exchange=self._queue_name,
            task_default_routing_key=self._queue_name,
            task_serializer="json",
            accept_content=["json"],
            task_ignore_result=True,
            enable_utc=True,
            timezone="UTC",
            # one wake-up at a time per worker slot: a long job holds no other job's message
            worker_prefetch_multiplier=1,
            worker_hijack_root_logger=False,
            broker_connection_retry_on_startup=True,
            # a broker that is down must not hold a committed write for long
            task_publish_retry_policy={
                "max_retries": 2,
                "interval_start": 0,
                "interval_step": 0.2,
                "interval_max": 0.5,
            },
            beat_schedule={
                "opencatalog-sweep": {
                    "task": TASK_SWEEP,
                    "schedule": self._sweep_interval.total_seconds(),
                }
            },
        )
        app.conf.update(dict(config))
        queue = self

        # shared=False: Celery would otherwise add these closures to every app created later
        @app.task(name=TASK_RUN_JOB, bind=True, shared=False, ignore_result=True, max_retries=5)
        def run_job(task: Any, job_id: str | None = None) -> None:
            from opencatalog_celery.runner import run_wakeup

            run_wakeup(queue, task, job_id)

        @app.task(name=TASK_SWEEP, shared=False, ignore_result=True)
        def sweep() -> int:
            kinds = None if queue._runner is None else queue._runner.kinds
            return queue.sweep(kinds=kinds)

        return app

    @property
    def app(self) -> Celery:
        """The Celery application: its broker, its queue and the two tasks."""
        return self._app

    @property
    def queue_name(self) -> str:
        """The broker queue the wake-ups go through."""
        return self._queue_name

    @property
    def state(self) -> TaskQueue:
        """The queue that holds the jobs."""
        return self._state

    def now(self) -> datetime:
        """The queue's clock."""
        return self._clock()

    @property
    def runner(self) -> JobRunner | None:
        """What runs claimed jobs in this process (set by :meth:`bind`), or None."""
        return self._runner

    def bind(
        self,
        handlers: Mapping[str, Handler],
        *,
        lease: timedelta = DEFAULT_LEASE,
        heartbeat_interval: float | None = None,
    ) -> Celery:
        """Make this process a worker: ``opencatalog.run_job`` claims jobs of the kinds in
        ``handlers`` (the same handlers the in-process :class:`~opencatalog.worker.Worker`
        takes) under ``lease``, renewed every ``heartbeat_interval`` seconds (a third of the
        lease by default). Returns :attr:`app`, ready for a Celery worker."""
        from opencatalog_celery.runner import JobRunner

        self._runner = JobRunner(self, handlers, lease=lease, heartbeat_interval=heartbeat_interval)
        return self._app

    def wake(self, job_ids: Iterable[str | None], *, countdown: float | None = None) -> int:
        """Publish one wake-up per id (None: a wake-up for no job in particular), after
        ``countdown`` seconds if given; return how many were published.

        Best effort: a broker error is logged and the count of those published is returned.
        """
        ids = list(job_ids)
        if not ids:
            return 0
        sent = 0
        try:
            with self._app.producer_or_acquire() as producer:
                for job_id in ids:
                    self._app.send_task(
                        TASK_RUN_JOB,
                        args=(job_id,),
                        producer=producer,
                        countdown=countdown,
                        queue=self._queue_name,
                    )
                    sent += 1
        except Exception as exc:  # the jobs are stored; the next sweep publishes again
            logger.warning(
                "Could not publish %d of %d job wake-up(s) to the Celery broker: %s "
                "(the sweep will publish them again)",
                len(ids) - sent,
                len(ids),
                exc,
            )
        return sent

    def waiting(self) -> int | None:
        """How many messages wait in the broker queue (not yet delivered to a worker), or
        None when the broker cannot tell."""
        try:
            with self._app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, interval_start=0)  # no waiting
                # declared as Celery declares it (a queue nobody published to yet holds 0)
                queue = self._app.amqp.queues[self._queue_name].bind(connection.default_channel)
                return int(queue.queue_declare().message_count)
        except Exception as exc:
            logger.debug("Could not read the depth of queue %s: %s", self._queue_name, exc)
            return None

    def sweep(self, *, grace: timedelta | None = None, kinds: Collection[str] | None = None) -> int:
        """Publish wake-ups for runnable jobs that may have lost theirs; return how many.

        Runnable jobs (of ``kinds``, if given) that have been due for longer than ``grace``
        (default ``sweep_grace``): pending with ``run_after`` that old, or processing with a
        lease expired that long ago (a dead worker; a claim also dead-letters a job whose last
        attempt it was). One wake-up each, oldest first, less the messages already waiting
        in the broker queue.
        """
        now = self._clock()
        cutoff = now - (self._sweep_grace if grace is None else grace)
        wanted = None if kinds is None else frozenset(kinds)
        due: list[str] = []
        for status in (JobStatus.PENDING, JobStatus.PROCESSING):
            for job in self._every(status):
                if wanted is not None and job.kind not in wanted:
                    continue
                since = job.run_after if status is JobStatus.PENDING else job.lease_until
                if since is not None and since <= cutoff and since <= now:
                    due.append(job.id)
        if not due:
            return 0
        waiting = self.waiting()
        missing = len(due) if waiting is None else max(len(due) - waiting, 0)
        sent = self.wake(due[:missing])
        if sent:
            logger.info("Sweep: %d runnable job(s), %d wake-up(s) published", len(due), sent)
        return sent

    def _every(self, status: JobStatus) -> Iterable[Job]:
        offset = 0
        while True:
            page = self._state.list(status=status, offset=offset, limit=MAX_LIST_LIMIT)
            yield from page
            if len(page) < MAX_LIST_LIMIT:
                return
            offset += MAX_LIST_LIMIT

    # -- transactional enqueue -------------------------------------------------------------

    def accepts(self, uow: object) -> bool:
        """True when the state queue can enqueue inside ``uow`` (it is a unit of work of the
        storage the jobs are kept in)."""
        return isinstance(self._state, SupportsTransactionalEnqueue) and self._state.accepts(uow)

    def enqueue_in(
        self,
        uow: Any,
        kind: str,
        payload: Mapping[str, Any],
        *,
        dedupe_key: str | None = None,
        max_attempts: int = 3,
    ) -> Job:
        """Like :meth:`enqueue`, inside the caller's open write unit of work: the job exists
        if and only if that transaction commits. Its wake-up is published by the next
        :meth:`notify` in this thread (after the commit)."""
        if not isinstance(self._state, SupportsTransactionalEnqueue):
            raise ConfigurationError("This queue's state cannot enqueue in a transaction")
        job = self._state.enqueue_in(
            uow, kind, payload, dedupe_key=dedupe_key, max_attempts=max_attempts
        )
        pending = self._pending
        current = pending.uow() if pending.uow is not None else None
        if current is not uow:
            # ids left from another unit of work were never announced: it rolled back (or no
            # after-commit hook runs notify); the sweep covers the second case.
            pending.ids = []
            try:
                pending.uow = weakref.ref(uow)
            except TypeError:
                pending.uow = lambda: uow
        pending.ids.append(job.id)
        return job

    def notify(self) -> None:
        """Publish the wake-ups of the jobs this thread enqueued with :meth:`enqueue_in`
        since the last call. Run it after every commit (``ctx.after_commit``)."""
        pending = self._pending
        ids, pending.ids, pending.uow = pending.ids, [], None
        if ids:
            self.wake(ids)

    # -- the port: state operations delegate to the state queue ------------------------------

    def enqueue(
        self,
        kind: str,
        payload: Mapping[str, Any],
        *,
        dedupe_key: str | None = None,
        max_attempts: int = 3,
    ) -> Job:
        job = self._state.enqueue(kind, payload, dedupe_key=dedupe_key, max_attempts=max_attempts)
        self.wake([job.id])
        return job

    def claim(
        self,
        worker_id: str,
        *,
        lease: timedelta,
        kinds: Collection[str] | None = None,
    ) -> Job | None:
        return self._state.claim(worker_id, lease=lease, kinds=kinds)

    def heartbeat(self, job_id: str, worker_id: str, lease: timedelta) -> bool:
        return self._state.heartbeat(job_id, worker_id, lease)

    def complete(self, job_id: str, worker_id: str, steps: Sequence[StepLog] = ()) -> bool:
        return self._state.complete(job_id, worker_id, steps)

    def fail(self, job_id: str, worker_id: str, error: str, steps: Sequence[StepLog] = ()) -> bool:
        accepted = self._state.fail(job_id, worker_id, error, steps)
        if accepted:
            job = self._state.get(job_id)
            if job is not None and job.status is JobStatus.PENDING:
                self.wake_at(job)
        return accepted

    def wake_at(self, job: Job) -> int:
        """Publish a wake-up for ``job`` due at its ``run_after``."""
        delay = (job.run_after - self._clock()).total_seconds()
        return self.wake([job.id], countdown=delay if delay > 0 else None)

    def get(self, job_id: str) -> Job | None:
        return self._state.get(job_id)

    def list(
        self,
        *,
        status: JobStatus | str | None = None,
        kind: str | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> builtins.list[Job]:
        return self._state.list(status=status, kind=kind, offset=offset, limit=limit)

    def stats(self) -> dict[JobStatus, int]:
        return self._state.stats()

    def retry(self, job_id: str) -> Job:
        job = self._state.retry(job_id)
        if job.status is JobStatus.PENDING:
            self.wake_at(job)
        return job

    def close(self) -> None:
        """Release the broker connections (and the state queue, if this queue built it)."""
        try:
            self._app.close()
        finally:
            if self._owns_state:
                self._state.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._state!r}, queue={self._queue_name!r})"
