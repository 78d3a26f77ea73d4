"""Dataset and resource write actions and resource_search, over HTTP as CKAN clients call them."""

from __future__ import annotations

import hashlib

import pytest

from opencatalog.domain.commands import GroupInput

WRITE_ACTIONS = [
    "package_create",
    "package_update",
    "package_patch",
    "package_delete",
    "dataset_purge",
    "package_owner_org_update",
    "resource_create",
    "resource_update",
    "resource_patch",
    "resource_delete",
    "package_resource_reorder",
]


def _resource_ids(ckan, dataset="water"):
    return [r["id"] for r in ckan.result("package_show", {"id": dataset}, who="admin")["resources"]]


# -- shared rules -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", WRITE_ACTIONS)
def test_write_actions_refuse_get(ckan, name):
    response = ckan.get(name, {"id": "water"}, who="admin")
    assert response.status_code == 400
    assert response.json() == (
        "Bad request: JSON Error: Invalid request. Please use POST method for your request"
    )
    assert ckan.result("package_show", {"id": "water"})["state"] == "active"


@pytest.mark.parametrize("name", [*WRITE_ACTIONS, "resource_search"])
def test_help_show_gives_each_docstring(ckan, name):
    text = ckan.result("help_show", {"name": name})
    assert isinstance(text, str) and "Returns" in text


# -- package_create -----------------------------------------------------------------------------


def test_package_create_by_an_editor_returns_the_package_show_dict(ckan):
    created = ckan.result(
        "package_create",
        {
            "name": "air",
            "title": "Air",
            "owner_org": "org-a",
            "tag_string": "air, no2",
            "extras": [{"key": "b", "value": 2}, {"key": "a", "value": "x"}],
            "resources": [{"url": "https://example.org/air.csv", "colour": "blue"}],
            "unknown_key": "dropped",
        },
        who="bob",
    )
    assert created["name"] == "air"
    assert created["owner_org"] == ckan.ids["org-a"]
    assert created["organization"]["name"] == "org-a"
    assert sorted(t["name"] for t in created["tags"]) == ["air", "no2"]
    assert created["extras"] == [{"key": "a", "value": "x"}, {"key": "b", "value": "2"}]
    assert created["resources"][0]["format"] == "CSV"
    assert created["resources"][0]["colour"] == "blue"
    assert created["state"] == "active"
    assert "unknown_key" not in created
    assert ckan.result("package_show", {"id": "air"}) == created


def test_package_create_drops_state_for_non_sysadmins(ckan):
    created = ckan.result(
        "package_create", {"name": "air", "owner_org": "org-a", "state": "draft"}, who="bob"
    )
    assert created["state"] == "active"
    drafted = ckan.result(
        "package_create", {"name": "air2", "owner_org": "org-a", "state": "draft"}, who="admin"
    )
    assert drafted["state"] == "draft"


@pytest.mark.parametrize(("who", "status"), [(None, 403), ("dave", 403), ("carol", 403)])
def test_package_create_needs_editor_rights(ckan, who, status):
    error = ckan.error(
        "package_create", {"name": "air", "owner_org": "org-a"}, who=who, status=status
    )
    assert error["__type"] == "Authorization Error"
    ckan.error("package_show", {"id": "air"}, who="admin", status=404)


def test_package_create_without_a_name_is_409(ckan):
    error = ckan.error("package_create", {"owner_org": "org-a"}, who="bob", status=409)
    assert error["__type"] == "Validation Error"
    assert error["name"] == ["Missing value"]


def test_package_create_with_a_name_in_use_is_409(ckan):
    error = ckan.error(
        "package_create", {"name": "water", "owner_org": "org-a"}, who="bob", status=409
    )
    assert error["name"] == ["That URL is already in use."]


def test_package_create_bad_fields_are_409_with_the_fields(ckan):
    error = ckan.error(
        "package_create",
        {"name": "air", "owner_org": "org-a", "resources": [{}, {"size": "big"}]},
        who="admin",
        status=409,
    )
    assert error["resources"] == [{}, {"size": ["Invalid integer"]}]
    error = ckan.error(
        "package_create",
        {"name": "Air!", "owner_org": "no-such-org", "private": True},
        who="admin",
        status=409,
    )
    assert error["owner_org"] == ["Organization does not exist"]
    assert "name" in error


# -- package_update -----------------------------------------------------------------------------


def test_package_update_replaces_fields_and_keeps_collections(ckan):
    before = ckan.result("package_show", {"id": "water"})
    updated = ckan.result(
        "package_update",
        {"id": "water", "notes": "New notes", "tags": [{"name": "h2o"}]},
        who="bob",
    )
    assert updated["notes"] == "New notes"
    assert updated["title"] is None  # omitted text fields are cleared
    assert [t["name"] for t in updated["tags"]] == ["h2o"]
    assert updated["name"] == "water"
    assert updated["private"] is False
    assert updated["owner_org"] == ckan.ids["org-a"]
    assert [r["id"] for r in updated["resources"]] == [r["id"] for r in before["resources"]]
    assert [g["name"] for g in updated["groups"]] == ["env"]
    assert ckan.result("package_show", {"id": "water"}) == updated


def test_package_update_keeps_private_when_omitted_and_renames(ckan):
    updated = ckan.result(
        "package_update", {"id": ckan.ids["secret"], "name": "secret-2"}, who="bob"
    )
    assert updated["private"] is True
    assert updated["name"] == "secret-2"
    ckan.error("package_show", {"id": "secret-2"}, status=404)


def test_package_update_by_name_when_id_is_absent(ckan):
    updated = ckan.result("package_update", {"name": "water", "title": "W"}, who="bob")
    assert updated["id"] == ckan.ids["water"] and updated["title"] == "W"


def test_package_update_with_an_empty_resource_list_clears_them(ckan):
    updated = ckan.result("package_update", {"id": "water", "resources": []}, who="bob")
    assert updated["resources"] == [] and updated["num_resources"] == 0


@pytest.mark.parametrize(
    ("who", "ref", "status"),
    [
        (None, "water", 403),
        ("dave", "water", 403),
        ("carol", "water", 403),
        ("dave", "secret", 404),
        (None, "secret", 404),
        ("bob", "nothing-here", 404),
    ],
)
def test_package_update_refusals(ckan, who, ref, status):
    ckan.error("package_update", {"id": ref, "title": "hacked"}, who=who, status=status)
    assert ckan.result("package_show", {"id": "water"})["title"] == "Water quality"


def test_package_update_without_id_or_name_is_409(ckan):
    error = ckan.error("package_update", {"title": "x"}, who="bob", status=409)
    assert error["id"] == ["Missing value"]


def test_package_update_with_an_empty_name_is_409(ckan):
    error = ckan.error("package_update", {"id": "water", "name": ""}, who="bob", status=409)
    assert "name" in error
    assert ckan.result("package_show", {"id": "water"})["title"] == "Water quality"


def test_package_update_to_a_name_in_use_is_409(ckan):
    error = ckan.error("package_update", {"id": "secret", "name": "water"}, who="bob", status=409)
    assert error["name"] == ["That URL is already in use."]


# -- package_patch ------------------------------------------------------------------------------


def test_package_patch_changes_only_given_keys(ckan):
    before = ckan.result("package_show", {"id": "water"})
    patched = ckan.result("package_patch", {"id": "water", "notes": "patched"}, who="bob")
    assert patched["notes"] == "patched"
    for key in ("title", "tags", "resources", "groups", "name", "owner_org", "private"):
        assert patched[key] == before[key], key


def test_package_patch_replaces_a_given_collection(ckan):
    patched = ckan.result(
        "package_patch",
        {"id": "water", "tag_string": "fresh", "resources": [{"url": "https://x.org/a.json"}]},
        who="bob",
    )
    assert [t["name"] for t in patched["tags"]] == ["fresh"]
    assert [r["url"] for r in patched["resources"]] == ["https://x.org/a.json"]
    assert patched["title"] == "Water quality"


def test_package_patch_can_make_a_dataset_private_and_rename_it(ckan):
    patched = ckan.result(
        "package_patch", {"id": "water", "private": "true", "name": "water-2"}, who="bob"
    )
    assert patched["private"] is True and patched["name"] == "water-2"
    ckan.error("package_show", {"id": "water-2"}, who="dave", status=404)


@pytest.mark.parametrize(
    ("data", "who", "status", "field"),
    [
        ({"title": "x"}, "bob", 409, "id"),
        ({"id": "nothing-here", "title": "x"}, "bob", 404, None),
        ({"id": "water", "title": "x"}, "carol", 403, None),
        ({"id": "water", "title": "x"}, None, 403, None),
        ({"id": "secret", "title": "x"}, "dave", 404, None),
        ({"id": "water", "name": "Bad Name!"}, "bob", 409, "name"),
    ],
)
def test_package_patch_refusals(ckan, data, who, status, field):
    error = ckan.error("package_patch", data, who=who, status=status)
    if field is not None:
        assert field in error
    assert ckan.result("package_show", {"id": "water"})["title"] == "Water quality"


# -- package_delete, dataset_purge, package_owner_org_update ------------------------------------


def test_package_delete_soft_deletes(ckan):
    assert ckan.result("package_delete", {"id": "water"}, who="bob") is None
    shown = ckan.result("package_show", {"id": "water"}, who="admin")
    assert shown["state"] == "deleted" and shown["groups"] == []
    ckan.error("package_show", {"id": "water"}, status=404)  # the catalog hides it: 404
    assert "water" not in ckan.result("package_list")
    # the name is free again
    ckan.result("package_create", {"name": "water", "owner_org": "org-a"}, who="bob")


@pytest.mark.parametrize(
    ("data", "who", "status"),
    [
        ({}, "bob", 409),
        ({"id": "nothing-here"}, "bob", 404),
        ({"id": "water"}, "carol", 403),
        ({"id": "water"}, None, 403),
        ({"id": "secret"}, "dave", 404),
    ],
)
def test_package_delete_refusals(ckan, data, who, status):
    error = ckan.error("package_delete", data, who=who, status=status)
    if status == 409:
        assert error["id"] == ["Missing value"]
    assert ckan.result("package_show", {"id": "water"})["state"] == "active"


def test_dataset_purge_removes_for_good(ckan):
    ckan.result("package_delete", {"id": "secret"}, who="bob")
    assert ckan.result("dataset_purge", {"id": "secret"}, who="admin") is None
    ckan.error("package_show", {"id": ckan.ids["secret"]}, who="admin", status=404)
    ckan.error("dataset_purge", {"id": "secret"}, who="admin", status=404)


@pytest.mark.parametrize(
    ("data", "who", "status"),
    [({"id": "water"}, "bob", 403), ({"id": "water"}, None, 403), ({}, "admin", 409)],
)
def test_dataset_purge_refusals(ckan, data, who, status):
    ckan.error("dataset_purge", data, who=who, status=status)
    assert ckan.result("package_show", {"id": "water"})["state"] == "active"


def test_package_owner_org_update_moves_and_unowns(ckan):
    ckan.catalog.organizations.create(GroupInput(name="org-b"))
    assert (
        ckan.result(
            "package_owner_org_update", {"id": "water", "organization_id": "org-b"}, who="admin"
        )
        is None
    )
    shown = ckan.result("package_show", {"id": "water"})
    assert shown["organization"]["name"] == "org-b"
    ckan.result("package_owner_org_update", {"id": "water", "organization_id": ""}, who="admin")
    assert ckan.result("package_show", {"id": "water"})["owner_org"] is None


@pytest.mark.parametrize(
    ("data", "who", "status"),
    [
        ({"id": "water", "organization_id": "org-a"}, "bob", 403),
        ({"id": "water", "organization_id": "org-a"}, None, 403),
        ({"id": "water", "organization_id": "no-such-org"}, "admin", 404),
        ({"id": "nothing-here", "organization_id": "org-a"}, "admin", 404),
        ({"organization_id": "org-a"}, "admin", 409),
    ],
)
def test_package_owner_org_update_refusals(ckan, data, who, status):
    ckan.error("package_owner_org_update", data, who=who, status=status)
    assert ckan.result("package_show", {"id": "water"})["owner_org"] == ckan.ids["org-a"]


# -- resource_create ----------------------------------------------------------------------------


def test_resource_create_appends_and_returns_the_resource(ckan):
    res = ckan.result(
        "resource_create",
        {
            "package_id": "water",
            "url": "https://example.org/more.csv",
            "name": "more",
            "size": "12",
            "colour": {"r": 1},
        },
        who="bob",
    )
    assert res["package_id"] == ckan.ids["water"]
    assert res["position"] == 2 and res["format"] == "CSV" and res["size"] == 12
    assert res["colour"] == {"r": 1}
    assert ckan.result("resource_show", {"id": res["id"]}) == res
    assert _resource_ids(ckan)[-1] == res["id"]


def test_resource_create_url_defaults_to_empty(ckan):
    res = ckan.result("resource_create", {"package_id": ckan.ids["water"]}, who="bob")
    assert res["url"] == ""


@pytest.mark.parametrize(
    ("data", "who", "status", "field"),
    [
        ({"url": "https://x.org"}, "bob", 409, "package_id"),
        ({"package_id": "water", "size": "big"}, "bob", 409, "size"),
        ({"package_id": "nothing-here"}, "bob", 404, None),
        ({"package_id": "water"}, "carol", 403, None),
        ({"package_id": "water"}, None, 403, None),
        ({"package_id": "secret"}, "dave", 404, None),
        ({"package_id": "water", "upload": "not a file"}, "bob", 409, "upload"),
    ],
)
def test_resource_create_refusals(ckan, data, who, status, field):
    error = ckan.error("resource_create", data, who=who, status=status)
    if field is not None:
        assert field in error
    assert len(_resource_ids(ckan)) == 2


def test_resource_create_with_a_multipart_upload(ckan):
    body = b"station,ph\nA,7.1\n"
    response = ckan.client.post(
        "/api/3/action/resource_create",
        data={"package_id": "water", "name": "upload"},
        files={"upload": ("../../etc/readings.csv", body, "text/csv")},
        headers=ckan.headers("bob"),
    )
    assert response.status_code == 200, response.json()
    res = response.json()["result"]
    assert res["url_type"] == "upload"
    assert res["size"] == len(body)
    assert res["hash"] == "sha256:" + hashlib.sha256(body).hexdigest()
    assert res["mimetype"] == "text/csv"
    assert res["url"].endswith(f"/resource/{res['id']}/download/readings.csv")
    assert res["name"] == "upload"
    assert ckan.result("resource_show", {"id": res["id"]}) == res


def test_resource_create_with_a_refused_upload_leaves_no_resource(ckan):
    ckan.catalog._ctx.upload_max_bytes = 4
    response = ckan.client.post(
        "/api/3/action/resource_create",
        data={"package_id": "water"},
        files={"upload": ("big.csv", b"0123456789", "text/csv")},
        headers=ckan.headers("bob"),
    )
    assert response.status_code == 413, response.json()
    assert response.json()["error"]["upload"] == ["File is larger than 4 bytes"]
    assert len(_resource_ids(ckan)) == 2


# -- resource_update, resource_patch, resource_delete -------------------------------------------


def _water_resource(ckan, index=0):
    return ckan.result("package_show", {"id": "water"})["resources"][index]


def test_resource_update_replaces_the_resource(ckan):
    rid = ckan.result(
        "resource_patch", {"id": _water_resource(ckan)["id"], "colour": "blue"}, who="bob"
    )["id"]
    res = ckan.result("resource_update", {"id": rid, "description": "new"}, who="bob")
    assert res["description"] == "new"
    assert res["url"] == "" and res["name"] is None and "colour" not in res
    assert res["position"] == 0
    assert ckan.result("resource_show", {"id": rid}) == res


def test_resource_patch_merges(ckan):
    old = _water_resource(ckan, 1)
    res = ckan.result(
        "resource_patch", {"id": old["id"], "description": "d", "colour": "red"}, who="bob"
    )
    assert res["description"] == "d" and res["colour"] == "red"
    assert res["url"] == old["url"] and res["name"] == old["name"]
    res = ckan.result("resource_patch", {"id": old["id"], "shade": "dark"}, who="bob")
    assert res["colour"] == "red" and res["shade"] == "dark"


@pytest.mark.parametrize(
    ("name", "kept"), [("resource_patch", "readings"), ("resource_update", None)]
)
def test_resource_patch_and_update_with_an_upload(ckan, name, kept):
    rid = _water_resource(ckan)["id"]
    response = ckan.client.post(
        f"/api/3/action/{name}",
        data={"id": rid, "description": "uploaded"},
        files={"upload": ("data.json", b"{}", "application/json")},
        headers=ckan.headers("bob"),
    )
    assert response.status_code == 200, response.json()
    res = response.json()["result"]
    assert res["url_type"] == "upload" and res["size"] == 2 and res["format"] == "JSON"
    assert res["description"] == "uploaded"
    assert res["name"] == (kept or "data.json")
    assert ckan.result("resource_show", {"id": rid}) == res


@pytest.mark.parametrize("name", ["resource_update", "resource_patch", "resource_delete"])
@pytest.mark.parametrize(
    ("who", "status"), [("carol", 403), (None, 403), ("dave", 403), ("bob", 404), ("bob", 409)]
)
def test_resource_change_refusals(ckan, name, who, status):
    before = ckan.result("package_show", {"id": "water"})["resources"]
    data = {"id": before[0]["id"], "description": "x"}
    if status == 404:
        data["id"] = "00000000-0000-4000-8000-000000000000"
    if status == 409:
        del data["id"]
    error = ckan.error(name, data, who=who, status=status)
    if status == 409:
        assert error["id"] == ["Missing value"]
    assert ckan.result("package_show", {"id": "water"})["resources"] == before


def test_resource_changes_in_a_private_dataset_are_404_for_outsiders(ckan):
    res = ckan.result("resource_create", {"package_id": "secret", "url": "x"}, who="bob")
    for name in ("resource_update", "resource_patch", "resource_delete"):
        ckan.error(name, {"id": res["id"], "url": "y"}, who="dave", status=404)
    assert ckan.result("resource_show", {"id": res["id"]}, who="carol")["url"] == res["url"]


def test_resource_update_bad_field_is_409(ckan):
    error = ckan.error(
        "resource_update", {"id": _water_resource(ckan)["id"], "size": 1.5}, who="bob", status=409
    )
    assert error["size"] == ["Invalid integer"]


def test_resource_delete_removes_and_renumbers(ckan):
    first, second = _resource_ids(ckan)
    assert ckan.result("resource_delete", {"id": first}, who="bob") is None
    ckan.error("resource_show", {"id": first}, status=404)
    shown = ckan.result("package_show", {"id": "water"})
    assert [(r["id"], r["position"]) for r in shown["resources"]] == [(second, 0)]


# -- package_resource_reorder -------------------------------------------------------------------


def test_package_resource_reorder_moves_listed_ids_to_the_front(ckan):
    third = ckan.result("resource_create", {"package_id": "water", "url": "c"}, who="bob")["id"]
    first, second, _ = _resource_ids(ckan)
    result = ckan.result("package_resource_reorder", {"id": "water", "order": [third]}, who="bob")
    assert result == {"id": "water", "order": [third, first, second]}
    shown = ckan.result("package_show", {"id": "water"})["resources"]
    assert [(r["id"], r["position"]) for r in shown] == [(third, 0), (first, 1), (second, 2)]


@pytest.mark.parametrize(
    ("order", "message"),
    [
        (None, "Missing value"),
        ("abc", 'Invalid "order" parameter'),
        ("dup", "Must supply unique resource_ids"),
        (["nope"], "resource_id nope can not be found"),
    ],
)
def test_package_resource_reorder_bad_order_is_409(ckan, order, message):
    before = _resource_ids(ckan)
    if order == "dup":
        order = [before[1], before[1]]
    data = {"id": "water"} if order is None else {"id": "water", "order": order}
    error = ckan.error("package_resource_reorder", data, who="bob", status=409)
    assert error["order"] == [message]
    assert _resource_ids(ckan) == before


@pytest.mark.parametrize(
    ("ref", "who", "status"),
    [("water", "carol", 403), ("water", None, 403), ("secret", "dave", 404), ("nope", "bob", 404)],
)
def test_package_resource_reorder_refusals(ckan, ref, who, status):
    before = _resource_ids(ckan)
    ckan.error(
        "package_resource_reorder", {"id": ref, "order": [before[1]]}, who=who, status=status
    )
    assert _resource_ids(ckan) == before


# -- resource_search ----------------------------------------------------------------------------


def test_resource_search_by_post(ckan):
    found = ckan.result("resource_search", {"query": "name:READ"})
    assert found["count"] == 1
    assert found["results"] == [_water_resource(ckan, 0)]
    both = ckan.result("resource_search", {"query": ["url:example.org", "name:station"]})
    assert [r["name"] for r in both["results"]] == ["stations"]


def test_resource_search_by_get_and_paging(ckan):
    response = ckan.get("resource_search", {"query": "url:example.org", "order_by": "name"})
    body = response.json()
    assert response.status_code == 200, body
    assert body["result"]["count"] == 2
    assert [r["name"] for r in body["result"]["results"]] == ["readings", "stations"]
    page = ckan.result(
        "resource_search", {"query": "url:example.org", "order_by": "name", "offset": 1, "limit": 1}
    )
    assert page["count"] == 2 and [r["name"] for r in page["results"]] == ["stations"]


def test_resource_search_skips_private_datasets(ckan):
    ckan.result(
        "resource_create", {"package_id": "secret", "url": "https://example.org/s"}, who="bob"
    )
    for who in (None, "carol", "admin"):
        assert ckan.result("resource_search", {"query": "url:example.org/s"}, who=who)["count"] == 0


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({}, "query"),
        ({"query": "nocolon"}, "query"),
        ({"query": "colour:blue"}, "query"),
        ({"query": "name:x", "order_by": "colour"}, "order_by"),
        ({"query": "name:x", "limit": "many"}, "limit"),
        ({"query": "name:x", "offset": -1}, "offset"),
    ],
)
def test_resource_search_bad_parameters_are_409(ckan, data, field):
    error = ckan.error("resource_search", data, status=409)
    assert error["__type"] == "Validation Error" and field in error


def test_resource_search_empty_term_matches_all_and_size_matches_exactly(ckan):
    assert ckan.result("resource_search", {"query": "name:"})["count"] == 2
    for size in (12, 120):
        ckan.result("resource_create", {"package_id": "water", "size": size}, who="bob")
    found = ckan.result("resource_search", {"query": "size:12"})
    assert [r["size"] for r in found["results"]] == [12]
    assert ckan.result("resource_search", {"query": "name:", "fields": {"x": 1}})["count"] == 4
