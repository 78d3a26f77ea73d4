"""The real ``ckanapi.RemoteCKAN`` client, unchanged, against the Action API served by uvicorn.

A CKAN client sees what a CKAN site gives it: results unwrapped from the envelope, errors
turned back into ckanapi's exception classes (404 ``NotFound``, 409 ``ValidationError``, 403
``NotAuthorized``, 400 ``SearchQueryError``), the ``apikey`` naming the caller.

Site: ``admin`` (sysadmin), ``bob`` (editor of ``org-a``), ``dave`` (no organization); datasets
``water`` (public, two resources, tags ``water`` and ``ph``, group ``env``) and ``secret``
(private), both in ``org-a``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs
import ckanapi
import pytest
import requests
import uvicorn
from ckan_sample_site import sample_catalog  # tests/api is on sys.path (no packages)

from opencatalog.api import create_app


@attrs.frozen
class Site:
    """The served site's address, the users' tokens and the ids of what the site holds."""

    url: str
    tokens: dict[str, str]
    ids: dict[str, str]

    def client(self, who: str | None = None, **options: object) -> ckanapi.RemoteCKAN:
        apikey = self.tokens.get(who, who) if who else None
        return ckanapi.RemoteCKAN(
            self.url, apikey=apikey, user_agent="opencatalog-tests", **options
        )


@contextmanager
def _served_site() -> Iterator[Site]:
    """A fresh in-memory site served by uvicorn on a free port, in a background thread."""
    catalog, tokens, ids = sample_catalog()
    config = uvicorn.Config(
        create_app(catalog, close_catalog=True),
        host="127.0.0.1",
        port=0,
        log_config=None,
        log_level="warning",
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Site(url=f"http://127.0.0.1:{port}", tokens=tokens, ids=ids)
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    """The site the read tests share (nothing writes to it)."""
    with _served_site() as served:
        yield served


@pytest.fixture(scope="module")
def writable() -> Iterator[Site]:
    """A site of its own for the write tests."""
    with _served_site() as served:
        yield served


# -- reads ---------------------------------------------------------------------------------


def test_package_list(site: Site) -> None:
    with site.client() as ckan:
        assert ckan.action.package_list() == ["water"]
    with site.client("bob") as ckan:  # package_list lists public datasets only, as in CKAN
        assert ckan.action.package_list() == ["water"]


def test_package_show_by_name_and_id(site: Site) -> None:
    with site.client() as ckan:
        by_name = ckan.action.package_show(id="water")
        by_id = ckan.action.package_show(id=site.ids["water"])
    assert by_name == by_id
    assert by_name["id"] == site.ids["water"]
    assert by_name["title"] == "Water quality"
    assert by_name["organization"]["name"] == "org-a"
    assert [r["name"] for r in by_name["resources"]] == ["readings", "stations"]
    assert sorted(t["name"] for t in by_name["tags"]) == ["ph", "water"]
    assert [g["name"] for g in by_name["groups"]] == ["env"]


def test_resource_show(site: Site) -> None:
    with site.client() as ckan:
        dataset = ckan.action.package_show(id="water")
        resource = ckan.action.resource_show(id=dataset["resources"][1]["id"])
    assert resource["url"] == "https://example.org/water.json"
    assert resource["package_id"] == site.ids["water"]


@pytest.mark.parametrize("get_only", [False, True], ids=["post", "get"])
def test_package_search_with_facets(site: Site, get_only: bool) -> None:
    # ckanapi passes keyword names through as they are: CKAN's dotted names need **{...}
    with site.client(get_only=get_only) as ckan:
        found = ckan.action.package_search(q="water", **{"facet.field": ["tags", "organization"]})
    assert found["count"] == 1
    assert [d["name"] for d in found["results"]] == ["water"]
    tags = {i["name"]: i["count"] for i in found["search_facets"]["tags"]["items"]}
    assert tags == {"water": 1, "ph": 1}
    assert found["facets"]["organization"] == {"org-a": 1}


def test_package_search_sees_private_datasets_with_a_members_token(site: Site) -> None:
    with site.client("bob") as ckan:
        found = ckan.action.package_search(q="secret", include_private=True)
    assert [d["name"] for d in found["results"]] == ["secret"]
    with site.client() as ckan:
        assert ckan.action.package_search(q="secret", include_private=True)["count"] == 0


def test_status_show_and_license_list(site: Site) -> None:
    with site.client() as ckan:
        status = ckan.action.status_show()
        licenses = ckan.action.license_list()
    assert status["ckan_version"].startswith("2.")
    assert status["site_title"]
    assert licenses
    assert {"id", "title"} <= set(licenses[0])
    assert "cc-by" in {lic["id"] for lic in licenses}


# -- errors and callers ---------------------------------------------------------------------


def test_unknown_dataset_raises_not_found(site: Site) -> None:
    with site.client() as ckan, pytest.raises(ckanapi.NotFound) as caught:
        ckan.action.package_show(id="no-such-dataset")
    # ckanapi keeps the message after CKAN's "Not found: " prefix
    assert "not found" in str(caught.value).lower()


def test_missing_parameter_raises_validation_error(site: Site) -> None:
    with site.client() as ckan, pytest.raises(ckanapi.ValidationError) as caught:
        ckan.action.package_show()
    assert caught.value.error_dict == {"id": ["Missing value"], "__type": "Validation Error"}


def test_bad_search_raises_search_query_error(site: Site) -> None:
    with site.client() as ckan, pytest.raises(ckanapi.SearchQueryError) as caught:
        ckan.action.package_search(q="water", no_such_parameter="1")
    assert "no_such_parameter" in str(caught.value)


def test_apikey_identifies_the_caller(site: Site) -> None:
    with site.client("bob") as ckan:
        assert ckan.action.package_show(id="secret")["private"] is True
    with site.client("admin") as ckan:
        assert ckan.action.package_show(id=site.ids["secret"])["name"] == "secret"
    # anonymous, an outsider and an unknown key: a private dataset is not found (not 403)
    for who in (None, "dave", "not-a-real-token"):
        with site.client(who) as ckan, pytest.raises(ckanapi.NotFound):
            ckan.action.package_show(id="secret")


def test_unknown_action_is_a_ckanapi_error(site: Site) -> None:
    with site.client() as ckan, pytest.raises(ckanapi.CKANAPIError) as caught:
        ckan.action.no_such_action()
    assert "Action name not known: no_such_action" in str(caught.value)


# -- writes ----------------------------------------------------------------------------------


def test_package_create_show_and_patch(writable: Site) -> None:
    with writable.client("bob") as ckan:
        created = ckan.action.package_create(
            name="rain",
            title="Rainfall",
            owner_org="org-a",
            tags=[{"name": "rain"}],
            resources=[{"url": "https://example.org/rain.csv", "name": "daily"}],
        )
        assert created["name"] == "rain"
        assert created["organization"]["name"] == "org-a"
        assert ckan.action.package_show(id=created["id"])["title"] == "Rainfall"
        patched = ckan.action.package_patch(id="rain", title="Rainfall, daily")
    assert patched["id"] == created["id"]
    assert patched["title"] == "Rainfall, daily"
    # what package_patch was not given stays as it was
    assert [r["name"] for r in patched["resources"]] == ["daily"]
    assert [t["name"] for t in patched["tags"]] == ["rain"]
    with writable.client() as ckan:
        assert ckan.action.package_show(id="rain")["title"] == "Rainfall, daily"


def test_writes_without_the_right_raise_not_authorized(writable: Site) -> None:
    for who in (None, "dave"):  # anonymous, and a user outside the organization
        with writable.client(who) as ckan, pytest.raises(ckanapi.NotAuthorized) as caught:
            ckan.action.package_create(name=f"nope-{who or 'anonymous'}", owner_org="org-a")
        error = caught.value.extra_msg  # ckanapi keeps CKAN's error object as it came
        assert error["__type"] == "Authorization Error"
        assert error["message"].startswith("Access denied")
    with writable.client("dave") as ckan, pytest.raises(ckanapi.NotAuthorized):
        ckan.action.package_patch(id="water", title="Vandalized")
    with writable.client() as ckan:
        assert ckan.action.package_show(id="water")["title"] == "Water quality"


def test_a_taken_name_raises_validation_error(writable: Site) -> None:
    with writable.client("bob") as ckan, pytest.raises(ckanapi.ValidationError) as caught:
        ckan.action.package_create(name="water", owner_org="org-a")
    assert caught.value.error_dict == {
        "name": ["That URL is already in use."],
        "__type": "Validation Error",
    }


def test_resource_create_with_an_upload(writable: Site, tmp_path: Path) -> None:
    data = b"station,ph\nA,7.1\nB,6.8\n"
    path = tmp_path / "ph.csv"
    path.write_bytes(data)
    with writable.client("bob") as ckan, path.open("rb") as upload:
        # a file-like keyword argument makes ckanapi send a multipart request
        created = ckan.action.resource_create(package_id="water", name="ph", upload=upload)
    assert created["package_id"] == writable.ids["water"]
    assert created["name"] == "ph"
    assert created["url_type"] == "upload"
    assert created["size"] == len(data)
    url = created["url"]
    if url.startswith("/"):
        url = writable.url + url
    response = requests.get(url, timeout=10)
    assert response.status_code == 200
    assert response.content == data
    with writable.client() as ckan:
        resources = ckan.action.package_show(id="water")["resources"]
    assert [r["name"] for r in resources][-1] == "ph"


def test_user_show(writable: Site) -> None:
    with writable.client("bob") as ckan:
        own = ckan.action.user_show(id="bob")
    with writable.client() as ckan:
        public = ckan.action.user_show(id="bob")
        with pytest.raises(ckanapi.NotFound):
            ckan.action.user_show(id="nobody")
    assert own["name"] == public["name"] == "bob"
    assert own["email"] == "bob@example.org"  # only the user themselves (and sysadmins)
    assert "email" not in public or not public["email"]
    assert "password" not in own and "password_hash" not in own


def test_organization_show(site: Site) -> None:
    with site.client() as ckan:
        org = ckan.action.organization_show(id="org-a")
        assert org["id"] == site.ids["org-a"]
        assert org["title"] == "Org A"
        assert org["is_organization"] is True
        with pytest.raises(ckanapi.NotFound):
            ckan.action.organization_show(id="no-such-org")
        assert "org-a" in ckan.action.organization_list()
