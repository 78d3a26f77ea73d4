"""Search-index crash durability: the indexing process killed mid-batch; after restart the
index matches the database exactly.

A child process (``_index_writer.py``) opens a folder catalog (SQLite plus tantivy) with a
short ``index_delay``, so the background indexer commits to the index all the time, and
writes without pause: ``create_many`` batches of 200 datasets (big index batches, so a kill
often lands inside a drain of the outbox), single creates, title changes (every title carries
a marker word no other title ever carries), private toggles, soft deletes and purges. It
prints each write before it makes it and acknowledges it after the call returned. The parent
kills it with SIGKILL at a random moment, many times over the same folder, and after each
kill reopens the catalog and checks:

* the catalog opens and its index can be written (no lock left behind): a probe dataset is
  created, found, purged and no longer found; the child logged no indexing error;
* the drain at open applied everything the kill left in the outbox (``stats()`` shows
  nothing pending before any search ran) and ``search.check()`` finds no missing, extra or
  stale ids;
* storage kept every acknowledged write (the in-flight one applied or not; a bulk batch all
  or nothing);
* for each dataset the run touched, by its marker word: active and public -> found exactly
  once, also by an anonymous caller; private -> found once with ``include_private``,
  never by an anonymous caller; deleted or purged -> never found by an anonymous caller (a
  deleted one is still indexed, as deleted; a purged one not at all); a marker the dataset's
  title no longer carries -> found nowhere.

``test_deleted_index_folder_*`` delete the index folder while the catalog is closed and
reopen: the index is rebuilt from storage. ``test_checker_detects_*`` show the checks fail on
a drifted index (a document deleted behind the catalog's back, a stale one, an extra one, one
indexed twice).

A replaced document once came back beside its replacement after some kills (one run in
five): tantivy stamped a new writer's first delete with the last commit's stamp, and a merge
of the segments the killed writer left unmerged skipped it. The adapter now spends that stamp
on a no-op (``_skip_committed_stamp``; a deterministic test is in
``tests/conformance/test_search_tantivy.py``), and this test asserts the exact match.
"""

from __future__ import annotations

import json
import os
import random
import shutil
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
from opencatalog.adapters.tantivy_search import TantivySearchIndex, _package_document
from opencatalog.domain.commands import DatasetInput, DatasetPatch, GroupInput
from opencatalog.services.catalog import Catalog
from opencatalog.services.indexing import documents_for

pytestmark = pytest.mark.slow

WRITER = Path(__file__).with_name("_index_writer.py")
HASH_PARAMS = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}
INDEX_DELAY = 0.05  # seconds: background index commits all the time
READY_TIMEOUT = 60.0
KILL_DELAY = (0.2, 1.5)  # seconds after "ready"
KILLS = 15
#: Datasets of each run searched by marker: every one a single write touched, and this many
#: of those only a bulk create touched (all of them would cost ~1 s a kill).
BULK_SAMPLE = 100
FINAL_SAMPLE = 800  # datasets searched again at the end
ORG = "idx-org"

State = dict[str, Any]  # {"marker": str, "private": bool, "state": "active" | "deleted"}


def open_folder(folder: Path) -> Catalog:
    return open_catalog(folder, password_hash_params=HASH_PARAMS, index_delay=INDEX_DELAY)


# -- what the child printed -------------------------------------------------------------------


class Run:
    """What one writer process printed before it was killed."""

    def __init__(self, log: str) -> None:
        self.ready = False
        self.acked: dict[str, State | None] = {}  # id -> last acknowledged state
        self.ops: Counter[str] = Counter()  # acknowledged writes by operation
        self.inflight: tuple[str, list[tuple[str, State | None]]] | None = None
        self.markers: dict[str, set[str]] = {}  # id -> every marker an intent gave it
        self.singles: set[str] = set()  # ids named by a write other than a bulk create
        self.drains = 0  # drains that ended
        self.in_drain = False  # the kill landed inside a drain
        self.index_errors: list[str] = []
        self.problems: list[str] = []
        pending: tuple[int, str, list[tuple[str, State | None]]] | None = None
        # a trailing line without newline was cut by the kill: not printed, not acked
        for line in log.split("\n")[:-1]:
            msg = json.loads(line)
            if "ready" in msg:
                self.ready = True
            elif "drain" in msg:
                self.in_drain = msg["drain"] == "begin"
                self.drains += msg["drain"] == "end"
            elif "index_error" in msg:
                self.index_errors.append(msg["index_error"])
            elif "intent" in msg:
                if pending is not None:
                    self.problems.append(f"intent {msg['intent']} before ack of {pending[0]}")
                changes = [(ds_id, state) for ds_id, state in msg["changes"]]
                pending = (msg["intent"], msg["op"], changes)
                for ds_id, state in changes:
                    if state is not None:
                        self.markers.setdefault(ds_id, set()).add(state["marker"])
                    if msg["op"] != "bulk":
                        self.singles.add(ds_id)
            elif "ack" in msg:
                if pending is None or pending[0] != msg["ack"]:
                    self.problems.append(f"ack {msg['ack']} without its intent")
                    continue
                _, op, changes = pending
                for ds_id, state in changes:
                    self.acked[ds_id] = state
                self.ops[op] += 1
                pending = None
        if pending is not None:
            self.inflight = (pending[1], pending[2])

    @property
    def writes(self) -> int:
        return sum(self.ops.values())


class Ledger:
    """Every dataset the writers touched: the states it may be in, the markers it ever had."""

    def __init__(self) -> None:
        self.allowed: dict[str, list[State | None]] = {}
        self.markers: dict[str, set[str]] = {}
        self.kills = 0
        self.acked_writes = 0
        self.ops: Counter[str] = Counter()
        self.kills_in_drain = 0
        self.kills_with_pending = 0  # the outbox was not empty at the kill
        self.pending_at_kill = 0  # outbox entries the drains at open applied
        self.drains = 0
        self.searches = 0
        self.inflight_applied = 0
        self.inflight_not_applied = 0

    def add_run(self, run: Run) -> set[str]:
        """Record a killed run; returns the ids it touched."""
        assert run.problems == []
        assert run.index_errors == [], f"the child could not index: {run.index_errors[:3]}"
        self.kills += 1
        self.acked_writes += run.writes
        self.ops.update(run.ops)
        self.drains += run.drains
        self.kills_in_drain += run.in_drain
        for ds_id, markers in run.markers.items():
            self.markers.setdefault(ds_id, set()).update(markers)
        for ds_id, state in run.acked.items():
            self.allowed[ds_id] = [state]
        touched = set(run.acked)
        if run.inflight is not None:
            op, changes = run.inflight
            for ds_id, state in changes:
                before = self.allowed.get(ds_id, [None]) if op not in ("bulk", "create") else [None]
                self.allowed[ds_id] = [*before, state]
                touched.add(ds_id)
        return touched

    def settle(self, observed: dict[str, State | None], run: Run) -> None:
        """After a check: the observed state is now the only one allowed."""
        for ds_id, state in observed.items():
            self.allowed[ds_id] = [state]
        if run.inflight is not None:
            ds_id, state = run.inflight[1][0]
            if observed.get(ds_id) == state:
                self.inflight_applied += 1
            else:
                self.inflight_not_applied += 1


# -- the checks -------------------------------------------------------------------------------


def stored_states(cat: Catalog, ids: set[str]) -> dict[str, State | None]:
    """What storage holds for these datasets (the truth the index must match)."""
    found = {ds.id: ds for ds in cat.datasets.get_many(sorted(ids))}
    out: dict[str, State | None] = {}
    for ds_id in ids:
        ds = found.get(ds_id)
        if ds is None:
            out[ds_id] = None
            continue
        title = ds.title or ""
        out[ds_id] = {
            "marker": title.rsplit(" ", 1)[-1],
            "private": ds.private,
            "state": ds.state.value,
        }
    return out


def storage_problems(
    ledger: Ledger, observed: dict[str, State | None], run: Run | None
) -> list[str]:
    problems = []
    for ds_id, state in observed.items():
        if state not in ledger.allowed[ds_id]:
            problems.append(f"{ds_id}: stored {state}, allowed {ledger.allowed[ds_id]}")
    if run is not None and run.inflight is not None and run.inflight[0] == "bulk":
        applied = {observed[ds_id] == state for ds_id, state in run.inflight[1]}
        if len(applied) != 1:
            problems.append("the in-flight create_many batch was applied in part")
    return problems


def search_ids(
    cat: Catalog,
    marker: str,
    *,
    include_private: bool = False,
    include_drafts: bool = False,
    include_deleted: bool = False,
) -> tuple[int, list[str]]:
    found = cat.search.datasets(
        marker,
        limit=10,
        include_private=include_private,
        include_drafts=include_drafts,
        include_deleted=include_deleted,
    )
    return found.count, [ds.id for ds in found.results]


EVERYTHING = {"include_private": True, "include_drafts": True, "include_deleted": True}


def index_problems(
    cat: Catalog, ledger: Ledger, observed: dict[str, State | None]
) -> tuple[list[str], int]:
    """Search every marker of these datasets as the system actor and anonymously; returns
    the problems and how many searches ran."""
    anonymous = cat.anonymous()
    problems: list[str] = []
    searches = 0

    def expect(who: Catalog, marker: str, ids: list[str], what: str, **options: bool) -> None:
        nonlocal searches
        searches += 1
        count, found = search_ids(who, marker, **options)
        if count != len(ids) or found != ids:
            problems.append(f"{what} ({marker}): found {found} (count {count}), expected {ids}")

    for ds_id, state in sorted(observed.items()):
        current: str = "" if state is None else state["marker"]
        if state is None:  # purged: not indexed at all
            expect(anonymous, ledger_marker(ledger, ds_id), [], f"purged {ds_id}")
            expect(cat, ledger_marker(ledger, ds_id), [], f"purged {ds_id}", **EVERYTHING)
        elif state["state"] == "deleted":  # indexed as deleted, found only when asked
            expect(anonymous, current, [], f"deleted {ds_id} for anonymous", **EVERYTHING)
            expect(cat, current, [], f"deleted {ds_id} by default")
            expect(cat, current, [ds_id], f"deleted {ds_id} with include_deleted", **EVERYTHING)
        elif state["private"]:
            expect(anonymous, current, [], f"private {ds_id} for anonymous", **EVERYTHING)
            expect(cat, current, [ds_id], f"private {ds_id} with include_private", **EVERYTHING)
        else:
            expect(anonymous, current, [ds_id], f"public {ds_id}")
        for old in sorted(ledger.markers.get(ds_id, set()) - {current}):
            expect(cat, old, [], f"{ds_id} by a marker it no longer has", **EVERYTHING)
    return problems, searches


def ledger_marker(ledger: Ledger, ds_id: str) -> str:
    """Some marker the dataset once had (for purged datasets)."""
    return min(ledger.markers[ds_id])


def drift_problems(cat: Catalog) -> list[str]:
    """``search.check()``, and two documents with one id counted independently of it."""
    problems = []
    drift = cat.search.check()
    if drift.missing or drift.extra or drift.stale:
        problems.append(
            f"index drift: missing {list(drift.missing[:5])} ({len(drift.missing)}),"
            f" extra {list(drift.extra[:5])} ({len(drift.extra)}),"
            f" stale {list(drift.stale[:5])} ({len(drift.stale)})"
        )
    index = cat._ctx.search_index
    assert index is not None
    counted = {i for i, n in Counter(i for i, _ in index.ids()).items() if n > 1}
    twice = sorted(counted | set(drift.duplicated))
    if twice:
        problems.append(f"ids indexed more than once: {twice[:5]} ({len(twice)})")
    return problems


def probe_problems(cat: Catalog, tag: str) -> list[str]:
    """Write through the reopened index: a lock left behind by the kill would show here."""
    marker = f"probe{tag}"
    ds = cat.datasets.create(
        DatasetInput(name=f"probe-{tag}", title=f"Probe {marker}", owner_org=ORG)
    )
    problems = []
    if search_ids(cat, marker) != (1, [ds.id]):
        problems.append(f"probe {marker} not found after create")
    cat.datasets.purge(ds.id)
    if search_ids(cat, marker, **EVERYTHING) != (0, []):
        problems.append(f"probe {marker} still found after purge")
    return problems


def pending_outbox(folder: Path) -> int:
    con = sqlite3.connect(folder / "catalog.db")
    try:
        return int(con.execute("SELECT count(*) FROM outbox").fetchone()[0])
    finally:
        con.close()


def check_reopened(
    folder: Path,
    ledger: Ledger,
    ids: set[str],
    run: Run | None,
    tag: str,
    searched: set[str] | None = None,
) -> tuple[list[str], dict[str, State | None]]:
    """Reopen the catalog and check storage for ``ids``, the index by marker searches for
    ``searched`` (default: ``ids``); whole-index checks too."""
    problems: list[str] = []
    with open_folder(folder) as cat:  # the drain at open applies what the kill left
        pending = cat.search.stats()["pending"]  # before anything else drains
        if pending:
            problems.append(f"{pending} outbox entries still pending after open")
        problems += drift_problems(cat)
        observed = stored_states(cat, ids)
        problems += storage_problems(ledger, observed, run)
        wanted = ids if searched is None else searched
        found, searches = index_problems(
            cat, ledger, {i: s for i, s in observed.items() if i in wanted}
        )
        ledger.searches += searches
        problems += found
        problems += probe_problems(cat, tag)
        problems += drift_problems(cat)
    return problems, observed


# -- the crash loop ---------------------------------------------------------------------------


def run_and_kill(
    folder: Path, run_no: int, seed: int, workdir: Path, *, delay: float = INDEX_DELAY
) -> Run:
    """Start a writer, SIGKILL it ``KILL_DELAY`` after it is ready, return what it printed."""
    out = workdir / f"run-{run_no:03d}.out"
    err = workdir / f"run-{run_no:03d}.err"
    rng = random.Random(seed)
    argv = [sys.executable, str(WRITER), str(folder), str(run_no), str(seed), str(delay)]
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(argv, stdout=stdout, stderr=stderr)
        try:
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
    return Run(out.read_text())


def kill_and_check(folder: Path, workdir: Path, ledger: Ledger, run_no: int) -> list[str]:
    """One kill and the checks after it; returns the problems found."""
    seed = random.randrange(2**32)
    run = run_and_kill(folder, run_no, seed, workdir)
    touched = ledger.add_run(run)
    pending = pending_outbox(folder)
    ledger.kills_with_pending += pending > 0
    ledger.pending_at_kill += pending
    rng = random.Random(seed)
    bulk_only = sorted(touched - run.singles)
    searched = run.singles | set(rng.sample(bulk_only, min(BULK_SAMPLE, len(bulk_only))))
    problems, observed = check_reopened(folder, ledger, touched, run, f"{run_no}", searched)
    ledger.settle(observed, run)
    return [f"run {run_no} (seed {seed}, {run.writes} acked): {p}" for p in problems]


def report(name: str, ledger: Ledger, started: float) -> None:
    print(
        f"\n{name}: {ledger.kills} kills, {ledger.acked_writes} acknowledged writes"
        f" {dict(ledger.ops)}, {len(ledger.allowed)} datasets, {ledger.drains} drains;"
        f" kills inside a drain {ledger.kills_in_drain}, with outbox entries pending"
        f" {ledger.kills_with_pending} ({ledger.pending_at_kill} entries);"
        f" in-flight write applied {ledger.inflight_applied} / not {ledger.inflight_not_applied};"
        f" {ledger.searches} searches checked, {time.monotonic() - started:.1f} s"
    )


def test_sigkill_while_indexing_index_matches_database(tmp_path: Path) -> None:
    started = time.monotonic()
    folder = tmp_path / "catalog"
    ledger = Ledger()
    problems: list[str] = []
    for run_no in range(KILLS):  # go on after a problem: how often it happens is news too
        problems += kill_and_check(folder, tmp_path, ledger, run_no)
    # everything ever written to this folder, once more (the searches on a sample)
    with open_folder(folder) as cat:
        observed = stored_states(cat, set(ledger.allowed))
        problems += storage_problems(ledger, observed, None) + drift_problems(cat)
        sample = random.sample(sorted(observed), min(FINAL_SAMPLE, len(observed)))
        found, searches = index_problems(cat, ledger, {i: observed[i] for i in sample})
        problems += [f"final: {p}" for p in found]
        ledger.searches += searches
    report("index crash", ledger, started)
    assert problems == [], f"{len(problems)} problems: {problems[:10]}"
    assert ledger.kills == KILLS
    assert ledger.acked_writes >= KILLS  # the kills landed mid-stream
    assert ledger.ops["bulk"] >= 1
    assert ledger.kills_with_pending >= 1  # some kill left work for the drain at open


# -- a deleted index folder -------------------------------------------------------------------


def kill_and_close(folder: Path, workdir: Path, ledger: Ledger, run_no: int) -> None:
    """A kill, then a reopen that drains the outbox and a clean close (no checks)."""
    ledger.add_run(run_and_kill(folder, run_no, random.randrange(2**32), workdir))
    open_folder(folder).close()
    assert pending_outbox(folder) == 0


def test_deleted_index_folder_is_rebuilt_at_open(tmp_path: Path) -> None:
    """Kill, reopen (clean close), delete ``index/``, reopen: rebuilt, no drift."""
    folder = tmp_path / "catalog"
    ledger = Ledger()
    kill_and_close(folder, tmp_path, ledger, 0)
    shutil.rmtree(folder / "index")
    problems, _ = check_reopened(folder, ledger, set(ledger.allowed), None, "rebuilt")
    assert problems == [], problems[:10]
    with open_folder(folder) as cat:
        with cat._ctx.storage.unit_of_work() as uow:
            stored = len(list(uow.datasets.ids()))
        assert cat.search.stats()["documents"] == stored


def test_deleted_index_folder_with_pending_outbox_is_rebuilt_at_open(tmp_path: Path) -> None:
    """Kill a writer whose background indexer never ran (outbox entries pending), delete
    ``index/`` and reopen: the index must hold every stored dataset again."""
    folder = tmp_path / "catalog"
    ledger = Ledger()
    kill_and_close(folder, tmp_path, ledger, 0)  # datasets indexed, outbox empty
    run = run_and_kill(folder, 1, random.randrange(2**32), tmp_path, delay=3600.0)
    touched = ledger.add_run(run)
    assert run.writes >= 1 and pending_outbox(folder) >= 1
    shutil.rmtree(folder / "index")
    problems, _ = check_reopened(folder, ledger, set(ledger.allowed) | touched, run, "rebuilt")
    assert problems == [], problems[:10]


# -- the checker can fail ---------------------------------------------------------------------


def _small_catalog(folder: Path, ledger: Ledger) -> list[str]:
    """Three public datasets with markers, recorded in the ledger."""
    ids = []
    with open_folder(folder) as cat:
        cat.organizations.create(GroupInput(name=ORG))
        for k in range(3):
            marker = f"mkself{k}"
            ds = cat.datasets.create(
                DatasetInput(name=f"self-{k}", title=f"Dataset {marker}", owner_org=ORG)
            )
            ledger.allowed[ds.id] = [{"marker": marker, "private": False, "state": "active"}]
            ledger.markers[ds.id] = {marker}
            ids.append(ds.id)
    return ids


def test_checker_detects_a_document_missing_from_the_index(tmp_path: Path) -> None:
    ledger = Ledger()
    ids = _small_catalog(tmp_path / "c", ledger)
    assert check_reopened(tmp_path / "c", ledger, set(ids), None, "a")[0] == []
    with open_folder(tmp_path / "c") as cat:
        index = cat._ctx.search_index
        assert index is not None
        index.delete([ids[0]])  # behind the indexer's back
        assert cat.search.check().missing == (ids[0],)
        problems, _ = index_problems(cat, ledger, stored_states(cat, set(ids)))
        assert len(problems) == 1 and ids[0] in problems[0] and "public" in problems[0]
        assert len(drift_problems(cat)) == 1


def _index_twice(cat: Catalog, ds_id: str) -> None:
    """Put a second document with this id into the tantivy index (what the stamp bug left):
    the adapter's ``index`` always deletes the old one first, so go round it."""
    index = cat._ctx.search_index
    assert isinstance(index, TantivySearchIndex)
    with cat._ctx.storage.unit_of_work() as uow:
        (doc,) = documents_for(uow, uow.datasets.get_many([ds_id]))
    with index._writing() as generation:
        generation["packages"].get_writer().add_document(_package_document(doc))


def test_checker_detects_a_document_indexed_twice(tmp_path: Path) -> None:
    ledger = Ledger()
    ids = _small_catalog(tmp_path / "c", ledger)
    with open_folder(tmp_path / "c") as cat:
        _index_twice(cat, ids[0])
        problems = drift_problems(cat)
        assert len(problems) == 1 and "more than once" in problems[0] and ids[0] in problems[0]
        found, _ = index_problems(cat, ledger, stored_states(cat, set(ids)))
    assert len(found) == 1 and "count 2" in found[0]


def test_search_check_reports_a_document_indexed_twice(tmp_path: Path) -> None:
    ids = _small_catalog(tmp_path / "c", Ledger())
    with open_folder(tmp_path / "c") as cat:
        _index_twice(cat, ids[0])
        report = cat.search.check()
        assert report.duplicated == (ids[0],)
        assert not report.clean
        cat.search.repair()
        assert cat.search.check().clean
        assert cat.search.datasets(include_private=True, limit=100).count == len(ids)


def test_checker_detects_stale_and_extra_documents(tmp_path: Path) -> None:
    ledger = Ledger()
    ids = _small_catalog(tmp_path / "c", ledger)
    with open_folder(tmp_path / "c") as cat:
        index = cat._ctx.search_index
        assert index is not None
        # stale: the document of the title before the patch is put back
        with cat._ctx.storage.unit_of_work() as uow:
            (old_doc,) = documents_for(uow, uow.datasets.get_many([ids[1]]))
        cat.datasets.patch(ids[1], DatasetPatch(title="Dataset mkselfnew"))
        ledger.allowed[ids[1]] = [{"marker": "mkselfnew", "private": False, "state": "active"}]
        ledger.markers[ids[1]].add("mkselfnew")
        cat.search.datasets("mkselfnew")  # drains the patch into the index
        # extra: a purged dataset's document is put back
        with cat._ctx.storage.unit_of_work() as uow:
            (gone_doc,) = documents_for(uow, uow.datasets.get_many([ids[2]]))
        cat.datasets.purge(ids[2])
        ledger.allowed[ids[2]] = [None]
        cat.search.datasets("mkself2")
        index.index([old_doc, gone_doc])
        drift = cat.search.check()
        assert (drift.missing, drift.stale, drift.extra) == ((), (ids[1],), (ids[2],))
        problems, _ = index_problems(cat, ledger, stored_states(cat, set(ids)))
    joined = "\n".join(problems)
    assert "mkself1" in joined  # the old title still finds it
    assert "mkselfnew" in joined  # the new one does not
    assert "purged" in joined and ids[2] in joined  # the purged one is still counted


# -- repair at open after a writer died --------------------------------------------------------

_DIE_WITH_DRIFT = """
import os, signal, sys
from opencatalog import open_catalog
from opencatalog.domain.commands import DatasetInput
cat = open_catalog(sys.argv[1], index_delay=0, create_unowned_dataset=True)
made = [cat.datasets.create(DatasetInput(name=f"set-{i}", title=f"Drifter {i}")) for i in range(3)]
cat._ctx.search_index.delete([made[0].id])   # the index loses a document behind the catalog
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_an_index_left_by_a_writer_that_died_is_repaired_at_open(tmp_path: Path) -> None:
    folder = tmp_path / "catalog"
    done = subprocess.run([sys.executable, "-c", _DIE_WITH_DRIFT, str(folder)], timeout=120)
    assert done.returncode == -signal.SIGKILL
    with open_catalog(folder, create_unowned_dataset=True) as cat:
        assert cat.search.check().clean  # repaired while opening
        assert cat.search.datasets("drifter").count == 3
