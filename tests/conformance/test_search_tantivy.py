"""The search conformance kit against the tantivy index, in memory and on disk."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from opencatalog.adapters.tantivy_search import TantivySearchIndex
from opencatalog.domain.search import SearchQuery, parse_query
from opencatalog.ports.search import SearchIndex
from opencatalog.testing.search import CORPUS, SearchIndexTests


class TestTantivySearchIndex(SearchIndexTests):
    hypothesis_examples = 40

    @pytest.fixture
    def index(self) -> Iterator[SearchIndex]:
        idx = TantivySearchIndex.from_url("tantivy://", writer_heap_mb=32, writer_threads=1)
        yield idx
        idx.close()


class TestTantivyOnDisk(SearchIndexTests):
    hypothesis_examples = 5

    @pytest.fixture
    def index(self, tmp_path: Path) -> Iterator[SearchIndex]:
        idx = TantivySearchIndex.from_url(f"tantivy://{tmp_path}/ix", writer_heap_mb=32)
        yield idx
        idx.close()


def test_reopen_keeps_documents(tmp_path: Path) -> None:
    url = f"tantivy://{tmp_path}/ix"
    with TantivySearchIndex.from_url(url) as idx:
        idx.index(CORPUS)
    with TantivySearchIndex.from_url(url) as idx:
        assert idx.count() == len(CORPUS)
        assert idx.query(SearchQuery(query=parse_query("title:quality"))).total == 3
        assert idx.stats().size_bytes > 0
