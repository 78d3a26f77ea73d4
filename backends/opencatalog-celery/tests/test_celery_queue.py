"""``CeleryTaskQueue`` without a worker: URLs and options, registration by entry point, when
wake-ups are published (after the commit of a transactional enqueue, with a countdown after a
failure), the sweep, a broker that is down, and the ``opencatalog-celery`` command.

Wake-ups are counted in the broker queue of the in-process ``memory://`` transport (no server
needed)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from opencatalog import registry
from opencatalog.adapters.memory_queue import MemoryTaskQueue
from opencatalog.adapters.sqlalchemy import SqlAlchemyStorage
from opencatalog.adapters.sqlalchemy.jobs import SqlJobQueue
from opencatalog.domain.jobs import Job, JobStatus, StepLog
from opencatalog.errors import ConfigurationError
from opencatalog.ports.capabilities import SupportsTransactionalEnqueue
from opencatalog.testing.queue import ManualClock

from oc_celery_helpers import TEST_CONFIG, Broker
from opencatalog_celery import CeleryTaskQueue, parse_url
from opencatalog_celery.cli import load_handlers, main

LEASE = timedelta(seconds=30)
#: Handlers for the ``load_handlers`` test.
HANDLERS: dict[str, Callable[[Job], list[StepLog]]] = {"count": lambda job: []}


def make_handlers() -> dict[str, Callable[[Job], list[StepLog]]]:
    return dict(HANDLERS)


@pytest.fixture
def queue(
    sqlite_storage: SqlAlchemyStorage, clock: ManualClock, memory_broker: Broker
) -> Iterator[CeleryTaskQueue]:
    q = CeleryTaskQueue.from_url(
        memory_broker.queue_url, storage=sqlite_storage, clock=clock, config=memory_broker.config
    )
    yield q
    q.app.control.purge()
    q.close()


# -- URLs and options --------------------------------------------------------------------------


def test_the_url_is_celery_plus_the_broker_url() -> None:
    assert parse_url("celery+amqp://guest:guest@127.0.0.1:5672//") == (
        "amqp://guest:guest@127.0.0.1:5672//",
        {},
    )
    assert parse_url("celery+redis://127.0.0.1:6379/0?queue=jobs&sweep_grace=5") == (
        "redis://127.0.0.1:6379/0",
        {"queue": "jobs", "sweep_grace": "5"},
    )
    # the broker's own parameters stay on its URL
    broker, ours = parse_url("celery+rediss://h:6380/1?ssl_cert_reqs=required&queue=q")
    assert broker == "rediss://h:6380/1?ssl_cert_reqs=required"
    assert ours == {"queue": "q"}


@pytest.mark.parametrize(
    "url", ["celery://", "celery://127.0.0.1:5672", "sql://", "amqp://127.0.0.1//", "celery+://x"]
)
def test_urls_that_do_not_name_a_broker_are_refused(url: str) -> None:
    with pytest.raises(ConfigurationError):
        parse_url(url)


def test_options_are_checked(sqlite_storage: SqlAlchemyStorage) -> None:
    url = "celery+memory://localhost/"
    with pytest.raises(ConfigurationError, match="storage"):
        CeleryTaskQueue.from_url(url)
    with pytest.raises(ConfigurationError, match="not both"):
        CeleryTaskQueue.from_url(url, storage=sqlite_storage, state=MemoryTaskQueue())
    with pytest.raises(ConfigurationError, match="Unknown"):
        CeleryTaskQueue.from_url(url, state=MemoryTaskQueue(), colour="blue")
    with pytest.raises(ConfigurationError, match="backoff"):
        CeleryTaskQueue.from_url(url, state=MemoryTaskQueue(), backoff=lambda n: LEASE)
    with pytest.raises(ConfigurationError, match="seconds"):
        CeleryTaskQueue.from_url(url + "?sweep_grace=soon", state=MemoryTaskQueue())
    with pytest.raises(ConfigurationError, match="SQL storage"):
        CeleryTaskQueue.from_url(url, storage=object())


def test_url_options_reach_the_queue_and_celery(sqlite_storage: SqlAlchemyStorage) -> None:
    q = CeleryTaskQueue.from_url(
        "celery+memory://localhost/?queue=octest_named&sweep_interval=5",
        storage=sqlite_storage,
        config=TEST_CONFIG,
    )
    try:
        assert q.queue_name == "octest_named"
        assert isinstance(q.state, SqlJobQueue) and q.state.storage is sqlite_storage
        assert q.app.conf.task_default_queue == "octest_named"
        assert q.app.conf.beat_schedule["opencatalog-sweep"]["schedule"] == 5.0
        assert {"opencatalog.run_job", "opencatalog.sweep"} <= set(q.app.tasks)
    finally:
        q.close()


def test_found_by_entry_point(sqlite_storage: SqlAlchemyStorage) -> None:
    assert "celery" in registry.available("queue")
    q = registry.create("queue", "celery+memory://localhost/", storage=sqlite_storage)
    try:
        assert isinstance(q, CeleryTaskQueue)
        assert isinstance(q, SupportsTransactionalEnqueue)
    finally:
        q.close()


# -- wake-ups ----------------------------------------------------------------------------------


def test_enqueue_and_retry_publish_a_wake_up(queue: CeleryTaskQueue) -> None:
    assert queue.waiting() == 0
    job = queue.enqueue("count", {"n": 1}, max_attempts=1)
    assert queue.waiting() == 1
    stored = queue.get(job.id)
    assert stored is not None and stored.status is JobStatus.PENDING
    queue.app.control.purge()
    claimed = queue.claim("w", lease=LEASE)
    assert claimed is not None and queue.fail(job.id, "w", "boom")
    assert queue.waiting() == 0  # dead letter: nothing to wake
    queue.retry(job.id)
    assert queue.waiting() == 1


def test_a_failed_attempt_wakes_a_worker_at_its_run_after(queue: CeleryTaskQueue) -> None:
    job = queue.enqueue("count", {})
    queue.app.control.purge()
    assert queue.claim("w", lease=LEASE) is not None
    assert queue.fail(job.id, "w", "boom")
    # memory:// keeps a message with a countdown in the queue until a worker takes it
    assert queue.waiting() == 1


def test_transactional_enqueue_publishes_after_the_commit(
    queue: CeleryTaskQueue, sqlite_storage: SqlAlchemyStorage
) -> None:
    # what a service call does: enqueue in its unit of work, commit, then after-commit hooks
    with sqlite_storage.unit_of_work(write=True) as uow:
        assert queue.accepts(uow)
        kept = queue.enqueue_in(uow, "count", {"n": 1})
        assert queue.waiting() == 0  # not before the commit
        uow.commit()
    queue.notify()
    assert queue.waiting() == 1
    assert [job.id for job in queue.list()] == [kept.id]
    queue.notify()  # nothing left to announce
    assert queue.waiting() == 1


def test_a_rolled_back_enqueue_is_never_announced(
    queue: CeleryTaskQueue, sqlite_storage: SqlAlchemyStorage
) -> None:
    with sqlite_storage.unit_of_work(write=True) as uow:
        queue.enqueue_in(uow, "count", {"n": "lost"})
        uow.rollback()
    # no after-commit hook runs for it; the next transaction's hook announces only its own
    with sqlite_storage.unit_of_work(write=True) as uow:
        kept = queue.enqueue_in(uow, "count", {"n": "kept"})
        uow.commit()
    queue.notify()
    assert queue.waiting() == 1
    assert [job.id for job in queue.list()] == [kept.id]


def test_notify_announces_only_the_calling_threads_jobs(
    queue: CeleryTaskQueue, sqlite_storage: SqlAlchemyStorage
) -> None:
    with sqlite_storage.unit_of_work(write=True) as uow:
        queue.enqueue_in(uow, "count", {})
        uow.commit()
    other = threading.Thread(target=queue.notify)
    other.start()
    other.join()
    assert queue.waiting() == 0
    queue.notify()
    assert queue.waiting() == 1


def test_a_state_queue_without_transactions_is_refused_in_a_transaction(
    memory_broker: Broker, sqlite_storage: SqlAlchemyStorage
) -> None:
    q = CeleryTaskQueue(MemoryTaskQueue(), broker=memory_broker.url, config=memory_broker.config)
    try:
        with sqlite_storage.unit_of_work(write=True) as uow:
            assert not q.accepts(uow)
            with pytest.raises(ConfigurationError):
                q.enqueue_in(uow, "count", {})
    finally:
        q.close()


# -- the sweep ---------------------------------------------------------------------------------


def test_the_sweep_wakes_jobs_whose_wake_up_was_lost(
    queue: CeleryTaskQueue, clock: ManualClock
) -> None:
    first = queue.enqueue("count", {"n": 1})
    queue.enqueue("count", {"n": 2})
    queue.enqueue("other", {"n": 3})
    queue.app.control.purge()
    assert queue.sweep() == 0  # within the grace period their messages may be on their way
    clock.advance(timedelta(seconds=31))
    assert queue.sweep(kinds={"count"}) == 2
    assert queue.waiting() == 2
    assert queue.sweep(kinds={"count"}) == 0  # messages already waiting are counted
    assert queue.sweep() == 1  # the third job's
    # a worker that died: its lease runs out, the sweep wakes another one
    queue.app.control.purge()
    claimed = queue.claim("dead", lease=LEASE)
    assert claimed is not None and claimed.id == first.id
    assert queue.sweep(grace=timedelta(0)) == 2  # the two pending ones
    queue.app.control.purge()
    clock.advance(LEASE)
    assert queue.sweep(grace=timedelta(0)) == 3


def test_the_sweep_task_is_what_beat_runs(queue: CeleryTaskQueue, clock: ManualClock) -> None:
    queue.enqueue("count", {})
    queue.app.control.purge()
    clock.advance(timedelta(minutes=1))
    assert queue.app.tasks["opencatalog.sweep"].apply().get() == 1


# -- a broker that is down -----------------------------------------------------------------------


def test_a_broker_that_is_down_does_not_lose_or_refuse_jobs(
    sqlite_storage: SqlAlchemyStorage, caplog: pytest.LogCaptureFixture
) -> None:
    q = CeleryTaskQueue.from_url(
        "celery+amqp://guest:guest@127.0.0.1:1//",  # nothing listens on port 1
        storage=sqlite_storage,
        config={**TEST_CONFIG, "broker_connection_timeout": 1},
    )
    try:
        with caplog.at_level(logging.WARNING, logger="opencatalog_celery"):
            job = q.enqueue("count", {})
        assert q.get(job.id) is not None
        assert "sweep" in caplog.text
        assert q.waiting() is None
        assert q.sweep(grace=timedelta(0)) == 0
    finally:
        q.close()


# -- the command -------------------------------------------------------------------------------


def test_load_handlers() -> None:
    assert load_handlers("test_celery_queue:HANDLERS") == HANDLERS
    assert load_handlers("test_celery_queue:make_handlers") == HANDLERS
    for spec in ("test_celery_queue", "no_such_module_here:X", "test_celery_queue:NOPE"):
        with pytest.raises(ConfigurationError):
            load_handlers(spec)
    with pytest.raises(ConfigurationError):
        load_handlers("test_celery_queue:LEASE")


def test_the_sweep_command(tmp_path: Path, memory_broker: Broker) -> None:
    storage_url = f"sqlite:///{tmp_path / 'cli.db'}"
    storage = SqlAlchemyStorage.from_url(storage_url)
    storage.initialize()
    state = SqlJobQueue(storage)
    for n in range(3):
        state.enqueue("count", {"n": n})  # straight into the table: no wake-ups
    q = CeleryTaskQueue(state, broker=memory_broker.url, queue_name=memory_broker.queue_name)
    try:
        result = CliRunner().invoke(
            main,
            ["sweep", "--grace", "0", "--kind", "count"],
            env={"OPENCATALOG_STORAGE": storage_url, "OPENCATALOG_QUEUE": memory_broker.queue_url},
        )
        assert result.exit_code == 0, result.output
        assert "3 wake-up(s) published" in result.output
        assert q.waiting() == 3
        bad = CliRunner().invoke(
            main, ["sweep", "--storage", storage_url, "--queue", "celery://nowhere"]
        )
        assert bad.exit_code != 0 and "broker" in bad.output
    finally:
        q.app.control.purge()
        q.close()
        storage.close()
