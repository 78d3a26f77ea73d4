"""The stateful differential machine against the SQLite storage, with memory as the oracle.

CI runs at least 200 random call sequences; every result, every stored object and every
listing must equal what the in-memory oracle gives for the same calls.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from opencatalog.bootstrap import open_catalog
from opencatalog.services.catalog import Catalog
from opencatalog.testing.stateful import CHEAP_PASSWORD_HASHING, make_service_machine

_folders: list[Path] = []
_numbers = itertools.count()


def sqlite_catalog() -> Catalog:
    """A new catalog on a new SQLite file (one per example)."""
    if not _folders:
        _folders.append(Path(tempfile.mkdtemp(prefix="opencatalog-stateful-")))
    path = _folders[0] / f"catalog-{next(_numbers)}.db"
    return open_catalog("sqlite:///" + str(path), password_hash_params=dict(CHEAP_PASSWORD_HASHING))


@pytest.fixture(scope="module", autouse=True)
def _remove_databases() -> Iterator[None]:
    yield
    while _folders:
        shutil.rmtree(_folders.pop(), ignore_errors=True)


SqliteMachine = make_service_machine(sqlite_catalog)
TestSqliteAgainstMemory = SqliteMachine.TestCase
TestSqliteAgainstMemory.settings = settings(
    max_examples=200,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
