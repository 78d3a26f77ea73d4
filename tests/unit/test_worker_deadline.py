"""The worker's per-job deadline, and the in-process job runner the catalog uses."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import timedelta

import pytest

from opencatalog.adapters.memory_queue import MemoryTaskQueue
from opencatalog.domain.jobs import Job, JobStatus, StepLog, StepStatus
from opencatalog.errors import ConfigurationError
from opencatalog.worker import InProcessJobs, WakingQueue, Worker

LEASE = timedelta(seconds=60)


def no_backoff(attempts: int) -> timedelta:
    return timedelta(0)


def test_a_hung_handler_is_given_up_on_and_its_job_retried_then_dead_lettered() -> None:
    queue = MemoryTaskQueue(backoff=no_backoff)
    release = threading.Event()
    late: list[str] = []

    def hangs(job: Job) -> Sequence[StepLog]:
        release.wait(30)
        late.append(job.id)
        return [StepLog(name="late", status=StepStatus.OK)]

    job = queue.enqueue("pipeline", {})
    worker = Worker(queue, {"pipeline": hangs}, lease=LEASE, deadline=0.2)
    assert worker.run_until_idle() == 3  # each attempt given up on, then dead-lettered
    done = queue.get(job.id)
    assert done is not None and done.status is JobStatus.ERROR and done.attempts == 3
    assert done.error is not None and "deadline exceeded" in done.error
    assert worker.abandoned == 3 and worker.failed == 0 and worker.completed == 0
    release.set()  # the abandoned handlers return now; their outcome is never recorded
    for thread in threading.enumerate():
        if thread.name.startswith("opencatalog-job-"):
            thread.join(10)
    assert len(late) == 3
    after = queue.get(job.id)
    assert after is not None and after.status is JobStatus.ERROR and after.steps == ()


def test_a_handler_within_its_deadline_completes_normally() -> None:
    queue = MemoryTaskQueue()
    job = queue.enqueue("pipeline", {"n": 1})

    def quick(job: Job) -> Sequence[StepLog]:
        return [StepLog(name="quick", status=StepStatus.OK)]

    worker = Worker(queue, {"pipeline": quick}, lease=LEASE, deadline=30)
    assert worker.run_until_idle() == 1
    done = queue.get(job.id)
    assert done is not None and done.status is JobStatus.COMPLETE
    assert [s.name for s in done.steps] == ["quick"]


def test_a_handler_error_still_fails_the_job_with_a_deadline() -> None:
    queue = MemoryTaskQueue()
    job = queue.enqueue("pipeline", {}, max_attempts=1)

    def broken(job: Job) -> Sequence[StepLog]:
        raise RuntimeError("boom")

    Worker(queue, {"pipeline": broken}, lease=LEASE, deadline=30).run_until_idle()
    done = queue.get(job.id)
    assert done is not None and done.status is JobStatus.ERROR
    assert done.error == "RuntimeError: boom"


def test_a_deadline_must_be_positive() -> None:
    with pytest.raises(ConfigurationError):
        Worker(MemoryTaskQueue(), {"pipeline": lambda job: ()}, deadline=0)


def test_in_process_jobs_run_pending_waits_for_the_background_worker() -> None:
    ran: list[str] = []
    gate = threading.Event()

    def handler(job: Job) -> Sequence[StepLog]:
        gate.wait(30)
        ran.append(job.payload["name"])
        return ()

    jobs: InProcessJobs | None = None
    queue = WakingQueue(MemoryTaskQueue(), lambda: jobs.wake() if jobs else None)
    jobs = InProcessJobs(queue, {"pipeline": handler}, poll_interval=30, deadline=60)
    jobs.start()
    try:
        queue.enqueue("pipeline", {"name": "a"})  # wakes the background worker
        waiter = threading.Thread(target=jobs.run_pending)
        waiter.start()
        queue.enqueue("pipeline", {"name": "b"})
        gate.set()
        waiter.join(30)
        assert not waiter.is_alive()
        assert sorted(ran) == ["a", "b"]
        assert queue.stats()[JobStatus.COMPLETE] == 2
    finally:
        gate.set()
        jobs.close(timeout=30)
    assert jobs.worker is not None and not jobs.worker.running


def test_a_waking_queue_wakes_after_the_commit_of_a_transactional_enqueue() -> None:
    woken: list[int] = []
    queue = WakingQueue(MemoryTaskQueue(), lambda: woken.append(1))
    assert not queue.accepts(object())  # the memory queue has no transactional enqueue
    queue.after_commit()
    assert woken == []  # nothing was enqueued
    queue.enqueue("pipeline", {})
    assert woken == [1]
