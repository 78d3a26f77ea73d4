"""``jobs``: the background job queue as administrators see it."""

from __future__ import annotations

from typing import Any

import click

from opencatalog.domain.jobs import Job

from ._common import CliState, emit, emit_list, jsonl_option, message, pass_state

__all__ = ["jobs"]


def _job(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "kind": job.kind,
        "status": job.status.value,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "error": job.error,
        "payload": dict(job.payload),
        "created": job.created.isoformat(),
        "updated": job.updated.isoformat(),
        "steps": [
            {"name": s.name, "status": s.status.value, "message": s.message} for s in job.steps
        ],
    }


@click.group()
def jobs() -> None:
    """Inspect and retry background jobs (their state lives in the catalog's storage)."""


@jobs.command("stats")
@pass_state
def stats(state: CliState) -> None:
    """How many jobs are in each status."""
    emit(state.open().jobs.stats())


@jobs.command("list")
@click.option("--status", default=None, help="pending, processing, complete or error.")
@click.option("--kind", default=None, help="Only jobs of this kind.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0, show_default=True)
@jsonl_option
@pass_state
def list_jobs(
    state: CliState, status: str | None, kind: str | None, limit: int, offset: int, jsonl: bool
) -> None:
    """Jobs, oldest first."""
    found = state.open().jobs.list(status=status, kind=kind, offset=offset, limit=limit)
    emit_list((_job(j) for j in found), jsonl=jsonl)


@jobs.command("retry")
@click.argument("job_id")
@pass_state
def retry(state: CliState, job_id: str) -> None:
    """Put a job that ended in error back in the queue."""
    job = state.open().jobs.retry(job_id)
    emit(_job(job))
    message(f"Job {job.id} is {job.status.value} again")
