"""DU-02/DU-06 in small: worker processes on a SQLite job table, one killed with SIGKILL.

2,000 trivial jobs and one poison job, 4 worker processes (2 threads each). Once a fifth of
the jobs are done, one process is killed with SIGKILL and a replacement started. Checks:

* every trivial job ends ``complete`` and the queue accepted exactly one completion of each;
* a job's side effect repeats only for runs the kill cut short (at-least-once), and those
  jobs show a second attempt;
* the poison job ends in ``error`` after exactly ``max_attempts`` attempts;
* the database passes ``PRAGMA integrity_check``.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from opencatalog.adapters.sqlalchemy import SqlAlchemyStorage
from opencatalog.adapters.sqlalchemy.jobs import SqlJobQueue

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).with_name("_queue_worker.py")
JOBS = 2000
PROCESSES = 4
THREADS = 2
# long enough that a live worker's heartbeat (every third of it) is never late on a busy
# machine: a repeat must come from the kill, not from a lease that ran out under load
LEASE_SECONDS = 6.0
BACKOFF_SECONDS = 0.2
DEADLINE = 50.0


def _start(db: Path, out: Path) -> subprocess.Popen[bytes]:
    args = [sys.executable, str(SCRIPT), str(db), str(out), str(THREADS)]
    args += [str(LEASE_SECONDS), str(BACKOFF_SECONDS)]
    n = len(list(out.glob("stderr-*.log")))
    with open(out / f"stderr-{n}.log", "wb") as stderr:  # a pipe nobody reads would block
        return subprocess.Popen(args, stderr=stderr)


def _counts(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(db, timeout=30)
    try:
        return dict(conn.execute("SELECT status, count(*) FROM job GROUP BY status").fetchall())
    finally:
        conn.close()


def _held_by(db: Path, pid: int) -> set[str]:
    conn = sqlite3.connect(db, timeout=30)
    try:
        rows = conn.execute(
            "SELECT id FROM job WHERE status = 'processing' AND lease_owner LIKE ?",
            (f"proc-{pid}/%",),
        ).fetchall()
    finally:
        conn.close()
    return {row[0] for row in rows}


def _logs(out: Path) -> str:
    texts = [path.read_text()[-2000:] for path in sorted(out.glob("stderr-*.log"))]
    return "\n".join(texts)


def _lines(paths: list[Path]) -> Counter[str]:
    counter: Counter[str] = Counter()
    for path in paths:
        counter.update(line for line in path.read_text().splitlines() if line)
    return counter


def test_killed_workers_lose_no_job_and_complete_none_twice(tmp_path: Path) -> None:
    db = tmp_path / "catalog.db"
    out = tmp_path / "out"
    out.mkdir()
    storage = SqlAlchemyStorage.from_url(f"sqlite:///{db}")
    storage.initialize()
    queue = SqlJobQueue(storage)
    with storage.unit_of_work(write=True) as uow:
        trivial = [queue.enqueue_in(uow, "trivial", {"n": n}).id for n in range(JOBS)]
        poison = queue.enqueue_in(uow, "poison", {}, max_attempts=3).id
        uow.commit()
    storage.close()

    started = time.monotonic()
    procs = [_start(db, out) for _ in range(PROCESSES)]
    victim = procs[0]
    try:
        while _counts(db).get("complete", 0) < JOBS // 5:
            assert time.monotonic() - started < DEADLINE, "workers made no progress"
            time.sleep(0.05)
        # kill mid-run: while the victim holds at least one job
        while not (held := _held_by(db, victim.pid)):
            assert time.monotonic() - started < DEADLINE, "the victim never held a job"
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        procs.append(_start(db, out))
        while True:
            counts = _counts(db)
            if counts.get("complete", 0) == JOBS and counts.get("error", 0) == 1:
                break
            assert time.monotonic() - started < DEADLINE, f"not all jobs terminal: {counts}"
            time.sleep(0.1)
        elapsed = time.monotonic() - started
    finally:
        for proc in procs[1:]:
            proc.send_signal(signal.SIGTERM)
        for proc in procs[1:]:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    assert victim.returncode == -signal.SIGKILL
    for proc in procs[1:]:
        assert proc.returncode == 0, _logs(out)

    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        rows = conn.execute("SELECT id, kind, status, attempts FROM job").fetchall()
    finally:
        conn.close()
    by_id = {row[0]: row for row in rows}
    assert len(rows) == JOBS + 1
    assert {by_id[job_id][2] for job_id in trivial} == {"complete"}
    assert by_id[poison][2:] == ("error", 3)

    victim_runs = out / f"runs-{victim.pid}.log"
    runs = _lines(sorted(out.glob("runs-*.log")))
    acks = _lines(sorted(out.glob("acks-*.log")))
    # every job's side effect happened; the queue accepted at most one completion per job
    assert set(runs) == set(trivial)
    assert max(acks.values()) == 1
    assert set(acks) <= set(trivial)
    assert len(acks) >= JOBS - THREADS  # a kill may land between commit and the ack line
    # repeats come only from runs the kill cut short
    repeated = {job_id for job_id, n in runs.items() if n > 1}
    killed = _lines([victim_runs]) if victim_runs.exists() else Counter()
    detail = {job_id: (runs[job_id], killed[job_id], by_id[job_id][3]) for job_id in repeated}
    logs = _logs(out)
    assert all(runs[job_id] == 2 and job_id in killed for job_id in repeated), (detail, logs)
    assert len(repeated) <= THREADS, (detail, logs)
    retried = {job_id for job_id in trivial if by_id[job_id][3] > 1}
    assert repeated <= retried
    assert retried <= held | killed.keys()
    assert len(retried) <= THREADS
    print(
        f"\n{JOBS} jobs, {PROCESSES} processes x {THREADS} threads, 1 SIGKILL: "
        f"{elapsed:.1f}s, {len(held)} job(s) held at the kill, "
        f"{len(repeated)} repeated side effect(s), {len(retried)} retried job(s)"
    )
