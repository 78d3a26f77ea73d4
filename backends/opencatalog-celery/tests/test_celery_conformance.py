"""The shipped task queue conformance kit against ``CeleryTaskQueue``.

Job state over SQLite and over PostgreSQL (the SQL job queue on the catalog's storage, built
from ``storage=`` as ``open_catalog`` does), wake-ups to the in-process ``memory://`` broker,
to Redis and to RabbitMQ: whatever the broker, the queue behaves as the port says.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opencatalog.adapters.sqlalchemy import SqlAlchemyStorage
from opencatalog.ports.queue import TaskQueue
from opencatalog.testing.queue import ManualClock, TaskQueueTests

from oc_celery_helpers import Broker
from opencatalog_celery import CeleryTaskQueue


def _queue(broker: Broker, storage: SqlAlchemyStorage, clock: ManualClock) -> CeleryTaskQueue:
    return CeleryTaskQueue.from_url(
        broker.queue_url, storage=storage, clock=clock, config=broker.config
    )


class TestCelerySqliteMemoryBroker(TaskQueueTests):
    @pytest.fixture
    def queue(
        self, clock: ManualClock, sqlite_storage: SqlAlchemyStorage, memory_broker: Broker
    ) -> Iterator[TaskQueue]:
        q = _queue(memory_broker, sqlite_storage, clock)
        yield q
        q.close()


@pytest.mark.redis
class TestCelerySqliteRedis(TaskQueueTests):
    @pytest.fixture
    def queue(
        self, clock: ManualClock, sqlite_storage: SqlAlchemyStorage, redis_server: str
    ) -> Iterator[TaskQueue]:
        broker = Broker("redis", redis_server)
        q = _queue(broker, sqlite_storage, clock)
        yield q
        q.close()
        broker.cleanup()


@pytest.mark.postgres
@pytest.mark.rabbitmq
class TestCeleryPostgresRabbitMQ(TaskQueueTests):
    @pytest.fixture
    def queue(
        self, clock: ManualClock, postgres_storage: SqlAlchemyStorage, amqp_server: str
    ) -> Iterator[TaskQueue]:
        broker = Broker("rabbitmq", amqp_server)
        q = _queue(broker, postgres_storage, clock)
        yield q
        q.close()
        broker.cleanup()
