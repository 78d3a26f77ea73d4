"""Rebuilds and installations where the conformance kit does not reach: the swap under readers
of other connections (polling, and queued behind the swap's lock), a rebuild whose process is
killed, one rebuild at a time, long table prefixes, grants, and an installation written by the
previous release (no resources or contents tables, no stored source) opened by this one."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest
from opencatalog.adapters.memory_search import MemorySearchIndex
from opencatalog.domain.search import (
    DatasetDocument,
    MatchAll,
    ResourceDocument,
    SearchQuery,
    TextQuery,
    parse_query,
)
from opencatalog.errors import BackendError
from opencatalog.ports.search import SearchIndex
from opencatalog.testing.search import CONTENTS, CORPUS, RESOURCES

import opencatalog_postgres.index as index_module
from opencatalog_postgres import PostgresSearchIndex
from opencatalog_postgres.documents import COLUMNS, document_row

pytestmark = pytest.mark.postgres

EVERYONE: dict[str, Any] = {"labels": None, "limit": 1000}
ALL = TextQuery(query=MatchAll(), limit=1000)


@pytest.fixture
def url(search_postgres_url: str) -> str:
    return search_postgres_url


@pytest.fixture
def index(url: str) -> Iterator[PostgresSearchIndex]:
    idx = PostgresSearchIndex.from_url(url, pool_size=2)
    yield idx
    idx.close()


def load(target: SearchIndex, size: str) -> None:
    """The whole fixed corpus (``"old"``) or a small part of it (``"new"``)."""
    if size == "old":
        target.index(CORPUS)
        target.index_resources(RESOURCES)
        target.index_contents(CONTENTS)
    else:
        target.index(CORPUS[:3])
        target.index_resources({"ds-01": RESOURCES["ds-01"]})
        target.index_contents({"r-06-1": CONTENTS["r-06-1"]})


def _active(docs: Sequence[DatasetDocument]) -> int:
    return sum(1 for doc in docs if doc.state == "active")


OLD = (_active(CORPUS), 6, 6)
NEW = (_active(CORPUS[:3]), 2, 1)


def sizes(idx: PostgresSearchIndex) -> tuple[int, int, int]:
    return (
        idx.query(SearchQuery(query=MatchAll(), **EVERYONE)).total,
        idx.query_resources(ALL).total,
        idx.query_contents(ALL).total,
    )


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` until it holds (a state to reach, not a duration to check)."""
    for _ in range(2400):
        if condition():
            return
        time.sleep(0.05)
    pytest.fail(f"never happened: {what}")


def waiting_locks(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_locks WHERE NOT granted").fetchone()
    return 0 if row is None else int(row[0])


def relations(url: str) -> set[str]:
    """The tables and indexes of the public schema."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT c.relname FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i')"
        ).fetchall()
    return {name for (name,) in rows}


# ---------------------------------------------------------------------------------------------
# The swap under readers


def test_readers_see_the_old_or_the_new_index_never_an_empty_one(
    url: str, index: PostgresSearchIndex
) -> None:
    load(index, "old")
    reader = PostgresSearchIndex.from_url(url, pool_size=1, cache_size=0)
    seen: list[tuple[int, int, int]] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        try:
            while not done.is_set():
                seen.append(sizes(reader))  # the same statements again: prepared ones too
        except BaseException as exc:  # collected for the main thread
            errors.append(exc)

    def answered(count: int) -> Callable[[], bool]:
        return lambda: len(seen) >= count

    watcher = threading.Thread(target=read)
    watcher.start()
    try:
        for round_ in range(6):
            with index.rebuilding() as fresh, fresh.bulk() as bulk:
                load(bulk, "new" if round_ % 2 == 0 else "old")
            wait_until(answered(len(seen) + 3), "the reader answered")
    finally:
        done.set()
        watcher.join()
        reader.close()
    assert errors == []
    for packages, resources, contents in seen:  # each logical index is whole
        assert packages in (OLD[0], NEW[0])
        assert resources in (OLD[1], NEW[1])
        assert contents in (OLD[2], NEW[2])
    assert sizes(index) == OLD
    assert not {name for name in relations(url) if "_new" in name}


def test_a_reader_queued_behind_the_swap_reads_the_new_tables(
    url: str, index: PostgresSearchIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader that asks while the swap waits for a lock queues behind it and then reads the
    new tables: no error, no empty answer, even with a prepared statement."""
    monkeypatch.setattr(index_module, "SWAP_ATTEMPTS", 0)  # wait for the lock, no retries
    load(index, "old")
    reader = PostgresSearchIndex.from_url(url, pool_size=1, cache_size=0)
    everything = SearchQuery(query=parse_query("*:*"), **EVERYONE)
    for _ in range(8):  # psycopg prepares a statement from its fifth run
        assert reader.query(everything).total == OLD[0]
    blocker = psycopg.connect(url)  # a long read transaction of someone else
    results: dict[str, Any] = {}

    def rebuild() -> None:
        try:
            with index.rebuilding() as fresh:
                load(fresh, "new")
        except BaseException as exc:  # collected for the main thread
            results["rebuild"] = exc

    def read() -> None:
        try:
            results["total"] = reader.query(everything).total
        except BaseException as exc:  # collected for the main thread
            results["read"] = exc

    rebuilder, waiter = threading.Thread(target=rebuild), threading.Thread(target=read)
    try:
        with blocker.transaction():
            assert blocker.execute("SELECT count(*) FROM search_document").fetchone() == (
                len(CORPUS),
            )
            rebuilder.start()
            wait_until(lambda: waiting_locks(url) >= 1, "the swap waits for the blocker")
            waiter.start()
            wait_until(lambda: waiting_locks(url) >= 2, "the reader queues behind the swap")
            # the blocker's transaction still reads the live tables
            assert blocker.execute("SELECT count(*) FROM search_document").fetchone() == (
                len(CORPUS),
            )
        rebuilder.join()
        waiter.join()
    finally:
        blocker.close()
        reader.close()
    assert "rebuild" not in results
    assert "read" not in results
    assert results["total"] == NEW[0]
    assert sizes(index) == NEW


def test_the_swap_gives_way_to_a_long_write_and_retries(
    url: str, index: PostgresSearchIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(index_module, "SWAP_LOCK_TIMEOUT", "100ms")
    monkeypatch.setattr(index_module, "SWAP_ATTEMPTS", 3)
    load(index, "old")
    writer = PostgresSearchIndex.from_url(url, pool_size=1)
    results: dict[str, Any] = {}
    entered, release = threading.Event(), threading.Event()

    def write() -> None:
        try:
            with writer.bulk():
                writer.index(CORPUS[:1])
                entered.set()
                release.wait()
        except BaseException as exc:  # collected for the main thread
            results["write"] = exc

    thread = threading.Thread(target=write)
    thread.start()
    try:
        entered.wait()

        def rebuild() -> None:
            with index.rebuilding() as fresh:
                load(fresh, "new")

        rebuilder = threading.Thread(target=rebuild)
        rebuilder.start()
        # readers are not held up for good while the swap waits: a query gets through
        reader = PostgresSearchIndex.from_url(url, pool_size=1, cache_size=0)
        try:
            wait_until(lambda: reader.count() == len(CORPUS), "a reader answers during the wait")
        finally:
            reader.close()
        release.set()
        rebuilder.join()
        thread.join()
    finally:
        release.set()
        writer.close()
    assert "write" not in results
    assert sizes(index) == NEW


# ---------------------------------------------------------------------------------------------
# Interrupted and concurrent rebuilds

_CHILD = textwrap.dedent(
    """
    import sys, time
    from opencatalog.testing.search import CORPUS
    from opencatalog_postgres import PostgresSearchIndex

    idx = PostgresSearchIndex.from_url(sys.argv[1])
    with idx.rebuilding() as fresh:
        fresh.index(CORPUS[:5])
        print("filling", flush=True)
        time.sleep(600)
    """
)


def test_a_rebuild_killed_midway_is_cleaned_up_by_the_next_open(
    url: str, index: PostgresSearchIndex
) -> None:
    load(index, "old")
    child = subprocess.Popen([sys.executable, "-c", _CHILD, url], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "filling"
        assert "search_document_new" in relations(url)
        # while it runs: another open keeps its tables, another rebuild is refused
        PostgresSearchIndex.from_url(url).close()
        assert "search_document_new" in relations(url)
        with pytest.raises(BackendError, match="in progress"), index.rebuilding():
            pass
        assert "search_document_new" in relations(url)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        if child.stdout is not None:
            child.stdout.close()

    def released() -> bool:
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
            return row.fetchone() == (0,)

    wait_until(released, "the killed process's session ends")
    assert sizes(index) == OLD  # the live index never noticed
    PostgresSearchIndex.from_url(url).close()
    assert not {name for name in relations(url) if "_new" in name}
    with index.rebuilding() as fresh:
        load(fresh, "new")
    assert sizes(index) == NEW


def test_one_rebuild_at_a_time(url: str, index: PostgresSearchIndex) -> None:
    load(index, "old")
    other = PostgresSearchIndex.from_url(url)
    try:
        with index.rebuilding() as fresh:
            load(fresh, "new")
            with pytest.raises(BackendError, match="in progress"), other.rebuilding():
                pass
            with pytest.raises(BackendError):
                fresh.rebuilding().__enter__()
        assert sizes(other) == NEW
        with other.bulk(), pytest.raises(BackendError, match="bulk"), other.rebuilding():
            pass
        with other.rebuilding() as fresh:  # the lock went with the first rebuild
            load(fresh, "old")
        assert sizes(index) == OLD
    finally:
        other.close()


def test_the_index_of_a_rebuild_is_gone_after_the_block(index: PostgresSearchIndex) -> None:
    with index.rebuilding() as fresh:
        load(fresh, "new")
    with pytest.raises(BackendError):
        fresh.count()


def test_long_prefixes_keep_every_name_through_rebuilds(url: str) -> None:
    prefix = "p" * 29 + "_"
    idx = PostgresSearchIndex.from_url(url, table_prefix=prefix)
    try:
        before = relations(url)
        assert all(len(name) <= 63 for name in before)
        load(idx, "old")
        for size in ("new", "old"):
            with idx.rebuilding() as fresh:
                load(fresh, size)
            assert relations(url) == before
        assert sizes(idx) == OLD
    finally:
        idx.close()


@pytest.fixture
def role(search_postgres_server: str, url: str) -> Iterator[str]:
    """A login role of its own (cluster-wide, dropped afterwards with what it was granted)."""
    name = f"oc_search_role_{secrets.token_hex(4)}"
    with psycopg.connect(search_postgres_server, autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{name}" LOGIN')
    try:
        yield name
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP OWNED BY "{name}"')
        with psycopg.connect(search_postgres_server, autocommit=True) as admin:
            admin.execute(f'DROP ROLE IF EXISTS "{name}"')


def as_role(url: str, name: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{name}@{rest.split('@', 1)[1]}"


def test_grants_survive_a_rebuild_and_grantees_open_without_ddl(
    url: str, index: PostgresSearchIndex, role: str
) -> None:
    load(index, "old")
    tables = ("search_document", "search_resource", "search_content")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'REVOKE CREATE ON SCHEMA public FROM "{role}"')
        conn.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON {", ".join(tables)} TO "{role}"')
        conn.execute(f'GRANT SELECT, UPDATE ON search_meta TO "{role}"')
    with index.rebuilding() as fresh:
        load(fresh, "new")
    with psycopg.connect(url, autocommit=True) as conn:
        for table in tables:
            for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE"):
                row = conn.execute(
                    "SELECT has_table_privilege(%s, %s, %s)", (role, table, privilege)
                ).fetchone()
                assert row == (True,), (table, privilege)
    limited = PostgresSearchIndex.from_url(as_role(url, role))
    try:
        assert sizes(limited) == NEW
        limited.index_resources({"ds-04": RESOURCES["ds-04"]})
        assert limited.query_resources(ALL).total == NEW[1] + 2
    finally:
        limited.close()


# ---------------------------------------------------------------------------------------------
# An installation of the previous release

# The tables release 0.1.0 created: the packages table without ``source``, no resources or
# contents tables.
_PREVIOUS_RELEASE = [
    """CREATE TABLE search_document (
        id text COLLATE "C" PRIMARY KEY,
        name text COLLATE "C" NOT NULL,
        title text NOT NULL,
        title_sort text COLLATE "C" NOT NULL,
        notes text NOT NULL,
        organization text COLLATE "C",
        owner_org text COLLATE "C",
        license_id text COLLATE "C",
        dataset_type text COLLATE "C" NOT NULL,
        capacity text COLLATE "C" NOT NULL,
        state text COLLATE "C" NOT NULL,
        tags text[] COLLATE "C" NOT NULL,
        groups text[] COLLATE "C" NOT NULL,
        res_format text[] COLLATE "C" NOT NULL,
        res_url text[] COLLATE "C" NOT NULL,
        labels text[] COLLATE "C" NOT NULL,
        metadata_created timestamptz NOT NULL,
        metadata_modified timestamptz NOT NULL,
        text_tsv tsvector NOT NULL,
        text_exact text,
        rank_tsv tsvector NOT NULL,
        title_tokens text NOT NULL,
        notes_tokens text NOT NULL,
        res_name_tokens text NOT NULL,
        res_description_tokens text NOT NULL,
        author_tokens text NOT NULL,
        maintainer_tokens text NOT NULL,
        extras_tokens jsonb
    ) WITH (toast_tuple_target = 1024)""",
    "CREATE INDEX search_document_text_tsv ON search_document USING gin (text_tsv)",
    "CREATE INDEX search_document_tags ON search_document USING gin (tags)",
    "CREATE INDEX search_document_groups ON search_document USING gin (groups)",
    "CREATE INDEX search_document_labels ON search_document USING gin (labels)",
    "CREATE INDEX search_document_name ON search_document (name)",
    "CREATE INDEX search_document_modified ON search_document (metadata_modified)",
    "CREATE INDEX search_document_created ON search_document (metadata_created)",
    "CREATE INDEX search_document_organization ON search_document USING hash (organization)",
    "CREATE INDEX search_document_owner_org ON search_document USING hash (owner_org)",
    "CREATE INDEX search_document_license_id ON search_document USING hash (license_id)",
    "CREATE TABLE search_meta (key text PRIMARY KEY, value bigint NOT NULL)",
    "INSERT INTO search_meta VALUES ('schema_version', 1), ('generation', 0)",
]
_OLD_COLUMNS = [c for c in COLUMNS if c != "source"]


def write_as_previous_release(conn: psycopg.Connection[Any], docs: list[DatasetDocument]) -> None:
    """Upsert ``docs`` the way release 0.1.0 did (its columns only)."""
    names = ", ".join(_OLD_COLUMNS)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in _OLD_COLUMNS if c != "id")
    position = COLUMNS.index("source")
    with conn.cursor() as cur:
        cur.execute("CREATE TEMPORARY TABLE old_staging (LIKE search_document)")
        with cur.copy(f"COPY old_staging ({names}) FROM STDIN") as copy:
            for doc in docs:
                row = document_row(doc)
                copy.write_row(row[:position] + row[position + 1 :])
        cur.execute(
            f"INSERT INTO search_document ({names}) SELECT {names} FROM old_staging "
            f"ON CONFLICT (id) DO UPDATE SET {updates}"
        )
        cur.execute("DROP TABLE old_staging")


def test_an_installation_of_the_previous_release_is_upgraded_on_open(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in _PREVIOUS_RELEASE:
            conn.execute(statement)
        write_as_previous_release(conn, list(CORPUS))
    idx = PostgresSearchIndex.from_url(url)
    try:
        assert {"search_resource", "search_content"} <= relations(url)
        oracle = MemorySearchIndex()
        oracle.index(CORPUS)
        for text in ("water", '"air quality"', "tags:transport", "bud*"):
            q = SearchQuery(query=parse_query(text), **EVERYONE)
            assert set(idx.query(q).ids) == set(oracle.query(q).ids), text
        # rows of the previous release: what their columns hold
        old = idx.get_document("packages", "ds-16")
        assert old is not None
        assert (old["id"], old["name"], old["title"]) == (
            "ds-16",
            CORPUS[15].name,
            CORPUS[15].title,
        )
        # the new indices work at once
        idx.index_resources(RESOURCES)
        idx.index_contents(CONTENTS)
        assert dict(idx.stats().per_index) == {"packages": 30, "resources": 6, "contents": 6}
        # rows written now carry every field
        idx.index([CORPUS[15]])
        assert idx.get_document("packages", "ds-16") == oracle.get_document("packages", "ds-16")
        # a process of the previous release still running keeps writing; its version wins
        changed = DatasetDocument(
            **{
                **{f: getattr(CORPUS[15], f) for f in ("id", "name", "metadata_created")},
                "title": "Changed by the previous release",
                "metadata_modified": CORPUS[15].metadata_modified.replace(year=2030),
                "labels": ("public",),
            }
        )
        with psycopg.connect(url, autocommit=True) as conn:
            write_as_previous_release(conn, [changed])
        seen = idx.get_document("packages", "ds-16")
        assert seen is not None
        assert seen["title"] == "Changed by the previous release"
        assert idx.query(SearchQuery(query=parse_query("changed"), **EVERYONE)).ids == ["ds-16"]
        # and an upgraded installation rebuilds like a new one
        with idx.rebuilding() as fresh:
            load(fresh, "new")
        assert sizes(idx) == NEW
    finally:
        idx.close()
    again = PostgresSearchIndex.from_url(url)  # opening it again changes nothing
    try:
        assert sizes(again) == NEW
    finally:
        again.close()


# ---------------------------------------------------------------------------------------------
# The catalog


def test_a_catalog_reindexes_into_it(url: str, tmp_path: Path) -> None:
    import opencatalog as oc

    with oc.open_catalog(
        storage=f"sqlite:///{tmp_path / 'catalog.db'}", search=url, index_delay=0
    ) as cat:
        for n in range(3):
            cat.datasets.create(
                oc.DatasetInput(
                    name=f"gauges-{n}",
                    title=f"River gauges {n}",
                    resources=[
                        oc.ResourceInput(
                            url=f"https://example.org/{n}.csv", name="levels", format="CSV"
                        )
                    ],
                )
            )
        with PostgresSearchIndex.from_url(url) as idx:
            assert idx.query_resources(TextQuery(query=parse_query("levels"))).total == 3
            idx.clear()  # lost, as after a restore of an old backup
            idx.index_resources({"ghost": [ResourceDocument(id="r-ghost", package_id="ghost")]})
        assert cat.search.reindex() == 3
        stats = cat.search.stats()
        assert stats["per_index"] == {"packages": 3, "resources": 3, "contents": 0}
        found = cat.search.datasets("gauges", limit=10).results
        assert sorted(d.name for d in found) == ["gauges-0", "gauges-1", "gauges-2"]
    with PostgresSearchIndex.from_url(url) as idx:
        assert sorted(pkg for _, pkg in idx.document_ids("resources")) == sorted(
            pkg for pkg, _ in idx.ids()
        )
        assert not {name for name in relations(url) if "_new" in name}
