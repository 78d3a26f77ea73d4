"""End to end: a real Celery worker (in a thread, pool ``threads``) on RabbitMQ and on Redis
runs the jobs; their state is in a SQLite catalog database.

Each test runs once per broker. Waiting is bounded only to fail a hung test, never to judge
speed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from opencatalog.adapters.sqlalchemy import SqlAlchemyStorage
from opencatalog.adapters.sqlalchemy.jobs import SqlJobQueue
from opencatalog.domain.jobs import JobStatus

from oc_celery_helpers import TINY_BACKOFF, Broker, Recorder, celery_worker, wait_for
from opencatalog_celery import TASK_SWEEP, CeleryTaskQueue

TOTAL = 200
HERE = Path(__file__).parent


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def _queue(broker: Broker, storage: SqlAlchemyStorage, recorder: Recorder) -> CeleryTaskQueue:
    q = CeleryTaskQueue.from_url(
        f"{broker.queue_url}&sweep_grace=0",
        storage=storage,
        backoff=lambda attempts: TINY_BACKOFF,
        config=broker.config,
    )
    q.bind(recorder.handlers)
    return q


@pytest.fixture
def queue(
    broker: Broker, sqlite_storage: SqlAlchemyStorage, recorder: Recorder
) -> Iterator[CeleryTaskQueue]:
    q = _queue(broker, sqlite_storage, recorder)
    yield q
    q.close()


def _done(queue: CeleryTaskQueue, count: int) -> bool:
    stats = queue.stats()
    return stats[JobStatus.COMPLETE] + stats[JobStatus.ERROR] >= count


def test_every_job_completes_exactly_once(
    queue: CeleryTaskQueue, sqlite_storage: SqlAlchemyStorage, recorder: Recorder
) -> None:
    ids = [queue.enqueue("count", {"n": n}).id for n in range(TOTAL // 4)]  # before the worker
    with celery_worker(queue):
        ids += [queue.enqueue("count", {"n": n}).id for n in range(TOTAL // 4, TOTAL // 2)]
        # the other half as services enqueue: in their transaction, announced after the commit
        for batch in range(TOTAL // 20):
            with sqlite_storage.unit_of_work(write=True) as uow:
                for n in range(10):
                    ids.append(queue.enqueue_in(uow, "count", {"batch": batch, "n": n}).id)
                uow.commit()
            queue.notify()
        with sqlite_storage.unit_of_work(write=True) as uow:
            queue.enqueue_in(uow, "count", {"n": "rolled back"})
            uow.rollback()
        wait_for(lambda: _done(queue, TOTAL), what=f"{TOTAL} jobs done: {queue.stats()}")
    assert len(set(ids)) == TOTAL
    assert recorder.runs == dict.fromkeys(ids, 1)
    assert queue.stats() == {
        JobStatus.PENDING: 0,
        JobStatus.PROCESSING: 0,
        JobStatus.COMPLETE: TOTAL,
        JobStatus.ERROR: 0,
    }
    jobs = queue.list(limit=TOTAL)
    assert {job.attempts for job in jobs} == {1}
    assert all(job.steps and job.steps[0].name == "count" for job in jobs)


def test_a_poisoned_job_stops_after_max_attempts(
    queue: CeleryTaskQueue, recorder: Recorder
) -> None:
    with celery_worker(queue):
        poisoned = queue.enqueue("poison", {}, max_attempts=3)
        wait_for(
            lambda: (job := queue.get(poisoned.id)) is not None and job.status.terminal,
            what="the poisoned job to end",
        )
        healthy = queue.enqueue("count", {})  # the worker goes on with other work
        wait_for(lambda: _done(queue, 2), what="the healthy job to run")
    dead = queue.get(poisoned.id)
    assert dead is not None
    assert dead.status is JobStatus.ERROR
    assert dead.attempts == 3
    assert dead.error == "RuntimeError: poisoned"
    assert recorder.runs[poisoned.id] == 3
    done = queue.get(healthy.id)
    assert done is not None and done.status is JobStatus.COMPLETE


def test_jobs_whose_wake_up_was_lost_run_after_a_sweep(
    queue: CeleryTaskQueue, recorder: Recorder
) -> None:
    stranded = queue.enqueue("count", {"lost": "worker"})
    lost = queue.enqueue("count", {"lost": "message"})
    assert queue.app.control.purge() == 2  # the broker forgets both wake-ups
    assert queue.waiting() == 0
    # a worker claims one with a short lease and dies: it never heartbeats nor finishes
    claimed = queue.claim("dead-worker", lease=TINY_BACKOFF)
    assert claimed is not None and claimed.id == stranded.id
    wait_for(
        lambda: claimed.lease_until is not None and queue.now() > claimed.lease_until,
        what="the dead worker's lease to run out",
    )
    with celery_worker(queue):
        queue.app.send_task(TASK_SWEEP)  # what beat does every sweep_interval
        wait_for(lambda: _done(queue, 2), what=f"both jobs done: {queue.stats()}")
    again, late = queue.get(stranded.id), queue.get(lost.id)
    assert again is not None and again.status is JobStatus.COMPLETE and again.attempts == 2
    assert late is not None and late.status is JobStatus.COMPLETE and late.attempts == 1
    assert recorder.runs == {stranded.id: 1, lost.id: 1}


def test_a_worker_on_the_memory_broker(
    memory_broker: Broker, sqlite_storage: SqlAlchemyStorage, recorder: Recorder
) -> None:
    """The same path without a broker server (kombu's in-process transport)."""
    q = _queue(memory_broker, sqlite_storage, recorder)
    try:
        with celery_worker(q):
            ids = [q.enqueue("count", {"n": n}).id for n in range(20)]
            poisoned = q.enqueue("poison", {}, max_attempts=2)
            wait_for(lambda: _done(q, 21), what=f"21 jobs done: {q.stats()}")
        assert recorder.runs == {**dict.fromkeys(ids, 1), poisoned.id: 2}
        dead = q.get(poisoned.id)
        assert dead is not None and dead.status is JobStatus.ERROR
    finally:
        q.close()


@pytest.mark.redis
def test_the_worker_command(redis_server: str, tmp_path: Path) -> None:
    """``opencatalog-celery worker`` in its own process runs jobs that were stored while no
    worker ran (its start-up sweep wakes them), then stops gracefully on SIGTERM."""
    broker = Broker("redis", redis_server)
    storage_url = f"sqlite:///{tmp_path / 'catalog.db'}"
    storage = SqlAlchemyStorage.from_url(storage_url)
    storage.initialize()
    state = SqlJobQueue(storage)
    ids = [state.enqueue("count", {"n": n}).id for n in range(5)]  # no wake-ups
    env = {
        **os.environ,
        "OPENCATALOG_STORAGE": storage_url,
        "OPENCATALOG_QUEUE": broker.queue_url,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    command = [
        sys.executable,
        "-m",
        "opencatalog_celery.cli",
        "--log-level",
        "WARNING",
        "worker",
        "--handlers",
        "oc_celery_helpers:CLI_HANDLERS",
        "--concurrency",
        "2",
        "--setting",
        "worker_enable_remote_control=false",
        "--setting",
        "broker_transport_options=" + json.dumps(broker.config["broker_transport_options"]),
    ]
    try:
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        try:
            wait_for(
                lambda: state.stats()[JobStatus.COMPLETE] == len(ids) or process.poll() is not None,
                what="the worker command to run the jobs",
            )
        finally:
            process.send_signal(signal.SIGTERM)
            output, _ = process.communicate(timeout=60)
        assert process.returncode == 0, output
        assert "Warm shutdown" in output
        assert {job.status for job in state.list()} == {JobStatus.COMPLETE}
    finally:
        storage.close()
        broker.cleanup()
