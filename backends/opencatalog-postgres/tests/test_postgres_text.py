"""The resources and contents indices where the conformance kit does not reach: content
chunks as large as the pipeline makes them (``CONTENT_CHUNK_CHARS``) against PostgreSQL's
``tsvector`` limits, highlights of long chunks, values PostgreSQL cannot store, and writers
replacing the same dataset's resources at once."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Iterator, Sequence

import psycopg
import pytest
from opencatalog.adapters.memory_search import MemorySearchIndex
from opencatalog.domain.search import (
    CONTENT_CHUNK_CHARS,
    ContentDocument,
    MatchAll,
    Not,
    Or,
    Phrase,
    Prefix,
    Query,
    ResourceDocument,
    Term,
    TextQuery,
    content_documents,
    tokenize,
)

from opencatalog_postgres import PostgresSearchIndex
from opencatalog_postgres.documents import MAX_POSITION, content_row

pytestmark = pytest.mark.postgres


@pytest.fixture
def url(search_postgres_url: str) -> str:
    return search_postgres_url


@pytest.fixture
def index(url: str) -> Iterator[PostgresSearchIndex]:
    idx = PostgresSearchIndex.from_url(url, pool_size=3)
    yield idx
    idx.close()


def same_contents_as_memory(
    index: PostgresSearchIndex,
    chunks: dict[str, list[ContentDocument]],
    queries: Sequence[Query],
    *,
    highlight: bool = False,
) -> None:
    """Every query finds the same chunks (and highlights) in both indexes."""
    oracle = MemorySearchIndex()
    oracle.index_contents(chunks)
    index.index_contents(chunks)
    for query in queries:
        q = TextQuery(query=query, limit=1000, highlight=highlight)
        want, got = oracle.query_contents(q), index.query_contents(q)
        assert got.total == want.total, query
        assert {h.id: dict(h.highlights) for h in got.hits} == {
            h.id: dict(h.highlights) for h in want.hits
        }, query


def distinct_words(count: int, seed: int) -> list[str]:
    """``count`` different words of 2-5 letters, some of them outside ASCII."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyzäöüßéçñøåжщыэю日本語字"
    words: dict[str, None] = {}
    while len(words) < count:
        words["".join(rng.choice(letters) for _ in range(rng.randint(2, 5)))] = None
    return list(words)


def stored_vector(url: str, chunk_id: str) -> tuple[int, bool]:
    """The number of lexemes of a stored chunk's vector and whether it keeps positions."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT length(text_tsv), text_exact IS NULL FROM search_content WHERE id = %s",
            (chunk_id,),
        ).fetchone()
    assert row is not None
    return int(row[0]), bool(row[1])


# ---------------------------------------------------------------------------------------------
# Chunks at the size the pipeline makes them


def test_a_full_chunk_of_distinct_words_keeps_every_word(
    index: PostgresSearchIndex, url: str, caplog: pytest.LogCaptureFixture
) -> None:
    words = distinct_words(30_000, seed=1)
    text = " ".join(words)
    chunks = content_documents("r1", "p1", text)
    assert len(chunks) >= 2
    assert max(len(c.text) for c in chunks) <= CONTENT_CHUNK_CHARS
    first = chunks[0]
    with caplog.at_level(logging.WARNING, logger="opencatalog_postgres"):
        index.index_contents({"r1": chunks})
    assert "distinct words" not in caplog.text  # nothing left out of the vector
    lexemes, _ = stored_vector(url, first.id)
    assert lexemes == len(set(tokenize(first.text)))
    tokens = tokenize(first.text)
    assert len(tokens) > MAX_POSITION  # past the last position a tsvector stores
    sample = [tokens[0], tokens[len(tokens) // 2], tokens[-1], words[-1]]
    queries: list[Query] = [Term(None, w) for w in sample]
    queries += [
        Phrase(None, " ".join(tokens[-3:])),  # beyond position 16,383
        Phrase(None, " ".join(tokens[100:102])),
        Phrase(None, f"{tokens[-1]} {tokens[0]}"),
        Prefix(None, tokens[-1][:2]),
        Or([Term(None, tokens[-1]), Term(None, "absent")]),
        Not(Term(None, tokens[5])),
    ]
    same_contents_as_memory(index, {"r1": chunks}, queries, highlight=True)
    hit = index.query_contents(TextQuery(query=Phrase(None, " ".join(tokens[-3:])))).hits
    assert [h.id for h in hit] == [first.id]


def test_chunks_past_the_vector_limits_match_exactly(index: PostgresSearchIndex, url: str) -> None:
    one_letter = " ".join("abcdefghij"[i % 10] for i in range(CONTENT_CHUNK_CHARS // 2))
    repeated = " ".join(["echo"] * 2000 + ["final", "echo", "close"])
    long_token = "z" * 300 + " tail " + "z" * 256 + "q"
    one_word = "ж" * CONTENT_CHUNK_CHARS
    chunks = {
        "r1": content_documents("r1", "p1", one_letter),
        "r2": content_documents("r2", "p1", repeated),
        "r3": content_documents("r3", "p2", long_token),
        "r4": content_documents("r4", "p2", one_word),
    }
    queries: list[Query] = [
        Term(None, "a"),
        Phrase(None, "j a b"),
        Phrase(None, "a c"),
        Phrase(None, "echo final echo close"),
        Phrase(None, "echo echo echo"),
        Phrase(None, "final close"),
        Term(None, "z" * 300),
        Term(None, "z" * 257),
        Phrase(None, "z" * 300 + " tail"),
        Prefix(None, "z" * 256),
        Prefix(None, "z" * 256 + "q"),
        Term(None, "ж" * CONTENT_CHUNK_CHARS),
        Prefix(None, "жж"),
        Term(None, "ж" * 300),
    ]
    same_contents_as_memory(index, chunks, queries, highlight=True)
    _, positions = stored_vector(url, "r1:0")
    assert not positions  # checked on the token string instead
    found = index.query_contents(TextQuery(query=Phrase(None, "echo final echo close")))
    assert [h.id for h in found.hits] == ["r2:0"]


def test_the_row_of_a_chunk_holds_the_text_and_a_valid_vector() -> None:
    text = " ".join(distinct_words(25_000, seed=2))[:CONTENT_CHUNK_CHARS]
    (chunk,) = content_documents("r1", "p1", text)
    row = dict(
        zip(
            ("id", "resource_id", "chunk", "package_id", "content_type", "text", "tsv", "exact"),
            content_row(chunk),
            strict=True,
        )
    )
    assert row["id"] == "r1:0"
    assert row["text"] == text
    assert len(row["tsv"].encode()) < 1_000_000
    assert row["exact"] is not None  # more than 16,383 positions: phrases use the token string


def test_content_highlights_of_a_long_chunk_match_the_reference(
    index: PostgresSearchIndex,
) -> None:
    text = ("filler " * 6000) + "the rare needle sits here " + ("tail " * 5000)
    chunks = {"r1": content_documents("r1", "p1", text)}
    queries: list[Query] = [
        Term(None, "needle"),
        Phrase(None, "rare needle"),
        Prefix(None, "need"),
        Or([Term(None, "needle"), Term(None, "filler")]),
    ]
    same_contents_as_memory(index, chunks, queries, highlight=True)
    page = index.query_contents(TextQuery(query=Term(None, "needle"), highlight=True))
    (fragment,) = page.hits[0].highlights["text"]
    assert "<em>needle</em>" in fragment
    assert len(fragment) < 300


# ---------------------------------------------------------------------------------------------
# Resources


def test_resource_values_are_separate_and_urls_are_not_searched(
    index: PostgresSearchIndex,
) -> None:
    docs = {
        "p1": [
            ResourceDocument(
                id="r1",
                package_id="p1",
                name="alpha beta",
                description="gamma delta",
                format="CSV",
                url="https://example.org/alpha-gamma.csv",
            ),
            ResourceDocument(
                id="r2",
                package_id="p1",
                name="nul\x00inside",
                description="lone \udcff surrogate",
                format="",
            ),
        ]
    }
    oracle = MemorySearchIndex()
    oracle.index_resources(docs)
    index.index_resources(docs)
    queries: list[Query] = [
        Phrase(None, "alpha beta"),
        Phrase(None, "beta gamma"),
        Phrase(None, "delta csv"),
        Term(None, "example"),
        Term(None, "https"),
        Term(None, "surrogate"),
        Term(None, "inside"),
        MatchAll(),
    ]
    for query in queries:
        q = TextQuery(query=query, highlight=True)
        want, got = oracle.query_resources(q), index.query_resources(q)
        assert {h.id for h in got.hits} == {h.id for h in want.hits}, query
        assert got.total == want.total, query
        marks = {h.id: dict(h.highlights) for h in want.hits if h.id == "r1"}
        assert {h.id: dict(h.highlights) for h in got.hits if h.id == "r1"} == marks
    # text PostgreSQL cannot store is kept with U+FFFD in its place
    stored = index.get_document("resources", "r2")
    assert stored is not None
    assert (stored["name"], stored["description"]) == ("nul\ufffdinside", "lone \ufffd surrogate")
    page = index.query_resources(TextQuery(query=Term(None, "surrogate"), highlight=True))
    assert page.hits[0].highlights == {"description": ("lone \ufffd <em>surrogate</em>",)}


def test_writers_replacing_one_dataset_at_once_never_mix(url: str) -> None:
    """Each replacement of a dataset's resources is all or nothing, to readers and at the
    end, however many processes replace it at the same time."""
    writers = [PostgresSearchIndex.from_url(url, pool_size=1) for _ in range(4)]
    reader = PostgresSearchIndex.from_url(url, pool_size=1)
    sets = {
        n: [ResourceDocument(id=f"w{n}-{k}", package_id="p", name="shared") for k in range(3)]
        for n in range(len(writers))
    }
    allowed: set[frozenset[str]] = {frozenset(d.id for d in docs) for docs in sets.values()}
    allowed.add(frozenset())
    errors: list[BaseException] = []
    seen: list[frozenset[str]] = []
    done = threading.Event()

    def write(n: int) -> None:
        try:
            for round_ in range(15):
                writers[n].index_resources({"p": sets[n]})
                if round_ % 5 == 4:
                    writers[n].delete_resources(["p"])
        except BaseException as exc:  # collected for the main thread
            errors.append(exc)

    def read() -> None:
        try:
            while not done.is_set():
                page = reader.query_resources(TextQuery(query=Term(None, "shared"), limit=50))
                seen.append(frozenset(h.id for h in page.hits))
        except BaseException as exc:  # collected for the main thread
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(len(writers))]
    watcher = threading.Thread(target=read)
    try:
        watcher.start()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        done.set()
        watcher.join()
        assert errors == []
        assert set(seen) <= allowed
        final = frozenset(i for i, _ in reader.document_ids("resources"))
        assert final in allowed
    finally:
        done.set()
        for idx in (*writers, reader):
            idx.close()
