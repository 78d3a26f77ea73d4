"""A small thread-safe pool of psycopg connections.

Connections are opened on demand up to ``size``, in autocommit mode (callers open explicit
transactions with ``conn.transaction()``), and handed to ``configure`` once. A connection
that comes back broken (server restart, network error) or inside a transaction is closed or
rolled back; waiting longer than ``timeout`` for a free connection raises ``BackendError``.
After ``os.fork()`` the child drops the parent's connections without closing them (closing
would end the parent's sessions) and opens its own.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from opencatalog.errors import BackendError
from psycopg import pq

__all__ = ["ConnectionPool"]

log = logging.getLogger(__name__)

Connection = psycopg.Connection[Any]


class ConnectionPool:
    """At most ``size`` connections to ``conninfo``, handed out one thread at a time."""

    def __init__(
        self,
        conninfo: str,
        *,
        size: int = 4,
        timeout: float = 30.0,
        configure: Callable[[Connection], None] | None = None,
        connect_timeout: int = 10,
    ) -> None:
        if size < 1:
            raise ValueError("a connection pool needs at least one connection")
        self._conninfo = conninfo
        self._size = size
        self._timeout = timeout
        self._configure = configure
        self._connect_timeout = connect_timeout
        self._idle: list[Connection] = []
        self._open = 0
        self._cond = threading.Condition()
        self._closed = False
        self._pid = os.getpid()

    @property
    def size(self) -> int:
        return self._size

    def _after_fork(self) -> None:
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._idle = []  # the parent's sessions: abandon, never close
            self._open = 0

    def _acquire(self) -> Connection:
        deadline = time.monotonic() + self._timeout
        with self._cond:
            while True:
                if self._closed:
                    raise BackendError("the PostgreSQL search index is closed")
                self._after_fork()
                if self._idle:
                    return self._idle.pop()
                if self._open < self._size:
                    self._open += 1
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BackendError(
                        f"no free PostgreSQL connection within {self._timeout:g} s "
                        f"(pool of {self._size}; raise pool_size?)"
                    )
                self._cond.wait(left)
        try:
            return self._connect()
        except BaseException:
            with self._cond:
                self._open -= 1
                self._cond.notify()
            raise

    def _connect(self) -> Connection:
        try:
            conn = psycopg.connect(
                self._conninfo, autocommit=True, connect_timeout=self._connect_timeout
            )
        except psycopg.Error as exc:
            raise BackendError(f"cannot connect to PostgreSQL: {exc}") from exc
        try:
            if self._configure is not None:
                self._configure(conn)
        except psycopg.Error as exc:
            conn.close()
            raise BackendError(f"cannot configure the PostgreSQL connection: {exc}") from exc
        return conn

    def _release(self, conn: Connection) -> None:
        reuse = not conn.closed and not conn.broken
        if reuse and conn.info.transaction_status != pq.TransactionStatus.IDLE:
            try:
                conn.rollback()
            except psycopg.Error:
                reuse = False
        with self._cond:
            if self._pid != os.getpid():
                return  # a connection of the parent process, already forgotten
            if reuse and not self._closed:
                self._idle.append(conn)
            else:
                self._open -= 1
                if not conn.closed:
                    conn.close()
            self._cond.notify()

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A connection for the duration of the block (returned to the pool afterwards)."""
        conn = self._acquire()
        try:
            yield conn
        finally:
            self._release(conn)

    def close(self) -> None:
        """Close the idle connections now and the busy ones when they come back."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._open -= len(idle)
            self._cond.notify_all()
        for conn in idle:
            try:
                conn.close()
            except psycopg.Error:  # pragma: no cover - closing a dead socket
                log.debug("closing a PostgreSQL connection failed", exc_info=True)
