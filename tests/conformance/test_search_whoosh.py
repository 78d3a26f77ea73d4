"""The search conformance kit against the Whoosh index, in memory and on disk."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from opencatalog.adapters.whoosh_search import WhooshSearchIndex
from opencatalog.domain.search import SearchQuery, parse_query
from opencatalog.ports.search import SearchIndex
from opencatalog.testing.search import CORPUS, SearchIndexTests


class TestWhooshSearchIndex(SearchIndexTests):
    hypothesis_examples = 30

    @pytest.fixture
    def index(self) -> Iterator[SearchIndex]:
        idx = WhooshSearchIndex.from_url("whoosh://")
        yield idx
        idx.close()


class TestWhooshOnDisk(SearchIndexTests):
    hypothesis_examples = 5

    @pytest.fixture
    def index(self, tmp_path: Path) -> Iterator[SearchIndex]:
        idx = WhooshSearchIndex.from_url(f"whoosh://{tmp_path}/ix")
        yield idx
        idx.close()


def test_reopen_keeps_documents(tmp_path: Path) -> None:
    url = f"whoosh://{tmp_path}/ix"
    with WhooshSearchIndex.from_url(url) as idx:
        idx.index(CORPUS)
    with WhooshSearchIndex.from_url(url) as idx:
        assert idx.count() == len(CORPUS)
        assert idx.query(SearchQuery(query=parse_query("title:quality"))).total == 3
        assert idx.stats().size_bytes > 0
