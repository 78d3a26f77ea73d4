"""``worker``: run the catalog's background jobs (the resource pipeline, link checks)."""

from __future__ import annotations

import logging
import sys
from datetime import timedelta

import click

from opencatalog.services.catalog import Catalog
from opencatalog.worker import Worker, install_signal_handlers

from ._common import CliState, message, pass_state

__all__ = ["open_without_jobs", "worker"]

log = logging.getLogger("opencatalog.cli.worker")


def open_without_jobs(state: CliState) -> Catalog:
    """Open the catalog for this command with no in-process job worker (the command decides
    what runs); closed when the command ends."""
    if state.catalog is None:
        state.catalog = state.build(initialize=False, run_jobs_in_process=False)
        click.get_current_context().find_root().call_on_close(state.catalog.close)
    return state.catalog


def _configure_logging(verbose: bool) -> None:
    """One line per event on stderr, unless the application configured logging already."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    logging.getLogger("opencatalog").setLevel(logging.DEBUG if verbose else logging.INFO)


@click.command("worker")
@click.option(
    "--threads", type=click.IntRange(1, 64), default=1, show_default=True, help="Jobs at once."
)
@click.option(
    "--once", is_flag=True, help="Run the jobs that are runnable now (one thread), then exit."
)
@click.option(
    "--lease",
    type=click.FloatRange(1),
    default=300.0,
    show_default=True,
    help="Seconds a claimed job stays ours without a heartbeat (another worker takes it over "
    "after that if this one died).",
)
@click.option(
    "--poll",
    "poll_interval",
    type=click.FloatRange(0.05),
    default=1.0,
    show_default=True,
    help="Seconds to wait for new jobs when none is runnable.",
)
@click.option(
    "--deadline",
    type=click.FloatRange(1),
    default=None,
    help="Seconds a job may run before it is given up on and retried "
    "(default: the job_deadline setting).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log debug details too.")
@pass_state
def worker(
    state: CliState,
    threads: int,
    once: bool,
    lease: float,
    poll_interval: float,
    deadline: float | None,
    verbose: bool,
) -> None:
    """Run background jobs until stopped (SIGTERM or Ctrl-C finish the running jobs first).

    Run as many workers as you like, on any machines that reach the catalog's database; set
    run_jobs_in_process = false in the catalog's settings so the applications that use it
    leave the jobs to them.
    """
    _configure_logging(verbose)
    catalog = open_without_jobs(state)
    settings = catalog.describe().get("settings", {})
    if deadline is None:
        deadline = float(settings.get("job_deadline") or 600.0)
    runner = Worker(
        catalog.jobs.queue,
        catalog.jobs.handlers,
        lease=timedelta(seconds=lease),
        poll_interval=poll_interval,
        threads=threads,
        deadline=deadline,
    )
    if once:
        ran = runner.run_until_idle()
        message(f"Ran {ran} job(s): {runner.completed} complete, {runner.failed} failed")
        return
    install_signal_handlers(runner)
    message(
        f"Worker {runner.worker_id} running {', '.join(sorted(runner.handlers))} jobs "
        f"on {state.resolved_location()} with {threads} thread(s); SIGTERM or Ctrl-C stop it"
    )
    runner.run()
    message(
        f"Worker stopped: {runner.completed} complete, {runner.failed} failed, "
        f"{runner.superseded} superseded, {runner.abandoned} given up on"
    )
