"""catalog.files: uploads (proxied and signed), downloads, text, previews and the orphan sweep.

The blob store is the in-memory fake with its own clock (so the sweep's grace period can be
crossed); what the pipeline would derive (text, preview) is written into the file record by
hand, as the pipeline does it.
"""

from __future__ import annotations

import base64
import io
import json
import os
import stat
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

import attrs
import pytest

from opencatalog.adapters.memory_blobs import MemoryBlobStore
from opencatalog.config import Settings
from opencatalog.domain.commands import ResourceInput
from opencatalog.domain.files import PipelineStatus, ResourceFile
from opencatalog.errors import NotAuthorized, NotFound, ValidationFailed
from opencatalog.ports.blobs import BlobTooLarge, is_blob_key
from opencatalog.services.files import (
    DEFAULT_UPLOAD_MAX_BYTES,
    PIPELINE_JOB,
    RangeNotSatisfiable,
    parse_range,
    read_or_create_secret_key,
    safe_filename,
)
from opencatalog.testing.stateful import stored_contents

DATA = b"station,ph\nA,7.1\nB,6.9\n"


class BlobClock:
    """The blob store's clock: stands still until moved."""

    def __init__(self) -> None:
        self.now = datetime(2024, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def blob_clock() -> BlobClock:
    return BlobClock()


@pytest.fixture
def catalog(make_catalog, blob_clock):
    """A catalog whose jobs stay queued (nothing runs them here) with an in-memory blob store."""
    settings = {}
    if "run_jobs_in_process" in attrs.fields_dict(Settings):
        settings["run_jobs_in_process"] = False
    cat = make_catalog(**settings)
    cat._ctx.blobs = MemoryBlobStore(clock=blob_clock)
    return cat


@pytest.fixture
def blobs(catalog) -> MemoryBlobStore:
    return catalog._ctx.blobs


@pytest.fixture
def dataset(make_dataset):
    """``water`` in org-a (public) with one resource without a file."""
    return make_dataset("water", resources=[ResourceInput(url="", name="readings")])


@pytest.fixture
def rid(dataset) -> str:
    return dataset.resources[0].id


def pipeline_jobs(catalog, rid):
    return [j for j in catalog.jobs.list(kind=PIPELINE_JOB) if j.payload["resource_id"] == rid]


def record_of(catalog, rid) -> ResourceFile | None:
    with catalog._ctx.storage.unit_of_work() as uow:
        return uow.files.get(rid)


def put_record(catalog, record: ResourceFile) -> None:
    with catalog._ctx.storage.unit_of_work(write=True) as uow:
        uow.files.put(record)
        uow.commit()


def download_bytes(files, rid) -> bytes:
    with files.download(rid) as found:
        assert found.redirect is None
        return found.content.read_all()


# -- uploads -------------------------------------------------------------------------------


def test_upload_round_trip(cast, rid, dataset, blobs):
    bob = cast.as_("bob")
    result = bob.files.upload(rid, io.BytesIO(DATA), filename="readings.csv")
    res = result.resource
    assert res.url_type == "upload"
    assert res.url == f"/dataset/{dataset.id}/resource/{rid}/download/readings.csv"
    assert res.size == len(DATA)
    import hashlib

    digest = hashlib.sha256(DATA).hexdigest()
    assert res.hash == f"sha256:{digest}"
    assert res.format == "CSV"
    assert res.mimetype == "text/csv"
    assert res.name == "readings"  # the publisher's name is kept
    assert bob.resources.get(rid) == res
    record = record_of(cast.catalog, rid)
    assert record is not None and record.uploaded and record.blob_key == result.record.blob_key
    assert (record.size, record.sha256, record.status) == (
        len(DATA),
        digest,
        PipelineStatus.PENDING,
    )
    assert blobs.open(record.blob_key).read() == DATA
    assert download_bytes(cast.as_("anonymous").files, rid) == DATA
    with cast.as_("anonymous").files.download(rid) as found:
        content = found.content
        assert (content.size, content.length, content.mimetype, content.filename) == (
            len(DATA),
            len(DATA),
            "text/csv",
            "readings.csv",
        )
        assert content.sha256 == digest
    after = cast.catalog.datasets.get(dataset.id)
    assert after.revision == dataset.revision + 1
    assert cast.catalog.activities.for_dataset(dataset.id)[0].activity_type == "dataset.updated"


def test_upload_enqueues_the_pipeline_in_the_same_transaction(cast, rid, backend):
    result = cast.as_("bob").files.upload(rid, io.BytesIO(DATA), filename="a.csv")
    jobs = pipeline_jobs(cast.catalog, rid)
    assert len(jobs) == 1
    assert jobs[0].dedupe_key == f"pipeline:{rid}"
    if backend == "sqlite":  # the SQL job table takes the job inside the upload's transaction
        assert result.job is not None and result.job.id == jobs[0].id
        assert record_of(cast.catalog, rid).job_id == jobs[0].id
    # a second upload before the job ran adds no second pending job
    cast.as_("bob").files.upload(rid, io.BytesIO(b"other"), filename="b.csv")
    assert len(pipeline_jobs(cast.catalog, rid)) == 1


def test_a_failed_metadata_commit_leaves_no_job_and_no_change(cast, rid, monkeypatch, blobs):
    before = stored_contents(cast.catalog)
    with cast.catalog._ctx.storage.unit_of_work() as uow:
        repo_class = type(uow.files)

    def broken_put(self, record):
        raise RuntimeError("disk full")

    monkeypatch.setattr(repo_class, "put", broken_put)
    with pytest.raises(RuntimeError):
        cast.as_("bob").files.upload(rid, io.BytesIO(DATA), filename="a.csv")
    monkeypatch.undo()
    assert stored_contents(cast.catalog) == before
    assert pipeline_jobs(cast.catalog, rid) == []
    assert record_of(cast.catalog, rid) is None
    # the blob was written first; it is an orphan the sweep removes after the grace period
    assert len(list(blobs.keys())) == 1
    report = cast.catalog.files.collect_garbage(timedelta(0))
    assert report.orphans == 1 and list(blobs.keys()) == []


def test_size_limit_leaves_nothing_behind(cast, rid, blobs):
    cast.catalog._ctx.upload_max_bytes = 10
    bob = cast.as_("bob")
    assert bob.files.upload_max_bytes == 10
    before = stored_contents(cast.catalog)
    with pytest.raises(BlobTooLarge) as exc:
        bob.files.upload(rid, io.BytesIO(b"x" * 11), filename="big.csv")
    assert isinstance(exc.value, ValidationFailed)
    assert exc.value.errors == {"upload": ["File is larger than 10 bytes"]}
    assert stored_contents(cast.catalog) == before
    assert list(blobs.keys()) == [] and blobs._temporaries == {}
    assert record_of(cast.catalog, rid) is None
    assert pipeline_jobs(cast.catalog, rid) == []
    assert bob.files.upload(rid, io.BytesIO(b"x" * 10)).resource.size == 10  # exactly the cap


def test_default_limit():
    assert DEFAULT_UPLOAD_MAX_BYTES == 100 * 1024 * 1024


HOSTILE_NAMES = [
    "../../etc/passwd",
    "..\\..\\x",
    "/abs/path.csv",
    "C:\\Windows\\x.csv",
    "%2e%2e%2fsecret",
    "nul\x00byte.csv",
    "a\u2215b.csv",
    "x" * 300 + ".csv",
    ".",
    "..",
    ".htaccess",
    "evil\r\nSet-Cookie: x=1.csv",
    'quote".csv',
    "",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_client_file_names_never_become_paths(cast, rid, dataset, blobs, name):
    result = cast.as_("bob").files.upload(rid, io.BytesIO(DATA), filename=name)
    prefix = f"/dataset/{dataset.id}/resource/{rid}/download/"
    url = result.resource.url
    assert url.startswith(prefix)
    shown = unquote(url[len(prefix) :])
    assert shown and "/" not in shown and "\\" not in shown and "\u2215" not in shown
    assert not shown.startswith(".") and ".." not in shown
    assert all(ch.isprintable() and ch not in '"\r\n\x00' for ch in shown)
    assert len(shown) <= 100
    assert all(is_blob_key(key) for key in list(blobs.keys()))
    with cast.catalog.files.download(rid) as found:
        assert found.content.filename == shown


def test_safe_filename():
    assert safe_filename("report 2024 (final).csv") == "report-2024-final.csv"
    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename("データ.csv") == "データ.csv"
    assert safe_filename("..") == "file"
    assert safe_filename(None) == "file"
    long = safe_filename("a" * 300 + ".xlsx")
    assert len(long) == 100 and long.endswith(".xlsx")


def test_upload_permissions(cast, rid, make_dataset):
    for who, error in [("carol", NotAuthorized), ("dave", NotAuthorized), ("erin", NotAuthorized)]:
        with pytest.raises(error):
            cast.as_(who).files.upload(rid, io.BytesIO(DATA))
    with pytest.raises(NotAuthorized):
        cast.as_("anonymous").files.upload(rid, io.BytesIO(DATA))
    private = make_dataset("hidden", private=True, resources=[ResourceInput(url="")])
    with pytest.raises(NotFound):
        cast.as_("dave").files.upload(private.resources[0].id, io.BytesIO(DATA))
    assert cast.as_("alice").files.upload(rid, io.BytesIO(DATA)).resource.size == len(DATA)


def test_refused_upload_reads_nothing(cast, rid, blobs):
    stream = io.BytesIO(DATA)
    with pytest.raises(NotAuthorized):
        cast.as_("carol").files.upload(rid, stream)
    assert stream.tell() == 0 and list(blobs.keys()) == []


@pytest.mark.parametrize("bad", ["nope", "", "12345678123412341234123456789abc", None, 42])
def test_resource_ids_must_be_uuids(cast, bad):
    with pytest.raises(ValidationFailed):
        cast.catalog.files.upload(bad, io.BytesIO(DATA))
    with pytest.raises(ValidationFailed):
        cast.catalog.files.download(bad)


def test_unknown_resource_is_not_found(cast):
    with pytest.raises(NotFound):
        cast.catalog.files.upload("12345678-1234-4234-8234-123456789abc", io.BytesIO(DATA))


def test_same_bytes_keep_derived_files_new_bytes_drop_them(cast, rid, blobs):
    files = cast.catalog.files
    first = files.upload(rid, io.BytesIO(DATA), filename="a.csv")
    text = blobs.put(io.BytesIO(b"extracted"))
    put_record(cast.catalog, attrs.evolve(first.record, text_key=text.key))
    again = files.upload(rid, io.BytesIO(DATA), filename="a.csv")
    assert again.record.text_key == text.key
    changed = files.upload(rid, io.BytesIO(b"new bytes"), filename="a.csv")
    assert changed.record.text_key is None and changed.record.preview_key is None


# -- signed uploads ------------------------------------------------------------------------


def test_signed_upload_round_trip(cast, rid, dataset):
    bob = cast.as_("bob")
    issued = bob.files.create_upload_url(
        rid, max_size=1000, filename="../sensor log.csv", content_type="text/csv; charset=utf-8"
    )
    assert issued.url.startswith("/api/v1/uploads/") and issued.url.endswith(issued.token)
    assert issued.method == "PUT" and issued.max_size == 1000
    result = cast.as_("anonymous").files.accept_signed_upload(issued.token, io.BytesIO(DATA))
    assert result.resource.url.endswith("/download/sensor-log.csv")
    assert result.resource.mimetype == "text/csv"
    assert download_bytes(cast.catalog.files, rid) == DATA
    assert len(pipeline_jobs(cast.catalog, rid)) == 1
    # the activity is the issuer's
    activity = cast.catalog.activities.for_dataset(dataset.id)[0]
    assert activity.user_id == cast.id_of("bob")


def test_signed_upload_is_single_use(cast, rid):
    issued = cast.as_("bob").files.create_upload_url(rid)
    anon = cast.as_("anonymous").files
    anon.accept_signed_upload(issued.token, io.BytesIO(DATA))
    for body in (DATA, b"different"):
        with pytest.raises(NotAuthorized):
            anon.accept_signed_upload(issued.token, io.BytesIO(body))
    assert download_bytes(cast.catalog.files, rid) == DATA


def test_signed_upload_expires(cast, rid, clock):
    issued = cast.as_("bob").files.create_upload_url(rid, expires_in=timedelta(minutes=5))
    clock.advance(timedelta(minutes=5))
    with pytest.raises(NotAuthorized):
        cast.catalog.files.accept_signed_upload(issued.token, io.BytesIO(DATA))
    assert record_of(cast.catalog, rid) is None


def _tampered(token: str, change) -> str:
    body, _, signature = token.partition(".")
    data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    change(data)
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode() + "." + signature


def test_bad_and_tampered_tokens_are_refused(cast, rid, make_dataset, blobs):
    other = make_dataset("other", resources=[ResourceInput(url="")]).resources[0].id
    issued = cast.as_("bob").files.create_upload_url(rid, max_size=100)
    token = issued.token
    body, _, signature = token.partition(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    bad = [
        "",
        "garbage",
        "a.b",
        token + "x",
        body + "." + flipped,
        body + ".",
        "." + signature,
        _tampered(token, lambda d: d.update(r=other)),  # bound to its resource
        _tampered(token, lambda d: d.update(m=10**9)),  # bound to its size
        _tampered(token, lambda d: d.update(e=d["e"] + 3600)),  # bound to its expiry
        _tampered(token, lambda d: d.update(s=cast.id_of("alice"))),  # bound to its issuer
        "x" * 10_000,
    ]
    files = cast.as_("anonymous").files
    for candidate in bad:
        with pytest.raises(NotAuthorized) as exc:
            files.accept_signed_upload(candidate, io.BytesIO(DATA))
        assert str(exc.value) == "Invalid or expired upload URL"
    assert list(blobs.keys()) == []
    # a token signed with another key (another catalog's) is refused as well
    cast.catalog._ctx.upload_secret = b"another key"
    with pytest.raises(NotAuthorized):
        files.accept_signed_upload(token, io.BytesIO(DATA))


def test_signed_upload_enforces_its_size(cast, rid, blobs):
    issued = cast.as_("bob").files.create_upload_url(rid, max_size=5)
    with pytest.raises(BlobTooLarge):
        cast.catalog.files.accept_signed_upload(issued.token, io.BytesIO(b"123456"))
    assert list(blobs.keys()) == []
    # the failed attempt did not use the token up
    cast.catalog.files.accept_signed_upload(issued.token, io.BytesIO(b"12345"))
    assert download_bytes(cast.catalog.files, rid) == b"12345"


def test_signed_upload_rechecks_the_issuer(cast, rid):
    issued = cast.as_("bob").files.create_upload_url(rid)
    cast.catalog.organizations.remove_member("org-a", "bob")
    with pytest.raises(NotAuthorized):
        cast.catalog.files.accept_signed_upload(issued.token, io.BytesIO(DATA))


def test_a_resource_change_retires_its_upload_urls(cast, rid):
    issued = cast.as_("bob").files.create_upload_url(rid)
    cast.catalog.resources.update(rid, ResourceInput(url="", name="renamed"))
    with pytest.raises(NotAuthorized):
        cast.catalog.files.accept_signed_upload(issued.token, io.BytesIO(DATA))


def test_upload_url_arguments(cast, rid):
    files = cast.as_("bob").files
    for kwargs in [
        {"expires_in": timedelta(minutes=16)},
        {"expires_in": timedelta(0)},
        {"max_size": -1},
        {"max_size": DEFAULT_UPLOAD_MAX_BYTES + 1},
        {"content_type": "not a type"},
    ]:
        with pytest.raises(ValidationFailed):
            files.create_upload_url(rid, **kwargs)
    with pytest.raises(NotAuthorized):
        cast.as_("carol").files.create_upload_url(rid)
    with pytest.raises(NotAuthorized):
        cast.as_("anonymous").files.create_upload_url(rid)


def test_complete_upload(cast, rid, make_dataset, blobs):
    bob = cast.as_("bob").files
    with pytest.raises(ValidationFailed):
        bob.complete_upload(rid)  # not an upload yet
    uploaded = bob.upload(rid, io.BytesIO(DATA), filename="a.csv")
    first = bob.complete_upload(rid)
    second = bob.complete_upload(rid)
    assert first.record.status is PipelineStatus.PENDING
    assert len(pipeline_jobs(cast.catalog, rid)) == 1  # duplicates give one job
    assert second.resource == uploaded.resource
    with pytest.raises(NotAuthorized):
        cast.as_("carol").files.complete_upload(rid)
    blobs.delete(uploaded.record.blob_key)
    with pytest.raises(ValidationFailed):
        bob.complete_upload(rid)
    link = make_dataset("linked", resources=[ResourceInput(url="https://example.org/a.csv")])
    with pytest.raises(ValidationFailed):
        bob.complete_upload(link.resources[0].id)


# -- reading -------------------------------------------------------------------------------


def test_download_redirects_external_links_only_to_http(cast, make_dataset):
    links = make_dataset(
        "links",
        resources=[
            ResourceInput(url="https://example.org/data.csv?x=1"),
            ResourceInput(url="javascript:alert(1)"),
            ResourceInput(url="file:///etc/passwd"),
            ResourceInput(url="//evil.example/x"),
            ResourceInput(url=""),
        ],
    )
    files = cast.as_("anonymous").files
    with files.download(links.resources[0].id) as found:
        assert found.redirect == "https://example.org/data.csv?x=1" and found.content is None
    for res in links.resources[1:]:
        with pytest.raises(NotFound):
            files.download(res.id)


def test_private_files_are_invisible_to_outsiders(cast, make_dataset, blobs):
    private = make_dataset("secret", private=True, resources=[ResourceInput(url="")])
    rid = private.resources[0].id
    uploaded = cast.as_("bob").files.upload(rid, io.BytesIO(DATA), filename="s.csv")
    text = blobs.put(io.BytesIO(b"secret text"))
    preview = blobs.put(io.BytesIO(b'{"kind":"text"}'))
    put_record(
        cast.catalog, attrs.evolve(uploaded.record, text_key=text.key, preview_key=preview.key)
    )
    for who in ("anonymous", "dave", "erin", "frank"):
        files = cast.as_(who).files
        for read in (
            lambda f: f.download(rid),
            lambda f: f.text(rid),
            lambda f: f.preview(rid),
            lambda f: f.preview(rid, "bytes=0-1"),
            lambda f: f.record(rid),
            lambda f: f.create_upload_url(rid),
        ):
            with pytest.raises(NotFound):
                read(files)
    carol = cast.as_("carol").files  # a member of the organization reads it
    assert download_bytes(carol, rid) == DATA
    assert carol.text(rid).text == "secret text"
    assert carol.preview(rid).read_all() == b'{"kind":"text"}'


def test_text_is_bounded(cast, rid, blobs):
    uploaded = cast.catalog.files.upload(rid, io.BytesIO(DATA))
    files = cast.as_("anonymous").files
    with pytest.raises(NotFound):
        files.text(rid)
    body = "é" * 10 + "z" * 10
    text = blobs.put(io.BytesIO(body.encode()))
    put_record(cast.catalog, attrs.evolve(uploaded.record, text_key=text.key, encoding="utf-8"))
    whole = files.text(rid)
    assert (whole.text, whole.truncated, whole.encoding) == (body, False, "utf-8")
    cut = files.text(rid, max_chars=11)
    assert (cut.text, cut.truncated) == ("é" * 10 + "z", True)
    cut = files.text(rid, max_chars=3)  # a cut inside a multi-byte character is dropped
    assert (cut.text, cut.truncated) == ("ééé", True)
    for bad in (0, -1, 10**9, "10"):
        with pytest.raises(ValidationFailed):
            files.text(rid, max_chars=bad)
    put_record(cast.catalog, attrs.evolve(uploaded.record, text_key=text.key, text_truncated=True))
    assert files.text(rid).truncated is True


PREVIEW = bytes(range(256)) * 4  # 1024 bytes


@pytest.fixture
def previewed(cast, rid, blobs):
    uploaded = cast.catalog.files.upload(rid, io.BytesIO(DATA))
    preview = blobs.put(io.BytesIO(PREVIEW))
    put_record(cast.catalog, attrs.evolve(uploaded.record, preview_key=preview.key))
    return rid


@pytest.mark.parametrize(
    ("header", "status", "start", "end"),
    [
        (None, 200, 0, 1024),
        ("bytes=0-0", 206, 0, 1),
        ("bytes=0-99", 206, 0, 100),
        ("bytes=1000-", 206, 1000, 1024),  # open-ended
        ("bytes=-24", 206, 1000, 1024),  # suffix
        ("bytes=-5000", 206, 0, 1024),  # suffix longer than the body
        ("bytes=1000-99999", 206, 1000, 1024),  # end past the body: cut
        ("BYTES=10-19", 206, 10, 20),
        ("bytes=500-100", 200, 0, 1024),  # malformed: ignored
        ("bytes=abc", 200, 0, 1024),
        ("items=0-1", 200, 0, 1024),
        ("bytes=0-1,2-3", 200, 0, 1024),  # several ranges: ignored, no multipart
        ("bytes=-", 200, 0, 1024),
        ("bytes=" + ",".join(["0-"] * 1000), 200, 0, 1024),
    ],
)
def test_preview_ranges(cast, previewed, header, status, start, end):
    found = cast.as_("anonymous").files.preview(previewed, header)
    assert not isinstance(found, RangeNotSatisfiable)
    assert found.status == status and found.size == 1024
    body = found.read_all()
    assert body == PREVIEW[start:end]
    assert found.length == len(body)
    assert found.mimetype == "application/json"
    if status == 206:
        assert found.content_range == f"bytes {start}-{end - 1}/1024"
    else:
        assert found.content_range is None


@pytest.mark.parametrize("header", ["bytes=1024-", "bytes=5000-6000", "bytes=-0"])
def test_unsatisfiable_preview_ranges(cast, previewed, header):
    found = cast.as_("anonymous").files.preview(previewed, header)
    assert isinstance(found, RangeNotSatisfiable)
    assert found.content_range == "bytes */1024"


def test_parse_range_on_an_empty_body_and_caps():
    assert isinstance(parse_range("bytes=0-0", 0), RangeNotSatisfiable)
    assert isinstance(parse_range("bytes=-1", 0), RangeNotSatisfiable)
    assert parse_range(None, 0) is None
    assert parse_range("bytes=0-", 10_000_000) == (0, 1024 * 1024)  # open-ended: one chunk
    assert parse_range("bytes=0-", 100, open_cap=10) == (0, 10)
    assert parse_range("bytes=0-99999999999", 10**9) == (0, 16 * 1024 * 1024)
    assert isinstance(parse_range("bytes=99999999999999999999-", 10), RangeNotSatisfiable)


def test_preview_missing(cast, rid):
    with pytest.raises(NotFound):
        cast.catalog.files.preview(rid)


# -- garbage -------------------------------------------------------------------------------


def test_gc_keeps_referenced_and_young_blobs_and_removes_old_orphans(cast, rid, blobs, blob_clock):
    files = cast.catalog.files
    kept = files.upload(rid, io.BytesIO(DATA)).record.blob_key
    old_orphan = blobs.put(io.BytesIO(b"old orphan")).key
    blob_clock.now += timedelta(hours=2)
    young_orphan = blobs.put(io.BytesIO(b"young orphan")).key
    dry = files.collect_garbage(timedelta(hours=1), dry_run=True)
    assert (dry.referenced, dry.orphans, dry.temporaries, dry.dry_run) == (1, 1, None, True)
    assert set(blobs.keys()) == {kept, old_orphan, young_orphan}
    report = files.collect_garbage(timedelta(hours=1))
    assert (report.referenced, report.orphans, report.temporaries) == (1, 1, 0)
    assert set(blobs.keys()) == {kept, young_orphan}
    blob_clock.now += timedelta(hours=2)
    assert files.collect_garbage().orphans == 1  # the default grace is one hour
    assert set(blobs.keys()) == {kept}
    assert download_bytes(files, rid) == DATA


def test_gc_sweeps_stale_temporaries(cast, blobs, blob_clock):
    stale = blobs._new_temporary()
    stale.write(b"half an upload")
    blob_clock.now += timedelta(hours=2)
    assert cast.catalog.files.collect_garbage(timedelta(hours=1)).temporaries == 1
    assert blobs._temporaries == {}


def test_gc_is_for_sysadmins(cast):
    for who in ("alice", "bob", "dave", "anonymous"):
        with pytest.raises(NotAuthorized):
            cast.as_(who).files.collect_garbage()
    assert cast.as_("root").files.collect_garbage().orphans == 0
    with pytest.raises(ValidationFailed):
        cast.catalog.files.collect_garbage(timedelta(seconds=-1))


# -- the secret key ------------------------------------------------------------------------


def test_an_empty_secret_key_file_left_by_a_crash_is_replaced(tmp_path):
    path = tmp_path / "secret_key"
    path.write_text("")
    key = read_or_create_secret_key(path)
    assert len(key) == 64
    assert read_or_create_secret_key(path) == key
    assert [p.name for p in tmp_path.iterdir()] == ["secret_key"]  # no temporary left


def test_processes_racing_to_create_the_key_agree_on_one(tmp_path):
    import threading

    path = tmp_path / "secret_key"
    keys: list[bytes] = []
    start = threading.Barrier(8)

    def create() -> None:
        start.wait()
        keys.append(read_or_create_secret_key(path))

    threads = [threading.Thread(target=create) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(keys) == 8 and len(set(keys)) == 1
    assert path.read_text().strip().encode() == keys[0]
    assert [p.name for p in tmp_path.iterdir()] == ["secret_key"]


def test_secret_key_file_is_created_private_and_kept(tmp_path):
    path = tmp_path / "secret_key"
    first = read_or_create_secret_key(path)
    assert len(first) == 64
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_or_create_secret_key(path) == first


def test_folder_catalogs_keep_their_signing_key(tmp_path):
    from opencatalog.bootstrap import open_catalog
    from opencatalog.domain.commands import DatasetInput, GroupInput
    from opencatalog.testing.stateful import CHEAP_PASSWORD_HASHING

    settings = {"password_hash_params": dict(CHEAP_PASSWORD_HASHING)}
    if "run_jobs_in_process" in attrs.fields_dict(Settings):
        settings["run_jobs_in_process"] = False
    folder = tmp_path / "cat"
    with open_catalog(folder, **settings) as first:
        first.organizations.create(GroupInput(name="org-a"))
        created = first.datasets.create(
            DatasetInput(name="water", owner_org="org-a", resources=[ResourceInput(url="")])
        )
        rid = created.resources[0].id
        issued = first.files.create_upload_url(rid)
    key_file = folder / "secret_key"
    assert key_file.exists()
    if os.name == "posix":
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    with open_catalog(folder, **settings) as second:  # another process, the same key
        second._ctx.blobs = MemoryBlobStore()
        second.files.accept_signed_upload(issued.token, io.BytesIO(DATA))
        assert download_bytes(second.files, rid) == DATA
        unused = second.files.create_upload_url(rid)
    third = open_catalog(folder, secret_key="configured", **settings)
    with third, pytest.raises(NotAuthorized):  # a configured key replaces the file's
        third.files.accept_signed_upload(unused.token, io.BytesIO(DATA))
