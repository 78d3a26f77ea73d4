"""A worker process for the queue kill test (run as a script, not collected by pytest).

Usage: python _queue_worker.py DB OUT_DIR THREADS LEASE_SECONDS BACKOFF_SECONDS

Runs a ``Worker`` over a ``SqlJobQueue`` on the SQLite file DB until SIGTERM. The ``trivial``
handler appends the job id to ``OUT_DIR/runs-<pid>.log`` and fsyncs before returning (the
side effect); each completion the queue accepts is appended to ``OUT_DIR/acks-<pid>.log``.
The ``poison`` handler always raises.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import TextIO

from opencatalog.adapters.sqlalchemy import SqlAlchemyStorage
from opencatalog.adapters.sqlalchemy.jobs import SqlJobQueue
from opencatalog.domain.jobs import Job, StepLog, StepStatus
from opencatalog.worker import Worker, install_signal_handlers


class _Ledger:
    """Append-only lines, fsynced one by one, shared by the worker threads."""

    def __init__(self, path: str) -> None:
        self._file: TextIO = open(path, "a", encoding="utf-8")  # noqa: SIM115
        self._lock = threading.Lock()

    def write(self, line: str) -> None:
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()
            os.fsync(self._file.fileno())


class _AckingQueue(SqlJobQueue):
    """Records every completion the database accepted."""

    acks: _Ledger

    def complete(self, job_id: str, worker_id: str, steps: Sequence[StepLog] = ()) -> bool:
        accepted = super().complete(job_id, worker_id, steps)
        if accepted:
            self.acks.write(job_id)
        return accepted


def main() -> None:
    db, out, threads, lease, backoff = sys.argv[1:6]
    logging.basicConfig(level=logging.WARNING, format="%(process)d %(levelname)s %(message)s")
    pid = os.getpid()
    runs = _Ledger(os.path.join(out, f"runs-{pid}.log"))
    storage = SqlAlchemyStorage.from_url(f"sqlite:///{db}")
    base = float(backoff)
    queue = _AckingQueue(storage, backoff=lambda n: timedelta(seconds=base * 2 ** (n - 1)))
    queue.acks = _Ledger(os.path.join(out, f"acks-{pid}.log"))

    def trivial(job: Job) -> Sequence[StepLog]:
        runs.write(job.id)
        time.sleep(0.002)  # widen the window between the side effect and the completion
        return [StepLog(name="append", status=StepStatus.OK)]

    def poison(job: Job) -> Sequence[StepLog]:
        raise RuntimeError("poisoned")

    worker = Worker(
        queue,
        {"trivial": trivial, "poison": poison},
        worker_id=f"proc-{pid}",
        lease=timedelta(seconds=float(lease)),
        poll_interval=0.02,
        threads=int(threads),
    )
    install_signal_handlers(worker)
    worker.run()
    storage.close()


if __name__ == "__main__":
    main()
