"""Helpers of the Celery queue tests: a test's place on a broker, recording job handlers, a
Celery worker in a thread and a bounded wait."""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from celery import bootsteps
from celery.contrib.testing.worker import start_worker
from kombu import Connection
from opencatalog.domain.jobs import Job, StepLog

from opencatalog_celery import CeleryTaskQueue

#: Celery settings of every test queue: no remote-control or event queues on the broker.
TEST_CONFIG: dict[str, Any] = {
    "worker_enable_remote_control": False,
    "worker_send_task_events": False,
    "broker_connection_timeout": 3,
}


class Broker:
    """One test's place on a broker: ``url``, ``queue_name`` and Celery ``config``."""

    def __init__(self, kind: str, url: str) -> None:
        token = secrets.token_hex(6)
        self.kind = kind
        self.url = url
        self.queue_name = f"octest_{token}"
        self.config: dict[str, Any] = dict(TEST_CONFIG)
        self.key_prefix = f"octest_{token}:"
        if kind == "redis":
            self.config["broker_transport_options"] = {"global_keyprefix": self.key_prefix}
        elif kind == "memory":  # a polling transport: poll often
            self.config["broker_transport_options"] = {"polling_interval": 0.02}

    @property
    def queue_url(self) -> str:
        """The ``celery+...`` URL of this broker and queue."""
        sep = "&" if "?" in self.url else "?"
        return f"celery+{self.url}{sep}queue={self.queue_name}"

    def cleanup(self) -> None:
        if self.kind == "rabbitmq":
            with Connection(self.url, connect_timeout=3) as connection:
                channel = connection.channel()
                channel.queue_delete(self.queue_name)
                channel.exchange_delete(self.queue_name)
        elif self.kind == "redis":
            import redis

            client = redis.Redis.from_url(self.url)
            try:
                keys = list(client.scan_iter(match=f"{self.key_prefix}*"))
                if keys:
                    client.delete(*keys)
            finally:
                client.close()
        # memory://: the transport's queues go with the process


class Recorder:
    """Job handlers that record every run: ``count`` succeeds, ``poison`` always raises."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.runs: Counter[str] = Counter()

    def count(self, job: Job) -> list[StepLog]:
        with self._lock:
            self.runs[job.id] += 1
        return [StepLog(name="count", status="ok")]

    def poison(self, job: Job) -> list[StepLog]:
        with self._lock:
            self.runs[job.id] += 1
        raise RuntimeError("poisoned")

    @property
    def handlers(self) -> dict[str, Callable[[Job], list[StepLog]]]:
        return {"count": self.count, "poison": self.poison}


class _Tick(bootsteps.StartStopStep):
    """Wakes the worker's event loop every 0.2 s, so a stop requested from another thread is
    seen at once (an idle loop otherwise sleeps until its next timer, up to 10 s)."""

    requires = {"celery.worker.components:Timer"}

    def start(self, worker: Any) -> None:
        worker.timer.call_repeatedly(0.2, _nothing)


def _nothing() -> None:
    return None


@contextmanager
def celery_worker(queue: CeleryTaskQueue, *, concurrency: int = 4) -> Iterator[Any]:
    """A Celery worker on ``queue.app`` in a thread (pool ``threads``), stopped on exit."""
    if _Tick not in queue.app.steps["worker"]:
        queue.app.steps["worker"].add(_Tick)
    with start_worker(
        queue.app,
        pool="threads",
        concurrency=concurrency,
        perform_ping_check=False,
        shutdown_timeout=30,
        loglevel="WARNING",
    ) as worker:
        yield worker


def wait_for(condition: Callable[[], bool], *, timeout: float = 45, what: str = "") -> None:
    """Poll ``condition`` until it holds; fail with ``what`` if it still does not after
    ``timeout`` seconds (a bound on a hung test, not a performance assertion)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"Gave up waiting: {what}")
        time.sleep(0.05)


TINY_BACKOFF = timedelta(milliseconds=100)


def _ok(job: Job) -> list[StepLog]:
    return [StepLog(name="count", status="ok")]


#: The handlers the ``opencatalog-celery worker`` test loads by name.
CLI_HANDLERS: dict[str, Callable[[Job], list[StepLog]]] = {"count": _ok}
