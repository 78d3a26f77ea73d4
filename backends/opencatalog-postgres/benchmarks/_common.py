"""Setup shared by the PostgreSQL benchmarks (``bench_postgres_*.py``).

The scripts run as plain scripts, so their folder is on ``sys.path`` and they import this
module as ``_common``. Importing it puts the repository root on ``sys.path`` too, for the
repository-level ``benchmarks`` package (the deterministic generator).
"""

from __future__ import annotations

import gc
import os
import secrets
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import psycopg

REPO = Path(__file__).resolve().parents[3]
"""The repository root, put first on ``sys.path`` on import."""
sys.path.insert(0, str(REPO))

from benchmarks.bench_search import timed  # noqa: E402

DEFAULT_SERVER = os.environ.get(
    "OPENCATALOG_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
"""Admin URL of the server: ``OPENCATALOG_TEST_POSTGRES_URL``, else the local one."""

Q = TypeVar("Q")


def progress(message: str) -> None:
    """Progress lines go to stderr (stdout carries the report)."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def percentiles(samples: list[float]) -> tuple[float, float]:
    """Median and p95 of ``samples`` (milliseconds); ``samples`` must not be empty."""
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95


def latency(
    run: Callable[[Q], Any], queries: Sequence[Q], *, warmup: int = 20
) -> tuple[float, float, float]:
    """Median and p95 latency (ms) of ``run`` over ``queries`` after a warm-up pass over the
    first ``warmup``, and the mean ``total`` of the pages ``run`` returns."""
    for q in queries[:warmup]:
        run(q)
    samples, totals = [], []
    for q in queries:
        start = time.perf_counter()
        page = run(q)
        samples.append((time.perf_counter() - start) * 1000)
        totals.append(page.total)
    median, p95 = percentiles(samples)
    return median, p95, statistics.fmean(totals)


def repeated(run: Callable[[], Any], times: int) -> tuple[float, float, Any]:
    """Median and p95 (ms) of ``times`` calls of ``run``, and the last result (the
    repository's ``benchmarks.bench_search.timed``)."""
    return timed(run, times)


@contextmanager
def frozen_gc() -> Iterator[None]:
    """Collect, then freeze what is alive (the generated corpus) so that the garbage collector
    leaves it out of the timings; unfreeze on exit."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def with_database(url: str, database: str) -> str:
    """``url`` with its path (the database) replaced by ``database``."""
    return urlunsplit(urlsplit(url)._replace(path="/" + database))


def database_name(url: str) -> str:
    """The database of ``url`` (its path without the leading slash)."""
    return urlsplit(url).path.lstrip("/")


@contextmanager
def scratch_database(server: str, *, keep: bool) -> Iterator[str]:
    """Create a database ``oc_bench_<hex>`` on ``server`` (an admin URL) and yield its URL.

    On exit, even by an exception, it is dropped ``WITH (FORCE)`` (open connections are
    closed), unless ``keep``: then its name is reported on stderr and it stays.
    """
    database = f"oc_bench_{secrets.token_hex(4)}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    try:
        yield with_database(server, database)
    finally:
        if keep:
            progress(f"kept database {database}")
        else:
            with psycopg.connect(server, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
