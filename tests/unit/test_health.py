"""Link health: checks of resources' external URLs, recorded on their resource files."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest

from opencatalog.domain.commands import ResourceInput
from opencatalog.domain.files import HealthStatus
from opencatalog.errors import NotAuthorized, NotFound, ValidationFailed
from opencatalog.pipeline.fetch import Fetcher
from opencatalog.services.health import HEALTH_JOB, run_health_job


class _Handler(http.server.BaseHTTPRequestHandler):
    etag = '"v1"'

    def log_message(self, *args: object) -> None:
        pass

    def do_HEAD(self) -> None:
        if self.path.startswith("/ok"):
            self.send_response(200)
            self.send_header("ETag", _Handler.etag)
        elif self.path.startswith("/slow-head"):
            self.send_response(405)
        else:
            self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        self.send_response(206 if self.path.startswith("/slow-head") else 404)
        self.send_header("Content-Length", "1")
        self.end_headers()
        self.wfile.write(b"x")


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture
def links(catalog, make_dataset, server):
    """A dataset with an answering link, a link that refuses HEAD, a dead link, a link to
    an internal address, and an upload-like resource; the catalog's fetcher may reach the
    test server (and nothing else internal)."""
    port = int(server.rsplit(":", 1)[1])
    catalog._ctx.fetcher = Fetcher(
        allowed_ports={80, 443, port},
        extra_allowed_networks=["127.0.0.1/32"],
        per_host_interval=0,
        timeout=5,
    )
    _Handler.etag = '"v1"'
    ds = make_dataset(
        resources=[
            ResourceInput(url=f"{server}/ok.csv", name="ok"),
            ResourceInput(url=f"{server}/slow-head.csv", name="nohead"),
            ResourceInput(url=f"{server}/gone.csv", name="dead"),
            ResourceInput(url="http://169.254.169.254/latest", name="internal"),
            ResourceInput(url="file.csv", name="local", url_type="upload"),
        ]
    )
    return {r.name: r.id for r in ds.resources}


def _health(catalog, rid):
    with catalog._ctx.storage.unit_of_work() as uow:
        record = uow.files.get(rid)
    return record.health if record else None


def test_check_due_records_each_outcome(catalog, links):
    summary = catalog.health.check_due()
    assert (summary.checked, summary.ok, summary.error, summary.unknown) == (4, 2, 1, 1)
    ok = _health(catalog, links["ok"])
    assert (ok.status, ok.http_status, ok.etag) == (HealthStatus.OK, 200, '"v1"')
    assert _health(catalog, links["nohead"]).http_status == 206
    dead = _health(catalog, links["dead"])
    assert (dead.status, dead.http_status) == (HealthStatus.ERROR, 404)
    assert _health(catalog, links["internal"]).status is HealthStatus.UNKNOWN
    assert _health(catalog, links["local"]) is None  # uploads are never checked
    stats = catalog.health.stats()
    assert {k: stats[k] for k in ("ok", "error", "unknown")} == {"ok": 2, "error": 1, "unknown": 1}
    assert set(stats) == {"ok", "error", "unknown", "unchecked"}
    assert [r.resource_id for r in catalog.health.list(status="error")] == [links["dead"]]


def test_links_checked_recently_are_not_due(catalog, links):
    catalog.health.check_due()
    assert catalog.health.check_due().checked == 0
    assert catalog.health.check_due(older_than=timedelta(0)).checked == 4


def test_the_limit_takes_never_checked_links_first(catalog, links):
    first = catalog.health.check_due(limit=1)
    assert first.checked == 1
    second = catalog.health.check_due(limit=3, older_than=timedelta(0))
    assert second.checked == 3
    checked = [rid for rid in links.values() if _health(catalog, rid) is not None]
    assert len(checked) == 4  # the three never checked went before the one checked


def test_a_changed_etag_enqueues_a_refetch(catalog, links):
    catalog.health.check(links["ok"])
    jobs_before = catalog.jobs.stats()["pending"]
    _Handler.etag = '"v2"'
    result = catalog.health.check(links["ok"])
    assert result.etag == '"v2"'
    pending = catalog.jobs.list(status="pending", kind="pipeline")
    assert any(j.payload == {"resource_id": links["ok"]} for j in pending)
    assert catalog.jobs.stats()["pending"] >= jobs_before + (0 if jobs_before else 1)


def test_an_unchanged_etag_enqueues_nothing_new(catalog, links):
    catalog.health.check(links["ok"])
    before = len(catalog.jobs.list(kind="pipeline", limit=1000))
    catalog.health.check(links["ok"])
    assert len(catalog.jobs.list(kind="pipeline", limit=1000)) == before


def test_checking_one_link_needs_update_rights(cast, links):
    with pytest.raises(NotAuthorized):
        cast.as_("carol").health.check(links["ok"])
    assert cast.as_("bob").health.check(links["ok"]).status is HealthStatus.OK


def test_outsiders_and_members_may_not_run_batches_or_read_stats(cast, links):
    for who in ("dave", "alice"):
        with pytest.raises(NotAuthorized):
            cast.as_(who).health.check_due()
        with pytest.raises(NotAuthorized):
            cast.as_(who).health.stats()
    assert cast.as_("root").health.stats()["ok"] == 0


def test_uploads_and_unknown_resources_are_refused(catalog, links):
    with pytest.raises(ValidationFailed):
        catalog.health.check(links["local"])
    with pytest.raises(NotFound):
        catalog.health.check("00000000-0000-4000-8000-000000000000")


def test_a_resource_repointed_during_the_check_keeps_no_stale_result(catalog, links, server):
    from opencatalog.domain.commands import ResourcePatch

    fetcher = catalog._ctx.fetcher
    original = fetcher.probe

    def probe_then_repoint(url):
        result = original(url)
        catalog.resources.patch(links["ok"], ResourcePatch(url=f"{server}/ok-moved.csv"))
        return result

    fetcher.probe = probe_then_repoint
    catalog.health.check(links["ok"])
    assert _health(catalog, links["ok"]) is None


def test_the_link_health_job_runs_a_batch(catalog, links):
    job = catalog._ctx.task_queue.enqueue(HEALTH_JOB, {"limit": 2})
    steps = run_health_job(catalog._ctx, job)
    assert steps[0].name == "link_health"
    assert "checked 2" in (steps[0].message or "")
    stats = catalog.health.stats()
    assert sum(stats.values()) - stats["unchecked"] == 2
