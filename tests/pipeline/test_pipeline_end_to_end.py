"""The resource pipeline end to end: a dataset with an external URL on a local HTTP server,
processed by the catalog's jobs into stored bytes, text, preview, resource facts and the
contents index; on the in-memory catalog and on the embedded folder catalog (SQLite,
tantivy, files)."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from _serve import FileServer, make_pdf, make_xlsx, make_zip_bomb, serving

from opencatalog import open_catalog
from opencatalog.adapters.memory_queue import MemoryTaskQueue
from opencatalog.domain.commands import (
    DatasetInput,
    GroupInput,
    ResourceInput,
    ResourcePatch,
    UserInput,
)
from opencatalog.domain.jobs import JobStatus, StepStatus
from opencatalog.errors import NotAuthorized, NotFound, ValidationFailed
from opencatalog.ports.blobs import is_blob_key
from opencatalog.services.catalog import Catalog

CHEAP = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}
BACKENDS = ["memory", "folder"]


@pytest.fixture(scope="module")
def server() -> Iterator[FileServer]:
    with serving() as srv:
        yield srv


@pytest.fixture(params=BACKENDS)
def make(
    request: pytest.FixtureRequest, server: FileServer, tmp_path: Path
) -> Iterator[Callable[..., Catalog]]:
    opened: list[Catalog] = []

    def build(**settings: Any) -> Catalog:
        options = {
            **server.settings(),
            "create_unowned_dataset": True,
            "password_hash_params": CHEAP,
            "index_delay": 0,
            **settings,
        }
        if request.param == "memory":
            catalog = open_catalog(**options)
        else:
            catalog = open_catalog(tmp_path / f"cat{len(opened)}", **options)
        opened.append(catalog)
        return catalog

    yield build
    for catalog in opened:
        catalog.close()


@pytest.fixture
def catalog(make: Callable[..., Catalog]) -> Catalog:
    return make()


def add(catalog: Catalog, url: str, *, name: str = "water", **fields: Any) -> str:
    """Create a dataset with one resource at ``url``; return the resource id."""
    ds = catalog.datasets.create(
        DatasetInput(name=name, resources=(ResourceInput(url=url, **fields),))
    )
    return ds.resources[0].id


def steps(catalog: Catalog, rid: str) -> dict[str, tuple[str, str | None]]:
    return {s.name: (s.status.value, s.message) for s in catalog.pipeline.status(rid).steps}


def stored_record(catalog: Catalog, rid: str) -> Any:
    with catalog._ctx.storage.unit_of_work() as uow:
        return uow.files.get(rid)


def blob_text(catalog: Catalog, key: str) -> str:
    blobs = catalog._ctx.blobs
    assert blobs is not None
    with blobs.open(key) as stream:
        return stream.read().decode("utf-8")


CSV = b"city,species\nOslo,zanzibarite\nBergen,puffin\n"
FILES: dict[str, tuple[bytes, str, str, str]] = {
    # name: (bytes, served type, expected format, a word only in the file)
    "csv": (CSV, "text/csv", "CSV", "zanzibarite"),
    "json": (
        json.dumps({"items": [{"label": "quokkalicious"}]}).encode(),
        "application/json",
        "JSON",
        "quokkalicious",
    ),
    "xlsx": (
        make_xlsx([["station", "reading"], ["marmotville", 12]]),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "XLSX",
        "marmotville",
    ),
    "pdf": (make_pdf(["Report on axolotlry"]), "application/pdf", "PDF", "axolotlry"),
}


@pytest.mark.parametrize("kind", sorted(FILES))
def test_each_format_gives_text_preview_hash_size_and_format(
    catalog: Catalog, server: FileServer, kind: str
) -> None:
    body, content_type, fmt, word = FILES[kind]
    url = server.add(f"/e2e/{kind}-file", body, content_type)  # no extension: format unknown
    rid = add(catalog, url)
    assert catalog.pipeline.status(rid).status == "pending"
    assert catalog.jobs.run_pending() == 1

    report = catalog.pipeline.status(rid)
    assert report.status == "complete", report.steps
    assert report.sha256 == hashlib.sha256(body).hexdigest()
    assert report.size == len(body)
    assert report.format == fmt
    assert report.has_text
    assert report.has_preview == (kind != "pdf")  # no preview for PDF documents
    record = stored_record(catalog, rid)
    assert word in blob_text(catalog, record.text_key)
    if kind != "pdf":
        preview = json.loads(blob_text(catalog, record.preview_key))
        assert preview["kind"] in ("table", "text")
    # the resource now carries the facts, and its format since it had none
    resource = catalog.resources.get(rid)
    assert resource.hash == f"sha256:{report.sha256}"
    assert resource.size == len(body)
    assert resource.mimetype == report.mimetype
    assert resource.format == fmt
    expected = ["ok"] * 4 + ["skipped" if kind == "pdf" else "ok"]
    assert [s for s, _ in steps(catalog, rid).values()] == expected


def test_results_are_a_dataset_change_with_an_activity(
    catalog: Catalog, server: FileServer
) -> None:
    url = server.add("/e2e/activity.csv", CSV, "text/csv")
    rid = add(catalog, url)
    before = catalog.datasets.get("water")
    catalog.jobs.run_pending()
    after = catalog.datasets.get("water")
    assert after.revision == before.revision + 1
    activities = catalog.activities.for_dataset("water")
    assert activities[0].activity_type == "dataset.updated"
    # running again on the same bytes stores nothing new and changes nothing
    job = catalog.pipeline.run(rid)
    assert job.status is JobStatus.PENDING
    catalog.jobs.run_pending()
    assert catalog.datasets.get("water").revision == after.revision
    assert catalog.pipeline.status(rid).status == "complete"


def test_a_word_only_in_the_file_is_found_through_the_contents_index(
    catalog: Catalog, server: FileServer
) -> None:
    url = server.add("/e2e/search.csv", CSV, "text/csv")
    rid = add(catalog, url, name="birds")
    catalog.jobs.run_pending()
    result = catalog.search.everything("zanzibarite")
    assert [ds.name for ds in result.results] == ["birds"]
    ds_id = result.results[0].id
    assert [c.resource_id for c in result.matches[ds_id].contents] == [rid]
    # deleting the resource takes its text out of the index and its record away
    catalog.resources.delete(rid)
    assert catalog.search.everything("zanzibarite").count == 0
    assert stored_record(catalog, rid) is None


def test_purging_a_dataset_removes_its_file_records(catalog: Catalog, server: FileServer) -> None:
    url = server.add("/e2e/purge.csv", CSV, "text/csv")
    rid = add(catalog, url)
    catalog.jobs.run_pending()
    assert stored_record(catalog, rid) is not None
    catalog.datasets.purge("water")
    assert stored_record(catalog, rid) is None
    assert catalog.search.everything("zanzibarite").count == 0


def test_a_changed_url_is_fetched_again(catalog: Catalog, server: FileServer) -> None:
    first = server.add("/e2e/v1.csv", CSV, "text/csv")
    second = server.add("/e2e/v2.csv", b"a,b\nnarwhalish,2\n", "text/csv")
    rid = add(catalog, first)
    catalog.jobs.run_pending()
    catalog.resources.patch(rid, ResourcePatch(description="metadata only"))
    assert catalog.pipeline.status(rid).status == "complete"  # no new job
    catalog.resources.patch(rid, ResourcePatch(url=second))
    assert catalog.pipeline.status(rid).status == "pending"
    catalog.jobs.run_pending()
    report = catalog.pipeline.status(rid)
    assert report.status == "complete" and report.source_url == second
    assert catalog.search.everything("narwhalish").count == 1
    assert catalog.search.everything("zanzibarite").count == 0


def test_a_url_changed_while_its_job_runs_leaves_the_result_to_the_next_job(
    catalog: Catalog, server: FileServer
) -> None:
    gate = threading.Event()
    slow = server.add("/e2e/slow.csv", CSV, "text/csv", gate=gate)
    fresh = server.add("/e2e/fresh.csv", b"x\nokapiform\n", "text/csv")
    rid = add(catalog, slow)
    runner = threading.Thread(target=catalog.jobs.run_pending)
    runner.start()
    assert server.routes["/e2e/slow.csv"].entered.wait(20)
    catalog.resources.patch(rid, ResourcePatch(url=fresh))  # queues a follow-up job
    gate.set()
    runner.join(60)
    assert not runner.is_alive()
    jobs = catalog.jobs.list(kind="pipeline")
    assert [j.status for j in jobs] == [JobStatus.COMPLETE, JobStatus.COMPLETE]
    first = {s.name: s for s in jobs[0].steps}
    assert first["commit"].status is StepStatus.SKIPPED
    assert "URL changed" in (first["commit"].message or "")
    report = catalog.pipeline.status(rid)
    assert report.source_url == fresh and report.status == "complete"
    assert catalog.search.everything("okapiform").count == 1
    assert catalog.search.everything("zanzibarite").count == 0


def test_a_bulk_load_leaves_the_pipeline_to_enqueue_all(
    catalog: Catalog, server: FileServer
) -> None:
    url = server.add("/e2e/bulk.csv", CSV, "text/csv")
    inputs = [
        DatasetInput(name=f"bulk-{n}", resources=(ResourceInput(url=url), ResourceInput(url="")))
        for n in range(5)
    ]
    assert catalog.datasets.create_many(inputs).created == 5
    assert catalog.jobs.stats()["pending"] == 0
    assert catalog.pipeline.enqueue_all(batch_size=2) == 5  # the empty URLs are left out
    assert catalog.jobs.stats()["pending"] == 5
    assert catalog.pipeline.enqueue_all() == 5  # pending jobs are reused
    assert catalog.jobs.stats()["pending"] == 5
    catalog.jobs.run_pending()
    assert catalog.pipeline.stats()["complete"] == 5


def test_resources_without_a_fetchable_url_get_no_job(catalog: Catalog) -> None:
    ds = catalog.datasets.create(
        DatasetInput(
            name="links",
            resources=(ResourceInput(url=""), ResourceInput(url="ftp://example.org/x.csv")),
        )
    )
    assert catalog.jobs.stats()["pending"] == 0
    for res in ds.resources:
        assert catalog.pipeline.status(res.id).status is None
        with pytest.raises(ValidationFailed):
            catalog.pipeline.run(res.id)


# -- hostile and odd files: each ends in a clear recorded outcome -------------------------------


def test_path_traversal_in_a_url_writes_nothing_outside_the_blob_store(
    catalog: Catalog, server: FileServer, tmp_path: Path
) -> None:
    path = "/e2e/..%2f..%2f..%2fetc%2fpasswd"
    url = server.add(path, b"root:x:0:0\n", "text/plain")
    rid = add(catalog, url, name="traversal")
    catalog.jobs.run_pending()
    report = catalog.pipeline.status(rid)
    assert report.status == "complete"
    blobs = catalog._ctx.blobs
    assert blobs is not None
    keys = list(blobs.keys())
    assert keys and all(is_blob_key(k) for k in keys)
    assert not (tmp_path / "etc").exists()
    record = stored_record(catalog, rid)
    assert all(is_blob_key(k) for k in record.blob_keys())


def test_a_zip_bomb_is_stored_but_not_expanded(catalog: Catalog, server: FileServer) -> None:
    bomb = make_zip_bomb(32)
    url = server.add("/e2e/bomb.zip", bomb, "application/zip")
    rid = add(catalog, url, name="bomb")
    catalog.jobs.run_pending()
    report = catalog.pipeline.status(rid)
    assert report.status == "complete"
    assert report.size == len(bomb) and report.format == "ZIP"
    extract = steps(catalog, rid)["extract"]
    assert extract[0] == "skipped" and "zip bomb suspected" in (extract[1] or "")
    assert not report.has_text


def test_a_mislabelled_file_is_recorded_as_what_it_is(catalog: Catalog, server: FileServer) -> None:
    pdf = make_pdf(["Not a table at all"])
    url = server.add("/e2e/table.csv", pdf, "text/csv")
    rid = add(catalog, url, name="mislabelled")
    assert catalog.resources.get(rid).format == "CSV"  # guessed from the URL
    catalog.jobs.run_pending()
    report = catalog.pipeline.status(rid)
    assert report.status == "complete"
    assert report.format == "PDF" and report.mimetype == "application/pdf"
    detect_step = steps(catalog, rid)["detect"]
    assert "mislabelled" in (detect_step[1] or "")
    resource = catalog.resources.get(rid)
    assert resource.format == "CSV"  # what the publisher wrote stays
    assert resource.mimetype == "application/pdf"


def test_an_empty_file_is_complete_with_nothing_to_extract(
    catalog: Catalog, server: FileServer
) -> None:
    url = server.add("/e2e/empty.csv", b"", "text/csv")
    rid = add(catalog, url, name="empty")
    catalog.jobs.run_pending()
    report = catalog.pipeline.status(rid)
    assert report.status == "complete"
    assert report.size == 0 and report.sha256 == hashlib.sha256(b"").hexdigest()
    found = steps(catalog, rid)
    assert found["detect"] == ("ok", "empty file")
    assert found["extract"] == ("skipped", "empty file")
    assert found["preview"] == ("skipped", "empty file")
    assert not report.has_text and not report.has_preview


def test_a_non_utf8_csv_is_decoded_with_its_charset(catalog: Catalog, server: FileServer) -> None:
    body = "place;note\nCafé Größe;crème brûlée\nZürich;façade\n".encode("cp1252")
    url = server.add("/e2e/latin.csv", body, "text/csv")
    rid = add(catalog, url, name="latin")
    catalog.jobs.run_pending()
    report = catalog.pipeline.status(rid)
    assert report.status == "complete"
    assert report.encoding is not None and report.encoding.replace("-", "") != "utf8"
    record = stored_record(catalog, rid)
    text = blob_text(catalog, record.text_key)
    assert "crème brûlée" in text and "Zürich" in text
    assert catalog.search.everything("façade").count == 1


# -- failures ----------------------------------------------------------------------------------


def test_a_failed_fetch_is_retried_then_recorded_as_an_error(server: FileServer) -> None:
    queue = MemoryTaskQueue(backoff=lambda attempts: timedelta(0))
    with open_catalog(
        queue=queue, create_unowned_dataset=True, password_hash_params=CHEAP, **server.settings()
    ) as catalog:
        good = server.add("/e2e/flaky.csv", CSV, "text/csv")
        rid = add(catalog, good)
        catalog.jobs.run_pending()
        kept = catalog.pipeline.status(rid).sha256
        server.routes["/e2e/flaky.csv"].status = 500
        hits = server.hits["/e2e/flaky.csv"]
        job = catalog.pipeline.run(rid)
        catalog.jobs.run_pending()
        failed = catalog.jobs.get(job.id)
        assert failed.status is JobStatus.ERROR and failed.attempts == 3
        assert server.hits["/e2e/flaky.csv"] == hits + 3
        report = catalog.pipeline.status(rid)
        assert report.status == "error"
        assert report.error is not None and "500" in report.error
        assert report.steps[0].name == "fetch" and report.steps[0].status is StepStatus.ERROR
        assert report.sha256 == kept  # the bytes fetched before are kept
        assert catalog.search.everything("zanzibarite").count == 1


def test_a_blocked_address_is_refused_and_recorded(server: FileServer) -> None:
    queue = MemoryTaskQueue(backoff=lambda attempts: timedelta(0))
    with open_catalog(queue=queue, create_unowned_dataset=True, password_hash_params=CHEAP) as cat:
        rid = add(cat, server.url("/e2e/anything.csv"))  # loopback, not allowed by default
        cat.jobs.run_pending()
        report = cat.pipeline.status(rid)
        assert report.status == "error"
        assert report.error is not None and "blocked_address" in report.error
        assert "127.0.0.1" not in report.error


# -- permissions ---------------------------------------------------------------------------------


def test_who_may_run_and_read(catalog: Catalog, server: FileServer) -> None:
    catalog.users.create(UserInput(name="ed", email="ed@example.org", password="pass-word-1"))
    catalog.users.create(UserInput(name="mo", email="mo@example.org", password="pass-word-1"))
    catalog.organizations.create(GroupInput(name="org"))
    catalog.organizations.add_member("org", "ed", "editor")
    url = server.add("/e2e/perm.csv", CSV, "text/csv")
    public = add(catalog, url, name="open-data")
    hidden = (
        catalog.datasets.create(
            DatasetInput(
                name="closed", owner_org="org", private=True, resources=(ResourceInput(url=url),)
            )
        )
        .resources[0]
        .id
    )
    anon, mo, ed = catalog.anonymous(), catalog.as_user("mo"), catalog.as_user("ed")
    assert anon.pipeline.status(public).status == "pending"
    with pytest.raises(NotFound):
        anon.pipeline.status(hidden)
    with pytest.raises(NotFound):
        mo.pipeline.run(hidden)
    with pytest.raises(NotAuthorized):
        mo.pipeline.run(public)
    assert ed.pipeline.run(hidden).kind == "pipeline"
    for view in (anon, mo, ed):
        with pytest.raises(NotAuthorized):
            view.pipeline.stats()
        with pytest.raises(NotAuthorized):
            view.pipeline.enqueue_all()
        with pytest.raises(NotAuthorized):
            view.jobs.run_pending()


# -- the catalog's own worker --------------------------------------------------------------------


def test_the_in_process_worker_processes_a_new_url_by_itself(
    make: Callable[..., Catalog], server: FileServer
) -> None:
    catalog = make(run_jobs_in_process=True)
    url = server.add("/e2e/background.csv", CSV, "text/csv")
    rid = add(catalog, url)
    deadline = time.monotonic() + 30
    while catalog.pipeline.status(rid).status != "complete":
        assert time.monotonic() < deadline, catalog.pipeline.status(rid)
        time.sleep(0.02)
    assert catalog.jobs.run_pending() == 0  # nothing left for the caller
    assert catalog.search.everything("zanzibarite").count == 1
