"""CKAN's tag and vocabulary actions over HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from opencatalog.domain.commands import DatasetInput
from opencatalog.domain.model import Tag

pytest.importorskip("starlette")

GET_REFUSED = "Bad request: JSON Error: Invalid request. Please use POST method for your request"


@pytest.fixture
def genre(ckan: Any) -> dict[str, Any]:
    """A vocabulary ``genre`` with three tags."""
    return ckan.result(
        "vocabulary_create",
        {"name": "genre", "tags": [{"name": "jazz"}, {"name": "rock"}, {"name": "folk"}]},
        who="admin",
    )


@pytest.mark.parametrize("name", ["vocabulary_create", "vocabulary_update", "vocabulary_delete"])
def test_get_is_refused_for_write_actions(ckan: Any, name: str) -> None:
    response = ckan.get(name, {"id": "genre", "name": "genre"}, who="admin")
    assert response.status_code == 400
    assert response.json() == GET_REFUSED


# -- tag_list -------------------------------------------------------------------------------


def test_tag_list_gives_free_tags_of_readable_datasets(ckan: Any) -> None:
    ckan.catalog.datasets.create(
        DatasetInput(name="hidden", owner_org="org-a", private=True, tags=["classified"])
    )
    assert ckan.result("tag_list") == ["ph", "water"]
    assert ckan.result("tag_list", who="carol") == ["classified", "ph", "water"]
    assert ckan.get("tag_list").json()["result"] == ["ph", "water"]


def test_tag_list_query_and_all_fields(ckan: Any) -> None:
    assert ckan.result("tag_list", {"query": "WAT"}) == ["water"]
    assert ckan.result("tag_list", {"q": "p"}) == ["ph"]
    assert ckan.result("tag_list", {"all_fields": True, "q": "ph"}) == [
        {"id": "ph", "name": "ph", "vocabulary_id": None, "display_name": "ph"}
    ]


def test_tag_list_of_a_vocabulary(ckan: Any, genre: dict[str, Any]) -> None:
    assert ckan.result("tag_list", {"vocabulary_id": "genre"}) == ["folk", "jazz", "rock"]
    rows = ckan.result("tag_list", {"vocabulary_id": genre["id"], "all_fields": "true"})
    assert {r["vocabulary_id"] for r in rows} == {genre["id"]}
    assert "jazz" not in ckan.result("tag_list")
    error = ckan.error("tag_list", {"vocabulary_id": "nope"}, status=404)
    assert error["__type"] == "Not Found Error"


# -- tag_show -------------------------------------------------------------------------------


def test_tag_show(ckan: Any, genre: dict[str, Any]) -> None:
    assert ckan.result("tag_show", {"id": "water"}) == {
        "id": "water",
        "name": "water",
        "vocabulary_id": None,
        "display_name": "water",
    }
    tag = ckan.result("tag_show", {"id": "jazz", "vocabulary_id": "genre"})
    assert tag["vocabulary_id"] == genre["id"]


def test_tag_show_with_datasets(ckan: Any) -> None:
    tag = ckan.result("tag_show", {"id": "water", "include_datasets": True})
    assert [p["name"] for p in tag["packages"]] == ["water"]


def test_tag_show_errors(ckan: Any, genre: dict[str, Any]) -> None:
    assert ckan.error("tag_show", {}, status=409)["id"] == ["Missing value"]
    ckan.error("tag_show", {"id": "nothing"}, status=404)
    ckan.error("tag_show", {"id": "jazz"}, status=404)  # not a free tag
    ckan.error("tag_show", {"id": "water", "vocabulary_id": "genre"}, status=404)


# -- tag_search / tag_autocomplete ---------------------------------------------------------


def test_tag_search(ckan: Any) -> None:
    ckan.catalog.datasets.create(DatasetInput(name="air", tags=["air", "water-air"]))
    found = ckan.result("tag_search", {"query": "air"})
    assert found["count"] == 2
    assert [t["name"] for t in found["results"]] == ["air", "water-air"]
    assert ckan.result("tag_search", {"query": ["air", "WAT"]})["count"] == 1
    assert ckan.result("tag_search", {"q": "air", "limit": 1, "offset": 1}) == {
        "count": 2,
        "results": [
            {
                "id": "water-air",
                "name": "water-air",
                "vocabulary_id": None,
                "display_name": "water-air",
            }
        ],
    }
    assert ckan.result("tag_search", {}) == {"count": 0, "results": []}


def test_tag_search_in_a_vocabulary_and_over_get(ckan: Any, genre: dict[str, Any]) -> None:
    response = ckan.get("tag_search", {"query": "o", "vocabulary_id": "genre"})
    body = response.json()["result"]
    assert [t["name"] for t in body["results"]] == ["folk", "rock"]
    assert body["results"][0]["vocabulary_id"] == genre["id"]


def test_tag_search_bad_paging(ckan: Any) -> None:
    assert "limit" in ckan.error("tag_search", {"query": "a", "limit": "x"}, status=409)
    assert "offset" in ckan.error("tag_search", {"query": "a", "offset": -1}, status=409)


def test_tag_autocomplete(ckan: Any, genre: dict[str, Any]) -> None:
    ckan.catalog.datasets.create(DatasetInput(name="many", tags=[f"w{i:02d}" for i in range(12)]))
    assert len(ckan.result("tag_autocomplete", {"query": "w"})) == 10
    assert ckan.result("tag_autocomplete", {"query": "wa"}) == ["water"]
    assert ckan.result("tag_autocomplete", {"query": "w", "limit": 2, "offset": 1}) == [
        "w01",
        "w02",
    ]
    assert ckan.result("tag_autocomplete", {"query": "z", "vocabulary_id": "genre"}) == ["jazz"]
    assert ckan.result("tag_autocomplete", {}) == []
    ckan.error("tag_autocomplete", {"query": "a", "vocabulary_id": "nope"}, status=404)


# -- vocabularies ---------------------------------------------------------------------------


def test_vocabulary_create_show_and_list(ckan: Any, genre: dict[str, Any]) -> None:
    assert genre["name"] == "genre"
    assert [t["name"] for t in genre["tags"]] == ["folk", "jazz", "rock"]
    assert genre["tags"][0]["vocabulary_id"] == genre["id"]
    assert ckan.result("vocabulary_show", {"id": "genre"}) == genre
    assert ckan.result("vocabulary_show", {"id": genre["id"]}) == genre
    other = ckan.result("vocabulary_create", {"name": "colour", "tags": ["red"]}, who="admin")
    assert ckan.result("vocabulary_list") == [other, genre]
    assert ckan.get("vocabulary_list").json()["result"] == [other, genre]


@pytest.mark.parametrize("who", [None, "bob", "dave"])
def test_vocabulary_writes_need_a_sysadmin(ckan: Any, genre: dict[str, Any], who: str) -> None:
    ckan.error("vocabulary_create", {"name": "colour"}, who=who, status=403)
    ckan.error("vocabulary_update", {"id": "genre", "name": "music"}, who=who, status=403)
    ckan.error("vocabulary_delete", {"id": "genre"}, who=who, status=403)
    assert ckan.result("vocabulary_show", {"id": "genre"}) == genre


def test_vocabulary_create_errors(ckan: Any, genre: dict[str, Any]) -> None:
    assert ckan.error("vocabulary_create", {}, who="admin", status=409)["name"] == ["Missing value"]
    assert "name" in ckan.error("vocabulary_create", {"name": "genre"}, who="admin", status=409)
    bad = ckan.error(
        "vocabulary_create", {"name": "colour", "tags": "red"}, who="admin", status=409
    )
    assert "tags" in bad
    bad = ckan.error(
        "vocabulary_create", {"name": "colour", "tags": [{"nom": "x"}]}, who="admin", status=409
    )
    assert "tags" in bad
    bad = ckan.error(
        "vocabulary_create", {"name": "colour", "tags": ["x"]}, who="admin", status=409
    )
    assert "tags" in bad


def test_vocabulary_update(ckan: Any, genre: dict[str, Any]) -> None:
    renamed = ckan.result("vocabulary_update", {"id": "genre", "name": "music"}, who="admin")
    assert renamed["name"] == "music" and renamed["id"] == genre["id"]
    retagged = ckan.result(
        "vocabulary_update", {"id": "music", "tags": [{"name": "blues"}]}, who="admin"
    )
    assert [t["name"] for t in retagged["tags"]] == ["blues"]
    assert ckan.result("vocabulary_show", {"id": genre["id"]}) == retagged


def test_vocabulary_update_errors(ckan: Any, genre: dict[str, Any]) -> None:
    assert ckan.error("vocabulary_update", {"name": "x"}, who="admin", status=409)["id"] == [
        "Missing value"
    ]
    assert "tags" in ckan.error("vocabulary_update", {"id": "genre"}, who="admin", status=409)
    ckan.error("vocabulary_update", {"id": "nope", "name": "xx"}, who="admin", status=404)


def test_vocabulary_tags_in_use_stay(ckan: Any, genre: dict[str, Any]) -> None:
    ckan.catalog.datasets.create(
        DatasetInput(name="album", tags=[Tag(name="jazz", vocabulary_id=genre["id"])])
    )
    error = ckan.error(
        "vocabulary_update", {"id": "genre", "tags": ["rock"]}, who="admin", status=409
    )
    assert "tags" in error
    ckan.error("vocabulary_delete", {"id": "genre"}, who="admin", status=409)
    assert ckan.result("tag_show", {"id": "jazz", "vocabulary_id": "genre"})["name"] == "jazz"


def test_vocabulary_delete(ckan: Any, genre: dict[str, Any]) -> None:
    assert ckan.result("vocabulary_delete", {"id": "genre"}, who="admin") is None
    ckan.error("vocabulary_show", {"id": "genre"}, status=404)
    assert ckan.error("vocabulary_delete", {}, who="admin", status=409)["id"] == ["Missing value"]
    ckan.error("vocabulary_delete", {"id": "genre"}, who="admin", status=404)
