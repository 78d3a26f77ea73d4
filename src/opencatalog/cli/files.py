"""``gc`` and ``resource upload``: resource files from the shell.

``opencatalog gc [--grace 1h] [--dry-run]`` removes blobs no resource file names that were
stored longer ago than the grace period, and the temporary objects of uploads that stopped
that long ago. ``opencatalog resource upload DATASET FILE`` stores a local file as a new
resource of the dataset (or, with ``--resource``, as the file of an existing one) and queues
its pipeline job.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from opencatalog.domain.commands import ResourceInput
from opencatalog.serialization import resource_to_dict

from ._common import CliState, emit, message, pass_state

__all__ = ["gc", "parse_duration", "resource"]

_DURATION = re.compile(r"(\d+)\s*([smhd]?)", re.IGNORECASE)
_UNITS = {"": "seconds", "s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``1h``, ``2d`` or a number of seconds."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise click.BadParameter(f"{text!r} is not a duration such as 30m, 1h or 2d")
    amount, unit = match.groups()
    return timedelta(**{_UNITS[unit.lower()]: int(amount)})


class _Duration(click.ParamType):
    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, timedelta):
            return value
        try:
            return parse_duration(str(value))
        except click.BadParameter as exc:
            self.fail(exc.message, param, ctx)


@click.command("gc")
@click.option(
    "--grace",
    type=_Duration(),
    default="1h",
    show_default=True,
    help="Keep unreferenced blobs younger than this (30m, 1h, 2d...).",
)
@click.option("--dry-run", is_flag=True, help="Count what would be removed; remove nothing.")
@pass_state
def gc(state: CliState, grace: timedelta, dry_run: bool) -> None:
    """Remove stored files no resource uses any more (older than the grace period)."""
    report = state.open().files.collect_garbage(grace, dry_run=dry_run)
    emit(report.to_dict())
    if dry_run:
        message(f"{report.orphans} unreferenced blobs would be removed")
    else:
        message(
            f"Removed {report.orphans} unreferenced blobs and "
            f"{report.temporaries} stale temporary objects"
        )


@click.group()
def resource() -> None:
    """Resource files."""


@resource.command("upload")
@click.argument("dataset")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--resource", "resource_id", help="Replace the file of this resource instead.")
@click.option("--name", help="The new resource's name (default: the file name).")
@click.option("--content-type", help="The media type (default: guessed from the name).")
@pass_state
def upload(
    state: CliState,
    dataset: str,
    file: Path,
    resource_id: str | None,
    name: str | None,
    content_type: str | None,
) -> None:
    """Upload FILE as a new resource of DATASET (or into an existing one with --resource)."""
    catalog = state.open()
    added = None
    if resource_id is None:
        added = catalog.resources.add(dataset, ResourceInput(url="", name=name or file.name))
        resource_id = added.id
    else:
        owner = catalog.datasets.get(dataset)
        if owner.resource(resource_id) is None:
            raise click.ClickException(f"Dataset {dataset} has no resource {resource_id}")
    try:
        with file.open("rb") as stream:
            result = catalog.files.upload(
                resource_id, stream, filename=file.name, content_type=content_type
            )
    except BaseException:
        if added is not None:  # do not leave an empty resource behind
            catalog.resources.delete(added.id)
        raise
    emit(
        {
            "resource": resource_to_dict(result.resource),
            "pipeline_status": result.record.status.value,
            "job_id": result.job.id if result.job is not None else result.record.job_id,
        }
    )
    message(f"Uploaded {file.name} ({result.record.size} bytes) to resource {resource_id}")
