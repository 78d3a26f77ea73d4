"""Fixtures shared by every test directory. Each part lives in its own marked section."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import settings

if TYPE_CHECKING:
    import psycopg

# Speed is measured by the benchmarks, never asserted by tests: no per-example deadline (the
# suite runs on as many workers as the machine has cores, so examples share the CPU).
settings.register_profile("opencatalog", deadline=None)
settings.load_profile("opencatalog")

# =============================================================================================
# PostgreSQL (storage adapter tests)
# =============================================================================================
#
# Tests that need a server take ``postgres_url`` (a fresh, empty database per test, dropped
# afterwards) and carry ``@pytest.mark.postgres``. The server comes from
# OPENCATALOG_TEST_POSTGRES_URL; when it does not answer the tests are skipped, unless
# OPENCATALOG_REQUIRE_POSTGRES=1 (CI), which turns that into a failure.

POSTGRES_URL_VARIABLE = "OPENCATALOG_TEST_POSTGRES_URL"
POSTGRES_REQUIRED_VARIABLE = "OPENCATALOG_REQUIRE_POSTGRES"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _libpq_url(url: str) -> str:
    """``url`` as libpq understands it (no SQLAlchemy driver suffix)."""
    scheme, sep, rest = url.partition("://")
    if scheme.startswith(("postgresql+", "postgres+")):
        scheme = "postgresql"
    return f"{scheme}{sep}{rest}"


def _with_database(url: str, database: str) -> str:
    """``url`` pointing at another database on the same server."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(database=database).render_as_string(hide_password=False)


def _admin_connect(server_url: str, timeout: int = 2) -> psycopg.Connection[Any]:
    import psycopg

    return psycopg.connect(_libpq_url(server_url), connect_timeout=timeout, autocommit=True)


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """The URL of a reachable PostgreSQL server (its database is used for administration).

    Skips the test when the server does not answer within 2 s, or fails it when
    OPENCATALOG_REQUIRE_POSTGRES=1.
    """
    url = os.environ.get(POSTGRES_URL_VARIABLE, DEFAULT_POSTGRES_URL)
    required = os.environ.get(POSTGRES_REQUIRED_VARIABLE, "") == "1"
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        reason = f"psycopg is not installed: {exc}"
    else:
        try:
            conn = _admin_connect(url)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}".strip()
        else:
            conn.close()
            return url
    message = f"PostgreSQL not reachable at {_hide_password(url)}: {reason}"
    if required:
        pytest.fail(f"{message} ({POSTGRES_REQUIRED_VARIABLE}=1)", pytrace=False)
    pytest.skip(message)


def _hide_password(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable URL>"


def create_postgres_database(server_url: str) -> str:
    """Create an empty database ``oc_test_<random hex>``; return its URL."""
    name = f"oc_test_{secrets.token_hex(6)}"
    conn = _admin_connect(server_url, timeout=10)
    try:
        conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()
    return _with_database(server_url, name)


def drop_postgres_database(server_url: str, database_url: str) -> None:
    """Drop a database made by :func:`create_postgres_database`, even with open sessions."""
    from sqlalchemy.engine import make_url

    name = make_url(database_url).database
    conn = _admin_connect(server_url, timeout=10)
    try:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        conn.close()


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty database on the test server for one test, dropped afterwards."""
    url = create_postgres_database(postgres_server_url)
    try:
        yield url
    finally:
        drop_postgres_database(postgres_server_url, url)


@pytest.fixture(scope="module")
def postgres_module_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh database shared by the tests of one module (for suites that empty it
    themselves between tests), dropped afterwards."""
    url = create_postgres_database(postgres_server_url)
    try:
        yield url
    finally:
        drop_postgres_database(postgres_server_url, url)


# =============================================================================================
# Background jobs (in-process worker)
# =============================================================================================
#
# A catalog runs its own jobs on a background thread by default (setting
# ``run_jobs_in_process``): the pipeline would fetch every resource URL a test invents, from a
# thread, reading the catalog's clock at moments no test controls. Tests therefore open
# catalogs without that thread unless they ask for it (``run_jobs_in_process=True``, which
# beats the environment), and run jobs explicitly with ``catalog.jobs.run_pending()``.
# Subprocesses started by tests (the CLI) inherit the variable.

os.environ.setdefault("OPENCATALOG_RUN_JOBS_IN_PROCESS", "false")
