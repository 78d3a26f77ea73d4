"""Crash durability: SIGKILL a writing process at random moments (reliability.md 5.E, DU-01).

A child process (``_writer.py``) opens a catalog and writes without pause: datasets created
with 3 resources and tags, patches (notes, extras, tags), resource adds, resource deletes
(renumbering positions) and dataset deletes. Before each write it prints the exact state the
dataset will have if the write is applied, and after the call returns it prints an
acknowledgement. The parent kills it with SIGKILL at a random moment, reopens the catalog and
checks, for every dataset the writers ever touched:

* acknowledged writes survive: the dataset is in its last acknowledged state, or in the state
  of the one write that was in flight at the kill (the writer is sequential, so that is the
  only "later" state possible) — nothing in between: no partial write;
* structure: resource positions 0..n-1, every resource found by id (a separate table in the
  SQL schema), one activity per revision (revisions 1..n, the newest one a snapshot of the
  stored dataset), the run's tag lists exactly the run's datasets;
* nothing unexplained: the catalog holds exactly the datasets of the ledger;
* SQLite: ``PRAGMA integrity_check`` is ``ok`` and ``PRAGMA foreign_key_check`` is empty;
  the folder's search index catches up on open (no drift).

The same folder is reused across kills so state accumulates and every earlier run is checked
again at the end; a few fresh folders take a kill that may land during start-up (schema
creation). ``test_checker_detects_*`` show that the checker catches a lost write and a
half-written dataset.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from opencatalog import open_catalog
from opencatalog.domain.commands import DatasetInput, ResourceInput
from opencatalog.errors import NotFound
from opencatalog.services.catalog import Catalog

pytestmark = pytest.mark.slow

WRITER = Path(__file__).with_name("_writer.py")
HASH_PARAMS = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}
READY_TIMEOUT = 60.0  # seconds for the child to open the catalog
KILL_DELAY = (0.05, 0.5)  # seconds after "ready"

SQLITE_KILLS_SHARED = 50  # kills on one folder catalog whose state accumulates
SQLITE_KILLS_STORAGE_ONLY = 20  # the same without the search index
SQLITE_FRESH_FOLDERS = 4  # fresh folders, 2 kills each (the first one timed from spawn)
POSTGRES_KILLS = 10

State = dict[str, Any]


# -- the ledger -------------------------------------------------------------------------------


class Run:
    """What one writer process printed before it was killed."""

    def __init__(self, log: str) -> None:
        self.ready = False
        self.acked: dict[str, State] = {}  # dataset id -> last acknowledged state
        self.ops: Counter[str] = Counter()  # acknowledged writes by operation
        self.inflight: tuple[str, str, State] | None = None  # (op, id, state) not acked
        self.problems: list[str] = []
        pending: tuple[int, str, str, State] | None = None
        # a trailing line without newline was cut by the kill: not printed, not acked
        for line in log.split("\n")[:-1]:
            msg = json.loads(line)
            if "ready" in msg:
                self.ready = True
            elif "intent" in msg:
                if pending is not None:
                    self.problems.append(f"intent {msg['intent']} before ack of {pending[0]}")
                pending = (msg["intent"], msg["op"], msg["id"], msg["state"])
            elif "ack" in msg:
                if pending is None or pending[0] != msg["ack"]:
                    self.problems.append(f"ack {msg['ack']} without its intent")
                    continue
                _, op, ds_id, state = pending
                self.acked[ds_id] = state
                self.ops[op] += 1
                pending = None
        if pending is not None:
            self.inflight = pending[1:]

    @property
    def writes(self) -> int:
        return sum(self.ops.values())


class Ledger:
    """Every dataset the writers touched, with the states it may be in now."""

    def __init__(self) -> None:
        self.allowed: dict[str, list[State | None]] = {}
        self.kills = 0
        self.before_ready = 0
        self.checked = 0
        self.acked_writes = 0
        self.inflight_applied = 0
        self.inflight_not_applied = 0
        self.ops: Counter[str] = Counter()

    def add_run(self, run: Run) -> set[str]:
        """Record a killed run; returns the ids it touched."""
        assert run.problems == []
        self.kills += 1
        self.before_ready += not run.ready
        self.acked_writes += run.writes
        self.ops.update(run.ops)
        for ds_id, state in run.acked.items():
            self.allowed[ds_id] = [state]
        touched = set(run.acked)
        if run.inflight is not None:
            op, ds_id, state = run.inflight
            if op == "create":
                self.allowed[ds_id] = [None, state]
            else:
                self.allowed[ds_id] = [*self.allowed[ds_id], state]
            touched.add(ds_id)
        return touched

    def settle(
        self, observed: dict[str, State | None], inflight: tuple[str, str, State] | None
    ) -> None:
        """After a check: the observed state is now the only one allowed."""
        for ds_id, state in observed.items():
            self.allowed[ds_id] = [state]
        if inflight is not None:
            if observed.get(inflight[1]) == inflight[2]:
                self.inflight_applied += 1
            else:
                self.inflight_not_applied += 1


# -- the checker ------------------------------------------------------------------------------


def observe(cat: Catalog, ds_id: str) -> State | None:
    try:
        ds = cat.datasets.get(ds_id)
    except NotFound:
        return None
    return {
        "name": ds.name,
        "revision": ds.revision,
        "state": ds.state.value,
        "notes": ds.notes,
        "extras": dict(ds.extras),
        "tags": sorted(t.name for t in ds.tags),
        "resources": [[r.id, r.name] for r in ds.resources],
    }


def structure_problems(cat: Catalog, ds_id: str) -> list[str]:
    """What is inconsistent inside one stored dataset (empty when it is whole)."""
    problems: list[str] = []
    ds = cat.datasets.get(ds_id)
    where = f"{ds.name} ({ds_id})"
    positions = [r.position for r in ds.resources]
    if positions != list(range(len(ds.resources))):
        problems.append(f"{where}: resource positions {positions}")
    for r in ds.resources:
        try:
            found = cat.resources.get(r.id)
        except NotFound:
            problems.append(f"{where}: resource {r.id} not found by id")
            continue
        if found.package_id != ds.id or found.position != r.position:
            problems.append(
                f"{where}: resource {r.id} found as {found.package_id}/{found.position}"
            )
    activities = cat.activities.for_dataset(ds_id, limit=1000)
    revisions = sorted(a.data.get("revision") for a in activities)
    if revisions != list(range(1, ds.revision + 1)):
        problems.append(f"{where}: revision {ds.revision} but activities for {revisions}")
    elif activities:
        newest = max(activities, key=lambda a: a.data["revision"])
        snap = newest.data
        if (
            snap.get("notes") != ds.notes
            or [r["id"] for r in snap.get("resources", [])] != [r.id for r in ds.resources]
            or snap.get("state") != ds.state.value
        ):
            problems.append(f"{where}: newest activity is not a snapshot of the stored dataset")
        expected_type = "dataset.deleted" if ds.state.value == "deleted" else None
        if expected_type and newest.activity_type != expected_type:
            problems.append(f"{where}: newest activity {newest.activity_type} for a deleted one")
    return problems


def check_catalog(
    cat: Catalog, ledger: Ledger, ids: set[str], run_tags: dict[str, set[str]]
) -> tuple[list[str], dict[str, State | None]]:
    """Compare the catalog with the ledger for ``ids``; whole-catalog checks too."""
    problems: list[str] = []
    observed: dict[str, State | None] = {}
    for ds_id in sorted(ids):
        state = observe(cat, ds_id)
        observed[ds_id] = state
        allowed = ledger.allowed[ds_id]
        if state not in allowed:
            problems.append(
                f"{ds_id}: stored {json.dumps(state, sort_keys=True)},"
                f" allowed {json.dumps(allowed, sort_keys=True)}"
            )
        if state is not None:
            problems.extend(structure_problems(cat, ds_id))
    # nothing unexplained: the catalog holds exactly the datasets the ledger allows
    page = cat.datasets.list(include_private=True, include_drafts=True, include_deleted=True)
    stored_ids = {ds.id for ds in page.items}
    may_exist = {i for i, allowed in ledger.allowed.items() if any(s is not None for s in allowed)}
    must_exist = {i for i, allowed in ledger.allowed.items() if None not in allowed}
    if stored_ids - may_exist:
        problems.append(f"datasets no write created: {sorted(stored_ids - may_exist)[:5]}")
    if must_exist - stored_ids:
        problems.append(f"acknowledged datasets not listed: {sorted(must_exist - stored_ids)[:5]}")
    # the tag table agrees with the documents: a run's tag lists exactly its datasets
    for tag, tag_ids in run_tags.items():
        present = {i for i in tag_ids if i in stored_ids}
        listed = cat.datasets.list(
            tag=tag, include_private=True, include_drafts=True, include_deleted=True
        )
        if {ds.id for ds in listed.items} != present:
            problems.append(f"tag {tag} lists {listed.total} datasets, {len(present)} carry it")
    return problems, observed


def sqlite_problems(db: Path) -> list[str]:
    con = sqlite3.connect(db)
    try:
        integrity = con.execute("PRAGMA integrity_check").fetchall()
        foreign = con.execute("PRAGMA foreign_key_check").fetchall()
        journal = con.execute("PRAGMA journal_mode").fetchone()[0]
        tables = con.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    finally:
        con.close()
    problems = []
    if integrity != [("ok",)]:
        problems.append(f"integrity_check: {integrity[:5]}")
    if foreign:
        problems.append(f"foreign_key_check: {foreign[:5]}")
    # Every connection sets WAL before it writes anything, so only a file the kill left empty
    # (created, nothing written yet: a kill during start-up) may still be in rollback mode.
    if journal != "wal" and tables:
        problems.append(f"journal_mode {journal}")
    return problems


# -- the crash loop ---------------------------------------------------------------------------


class Target:
    """A catalog to crash: where it is and how to open it."""

    def __init__(self, location: str, *, search: str | None = None) -> None:
        self.location = location
        self.search = search  # None: the default (a folder catalog indexes with tantivy)
        self.sqlite_db: Path | None = None
        if "://" not in location:
            self.sqlite_db = Path(location) / "catalog.db"

    def argv(self, run: int, seed: int) -> list[str]:
        extra = [self.search] if self.search is not None else []
        return [sys.executable, str(WRITER), self.location, str(run), str(seed), *extra]

    def open(self) -> Catalog:
        overrides = {"search": self.search} if self.search is not None else {}
        return open_catalog(self.location, password_hash_params=HASH_PARAMS, **overrides)

    @property
    def persistent_index(self) -> bool:
        return self.sqlite_db is not None and self.search is None


def run_and_kill(
    target: Target, run: int, seed: int, workdir: Path, *, from_spawn: float | None = None
) -> Run:
    """Start a writer, SIGKILL it ``KILL_DELAY`` after it is ready (or ``from_spawn`` seconds
    after it started, which may land before it is ready), and return what it printed."""
    out = workdir / f"run-{run:03d}.out"
    err = workdir / f"run-{run:03d}.err"
    rng = random.Random(seed)
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(target.argv(run, seed), stdout=stdout, stderr=stderr)
        try:
            if from_spawn is not None:
                time.sleep(from_spawn)
            else:
                deadline = time.monotonic() + READY_TIMEOUT
                while b'"ready"' not in out.read_bytes():
                    assert proc.poll() is None, f"writer died: {err.read_text()[-3000:]}"
                    assert time.monotonic() < deadline, "writer not ready in time"
                    time.sleep(0.005)
                time.sleep(rng.uniform(*KILL_DELAY))
            assert proc.poll() is None, f"writer exited before the kill: {err.read_text()[-3000:]}"
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    if target.sqlite_db is None:
        wait_for_server_sessions_to_end(target.location)
    return Run(out.read_text())


def wait_for_server_sessions_to_end(url: str, timeout: float = 30.0) -> None:
    """Wait until the killed writer's PostgreSQL sessions are gone. The server finishes a
    COMMIT the client sent before it died, and only then notices the closed connection: a
    check made before that would see the in-flight write as not applied, then find it
    applied on the next run."""
    import psycopg
    from sqlalchemy.engine import make_url

    libpq = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    deadline = time.monotonic() + timeout
    with psycopg.connect(libpq, autocommit=True) as conn:
        while True:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()
            if row is not None and row[0] == 0:
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{row[0] if row else '?'} sessions of the killed writer remain"
                )
            time.sleep(0.05)


def crash_cycles(
    target: Target,
    workdir: Path,
    kills: int,
    *,
    first_run: int = 0,
    first_from_spawn: float | None = None,
    ledger: Ledger | None = None,
) -> Ledger:
    """``kills`` kill/reopen/check cycles on one catalog; a final check of everything."""
    ledger = ledger if ledger is not None else Ledger()
    run_tags: dict[str, set[str]] = {}
    for k in range(kills):
        run_no = first_run + k
        seed = random.randrange(2**32)
        from_spawn = first_from_spawn if k == 0 else None
        run = run_and_kill(target, run_no, seed, workdir, from_spawn=from_spawn)
        touched = ledger.add_run(run)
        run_tags[f"run-{run_no}"] = touched
        problems: list[str] = []
        if target.sqlite_db is not None and target.sqlite_db.exists():
            problems += sqlite_problems(target.sqlite_db)
        with target.open() as cat:  # opening applies what the kill left in the outbox
            found, observed = check_catalog(cat, ledger, touched, {f"run-{run_no}": touched})
            problems += found
            if target.persistent_index:
                drift = cat.search.check()
                if not drift.clean:
                    problems.append(f"search index drift after reopen: {drift}")
        assert problems == [], f"run {run_no} (seed {seed}, {run.writes} acked): {problems[:10]}"
        ledger.settle(observed, run.inflight)
    # everything ever written to this catalog, once more
    with target.open() as cat:
        problems, _ = check_catalog(cat, ledger, set(ledger.allowed), run_tags)
    if target.sqlite_db is not None:
        problems += sqlite_problems(target.sqlite_db)
    assert problems == [], problems[:10]
    ledger.checked += len(ledger.allowed)
    return ledger


def report(name: str, ledger: Ledger, started: float) -> None:
    print(
        f"\n{name}: {ledger.kills} kills, {ledger.acked_writes} acknowledged writes"
        f" {dict(ledger.ops)}, {ledger.checked} datasets checked, in-flight write applied"
        f" {ledger.inflight_applied} / not applied {ledger.inflight_not_applied},"
        f" {ledger.before_ready} kills before the catalog was open,"
        f" {time.monotonic() - started:.1f} s"
    )


@pytest.mark.parametrize(
    ("search", "kills"),
    [
        # what users get: the SQLite database plus the tantivy index, updated after each
        # commit (~60 ms a write), so most kills land after the commit, during indexing
        pytest.param(None, SQLITE_KILLS_SHARED, id="folder"),
        # storage alone (~3 ms a write): most kills land inside a storage transaction
        pytest.param("none", SQLITE_KILLS_STORAGE_ONLY, id="storage-only"),
    ],
)
def test_sigkill_sqlite_folder_keeps_every_acknowledged_write(
    tmp_path: Path, search: str | None, kills: int
) -> None:
    started = time.monotonic()
    target = Target(str(tmp_path / "catalog"), search=search)
    ledger = crash_cycles(target, tmp_path, kills)
    report(f"sqlite {search or 'folder'}", ledger, started)
    assert ledger.kills == kills
    assert ledger.acked_writes >= kills  # the kills landed mid-stream
    assert ledger.inflight_applied + ledger.inflight_not_applied >= kills // 2


def test_sigkill_sqlite_fresh_folders_including_start_up(tmp_path: Path) -> None:
    """The first kill on each fresh folder is timed from spawn, so it may land while the
    catalog is being created (schema, index); the catalog must open afterwards anyway."""
    started = time.monotonic()
    total = Ledger()
    for f in range(SQLITE_FRESH_FOLDERS):
        target = Target(str(tmp_path / f"fresh-{f}"))
        crash_cycles(
            target,
            tmp_path,
            2,
            first_run=100 * (f + 1),
            first_from_spawn=random.uniform(0.05, 1.5),
            ledger=total,
        )
        total.allowed.clear()  # the next folder starts empty
    report("sqlite fresh folders", total, started)
    assert total.kills == 2 * SQLITE_FRESH_FOLDERS


@pytest.mark.postgres
def test_sigkill_postgres_keeps_every_acknowledged_write(postgres_url: str, tmp_path: Path) -> None:
    """The first kill is timed from spawn (it may land in schema creation)."""
    started = time.monotonic()
    ledger = crash_cycles(Target(postgres_url), tmp_path, POSTGRES_KILLS, first_from_spawn=0.4)
    report("postgresql", ledger, started)
    assert ledger.kills == POSTGRES_KILLS
    assert ledger.acked_writes >= POSTGRES_KILLS // 2


# -- the checker can fail ---------------------------------------------------------------------


def _create_whole(cat: Catalog, ledger: Ledger) -> str:
    """A dataset as a writer would create it, recorded as acknowledged in the ledger."""
    ds = cat.datasets.create(
        DatasetInput(
            name="k999-0000",
            notes="created",
            extras={"rev": "1"},
            tags=["durable", "run-999"],
            resources=[
                ResourceInput(name=f"r{k}", url="https://example.org/x.csv") for k in range(3)
            ],
        )
    )
    state = observe(cat, ds.id)
    assert state is not None
    ledger.allowed[ds.id] = [state]
    return ds.id


def test_checker_detects_a_lost_acknowledged_write(tmp_path: Path) -> None:
    ledger = Ledger()
    with open_catalog(tmp_path / "c", password_hash_params=HASH_PARAMS) as cat:
        ds_id = _create_whole(cat, ledger)
        assert check_catalog(cat, ledger, {ds_id}, {"run-999": {ds_id}})[0] == []
        # the ledger says revision 2 was acknowledged; storage has revision 1: a lost write
        (state,) = ledger.allowed[ds_id]
        ledger.allowed[ds_id] = [{**state, "revision": 2, "notes": "patched to revision 2"}]
        problems, _ = check_catalog(cat, ledger, {ds_id}, {})
    assert len(problems) == 1 and "stored" in problems[0]


def test_checker_detects_a_half_written_dataset(tmp_path: Path) -> None:
    """Simulate a create whose resource rows were not written (as a non-atomic create would
    leave it): the checker reports the resources it cannot find."""
    ledger = Ledger()
    folder = tmp_path / "c"
    with open_catalog(folder, password_hash_params=HASH_PARAMS) as cat:
        ds_id = _create_whole(cat, ledger)
    con = sqlite3.connect(folder / "catalog.db")
    with con:
        con.execute(
            "DELETE FROM dataset_resource WHERE id IN"
            " (SELECT id FROM dataset_resource ORDER BY id LIMIT 2)"
        )
    con.close()
    with open_catalog(folder, password_hash_params=HASH_PARAMS) as cat:
        problems, _ = check_catalog(cat, ledger, {ds_id}, {})
    assert len(problems) == 2
    assert all("not found by id" in p for p in problems)
