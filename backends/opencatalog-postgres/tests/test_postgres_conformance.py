"""The shipped search conformance kit against ``PostgresSearchIndex``, a fresh database per
test: the fixed corpus with known answers, the resources and contents indices, the
administration methods, ``rebuilding()`` beside the live tables, and the Hypothesis
comparisons with the memory index (random corpora, queries and write sequences, exact order
where the order is defined)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opencatalog.ports.search import SearchIndex
from opencatalog.testing.search import SearchIndexTests

from opencatalog_postgres import PostgresSearchIndex

pytestmark = pytest.mark.postgres


class TestPostgresSearchIndex(SearchIndexTests):
    hypothesis_examples = 60

    @pytest.fixture
    def index(self, search_postgres_url: str) -> Iterator[SearchIndex]:
        idx = PostgresSearchIndex.from_url(search_postgres_url, pool_size=2)
        yield idx
        idx.close()


class TestPostgresPrefixedWithoutCache(SearchIndexTests):
    """Prefixed tables, no page cache, one connection: the same answers."""

    hypothesis_examples = 15

    @pytest.fixture
    def index(self, search_postgres_url: str) -> Iterator[SearchIndex]:
        url = f"{search_postgres_url}?table_prefix=cat_two_&cache_size=0&pool_size=1"
        idx = PostgresSearchIndex.from_url(url)
        yield idx
        idx.close()
