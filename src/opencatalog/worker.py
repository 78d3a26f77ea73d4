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

A ``deadline`` (seconds) bounds each run of a handler: a handler still running when it
passes is given up on. The worker records the attempt as failed ("deadline exceeded"), so the
queue retries it after its backoff and dead-letters it after ``max_attempts``; it stops
renewing the lease and moves on to the next job. Python cannot kill a thread, so the hung
handler is left running on its own daemon thread and whatever it returns later is dropped
(its outcome is never recorded). Handlers therefore stay idempotent and bounded themselves;
the deadline is the last line of defence against one that is not.

:class:`InProcessJobs` runs a catalog's jobs inside the catalog's own process: a background
worker woken right after each commit that enqueued a job (see :class:`WakingQueue`), and
:meth:`InProcessJobs.run_pending` for callers who want the work done before they go on.
"""

from __future__ import annotations

import builtins
import enum
import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import timedelta
from types import FrameType
from typing import Any

from opencatalog.domain.jobs import Job, JobFailed, JobStatus, StepLog
from opencatalog.errors import ConfigurationError, OpenCatalogError
from opencatalog.ports.capabilities import SupportsTransactionalEnqueue
from opencatalog.ports.queue import TaskQueue

__all__ = [
    "Handler",
    "InProcessJobs",
    "Outcome",
    "WakingQueue",
    "Worker",
    "default_worker_id",
    "install_signal_handlers",
    "record_outcome",
]

logger = logging.getLogger(__name__)

Handler = Callable[[Job], Sequence[StepLog]]
"""Runs one job and returns its step log; raises to fail the job."""

_FINISH_TRIES = 5


class Outcome(enum.Enum):
    """What became of one run's outcome (see ``record_outcome``)."""

    COMPLETED = "completed"
    FAILED = "failed"  # recorded as a failure: retried later or dead-lettered by the queue
    SUPERSEDED = "superseded"  # another worker holds the job now; this run's outcome is dropped
    UNRECORDED = "unrecorded"  # the queue kept failing; the lease runs out, the job runs again


def record_outcome(
    queue: TaskQueue,
    job: Job,
    worker_id: str,
    *,
    error: str | None,
    steps: Sequence[StepLog] = (),
    tries: int = _FINISH_TRIES,
) -> Outcome:
    """Record how ``worker_id``'s run of ``job`` ended: completed when ``error`` is None,
    failed with ``error`` otherwise. Backend errors (a busy database) are retried ``tries``
    times with a short backoff; every worker, whatever runs it, records outcomes this way."""
    for attempt in range(1, tries + 1):
        try:
            if error is None:
                accepted = queue.complete(job.id, worker_id, steps)
            else:
                accepted = queue.fail(job.id, worker_id, error, steps)
        except OpenCatalogError as exc:
            if attempt == tries:
                logger.error(
                    "Could not record the outcome of job %s: %s (it will run again)", job.id, exc
                )
                return Outcome.UNRECORDED
            time.sleep(0.05 * 2**attempt)
            continue
        if not accepted:
            logger.warning(
                "Job %s was taken over by another worker; this run's outcome is dropped", job.id
            )
            return Outcome.SUPERSEDED
        if error is None:
            logger.info("Job %s (%s) complete", job.id, job.kind)
            return Outcome.COMPLETED
        logger.info("Job %s (%s) failed: %s", job.id, job.kind, error)
        return Outcome.FAILED
    return Outcome.UNRECORDED  # tries < 1: nothing was attempted


class _DeadlineExceeded(Exception):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"deadline exceeded: the handler ran longer than {seconds:g}s")
        self.seconds = seconds


def default_worker_id() -> str:
    """``host:pid:random``, unique per worker object."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    """Runs jobs of the kinds in ``handlers`` from ``queue``.

    ``worker_id`` names the worker in leases (each thread claims as ``<worker_id>/<n>``);
    ``lease`` is how long a claim lasts without a heartbeat; ``poll_interval`` (seconds) is
    the longest wait after finding no runnable job (:meth:`wake` ends it early); ``threads``
    is the number of jobs run at once; ``deadline`` (seconds, None for none) the longest a
    handler may run before the worker gives up on it (see the module docstring);
    ``start_delay`` (seconds) a wait before the threads' first claim, ended early by
    :meth:`wake` (a catalog that opens and closes at once never touches the queue).
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
        deadline: float | None = None,
        start_delay: float = 0.0,
    ) -> None:
        if not handlers:
            raise ConfigurationError("A worker needs at least one job handler")
        if threads < 1:
            raise ConfigurationError("A worker needs at least one thread")
        if lease <= timedelta(0):
            raise ConfigurationError("A worker's lease must be positive")
        if poll_interval < 0:
            raise ConfigurationError("A worker's poll interval must not be negative")
        if deadline is not None and deadline <= 0:
            raise ConfigurationError("A worker's job deadline must be positive")
        self.queue = queue
        self.handlers: dict[str, Handler] = dict(handlers)
        self.worker_id = worker_id or default_worker_id()
        self.lease = lease
        self.poll_interval = poll_interval
        self.threads = threads
        self.heartbeat_interval = (
            heartbeat_interval if heartbeat_interval is not None else lease.total_seconds() / 3
        )
        self.deadline = deadline
        self._stopping = threading.Event()
        self._wakeup = threading.Event()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._busy = 0  # threads between the start of a claim and the end of its job
        self._active: dict[str, str] = {}  # job id -> lease owner
        self._pool: list[threading.Thread] = []
        self._heartbeat: threading.Thread | None = None
        self._heartbeat_stop = threading.Event()
        self._heartbeat_guard = threading.Lock()
        self.start_delay = start_delay
        self.completed = 0
        self.failed = 0
        self.superseded = 0
        self.abandoned = 0

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
        self._wakeup.set()

    def wake(self) -> None:
        """Tell idle worker threads to look for a job now instead of at the next poll."""
        self._wakeup.set()

    @property
    def finished(self) -> int:
        """How many job runs this worker has ended (complete, failed, superseded or given up
        on)."""
        return self.completed + self.failed + self.superseded + self.abandoned

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no worker thread is claiming or running a job; True when idle."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout)

    def stop(self, *, wait: bool = True, timeout: float | None = None) -> bool:
        """Stop claiming jobs; with ``wait``, block until running handlers have finished and
        recorded their outcome. Returns True when every worker thread has ended."""
        if not self._stopping.is_set():
            logger.info("Worker %s stopping", self.worker_id)
        self._stopping.set()
        self._wakeup.set()
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
        try:
            while not self._stopping.is_set() and (max_jobs is None or ran < max_jobs):
                with self._claiming():
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

    @contextmanager
    def _claiming(self) -> Iterator[None]:
        """Count this thread as busy from its claim to the end of the job it got."""
        with self._lock:
            self._busy += 1
        try:
            yield
        finally:
            with self._idle:
                self._busy -= 1
                self._idle.notify_all()

    def _pause(self, seconds: float) -> None:
        """Wait up to ``seconds``, ending early on :meth:`wake` or a stop."""
        if self._wakeup.wait(seconds):
            self._wakeup.clear()

    def _loop(self, owner: str) -> None:
        if self.start_delay:
            self._pause(self.start_delay)
        while not self._stopping.is_set():
            try:
                with self._claiming():
                    job = self.queue.claim(owner, lease=self.lease, kinds=self.handlers)
                    if job is not None:
                        self._execute(job, owner)
            except OpenCatalogError as exc:
                logger.warning("Worker %s could not claim a job: %s", owner, exc)
                self._stopping.wait(max(self.poll_interval, 0.1))
                continue
            except Exception:
                logger.exception("Worker %s: unexpected error while claiming", owner)
                self._stopping.wait(max(self.poll_interval, 0.1))
                continue
            if job is None:
                self._pause(self.poll_interval)
        logger.debug("Worker thread %s ended", owner)

    def _run_handler(self, handler: Handler, job: Job) -> Sequence[StepLog]:
        """Run ``handler``, on a helper thread when there is a deadline; raises
        ``_DeadlineExceeded`` when the handler is still running at the deadline."""
        if self.deadline is None:
            return tuple(handler(job))
        outcome: list[Any] = []

        def target() -> None:
            try:
                outcome.append((True, tuple(handler(job))))
            except BaseException as exc:  # handed to the worker thread below
                outcome.append((False, exc))

        runner = threading.Thread(target=target, name=f"opencatalog-job-{job.id[:8]}", daemon=True)
        runner.start()
        runner.join(self.deadline)
        if runner.is_alive():
            raise _DeadlineExceeded(self.deadline)
        ok, value = outcome[0]
        if not ok:
            raise value
        return value

    def _execute(self, job: Job, owner: str) -> None:
        handler = self.handlers[job.kind]
        self._start_heartbeat()
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
                steps = tuple(self._run_handler(handler, job))
            except _DeadlineExceeded as exc:
                with self._lock:
                    self._active.pop(job.id, None)  # no more heartbeats for this run
                logger.error(
                    "Job %s (%s) attempt %d: the handler passed its deadline of %ss; "
                    "given up on (its late outcome will be dropped)",
                    job.id,
                    job.kind,
                    job.attempts,
                    exc.seconds,
                )
                self.abandoned += 1
                self._finish(job, owner, error=str(exc), steps=(), count=False)
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

    def _finish(
        self,
        job: Job,
        owner: str,
        *,
        error: str | None,
        steps: Sequence[StepLog],
        count: bool = True,
    ) -> None:
        """Record the outcome (``record_outcome``) and count it; ``count=False`` for a run
        whose failure is not the job's (the worker stopped it)."""
        outcome = record_outcome(self.queue, job, owner, error=error, steps=steps)
        if outcome is Outcome.COMPLETED:
            self.completed += 1
        elif count and outcome is Outcome.FAILED:
            self.failed += 1
        elif count and outcome is Outcome.SUPERSEDED:
            self.superseded += 1

    # -- heartbeats ------------------------------------------------------------------------

    def _start_heartbeat(self) -> None:
        """Start the heartbeat thread if it is not running (from the first job on)."""
        with self._heartbeat_guard:
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


# -- jobs inside the catalog's process ------------------------------------------------------


class WakingQueue(TaskQueue):
    """A task queue that tells a callback when new work may be runnable.

    It passes every call to ``queue``. A job enqueued or retried on its own (committed at
    once) calls ``on_work`` right away. A job enqueued inside a caller's unit of work
    (``enqueue_in``) only exists once that unit commits, so it just raises a flag; the
    catalog's after-commit hook calls :meth:`after_commit`, which calls ``on_work`` if the
    flag is up. (A commit of another thread may take the flag first; the poll interval is
    the bound on that rare delay.)
    """

    def __init__(self, queue: TaskQueue, on_work: Callable[[], None]) -> None:
        self.inner = queue
        self._on_work = on_work
        self._flag = threading.Event()

    def after_commit(self) -> None:
        """A write committed: wake the consumer if a job was enqueued inside a unit of work."""
        if self._flag.is_set():
            self._flag.clear()
            self._on_work()

    def accepts(self, uow: object) -> bool:
        inner = self.inner
        return isinstance(inner, SupportsTransactionalEnqueue) and inner.accepts(uow)

    def enqueue_in(
        self,
        uow: Any,
        kind: str,
        payload: Mapping[str, Any],
        *,
        dedupe_key: str | None = None,
        max_attempts: int = 3,
    ) -> Job:
        inner = self.inner
        if not isinstance(inner, SupportsTransactionalEnqueue):  # accepts() said no
            raise ConfigurationError("This queue cannot enqueue inside a unit of work")
        job = inner.enqueue_in(uow, kind, payload, dedupe_key=dedupe_key, max_attempts=max_attempts)
        self._flag.set()
        return job

    def enqueue(
        self,
        kind: str,
        payload: Mapping[str, Any],
        *,
        dedupe_key: str | None = None,
        max_attempts: int = 3,
    ) -> Job:
        job = self.inner.enqueue(kind, payload, dedupe_key=dedupe_key, max_attempts=max_attempts)
        self._on_work()
        return job

    def claim(
        self, worker_id: str, *, lease: timedelta, kinds: Collection[str] | None = None
    ) -> Job | None:
        return self.inner.claim(worker_id, lease=lease, kinds=kinds)

    def heartbeat(self, job_id: str, worker_id: str, lease: timedelta) -> bool:
        return self.inner.heartbeat(job_id, worker_id, lease)

    def complete(self, job_id: str, worker_id: str, steps: Sequence[StepLog] = ()) -> bool:
        return self.inner.complete(job_id, worker_id, steps)

    def fail(self, job_id: str, worker_id: str, error: str, steps: Sequence[StepLog] = ()) -> bool:
        accepted = self.inner.fail(job_id, worker_id, error, steps)
        if accepted:
            self._on_work()  # a retry with no backoff is runnable at once
        return accepted

    def get(self, job_id: str) -> Job | None:
        return self.inner.get(job_id)

    def list(
        self,
        *,
        status: JobStatus | str | None = None,
        kind: str | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> builtins.list[Job]:
        return self.inner.list(status=status, kind=kind, offset=offset, limit=limit)

    def stats(self) -> dict[JobStatus, int]:
        return self.inner.stats()

    def retry(self, job_id: str) -> Job:
        job = self.inner.retry(job_id)
        self._on_work()
        return job

    def close(self) -> None:
        self.inner.close()


class InProcessJobs:
    """The jobs of one catalog, run in the catalog's own process.

    With ``background=True`` a :class:`Worker` thread runs jobs as they come (``wake`` ends
    its idle wait). :meth:`run_pending` runs every runnable job before it returns: in the
    calling thread, and waiting for the background worker's runs, so that afterwards nothing
    is runnable (jobs waiting out a retry backoff are not runnable yet).
    """

    def __init__(
        self,
        queue: TaskQueue,
        handlers: Mapping[str, Handler],
        *,
        background: bool = True,
        threads: int = 1,
        lease: timedelta = timedelta(minutes=5),
        poll_interval: float = 5.0,
        deadline: float | None = None,
    ) -> None:
        self.queue = queue
        self.handlers: dict[str, Handler] = dict(handlers)
        self.deadline = deadline
        self.lease = lease
        self.worker: Worker | None = None
        if background:
            self.worker = Worker(
                queue,
                self.handlers,
                worker_id=f"{default_worker_id()}:in-process",
                lease=lease,
                poll_interval=poll_interval,
                threads=threads,
                deadline=deadline,
                start_delay=min(poll_interval, 1.0),
            )
        self._inline = Worker(
            queue,
            self.handlers,
            worker_id=f"{default_worker_id()}:inline",
            lease=lease,
            poll_interval=poll_interval,
            deadline=deadline,
        )
        self._inline_lock = threading.Lock()
        self._closed = False

    def start(self) -> None:
        """Start the background worker, if there is one."""
        if self.worker is not None and not self.worker.running:
            self.worker.start()

    def wake(self) -> None:
        """New work may be runnable: end the background worker's idle wait."""
        if self.worker is not None:
            self.worker.wake()

    def run_pending(self, *, max_jobs: int | None = None, timeout: float | None = None) -> int:
        """Run jobs until none is runnable and the background worker is idle; return how many
        ran in this thread. ``max_jobs`` caps those; ``timeout`` (seconds) caps the wait for
        the background worker."""
        ran = 0
        with self._inline_lock:
            while True:
                before = self.worker.finished if self.worker is not None else 0
                left = None if max_jobs is None else max_jobs - ran
                if left is not None and left <= 0:
                    return ran
                now_ran = self._inline.run_until_idle(max_jobs=left)
                ran += now_ran
                if self.worker is not None:
                    if not self.worker.wait_idle(timeout):
                        return ran
                    if self.worker.finished != before:
                        continue
                if now_ran == 0:
                    return ran

    def close(self, *, timeout: float | None = None) -> None:
        """Stop the background worker, letting a running job finish (up to ``timeout``)."""
        if self._closed:
            return
        self._closed = True
        if self.worker is not None:
            self.worker.stop(wait=True, timeout=timeout)
