"""The job worker against the memory queue: success, failure with backoff, poison jobs,
heartbeats, threads and graceful stops."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Sequence
from datetime import timedelta

import pytest

from opencatalog.adapters.memory_queue import MemoryTaskQueue
from opencatalog.domain.jobs import Job, JobFailed, JobStatus, StepLog, StepStatus, next_backoff
from opencatalog.errors import BackendError, ConfigurationError
from opencatalog.testing.queue import ManualClock
from opencatalog.worker import Outcome, Worker, install_signal_handlers, record_outcome

LEASE = timedelta(seconds=60)


def ok(job: Job) -> Sequence[StepLog]:
    return [StepLog(name="fetch", status=StepStatus.OK, message=str(job.payload.get("n")))]


def poison(job: Job) -> Sequence[StepLog]:
    raise RuntimeError(f"poisoned {job.id}")


def wait_for(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.01)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def queue(clock: ManualClock) -> MemoryTaskQueue:
    return MemoryTaskQueue(clock=clock)


def test_successful_jobs_complete_with_their_steps(queue: MemoryTaskQueue) -> None:
    jobs = [queue.enqueue("pipeline", {"n": n}) for n in range(3)]
    worker = Worker(queue, {"pipeline": ok}, worker_id="w", lease=LEASE)
    assert worker.run_until_idle() == 3
    for n, job in enumerate(jobs):
        done = queue.get(job.id)
        assert done is not None and done.status is JobStatus.COMPLETE and done.attempts == 1
        assert done.steps == (StepLog(name="fetch", status="ok", message=str(n)),)
    assert worker.completed == 3 and worker.failed == 0


def test_a_failure_is_retried_after_the_backoff(queue: MemoryTaskQueue, clock: ManualClock) -> None:
    calls: list[int] = []

    def flaky(job: Job) -> Sequence[StepLog]:
        calls.append(job.attempts)
        if job.attempts == 1:
            raise ConnectionError("upstream down")
        return ok(job)

    job = queue.enqueue("pipeline", {"n": 1})
    worker = Worker(queue, {"pipeline": flaky}, worker_id="w", lease=LEASE)
    assert worker.run_until_idle() == 1
    waiting = queue.get(job.id)
    assert waiting is not None and waiting.status is JobStatus.PENDING
    assert waiting.error == "ConnectionError: upstream down"
    assert worker.run_until_idle() == 0  # still backing off
    clock.advance(next_backoff(1))
    assert worker.run_until_idle() == 1
    done = queue.get(job.id)
    assert done is not None and done.status is JobStatus.COMPLETE and done.attempts == 2
    assert calls == [1, 2]


def test_a_poison_job_ends_in_error_after_exactly_max_attempts(
    queue: MemoryTaskQueue, clock: ManualClock
) -> None:
    calls: list[int] = []

    def always_fails(job: Job) -> Sequence[StepLog]:
        calls.append(job.attempts)
        return poison(job)

    job = queue.enqueue("pipeline", {}, max_attempts=3)
    good = queue.enqueue("pipeline", {"n": 2})
    handlers = {"pipeline": lambda j: always_fails(j) if j.id == job.id else ok(j)}
    worker = Worker(queue, handlers, worker_id="w", lease=LEASE)
    for _ in range(10):
        worker.run_until_idle()
        clock.advance(timedelta(hours=1))
    dead = queue.get(job.id)
    assert dead is not None
    assert dead.status is JobStatus.ERROR and dead.attempts == 3
    assert dead.error is not None and "poisoned" in dead.error
    assert calls == [1, 2, 3]
    done = queue.get(good.id)
    assert done is not None and done.status is JobStatus.COMPLETE


def test_job_failed_keeps_the_step_log(queue: MemoryTaskQueue) -> None:
    steps = [
        StepLog(name="fetch", status="ok"),
        StepLog(name="extract", status="error", message="bad csv"),
    ]

    def handler(job: Job) -> Sequence[StepLog]:
        raise JobFailed("extract failed", steps)

    job = queue.enqueue("pipeline", {}, max_attempts=1)
    Worker(queue, {"pipeline": handler}, lease=LEASE).run_until_idle()
    dead = queue.get(job.id)
    assert dead is not None and dead.status is JobStatus.ERROR
    assert dead.error == "extract failed" and dead.steps == tuple(steps)


def test_jobs_of_other_kinds_are_left_alone(queue: MemoryTaskQueue) -> None:
    other = queue.enqueue("thumbnail", {})
    mine = queue.enqueue("pipeline", {})
    assert Worker(queue, {"pipeline": ok}, lease=LEASE).run_until_idle() == 1
    assert queue.get(other.id).status is JobStatus.PENDING  # type: ignore[union-attr]
    assert queue.get(mine.id).status is JobStatus.COMPLETE  # type: ignore[union-attr]


def test_bad_settings_are_refused(queue: MemoryTaskQueue) -> None:
    with pytest.raises(ConfigurationError):
        Worker(queue, {})
    with pytest.raises(ConfigurationError):
        Worker(queue, {"pipeline": ok}, threads=0)
    with pytest.raises(ConfigurationError):
        Worker(queue, {"pipeline": ok}, lease=timedelta(0))


def test_threads_share_the_work_and_stop() -> None:
    queue = MemoryTaskQueue()
    seen: list[str] = []
    lock = threading.Lock()

    def record(job: Job) -> Sequence[StepLog]:
        with lock:
            seen.append(job.id)
        return ()

    ids = {queue.enqueue("pipeline", {"n": n}).id for n in range(100)}
    worker = Worker(queue, {"pipeline": record}, lease=LEASE, poll_interval=0.01, threads=4)
    worker.start()
    wait_for(lambda: queue.stats()[JobStatus.COMPLETE] == 100)
    assert worker.stop(timeout=5) is True
    assert not worker.running
    assert sorted(seen) == sorted(ids)


def test_heartbeats_keep_a_long_job_leased() -> None:
    queue = MemoryTaskQueue()  # real time
    release = threading.Event()

    def slow(job: Job) -> Sequence[StepLog]:
        release.wait(5)
        return ()

    job = queue.enqueue("pipeline", {})
    worker = Worker(
        queue,
        {"pipeline": slow},
        lease=timedelta(seconds=0.3),
        poll_interval=0.01,
        heartbeat_interval=0.05,
    )
    worker.start()
    wait_for(lambda: queue.get(job.id).status is JobStatus.PROCESSING)  # type: ignore[union-attr]
    time.sleep(0.9)  # three leases long
    assert queue.claim("intruder", lease=LEASE) is None
    release.set()
    wait_for(lambda: queue.get(job.id).status is JobStatus.COMPLETE)  # type: ignore[union-attr]
    worker.stop(timeout=5)
    done = queue.get(job.id)
    assert done is not None and done.attempts == 1


def test_stop_lets_the_running_job_finish_and_claims_nothing_new() -> None:
    queue = MemoryTaskQueue()
    entered = threading.Event()
    release = threading.Event()

    def blocking(job: Job) -> Sequence[StepLog]:
        entered.set()
        release.wait(5)
        return ()

    first = queue.enqueue("pipeline", {})
    worker = Worker(queue, {"pipeline": blocking}, lease=LEASE, poll_interval=0.01)
    worker.start()
    assert entered.wait(5)
    second = queue.enqueue("pipeline", {})
    assert worker.stop(wait=False) is False  # still running its job
    release.set()
    assert worker.join(timeout=5) is True
    assert queue.get(first.id).status is JobStatus.COMPLETE  # type: ignore[union-attr]
    assert queue.get(second.id).status is JobStatus.PENDING  # type: ignore[union-attr]


def test_sigterm_stops_the_worker_gracefully() -> None:
    queue = MemoryTaskQueue()
    worker = Worker(queue, {"pipeline": ok}, lease=LEASE, poll_interval=0.01)
    previous = install_signal_handlers(worker, [signal.SIGTERM])
    try:
        worker.start()
        os.kill(os.getpid(), signal.SIGTERM)
        wait_for(lambda: worker.stopping)
        assert worker.join(timeout=5) is True
        assert signal.getsignal(signal.SIGTERM) == previous[signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous[signal.SIGTERM])


def test_a_superseded_run_is_counted_not_recorded(
    queue: MemoryTaskQueue, clock: ManualClock
) -> None:
    job = queue.enqueue("pipeline", {})

    def stalls(j: Job) -> Sequence[StepLog]:
        clock.advance(LEASE * 2)  # the lease runs out while the handler works
        assert queue.claim("other", lease=LEASE) is not None
        return ()

    worker = Worker(queue, {"pipeline": stalls}, lease=LEASE, heartbeat_interval=3600)
    worker.run_until_idle()
    assert worker.superseded == 1 and worker.completed == 0
    current = queue.get(job.id)
    assert current is not None and current.lease_owner == "other" and current.attempts == 2


class _BusyQueue(MemoryTaskQueue):
    """A queue whose ``complete`` and ``fail`` raise a backend error ``busy`` times first."""

    def __init__(self, busy: int, clock: ManualClock) -> None:
        super().__init__(clock=clock)
        self.busy = busy
        self.calls = 0

    def _maybe_busy(self) -> None:
        self.calls += 1
        if self.calls <= self.busy:
            raise BackendError("database is locked")

    def complete(self, job_id: str, worker_id: str, steps: Sequence[StepLog] = ()) -> bool:
        self._maybe_busy()
        return super().complete(job_id, worker_id, steps)

    def fail(self, job_id: str, worker_id: str, error: str, steps: Sequence[StepLog] = ()) -> bool:
        self._maybe_busy()
        return super().fail(job_id, worker_id, error, steps)


@pytest.mark.parametrize(
    ("error", "expected", "status"),
    [(None, Outcome.COMPLETED, JobStatus.COMPLETE), ("boom", Outcome.FAILED, JobStatus.PENDING)],
)
def test_record_outcome_retries_a_busy_queue(
    clock: ManualClock, error: str | None, expected: Outcome, status: JobStatus
) -> None:
    queue = _BusyQueue(busy=2, clock=clock)
    queue.enqueue("pipeline", {})
    job = queue.claim("w", lease=LEASE)
    assert job is not None
    assert record_outcome(queue, job, "w", error=error, tries=3) is expected
    assert queue.calls == 3
    recorded = queue.get(job.id)
    assert recorded is not None and recorded.status is status


def test_record_outcome_gives_up_and_leaves_the_lease_to_run_out(clock: ManualClock) -> None:
    queue = _BusyQueue(busy=10, clock=clock)
    queue.enqueue("pipeline", {})
    job = queue.claim("w", lease=LEASE)
    assert job is not None
    assert record_outcome(queue, job, "w", error=None, tries=2) is Outcome.UNRECORDED
    assert queue.calls == 2
    held = queue.get(job.id)
    assert held is not None and held.status is JobStatus.PROCESSING and held.lease_owner == "w"


def test_record_outcome_of_a_job_another_worker_took_over(
    queue: MemoryTaskQueue, clock: ManualClock
) -> None:
    queue.enqueue("pipeline", {})
    job = queue.claim("w", lease=LEASE)
    assert job is not None
    clock.advance(LEASE * 2)
    assert queue.claim("other", lease=LEASE) is not None
    assert record_outcome(queue, job, "w", error=None) is Outcome.SUPERSEDED
    current = queue.get(job.id)
    assert current is not None and current.lease_owner == "other"
