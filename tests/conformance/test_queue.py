"""The task queue conformance kit against every built-in queue.

MemoryTaskQueue (the fake), SqlJobQueue on SQLite (a database file per test, both
migrations applied by ``initialize``) and SqlJobQueue on PostgreSQL (a fresh database per
test).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from opencatalog.adapters.memory_queue import MemoryTaskQueue
from opencatalog.adapters.sqlalchemy import SqlAlchemyStorage
from opencatalog.adapters.sqlalchemy.jobs import SqlJobQueue
from opencatalog.errors import ConfigurationError
from opencatalog.ports.queue import TaskQueue
from opencatalog.testing.queue import ManualClock, TaskQueueTests


class TestMemoryTaskQueue(TaskQueueTests):
    @pytest.fixture
    def queue(self, clock: ManualClock) -> Iterator[TaskQueue]:
        q = MemoryTaskQueue.from_url("memory://", clock=clock)
        yield q
        q.close()


class TestSqlJobQueueSqlite(TaskQueueTests):
    @pytest.fixture
    def queue(self, clock: ManualClock, tmp_path: Path) -> Iterator[TaskQueue]:
        storage = SqlAlchemyStorage.from_url(f"sqlite:///{tmp_path / 'catalog.db'}")
        storage.initialize()
        q = SqlJobQueue.from_url("sql://", storage=storage, clock=clock)
        yield q
        q.close()
        storage.close()


@pytest.mark.postgres
class TestSqlJobQueuePostgres(TaskQueueTests):
    @pytest.fixture
    def queue(self, clock: ManualClock, postgres_url: str) -> Iterator[TaskQueue]:
        storage = SqlAlchemyStorage.from_url(postgres_url)
        storage.initialize()
        q = SqlJobQueue.from_url("sql://", storage=storage, clock=clock)
        yield q
        q.close()
        storage.close()


def test_memory_queue_url_and_options_are_checked() -> None:
    with pytest.raises(ConfigurationError):
        MemoryTaskQueue.from_url("sql://")
    with pytest.raises(ConfigurationError):
        MemoryTaskQueue.from_url("memory://", colour="blue")


def test_sql_queue_needs_the_catalog_storage(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="storage"):
        SqlJobQueue.from_url("sql://")
    with pytest.raises(ConfigurationError):
        SqlJobQueue.from_url("sql://", storage=object())
    storage = SqlAlchemyStorage.from_url(f"sqlite:///{tmp_path / 'c.db'}")
    try:
        with pytest.raises(ConfigurationError):
            SqlJobQueue.from_url("memory://", storage=storage)
    finally:
        storage.close()


def test_sql_enqueue_in_joins_the_callers_transaction(tmp_path: Path) -> None:
    storage = SqlAlchemyStorage.from_url(f"sqlite:///{tmp_path / 'c.db'}")
    storage.initialize()
    queue = SqlJobQueue(storage)
    try:
        with storage.unit_of_work(write=True) as uow:
            queue.enqueue_in(uow, "pipeline", {"resource_id": "lost"})
            uow.rollback()
        assert queue.list() == []
        with storage.unit_of_work(write=True) as uow:
            kept = queue.enqueue_in(uow, "pipeline", {"resource_id": "kept"}, dedupe_key="k")
            uow.commit()
        assert [job.id for job in queue.list()] == [kept.id]
    finally:
        storage.close()
