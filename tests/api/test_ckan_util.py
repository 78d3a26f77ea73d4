"""CKAN's Util API: the autocomplete routes under /api/util and /api/2/util."""

from __future__ import annotations

import json
from typing import Any

import pytest

from opencatalog.domain.commands import DatasetInput, ResourceInput


def _get(ckan: Any, path: str, who: str | None = None, **params: Any) -> Any:
    return ckan.client.get(f"/api/util/{path}", params=params, headers=ckan.headers(who))


@pytest.mark.parametrize("prefix", ["/api/util", "/api/2/util"])
def test_dataset_autocomplete(ckan: Any, prefix: str) -> None:
    response = ckan.client.get(f"{prefix}/dataset/autocomplete", params={"incomplete": "wat"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json;charset=utf-8"
    assert response.json() == {
        "ResultSet": {
            "Result": [
                {
                    "name": "water",
                    "title": "Water quality",
                    "match_field": "name",
                    "match_displayed": "water",
                }
            ]
        }
    }


def test_dataset_autocomplete_hides_private_datasets_from_outsiders(ckan: Any) -> None:
    assert _get(ckan, "dataset/autocomplete", incomplete="sec").json() == {
        "ResultSet": {"Result": []}
    }
    found = _get(ckan, "dataset/autocomplete", who="bob", incomplete="sec").json()
    assert [r["name"] for r in found["ResultSet"]["Result"]] == ["secret"]


def test_tag_and_format_autocomplete(ckan: Any) -> None:
    ckan.catalog.datasets.create(
        DatasetInput(
            name="maps",
            owner_org="org-a",
            tags=["phosphate"],
            resources=[ResourceInput(url="https://example.org/m.geojson", format="GeoJSON")],
        )
    )
    tags = _get(ckan, "tag/autocomplete", incomplete="ph").json()
    assert tags == {"ResultSet": {"Result": [{"Name": "ph"}, {"Name": "phosphate"}]}}
    one = _get(ckan, "tag/autocomplete", incomplete="ph", limit=1).json()
    assert len(one["ResultSet"]["Result"]) == 1
    formats = _get(ckan, "resource/format_autocomplete", incomplete="geo").json()
    assert formats == {"ResultSet": {"Result": [{"Format": "GeoJSON"}]}}


def test_group_organization_and_user_autocomplete(ckan: Any) -> None:
    groups = _get(ckan, "group/autocomplete", q="env").json()
    assert [g["name"] for g in groups] == ["env"]
    orgs = _get(ckan, "organization/autocomplete", q="org").json()
    assert [o["name"] for o in orgs] == ["org-a"]
    users = _get(ckan, "user/autocomplete", who="bob", q="car").json()
    assert [u["name"] for u in users] == ["carol"]
    refused = _get(ckan, "user/autocomplete", q="car")  # anonymous callers may not list users
    assert refused.status_code == 403
    assert refused.json()["__type"] == "Authorization Error"


@pytest.mark.parametrize(
    ("path", "param", "empty"),
    [
        ("dataset/autocomplete", "incomplete", {"ResultSet": {"Result": []}}),
        ("tag/autocomplete", "incomplete", {"ResultSet": {"Result": []}}),
        ("resource/format_autocomplete", "incomplete", {"ResultSet": {"Result": []}}),
        ("user/autocomplete", "q", []),
        ("group/autocomplete", "q", []),
    ],
)
def test_an_empty_text_is_an_empty_result(ckan: Any, path: str, param: str, empty: Any) -> None:
    assert _get(ckan, path, **{param: "  "}).json() == empty
    assert _get(ckan, path).json() == empty


def test_a_bad_limit_is_a_validation_error(ckan: Any) -> None:
    response = _get(ckan, "dataset/autocomplete", incomplete="wat", limit="lots")
    assert response.status_code == 409
    assert response.json() == {"limit": ["Invalid integer"], "__type": "Validation Error"}


def test_jsonp_runs_anonymously(ckan: Any) -> None:
    response = _get(ckan, "dataset/autocomplete", who="bob", incomplete="s", callback="cb")
    assert response.headers["content-type"] == "application/javascript;charset=utf-8"
    assert response.text.startswith("cb(") and response.text.endswith(");")
    body = json.loads(response.text[3:-2])
    assert body == {"ResultSet": {"Result": []}}  # bob's token was dropped: no "secret"


def test_only_get(ckan: Any) -> None:
    assert ckan.client.post("/api/util/dataset/autocomplete").status_code == 405
