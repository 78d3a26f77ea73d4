"""``PostgresSearchIndex``: a ``SearchIndex`` kept in PostgreSQL tables.

Every process (and machine) that opens the same URL and table prefix shares one index, with
PostgreSQL's transactions: a write is visible to every reader once its transaction commits,
``bulk()`` is one transaction, and concurrent writers of the same document serialise on its
row. See the package docstring for the URL form and options, ``documents`` for the stored
form and ``querying`` for the translation of queries.
"""

from __future__ import annotations

import logging
import re
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from opencatalog.domain.search import (
    DatasetDocument,
    FacetCount,
    SearchHit,
    SearchPage,
    SearchQuery,
    highlight,
)
from opencatalog.errors import BackendError, ConfigurationError
from opencatalog.ports.search import IndexStats, SearchIndex
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from opencatalog_postgres.documents import COLUMNS, clean, document_row
from opencatalog_postgres.pool import Connection, ConnectionPool
from opencatalog_postgres.querying import KIND_FACET, KIND_HIT, KIND_TOTAL, compile_search
from opencatalog_postgres.schema import SCHEMA_VERSION, Tables

__all__ = ["PostgresSearchIndex"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_SCHEMES = ("postgresql", "postgres")
_WORK_MEM_RE = re.compile(r"[1-9][0-9]{0,9}\s*(?:kB|MB|GB)?\Z")
_RETRIED = (pg_errors.DeadlockDetected, pg_errors.SerializationFailure)
_ATTEMPTS = 3
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})

ANALYZE_AFTER = 10_000
"""Documents written by one process after which it runs ``ANALYZE`` on the table."""

# URL query parameters that are options of the index (everything else goes to libpq)
_URL_OPTIONS: Mapping[str, Callable[[str], Any]] = {
    "table_prefix": str,
    "pool_size": int,
    "pool_timeout": float,
    "cache_size": int,
    "work_mem": str,
    "keep_newer": lambda v: _boolean("keep_newer", v),
}


def _boolean(name: str, value: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ConfigurationError(f"{name} must be true or false, not {value!r}")


def split_url(url: str) -> tuple[str, dict[str, Any]]:
    """Split a search URL into a libpq connection URL and the index options it carries.

    Accepts ``postgresql://``, ``postgres://`` and SQLAlchemy-style ``postgresql+driver://``;
    the query parameters named in the package docstring are options, the rest stay in the
    connection URL for libpq (``sslmode``, ``connect_timeout``, ``options``...).
    """
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0].lower()
    if scheme not in _SCHEMES:
        raise ConfigurationError(f"not a PostgreSQL search index URL: {url!r}")
    options: dict[str, Any] = {}
    rest: list[tuple[str, str]] = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        convert = _URL_OPTIONS.get(key)
        if convert is None:
            rest.append((key, value))
            continue
        try:
            options[key] = convert(value)
        except ValueError as exc:
            raise ConfigurationError(f"invalid {key}={value!r} in the search URL") from exc
    conninfo = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(rest), ""))
    return conninfo, options


class _Bulk(threading.local):
    """The open ``bulk()`` block of the current thread, if any."""

    conn: Connection | None = None
    depth: int = 0
    dirty: bool = False
    written: int = 0


class PostgresSearchIndex(SearchIndex):
    """A ``SearchIndex`` in PostgreSQL, shared by every process that opens the same tables.

    ``conninfo`` is a libpq connection string or URL. ``table_prefix`` names the tables
    (``<prefix>search_document``, ``<prefix>search_meta``), so several catalogs can share one
    database; they are created when missing. Up to ``pool_size`` connections are opened on
    demand; a call waits at most ``pool_timeout`` seconds for one. ``work_mem`` is set on
    each connection (sorts and facet counts of large result sets stay in memory).

    ``cache_size`` faceted pages are cached per process, keyed by the query and the index
    generation (bumped by every write transaction of any process, read with each query), so
    a cached page is never stale; 0 disables the cache. With ``keep_newer`` an ``index()``
    never replaces a document by one with an older ``metadata_modified`` (for several
    processes indexing the same outbox at once); by default the last write wins, as the port
    says.

    Sessions run with ``TimeZone`` UTC (``ids()`` gives UTC datetimes), without JIT
    compilation (it costs more than these queries take) and with a custom plan for every
    statement (a generic plan cannot see how frequent a word is). Errors of the server or the
    driver raise ``BackendError``; bad options ``ConfigurationError``.
    """

    def __init__(
        self,
        conninfo: str,
        *,
        table_prefix: str = "",
        pool_size: int = 4,
        pool_timeout: float = 30.0,
        cache_size: int = 64,
        work_mem: str = "64MB",
        keep_newer: bool = False,
    ) -> None:
        if not _WORK_MEM_RE.match(work_mem):
            raise ConfigurationError(f"invalid work_mem {work_mem!r} (e.g. 64MB)")
        if pool_size < 1:
            raise ConfigurationError("pool_size must be at least 1")
        self._tables = Tables(table_prefix)
        try:
            params = conninfo_to_dict(conninfo)
        except psycopg.Error as exc:
            raise ConfigurationError(f"invalid PostgreSQL connection string: {exc}") from exc
        params.setdefault("application_name", "opencatalog-search")
        self._work_mem = work_mem
        self._pool = ConnectionPool(
            make_conninfo("", **params),
            size=pool_size,
            timeout=pool_timeout,
            configure=self._configure,
        )
        self._cache_size = cache_size
        self._cache: OrderedDict[tuple[SearchQuery, int], SearchPage] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._keep_newer = keep_newer
        self._bulk = _Bulk()
        self._staged: weakref.WeakSet[Connection] = weakref.WeakSet()
        self._staged_lock = threading.Lock()
        self._unanalyzed = 0
        self._analyze_lock = threading.Lock()
        self._closed = False
        self._sql = self._statements()
        try:
            self._create_schema()
        except BaseException:
            self._pool.close()
            raise

    @classmethod
    def from_url(cls, url: str, **options: Any) -> PostgresSearchIndex:
        """``postgresql://user:password@host:port/dbname?table_prefix=cat1_&pool_size=8``
        (also ``postgres://`` and ``postgresql+psycopg://``). Index options come from the
        URL's query and ``options`` (which win); other query parameters go to libpq."""
        conninfo, from_query = split_url(url)
        merged = {**from_query, **options}
        unknown = set(merged) - set(_URL_OPTIONS)
        if unknown:
            raise ConfigurationError(f"unknown PostgreSQL search options: {sorted(unknown)}")
        return cls(conninfo, **merged)

    # -- connections ---------------------------------------------------------------------

    def _configure(self, conn: Connection) -> None:
        conn.execute(
            "SELECT set_config('TimeZone', 'UTC', false), set_config('jit', 'off', false), "
            "set_config('plan_cache_mode', 'force_custom_plan', false), "
            "set_config('work_mem', %s, false)",
            (self._work_mem,),
        )

    def _create_schema(self) -> None:
        """Create the tables when missing (serialised between processes by an advisory lock;
        a user without DDL rights can open tables that exist) and check their version."""
        tables = self._tables
        version_sql = f"SELECT value FROM {tables.meta} WHERE key = 'schema_version'"
        with self._pool.connection() as conn:
            try:
                with conn.transaction():
                    present = conn.execute(
                        "SELECT to_regclass(%s) IS NOT NULL AND to_regclass(%s) IS NOT NULL",
                        (tables.document, tables.meta),
                    ).fetchone()
                    if not (present and present[0]):
                        conn.execute(
                            "SELECT pg_advisory_xact_lock(hashtext(%s))", (tables.lock_key,)
                        )
                        existed = _scalar(conn, "SELECT to_regclass(%s)", (tables.document,))
                        for statement in tables.ddl():
                            conn.execute(statement)
                        if existed is None:
                            for statement in tables.storage_ddl():
                                conn.execute(statement)
                        conn.execute(
                            f"INSERT INTO {tables.meta} (key, value) VALUES ('schema_version', "
                            "%s), ('generation', 0) ON CONFLICT (key) DO NOTHING",
                            (SCHEMA_VERSION,),
                        )
                    row = conn.execute(version_sql).fetchone()
            except psycopg.Error as exc:
                raise BackendError(f"cannot create the PostgreSQL search tables: {exc}") from exc
        version = None if row is None else row[0]
        if version != SCHEMA_VERSION:
            raise ConfigurationError(
                f"the search tables {tables.document_name} have schema version {version}, "
                f"this opencatalog-postgres writes version {SCHEMA_VERSION}: drop them "
                "(or choose another table_prefix) and run `opencatalog reindex`"
            )

    def _statements(self) -> dict[str, str]:
        t = self._tables
        columns = ", ".join(COLUMNS)
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS if c != "id")
        guard = (
            f" WHERE {t.document}.metadata_modified <= EXCLUDED.metadata_modified"
            if self._keep_newer
            else ""
        )
        return {
            "copy": f"COPY {t.staging} ({columns}) FROM STDIN",
            "upsert": (
                f"INSERT INTO {t.document} ({columns}) SELECT {columns} FROM {t.staging} "
                f"ORDER BY id ON CONFLICT (id) DO UPDATE SET {updates}{guard}"
            ),
            "truncate_staging": f"TRUNCATE {t.staging}",
            "delete": f"DELETE FROM {t.document} WHERE id = ANY(%s::text[])",
            "clear": f"DELETE FROM {t.document}",
            "bump": f"UPDATE {t.meta} SET value = value + 1 WHERE key = 'generation'",
            "generation": f"SELECT value FROM {t.meta} WHERE key = 'generation'",
            "count": f"SELECT count(*) FROM {t.document}",
            "ids": f"SELECT id, metadata_modified FROM {t.document}",
            "texts": f"SELECT id, title, notes FROM {t.document} WHERE id = ANY(%s::text[])",
            "size": "SELECT pg_total_relation_size(%s::regclass)",
            "analyze": f"ANALYZE {t.document}",
            "clean_gin": "SELECT gin_clean_pending_list(%s::regclass)",
        }

    def _prepare_writes(self, conn: Connection) -> None:
        """Create this session's staging table (outside any transaction, so a rollback
        cannot take it away)."""
        with self._staged_lock:
            if conn in self._staged:
                return
        conn.execute(self._tables.staging_ddl())
        with self._staged_lock:
            self._staged.add(conn)

    def _check_open(self) -> None:
        if self._closed:
            raise BackendError("the PostgreSQL search index is closed")

    def _write(self, action: Callable[[Connection], None], rows: int) -> None:
        """Run ``action`` (which writes ``rows`` documents) in the current ``bulk()``
        transaction, or in a transaction of its own that also bumps the generation (retried
        on deadlocks and lost connections)."""
        self._check_open()
        bulk = self._bulk
        if bulk.conn is not None:
            try:
                action(bulk.conn)
            except psycopg.Error as exc:
                raise BackendError(f"PostgreSQL search index write failed: {exc}") from exc
            bulk.dirty = True
            bulk.written += rows
            return
        for attempt in range(1, _ATTEMPTS + 1):
            with self._pool.connection() as conn:
                try:
                    self._prepare_writes(conn)
                    with conn.transaction():
                        action(conn)
                        conn.execute(self._sql["bump"])
                except _RETRIED as exc:
                    if attempt == _ATTEMPTS:
                        raise BackendError(f"PostgreSQL search index write failed: {exc}") from exc
                    log.info("search index write: %s; retrying", type(exc).__name__)
                    continue
                except psycopg.Error as exc:
                    if not conn.broken or attempt == _ATTEMPTS:
                        raise BackendError(f"PostgreSQL search index write failed: {exc}") from exc
                    log.warning("search index write: %s; retrying on a new connection", exc)
                    continue
                self._after_write(conn, rows)
                return

    def _after_write(self, conn: Connection, rows: int) -> None:
        """Once ``ANALYZE_AFTER`` documents were written by this process since the last
        time, refresh the planner's statistics and merge the GIN index's pending list (bulk
        loads would otherwise be planned with the statistics of a much smaller table, and
        every query would scan the pending entries, until autovacuum gets to it). Needs the
        table's owner; otherwise logged and left to autovacuum."""
        with self._analyze_lock:
            self._unanalyzed += rows
            if self._unanalyzed < ANALYZE_AFTER:
                return
            self._unanalyzed = 0
        try:
            conn.execute(self._sql["analyze"])
            conn.execute(self._sql["clean_gin"], (self._tables.text_index,))
        except psycopg.Error as exc:
            log.warning("maintenance of the search table after a large write failed: %s", exc)

    def _read(self, action: Callable[[Connection], T]) -> T:
        """Run ``action`` on this thread's ``bulk()`` connection or a pooled one (retried
        once on a lost connection)."""
        self._check_open()
        if self._bulk.conn is not None:
            try:
                return action(self._bulk.conn)
            except psycopg.Error as exc:
                raise BackendError(f"PostgreSQL search index read failed: {exc}") from exc
        for attempt in (1, 2):
            with self._pool.connection() as conn:
                try:
                    return action(conn)
                except psycopg.Error as exc:
                    if not conn.broken or attempt == 2:
                        raise BackendError(f"PostgreSQL search index read failed: {exc}") from exc
                    log.warning("search index read: %s; retrying on a new connection", exc)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- writing -------------------------------------------------------------------------

    def index(self, documents: Iterable[DatasetDocument]) -> None:
        latest = {doc.id: doc for doc in documents}  # the last one of an id wins
        if not latest:
            return
        docs = list(latest.values())
        sql = self._sql

        def upsert(conn: Connection) -> None:
            with conn.cursor() as cur:
                # rows are made while COPY streams, so the server works as Python does;
                # the upsert takes them in id order (the lock order of every writer)
                with cur.copy(sql["copy"]) as copy:
                    for doc in docs:
                        copy.write_row(document_row(doc))
                cur.execute(sql["upsert"])
                cur.execute(sql["truncate_staging"])

        self._write(upsert, len(docs))

    def delete(self, ids: Iterable[str]) -> None:
        keys = sorted({clean(i) for i in ids})
        if not keys:
            return
        sql = self._sql["delete"]

        def delete(conn: Connection) -> None:
            conn.execute(sql, (keys,))

        self._write(delete, len(keys))

    def clear(self) -> None:
        sql = self._sql["clear"]

        def clear(conn: Connection) -> None:
            conn.execute(sql)

        self._write(clear, 0)

    @contextmanager
    def bulk(self) -> Iterator[SearchIndex]:
        """One transaction for every ``index``/``delete``/``clear`` of this thread inside the
        block, committed (with one generation bump) when the outermost block exits normally
        and rolled back if it raises. Queries of this thread inside the block see its
        uncommitted changes; other threads and processes see them after the commit."""
        self._check_open()
        bulk = self._bulk
        if bulk.conn is not None:
            bulk.depth += 1
            try:
                yield self
            finally:
                bulk.depth -= 1
            return
        with self._pool.connection() as conn:
            try:
                self._prepare_writes(conn)
                with conn.transaction():
                    bulk.conn, bulk.depth, bulk.dirty, bulk.written = conn, 1, False, 0
                    try:
                        yield self
                        if bulk.dirty:
                            conn.execute(self._sql["bump"])
                        written = bulk.written
                    finally:
                        bulk.conn, bulk.depth, bulk.dirty, bulk.written = None, 0, False, 0
            except psycopg.Error as exc:
                raise BackendError(f"PostgreSQL search index bulk commit failed: {exc}") from exc
            self._after_write(conn, written)

    def close(self) -> None:
        """Close the pool's connections (a ``bulk()`` block still open on another thread
        commits or rolls back first). Calling it twice is harmless."""
        if self._closed:
            return
        self._closed = True
        self._pool.close()
        with self._cache_lock:
            self._cache.clear()

    # -- reading -------------------------------------------------------------------------

    def count(self) -> int:
        sql = self._sql["count"]
        return int(self._read(lambda conn: _scalar(conn, sql)))

    def ids(self) -> Iterator[tuple[str, datetime]]:
        sql = self._sql["ids"]
        rows: list[tuple[str, datetime]] = self._read(lambda conn: conn.execute(sql).fetchall())
        return iter(rows)

    def stats(self) -> IndexStats:
        count_sql, size_sql = self._sql["count"], self._sql["size"]
        table = self._tables.document

        def run(conn: Connection) -> IndexStats:
            documents = int(_scalar(conn, count_sql))
            size = int(_scalar(conn, size_sql, (table,)))
            return IndexStats(documents=documents, size_bytes=size)

        return self._read(run)

    def query(self, q: SearchQuery) -> SearchPage:
        statement = compile_search(q, table=self._tables.document)
        requested = {f.field: () for f in q.facets}
        if statement.empty:
            return SearchPage(total=0, facets=requested)
        use_cache = self._cache_size > 0 and bool(q.facets) and self._bulk.conn is None
        generation_sql = self._sql["generation"]

        def run(conn: Connection) -> SearchPage:
            key = None
            if use_cache:
                key = (q, int(_scalar(conn, generation_sql)))
                with self._cache_lock:
                    page = self._cache.get(key)
                    if page is not None:
                        self._cache.move_to_end(key)
                        return page
            if statement.full_text and self._bulk.conn is None:
                with conn.transaction():
                    conn.execute("SET LOCAL enable_seqscan = off")
                    rows = conn.execute(statement.sql, statement.params).fetchall()
            else:
                rows = conn.execute(statement.sql, statement.params).fetchall()
            page = self._page(conn, q, rows, requested)
            if key is not None:
                with self._cache_lock:
                    self._cache[key] = page
                    while len(self._cache) > self._cache_size:
                        self._cache.popitem(last=False)
            return page

        return self._read(run)

    def _page(
        self,
        conn: Connection,
        q: SearchQuery,
        rows: list[tuple[Any, ...]],
        requested: dict[str, tuple[()]],
    ) -> SearchPage:
        total = 0
        hits: list[tuple[int, str, float]] = []
        facets: dict[str, list[FacetCount]] = {name: [] for name in requested}
        for kind, facet, value, n, score in rows:
            if kind == KIND_HIT:
                hits.append((n, value, float(score)))
            elif kind == KIND_TOTAL:
                total = int(n)
            elif kind == KIND_FACET:
                facets[facet].append(FacetCount(value, int(n)))
        hits.sort()
        marks: dict[str, dict[str, tuple[str, ...]]] = {}
        if q.highlight and hits:
            texts = conn.execute(self._sql["texts"], ([doc_id for _, doc_id, _ in hits],))
            for doc_id, title, notes in texts.fetchall():
                marks[doc_id] = highlight(q.query, {"title": title, "notes": notes})
        return SearchPage(
            total=total,
            hits=tuple(
                SearchHit(id=doc_id, score=score, highlights=marks.get(doc_id, {}))
                for _, doc_id, score in hits
            ),
            facets={name: tuple(counts) for name, counts in facets.items()},
        )


def _scalar(conn: Connection, sql: str, params: tuple[Any, ...] | None = None) -> Any:
    row = conn.execute(sql, params).fetchone()
    if row is None:  # pragma: no cover - aggregate and meta queries always return a row
        raise BackendError(f"no row from {sql!r}")
    return row[0]
