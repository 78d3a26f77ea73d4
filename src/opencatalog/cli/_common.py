"""What every command shares: opening the catalog, writing data and messages, errors.

Output discipline: data goes to stdout (JSON; pretty-printed when stdout is a terminal, one
object per line with ``--jsonl``), everything meant for a person (messages, progress, errors)
to stderr. Expected errors (every :class:`~opencatalog.errors.OpenCatalogError`) end the
command with a one-line message and exit code 1; usage errors exit with 2 (click's default).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import click
from attrs import define

from opencatalog.bootstrap import CATALOG_DB, open_catalog
from opencatalog.config import ENV_PREFIX, Settings, load_settings
from opencatalog.errors import AlreadyExists, OpenCatalogError, ValidationFailed
from opencatalog.services.catalog import Catalog

__all__ = [
    "DEFAULT_CATALOG",
    "CatalogError",
    "CliState",
    "CommandGroup",
    "emit",
    "emit_list",
    "jsonl_option",
    "message",
    "pass_state",
]

#: Where the catalog is when neither ``--catalog`` nor ``OPENCATALOG_CATALOG`` says.
DEFAULT_CATALOG = "./catalog"

F = TypeVar("F", bound=Callable[..., Any])


class CatalogError(click.ClickException):
    """An expected error from the catalog: one line on stderr, exit code 1."""

    exit_code = 1


def describe_error(exc: OpenCatalogError) -> str:
    """The one-line text of an expected error (field errors as JSON)."""
    if isinstance(exc, ValidationFailed | AlreadyExists):
        return f"{exc.message}: {json.dumps(exc.errors, ensure_ascii=False)}"
    return exc.message or type(exc).__name__


class CommandGroup(click.Group):
    """A click group that turns expected catalog errors into clean one-line failures."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OpenCatalogError as exc:
            raise CatalogError(describe_error(exc)) from exc


@define
class CliState:
    """The global options, and the catalog once a command opens it."""

    location: str | None = None
    config: str | None = None
    catalog: Catalog | None = None

    def resolved_location(self) -> str:
        """The catalog location the commands act on (for messages)."""
        return self.location or DEFAULT_CATALOG

    def folder(self) -> Path | None:
        """The catalog folder, or None when the location is a storage URL."""
        location = self.resolved_location()
        return None if "://" in location else Path(location)

    def open(self, *, initialize: bool = False, must_exist: bool = True) -> Catalog:
        """Open the catalog (once per command run; closed when the command ends).

        With ``must_exist``, a folder location that holds no catalog is an error instead of
        silently creating an empty catalog (a mistyped path would otherwise "work").
        """
        if self.catalog is None:
            self.catalog = self.build(initialize=initialize, must_exist=must_exist)
            click.get_current_context().find_root().call_on_close(self.catalog.close)
        return self.catalog

    def build(self, *, initialize: bool, must_exist: bool = True, **overrides: Any) -> Catalog:
        """A new catalog for the global options; the caller closes it.

        Settings, weakest first: the catalog folder's ``opencatalog.toml``, the ``--config``
        file (or ``OPENCATALOG_CONFIG``), ``OPENCATALOG_*`` variables, then ``overrides``.
        Without ``--catalog``, a config file that names a ``storage`` URL is used as it is.
        """
        config = self.config or os.environ.get(ENV_PREFIX + "CONFIG") or None
        location = self.location
        if location is None and config and "storage" in Settings.file_values(config):
            settings = load_settings(file=config, **overrides)
            return open_catalog(settings=settings, initialize=initialize)
        location = location or DEFAULT_CATALOG
        if "://" in location:
            settings = load_settings(file=config, **{**overrides, "storage": location})
            return open_catalog(settings=settings, initialize=initialize)
        folder = Path(location)
        if must_exist and not (folder / CATALOG_DB).exists():
            raise CatalogError(
                f"No catalog in {location} "
                f"(create one with `opencatalog --catalog {location} init`)"
            )
        values = dict(Settings.file_values(config)) if config else {}
        for key in Settings.env_values():
            values.pop(key, None)  # the environment wins over the file
        values.update(overrides)
        return open_catalog(folder, initialize=initialize, **values)


pass_state = click.make_pass_decorator(CliState, ensure=True)


def jsonl_option(func: F) -> F:
    """``--jsonl``: one JSON object per line instead of one JSON array."""
    return click.option(
        "--jsonl", is_flag=True, help="Write one JSON object per line instead of an array."
    )(func)


def _stdout_is_tty() -> bool:
    return sys.stdout.isatty()


def dumps(data: Any, *, pretty: bool = False) -> str:
    """JSON text of a JSON-ready value (non-ASCII kept as is)."""
    if pretty:
        return json.dumps(data, ensure_ascii=False, indent=2)
    return json.dumps(data, ensure_ascii=False)


def emit(data: Any) -> None:
    """Write one JSON value to stdout (pretty-printed on a terminal)."""
    click.echo(dumps(data, pretty=_stdout_is_tty()))


def emit_list(items: Iterable[Mapping[str, Any]], *, jsonl: bool) -> None:
    """Write a list to stdout: a JSON array, or JSON lines with ``jsonl``."""
    if jsonl:
        for item in items:
            click.echo(dumps(item))
    else:
        emit(list(items))


def message(text: str) -> None:
    """A message for a person, on stderr."""
    click.echo(text, err=True)


def stderr_is_tty() -> bool:
    """Whether stderr is a terminal (progress bars only then)."""
    return sys.stderr.isatty()


def fail(text: str) -> None:
    """Stop the command with an expected error (exit code 1)."""
    raise CatalogError(text)
