"""The job worker: claims jobs from a task queue and runs their handlers.

::

    worker = Worker(queue, {"pipeline": run_pipeline}, lease=timedelta(minutes=5))
    install_signal_handlers(worker)   # SIGTERM / SIGINT stop it gracefully
    worker.run()                      # blocks until stopped

A handler takes the :class:`~opencatalog.domain.jobs.Job` and returns its step log. Returning
completes the job; raising fails it (the queue retries it with backoff, then dead-letters it
after ``max_attempts``). Raise :class:`~opencatalog.domain.jobs.JobFailed` to keep the step log
of a failed run. Delivery is at least once: a handler may run again for a job whose previous
run was cut short, so handlers must be idempotent.

While a handler runs, a heartbeat thread renews the job's lease every ``heartbeat_interval``
(a third of the lease by default). If the lease is lost anyway (another worker claimed the job
after a stall), the late ``complete`` is refused by the queue and logged; the other run wins.

Stopping is graceful: :meth:`Worker.stop` lets running handlers finish and record their
outcome, and claims nothing new. :meth:`Worker.run_until_idle` runs jobs in the calling
thread until none is runnable (tests, notebooks, ``opencatalog worker --once``).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from types import FrameType
from typing import Any

from opencatalog.domain.jobs import Job, JobFailed, StepLog
from opencatalog.errors import ConfigurationError, OpenCatalogError
from opencatalog.ports.queue import TaskQueue

__all__ = ["Handler", "Worker", "default_worker_id", "install_signal_handlers"]

logger = logging.getLogger(__name__)

Handler = Callable[[Job], Sequence[StepLog]]
"""Runs one job and returns its step log; raises to fail the job."""

_FINISH_TRIES = 5


def default_worker_id() -> str:
    """``host:pid:random``, unique per worker object."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    """Runs jobs of the kinds in ``handlers`` from ``queue``.

    ``worker_id`` names the worker in leases (each thread claims as ``<worker_id>/<n>``);
    ``lease`` is how long a claim lasts without a heartbeat; ``poll_interval`` (seconds) is
    the wait after finding no runnable job; ``threads`` is the number of jobs run at once.
    """

    def __init__(
        self,
        queue: TaskQueue,
        handlers: Mapping[str, Handler],
        *,
        worker_id: str | None = None,
        lease: timedelta = timedelta(minutes=5),
        poll_interval: float = 1.0,
        threads: int = 1,
        heartbeat_interval: float | None = None,
    ) -> None:
        if not handlers:
            raise ConfigurationError("A worker needs at least one job handler")
        if threads < 1:
            raise ConfigurationError("A worker needs at least one thread")
        if lease <= timedelta(0):
            raise ConfigurationError("A worker's lease must be positive")
        if poll_interval < 0:
            raise ConfigurationError("A worker's poll interval must not be negative")
        self.queue = queue
        self.handlers: dict[str, Handler] = dict(handlers)
        self.worker_id = worker_id or default_worker_id()
        self.lease = lease
        self.poll_interval = poll_interval
        self.threads = threads
        self.heartbeat_interval = (
            heartbeat_interval if heartbeat_interval is not None else lease.total_seconds() / 3
        )
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._active: dict[str, str] = {}  # job id -> lease owner
        self._pool: list[threading.Thread] = []
        self._heartbeat: threading.Thread | None = None
        self._heartbeat_stop = threading.Event()
        self.completed = 0
        self.failed = 0
        self.superseded = 0

    # -- life cycle ----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True while any worker thread is alive."""
        return any(thread.is_alive() for thread in self._pool)

    @property
    def stopping(self) -> bool:
        """True once a stop was requested."""
        return self._stopping.is_set()

    def start(self) -> None:
        """Start the worker threads (and the heartbeat thread) and return at once."""
        if self.running:
            raise RuntimeError("This worker is already running")
        self._stopping.clear()
        self._start_heartbeat()
        self._pool = [
            threading.Thread(
                target=self._loop,
                args=(f"{self.worker_id}/{n}",),
                name=f"opencatalog-worker-{n}",
                daemon=True,
            )
            for n in range(self.threads)
        ]
        for thread in self._pool:
            thread.start()
        logger.info(
            "Worker %s started: %d thread(s), kinds %s, lease %ss",
            self.worker_id,
            self.threads,
            ", ".join(sorted(self.handlers)),
            self.lease.total_seconds(),
        )

    def run(self) -> None:
        """Start and block until the worker is stopped (by :meth:`stop` or a signal)."""
        self.start()
        while not self.join(timeout=0.5):
            pass

    def request_stop(self) -> None:
        """Ask the worker to stop after the running jobs; returns at once (signal-safe)."""
        self._stopping.set()

    def stop(self, *, wait: bool = True, timeout: float | None = None) -> bool:
        """Stop claiming jobs; with ``wait``, block until running handlers have finished and
        recorded their outcome. Returns True when every worker thread has ended."""
        if not self._stopping.is_set():
            logger.info("Worker %s stopping", self.worker_id)
        self._stopping.set()
        if not wait:
            return not self.running
        return self.join(timeout=timeout)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the worker threads to end (after a stop); True when they all have."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._pool:
            remaining = None if deadline is None else max(deadline - time.monotonic(), 0)
            thread.join(remaining)
        done = not self.running
        if done:
            self._stop_heartbeat()
        return done

    def run_until_idle(self, *, max_jobs: int | None = None) -> int:
        """Run jobs in the calling thread until none is runnable (or ``max_jobs`` ran, or a
        stop is requested); return how many ran."""
        owner = f"{self.worker_id}/inline"
        ran = 0
        self._start_heartbeat()
        try:
            while not self._stopping.is_set() and (max_jobs is None or ran < max_jobs):
                job = self.queue.claim(owner, lease=self.lease, kinds=self.handlers)
                if job is None:
                    break
                self._execute(job, owner)
                ran += 1
        finally:
            if not self.running:
                self._stop_heartbeat()
        return ran

    # -- the loop --------------------------------------------------------------------------

    def _loop(self, owner: str) -> None:
        while not self._stopping.is_set():
            try:
                job = self.queue.claim(owner, lease=self.lease, kinds=self.handlers)
            except OpenCatalogError as exc:
                logger.warning("Worker %s could not claim a job: %s", owner, exc)
                self._stopping.wait(max(self.poll_interval, 0.1))
                continue
            except Exception:
                logger.exception("Worker %s: unexpected error while claiming", owner)
                self._stopping.wait(max(self.poll_interval, 0.1))
                continue
            if job is None:
                self._stopping.wait(self.poll_interval)
                continue
            self._execute(job, owner)
        logger.debug("Worker thread %s ended", owner)

    def _execute(self, job: Job, owner: str) -> None:
        handler = self.handlers[job.kind]
        with self._lock:
            self._active[job.id] = owner
        logger.info(
            "Job %s (%s) attempt %d/%d started by %s",
            job.id,
            job.kind,
            job.attempts,
            job.max_attempts,
            owner,
        )
        started = time.monotonic()
        try:
            try:
                steps = tuple(handler(job))
            except JobFailed as exc:
                self._finish(job, owner, error=exc.message, steps=exc.steps)
            except Exception as exc:
                logger.warning(
                    "Job %s (%s) attempt %d failed", job.id, job.kind, job.attempts, exc_info=True
                )
                self._finish(job, owner, error=f"{type(exc).__name__}: {exc}", steps=())
            else:
                self._finish(job, owner, error=None, steps=steps)
        finally:
            with self._lock:
                self._active.pop(job.id, None)
            logger.debug("Job %s took %.3fs", job.id, time.monotonic() - started)

    def _finish(self, job: Job, owner: str, *, error: str | None, steps: Sequence[StepLog]) -> None:
        """Record the outcome, retrying briefly on backend errors (a busy database). If it
        still cannot be recorded, the lease runs out and the job runs again."""
        for attempt in range(1, _FINISH_TRIES + 1):
            try:
                if error is None:
                    accepted = self.queue.complete(job.id, owner, steps)
                else:
                    accepted = self.queue.fail(job.id, owner, error, steps)
            except OpenCatalogError as exc:
                if attempt == _FINISH_TRIES:
                    logger.error(
                        "Could not record the outcome of job %s: %s (it will run again)",
                        job.id,
                        exc,
                    )
                    return
                time.sleep(0.05 * 2**attempt)
                continue
            if not accepted:
                self.superseded += 1
                logger.warning(
                    "Job %s was taken over by another worker; this run's outcome is dropped",
                    job.id,
                )
            elif error is None:
                self.completed += 1
                logger.info("Job %s (%s) complete", job.id, job.kind)
            else:
                self.failed += 1
                logger.info("Job %s (%s) failed: %s", job.id, job.kind, error)
            return

    # -- heartbeats ------------------------------------------------------------------------

    def _start_heartbeat(self) -> None:
        if self._heartbeat is not None and self._heartbeat.is_alive():
            return
        self._heartbeat_stop.clear()
        self._heartbeat = threading.Thread(
            target=self._beat, name="opencatalog-worker-heartbeat", daemon=True
        )
        self._heartbeat.start()

    def _stop_heartbeat(self) -> None:
        self._heartbeat_stop.set()
        if self._heartbeat is not None and self._heartbeat is not threading.current_thread():
            self._heartbeat.join(5)
        self._heartbeat = None

    def _beat(self) -> None:
        while not self._heartbeat_stop.wait(self.heartbeat_interval):
            with self._lock:
                active = list(self._active.items())
            for job_id, owner in active:
                try:
                    held = self.queue.heartbeat(job_id, owner, self.lease)
                except OpenCatalogError as exc:
                    logger.warning("Heartbeat of job %s failed: %s", job_id, exc)
                    continue
                if not held:
                    logger.warning("Worker %s lost the lease of job %s", owner, job_id)


def install_signal_handlers(
    worker: Worker, signals: Sequence[int] = (signal.SIGTERM, signal.SIGINT)
) -> dict[int, Any]:
    """Make ``signals`` stop ``worker`` gracefully; return the previous handlers.

    The first signal requests a stop (running jobs finish) and restores the previous handlers,
    so a second one acts as it did before (for SIGINT: KeyboardInterrupt). Call from the main
    thread (a Python rule for signal handlers).
    """
    previous: dict[int, Any] = {}

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logger.info("Signal %d received: stopping worker %s", signum, worker.worker_id)
        worker.request_stop()
        for number, handler in previous.items():
            signal.signal(number, handler)

    for number in signals:
        previous[number] = signal.signal(number, on_signal)
    return previous
