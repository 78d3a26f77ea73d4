"""What the conformance kit does not reach: the domain's tokenisation against PostgreSQL's own
idea of words, phrases across values, documents and tokens a ``tsvector`` cannot hold, values
PostgreSQL cannot store, hostile user text, sharing between instances and prefixes, bulk
transactions, threads, lost connections, URL options and the catalog end to end."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opencatalog import registry
from opencatalog.adapters.memory_search import MemorySearchIndex
from opencatalog.domain.search import (
    And,
    DatasetDocument,
    FacetRequest,
    MatchAll,
    Not,
    Or,
    Phrase,
    Prefix,
    Query,
    SearchQuery,
    SortKey,
    Term,
    parse_query,
    tokenize,
)
from opencatalog.errors import BackendError, ConfigurationError
from opencatalog.testing.search import CORPUS

import opencatalog_postgres.index as index_module
from opencatalog_postgres import PostgresSearchIndex
from opencatalog_postgres.index import split_url
from opencatalog_postgres.querying import compile_search

T0 = datetime(2024, 1, 1, tzinfo=UTC)
EVERYONE: dict[str, Any] = {"labels": None, "limit": 1000}


def doc(i: int, **fields: Any) -> DatasetDocument:
    """A small document ``d<i>``; ``fields`` override the defaults."""
    values: dict[str, Any] = {
        "id": f"d{i:03d}",
        "name": f"doc-{i}",
        "metadata_created": T0 + timedelta(hours=i),
        "metadata_modified": T0 + timedelta(hours=i),
        "labels": ("public",),
    }
    values.update(fields)
    return DatasetDocument(**values)


@pytest.fixture
def url(search_postgres_url: str) -> str:
    return search_postgres_url


@pytest.fixture
def index(url: str) -> Iterator[PostgresSearchIndex]:
    idx = PostgresSearchIndex.from_url(url, pool_size=3)
    yield idx
    idx.close()


def same_as_memory(
    index: PostgresSearchIndex, docs: Sequence[DatasetDocument], queries: Sequence[Query]
) -> None:
    """Every query finds the same documents (and facets) in both indexes."""
    oracle = MemorySearchIndex()
    oracle.index(docs)
    index.clear()
    index.index(docs)
    for query in queries:
        q = SearchQuery(query=query, facets=[FacetRequest("tags", limit=-1)], **EVERYONE)
        want, got = oracle.query(q), index.query(q)
        assert set(got.ids) == set(want.ids), query
        assert got.total == want.total, query
        assert dict(got.facets) == dict(want.facets), query


def found(index: PostgresSearchIndex, query: Query | str, **options: Any) -> set[str]:
    parsed = parse_query(query) if isinstance(query, str) else query
    return set(index.query(SearchQuery(query=parsed, **{**EVERYONE, **options})).ids)


pytestmark = pytest.mark.postgres

# ---------------------------------------------------------------------------------------------
# Matching


TRICKY = (
    "Jane.Doe@Example.ORG",
    "https://data.example.org/a-b_c?x=1&y=2",
    "water-quality",
    "snake_case_name",
    "Straße",
    "café",
    "İstanbul",
    "x2y",
    "2020-01-31",
    "O'Brien's",
    "日本語テキスト",
    "ǅemal",
    "½",
    "C++/C#",
    "e.g.",
    "ÉCOLE",
    "naïve",
    "--",
    "a|b",
    "tab\there",
)


def test_words_are_the_domains_not_postgresqls(index: PostgresSearchIndex) -> None:
    docs = [
        doc(1, title="Contact Jane.Doe@Example.ORG", notes="see https://data.example.org/a-b_c"),
        doc(2, title="water-quality 2020-01-31", notes="snake_case_name x2y"),
        doc(3, title="İstanbul Straße café", author="O'Brien's"),
    ]
    index.index(docs)
    assert found(index, "jane") == {"d001"}
    assert found(index, '"doe example org"') == {"d001"}
    assert found(index, "https") == {"d001"}
    assert found(index, '"org a b c"') == {"d001"}
    assert found(index, "quality") == {"d002"}
    assert found(index, '"2020 01 31"') == {"d002"}
    assert found(index, "snake") == {"d002"}
    assert found(index, "case") == {"d002"}
    assert found(index, "x2y") == {"d002"}
    assert found(index, "x2") == set()
    assert found(index, "straße") == {"d003"}
    assert found(index, "CAFÉ") == {"d003"}
    assert found(index, "cafe") == set()  # no accent folding
    assert found(index, "author:brien") == {"d003"}
    assert found(index, "author:s") == {"d003"}
    assert found(index, Term(None, "İstanbul")) == {"d003"}  # lowercased as Python does
    assert found(index, "title:caf*") == {"d003"}


@st.composite
def tricky_docs(draw: st.DrawFn) -> list[DatasetDocument]:
    def text(max_size: int) -> str:
        pieces = draw(st.lists(st.sampled_from(TRICKY), max_size=max_size))
        seps = [draw(st.sampled_from((" ", ", ", "-", "_", "/", ""))) for _ in pieces]
        return "".join(p + s for p, s in zip(pieces, seps, strict=True))

    docs = []
    for i in range(draw(st.integers(1, 6))):
        docs.append(
            doc(
                i,
                title=text(4),
                notes=text(8),
                author=text(2) or None,
                res_name=[text(3) for _ in range(draw(st.integers(0, 2)))],
                tags=draw(st.lists(st.sampled_from(TRICKY), max_size=3, unique=True)),
                extras={"spatial": text(3)},
            )
        )
    return docs


@st.composite
def tricky_queries(draw: st.DrawFn) -> Query:
    field = draw(st.sampled_from((None, "title", "notes", "author", "res_name", "extras_spatial")))
    piece = draw(st.sampled_from(TRICKY))
    words = tokenize(piece) or ["none"]
    kind = draw(st.sampled_from(("term", "phrase", "prefix", "keyword")))
    if kind == "term":
        return Term(field, draw(st.sampled_from(words)))
    if kind == "phrase":
        other = draw(st.sampled_from(TRICKY))
        return Phrase(field, f"{piece} {other}" if draw(st.booleans()) else piece)
    if kind == "prefix":
        word = draw(st.sampled_from(words))
        return Prefix(field, word[: draw(st.integers(1, len(word)))])
    keyword: Query = Term("tags", piece) if draw(st.booleans()) else Prefix("tags", piece[:2])
    return keyword


def test_tricky_text_matches_the_reference(index: PostgresSearchIndex) -> None:
    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(docs=tricky_docs(), queries=st.lists(tricky_queries(), min_size=1, max_size=5))
    def check(docs: list[DatasetDocument], queries: list[Query]) -> None:
        same_as_memory(index, docs, [*queries, Or(queries), Not(And(queries))])

    check()


def test_phrases_never_span_two_values(index: PostgresSearchIndex) -> None:
    index.index(
        [
            doc(
                1,
                title="gamma alpha",
                notes="beta delta",
                tags=("alpha", "beta"),
                res_name=("one two", "three four"),
                extras={"a": "left end", "b": "right side"},
            )
        ]
    )
    assert found(index, '"gamma alpha"') == {"d001"}
    assert found(index, '"alpha beta"') == set()
    assert found(index, 'res_name:"one two"') == {"d001"}
    assert found(index, 'res_name:"two three"') == set()
    assert found(index, '"two three"') == set()
    assert found(index, '"end right"') == set()
    assert found(index, 'extras_a:"left end"') == {"d001"}


def test_documents_larger_than_a_tsvector_match_exactly(index: PostgresSearchIndex) -> None:
    filler = " ".join(f"w{i}" for i in range(20_000))
    repeated = " ".join(["echo"] * 300) + " echo final"
    docs = [
        doc(1, notes=f"{filler} closing words here"),
        doc(2, notes=repeated, title="short title"),
        doc(3, notes="closing here words", title="echo final"),
    ]
    queries: list[Query] = [
        Phrase(None, "closing words here"),
        Phrase(None, "w19999 closing"),
        Phrase(None, "w1 w2 w3"),
        Phrase(None, "w2 w1"),
        Phrase(None, "here closing"),
        Phrase("notes", "closing words"),
        Phrase(None, "echo final"),
        Phrase("notes", "echo final"),
        Phrase(None, "echo echo echo"),
        Phrase(None, "title echo"),
        Term(None, "w15000"),
        Prefix(None, "w1999"),
        Prefix("notes", "w1999"),
    ]
    same_as_memory(index, docs, queries)
    assert found(index, '"echo final"') == {"d002", "d003"}
    assert found(index, '"w19999 closing"') == {"d001"}
    ranked = index.query(SearchQuery(query=Term(None, "echo"), **EVERYONE))
    assert set(ranked.ids) == {"d002", "d003"}


def test_tokens_longer_than_a_lexeme_match_exactly(index: PostgresSearchIndex) -> None:
    base = "x" * 256
    docs = [
        doc(1, title=f"{base}aaa tail", notes="first"),
        doc(2, title=f"{base}bbb", notes=f"{base}aaa"),
        doc(3, title=base, notes="x" * 255),
        doc(4, title="y" * 3000),
    ]
    queries: list[Query] = [
        Term(None, f"{base}aaa"),
        Term(None, f"{base}aa"),
        Term(None, base),
        Term("title", f"{base}aaa"),
        Term("notes", f"{base}aaa"),
        Phrase(None, f"{base}aaa tail"),
        Phrase(None, f"{base}bbb tail"),
        Prefix(None, "xx"),
        Prefix(None, base),
        Prefix(None, f"{base}a"),
        Prefix(None, f"{base}b"),
        Prefix("title", f"{base}b"),
        Prefix("notes", "x" * 255),
        Term(None, "y" * 3000),
        Prefix(None, "y" * 2000),
    ]
    same_as_memory(index, docs, queries)
    assert found(index, Term(None, f"{base}aaa")) == {"d001", "d002"}
    assert found(index, Prefix(None, f"{base}b")) == {"d002"}


def test_values_postgresql_cannot_store(index: PostgresSearchIndex) -> None:
    odd = doc(
        1,
        title="nul\x00inside",
        notes="lone \udcff surrogate",
        tags=("a\x00b", "plain"),
        organization="org\x00",
        extras={"k": "v\x00w"},
    )
    index.index([odd])
    assert found(index, "plain") == {"d001"}
    assert found(index, Term("tags", "a\x00b")) == {"d001"}
    assert found(index, "surrogate") == {"d001"}
    assert found(index, "nul") == {"d001"}
    assert found(index, "inside") == {"d001"}


def test_a_huge_document_is_indexed_with_a_warning(
    index: PostgresSearchIndex, caplog: pytest.LogCaptureFixture
) -> None:
    words = " ".join(f"word{i:07d}" for i in range(120_000))  # ~1.3 MB of distinct words
    with caplog.at_level(logging.WARNING, logger="opencatalog_postgres"):
        index.index([doc(1, notes=words, title="giant")])
    assert "distinct words" in caplog.text
    assert found(index, "giant") == {"d001"}
    assert found(index, "word0000001") == {"d001"}
    assert found(index, 'notes:"word0000001 word0000002"') == {"d001"}


def test_user_text_stays_data(index: PostgresSearchIndex) -> None:
    hostile = (
        "'); DROP TABLE search_document; --",
        "a%b",
        "a_b",
        "back\\slash",
        "quote'd",
        '"double"',
        "a & !b:* | c <-> d",
    )
    docs = [doc(i, name=f"n{i}", tags=(value,), title=value) for i, value in enumerate(hostile)]
    docs.append(doc(90, tags=("axb", "abb", "a"), title="axb"))
    queries: list[Query] = [Term("tags", v) for v in hostile]
    queries += [Prefix("tags", "a%"), Prefix("tags", "a_"), Prefix("tags", "back\\")]
    queries += [Prefix("tags", "'"), Term(None, "drop"), Phrase(None, "b c d")]
    queries += [Term("extras_x", v) for v in hostile]
    same_as_memory(index, docs, queries)
    assert found(index, Prefix("tags", "a%")) == {"d001"}
    assert found(index, Prefix("tags", "a_")) == {"d002"}
    assert index.count() == len(docs)


def test_unknown_fields_in_an_ast_are_refused(index: PostgresSearchIndex) -> None:
    from opencatalog.errors import SearchQueryError

    with pytest.raises(SearchQueryError):
        index.query(SearchQuery(query=Term("labels", "public")))


def test_text_queries_are_computed_once_and_listings_walk_an_index() -> None:
    text = compile_search(
        SearchQuery(query=parse_query("water"), sort=[SortKey("name")]), table='"t"'
    )
    assert "MATERIALIZED" in text.sql
    listing = compile_search(SearchQuery(query=MatchAll(), sort=[SortKey("name")]), table='"t"')
    assert "MATERIALIZED" not in listing.sql
    nothing = compile_search(SearchQuery(query=Term("tags", "")), table='"t"')
    assert nothing.empty


# ---------------------------------------------------------------------------------------------
# Sharing, transactions, threads


def test_prefixes_keep_catalogs_apart_and_instances_share_one(url: str) -> None:
    one = PostgresSearchIndex.from_url(f"{url}?table_prefix=one_")
    other_process = PostgresSearchIndex.from_url(url, table_prefix="one_")
    two = PostgresSearchIndex.from_url(f"{url}?table_prefix=two_")
    try:
        one.index(CORPUS[:5])
        assert other_process.count() == 5
        assert two.count() == 0
        landing = SearchQuery(facets=[FacetRequest("tags")], labels=None)
        before = other_process.query(landing)
        assert other_process.query(landing) == before  # from the cache
        one.index([doc(1, tags=("fresh",))])
        after = other_process.query(landing)
        assert after.total == before.total + 1
        assert ("fresh", 1) in [(f.value, f.count) for f in after.facets["tags"]]
        two.index([doc(2)])
        assert one.count() == 6
        assert two.count() == 1
    finally:
        for idx in (one, other_process, two):
            idx.close()


def test_bulk_is_one_transaction(url: str, index: PostgresSearchIndex) -> None:
    observer = PostgresSearchIndex.from_url(url, cache_size=0)
    try:
        with index.bulk() as bulk:
            bulk.index(CORPUS[:10])
            with index.bulk():
                index.index(CORPUS[10:20])
            assert index.count() == 20  # this thread sees its own changes
            assert observer.count() == 0  # others see them at the commit
            bulk.delete(["ds-01"])
        assert observer.count() == 19
        with pytest.raises(RuntimeError), index.bulk():
            index.index(CORPUS[20:])
            index.clear()
            raise RuntimeError("rolled back")
        assert observer.count() == 19
    finally:
        observer.close()


def test_threads_share_a_small_pool(url: str) -> None:
    idx = PostgresSearchIndex.from_url(url, pool_size=2)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for round_ in range(5):
                idx.index([doc(n * 10 + round_, tags=(f"t{n}",))])
                page = idx.query(
                    SearchQuery(query=Term("tags", f"t{n}"), facets=[FacetRequest("tags")])
                )
                assert page.total == round_ + 1
                with idx.bulk():
                    idx.index([doc(500 + n * 10 + round_)])
        except BaseException as exc:  # collected for the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert idx.count() == 60
    finally:
        idx.close()


def test_keep_newer_never_puts_back_an_older_version(url: str) -> None:
    idx = PostgresSearchIndex.from_url(f"{url}?keep_newer=true")
    try:
        new = doc(1, title="new", metadata_modified=T0 + timedelta(days=2))
        old = doc(1, title="old", metadata_modified=T0 + timedelta(days=1))
        idx.index([new])
        idx.index([old])
        assert found(idx, "new") == {"d001"}
        assert found(idx, "old") == set()
        same_time = doc(1, title="again", metadata_modified=new.metadata_modified)
        idx.index([same_time])
        assert found(idx, "again") == {"d001"}
    finally:
        idx.close()


def test_last_write_wins_by_default(index: PostgresSearchIndex) -> None:
    index.index([doc(1, title="new", metadata_modified=T0 + timedelta(days=2))])
    index.index([doc(1, title="old", metadata_modified=T0 + timedelta(days=1))])
    assert found(index, "old") == {"d001"}
    index.index([doc(2, title="first"), doc(2, title="second")])
    assert found(index, "second") == {"d002"}
    assert found(index, "first") == set()


def test_lost_connections_are_replaced(url: str, search_postgres_server: str) -> None:
    idx = PostgresSearchIndex.from_url(url, pool_size=2)
    try:
        idx.index(CORPUS)
        database = url.rsplit("/", 1)[1]
        with psycopg.connect(search_postgres_server, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (database,),
            )
        assert idx.count() == len(CORPUS)
        idx.index([doc(1)])
        assert idx.count() == len(CORPUS) + 1
    finally:
        idx.close()


def test_statistics_are_refreshed_after_large_writes(
    index: PostgresSearchIndex,
    monkeypatch: pytest.MonkeyPatch,
    url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(index_module, "ANALYZE_AFTER", 20)
    index.index(CORPUS[:10])
    with caplog.at_level(logging.WARNING), index.bulk():
        index.index(CORPUS[10:])
    assert "failed" not in caplog.text
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'search_document'"
        ).fetchone()
    assert row is not None
    assert row[0] is not None


def test_a_closed_index_refuses_calls(index: PostgresSearchIndex) -> None:
    index.close()
    with pytest.raises(BackendError):
        index.count()
    with pytest.raises(BackendError):
        index.index([doc(1)])
    index.close()


def test_another_schema_version_is_refused(url: str, index: PostgresSearchIndex) -> None:
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE search_meta SET value = 999 WHERE key = 'schema_version'")
    with pytest.raises(ConfigurationError, match="schema version 999"):
        PostgresSearchIndex.from_url(url)


# ---------------------------------------------------------------------------------------------
# URLs and the catalog


def test_url_options_and_libpq_parameters() -> None:
    conninfo, options = split_url(
        "postgresql+psycopg://u:p@h:5433/db?table_prefix=c1_&pool_size=8&sslmode=disable"
        "&keep_newer=yes&cache_size=0&application_name=x"
    )
    assert conninfo == "postgresql://u:p@h:5433/db?sslmode=disable&application_name=x"
    assert options == {"table_prefix": "c1_", "pool_size": 8, "keep_newer": True, "cache_size": 0}
    with pytest.raises(ConfigurationError):
        split_url("mysql://h/db")
    with pytest.raises(ConfigurationError):
        split_url("postgresql://h/db?pool_size=many")
    with pytest.raises(ConfigurationError):
        split_url("postgresql://h/db?keep_newer=maybe")


def test_bad_options_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="unknown"):
        PostgresSearchIndex.from_url("postgresql://h/db", colour="red")
    with pytest.raises(ConfigurationError, match="table_prefix"):
        PostgresSearchIndex.from_url("postgresql://h/db?table_prefix=Bad-Prefix")
    with pytest.raises(ConfigurationError, match="work_mem"):
        PostgresSearchIndex.from_url("postgresql://h/db", work_mem="lots")


def test_an_unreachable_server_is_a_backend_error() -> None:
    with pytest.raises(BackendError, match="cannot connect"):
        PostgresSearchIndex.from_url("postgresql://nobody@127.0.0.1:1/db?connect_timeout=2")


def test_the_entry_point_selects_it(url: str) -> None:
    idx = registry.create("search", url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        assert isinstance(idx, PostgresSearchIndex)
        assert idx.stats().size_bytes > 0
    finally:
        idx.close()


def test_a_catalog_searches_through_it(url: str, tmp_path: Path) -> None:
    import opencatalog as oc

    with oc.open_catalog(
        storage=f"sqlite:///{tmp_path / 'catalog.db'}", search=url, index_delay=0
    ) as cat:
        cat.organizations.create(oc.GroupInput(name="city", title="City"))
        cat.datasets.create(
            oc.DatasetInput(
                name="air-quality-2025",
                title="Air quality 2025",
                owner_org="city",
                tags=["air", "environment"],
                resources=[oc.ResourceInput(url="https://example.org/air.csv", format="CSV")],
            )
        )
        result = cat.search.datasets("air", facets=["tags", "res_format"])
        assert [d.name for d in result.results] == ["air-quality-2025"]
        assert {item.name for item in result.facets["tags"]} == {"air", "environment"}
        assert cat.describe()["search"]["backend"] == "PostgresSearchIndex"
    with PostgresSearchIndex.from_url(url) as idx:
        assert idx.count() == 1
