"""The HTTP edge of resource files, through Starlette's TestClient."""

from __future__ import annotations

import hashlib
import io
from urllib.parse import urlsplit

import attrs
import pytest

pytest.importorskip("starlette")
pytest.importorskip("multipart")
testclient = pytest.importorskip("starlette.testclient")  # needs httpx2 (or httpx)
TestClient = testclient.TestClient

from opencatalog.adapters.memory_blobs import MemoryBlobStore  # noqa: E402
from opencatalog.api import create_app  # noqa: E402
from opencatalog.api.auth import token_from_headers  # noqa: E402
from opencatalog.api.errors import ERROR_TABLE, row_for  # noqa: E402
from opencatalog.bootstrap import open_catalog  # noqa: E402
from opencatalog.config import Settings  # noqa: E402
from opencatalog.domain.commands import (  # noqa: E402
    DatasetInput,
    GroupInput,
    ResourceInput,
    UserInput,
)
from opencatalog.errors import (  # noqa: E402
    AlreadyExists,
    NotAuthorized,
    NotFound,
    OpenCatalogError,
    ValidationFailed,
)
from opencatalog.ports.blobs import BlobTooLarge  # noqa: E402
from opencatalog.testing.stateful import CHEAP_PASSWORD_HASHING  # noqa: E402

DATA = b"station,ph\nA,7.1\nB,6.9\n"
PREVIEW = bytes(range(256)) * 4


@attrs.define
class Site:
    catalog: object
    client: TestClient
    tokens: dict[str, str]
    rid: str
    private_rid: str
    link_rid: str
    dataset_id: str

    def auth(self, who: str) -> dict[str, str]:
        return {} if who == "anonymous" else {"Authorization": f"Bearer {self.tokens[who]}"}


@pytest.fixture
def site():
    settings = {}
    if "run_jobs_in_process" in attrs.fields_dict(Settings):
        settings["run_jobs_in_process"] = False
    catalog = open_catalog(password_hash_params=dict(CHEAP_PASSWORD_HASHING), **settings)
    catalog._ctx.blobs = MemoryBlobStore()
    tokens = {}
    for name in ("bob", "carol", "dave"):
        user = UserInput(name=name, email=f"{name}@example.org", password="pw-long-1")
        catalog.users.create(user)
        tokens[name] = catalog.tokens.create(name, "test").secret
    catalog.organizations.create(GroupInput(name="org-a"))
    catalog.organizations.add_member("org-a", "bob", "editor")
    catalog.organizations.add_member("org-a", "carol", "member")
    public = catalog.datasets.create(
        DatasetInput(
            name="water",
            owner_org="org-a",
            resources=[
                ResourceInput(url="", name="readings"),
                ResourceInput(url="https://example.org/data.csv"),
            ],
        )
    )
    private = catalog.datasets.create(
        DatasetInput(
            name="secret", owner_org="org-a", private=True, resources=[ResourceInput(url="")]
        )
    )
    app = create_app(catalog, close_catalog=True)
    with TestClient(app) as client:
        yield Site(
            catalog=catalog,
            client=client,
            tokens=tokens,
            rid=public.resources[0].id,
            private_rid=private.resources[0].id,
            link_rid=public.resources[1].id,
            dataset_id=public.id,
        )


def upload(site: Site, rid: str, data: bytes = DATA, *, who: str = "bob", name="readings.csv"):
    return site.client.post(
        f"/api/v1/resources/{rid}/upload",
        files={"file": (name, io.BytesIO(data), "text/csv")},
        headers=site.auth(who),
    )


def set_preview(site: Site, rid: str, data: bytes = PREVIEW, text: bytes | None = None) -> None:
    blobs = site.catalog._ctx.blobs
    with site.catalog._ctx.storage.unit_of_work(write=True) as uow:
        record = uow.files.get(rid)
        changes = {"preview_key": blobs.put(io.BytesIO(data)).key}
        if text is not None:
            changes["text_key"] = blobs.put(io.BytesIO(text)).key
        uow.files.put(attrs.evolve(record, **changes))
        uow.commit()


def assert_problem(response, status: int, title: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert (body["status"], body["title"], body["type"]) == (status, title, "about:blank")
    assert body["detail"]
    return body


# -- uploads -------------------------------------------------------------------------------


def test_proxied_upload_and_download(site):
    answer = upload(site, site.rid)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["pipeline_status"] == "pending"
    resource = body["resource"]
    assert resource["url_type"] == "upload"
    assert resource["size"] == len(DATA)
    assert resource["hash"] == "sha256:" + hashlib.sha256(DATA).hexdigest()
    path = f"/dataset/{site.dataset_id}/resource/{site.rid}/download/readings.csv"
    assert resource["url"] == path
    got = site.client.get(f"/api/v1/resources/{site.rid}/download")
    assert got.status_code == 200 and got.content == DATA
    assert got.headers["content-length"] == str(len(DATA))
    assert got.headers["content-type"].startswith("text/csv")
    assert got.headers["content-disposition"] == (
        "attachment; filename=\"readings.csv\"; filename*=UTF-8''readings.csv"
    )
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["content-security-policy"] == "sandbox"
    # the resource's url is served too (CKAN's permalink)
    again = site.client.get(resource["url"])
    assert again.status_code == 200 and again.content == DATA


def test_upload_needs_rights_and_a_file(site):
    assert_problem(upload(site, site.rid, who="anonymous"), 403, "FORBIDDEN")
    assert_problem(upload(site, site.rid, who="carol"), 403, "FORBIDDEN")
    assert_problem(upload(site, site.private_rid, who="dave"), 404, "NOT_FOUND")
    missing = site.client.post(
        f"/api/v1/resources/{site.rid}/upload",
        files={"other": ("a.csv", io.BytesIO(DATA), "text/csv")},
        headers=site.auth("bob"),
    )
    body = assert_problem(missing, 400, "VALIDATION_ERROR")
    assert body["errors"] == {"file": ["Missing value"]}
    raw = site.client.post(
        f"/api/v1/resources/{site.rid}/upload", content=DATA, headers=site.auth("bob")
    )
    assert_problem(raw, 400, "VALIDATION_ERROR")
    bad_id = site.client.post("/api/v1/resources/not-a-uuid/upload", headers=site.auth("bob"))
    assert_problem(bad_id, 400, "VALIDATION_ERROR")


def test_too_large_upload_is_413_and_leaves_nothing(site):
    site.catalog._ctx.upload_max_bytes = 10
    answer = upload(site, site.rid, b"x" * 11)
    assert_problem(answer, 413, "PAYLOAD_TOO_LARGE")
    assert list(site.catalog._ctx.blobs.keys()) == []
    assert site.catalog.files.record(site.rid) is None


def test_invalid_token_is_refused(site):
    answer = site.client.get(
        f"/api/v1/resources/{site.rid}/download", headers={"Authorization": "Bearer nope"}
    )
    assert_problem(answer, 403, "FORBIDDEN")


@pytest.mark.parametrize(
    ("headers", "token"),
    [
        ({"authorization": "Bearer abc"}, "abc"),
        ({"authorization": "bearer  abc "}, "abc"),
        ({"authorization": "abc"}, "abc"),
        ({"x-ckan-api-key": "abc"}, "abc"),
        ({"authorization": "abc", "x-ckan-api-key": "def"}, "abc"),
        ({}, None),
        ({"authorization": "Bearer "}, None),
    ],
)
def test_token_headers(headers, token):
    assert token_from_headers(headers) == token


def test_all_token_headers_authenticate(site):
    upload(site, site.private_rid)
    token = site.tokens["carol"]
    for headers in (
        {"Authorization": f"Bearer {token}"},
        {"Authorization": token},
        {"X-CKAN-API-Key": token},
    ):
        got = site.client.get(f"/api/v1/resources/{site.private_rid}/download", headers=headers)
        assert got.status_code == 200 and got.content == DATA


# -- signed uploads ------------------------------------------------------------------------


def test_signed_upload_flow(site):
    issued = site.client.post(
        f"/api/v1/resources/{site.rid}/upload-url",
        json={"filename": "log.csv", "content_type": "text/csv", "max_size": 1000},
        headers=site.auth("bob"),
    )
    assert issued.status_code == 200, issued.text
    body = issued.json()
    assert body["method"] == "PUT" and body["max_size"] == 1000
    url = urlsplit(body["upload_url"])
    assert url.path.startswith("/api/v1/uploads/")
    put = site.client.put(url.path, content=DATA)  # no credentials: the URL is the grant
    assert put.status_code == 200, put.text
    assert put.json()["resource"]["url"].endswith("/download/log.csv")
    replay = site.client.put(url.path, content=DATA)
    assert_problem(replay, 403, "FORBIDDEN")
    tampered = site.client.put(url.path[:-3] + "abc", content=DATA)
    assert_problem(tampered, 403, "FORBIDDEN")
    complete = site.client.post(
        f"/api/v1/resources/{site.rid}/upload-complete", headers=site.auth("bob")
    )
    assert complete.status_code == 200 and complete.json()["pipeline_status"] == "pending"
    assert site.client.get(f"/api/v1/resources/{site.rid}/download").content == DATA


def test_signed_upload_limits(site):
    issued = site.client.post(
        f"/api/v1/resources/{site.rid}/upload-url", json={"max_size": 5}, headers=site.auth("bob")
    ).json()
    path = urlsplit(issued["upload_url"]).path
    assert_problem(site.client.put(path, content=b"123456"), 413, "PAYLOAD_TOO_LARGE")
    assert list(site.catalog._ctx.blobs.keys()) == []
    too_long = site.client.post(
        f"/api/v1/resources/{site.rid}/upload-url",
        json={"expires_in": 3600},
        headers=site.auth("bob"),
    )
    assert_problem(too_long, 400, "VALIDATION_ERROR")
    anonymous = site.client.post(f"/api/v1/resources/{site.rid}/upload-url")
    assert_problem(anonymous, 403, "FORBIDDEN")
    not_json = site.client.post(
        f"/api/v1/resources/{site.rid}/upload-url", content=b"{", headers=site.auth("bob")
    )
    assert_problem(not_json, 400, "VALIDATION_ERROR")


def test_upload_complete_on_a_link_is_400(site):
    answer = site.client.post(
        f"/api/v1/resources/{site.link_rid}/upload-complete", headers=site.auth("bob")
    )
    assert_problem(answer, 400, "VALIDATION_ERROR")


# -- reading -------------------------------------------------------------------------------


def test_external_link_download_is_a_redirect(site):
    got = site.client.get(f"/api/v1/resources/{site.link_rid}/download", follow_redirects=False)
    assert got.status_code == 302
    assert got.headers["location"] == "https://example.org/data.csv"


def test_private_files_are_404_for_outsiders(site):
    upload(site, site.private_rid)
    set_preview(site, site.private_rid, text=b"secret")
    for who in ("anonymous", "dave"):
        for what in ("download", "preview", "text"):
            answer = site.client.get(
                f"/api/v1/resources/{site.private_rid}/{what}", headers=site.auth(who)
            )
            assert_problem(answer, 404, "NOT_FOUND")
    for what, expected in (("download", DATA), ("preview", PREVIEW), ("text", b"secret")):
        answer = site.client.get(
            f"/api/v1/resources/{site.private_rid}/{what}", headers=site.auth("carol")
        )
        assert answer.status_code == 200 and answer.content == expected


@pytest.mark.parametrize(
    ("header", "status", "start", "end"),
    [
        (None, 200, 0, 1024),
        ("bytes=0-99", 206, 0, 100),
        ("bytes=-24", 206, 1000, 1024),
        ("bytes=1000-", 206, 1000, 1024),
        ("bytes=500-100", 200, 0, 1024),
        ("bytes=abc", 200, 0, 1024),
        ("bytes=0-1,5-6", 200, 0, 1024),
    ],
)
def test_preview_ranges(site, header, status, start, end):
    upload(site, site.rid)
    set_preview(site, site.rid)
    headers = {"Range": header} if header else {}
    got = site.client.get(f"/api/v1/resources/{site.rid}/preview", headers=headers)
    assert got.status_code == status
    assert got.content == PREVIEW[start:end]
    assert got.headers["content-length"] == str(end - start)
    assert got.headers["accept-ranges"] == "bytes"
    assert got.headers["content-type"] == "application/json"
    assert got.headers["x-content-type-options"] == "nosniff"
    if status == 206:
        assert got.headers["content-range"] == f"bytes {start}-{end - 1}/1024"
    else:
        assert "content-range" not in got.headers


def test_unsatisfiable_preview_range_is_416(site):
    upload(site, site.rid)
    set_preview(site, site.rid)
    got = site.client.get(f"/api/v1/resources/{site.rid}/preview", headers={"Range": "bytes=2000-"})
    assert_problem(got, 416, "RANGE_NOT_SATISFIABLE")
    assert got.headers["content-range"] == "bytes */1024"


def test_preview_and_text_missing_are_404(site):
    upload(site, site.rid)
    for what in ("preview", "text"):
        assert_problem(site.client.get(f"/api/v1/resources/{site.rid}/{what}"), 404, "NOT_FOUND")


def test_text(site):
    upload(site, site.rid)
    set_preview(site, site.rid, text="héllo wörld".encode())
    got = site.client.get(f"/api/v1/resources/{site.rid}/text")
    assert got.status_code == 200 and got.text == "héllo wörld"
    assert got.headers["content-type"] == "text/plain; charset=utf-8"
    assert got.headers["x-truncated"] == "false"
    cut = site.client.get(f"/api/v1/resources/{site.rid}/text?max_chars=5")
    assert cut.text == "héllo" and cut.headers["x-truncated"] == "true"
    bad = site.client.get(f"/api/v1/resources/{site.rid}/text?max_chars=x")
    assert_problem(bad, 400, "VALIDATION_ERROR")


def test_unknown_route_is_a_problem(site):
    assert_problem(site.client.get("/api/v1/nothing-here"), 404, "NOT_FOUND")


# -- the error table -----------------------------------------------------------------------


def test_error_table_rows():
    assert row_for(BlobTooLarge(10)).status == 413
    assert row_for(NotFound()).status == 404
    assert row_for(NotAuthorized()).status == 403
    assert (row_for(ValidationFailed({})).status, row_for(ValidationFailed({})).ckan_status) == (
        400,
        409,
    )
    assert row_for(AlreadyExists("taken")).status == 409
    assert row_for(OpenCatalogError()).status == 500
    assert row_for(RuntimeError()).status == 500
    classes = [row.error for row in ERROR_TABLE]
    for i, cls in enumerate(classes):  # subclasses come before their bases
        assert not any(issubclass(cls, earlier) for earlier in classes[:i]), cls


def test_unexpected_errors_hide_their_message(site, monkeypatch):
    def boom(self, resource_id):
        raise RuntimeError("postgres://user:password@host/db")

    monkeypatch.setattr(type(site.catalog.files), "download", boom)
    client = TestClient(create_app(site.catalog), raise_server_exceptions=False)
    answer = client.get(f"/api/v1/resources/{site.rid}/download")
    body = assert_problem(answer, 500, "INTERNAL_SERVER_ERROR")
    assert "password" not in answer.text and body["id"]


def test_streamed_bodies_without_length_are_capped(site):
    site.catalog._ctx.upload_max_bytes = 10

    def chunks():
        for _ in range(100):
            yield b"x" * 1000

    issued = site.catalog.as_user("bob").files.create_upload_url(site.rid, max_size=10)
    signed = site.client.put(issued.url, content=chunks())
    assert signed.request.headers.get("transfer-encoding") == "chunked"
    assert_problem(signed, 413, "PAYLOAD_TOO_LARGE")

    boundary = "b0undary"

    def multipart():
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        yield from chunks()
        yield f"\r\n--{boundary}--\r\n".encode()

    proxied = site.client.post(
        f"/api/v1/resources/{site.rid}/upload",
        content=multipart(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}", **site.auth("bob")},
    )
    assert_problem(proxied, 413, "PAYLOAD_TOO_LARGE")
    assert list(site.catalog._ctx.blobs.keys()) == []
    assert site.catalog.files.record(site.rid) is None
