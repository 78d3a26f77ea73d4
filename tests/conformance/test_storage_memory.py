"""The storage conformance kit against the in-memory backend (the oracle of other tests)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from opencatalog.adapters.memory import MemoryStorage
from opencatalog.ports.storage import Storage
from opencatalog.testing.storage import StorageTests


class TestMemoryStorage(StorageTests):
    @pytest.fixture
    def storage(self) -> Iterator[Storage]:
        storage = MemoryStorage.from_url("memory://")
        storage.initialize()
        yield storage
        storage.close()
