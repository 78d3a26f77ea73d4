"""CKAN's legacy Search API: /api/search/dataset, /api/search/resource, /api/tag_counts."""

from __future__ import annotations

import json
from typing import Any

import pytest

from opencatalog.domain.commands import DatasetInput, ResourceInput


@pytest.fixture
def site(ckan: Any) -> Any:
    """Two more public datasets: one with an extra and a hash on its resource."""
    ckan.catalog.datasets.create(
        DatasetInput(
            name="rivers",
            title="River pollution survey",
            owner_org="org-a",
            tags=["water", "river pollution"],
            extras={"department": "environment"},
            resources=[
                ResourceInput(
                    url="https://stats.example.org/rivers.xls",
                    format="XLS",
                    description="Research Institute figures",
                    hash="b0d7c260aa",
                )
            ],
        )
    )
    ckan.catalog.datasets.create(
        DatasetInput(name="budget", title="City budget", owner_org="org-a")
    )
    return ckan


def _get(site: Any, path: str, who: str | None = None, **params: Any) -> Any:
    return site.client.get(path, params=params, headers=site.headers(who))


def test_dataset_search_by_words_gives_names_in_version_1_ids_in_version_2(site: Any) -> None:
    v1 = _get(site, "/api/search/dataset", q="river")
    assert v1.status_code == 200
    assert v1.json() == {"count": 1, "results": ["rivers"]}
    assert _get(site, "/api/1/search/dataset", q="river").json()["results"] == ["rivers"]
    v2 = _get(site, "/api/2/search/dataset", q="river").json()
    rivers = site.catalog.datasets.get("rivers")
    assert v2 == {"count": 1, "results": [rivers.id]}


def test_dataset_search_by_fields_tags_and_extras(site: Any) -> None:
    def names(**params: Any) -> list[str]:
        return sorted(_get(site, "/api/search/dataset", **params).json()["results"])

    assert names(tags="water") == ["rivers", "water"]
    assert names(tags=["water", "river pollution"]) == ["rivers"]
    assert names(title="budget") == ["budget"]
    assert names(department="environment") == ["rivers"]
    assert names(q="water", title="survey") == ["rivers"]
    assert names(qjson=json.dumps({"tags": "river pollution"})) == ["rivers"]


def test_dataset_search_paging_order_and_all_fields(site: Any) -> None:
    page = _get(site, "/api/search/dataset", order_by="name", limit=2, offset=1).json()
    assert page == {"count": 3, "results": ["rivers", "water"]}
    full = _get(site, "/api/search/dataset", q="budget", all_fields=1).json()
    assert full["results"][0]["name"] == "budget"
    assert full["results"][0]["organization"]["name"] == "org-a"


def test_dataset_search_over_post(site: Any) -> None:
    response = site.client.post("/api/search/dataset", json={"tags": "water", "order_by": "name"})
    assert response.json() == {"count": 2, "results": ["rivers", "water"]}


def test_private_datasets_stay_out_whatever_the_token(site: Any) -> None:
    assert _get(site, "/api/search/dataset", who="bob", q="secret").json() == {
        "count": 0,
        "results": [],
    }
    assert _get(site, "/api/search/dataset", who="admin", title="plans").json()["count"] == 0


def test_resource_search(site: Any) -> None:
    rid = site.catalog.datasets.get("rivers").resources[0].id
    assert _get(site, "/api/search/resource", url="STATS.example").json() == {
        "count": 1,
        "results": [rid],
    }
    assert _get(site, "/api/search/resource", format="xls").json()["results"] == [rid]
    by_hash = _get(site, "/api/search/resource", hash="b0d7", all_fields=1).json()
    assert by_hash["results"][0]["id"] == rid and by_hash["results"][0]["format"] == "XLS"
    assert _get(site, "/api/search/resource", description="research inst").json()["count"] == 1
    assert _get(site, "/api/search/resource", hash="ffff").json() == {"count": 0, "results": []}


def test_tag_counts_of_public_datasets(site: Any) -> None:
    counts = _get(site, "/api/tag_counts").json()
    assert ["water", 2] in counts and ["river pollution", 1] in counts
    assert counts[0] == ["water", 2]  # most used first
    assert _get(site, "/api/2/tag_counts").json() == counts


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/search/dataset", {"order_by": "colour"}),
        ("/api/search/dataset", {"limit": "many"}),
        ("/api/search/dataset", {"qjson": "{broken"}),
        ("/api/search/dataset", {"q": "title:(unclosed"}),
        ("/api/search/resource", {}),
        ("/api/search/resource", {"colour": "red"}),
    ],
)
def test_bad_parameters_are_a_400_json_string(site: Any, path: str, params: Any) -> None:
    response = _get(site, path, **params)
    assert response.status_code == 400
    assert response.json().startswith("Bad request")


def test_jsonp(site: Any) -> None:
    response = _get(site, "/api/search/dataset", q="budget", callback="got")
    assert response.headers["content-type"] == "application/javascript;charset=utf-8"
    assert response.text == 'got({"count": 1, "results": ["budget"]});'
