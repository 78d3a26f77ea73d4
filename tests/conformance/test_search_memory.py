"""The search conformance kit against the in-memory reference index."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from opencatalog.adapters.memory_search import MemorySearchIndex
from opencatalog.ports.search import SearchIndex
from opencatalog.testing.search import SearchIndexTests


class TestMemorySearchIndex(SearchIndexTests):
    hypothesis_examples = 40

    @pytest.fixture
    def index(self) -> Iterator[SearchIndex]:
        idx = MemorySearchIndex.from_url("memory://")
        yield idx
        idx.close()
