"""The HTTP layer of the CKAN Action API: routes, request parsing, envelope, errors, JSONP,
authentication; and the site and dataset read actions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from opencatalog.api.actions import ACTIONS, Action
from opencatalog.api.actions.params import Params
from opencatalog.domain.commands import DatasetInput


def _envelope(response: Any, name: str) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/json;charset=utf-8"
    body = response.json()
    assert body["help"] == f"http://testserver/api/3/action/help_show?name={name}"
    return body


# -- routes and request parsing -----------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["/api/3/action", "/api/action"])
def test_both_routes_answer_in_the_envelope(ckan: Any, prefix: str) -> None:
    response = ckan.client.get(f"{prefix}/package_list")
    assert response.status_code == 200
    assert _envelope(response, "package_list") == {
        "help": "http://testserver/api/3/action/help_show?name=package_list",
        "success": True,
        "result": ["water"],
    }


@pytest.mark.parametrize(
    ("path", "version"), [("/api", 1), ("/api/1", 1), ("/api/2", 2), ("/api/3", 3)]
)
def test_version_routes(ckan: Any, path: str, version: int) -> None:
    assert ckan.client.get(path).json() == {"version": version}


def test_an_unknown_action_is_a_400_json_string(ckan: Any) -> None:
    response = ckan.client.post("/api/3/action/package_explode", json={})
    assert response.status_code == 400
    assert response.json() == "Bad request: Action name not known: package_explode"


def test_get_is_refused_for_an_action_with_side_effects(
    ckan: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(ACTIONS, "touch_it", Action("touch_it", lambda cat, params: "done"))
    response = ckan.client.get("/api/3/action/touch_it")
    assert response.status_code == 400
    assert response.json() == (
        "Bad request: JSON Error: Invalid request. Please use POST method for your request"
    )
    assert ckan.result("touch_it") == "done"


def _echo(monkeypatch: pytest.MonkeyPatch, *, get: bool = True) -> None:
    def echo(cat: Any, params: Params) -> dict[str, Any]:
        return {
            k: v if isinstance(v, str | list | dict | int | None) else repr(v)
            for k, v in params.data.items()
        }

    monkeypatch.setitem(ACTIONS, "echo", Action("echo", echo, get=get))


def test_query_string_values_repeated_keys_become_lists(
    ckan: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _echo(monkeypatch)
    response = ckan.client.get("/api/3/action/echo?a=1&b=x&b=y")
    assert response.json()["result"] == {"a": "1", "b": ["x", "y"]}


def test_a_post_with_a_query_string_to_a_get_action_reads_the_query_string(
    ckan: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _echo(monkeypatch)
    response = ckan.client.post("/api/3/action/echo?a=1", json={"b": 2})
    assert response.json()["result"] == {"a": "1"}


def test_post_bodies_json_forms_and_the_old_curl_idiom(
    ckan: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _echo(monkeypatch, get=False)
    assert ckan.result("echo", {"n": 3, "tags": ["a"]}) == {"n": 3, "tags": ["a"]}
    form = ckan.client.post("/api/3/action/echo", data={"a": "1", "b": ["x", "y"]})
    assert form.json()["result"] == {"a": "1", "b": ["x", "y"]}
    curl = ckan.client.post(
        "/api/3/action/echo",
        content=b'{"name": "curl"}=',
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert curl.json()["result"] == {"name": "curl"}
    empty = ckan.client.post("/api/3/action/echo", content=b"")
    assert empty.json()["result"] == {}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "Bad request: JSON Error: Error decoding JSON data."),
        (b"[1, 2]", "Bad request: JSON Error: Request data JSON decoded to [1, 2] but it needs"),
        (b'"text"', "Bad request: JSON Error: Request data JSON decoded to 'text'"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_a_400_json_string(
    ckan: Any, body: bytes, message: str
) -> None:
    response = ckan.client.post(
        "/api/3/action/package_show", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json().startswith(message)


# -- errors ---------------------------------------------------------------------------------------


def test_not_found_is_a_404_not_found_error(ckan: Any) -> None:
    error = ckan.error("package_show", {"id": "no-such-dataset"}, status=404)
    assert error["__type"] == "Not Found Error"
    assert error["message"].startswith("Not found")


def test_a_missing_parameter_is_a_409_validation_error(ckan: Any) -> None:
    error = ckan.error("package_show", {}, status=409)
    assert error == {"id": ["Missing value"], "__type": "Validation Error"}


def test_an_unexpected_failure_is_a_500_that_shows_nothing_of_it(
    ckan: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(cat: Any, params: Params) -> None:
        raise RuntimeError("password=hunter2 at /srv/secret/path")

    monkeypatch.setitem(ACTIONS, "boom", Action("boom", boom, get=True))
    response = ckan.client.get("/api/3/action/boom")
    assert response.status_code == 500
    error = _envelope(response, "boom")["error"]
    assert error["__type"] == "Internal Server Error"
    assert error["message"] == "Internal Server Error"
    assert "hunter2" not in response.text and "/srv" not in response.text
    assert len(error["incident"]) == 16


# -- authentication and JSONP ---------------------------------------------------------------------


def test_a_token_identifies_the_caller_private_datasets_are_not_found_to_others(
    ckan: Any,
) -> None:
    assert ckan.result("package_show", {"id": "secret"}, who="bob")["name"] == "secret"
    assert ckan.result("package_show", {"id": "secret"}, who="carol")["private"] is True
    for who in (None, "dave"):
        ckan.error("package_show", {"id": "secret"}, who=who, status=404)


@pytest.mark.parametrize(
    "headers",
    [
        lambda t: {"Authorization": t},
        lambda t: {"Authorization": f"Bearer {t}"},
        lambda t: {"X-CKAN-API-Key": t},
    ],
)
def test_the_token_headers_clients_send(ckan: Any, headers: Any) -> None:
    response = ckan.client.post(
        "/api/3/action/package_show", json={"id": "secret"}, headers=headers(ckan.tokens["bob"])
    )
    assert response.status_code == 200


def test_an_unknown_token_is_an_anonymous_caller(ckan: Any) -> None:
    headers = {"Authorization": "not-a-token"}
    ok = ckan.client.post("/api/3/action/package_show", json={"id": "water"}, headers=headers)
    assert ok.status_code == 200
    hidden = ckan.client.post("/api/3/action/package_show", json={"id": "secret"}, headers=headers)
    assert hidden.status_code == 404


def test_jsonp_wraps_a_get_and_runs_it_anonymously(ckan: Any) -> None:
    response = ckan.client.get(
        "/api/3/action/package_list",
        params={"callback": "handle"},
        headers={"Authorization": ckan.tokens["bob"]},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/javascript;charset=utf-8"
    text = response.text
    assert text.startswith("handle(") and text.endswith(");")
    assert json.loads(text[len("handle(") : -2])["result"] == ["water"]
    secret = ckan.client.get(
        "/api/3/action/package_show",
        params={"id": "secret", "callback": "handle"},
        headers={"Authorization": ckan.tokens["bob"]},
    )
    assert secret.status_code == 404  # the token was dropped
    assert secret.headers["content-type"] == "application/json;charset=utf-8"


def test_a_callback_that_is_not_a_plain_name_is_not_echoed(ckan: Any) -> None:
    response = ckan.client.get(
        "/api/3/action/package_list", params={"callback": "alert(1)//<script>"}
    )
    assert response.headers["content-type"] == "application/json;charset=utf-8"
    assert "script" not in response.text


# -- site and dataset read actions ----------------------------------------------------------------


def test_status_show_license_list_site_read_help_show(ckan: Any) -> None:
    status = ckan.result("status_show")
    assert status["ckan_version"] and status["extensions"] == []
    licenses = ckan.result("license_list")
    assert {"id", "title", "url"} <= set(licenses[0]) and len(licenses) > 5
    assert ckan.result("site_read") is True
    assert "package_search" not in ckan.result("help_show", {"name": "package_show"})
    assert ckan.result("help_show", {"name": "package_show"}).startswith("The dataset")
    ckan.error("help_show", {"name": "nope"}, status=404)


def test_package_show_has_the_organization_groups_and_resources(ckan: Any) -> None:
    shown = ckan.result("package_show", {"id": ckan.ids["water"]})
    assert shown["name"] == "water" and shown["num_resources"] == 2
    assert shown["organization"]["name"] == "org-a"
    assert [g["name"] for g in shown["groups"]] == ["env"]
    assert sorted(t["name"] for t in shown["tags"]) == ["ph", "water"]
    assert ckan.result("package_show", {"name_or_id": "water"})["id"] == ckan.ids["water"]


def test_resource_show(ckan: Any) -> None:
    resource = ckan.result("package_show", {"id": "water"})["resources"][1]
    shown = ckan.result("resource_show", {"id": resource["id"]})
    assert shown["name"] == "stations" and shown["url"] == "https://example.org/water.json"
    ckan.error("resource_show", {"id": "00000000-0000-4000-8000-000000000000"}, status=404)


def test_package_list_pages_public_active_datasets(ckan: Any) -> None:
    for n in range(3):
        ckan.catalog.datasets.create(DatasetInput(name=f"extra-{n}", owner_org="org-a"))
    assert ckan.result("package_list") == ["extra-0", "extra-1", "extra-2", "water"]
    assert ckan.result("package_list", {"limit": 2, "offset": 1}) == ["extra-1", "extra-2"]
    ckan.error("package_list", {"limit": "many"}, status=409)


def test_package_search_result_shape_and_facets(ckan: Any) -> None:
    found = ckan.result(
        "package_search",
        {"q": "water", "facet.field": ["tags", "organization"], "rows": 5},
    )
    assert found["count"] == 1 and found["results"][0]["name"] == "water"
    assert found["sort"] == "score desc, metadata_modified desc"
    assert found["facets"]["tags"] == {"ph": 1, "water": 1}
    items = found["search_facets"]["tags"]["items"]
    assert [i["name"] for i in items] == ["water", "ph"]  # by display name, descending
    org = found["search_facets"]["organization"]
    assert org["title"] == "organization"
    assert org["items"] == [{"name": "org-a", "display_name": "Org A", "count": 1}]


def test_package_search_over_get_with_json_encoded_lists(ckan: Any) -> None:
    response = ckan.get("package_search", {"q": "", "facet.field": '["tags"]', "fl": "name,title"})
    result = response.json()["result"]
    assert result["results"] == [{"name": "water", "title": "Water quality"}]
    assert result["facets"] == {"tags": {"ph": 1, "water": 1}}


def test_package_search_private_datasets_need_a_member_and_include_private(
    ckan: Any,
) -> None:
    def names(who: str | None, **extra: Any) -> list[str]:
        found = ckan.result("package_search", {"q": "", **extra}, who=who)
        return sorted(r["name"] for r in found["results"])

    assert names("bob") == ["water"]
    assert names("bob", include_private=True) == ["secret", "water"]
    assert names("dave", include_private=True) == ["water"]
    assert names(None, include_private="true") == ["water"]


def test_package_search_refuses_unknown_parameters_and_bad_values(ckan: Any) -> None:
    error = ckan.error("package_search", {"limit": 5}, status=400)
    assert error["__type"] == "Search Query Error"
    assert "limit" in error["message"]
    assert ckan.error("package_search", {"rows": -1}, status=409)["rows"]
    assert ckan.error("package_search", {"include_private": "perhaps"}, status=409)
    bad_sort = ckan.error("package_search", {"sort": "colour desc"}, status=400)
    assert bad_sort["__type"] == "Search Query Error"


def test_package_search_rows_are_capped_at_1000(ckan: Any) -> None:
    assert ckan.result("package_search", {"rows": 5000})["count"] == 1


def test_autocomplete_actions(ckan: Any) -> None:
    found = ckan.result("package_autocomplete", {"q": "wat"})
    assert found == [
        {
            "name": "water",
            "title": "Water quality",
            "match_field": "name",
            "match_displayed": "water",
        }
    ]
    assert ckan.result("package_autocomplete", {"q": "sec"}) == []  # private
    ckan.error("package_autocomplete", {}, status=409)
    assert isinstance(ckan.result("format_autocomplete", {"q": "c"}), list)


def test_current_package_list_with_resources(ckan: Any) -> None:
    listed = ckan.result("current_package_list_with_resources", {"limit": 10})
    assert [d["name"] for d in listed] == ["water"]
    assert listed[0]["resources"][0]["name"] == "readings"
    member = ckan.result("current_package_list_with_resources", {"limit": 10}, who="carol")
    assert sorted(d["name"] for d in member) == ["secret", "water"]


def test_help_links_keep_the_mount_point(ckan: Any) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount
    from starlette.testclient import TestClient

    from opencatalog.api import create_app

    outer = Starlette(routes=[Mount("/catalog", app=create_app(ckan.catalog))])
    body = TestClient(outer).get("/catalog/api/3/action/package_list").json()
    assert body["help"] == "http://testserver/catalog/api/3/action/help_show?name=package_list"
    assert body["result"] == ["water"]
