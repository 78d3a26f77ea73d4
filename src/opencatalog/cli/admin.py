"""``init``, ``upgrade`` and ``info``: the catalog's life cycle."""

from __future__ import annotations

from typing import Any

import click

import opencatalog
from opencatalog.bootstrap import CATALOG_DB
from opencatalog.errors import OpenCatalogError
from opencatalog.services.catalog import Catalog

from ._common import CliState, emit, message, pass_state

__all__ = ["info", "init", "upgrade"]


def _schema(facts: dict[str, Any]) -> dict[str, Any]:
    storage = facts.get("storage") or {}
    return {
        "revision": storage.get("schema_revision"),
        "head": storage.get("schema_head"),
        "current": storage.get("schema_current"),
    }


def _peek_revision(state: CliState) -> str | None:
    """The schema revision before an upgrade, read without changing anything (None when
    it cannot be read, for example before the first ``init``)."""
    try:
        catalog = state.build(initialize=False, search="none")
    except OpenCatalogError:
        return None
    try:
        revision = _schema(catalog.describe())["revision"]
    except OpenCatalogError:
        return None
    finally:
        catalog.close()
    return revision if isinstance(revision, str) else None


def _counts(catalog: Catalog) -> dict[str, int]:
    datasets = catalog.datasets.list(limit=0, include_private=True, include_drafts=True)
    return {
        "datasets": datasets.total,
        "organizations": catalog.organizations.list(limit=0).total,
        "groups": catalog.groups.list(limit=0).total,
        "users": catalog.users.list(limit=0).total,
    }


@click.command()
@pass_state
def init(state: CliState) -> None:
    """Create the catalog, or bring an existing one's schema up to date.

    For a folder (the default, ./catalog) this creates the folder with its SQLite database
    and search index; for a storage URL it creates the tables. Safe to run again.
    """
    folder = state.folder()
    existed = folder is None or (folder / CATALOG_DB).exists()
    catalog = state.open(initialize=True, must_exist=False)
    revision = _schema(catalog.describe())["revision"]
    where = state.resolved_location()
    if existed:
        message(f"Catalog at {where} is ready (schema revision {revision})")
    else:
        message(f"Created catalog in {where} (schema revision {revision})")


@click.command()
@pass_state
def upgrade(state: CliState) -> None:
    """Apply the schema migrations this version of opencatalog ships."""
    before = _peek_revision(state)
    catalog = state.open(initialize=True)
    after = _schema(catalog.describe())["revision"]
    if before == after:
        message(f"Schema already at the newest revision ({after})")
    else:
        message(f"Schema upgraded from {before or 'nothing'} to {after}")


@click.command()
@pass_state
def info(state: CliState) -> None:
    """Show the catalog's backends, schema revision and object counts (JSON)."""
    catalog = state.open()
    facts = catalog.describe()
    data: dict[str, Any] = {
        "version": opencatalog.__version__,
        "catalog": state.resolved_location(),
        "backends": facts,
        "schema": _schema(facts),
    }
    try:
        data["counts"] = _counts(catalog)
    except OpenCatalogError as exc:  # an outdated schema: still show what is known
        data["counts"] = None
        message(f"Cannot count objects: {exc.message} (try `opencatalog upgrade`)")
    emit(data)
