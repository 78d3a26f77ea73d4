"""Fixtures for the Celery queue tests: brokers, a fresh PostgreSQL database, Celery workers.

Servers come from the environment:

* ``OPENCATALOG_TEST_AMQP_URL`` (default ``amqp://guest:guest@127.0.0.1:5672//``),
* ``OPENCATALOG_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``),
* ``OPENCATALOG_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``;
  its database only serves to create and drop one database per test).

A server that does not answer skips its tests with the reason, unless
``OPENCATALOG_REQUIRE_BROKERS=1`` (brokers) or ``OPENCATALOG_REQUIRE_POSTGRES=1`` (CI), which
make that a failure. Every test gets its own broker queue and exchange (RabbitMQ) or key
prefix (Redis), removed afterwards; the ``memory://`` broker needs no server.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from kombu import Connection
from opencatalog.adapters.sqlalchemy import SqlAlchemyStorage
from opencatalog.adapters.sqlalchemy.jobs import job as job_table
from opencatalog.testing.queue import ManualClock

from oc_celery_helpers import Broker

AMQP_VARIABLE = "OPENCATALOG_TEST_AMQP_URL"
REDIS_VARIABLE = "OPENCATALOG_TEST_REDIS_URL"
POSTGRES_VARIABLE = "OPENCATALOG_TEST_POSTGRES_URL"
BROKERS_REQUIRED = "OPENCATALOG_REQUIRE_BROKERS"
POSTGRES_REQUIRED = "OPENCATALOG_REQUIRE_POSTGRES"
DEFAULT_AMQP = "amqp://guest:guest@127.0.0.1:5672//"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def pytest_configure(config: pytest.Config) -> None:
    for marker in (
        "postgres: needs a PostgreSQL server (OPENCATALOG_TEST_POSTGRES_URL)",
        "rabbitmq: needs a RabbitMQ server (OPENCATALOG_TEST_AMQP_URL)",
        "redis: needs a Redis server (OPENCATALOG_TEST_REDIS_URL)",
    ):
        config.addinivalue_line("markers", marker)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tests that run on the ``broker`` fixture with that broker's marker (marks
    named at import time of this file would precede the registration above)."""
    here = Path(__file__).parent
    for item in items:
        callspec = getattr(item, "callspec", None)
        kind = callspec.params.get("broker") if callspec is not None else None
        if kind in ("rabbitmq", "redis") and here in item.path.parents:
            item.add_marker(kind)


def _hide_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")))


def _unreachable(what: str, url: str, variable: str, required: str, exc: BaseException) -> None:
    message = (
        f"{what} not reachable at {_hide_password(url)} "
        f"({type(exc).__name__}: {str(exc).strip()}); set {variable}"
    )
    if os.environ.get(required, "") == "1":
        pytest.fail(f"{message} ({required}=1)", pytrace=False)
    pytest.skip(message)


# -- brokers ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def amqp_server() -> str:
    url = os.environ.get(AMQP_VARIABLE, DEFAULT_AMQP)
    try:
        with Connection(url, connect_timeout=3) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception as exc:
        _unreachable("RabbitMQ", url, AMQP_VARIABLE, BROKERS_REQUIRED, exc)
    return url


@pytest.fixture(scope="session")
def redis_server() -> str:
    url = os.environ.get(REDIS_VARIABLE, DEFAULT_REDIS)
    try:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=3)
        client.ping()
        client.close()
    except Exception as exc:
        _unreachable("Redis", url, REDIS_VARIABLE, BROKERS_REQUIRED, exc)
    return url


@pytest.fixture(params=["rabbitmq", "redis"])
def broker(request: pytest.FixtureRequest) -> Iterator[Broker]:
    """A fresh queue on RabbitMQ, then on Redis (each test runs on both)."""
    kind: str = request.param
    url = request.getfixturevalue("amqp_server" if kind == "rabbitmq" else "redis_server")
    place = Broker(kind, url)
    yield place
    place.cleanup()


@pytest.fixture
def memory_broker() -> Broker:
    """A fresh queue on kombu's in-process ``memory://`` transport."""
    return Broker("memory", "memory://localhost/")


# -- storage ---------------------------------------------------------------------------------


def libpq_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    return f"{scheme.split('+', 1)[0]}{sep}{rest}"


@pytest.fixture(scope="session")
def postgres_server() -> str:
    url = os.environ.get(POSTGRES_VARIABLE, DEFAULT_POSTGRES)
    try:
        psycopg.connect(libpq_url(url), connect_timeout=2, autocommit=True).close()
    except Exception as exc:
        _unreachable("PostgreSQL", url, POSTGRES_VARIABLE, POSTGRES_REQUIRED, exc)
    return libpq_url(url)


@pytest.fixture(scope="module")
def postgres_module_storage(postgres_server: str) -> Iterator[SqlAlchemyStorage]:
    """An initialised storage on a fresh database shared by one module, dropped afterwards
    (creating a database per test would cost more than the tests)."""
    name = f"oc_celery_{secrets.token_hex(6)}"
    with psycopg.connect(postgres_server, connect_timeout=10, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(postgres_server)._replace(path="/" + name))
    storage = SqlAlchemyStorage.from_url(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        storage.initialize()
        yield storage
    finally:
        storage.close()
        with psycopg.connect(postgres_server, connect_timeout=10, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_storage(postgres_module_storage: SqlAlchemyStorage) -> SqlAlchemyStorage:
    """The module's PostgreSQL storage with an empty job table."""
    with postgres_module_storage.unit_of_work(write=True) as uow:
        uow.connection.execute(job_table.delete())
        uow.commit()
    return postgres_module_storage


@pytest.fixture
def sqlite_storage(tmp_path: Path) -> Iterator[SqlAlchemyStorage]:
    storage = SqlAlchemyStorage.from_url(f"sqlite:///{tmp_path / 'catalog.db'}")
    storage.initialize()
    yield storage
    storage.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()
