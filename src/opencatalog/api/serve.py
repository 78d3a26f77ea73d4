"""Serve a catalog over HTTP with uvicorn (needs the ``server`` extra).

:func:`serve` is what ``opencatalog serve`` runs; call it from your own scripts too. It blocks
until the server is stopped (SIGTERM or Ctrl-C), shuts the application down gracefully
(requests in flight finish, the catalog is closed) and returns.
"""

from __future__ import annotations

import copy
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from opencatalog.services.catalog import Catalog

from .app import create_app

__all__ = ["LOG_LEVELS", "serve"]

#: The ``log_level`` values :func:`serve` accepts (uvicorn's).
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _log_config(log_level: str) -> dict[str, Any]:
    """uvicorn's logging setup, with the catalog's own loggers on the same stderr handler."""
    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    level = "DEBUG" if log_level == "trace" else log_level.upper()
    config["loggers"]["opencatalog"] = {"handlers": ["default"], "level": level, "propagate": False}
    return config


@contextmanager
def _stop_signals_end_quietly() -> Iterator[None]:
    """After a graceful shutdown uvicorn raises the stop signal again for the previous
    handler; make that handler a no-op so a stopped server returns (exit status 0) instead of
    dying by the signal."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stopped(signum: int, frame: FrameType | None) -> None:
        return None

    previous = {sig: signal.signal(sig, stopped) for sig in _STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def serve(
    catalog: Catalog,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "info",
) -> None:
    """Serve ``catalog`` on ``host:port`` until stopped; the catalog is closed on the way out.

    The application is :func:`~opencatalog.api.create_app` with ``close_catalog=True``: the
    server owns the catalog from here on.
    """
    if log_level not in LOG_LEVELS:
        raise ValueError(f"log_level must be one of {', '.join(LOG_LEVELS)}")
    app = create_app(catalog, close_catalog=True)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        log_config=_log_config(log_level),
        lifespan="on",
    )
    try:
        with _stop_signals_end_quietly():
            uvicorn.Server(config).run()
    finally:
        catalog.close()  # idempotent; covers a server that failed before its lifespan ran
