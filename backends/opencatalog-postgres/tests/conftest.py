"""Fixtures for the PostgreSQL search index tests: a reachable server and a fresh database.

The server comes from OPENCATALOG_TEST_POSTGRES_URL (default
``postgresql://postgres@127.0.0.1:5432/test``; its database is only used to create and drop
test databases). When it does not answer the tests are skipped with the reason, unless
OPENCATALOG_REQUIRE_POSTGRES=1 (CI), which makes that a failure. These fixtures work whether
pytest runs from this package's folder or from the repository root.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

URL_VARIABLE = "OPENCATALOG_TEST_POSTGRES_URL"
REQUIRED_VARIABLE = "OPENCATALOG_REQUIRE_POSTGRES"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "postgres: needs a PostgreSQL server (OPENCATALOG_TEST_POSTGRES_URL)"
    )


def libpq_url(url: str) -> str:
    """``url`` without a SQLAlchemy driver suffix (``postgresql+psycopg://`` -> libpq)."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme.split('+', 1)[0]}{sep}{rest}"


def with_database(url: str, database: str) -> str:
    """``url`` naming another database on the same server."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


def _hide_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def admin_connect(server_url: str, timeout: int = 2) -> psycopg.Connection[Any]:
    return psycopg.connect(libpq_url(server_url), connect_timeout=timeout, autocommit=True)


@pytest.fixture(scope="session")
def search_postgres_server() -> str:
    """The URL of a reachable PostgreSQL server; skips (or fails, when required) otherwise."""
    url = os.environ.get(URL_VARIABLE, DEFAULT_URL)
    try:
        conn = admin_connect(url)
    except Exception as exc:
        message = (
            f"PostgreSQL not reachable at {_hide_password(url)} "
            f"({type(exc).__name__}: {str(exc).strip()}); set {URL_VARIABLE}"
        )
        if os.environ.get(REQUIRED_VARIABLE, "") == "1":
            pytest.fail(f"{message} ({REQUIRED_VARIABLE}=1)", pytrace=False)
        pytest.skip(message)
    conn.close()
    return libpq_url(url)


def create_database(server_url: str) -> str:
    """Create an empty database ``oc_search_<random hex>``; return its URL."""
    name = f"oc_search_{secrets.token_hex(6)}"
    with admin_connect(server_url, timeout=10) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return with_database(server_url, name)


def drop_database(server_url: str, database_url: str) -> None:
    """Drop a database made by :func:`create_database`, even with sessions still open."""
    name = urlsplit(database_url).path.lstrip("/")
    with admin_connect(server_url, timeout=10) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def search_postgres_url(search_postgres_server: str) -> Iterator[str]:
    """A fresh, empty database for one test (dropped afterwards)."""
    url = create_database(search_postgres_server)
    try:
        yield url
    finally:
        drop_database(search_postgres_server, url)
