"""Conformance kit for ``TaskQueue`` implementations.

Subclass ``TaskQueueTests`` in a test module and override the ``queue`` fixture to return a
new, empty queue whose clock is the ``clock`` fixture (a :class:`ManualClock` the tests move)::

    class TestMyQueue(TaskQueueTests):
        @pytest.fixture
        def queue(self, clock):
            q = MyQueue.from_url("my://", clock=clock)
            yield q
            q.close()

Queues whose time cannot be injected set ``controllable_clock = False``: the tests that need
to move time are then skipped.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import pytest

from opencatalog.domain.jobs import Job, JobStatus, StepLog, StepStatus, next_backoff
from opencatalog.errors import Conflict, NotFound, ValidationFailed
from opencatalog.ports.queue import TaskQueue

__all__ = ["ManualClock", "TaskQueueTests"]

LEASE = timedelta(seconds=30)


class ManualClock:
    """A clock that stands still until moved: call it for now, ``advance`` to move it.

    Thread-safe; starts at ``start`` (default 2030-01-01 00:00 UTC).
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2030, 1, 1, tzinfo=UTC)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move the clock forward by ``delta``; return the new time."""
        with self._lock:
            self._now += delta
            return self._now


class TaskQueueTests:
    """The ``TaskQueue`` contract (see :mod:`opencatalog.ports.queue`)."""

    controllable_clock: ClassVar[bool] = True

    @pytest.fixture
    def clock(self) -> ManualClock:
        return ManualClock()

    @pytest.fixture
    def queue(self, clock: ManualClock) -> Iterator[TaskQueue]:
        raise NotImplementedError("Override the queue fixture in the subclass")

    def _needs_clock(self) -> None:
        if not self.controllable_clock:
            pytest.skip("This queue's clock cannot be moved")

    # -- enqueue / claim / complete --------------------------------------------------------

    def test_enqueue_makes_a_pending_job_runnable_now(
        self, queue: TaskQueue, clock: ManualClock
    ) -> None:
        job = queue.enqueue("pipeline", {"resource_id": "r1"})
        assert job.status is JobStatus.PENDING
        assert job.kind == "pipeline"
        assert job.payload == {"resource_id": "r1"}
        assert job.attempts == 0 and job.max_attempts == 3
        assert job.lease_owner is None and job.lease_until is None
        assert job.error is None and job.steps == ()
        if self.controllable_clock:
            assert job.run_after == job.created == clock()
        assert queue.get(job.id) == job

    def test_payload_is_copied(self, queue: TaskQueue) -> None:
        payload = {"resource_id": "r1", "options": {"deep": [1, 2]}}
        job = queue.enqueue("pipeline", payload)
        payload["options"]["deep"].append(3)  # type: ignore[index]
        payload["resource_id"] = "changed"
        stored = queue.get(job.id)
        assert stored is not None
        assert stored.payload == {"resource_id": "r1", "options": {"deep": [1, 2]}}

    def test_claim_then_complete(self, queue: TaskQueue, clock: ManualClock) -> None:
        job = queue.enqueue("pipeline", {"n": 1})
        claimed = queue.claim("w1", lease=LEASE)
        assert claimed is not None and claimed.id == job.id
        assert claimed.status is JobStatus.PROCESSING
        assert claimed.attempts == 1
        assert claimed.lease_owner == "w1"
        if self.controllable_clock:
            assert claimed.lease_until == clock() + LEASE
        assert queue.claim("w2", lease=LEASE) is None
        start = datetime(2030, 1, 1, tzinfo=UTC)
        steps = [
            StepLog(name="fetch", status=StepStatus.OK, started=start, finished=start),
            StepLog(name="extract", status="skipped", message="not tabular"),
        ]
        assert queue.complete(job.id, "w1", steps) is True
        done = queue.get(job.id)
        assert done is not None
        assert done.status is JobStatus.COMPLETE
        assert done.steps == tuple(steps)
        assert done.lease_owner is None and done.lease_until is None
        assert queue.claim("w1", lease=LEASE) is None
        assert queue.complete(job.id, "w1") is False

    def test_claim_from_an_empty_queue(self, queue: TaskQueue) -> None:
        assert queue.claim("w1", lease=LEASE) is None

    def test_claim_takes_the_oldest_first(self, queue: TaskQueue) -> None:
        ids = [queue.enqueue("pipeline", {"n": n}).id for n in range(5)]
        claimed = [queue.claim("w", lease=LEASE) for _ in range(5)]
        assert [job.id for job in claimed if job] == ids

    def test_claim_only_the_kinds_asked_for(self, queue: TaskQueue) -> None:
        a = queue.enqueue("a", {})
        b = queue.enqueue("b", {})
        assert queue.claim("w", lease=LEASE, kinds=["c"]) is None
        assert queue.claim("w", lease=LEASE, kinds=[]) is None
        got = queue.claim("w", lease=LEASE, kinds={"b"})
        assert got is not None and got.id == b.id
        got = queue.claim("w", lease=LEASE, kinds=("a", "b"))
        assert got is not None and got.id == a.id

    def test_bad_arguments_are_refused(self, queue: TaskQueue) -> None:
        with pytest.raises(ValidationFailed):
            queue.enqueue("", {})
        with pytest.raises(ValidationFailed):
            queue.enqueue("pipeline", {}, max_attempts=0)
        with pytest.raises(ValidationFailed):
            queue.claim("w", lease=timedelta(0))
        with pytest.raises(ValidationFailed):
            queue.list(limit=0)
        with pytest.raises(ValidationFailed):
            queue.list(offset=-1)

    def test_unknown_jobs(self, queue: TaskQueue) -> None:
        assert queue.get("no-such-job") is None
        assert queue.complete("no-such-job", "w") is False
        assert queue.fail("no-such-job", "w", "boom") is False
        assert queue.heartbeat("no-such-job", "w", LEASE) is False
        with pytest.raises(NotFound):
            queue.retry("no-such-job")

    # -- dedupe ------------------------------------------------------------------------------

    def test_a_pending_job_with_the_same_dedupe_key_is_not_duplicated(
        self, queue: TaskQueue
    ) -> None:
        first = queue.enqueue("pipeline", {"resource_id": "r1"}, dedupe_key="r1:abc")
        again = queue.enqueue("pipeline", {"resource_id": "r1"}, dedupe_key="r1:abc")
        other = queue.enqueue("pipeline", {"resource_id": "r2"}, dedupe_key="r2:abc")
        plain = queue.enqueue("pipeline", {"resource_id": "r1"})
        assert again == first
        assert len({first.id, other.id, plain.id}) == 3
        assert queue.stats()[JobStatus.PENDING] == 3

    def test_a_processing_job_does_not_absorb_new_work(self, queue: TaskQueue) -> None:
        first = queue.enqueue("pipeline", {}, dedupe_key="r1")
        claimed = queue.claim("w", lease=LEASE)
        assert claimed is not None and claimed.id == first.id
        second = queue.enqueue("pipeline", {}, dedupe_key="r1")
        assert second.id != first.id
        assert queue.enqueue("pipeline", {}, dedupe_key="r1").id == second.id
        # the first goes back to pending beside the second: both are kept
        assert queue.fail(first.id, "w", "boom") is True
        assert queue.enqueue("pipeline", {}, dedupe_key="r1").id == first.id  # the oldest
        assert queue.stats()[JobStatus.PENDING] == 2

    # -- leases ------------------------------------------------------------------------------

    def test_a_valid_lease_keeps_others_away(self, queue: TaskQueue, clock: ManualClock) -> None:
        self._needs_clock()
        queue.enqueue("pipeline", {})
        assert queue.claim("w1", lease=LEASE) is not None
        clock.advance(LEASE - timedelta(seconds=1))
        assert queue.claim("w2", lease=LEASE) is None

    def test_an_expired_lease_is_claimed_again_and_the_stale_worker_is_refused(
        self, queue: TaskQueue, clock: ManualClock
    ) -> None:
        self._needs_clock()
        job = queue.enqueue("pipeline", {})
        assert queue.claim("w1", lease=LEASE) is not None
        clock.advance(LEASE + timedelta(seconds=1))
        again = queue.claim("w2", lease=LEASE)
        assert again is not None and again.id == job.id
        assert again.attempts == 2 and again.lease_owner == "w2"
        assert queue.heartbeat(job.id, "w1", LEASE) is False
        assert queue.complete(job.id, "w1") is False
        assert queue.fail(job.id, "w1", "late") is False
        current = queue.get(job.id)
        assert current is not None and current.status is JobStatus.PROCESSING
        assert current.lease_owner == "w2"
        assert queue.complete(job.id, "w2") is True
        assert queue.complete(job.id, "w2") is False
        done = queue.get(job.id)
        assert done is not None and done.status is JobStatus.COMPLETE and done.attempts == 2

    def test_the_owner_may_finish_after_expiry_if_nobody_claimed(
        self, queue: TaskQueue, clock: ManualClock
    ) -> None:
        self._needs_clock()
        job = queue.enqueue("pipeline", {})
        assert queue.claim("w1", lease=LEASE) is not None
        clock.advance(LEASE * 2)
        assert queue.complete(job.id, "w1") is True
        assert queue.claim("w2", lease=LEASE) is None

    def test_heartbeat_extends_the_lease(self, queue: TaskQueue, clock: ManualClock) -> None:
        self._needs_clock()
        job = queue.enqueue("pipeline", {})
        assert queue.claim("w1", lease=LEASE) is not None
        clock.advance(LEASE - timedelta(seconds=5))
        assert queue.heartbeat(job.id, "w1", LEASE) is True
        assert queue.heartbeat(job.id, "w2", LEASE) is False
        current = queue.get(job.id)
        assert current is not None and current.lease_until == clock() + LEASE
        clock.advance(LEASE - timedelta(seconds=5))
        assert queue.claim("w2", lease=LEASE) is None
        clock.advance(timedelta(seconds=6))
        reclaimed = queue.claim("w2", lease=LEASE)
        assert reclaimed is not None and reclaimed.id == job.id

    def test_an_expired_last_attempt_ends_in_error(
        self, queue: TaskQueue, clock: ManualClock
    ) -> None:
        self._needs_clock()
        job = queue.enqueue("pipeline", {}, max_attempts=2)
        for _ in range(2):
            assert queue.claim("w", lease=LEASE) is not None
            clock.advance(LEASE + timedelta(seconds=1))
        assert queue.claim("w", lease=LEASE) is None
        dead = queue.get(job.id)
        assert dead is not None
        assert dead.status is JobStatus.ERROR and dead.attempts == 2
        assert dead.error
        assert queue.complete(job.id, "w") is False

    # -- failures, backoff, dead letter, retry -------------------------------------------------

    def test_failures_back_off_then_end_in_error(
        self, queue: TaskQueue, clock: ManualClock
    ) -> None:
        self._needs_clock()
        job = queue.enqueue("pipeline", {"resource_id": "r1"}, max_attempts=3)
        for attempt in (1, 2):
            claimed = queue.claim("w", lease=LEASE)
            assert claimed is not None and claimed.attempts == attempt
            step = StepLog(name="fetch", status=StepStatus.ERROR, message=f"boom {attempt}")
            assert queue.fail(job.id, "w", f"boom {attempt}", [step]) is True
            waiting = queue.get(job.id)
            assert waiting is not None
            assert waiting.status is JobStatus.PENDING
            assert waiting.error == f"boom {attempt}"
            assert waiting.steps == (step,)
            assert waiting.lease_owner is None
            assert waiting.run_after == clock() + next_backoff(attempt)
            clock.advance(next_backoff(attempt) - timedelta(seconds=1))
            assert queue.claim("w", lease=LEASE) is None
            clock.advance(timedelta(seconds=1))
        last = queue.claim("w", lease=LEASE)
        assert last is not None and last.attempts == 3
        assert queue.fail(job.id, "w", "boom 3") is True
        dead = queue.get(job.id)
        assert dead is not None
        assert dead.status is JobStatus.ERROR and dead.attempts == 3 and dead.error == "boom 3"
        clock.advance(timedelta(days=1))
        assert queue.claim("w", lease=LEASE) is None

    def test_retry_brings_an_error_job_back(self, queue: TaskQueue) -> None:
        job = queue.enqueue("pipeline", {}, max_attempts=1)
        assert queue.claim("w", lease=LEASE) is not None
        with pytest.raises(Conflict):
            queue.retry(job.id)
        assert queue.fail(job.id, "w", "boom") is True
        retried = queue.retry(job.id)
        assert retried.id == job.id
        assert retried.status is JobStatus.PENDING
        assert retried.attempts == 0 and retried.error is None
        again = queue.claim("w", lease=LEASE)
        assert again is not None and again.id == job.id and again.attempts == 1
        assert queue.complete(job.id, "w") is True
        with pytest.raises(Conflict):
            queue.retry(job.id)

    def test_retry_defers_to_fresh_pending_work_with_the_same_key(self, queue: TaskQueue) -> None:
        job = queue.enqueue("pipeline", {}, dedupe_key="r1", max_attempts=1)
        assert queue.claim("w", lease=LEASE) is not None
        assert queue.fail(job.id, "w", "boom") is True
        fresh = queue.enqueue("pipeline", {}, dedupe_key="r1")
        assert fresh.id != job.id
        assert queue.retry(job.id).id == fresh.id
        failed = queue.get(job.id)
        assert failed is not None and failed.status is JobStatus.ERROR

    # -- inspection --------------------------------------------------------------------------

    def test_stats_count_every_status(self, queue: TaskQueue) -> None:
        assert queue.stats() == dict.fromkeys(JobStatus, 0)
        jobs = [queue.enqueue("pipeline", {"n": n}, max_attempts=1) for n in range(4)]
        first = queue.claim("w", lease=LEASE)
        second = queue.claim("w", lease=LEASE)
        third = queue.claim("w", lease=LEASE)
        assert first and second and third
        assert queue.complete(first.id, "w")
        assert queue.fail(second.id, "w", "boom")
        assert queue.stats() == {
            JobStatus.PENDING: 1,
            JobStatus.PROCESSING: 1,
            JobStatus.COMPLETE: 1,
            JobStatus.ERROR: 1,
        }
        assert [j.id for j in queue.list(status="error")] == [jobs[1].id]
        assert [j.id for j in queue.list(status=JobStatus.PENDING)] == [jobs[3].id]

    def test_list_in_enqueue_order_with_filters_and_pages(self, queue: TaskQueue) -> None:
        jobs: list[Job] = []
        for n in range(12):
            jobs.append(queue.enqueue("a" if n % 3 else "b", {"n": n}))
        assert [j.id for j in queue.list()] == [j.id for j in jobs]
        assert [j.id for j in queue.list(offset=5, limit=4)] == [j.id for j in jobs[5:9]]
        assert [j.id for j in queue.list(kind="b")] == [j.id for j in jobs[::3]]
        assert queue.list(kind="b", status="complete") == []
        assert queue.list(offset=100) == []

    # -- concurrency -------------------------------------------------------------------------

    def test_concurrent_claims_take_every_job_exactly_once(self, queue: TaskQueue) -> None:
        total, threads = 200, 4
        ids = {queue.enqueue("pipeline", {"n": n}).id for n in range(total)}
        claims: list[list[str]] = [[] for _ in range(threads)]
        refused: list[str] = []
        errors: list[BaseException] = []
        start = threading.Barrier(threads)

        def work(slot: int) -> None:
            try:
                start.wait()
                worker = f"w{slot}"
                while (job := queue.claim(worker, lease=timedelta(hours=1))) is not None:
                    claims[slot].append(job.id)
                    if not queue.complete(job.id, worker):
                        refused.append(job.id)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        pool = [threading.Thread(target=work, args=(slot,)) for slot in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join(120)
        assert errors == []
        counts = Counter(job_id for slot in claims for job_id in slot)
        assert set(counts) == ids
        assert max(counts.values()) == 1
        assert refused == []
        assert queue.stats()[JobStatus.COMPLETE] == total
