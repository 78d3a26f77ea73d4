"""``PostgresSearchIndex``: a ``SearchIndex`` kept in PostgreSQL tables.

Every process (and machine) that opens the same URL and table prefix shares one index, with
PostgreSQL's transactions: a write is visible to every reader once its transaction commits,
``bulk()`` is one transaction, and concurrent writers of the same document serialise on its
row. See the package docstring for the URL form and options, ``schema`` for the tables,
``documents`` for the stored form and ``querying`` for the translation of queries.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import weakref
import zlib
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from opencatalog.domain.search import (
    INDEX_NAMES,
    ContentDocument,
    DatasetDocument,
    FacetCount,
    ResourceDocument,
    SearchHit,
    SearchPage,
    SearchQuery,
    TextHit,
    TextPage,
    TextQuery,
    highlight,
)
from opencatalog.errors import BackendError, ConfigurationError, SearchQueryError
from opencatalog.ports.search import IndexStats, SearchIndex
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from opencatalog_postgres.documents import (
    COLUMNS,
    CONTENT_COLUMNS,
    RESOURCE_COLUMNS,
    clean,
    content_row,
    document_row,
    resource_row,
)
from opencatalog_postgres.pool import Connection, ConnectionPool
from opencatalog_postgres.querying import (
    KIND_FACET,
    KIND_HIT,
    KIND_TOTAL,
    Statement,
    compile_search,
    compile_text,
)
from opencatalog_postgres.schema import KINDS, SCHEMA_VERSION, Tables, quote_ident

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
"""Documents written to one table by one process after which it runs ``ANALYZE`` on it."""

SWAP_LOCK_TIMEOUT = "2s"
"""How long one attempt of a rebuild's swap waits for the tables (readers queue behind it
meanwhile) before it lets them go and tries again."""

SWAP_ATTEMPTS = 10
"""Attempts of the swap with ``SWAP_LOCK_TIMEOUT``; the last one after them waits as long as
it must."""

LOCK_BUCKETS = 64
"""Buckets of datasets (resources) and resources (contents) whose replacements are serialised
by advisory locks: few enough for PostgreSQL's lock table however many a batch touches."""

# logical index -> table kind
_KIND_OF = {"packages": "document", "resources": "resource", "contents": "content"}

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


def _kind(index: str) -> str:
    kind = _KIND_OF.get(index)
    if kind is None:
        raise SearchQueryError(
            f'Search Query is invalid: no index "{index[:60]}" (indices: {", ".join(INDEX_NAMES)})'
        )
    return kind


class _Bulk(threading.local):
    """The open ``bulk()`` block of the current thread, if any."""

    conn: Connection | None = None
    depth: int = 0
    dirty: bool = False
    written: Counter[str] | None = None


class PostgresSearchIndex(SearchIndex):
    """A ``SearchIndex`` in PostgreSQL, shared by every process that opens the same tables.

    ``conninfo`` is a libpq connection string or URL. ``table_prefix`` names the tables
    (``<prefix>search_document``, ``<prefix>search_resource``, ``<prefix>search_content``,
    ``<prefix>search_meta``), so several catalogs can share one database; missing ones are
    created on open (an installation of an earlier release gains the resources and contents
    tables), and tables left by a rebuild that crashed are dropped. Up to ``pool_size``
    connections are opened on demand; a call waits at most ``pool_timeout`` seconds for one.
    ``work_mem`` is set on each connection (sorts and facet counts of large result sets stay
    in memory).

    ``cache_size`` faceted pages are cached per process, keyed by the query and the index
    generation (bumped by every write transaction of any process, read with each query), so
    a cached page is never stale; 0 disables the cache. With ``keep_newer`` an ``index()``
    never replaces a document by one with an older ``metadata_modified`` (for several
    processes indexing the same outbox at once); by default the last write wins, as the port
    says.

    ``rebuilding()`` fills a second set of tables beside the live ones and swaps them in with
    renames in one transaction: readers see the old documents or the new ones, never an empty
    or half-built index.

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
        tables = Tables(table_prefix)
        try:
            params = conninfo_to_dict(conninfo)
        except psycopg.Error as exc:
            raise ConfigurationError(f"invalid PostgreSQL connection string: {exc}") from exc
        params.setdefault("application_name", "opencatalog-search")
        self._setup(
            make_conninfo("", **params),
            tables,
            pool_size=pool_size,
            pool_timeout=pool_timeout,
            cache_size=cache_size,
            work_mem=work_mem,
            keep_newer=keep_newer,
        )
        try:
            self._create_schema()
        except BaseException:
            self._pool.close()
            raise

    def _setup(
        self,
        conninfo: str,
        tables: Tables,
        *,
        pool_size: int,
        pool_timeout: float,
        cache_size: int,
        work_mem: str,
        keep_newer: bool,
    ) -> None:
        self._conninfo = conninfo
        self._tables = tables
        self._work_mem = work_mem
        self._pool_timeout = pool_timeout
        self._pool = ConnectionPool(
            conninfo, size=pool_size, timeout=pool_timeout, configure=self._configure
        )
        self._cache_size = cache_size
        self._cache: OrderedDict[tuple[SearchQuery, int], SearchPage] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._keep_newer = keep_newer
        self._bulk = _Bulk()
        self._staged: weakref.WeakSet[Connection] = weakref.WeakSet()
        self._staged_lock = threading.Lock()
        self._unanalyzed: Counter[str] = Counter()
        self._analyze_lock = threading.Lock()
        self._closed = False
        self._sql = self._statements()

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

    # -- connections and tables ----------------------------------------------------------

    def _configure(self, conn: Connection) -> None:
        conn.execute(
            "SELECT set_config('TimeZone', 'UTC', false), set_config('jit', 'off', false), "
            "set_config('plan_cache_mode', 'force_custom_plan', false), "
            "set_config('work_mem', %s, false)",
            (self._work_mem,),
        )

    def _create_schema(self) -> None:
        """Create the missing tables and columns (serialised between processes by an advisory
        lock; a user without DDL rights can open tables that are complete), drop the tables
        of a crashed rebuild, and check the schema version."""
        tables = self._tables
        building = tables.building()
        names = [*tables.document_tables(), tables.meta]
        version_sql = f"SELECT value FROM {tables.meta} WHERE key = 'schema_version'"
        state_sql = (
            "SELECT " + " AND ".join("to_regclass(%s) IS NOT NULL" for _ in names) + " AND "
            "EXISTS (SELECT FROM pg_attribute WHERE attrelid = to_regclass(%s) "
            "AND attname = 'source' AND NOT attisdropped), "
            + " OR ".join("to_regclass(%s) IS NOT NULL" for _ in KINDS)
        )
        with self._pool.connection() as conn:
            try:
                with conn.transaction():
                    state = conn.execute(
                        state_sql, (*names, tables.document, *building.document_tables())
                    ).fetchone()
                    complete, leftovers = (False, False) if state is None else state
                    if not complete:
                        self._create_tables(conn)
                    row = conn.execute(version_sql).fetchone()
            except psycopg.Error as exc:
                raise BackendError(f"cannot create the PostgreSQL search tables: {exc}") from exc
            if leftovers:
                self._drop_leftovers(conn)
        version = None if row is None else row[0]
        if version != SCHEMA_VERSION:
            raise ConfigurationError(
                f"the search tables {tables.document_name} have schema version {version}, "
                f"this opencatalog-postgres writes version {SCHEMA_VERSION}: drop them "
                "(or choose another table_prefix) and run `opencatalog reindex`"
            )

    def _create_tables(self, conn: Connection) -> None:
        tables = self._tables
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (tables.lock_key,))
        missing = tuple(
            kind
            for kind, name in zip(KINDS, tables.document_tables(), strict=True)
            if _scalar(conn, "SELECT to_regclass(%s)", (name,)) is None
        )
        for statement in tables.ddl():
            conn.execute(statement)
        for statement in tables.storage_ddl(missing):
            conn.execute(statement)
        for statement in tables.upgrade_ddl():
            conn.execute(statement)
        conn.execute(
            f"INSERT INTO {tables.meta} (key, value) VALUES ('schema_version', "
            "%s), ('generation', 0) ON CONFLICT (key) DO NOTHING",
            (SCHEMA_VERSION,),
        )
        if missing:
            log.info("created the search tables %s", ", ".join(missing))

    def _drop_leftovers(self, conn: Connection) -> None:
        """Drop the tables of a rebuild whose process died (its session's advisory lock is
        gone with it; a rebuild still running holds it and keeps its tables)."""
        tables = self._tables
        try:
            with conn.transaction():
                if _scalar(
                    conn, "SELECT pg_try_advisory_xact_lock(hashtext(%s))", (tables.rebuild_key,)
                ):
                    conn.execute(tables.building().drop_ddl())
                    log.warning("dropped the tables of an interrupted search index rebuild")
        except psycopg.Error as exc:
            log.warning("cannot drop the tables of an interrupted search index rebuild: %s", exc)

    def _statements(self) -> dict[str, str]:
        t = self._tables
        sql = {
            "upsert": _upsert(t.document, t.staging("document"), COLUMNS, self._keep_newer),
            "truncate_staging": f"TRUNCATE {t.staging('document')}",
            "delete": f"DELETE FROM {t.document} WHERE id = ANY(%s::text[])",
            "bump": f"UPDATE {t.meta} SET value = value + 1 WHERE key = 'generation'",
            "generation": f"SELECT value FROM {t.meta} WHERE key = 'generation'",
            "count": f"SELECT count(*) FROM {t.document}",
            "ids": f"SELECT id, metadata_modified FROM {t.document}",
            "texts": f"SELECT id, title, notes FROM {t.document} WHERE id = ANY(%s::text[])",
            "size": "SELECT pg_total_relation_size(%s::regclass)",
            "clean_gin": "SELECT gin_clean_pending_list(%s::regclass)",
            "lock_buckets": (
                "SELECT count(pg_advisory_xact_lock(%s, b)) FROM unnest(%s::int[]) AS b"
            ),
            # resources: replaced per dataset
            "upsert_resource": _upsert(
                t.resource, t.staging("resource"), RESOURCE_COLUMNS, keep_newer=False
            ),
            "prune_resource": (
                f"DELETE FROM {t.resource} AS r WHERE r.package_id = ANY(%s::text[]) AND NOT "
                f"EXISTS (SELECT FROM {t.staging('resource')} AS s WHERE s.id = r.id)"
            ),
            "truncate_resource_staging": f"TRUNCATE {t.staging('resource')}",
            "delete_resources": f"DELETE FROM {t.resource} WHERE package_id = ANY(%s::text[])",
            "resource_texts": (
                f"SELECT id, name, description FROM {t.resource} WHERE id = ANY(%s::text[])"
            ),
            # contents: replaced per resource
            "upsert_content": _upsert(
                t.content, t.staging("content"), CONTENT_COLUMNS, keep_newer=False
            ),
            "prune_content": (
                f"DELETE FROM {t.content} AS c WHERE c.resource_id = ANY(%s::text[]) AND NOT "
                f"EXISTS (SELECT FROM {t.staging('content')} AS s WHERE s.id = c.id)"
            ),
            "truncate_content_staging": f"TRUNCATE {t.staging('content')}",
            "delete_contents": f"DELETE FROM {t.content} WHERE resource_id = ANY(%s::text[])",
            "delete_contents_of_packages": (
                f"DELETE FROM {t.content} WHERE resource_id IN (SELECT resource_id FROM "
                f"{t.content} WHERE package_id = ANY(%s::text[]))"
            ),
            "content_texts": f"SELECT id, text FROM {t.content} WHERE id = ANY(%s::text[])",
            # administration
            "ids_document": f"SELECT id, id FROM {t.document}",
            "ids_resource": f"SELECT id, package_id FROM {t.resource}",
            "ids_content": f"SELECT id, package_id FROM {t.content}",
        }
        columns = {
            "document": _PACKAGE_FIELDS,
            "resource": ", ".join(RESOURCE_COLUMNS[:-2]),
            "content": ", ".join(CONTENT_COLUMNS[:-2]),
        }
        for kind, table in zip(KINDS, t.document_tables(), strict=True):
            sql[f"copy_{kind}"] = (
                f"COPY {t.staging(kind)} ({', '.join(_COLUMNS_OF[kind])}) FROM STDIN"
            )
            sql[f"count_{kind}"] = f"SELECT count(*) FROM {table}"
            sql[f"clear_{kind}"] = f"DELETE FROM {table}"
            sql[f"analyze_{kind}"] = f"ANALYZE {table}"
            sql[f"get_{kind}"] = f"SELECT {columns[kind]} FROM {table} WHERE id = %s"
            sql[f"browse_{kind}"] = (
                f"SELECT {columns[kind]} FROM {table} ORDER BY id LIMIT %s OFFSET %s"
            )
        return sql

    def _prepare_writes(self, conn: Connection) -> None:
        """Create this session's staging tables (outside any transaction, so a rollback
        cannot take them away)."""
        with self._staged_lock:
            if conn in self._staged:
                return
        for statement in self._tables.staging_ddl():
            conn.execute(statement)
        with self._staged_lock:
            self._staged.add(conn)

    def _check_open(self) -> None:
        if self._closed:
            raise BackendError("the PostgreSQL search index is closed")

    def _write(self, action: Callable[[Connection], None], rows: int, kind: str) -> None:
        """Run ``action`` (which writes ``rows`` rows of the ``kind`` table) in the current
        ``bulk()`` transaction, or in a transaction of its own that also bumps the generation
        (retried on deadlocks and lost connections)."""
        self._check_open()
        bulk = self._bulk
        if bulk.conn is not None:
            try:
                action(bulk.conn)
            except psycopg.Error as exc:
                raise BackendError(f"PostgreSQL search index write failed: {exc}") from exc
            bulk.dirty = True
            if bulk.written is not None:
                bulk.written[kind] += rows
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
                self._after_write(conn, Counter({kind: rows}))
                return

    def _after_write(self, conn: Connection, written: Counter[str]) -> None:
        """Once ``ANALYZE_AFTER`` rows of a table were written by this process since the last
        time, refresh its planner statistics and merge its GIN index's pending list (bulk
        loads would otherwise be planned with the statistics of a much smaller table, and
        every query would scan the pending entries, until autovacuum gets to it). Needs the
        table's owner; otherwise logged and left to autovacuum."""
        due = []
        with self._analyze_lock:
            for kind, rows in written.items():
                self._unanalyzed[kind] += rows
                if self._unanalyzed[kind] >= ANALYZE_AFTER:
                    self._unanalyzed[kind] = 0
                    due.append(kind)
        for kind in due:
            self._maintain(conn, kind)

    def _maintain(self, conn: Connection, kind: str) -> None:
        index = quote_ident(self._tables.index_name(kind, "text_tsv"))
        try:
            conn.execute(self._sql[f"analyze_{kind}"])
            conn.execute(self._sql["clean_gin"], (index,))
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

    def _run_full_text(
        self, conn: Connection, sql: str, params: Sequence[Any], full_text: bool
    ) -> list[tuple[Any, ...]]:
        """Run a search statement; full-text ones without sequential scans (see
        ``querying.Statement``)."""
        if full_text and self._bulk.conn is None:
            with conn.transaction():
                conn.execute("SET LOCAL enable_seqscan = off")
                return conn.execute(sql, params).fetchall()
        return conn.execute(sql, params).fetchall()

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
                with cur.copy(sql["copy_document"]) as copy:
                    for doc in docs:
                        copy.write_row(document_row(doc))
                cur.execute(sql["upsert"])
                cur.execute(sql["truncate_staging"])

        self._write(upsert, len(docs), "document")

    def delete(self, ids: Iterable[str]) -> None:
        keys = sorted({clean(i) for i in ids})
        if not keys:
            return
        self._write(_statement(self._sql["delete"], keys), len(keys), "document")

    def clear(self) -> None:
        statements = [self._sql[f"clear_{kind}"] for kind in KINDS]

        def clear(conn: Connection) -> None:
            for statement in statements:
                conn.execute(statement)

        self._write(clear, 0, "document")

    def index_resources(self, by_package: Mapping[str, Sequence[ResourceDocument]]) -> None:
        packages = sorted({clean(p) for p in by_package})
        if not packages:
            return
        latest = {doc.id: doc for docs in by_package.values() for doc in docs}
        self._replace("resource", packages, list(latest.values()), resource_row)

    def index_contents(self, by_resource: Mapping[str, Sequence[ContentDocument]]) -> None:
        resources = sorted({clean(r) for r in by_resource})
        if not resources:
            return
        latest = {doc.id: doc for docs in by_resource.values() for doc in docs}
        self._replace("content", resources, list(latest.values()), content_row)

    def _replace(
        self,
        kind: str,
        owners: list[str],
        docs: Sequence[Any],
        row: Callable[[Any], tuple[Any, ...]],
    ) -> None:
        """Copy the rows of ``docs`` into the staging table, delete the rows of ``owners``
        (datasets or resources) that are not among them, and upsert them in id order.

        Two writers replacing the same owner at once would each miss the rows the other
        inserts (a ``DELETE`` sees the rows committed when it starts) and leave a mixture, so
        replacements of an owner are serialised by transaction-level advisory locks on
        ``LOCK_BUCKETS`` buckets of owners, taken in bucket order."""
        sql = self._sql
        namespace = _lock_namespace(self._tables, kind)
        buckets = sorted({zlib.crc32(owner.encode()) % LOCK_BUCKETS for owner in owners})

        def replace(conn: Connection) -> None:
            with conn.cursor() as cur:
                if docs:
                    with cur.copy(sql[f"copy_{kind}"]) as copy:
                        for doc in docs:
                            copy.write_row(row(doc))
                cur.execute(sql["lock_buckets"], (namespace, buckets))
                cur.execute(sql[f"prune_{kind}"], (owners,))
                if docs:
                    cur.execute(sql[f"upsert_{kind}"])
                    cur.execute(sql[f"truncate_{kind}_staging"])

        self._write(replace, len(docs) or len(owners), kind)

    def delete_resources(self, package_ids: Iterable[str]) -> None:
        keys = sorted({clean(i) for i in package_ids})
        if keys:
            self._write(_statement(self._sql["delete_resources"], keys), len(keys), "resource")

    def delete_contents(self, resource_ids: Iterable[str]) -> None:
        keys = sorted({clean(i) for i in resource_ids})
        if keys:
            self._write(_statement(self._sql["delete_contents"], keys), len(keys), "content")

    def delete_contents_of_packages(self, package_ids: Iterable[str]) -> None:
        keys = sorted({clean(i) for i in package_ids})
        if keys:
            sql = self._sql["delete_contents_of_packages"]
            self._write(_statement(sql, keys), len(keys), "content")

    @contextmanager
    def bulk(self) -> Iterator[SearchIndex]:
        """One transaction for every write of this thread inside the block, committed (with
        one generation bump) when the outermost block exits normally and rolled back if it
        raises. Queries of this thread inside the block see its uncommitted changes; other
        threads and processes see them after the commit."""
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
                    bulk.conn, bulk.depth, bulk.dirty, bulk.written = conn, 1, False, Counter()
                    try:
                        yield self
                        if bulk.dirty:
                            conn.execute(self._sql["bump"])
                        written = bulk.written
                    finally:
                        bulk.conn, bulk.depth, bulk.dirty, bulk.written = None, 0, False, None
            except psycopg.Error as exc:
                raise BackendError(f"PostgreSQL search index bulk commit failed: {exc}") from exc
            self._after_write(conn, written)

    # -- rebuilding ----------------------------------------------------------------------

    @contextmanager
    def rebuilding(self) -> Iterator[SearchIndex]:
        """A new index in tables beside the live ones (``<table>_new``), filled inside the
        block and swapped in when it exits normally: one transaction drops the live tables
        and renames the new ones (and their indexes) in their place, so every reader sees
        the old documents or the new ones. Readers and writers wait for that transaction
        only (the swap gives up its locks after ``SWAP_LOCK_TIMEOUT`` and retries, so a long
        write elsewhere does not hold readers up). If the block raises, the new tables are
        dropped and the live ones are unchanged.

        Writes to this index during the block land in the tables being replaced: the block
        must index everything from storage. One rebuild at a time per table prefix (another
        one raises ``BackendError``); a session-level advisory lock marks it, so the tables
        of a rebuild whose process died are dropped by the next open or rebuild. The swapped
        in tables belong to the rebuilding user and get the live tables' grants. A rebuild
        uses a connection of its own and, for the new index, a pool of ``pool_size`` more.
        """
        self._check_open()
        if self._tables.suffix:
            raise BackendError("an index being rebuilt cannot be rebuilt itself")
        if self._bulk.conn is not None:
            raise BackendError("rebuilding() cannot start inside bulk() (it would wait for it)")
        building = self._tables.building()
        holder = self._connect()
        try:
            self._start_rebuild(holder, building)
            fresh = object.__new__(type(self))
            fresh._setup(
                self._conninfo,
                building,
                pool_size=self._pool.size,
                pool_timeout=self._pool_timeout,
                cache_size=0,
                work_mem=self._work_mem,
                keep_newer=self._keep_newer,
            )
            try:
                yield fresh
            except BaseException:
                fresh.close()
                self._discard(holder, building)
                raise
            fresh.close()
            try:
                self._swap(holder, building)
            except BaseException:
                self._discard(holder, building)
                raise
        finally:
            holder.close()  # releases the rebuild's advisory lock

    def _connect(self) -> Connection:
        """A connection of its own (outside the pool), for a rebuild's lock and DDL."""
        try:
            conn = psycopg.connect(self._conninfo, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise BackendError(f"cannot connect to PostgreSQL: {exc}") from exc
        try:
            self._configure(conn)
        except psycopg.Error as exc:
            conn.close()
            raise BackendError(f"cannot configure the PostgreSQL connection: {exc}") from exc
        return conn

    def _start_rebuild(self, conn: Connection, building: Tables) -> None:
        live = self._tables
        try:
            if not _scalar(conn, "SELECT pg_try_advisory_lock(hashtext(%s))", (live.rebuild_key,)):
                raise BackendError(
                    f"another rebuild of the search tables {live.document_name} is in progress"
                )
            with conn.transaction():
                conn.execute(building.drop_ddl())  # a crashed rebuild's
                for statement in building.ddl(meta=False):
                    conn.execute(statement)
                for statement in building.storage_ddl():
                    conn.execute(statement)
                for source, target in zip(
                    live.document_tables(), building.document_tables(), strict=True
                ):
                    for grant in _grants(conn, source, target):
                        conn.execute(grant)
        except psycopg.Error as exc:
            raise BackendError(f"cannot create the tables of a rebuild: {exc}") from exc

    def _swap(self, conn: Connection, building: Tables) -> None:
        """Refresh the new tables' statistics, then drop the live tables and rename the new
        ones in their place in one transaction (bumping the generation)."""
        live = self._tables
        try:
            for kind, table in zip(KINDS, building.document_tables(), strict=True):
                conn.execute(f"ANALYZE {table}")
                index = quote_ident(building.index_name(kind, "text_tsv"))
                conn.execute(self._sql["clean_gin"], (index,))
        except psycopg.Error as exc:
            raise BackendError(f"cannot analyze the rebuilt search tables: {exc}") from exc
        statements = [
            f"LOCK TABLE {', '.join(live.document_tables())} IN ACCESS EXCLUSIVE MODE",
            f"DROP TABLE {', '.join(live.document_tables())}",
            *building.renames(),
            self._sql["bump"],
        ]
        for attempt in range(SWAP_ATTEMPTS + 1):
            try:
                with conn.transaction():
                    if attempt < SWAP_ATTEMPTS:
                        conn.execute(f"SET LOCAL lock_timeout = '{SWAP_LOCK_TIMEOUT}'")
                    for statement in statements:
                        conn.execute(statement)
            except (pg_errors.LockNotAvailable, pg_errors.DeadlockDetected) as exc:
                log.info("search index swap: %s; retrying", type(exc).__name__)
                time.sleep(0.05 * (attempt + 1))
                continue
            except psycopg.Error as exc:
                raise BackendError(f"cannot swap in the rebuilt search tables: {exc}") from exc
            break
        with self._cache_lock:
            self._cache.clear()
        with self._analyze_lock:
            self._unanalyzed.clear()

    def _discard(self, conn: Connection, building: Tables) -> None:
        try:
            conn.execute(building.drop_ddl())
        except psycopg.Error as exc:
            log.warning("cannot drop the tables of a failed rebuild (the next open will): %s", exc)

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
        counts = {name: self._sql[f"count_{kind}"] for name, kind in _KIND_OF.items()}
        size_sql, tables = self._sql["size"], self._tables.document_tables()

        def run(conn: Connection) -> IndexStats:
            per_index = {name: int(_scalar(conn, sql)) for name, sql in counts.items()}
            size = sum(int(_scalar(conn, size_sql, (table,))) for table in tables)
            return IndexStats(documents=per_index["packages"], size_bytes=size, per_index=per_index)

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
            rows = self._run_full_text(conn, statement.sql, statement.params, statement.full_text)
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

    def query_resources(self, q: TextQuery) -> TextPage:
        statement = compile_text(q, table=self._tables.resource, resource_id="d.id")
        return self._text_page(q, statement, "resource")

    def query_contents(self, q: TextQuery) -> TextPage:
        statement = compile_text(q, table=self._tables.content, resource_id="d.resource_id")
        return self._text_page(q, statement, "content")

    def _text_page(self, q: TextQuery, statement: Statement, kind: str) -> TextPage:
        if statement.empty:
            self._check_open()
            return TextPage(total=0)
        texts_sql = self._sql[f"{kind}_texts"]

        def run(conn: Connection) -> TextPage:
            rows = self._run_full_text(conn, statement.sql, statement.params, statement.full_text)
            total = 0
            hits: list[tuple[int, str, str, str, float]] = []
            for row_kind, doc_id, resource_id, package_id, n, score in rows:
                if row_kind == KIND_HIT:
                    hits.append((n, doc_id, resource_id, package_id, float(score)))
                else:
                    total = int(n)
            hits.sort()
            marks: dict[str, dict[str, tuple[str, ...]]] = {}
            if q.highlight and hits:
                found = conn.execute(texts_sql, ([hit[1] for hit in hits],)).fetchall()
                for doc_id, *values in found:
                    fields = (
                        {"name": values[0], "description": values[1]}
                        if kind == "resource"
                        else {"text": values[0]}
                    )
                    marks[doc_id] = highlight(q.query, fields)
            return TextPage(
                total=total,
                hits=tuple(
                    TextHit(
                        id=doc_id,
                        resource_id=resource_id,
                        package_id=package_id,
                        score=score,
                        highlights=marks.get(doc_id, {}),
                    )
                    for _, doc_id, resource_id, package_id, score in hits
                ),
            )

        return self._read(run)

    # -- administration ------------------------------------------------------------------

    def document_ids(self, index: str) -> Iterator[tuple[str, str]]:
        sql = self._sql[f"ids_{_kind(index)}"]
        rows: list[tuple[str, str]] = self._read(lambda conn: conn.execute(sql).fetchall())
        return iter(rows)

    def get_document(self, index: str, doc_id: str) -> dict[str, Any] | None:
        kind = _kind(index)
        sql = self._sql[f"get_{kind}"]
        row = self._read(lambda conn: conn.execute(sql, (clean(doc_id),)).fetchone())
        return None if row is None else _stored(kind, row)

    def browse(
        self, index: str, *, offset: int = 0, limit: int = 20
    ) -> tuple[int, list[dict[str, Any]]]:
        kind = _kind(index)
        if offset < 0 or limit < 0:
            raise SearchQueryError("Search Query is invalid: offset and limit must not be negative")
        count_sql, page_sql = self._sql[f"count_{kind}"], self._sql[f"browse_{kind}"]

        def run(conn: Connection) -> tuple[int, list[dict[str, Any]]]:
            total = int(_scalar(conn, count_sql))
            rows = conn.execute(page_sql, (limit, offset)).fetchall() if limit else []
            return total, [_stored(kind, row) for row in rows]

        return self._read(run)


_COLUMNS_OF = {"document": COLUMNS, "resource": RESOURCE_COLUMNS, "content": CONTENT_COLUMNS}

_PACKAGE_FIELDS = (
    "source, id, name, title, notes, tags, groups, organization, owner_org, res_format, "
    "res_url, license_id, state, capacity, dataset_type, metadata_created, metadata_modified, "
    "labels"
)


def _stored(kind: str, row: tuple[Any, ...]) -> dict[str, Any]:
    """The JSON-ready dict ``get_document`` gives for a row of ``browse_<kind>``."""
    if kind == "resource":
        return dict(zip(RESOURCE_COLUMNS[:-2], row, strict=True))
    if kind == "content":
        return dict(zip(CONTENT_COLUMNS[:-2], row, strict=True))
    source, *columns = row
    fields = dict(zip(_PACKAGE_FIELDS.split(", ")[1:], columns, strict=True))
    if isinstance(source, dict) and _same_time(source.get("metadata_modified"), fields):
        return source
    # written by an earlier release (or by one still running): what the columns hold
    return {
        "id": fields["id"],
        "name": fields["name"],
        "title": fields["title"],
        "notes": fields["notes"],
        "tags": fields["tags"],
        "groups": fields["groups"],
        "organization": fields["organization"],
        "owner_org": fields["owner_org"],
        "res_format": fields["res_format"],
        "res_url": fields["res_url"],
        "license_id": fields["license_id"],
        "state": fields["state"],
        "private": fields["capacity"] == "private",
        "type": fields["dataset_type"],
        "metadata_created": fields["metadata_created"].isoformat(),
        "metadata_modified": fields["metadata_modified"].isoformat(),
        "labels": fields["labels"],
    }


def _same_time(value: Any, fields: Mapping[str, Any]) -> bool:
    """Whether the stored source describes the version the columns hold."""
    try:
        return (
            isinstance(value, str)
            and datetime.fromisoformat(value) == (fields["metadata_modified"])
        )
    except ValueError:
        return False


def _upsert(table: str, staging: str, columns: Sequence[str], keep_newer: bool) -> str:
    """Insert the staged rows (in id order, the lock order of every writer), replacing the
    rows with the same id."""
    names = ", ".join(columns)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c != "id")
    guard = f" WHERE {table}.metadata_modified <= EXCLUDED.metadata_modified" if keep_newer else ""
    return (
        f"INSERT INTO {table} ({names}) SELECT {names} FROM {staging} "
        f"ORDER BY id ON CONFLICT (id) DO UPDATE SET {updates}{guard}"
    )


def _lock_namespace(tables: Tables, kind: str) -> int:
    """The first key (a signed 32-bit integer, the same in every process) of the advisory
    locks serialising replacements in the ``kind`` table of ``tables``."""
    digest = zlib.crc32(f"{tables.lock_key}{tables.suffix}:{kind}".encode())
    return digest - (1 << 32) if digest >= 1 << 31 else digest


def _statement(sql: str, keys: list[str]) -> Callable[[Connection], None]:
    def run(conn: Connection) -> None:
        conn.execute(sql, (keys,))

    return run


def _grants(conn: Connection, source: str, target: str) -> list[str]:
    """``GRANT`` statements giving ``target`` the privileges others hold on ``source``."""
    rows = conn.execute(
        "SELECT a.privilege_type, CASE WHEN a.grantee = 0 THEN 'PUBLIC' "
        "ELSE a.grantee::regrole::text END FROM pg_class AS c, aclexplode(c.relacl) AS a "
        "WHERE c.oid = %s::regclass AND a.grantee <> c.relowner",
        (source,),
    ).fetchall()
    return [f"GRANT {privilege} ON {target} TO {grantee}" for privilege, grantee in rows]


def _scalar(conn: Connection, sql: str, params: tuple[Any, ...] | None = None) -> Any:
    row = conn.execute(sql, params).fetchone()
    if row is None:  # pragma: no cover - aggregate and meta queries always return a row
        raise BackendError(f"no row from {sql!r}")
    return row[0]
