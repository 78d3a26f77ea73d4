"""SQL storage on SQLAlchemy Core: SQLite (embedded) and PostgreSQL.

``SqlAlchemyStorage.from_url(url, **options)`` accepts:

* ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``: a file in WAL mode with
  ``synchronous=FULL`` (power-loss durable commits), ``foreign_keys=ON`` and a busy timeout.
  Write units of work start with ``BEGIN IMMEDIATE``, which takes the database's single write
  lock for the whole transaction, so writers are serialised and a read-modify-write cannot
  lose an update. Read units of work start with a deferred ``BEGIN`` and never block writers.
* ``sqlite://`` (or ``sqlite:///:memory:``): an in-memory database on one shared connection.
  Units of work take turns on it (a lock), so it works from any thread, but a thread may
  hold only one unit of work at a time and units of work never run concurrently.
* ``postgresql://...``, ``postgres://...`` or ``postgresql+psycopg://...``: PostgreSQL through
  psycopg 3, read committed, a pool with pre-ping. Write units of work serialise on row locks:
  read with ``get(..., for_update=True)`` before a read-modify-write.

Options (keyword arguments):

``synchronous`` (SQLite): ``"full"`` (default) or ``"normal"`` (faster commits; a power
loss may lose the last transactions, never corrupt the database).
``busy_timeout`` (SQLite): milliseconds a writer waits for the write lock; default 10000.
``cache_size_kib`` (SQLite): page cache per connection; default 65536 (64 MiB).
``pool_size``, ``max_overflow``, ``pool_timeout`` (seconds): the connection pool.
``connect_timeout`` (PostgreSQL, seconds): default 10.
``lock_timeout`` (PostgreSQL, milliseconds): how long a statement waits for a row lock
before failing with BackendError (the counterpart of SQLite's busy timeout; it also ends a
thread waiting on a lock its own other unit of work holds); default 30000, 0 waits forever.
``echo``: log every statement (SQLAlchemy's ``echo``).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, event, pool
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, Engine, make_url

from opencatalog.errors import BackendError, ConfigurationError, OpenCatalogError
from opencatalog.ports.storage import Storage, UnitOfWork

from . import migrations
from .repositories import (
    SqlActivityRepository,
    SqlContext,
    SqlDatasetRepository,
    SqlGroupRepository,
    SqlMembershipRepository,
    SqlOutboxRepository,
    SqlResourceFileRepository,
    SqlTokenRepository,
    SqlUserRepository,
    SqlVocabularyRepository,
    Statements,
    translate_error,
)

__all__ = ["SqlAlchemyStorage", "SqlAlchemyUnitOfWork"]

logger = logging.getLogger(__name__)

#: Execution option telling the SQLite ``begin`` hook to take the write lock.
_WRITE_OPTION = "opencatalog_write"

#: pg_advisory_xact_lock key serialising concurrent schema upgrades ("ocschema").
_PG_MIGRATION_LOCK = 0x6F63736368656D61

_SQLITE_OPTIONS = frozenset(
    {
        "synchronous",
        "busy_timeout",
        "cache_size_kib",
        "pool_size",
        "max_overflow",
        "pool_timeout",
        "echo",
    }
)
_PG_OPTIONS = frozenset(
    {"pool_size", "max_overflow", "pool_timeout", "connect_timeout", "lock_timeout", "echo"}
)
_SYNCHRONOUS = {"full": "FULL", "normal": "NORMAL", "extra": "EXTRA"}


def _int_option(options: dict[str, Any], name: str, default: int) -> int:
    value = options.get(name, default)
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigurationError(
            f"Storage option {name} must be an integer, not {value!r}"
        ) from None
    if number < 0:
        raise ConfigurationError(f"Storage option {name} must not be negative: {number}")
    return number


def _bool_option(options: dict[str, Any], name: str) -> bool:
    value = options.get(name, False)
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value)


class _MemoryLock:
    """Turn-taking on the single connection of an in-memory SQLite database."""

    def __init__(self, timeout: float) -> None:
        self._lock = threading.Lock()
        self._owner: int | None = None
        self._timeout = timeout

    def acquire(self) -> None:
        me = threading.get_ident()
        if self._owner == me:
            raise BackendError(
                "An in-memory SQLite storage (sqlite://) allows one unit of work at a time "
                "per thread; close the open one first or use a database file"
            )
        if not self._lock.acquire(timeout=self._timeout):
            raise BackendError("The in-memory database is busy, try again")
        self._owner = me

    def release(self) -> None:
        self._owner = None
        self._lock.release()


_FILE_WRITERS: dict[str, threading.Lock] = {}
_FILE_WRITERS_GUARD = threading.Lock()


def _file_writer_lock(path: str) -> threading.Lock:
    """The in-process writer lock of one SQLite database file.

    Writers of one process queue on this lock before ``BEGIN IMMEDIATE``, so they take turns
    in arrival order instead of racing SQLite's polling busy handler (which lets late
    writers overtake ones that have waited long, and can starve them past the busy timeout).
    Writers in other processes still meet at SQLite's own lock.
    """
    key = os.path.realpath(path)
    with _FILE_WRITERS_GUARD:
        return _FILE_WRITERS.setdefault(key, threading.Lock())


class SqlAlchemyUnitOfWork(UnitOfWork):
    """One database transaction over the nine SQL repositories.

    The connection is taken from the pool when the unit of work is created and returned by
    :meth:`close` (called on leaving the ``with`` block, after a rollback of anything not
    committed). After :meth:`commit` the unit of work may go on: the next statement starts a
    new transaction of the same kind.
    """

    def __init__(self, storage: SqlAlchemyStorage, *, write: bool) -> None:
        self._storage = storage
        self._closed = False
        self._connection = storage._checkout(write=write)
        try:
            self._connection.begin()
        except sa_exc.SQLAlchemyError as exc:
            storage._checkin(self._connection)
            raise translate_error(exc) from exc
        ctx = SqlContext(self._connection, storage._statements, write=write)
        self._ctx = ctx
        self.datasets = SqlDatasetRepository(ctx)
        self.groups = SqlGroupRepository(ctx)
        self.users = SqlUserRepository(ctx)
        self.tokens = SqlTokenRepository(ctx)
        self.memberships = SqlMembershipRepository(ctx)
        self.vocabularies = SqlVocabularyRepository(ctx)
        self.activities = SqlActivityRepository(ctx)
        self.outbox = SqlOutboxRepository(ctx)
        self.files = SqlResourceFileRepository(ctx)

    @property
    def storage(self) -> SqlAlchemyStorage:
        """The storage this unit of work belongs to."""
        return self._storage

    @property
    def connection(self) -> Connection:
        """The SQLAlchemy connection of this unit of work (for adapter-level extensions)."""
        return self._connection

    def commit(self) -> None:
        if self._closed:
            raise BackendError("This unit of work is closed")
        # Others may change rows between this transaction and the next one.
        self._ctx._seen.clear()
        try:
            self._connection.commit()
        except sa_exc.SQLAlchemyError as exc:
            self._rollback_quietly()
            raise translate_error(exc) from exc

    def rollback(self) -> None:
        if self._closed:
            return
        try:
            self._connection.rollback()
        except sa_exc.SQLAlchemyError as exc:
            raise translate_error(exc) from exc
        self._ctx._seen.clear()

    def _rollback_quietly(self) -> None:
        try:
            self._connection.rollback()
        except sa_exc.SQLAlchemyError:
            logger.warning("Rollback after a failed commit failed", exc_info=True)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._ctx._seen.clear()
        self._storage._checkin(self._connection)


class SqlAlchemyStorage(Storage):
    """The SQL storage backend (SQLite or PostgreSQL), created by :meth:`from_url`."""

    def __init__(
        self,
        engine: Engine,
        *,
        memory_lock: _MemoryLock | None = None,
        writer_lock: threading.Lock | None = None,
        writer_timeout: float = 30.0,
        settings: dict[str, object] | None = None,
    ) -> None:
        self._engine = engine
        self._memory_lock = memory_lock
        self._writer_lock = writer_lock
        self._writer_timeout = writer_timeout
        self._statements = Statements(engine.dialect.name)
        self._settings = dict(settings or {})
        self._closed = False

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def from_url(cls, url: str, **options: Any) -> SqlAlchemyStorage:
        """A storage for a ``sqlite:`` or ``postgresql:`` URL (see the module docstring).

        Raises ConfigurationError for an unsupported URL, an unknown option or a missing
        driver. No connection is made until the storage is first used.
        """
        try:
            parsed = make_url(url)
        except sa_exc.ArgumentError as exc:
            raise ConfigurationError(f"Not a database URL: {url!r}") from exc
        backend = parsed.get_backend_name()
        if backend == "sqlite":
            return cls._sqlite(parsed, options)
        if backend in {"postgresql", "postgres"}:
            return cls._postgresql(parsed, options)
        raise ConfigurationError(
            f"Unsupported database URL {parsed.render_as_string(hide_password=True)!r}: "
            "use sqlite:///path.db, sqlite:// or postgresql://..."
        )

    @staticmethod
    def _check_options(options: dict[str, Any], allowed: frozenset[str], kind: str) -> None:
        unknown = set(options) - allowed
        if unknown:
            raise ConfigurationError(
                f"Unknown {kind} storage options: {', '.join(sorted(unknown))} "
                f"(known: {', '.join(sorted(allowed))})"
            )

    @classmethod
    def _sqlite(cls, url: URL, options: dict[str, Any]) -> SqlAlchemyStorage:
        cls._check_options(options, _SQLITE_OPTIONS, "SQLite")
        if url.drivername not in {"sqlite", "sqlite+pysqlite"}:
            raise ConfigurationError(f"Unsupported SQLite driver {url.drivername!r}: use sqlite://")
        sync_name = str(options.get("synchronous", "full")).lower()
        if sync_name not in _SYNCHRONOUS:
            raise ConfigurationError(
                f"Storage option synchronous must be 'full' or 'normal', not {sync_name!r}"
            )
        synchronous = _SYNCHRONOUS[sync_name]
        busy_timeout = _int_option(options, "busy_timeout", 10000)
        cache_kib = _int_option(options, "cache_size_kib", 65536)
        echo = _bool_option(options, "echo")
        database = url.database or ""
        in_memory = database in {"", ":memory:"} or "mode=memory" in str(url.query)
        engine_args: dict[str, Any] = {"echo": echo}
        connect_args: dict[str, Any] = {
            "check_same_thread": False,
            "timeout": busy_timeout / 1000,
        }
        if in_memory:
            engine_args["poolclass"] = pool.StaticPool
        else:
            engine_args["pool_size"] = _int_option(options, "pool_size", 8)
            engine_args["max_overflow"] = _int_option(options, "max_overflow", 24)
            engine_args["pool_timeout"] = _int_option(options, "pool_timeout", 30)
        engine = create_engine(url, connect_args=connect_args, **engine_args)

        pragmas = [
            f"PRAGMA busy_timeout = {busy_timeout}",
            "PRAGMA foreign_keys = ON",
            f"PRAGMA cache_size = -{cache_kib}",
            f"PRAGMA synchronous = {synchronous}",
        ]
        if not in_memory:
            pragmas.insert(1, "PRAGMA journal_mode = WAL")

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Take transaction control away from the sqlite3 module: the "begin" hook below
            # emits BEGIN itself (sqlite3 still sends COMMIT and ROLLBACK).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            try:
                for pragma in pragmas:
                    cursor.execute(pragma)
            finally:
                cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            write = conn.get_execution_options().get(_WRITE_OPTION, False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        lock = _MemoryLock(timeout=max(busy_timeout / 1000, 1.0)) if in_memory else None
        settings: dict[str, object] = {
            "synchronous": synchronous,
            "busy_timeout_ms": busy_timeout,
            "cache_size_kib": cache_kib,
            "in_memory": in_memory,
        }
        logger.debug("SQLite storage at %s (%s)", database or ":memory:", settings)
        writer_lock = None if in_memory else _file_writer_lock(database)
        return cls(
            engine,
            memory_lock=lock,
            writer_lock=writer_lock,
            writer_timeout=busy_timeout / 1000,
            settings=settings,
        )

    @classmethod
    def _postgresql(cls, url: URL, options: dict[str, Any]) -> SqlAlchemyStorage:
        cls._check_options(options, _PG_OPTIONS, "PostgreSQL")
        if url.drivername in {"postgresql", "postgres"}:
            url = url.set(drivername="postgresql+psycopg")
        elif url.drivername != "postgresql+psycopg":
            raise ConfigurationError(
                f"Unsupported PostgreSQL driver {url.drivername!r}: opencatalog uses psycopg 3 "
                "(postgresql:// or postgresql+psycopg://)"
            )
        try:
            import psycopg  # noqa: F401
        except ImportError as exc:
            raise ConfigurationError(
                "PostgreSQL storage needs psycopg 3: pip install 'opencatalog[postgres]'"
            ) from exc
        connect_timeout = _int_option(options, "connect_timeout", 10)
        lock_timeout = _int_option(options, "lock_timeout", 30000)
        engine = create_engine(
            url,
            echo=_bool_option(options, "echo"),
            isolation_level="READ COMMITTED",
            pool_pre_ping=True,
            pool_size=_int_option(options, "pool_size", 10),
            max_overflow=_int_option(options, "max_overflow", 20),
            pool_timeout=_int_option(options, "pool_timeout", 30),
            connect_args={
                "connect_timeout": connect_timeout,
                "application_name": "opencatalog",
                "options": f"-c timezone=UTC -c lock_timeout={lock_timeout}",
            },
        )
        logger.debug("PostgreSQL storage at %s", url.render_as_string(hide_password=True))
        settings: dict[str, object] = {
            "isolation_level": "READ COMMITTED",
            "lock_timeout_ms": lock_timeout,
        }
        return cls(engine, settings=settings)

    # -- connections ---------------------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for adapter-level extensions and tests)."""
        return self._engine

    @property
    def dialect_name(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return str(self._engine.dialect.name)

    def _checkout(self, *, write: bool) -> Connection:
        if self._closed:
            raise BackendError("This storage is closed")
        if self._memory_lock is not None:
            self._memory_lock.acquire()
        queued = write and self._writer_lock is not None
        if queued and not self._writer_lock.acquire(timeout=self._writer_timeout):  # type: ignore[union-attr]
            raise BackendError("The database is busy, try again")
        try:
            connection = self._engine.connect()
        except sa_exc.SQLAlchemyError as exc:
            if self._memory_lock is not None:
                self._memory_lock.release()
            if queued:
                self._writer_lock.release()  # type: ignore[union-attr]
            raise translate_error(exc) from exc
        if write:
            connection.execution_options(**{_WRITE_OPTION: True})
        connection.info["opencatalog_queued_writer"] = queued
        return connection

    def _checkin(self, connection: Connection) -> None:
        queued = connection.info.pop("opencatalog_queued_writer", False)
        try:
            connection.close()
        except sa_exc.SQLAlchemyError:
            logger.warning("Closing a storage connection failed", exc_info=True)
        finally:
            if self._memory_lock is not None:
                self._memory_lock.release()
            if queued and self._writer_lock is not None:
                self._writer_lock.release()

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Connection]:
        """A connection in a transaction that commits on success (used for schema work)."""
        connection = self._checkout(write=write)
        try:
            with connection.begin():
                yield connection
        except sa_exc.SQLAlchemyError as exc:
            raise translate_error(exc) from exc
        finally:
            self._checkin(connection)

    # -- the port --------------------------------------------------------------------------

    def unit_of_work(self, *, write: bool = False) -> SqlAlchemyUnitOfWork:
        """A new unit of work; ``write=True`` serialises it against other writers (SQLite:
        ``BEGIN IMMEDIATE``; PostgreSQL: read with ``for_update=True``)."""
        return SqlAlchemyUnitOfWork(self, write=write)

    def initialize(self) -> None:
        """Create or upgrade the schema to the shipped head revision, in one transaction.

        Idempotent. Safe when several processes call it at once: on SQLite the upgrade holds
        the write lock (``BEGIN IMMEDIATE``), on PostgreSQL an advisory transaction lock; the
        others wait, then find the schema current. Raises ConfigurationError when the
        database was migrated by a newer opencatalog.
        """
        head = self.head_revision()
        with self._transaction(write=True) as connection:
            if self.dialect_name == "postgresql":
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")
            current = migrations.current_revision(connection)
            if current == head:
                return
            logger.info("Upgrading the catalog schema from %s to %s", current or "nothing", head)
            try:
                migrations.upgrade(connection, "head")
            except OpenCatalogError:
                raise
            except sa_exc.SQLAlchemyError:
                raise
            except Exception as exc:  # Alembic's CommandError and friends
                raise ConfigurationError(
                    f"Cannot upgrade the catalog schema from revision {current!r}: {exc} "
                    "(was the database created by a newer opencatalog?)"
                ) from exc

    def current_revision(self) -> str | None:
        """The schema revision of the database; None before :meth:`initialize`."""
        with self._transaction(write=False) as connection:
            return migrations.current_revision(connection)

    @staticmethod
    def head_revision() -> str | None:
        """The newest schema revision this version of opencatalog ships."""
        return migrations.head_revision()

    def close(self) -> None:
        """Dispose of the engine and its pool. The storage may not be used afterwards."""
        if not self._closed:
            self._closed = True
            self._engine.dispose()

    def describe(self) -> dict[str, object]:
        """Backend, dialect, location (password hidden), schema revisions and settings."""
        url = self._engine.url
        info: dict[str, object] = {
            "backend": "sqlalchemy",
            "dialect": self.dialect_name,
            "driver": self._engine.dialect.driver,
            "url": url.render_as_string(hide_password=True),
            **self._settings,
        }
        head = self.head_revision()
        info["schema_head"] = head
        try:
            current = self.current_revision()
        except OpenCatalogError as exc:
            info["schema_revision"] = None
            info["error"] = exc.message
        else:
            info["schema_revision"] = current
            info["schema_current"] = current == head
        return info

    def __repr__(self) -> str:
        url = self._engine.url.render_as_string(hide_password=True)
        return f"{type(self).__name__}({url!r})"
