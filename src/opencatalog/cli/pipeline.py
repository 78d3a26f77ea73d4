"""``pipeline``: fetch, inspect and index resources' files (run, enqueue-all, status)."""

from __future__ import annotations

import click

from ._common import CliState, emit, message, pass_state, stderr_is_tty
from .worker import open_without_jobs

__all__ = ["pipeline"]


@click.group()
def pipeline() -> None:
    """The resource pipeline: fetch external files, hash, detect the format, extract text,
    make a preview. Jobs are run by `opencatalog worker` (or by an application that opens
    the catalog), or right here with --wait."""


@pipeline.command("run")
@click.argument("resource_id")
@click.option("--wait", is_flag=True, help="Run the pending jobs in this command, then report.")
@pass_state
def run(state: CliState, resource_id: str, wait: bool) -> None:
    """Queue a pipeline run for one resource (its id)."""
    catalog = open_without_jobs(state)
    job = catalog.pipeline.run(resource_id)
    if not wait:
        emit({"resource_id": resource_id, "job_id": job.id, "status": job.status.value})
        message(f"Queued job {job.id}; run `opencatalog worker` to process it")
        return
    catalog.jobs.run_pending()
    emit(catalog.pipeline.status(resource_id).to_dict())


@pipeline.command("enqueue-all")
@click.option("--batch-size", type=click.IntRange(1, 10_000), default=500, show_default=True)
@pass_state
def enqueue_all(state: CliState, batch_size: int) -> None:
    """Queue a run for every resource with an external URL or an upload (after a bulk load)."""
    catalog = open_without_jobs(state)
    show = stderr_is_tty()

    def progress(queued: int) -> None:
        if show:
            click.echo(f"\rqueued {queued}", err=True, nl=False)

    queued = catalog.pipeline.enqueue_all(batch_size=batch_size, progress=progress)
    if show:
        click.echo("", err=True)
    emit({"queued": queued})
    message(f"Queued {queued} resource(s); run `opencatalog worker` to process them")


@pipeline.command("status")
@click.argument("resource_id")
@pass_state
def status(state: CliState, resource_id: str) -> None:
    """What the pipeline knows about one resource: status, steps, hash, size, format."""
    emit(open_without_jobs(state).pipeline.status(resource_id).to_dict())


@pipeline.command("stats")
@pass_state
def stats(state: CliState) -> None:
    """How many resources are in each pipeline status."""
    emit(open_without_jobs(state).pipeline.stats())
