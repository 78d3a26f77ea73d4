"""``dataset``: create, show, list, delete and purge datasets."""

from __future__ import annotations

import json
from typing import Any

import click

from opencatalog.serialization import GroupLookup, dataset_input_from_dict

from ._common import (
    CliState,
    CommandGroup,
    emit,
    emit_list,
    fail,
    jsonl_option,
    message,
    pass_state,
)

__all__ = ["GroupLookup", "dataset"]


@click.group(cls=CommandGroup)
def dataset() -> None:
    """Create, show, list, delete and purge datasets."""


def _read_json(path: str) -> Any:
    try:
        with click.open_file(path, "r", encoding="utf-8") as fh:
            return json.load(fh)
    except OSError as exc:
        fail(f"Cannot read {path}: {exc.strerror or exc}")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        fail(f"{path} is not valid JSON: {exc}")


@dataset.command("create")
@click.argument("name", required=False)
@click.option("--org", "owner_org", help="The owning organization (id or name).")
@click.option("--title", help="A human-readable title.")
@click.option("--notes", help="A description (Markdown).")
@click.option("--tag", "tags", multiple=True, help="A tag (repeat for more).")
@click.option(
    "--private/--public", default=None, help="Only members of the organization may see it."
)
@click.option(
    "--json",
    "json_file",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Read a full dataset dict (CKAN package_create shape) from FILE, or - for stdin; "
    "the other options override its keys.",
)
@pass_state
def dataset_create(
    state: CliState,
    name: str | None,
    owner_org: str | None,
    title: str | None,
    notes: str | None,
    tags: tuple[str, ...],
    private: bool | None,
    json_file: str | None,
) -> None:
    """Create the dataset NAME and show it (JSON).

    Either give NAME with options (--org, --title, --notes, --tag, --private) or a whole
    dataset dict with --json, as CKAN's package_create takes it (resources included).
    """
    data: dict[str, Any] = {}
    if json_file is not None:
        loaded = _read_json(json_file)
        if not isinstance(loaded, dict):
            fail(f"{json_file} must hold one JSON object (a dataset dict)")
        data = dict(loaded)
    elif name is None:
        raise click.UsageError("Give the dataset's NAME, or a dataset dict with --json")
    options = {"name": name, "owner_org": owner_org, "title": title, "notes": notes}
    data.update({key: value for key, value in options.items() if value is not None})
    if tags:
        data["tags"] = [{"name": t} for t in tags]
    if private is not None:
        data["private"] = private
    catalog = state.open()
    created = catalog.datasets.create(dataset_input_from_dict(data))
    emit(GroupLookup(catalog).dataset_dict(created))
    message(f"Created dataset {created.name}")


@dataset.command("show")
@click.argument("name")
@pass_state
def dataset_show(state: CliState, name: str) -> None:
    """Show the dataset NAME (id or name) as CKAN's package_show does (JSON)."""
    catalog = state.open()
    emit(GroupLookup(catalog).dataset_dict(catalog.datasets.get(name)))


@dataset.command("list")
@click.option("--org", "organization", help="Only the datasets of this organization.")
@click.option("--group", help="Only the datasets in this group.")
@click.option("--limit", type=click.IntRange(min=0), help="At most this many datasets.")
@click.option("--offset", type=click.IntRange(min=0), default=0, help="Skip this many first.")
@click.option("--include-deleted", is_flag=True, help="List deleted datasets too.")
@click.option("--names", is_flag=True, help="Print only the names, one per line.")
@jsonl_option
@pass_state
def dataset_list(
    state: CliState,
    organization: str | None,
    group: str | None,
    limit: int | None,
    offset: int,
    include_deleted: bool,
    names: bool,
    jsonl: bool,
) -> None:
    """List datasets by name, private ones and drafts included (JSON)."""
    catalog = state.open()
    page = catalog.datasets.list(
        offset=offset,
        limit=limit,
        organization=organization,
        group=group,
        include_private=True,
        include_drafts=True,
        include_deleted=include_deleted,
    )
    if names:
        for item in page.items:
            click.echo(item.name)
        return
    lookup = GroupLookup(catalog)
    emit_list((lookup.dataset_dict(ds) for ds in page.items), jsonl=jsonl)


@dataset.command("delete")
@click.argument("name")
@pass_state
def dataset_delete(state: CliState, name: str) -> None:
    """Delete the dataset NAME (it is kept as deleted; `purge` removes it for good)."""
    state.open().datasets.delete(name)
    message(f"Deleted dataset {name}")


@dataset.command("purge")
@click.argument("name")
@click.confirmation_option(
    "--yes", prompt="Remove the dataset and its history for good?", help="Do not ask."
)
@pass_state
def dataset_purge(state: CliState, name: str) -> None:
    """Remove the dataset NAME for good, with its activity history."""
    state.open().datasets.purge(name)
    message(f"Purged dataset {name}")
