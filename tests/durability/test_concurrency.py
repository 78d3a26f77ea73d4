"""Concurrency through the services, on SQLite and PostgreSQL (reliability.md 5.E, DU-04/05).

Every test keeps a client-side ledger of what the library acknowledged (returned without
error) and what it refused, then checks the stored state against that ledger:

* read-modify-write with ``expected_revision``: no lost update, each acknowledged update has
  its own revision, refusals are ``Conflict`` and leave no trace;
* ``resources.add`` without a revision: nothing lost, positions contiguous, ids unique;
* unique-name races (dataset, organization, user): exactly one winner per name, the losers
  get ``ValidationFailed({"name": ...})`` or ``AlreadyExists``, never anything else.

Each workload runs twice: all threads sharing one Catalog, and each thread with its own
Catalog on the same database (separate application instances).

Why these tests can fail: ``test_ledger_check_detects_a_lost_update`` feeds the same checker
a lost update made on purpose (two stale read-modify-writes without ``expected_revision``)
and shows that it reports it. Run without ``expected_revision`` the RMW workload loses
updates (a stale read overwrites a newer value), which the checker reports as missing
markers; a storage without a write lock on SQLite (no ``BEGIN IMMEDIATE``) or without row
locks on PostgreSQL loses resources in the ``resources.add`` workload (reliability.md
section 4 measured 87.5% and 84% loss for the same pattern).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from opencatalog import open_catalog
from opencatalog.domain.commands import (
    DatasetInput,
    DatasetPatch,
    GroupInput,
    ResourceInput,
    UserInput,
)
from opencatalog.errors import AlreadyExists, BackendError, Conflict, ValidationFailed
from opencatalog.services.catalog import Catalog

HASH_PARAMS = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}

THREADS = 8
OPS_PER_THREAD = 100
RACERS = 16
RACE_ROUNDS = 20
JOIN_TIMEOUT = 300  # seconds; a hung worker fails the test instead of hanging CI

SHARING = ["shared-catalog", "catalog-per-thread"]


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database: a SQLite file in tmp_path, or a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{(tmp_path / 'catalog.db').resolve()}"
    url: str = request.getfixturevalue("postgres_url")
    return url


def _open(url: str) -> Catalog:
    return open_catalog(url, password_hash_params=HASH_PARAMS)


@pytest.fixture
def catalogs(db_url: str) -> Iterator[Callable[[int, str], list[Catalog]]]:
    """``catalogs(n, sharing)``: n Catalog handles for n threads, either the same object n
    times or n separately opened Catalogs. The schema is created first, by one catalog;
    the others open (and ``initialize``) an existing schema, as a restarted app would."""
    with ExitStack() as stack:
        first = _open(db_url)
        stack.callback(first.close)

        def make(n: int, sharing: str) -> list[Catalog]:
            if sharing == "shared-catalog":
                return [first] * n
            out = []
            for _ in range(n):
                cat = _open(db_url)
                stack.callback(cat.close)
                out.append(cat)
            return out

        yield make


def _run_threads(n: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` in n threads; return the results in thread order. A worker that
    raises fails the test (the workers catch what the library may legitimately raise)."""
    with ThreadPoolExecutor(max_workers=n) as pool:
        futures = [pool.submit(work, i) for i in range(n)]
        return [f.result(timeout=JOIN_TIMEOUT) for f in futures]


# -- read-modify-write with expected_revision ------------------------------------------------

RMW_NAME = "rmw-target"


class RmwLedger:
    """What the client saw: acknowledged updates and refusals, per marker."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        # marker -> (revision read, revision returned)
        self.acked: dict[str, tuple[int, int]] = {}
        self.refused: dict[str, BaseException] = {}
        self.unexpected: dict[str, BaseException] = {}


def _markers(notes: str | None) -> list[str]:
    return [m for m in (notes or "").split(";") if m]


def _rmw_update(cat: Catalog, marker: str, ledger: RmwLedger, *, conditional: bool = True) -> None:
    """One read-modify-write: append ``marker`` to the notes read, bump the counter read."""
    ds = cat.datasets.get(RMW_NAME)
    count = int(ds.extras.get("count", "0"))
    patch = DatasetPatch(
        notes=(ds.notes or "") + marker + ";",
        extras={"count": str(count + 1), "last": marker},
    )
    try:
        new = cat.datasets.patch(
            RMW_NAME, patch, expected_revision=ds.revision if conditional else None
        )
    except Conflict as exc:
        with ledger.lock:
            ledger.refused[marker] = exc
    except Exception as exc:  # recorded, then reported by the check
        with ledger.lock:
            ledger.unexpected[marker] = exc
    else:
        with ledger.lock:
            ledger.acked[marker] = (ds.revision, new.revision)


def _rmw_problems(cat: Catalog, ledger: RmwLedger, attempts: int) -> list[str]:
    """Everything wrong with the stored dataset given the ledger (empty when all is well)."""
    problems: list[str] = []
    final = cat.datasets.get(RMW_NAME)
    acked = ledger.acked
    if ledger.unexpected:
        sample = list(ledger.unexpected.items())[:5]
        problems.append(f"{len(ledger.unexpected)} updates raised non-Conflict errors: {sample}")
    wrong_kind = {m: e for m, e in ledger.refused.items() if isinstance(e, AlreadyExists)}
    if wrong_kind:
        problems.append(f"stale updates refused with AlreadyExists: {list(wrong_kind.items())[:5]}")
    if len(acked) + len(ledger.refused) + len(ledger.unexpected) != attempts:
        problems.append(
            f"ledger holds {len(acked)} + {len(ledger.refused)} + {len(ledger.unexpected)}"
            f" outcomes for {attempts} attempts"
        )
    if final.revision != 1 + len(acked):
        problems.append(f"final revision {final.revision} != 1 + {len(acked)} acknowledged")
    # every acknowledged update got a revision of its own, one past the one it read
    returned = sorted(new for _, new in acked.values())
    if returned != list(range(2, 2 + len(acked))):
        problems.append(f"acknowledged revisions are not 2..{1 + len(acked)}: {returned[:20]}")
    off_by = {m: r for m, r in acked.items() if r[1] != r[0] + 1}
    if off_by:
        problems.append(f"acknowledged revision != revision read + 1: {list(off_by.items())[:5]}")
    # no lost update: the stored chain is exactly the acknowledged markers in revision order
    stored = _markers(final.notes)
    expected_chain = sorted(acked, key=lambda m: acked[m][1])
    lost = set(acked) - set(stored)
    if lost:
        problems.append(f"{len(lost)} acknowledged updates lost: {sorted(lost)[:10]}")
    leaked = set(stored) - set(acked)
    if leaked:
        problems.append(f"{len(leaked)} refused updates stored anyway: {sorted(leaked)[:10]}")
    if not lost and not leaked and stored != expected_chain:
        problems.append("stored markers are not in the order of their acknowledged revisions")
    if final.extras.get("count") != str(len(acked)):
        problems.append(f"counter {final.extras.get('count')} != {len(acked)} acknowledged")
    # refused updates leave no activity; each acknowledged one leaves exactly one
    activities = cat.activities.for_dataset(RMW_NAME, limit=1000)
    if len(activities) != final.revision:
        problems.append(f"{len(activities)} activities for revision {final.revision}")
    return problems


def _create_rmw_target(cat: Catalog) -> None:
    cat.datasets.create(DatasetInput(name=RMW_NAME, notes="", extras={"count": "0"}))


@pytest.mark.parametrize("sharing", SHARING)
def test_read_modify_write_with_expected_revision_loses_nothing(
    catalogs: Callable[[int, str], list[Catalog]], sharing: str
) -> None:
    cats = catalogs(THREADS, sharing)
    _create_rmw_target(cats[0])
    ledger = RmwLedger()

    def worker(t: int) -> None:
        for i in range(OPS_PER_THREAD):
            _rmw_update(cats[t], f"t{t}u{i}", ledger)

    _run_threads(THREADS, worker)

    attempts = THREADS * OPS_PER_THREAD
    assert _rmw_problems(cats[0], ledger, attempts) == []
    assert len(ledger.acked) + len(ledger.refused) == attempts
    assert len(ledger.acked) >= 1
    assert cats[0].datasets.get(RMW_NAME).revision == 1 + len(ledger.acked)
    print(f"\n{len(ledger.acked)} updates acknowledged, {len(ledger.refused)} refused (Conflict)")


def test_ledger_check_detects_a_lost_update(
    catalogs: Callable[[int, str], list[Catalog]],
) -> None:
    """The checker above is not vacuous: two clients read the same revision and both write
    without ``expected_revision``; the second overwrites the first, and the check says so.
    With ``expected_revision`` the second is refused with Conflict and nothing is lost."""
    a, b = catalogs(2, "catalog-per-thread")
    _create_rmw_target(a)

    # unconditional: interleave read(a), read(b), write(a), write(b) by hand
    ledger = RmwLedger()
    read_a = a.datasets.get(RMW_NAME)
    read_b = b.datasets.get(RMW_NAME)
    for cat, read, marker in ((a, read_a, "a0"), (b, read_b, "b0")):
        new = cat.datasets.patch(
            RMW_NAME,
            DatasetPatch(notes=(read.notes or "") + marker + ";", extras={"count": "1"}),
        )
        ledger.acked[marker] = (read.revision, new.revision)
    problems = _rmw_problems(a, ledger, 2)
    assert any("acknowledged updates lost" in p for p in problems), problems
    assert any("revision read + 1" in p for p in problems), problems

    # conditional: the same interleaving from a clean start; the stale writer is refused
    base = a.datasets.patch(RMW_NAME, DatasetPatch(notes="", extras={"count": "0"}))
    ledger = RmwLedger()
    read_a = a.datasets.get(RMW_NAME)
    read_b = b.datasets.get(RMW_NAME)
    for cat, read, marker in ((a, read_a, "a1"), (b, read_b, "b1")):
        try:
            new = cat.datasets.patch(
                RMW_NAME,
                DatasetPatch(notes=(read.notes or "") + marker + ";", extras={"count": "1"}),
                expected_revision=read.revision,
            )
        except Conflict as exc:
            ledger.refused[marker] = exc
        else:
            ledger.acked[marker] = (read.revision, new.revision)
    assert set(ledger.acked) == {"a1"}
    assert set(ledger.refused) == {"b1"}
    final = a.datasets.get(RMW_NAME)
    assert final.revision == base.revision + 1
    assert _markers(final.notes) == ["a1"]


# -- concurrent resources.add -----------------------------------------------------------------

ADD_NAME = "add-target"


def _is_busy(exc: BaseException) -> bool:
    """The SQLite adapter's refusal when the write lock was not free within busy_timeout
    (reliability.md DU-09: a 503 with Retry-After at the HTTP edge)."""
    return isinstance(exc, BackendError) and "busy" in str(exc)


@pytest.mark.slow  # the dataset grows to 800 resources: each add rewrites all of them
@pytest.mark.parametrize("sharing", SHARING)
def test_concurrent_resource_adds_are_all_kept_with_contiguous_positions(
    catalogs: Callable[[int, str], list[Catalog]], sharing: str
) -> None:
    cats = catalogs(THREADS, sharing)
    cats[0].datasets.create(DatasetInput(name=ADD_NAME))

    def worker(t: int) -> tuple[list[tuple[str, str, int]], list[tuple[str, BaseException]]]:
        acked: list[tuple[str, str, int]] = []  # (label, resource id, position returned)
        failed: list[tuple[str, BaseException]] = []
        for i in range(OPS_PER_THREAD):
            label = f"t{t}r{i}"
            try:
                res = cats[t].resources.add(
                    ADD_NAME, ResourceInput(url=f"https://example.org/{t}/{i}.csv", name=label)
                )
            except Exception as exc:  # every add must be acknowledged
                failed.append((label, exc))
            else:
                acked.append((label, res.id, res.position))
        return acked, failed

    results = _run_threads(THREADS, worker)
    acked = [a for thread_acked, _ in results for a in thread_acked]
    failed = [f for _, thread_failed in results for f in thread_failed]
    busy = [label for label, exc in failed if _is_busy(exc)]
    assert [f for f in failed if not _is_busy(f[1])] == []
    total = THREADS * OPS_PER_THREAD
    assert len(acked) + len(busy) == total

    # exactly the acknowledged adds are stored (a refused add left nothing behind)
    final = cats[0].datasets.get(ADD_NAME)
    resources = final.resources
    assert len(resources) == len(acked)
    assert [r.position for r in resources] == list(range(len(acked)))
    ids = [r.id for r in resources]
    assert len(set(ids)) == len(ids), "duplicate resource ids"
    assert set(ids) == {rid for _, rid, _ in acked}
    by_id = {r.id: r for r in resources}
    # the position each caller was told is where its resource is, with its own content
    for label, rid, position in acked:
        assert by_id[rid].name == label
        assert by_id[rid].position == position
    # one thread's adds keep their order
    for t in range(THREADS):
        positions = [pos for label, _, pos in acked if label.startswith(f"t{t}r")]
        assert positions == sorted(positions)
    assert final.revision == 1 + len(acked)
    # the resource lookup (a separate index in the SQL schema) finds every one in this dataset
    for rid in ids:
        assert cats[0].resources.get(rid).package_id == final.id
    print(f"\n{len(acked)} adds acknowledged, {len(busy)} refused as busy")
    if busy:
        # Known issue (reported; the outcome is timing-dependent, so not a strict xfail):
        # with 8 writers on one SQLite file a writer can wait past busy_timeout (5 s) and get
        # BackendError("The database is busy, try again"). Each add takes time linear in the
        # dataset's resource count (~30-50 ms at 800, inside the write lock), and SQLite's
        # busy handler polls every 100 ms after a while, so a long waiter loses to fresh ones.
        pytest.xfail(f"{len(busy)} of {total} adds refused as busy, e.g. {busy[:3]}")
    assert len(acked) == total


# -- unique-name races ------------------------------------------------------------------------


def _create_dataset(cat: Catalog, name: str, t: int) -> str:
    return cat.datasets.create(DatasetInput(name=name, title=_racer(name, t))).id


def _create_org(cat: Catalog, name: str, t: int) -> str:
    return cat.organizations.create(GroupInput(name=name, title=_racer(name, t))).id


def _create_user(cat: Catalog, name: str, t: int) -> str:
    # distinct e-mails, so the name is the only thing the racers collide on
    return cat.users.create(
        UserInput(name=name, email=_racer(name, t), password="correct horse")
    ).id


def _racer(name: str, t: int) -> str:
    """What racer t writes besides the name (a title, or an e-mail for users)."""
    return f"racer{t}.{name}@example.org"


def _stored_dataset(cat: Catalog, name: str) -> tuple[str, str | None]:
    ds = cat.datasets.get(name)
    return ds.id, ds.title


def _stored_org(cat: Catalog, name: str) -> tuple[str, str | None]:
    org = cat.organizations.get(name)
    return org.id, org.title


def _stored_user(cat: Catalog, name: str) -> tuple[str, str | None]:
    user = cat.users.get(name)
    return user.id, user.email


def _count_datasets(cat: Catalog, prefix: str) -> int:
    page = cat.datasets.list(include_private=True, include_drafts=True, include_deleted=True)
    return sum(1 for ds in page.items if ds.name.startswith(prefix))


def _count_orgs(cat: Catalog, prefix: str) -> int:
    page = cat.organizations.list(include_deleted=True)
    return sum(1 for g in page.items if g.name.startswith(prefix))


def _count_users(cat: Catalog, prefix: str) -> int:
    page = cat.users.list(include_deleted=True)
    return sum(1 for u in page.items if u.name.startswith(prefix))


KINDS = {
    "dataset": (_create_dataset, _stored_dataset, _count_datasets),
    "organization": (_create_org, _stored_org, _count_orgs),
    "user": (_create_user, _stored_user, _count_users),
}


@pytest.mark.parametrize("sharing", SHARING)
@pytest.mark.parametrize("kind", list(KINDS))
def test_same_name_race_has_exactly_one_winner(
    catalogs: Callable[[int, str], list[Catalog]], sharing: str, kind: str
) -> None:
    create, stored, count = KINDS[kind]
    cats = catalogs(RACERS, sharing)
    prefix = f"race-{kind}-"
    report: list[str] = []
    refusals: Counter[str] = Counter()
    for round_ in range(RACE_ROUNDS):
        name = f"{prefix}{round_:02d}"
        barrier = threading.Barrier(RACERS)

        def attempt(t: int, name: str = name, barrier: threading.Barrier = barrier) -> Any:
            barrier.wait(timeout=60)
            try:
                return ("won", create(cats[t], name, t))
            except (AlreadyExists, ValidationFailed) as exc:
                return ("taken", exc.errors, type(exc).__name__)
            except Exception as exc:  # anything else is a failure, reported below
                return ("other", exc)

        outcomes = _run_threads(RACERS, attempt)
        refusals.update(o[2] for o in outcomes if o[0] == "taken")
        winners = [(t, o[1]) for t, o in enumerate(outcomes) if o[0] == "won"]
        others = [o for o in outcomes if o[0] == "other"]
        bad_errors = [o[1] for o in outcomes if o[0] == "taken" and set(o[1]) != {"name"}]
        if len(winners) != 1 or others or bad_errors:
            report.append(
                f"{name}: {len(winners)} winners, other errors {others[:3]},"
                f" refusals not on name {bad_errors[:3]}"
            )
            continue
        ((winner_t, winner_id),) = winners
        # the stored object is the winner's, whole
        stored_id, stored_tag = stored(cats[0], name)
        if stored_id != winner_id or stored_tag != _racer(name, winner_t):
            report.append(f"{name}: stored {stored_id}/{stored_tag}, winner {winner_t}/{winner_id}")
    assert report == []
    assert count(cats[0], prefix) == RACE_ROUNDS
    assert sum(refusals.values()) == RACE_ROUNDS * (RACERS - 1)
    print(f"\n{RACE_ROUNDS} rounds, one winner each; losers: {dict(refusals)}")
