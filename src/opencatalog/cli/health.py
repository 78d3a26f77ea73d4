"""``health``: check that resources' external links still answer."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import click

from opencatalog.domain.files import ResourceFile

from ._common import CliState, emit, emit_list, jsonl_option, message, pass_state

__all__ = ["health"]


def _row(record: ResourceFile) -> dict[str, Any]:
    h = record.health
    return {
        "resource_id": record.resource_id,
        "package_id": record.package_id,
        "status": h.status.value if h else None,
        "checked": h.checked.isoformat() if h else None,
        "http_status": h.http_status if h else None,
        "error": h.error if h else None,
    }


@click.group()
def health() -> None:
    """Link health of resources' external URLs (HEAD, then a one-byte ranged GET)."""


@health.command("check")
@click.option("--resource", "resource_id", default=None, help="Check only this resource now.")
@click.option("--limit", type=click.IntRange(1), default=200, show_default=True)
@click.option(
    "--older-than",
    "older_than_hours",
    type=click.FloatRange(0),
    default=24.0,
    show_default=True,
    help="Hours since the last check after which a link is due again.",
)
@pass_state
def check(state: CliState, resource_id: str | None, limit: int, older_than_hours: float) -> None:
    """Check the links that are due (never checked first, then the oldest), or one."""
    catalog = state.open()
    if resource_id is not None:
        result = catalog.health.check(resource_id)
        emit(
            {
                "resource_id": resource_id,
                "status": result.status.value,
                "http_status": result.http_status,
                "error": result.error,
                "checked": result.checked.isoformat(),
            }
        )
        return
    summary = catalog.health.check_due(limit=limit, older_than=timedelta(hours=older_than_hours))
    emit(summary.to_dict())
    message(
        f"Checked {summary.checked} links: {summary.ok} ok, {summary.error} broken, "
        f"{summary.unknown} not checkable; {summary.refetch} changed files re-fetched"
    )


@health.command("stats")
@pass_state
def stats(state: CliState) -> None:
    """How many links are ok, broken, not checkable, or unchecked."""
    emit(state.open().health.stats())


@health.command("list")
@click.option("--status", default="error", show_default=True, help="ok, error or unknown.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0, show_default=True)
@jsonl_option
@pass_state
def list_links(state: CliState, status: str, limit: int, offset: int, jsonl: bool) -> None:
    """Resources whose last link check had this status (broken links by default)."""
    found = state.open().health.list(status=status, offset=offset, limit=limit)
    emit_list((_row(r) for r in found), jsonl=jsonl)
