"""``opencatalog-celery``: run a Celery worker for a catalog's jobs, or sweep once.

Both commands take the catalog's storage URL (``--storage`` or ``OPENCATALOG_STORAGE``) and
the queue URL (``--queue`` or ``OPENCATALOG_QUEUE``, a ``celery+...`` URL)::

    opencatalog-celery worker --handlers mypackage.jobs:HANDLERS --concurrency 4 --beat
    opencatalog-celery sweep --grace 0

``--setting NAME=VALUE`` (repeatable; VALUE as JSON, or else a string) sets any Celery setting.
"""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import click
from opencatalog import registry
from opencatalog.errors import ConfigurationError, OpenCatalogError

from opencatalog_celery.queue import CeleryTaskQueue

__all__ = ["main"]

_storage_option = click.option(
    "--storage",
    envvar="OPENCATALOG_STORAGE",
    required=True,
    help="The catalog's storage URL (sqlite:///... or postgresql+psycopg://...).",
)
_queue_option = click.option(
    "--queue",
    "queue_url",
    envvar="OPENCATALOG_QUEUE",
    required=True,
    help="The queue URL: celery+amqp://... or celery+redis://...",
)


_setting_option = click.option(
    "--setting",
    "settings",
    multiple=True,
    metavar="NAME=VALUE",
    help="A Celery setting (repeatable); VALUE is JSON, or else a string. Example: "
    "broker_transport_options='{\"visibility_timeout\": 3600}'.",
)


def parse_settings(pairs: Iterable[str]) -> dict[str, Any]:
    """Celery settings from ``NAME=VALUE`` pairs (VALUE as JSON when it parses)."""
    settings: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name.strip():
            raise ConfigurationError(f"A setting is NAME=VALUE, not {pair!r}")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        settings[name.strip()] = value
    return settings


@contextmanager
def _open_queue(
    storage_url: str, queue_url: str, settings: Iterable[str]
) -> Iterator[CeleryTaskQueue]:
    config = parse_settings(settings)
    storage = registry.create("storage", storage_url)
    try:
        queue = CeleryTaskQueue.from_url(queue_url, storage=storage, config=config)
        try:
            yield queue
        finally:
            queue.close()
    finally:
        storage.close()


def load_handlers(spec: str) -> dict[str, Any]:
    """The handlers named by ``module:attribute``: a mapping of job kind to handler, or a
    callable without arguments that returns one."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ConfigurationError(f"Name the handlers as module:attribute, not {spec!r}")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(f"Cannot import {module_name!r}: {exc}") from exc
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError as exc:
            raise ConfigurationError(f"{module_name!r} has no {attribute!r}") from exc
    if callable(target) and not isinstance(target, Mapping):
        target = target()
    if not isinstance(target, Mapping) or not target:
        raise ConfigurationError(f"{spec} is not a non-empty mapping of job kind to handler")
    return dict(target)


@click.group()
@click.option("--log-level", default="INFO", show_default=True, help="Logging level.")
def main(log_level: str) -> None:
    """Run opencatalog's background jobs on Celery."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


@main.command()
@_storage_option
@_queue_option
@_setting_option
@click.option(
    "--handlers",
    "handlers_spec",
    required=True,
    help="module:attribute naming the job handlers (a mapping kind -> handler, or a "
    "function returning one).",
)
@click.option("--concurrency", type=click.IntRange(1), default=4, show_default=True)
@click.option(
    "--pool",
    type=click.Choice(["threads", "solo"]),
    default="threads",
    show_default=True,
    help="Celery execution pool (threads share the storage's connection pool).",
)
@click.option(
    "--lease", type=click.FloatRange(min=1), default=300.0, show_default=True, help="Seconds."
)
@click.option("--beat/--no-beat", default=False, help="Also run the periodic sweep (beat).")
@click.option("--hostname", default=None, help="The Celery node name (default: celery@host).")
def worker(
    storage: str,
    queue_url: str,
    settings: tuple[str, ...],
    handlers_spec: str,
    concurrency: int,
    pool: str,
    lease: float,
    beat: bool,
    hostname: str | None,
) -> None:
    """Run a Celery worker that claims the catalog's jobs and runs them."""
    try:
        handlers = load_handlers(handlers_spec)
        with _open_queue(storage, queue_url, settings) as queue:
            app = queue.bind(handlers, lease=timedelta(seconds=lease))
            options: dict[str, Any] = {"pool": pool, "concurrency": concurrency, "beat": beat}
            if hostname:
                options["hostname"] = hostname
            # every runnable job that has no wake-up waiting (lost while no worker ran)
            queue.sweep(grace=timedelta(0), kinds=handlers)
            app.Worker(**options).start()
    except OpenCatalogError as exc:
        raise click.ClickException(str(exc)) from exc


@main.command()
@_storage_option
@_queue_option
@_setting_option
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=None,
    help="Seconds a runnable job may wait before it gets a wake-up (default: the queue's).",
)
@click.option("--kind", "kinds", multiple=True, help="Only jobs of this kind (repeatable).")
def sweep(
    storage: str,
    queue_url: str,
    settings: tuple[str, ...],
    grace: float | None,
    kinds: tuple[str, ...],
) -> None:
    """Publish wake-ups for runnable jobs that may have lost theirs (once)."""
    try:
        with _open_queue(storage, queue_url, settings) as queue:
            sent = queue.sweep(
                grace=None if grace is None else timedelta(seconds=grace),
                kinds=kinds or None,
            )
    except OpenCatalogError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{sent} wake-up(s) published", err=True)


if __name__ == "__main__":  # pragma: no cover - python -m opencatalog_celery.cli
    main()
