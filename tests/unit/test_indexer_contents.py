"""The indexer keeps the resources and contents indices in step with storage: the outbox
``contents`` topic, resources replaced with their dataset, crash safety, check/repair of the
three indices, and rebuilds that never show an empty index."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from search_env import SearchEnv, search_env

from opencatalog.domain.commands import DatasetInput, ResourceInput
from opencatalog.domain.model import Dataset
from opencatalog.domain.search import (
    ContentDocument,
    MatchAll,
    ResourceDocument,
    TextQuery,
    parse_query,
)
from opencatalog.errors import BackendError
from opencatalog.services.indexing import CONTENTS_TOPIC, TOPIC


@pytest.fixture
def env() -> Iterator[SearchEnv]:
    with search_env() as e:
        yield e


def _dataset(env: SearchEnv, name: str, *resources: tuple[str, str], **fields: object) -> Dataset:
    return env.catalog.datasets.create(
        DatasetInput(
            name=name,
            title=name.replace("-", " ").title(),
            resources=tuple(
                ResourceInput(url=f"https://example.org/{n}", name=n, description=d)
                for n, d in resources
            ),
            **fields,  # type: ignore[arg-type]
        )
    )


def _contents(env: SearchEnv, q: str = "*:*") -> set[str]:
    page = env.index.query_contents(TextQuery(query=parse_query(q), limit=1000))
    return {hit.id for hit in page.hits}


def _resources(env: SearchEnv, q: str = "*:*") -> set[str]:
    page = env.index.query_resources(TextQuery(query=parse_query(q), limit=1000))
    return {hit.id for hit in page.hits}


# -- the dataset topic feeds the resources index ---------------------------------------------


def test_dataset_writes_replace_its_resource_documents(env: SearchEnv) -> None:
    ds = _dataset(env, "rivers", ("gauge readings", "hourly levels"), ("station map", ""))
    first, second = (r.id for r in ds.resources)
    assert _resources(env) == {first, second}
    assert _resources(env, "hourly") == {first}
    assert env.index.get_document("resources", first) is not None
    env.catalog.resources.delete(second)
    assert _resources(env) == {first}
    added = env.catalog.resources.add("rivers", ResourceInput(url="https://x.org/a", name="tide"))
    assert _resources(env) == {first, added.id}
    env.catalog.datasets.purge("rivers")
    assert _resources(env) == set()
    assert env.index.count() == 0


def test_contents_topic_indexes_the_extracted_text(env: SearchEnv) -> None:
    ds = _dataset(env, "rivers", ("gauge readings", ""))
    rid = ds.resources[0].id
    env.store_text(rid, "station,level\nriver alpha,3.2\n")
    assert env.pending() == []
    assert _contents(env, "alpha") == {f"{rid}:0"}
    doc = env.index.get_document("contents", f"{rid}:0")
    assert doc is not None
    assert doc["package_id"] == ds.id
    # new text replaces the old chunks
    env.store_text(rid, "completely different words")
    assert _contents(env, "alpha") == set()
    assert _contents(env, "different") == {f"{rid}:0"}
    # a record without text removes them
    env.store_text(rid, None)
    assert _contents(env) == set()


def test_long_text_is_cut_into_chunks(env: SearchEnv) -> None:
    rid = _dataset(env, "big", ("table", "")).resources[0].id
    line = "word " * 20 + "\n"
    env.store_text(rid, line * 3000 + "needle\n")
    chunks = _contents(env)
    assert len(chunks) > 1
    assert _contents(env, "needle") == {f"{rid}:{len(chunks) - 1}"}


def test_contents_of_removed_resources_and_datasets_go(env: SearchEnv) -> None:
    ds = _dataset(env, "rivers", ("a", ""), ("b", ""))
    other = _dataset(env, "lakes", ("c", ""))
    ra, rb = (r.id for r in ds.resources)
    rc = other.resources[0].id
    for rid in (ra, rb, rc):
        env.store_text(rid, f"text of {rid}")
    assert {c.partition(":")[0] for c in _contents(env)} == {ra, rb, rc}
    env.catalog.resources.delete(rb)
    assert {c.partition(":")[0] for c in _contents(env)} == {ra, rc}
    env.catalog.datasets.purge("rivers")
    assert {c.partition(":")[0] for c in _contents(env)} == {rc}
    # a late contents entry for a resource that is gone indexes nothing
    with env.catalog._ctx.storage.unit_of_work(write=True) as uow:
        uow.outbox.add(CONTENTS_TOPIC, ra)
        uow.commit()
    env.indexer.drain()
    assert {c.partition(":")[0] for c in _contents(env)} == {rc}
    assert env.pending() == []


def test_a_deleted_dataset_keeps_its_documents_for_state_searches(env: SearchEnv) -> None:
    ds = _dataset(env, "rivers", ("gauge", ""))
    rid = ds.resources[0].id
    env.store_text(rid, "flood warning")
    env.catalog.datasets.delete("rivers")
    # still stored (state deleted): the packages query decides who sees it
    assert _resources(env) == {rid}
    assert _contents(env, "flood") == {f"{rid}:0"}


def test_without_a_text_reader_contents_entries_are_consumed() -> None:
    with search_env(contents=False) as env:
        env.catalog._ctx.outbox_topics = env.catalog._ctx.outbox_topics | {CONTENTS_TOPIC}
        rid = _dataset(env, "rivers", ("gauge", "")).resources[0].id
        env.store_text(rid, "flood warning")
        assert env.pending() == []
        assert _contents(env) == set()
        assert env.indexer.check().clean


# -- crash safety ------------------------------------------------------------------------------


def test_contents_entry_stays_pending_when_reading_the_text_fails(env: SearchEnv) -> None:
    rid = _dataset(env, "rivers", ("gauge", "")).resources[0].id
    reader = env.indexer.text_reader

    def broken(key: str) -> str | None:
        raise BackendError("blob store unavailable")

    env.indexer.text_reader = broken
    env.store_text(rid, "flood warning")  # the after-commit drain fails and is logged
    assert env.pending() == [(CONTENTS_TOPIC, rid)]
    with pytest.raises(BackendError):
        env.indexer.drain()
    assert env.pending() == [(CONTENTS_TOPIC, rid)]
    assert _contents(env) == set()
    env.indexer.text_reader = reader
    assert env.indexer.drain() == 1
    assert env.pending() == []
    assert _contents(env, "flood") == {f"{rid}:0"}


def test_entries_stay_pending_when_the_index_fails(
    env: SearchEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    rid = _dataset(env, "rivers", ("gauge", "")).resources[0].id

    def refuse(by_resource: object) -> None:
        raise BackendError("index unavailable")

    monkeypatch.setattr(env.index, "index_contents", refuse)
    env.store_text(rid, "flood warning")
    _dataset(env, "lakes", ("shore", ""))
    assert sorted(env.pending()) == sorted(
        [(CONTENTS_TOPIC, rid), (TOPIC, env.catalog.datasets.get("lakes").id)]
    )
    monkeypatch.undo()
    env.indexer.drain()
    assert env.pending() == []
    assert _contents(env, "flood") == {f"{rid}:0"}
    assert env.catalog.search.datasets("lakes").count == 1


# -- check and repair ---------------------------------------------------------------------------


def _drifted(env: SearchEnv) -> tuple[Dataset, Dataset]:
    a = _dataset(env, "rivers", ("gauge readings", ""), ("station map", ""))
    b = _dataset(env, "lakes", ("shore survey", ""))
    env.store_text(a.resources[0].id, "flood warning levels")
    env.store_text(b.resources[0].id, "lake depth")
    assert env.indexer.check().clean
    return a, b


def test_check_and_repair_resources(env: SearchEnv) -> None:
    a, _ = _drifted(env)
    ra1, ra2 = (r.id for r in a.resources)
    env.index.index_resources({a.id: [ResourceDocument(id=ra1, package_id=a.id, name="x")]})
    env.index.index_resources(
        {"ghost": [ResourceDocument(id="r-ghost", package_id="ghost", name="boo")]}
    )
    report = env.indexer.check()
    assert report.resources_missing == (ra2,)
    assert report.resources_extra == ("r-ghost",)
    assert set(report.resource_datasets) == {a.id, "ghost"}
    assert report.missing == report.extra == report.stale == ()
    assert not report.clean
    assert env.catalog.search.repair() == report
    assert env.indexer.check().clean
    assert _resources(env, "boo") == set()
    assert _resources(env, "station") == {ra2}


def test_check_and_repair_contents(env: SearchEnv) -> None:
    a, b = _drifted(env)
    ra = a.resources[0].id
    rb = b.resources[0].id
    r_plain = a.resources[1].id
    env.index.delete_contents([ra])
    env.index.index_contents(
        {r_plain: [ContentDocument(resource_id=r_plain, package_id=a.id, text="stray")]}
    )
    env.index.index_contents(
        {rb: [ContentDocument(resource_id=rb, package_id="elsewhere", text="lake depth")]}
    )
    report = env.indexer.check()
    assert report.contents_missing == (ra,)
    assert report.contents_extra == tuple(sorted([r_plain, rb]))
    assert report.resources_missing == report.resources_extra == ()
    env.catalog.search.repair()
    assert env.indexer.check().clean
    assert _contents(env, "flood") == {f"{ra}:0"}
    assert _contents(env, "stray") == set()
    doc = env.index.get_document("contents", f"{rb}:0")
    assert doc is not None
    assert doc["package_id"] == b.id


def test_blank_text_is_not_reported_missing(env: SearchEnv) -> None:
    rid = _dataset(env, "rivers", ("gauge", "")).resources[0].id
    env.store_text(rid, "  \n ")
    assert _contents(env) == set()
    assert env.indexer.check().clean


# -- rebuilds -------------------------------------------------------------------------------


def test_reindex_rebuilds_all_three_indices_with_progress(env: SearchEnv) -> None:
    _drifted(env)
    before = {name: sorted(env.index.document_ids(name)) for name in ("resources", "contents")}
    env.index.clear()
    env.index.index_resources({"ghost": [ResourceDocument(id="r-ghost", package_id="ghost")]})
    seen: list[tuple[int, int]] = []
    env.indexer.batch_size = 1
    assert env.catalog.search.reindex(progress=lambda done, total: seen.append((done, total))) == 2
    assert seen == [(1, 2), (2, 2)]
    assert env.index.count() == 2
    for name, ids in before.items():
        assert sorted(env.index.document_ids(name)) == ids
    assert env.indexer.check().clean
    stats = env.catalog.search.stats()
    assert stats["per_index"] == {"packages": 2, "resources": 3, "contents": 2}
    assert stats["rebuilding"] is False


def test_rebuild_never_shows_an_empty_index_to_a_searcher(env: SearchEnv) -> None:
    names = [f"survey-{i}" for i in range(4)]
    for name in names:
        rid = _dataset(env, name, ("gauge", "")).resources[0].id
        env.store_text(rid, f"flood text {name}")
    env.indexer.batch_size = 1
    paused, release = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def progress(done: int, total: int) -> None:
        if done == 1:
            paused.set()
            release.wait(60)  # a safety valve only; the test releases it

    def rebuild() -> None:
        try:
            env.catalog.search.reindex(progress=progress)
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    worker = threading.Thread(target=rebuild)
    worker.start()
    try:
        paused.wait(60)
        assert env.indexer.rebuilding
        # searches answer at once, from the whole current index
        found = env.catalog.search.datasets("survey", limit=100)
        assert sorted(d.name for d in found.results) == names
        everything = env.catalog.search.everything("flood", limit=100)
        assert everything.count == len(names)
        # a write does not wait for the rebuild either; it is applied after the swap
        _dataset(env, "survey-late", ("gauge", ""))
        assert env.indexer.rebuilding  # all of the above ran while the rebuild was paused
        assert (TOPIC, env.catalog.datasets.get("survey-late").id) in env.pending()
    finally:
        release.set()
        worker.join()
    assert failures == []
    assert env.pending() == []
    found = env.catalog.search.datasets("survey", limit=100)
    assert sorted(d.name for d in found.results) == sorted([*names, "survey-late"])
    assert env.catalog.search.everything("flood", limit=100).count == len(names)
    assert env.indexer.check().clean


def test_failed_rebuild_leaves_the_index_as_it_was(env: SearchEnv) -> None:
    _drifted(env)
    before = {n: sorted(env.index.document_ids(n)) for n in ("packages", "resources", "contents")}

    def broken(key: str) -> str | None:
        raise BackendError("blob store unavailable")

    env.indexer.text_reader = broken
    with pytest.raises(BackendError):
        env.catalog.search.reindex()
    assert not env.indexer.rebuilding
    after = {n: sorted(env.index.document_ids(n)) for n in ("packages", "resources", "contents")}
    assert after == before
    assert env.catalog.search.datasets("rivers").count == 1


def test_an_empty_index_is_refilled_with_resources_and_contents(env: SearchEnv) -> None:
    _drifted(env)
    env.index.clear()
    assert env.indexer.fill_if_empty() == 2
    assert env.indexer.check().clean
    assert env.index.query_contents(TextQuery(query=MatchAll())).total == 2


def test_an_index_from_before_the_resources_index_is_rebuilt_at_open(env: SearchEnv) -> None:
    ds = _dataset(env, "rivers", ("gauge readings", ""))
    env.index.delete_resources([ds.id])  # what an index written by an older release holds
    assert env.index.count() == 1 and _resources(env) == set()
    assert env.indexer.fill_if_empty() == 1
    assert _resources(env) == {ds.resources[0].id}
    assert env.indexer.fill_if_empty() == 0  # nothing to do the next time


def test_datasets_without_resources_do_not_trigger_a_rebuild(env: SearchEnv) -> None:
    _dataset(env, "rivers")
    assert env.indexer.fill_if_empty() == 0
