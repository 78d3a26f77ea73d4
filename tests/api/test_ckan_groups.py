"""The organization, group and membership actions of the CKAN Action API."""

from __future__ import annotations

import pytest

from opencatalog.domain.commands import DatasetInput, GroupInput

# -- group_list / organization_list ----------------------------------------------------------


def test_lists_give_names_sorted_by_title_by_default(ckan):
    ckan.catalog.groups.create(GroupInput(name="aaa", title="Zoology"))
    ckan.catalog.groups.create(GroupInput(name="zzz", title="Astronomy"))
    assert ckan.result("group_list") == ["zzz", "env", "aaa"]
    assert ckan.result("group_list", {"sort": "name asc"}) == ["aaa", "env", "zzz"]
    assert ckan.result("group_list", {"sort": "name desc", "limit": 2, "offset": 1}) == [
        "env",
        "aaa",
    ]
    assert ckan.result("group_list", {"groups": ["aaa", "env"], "sort": "name"}) == [
        "aaa",
        "env",
    ]
    assert ckan.result("group_list", {"q": "ZOO"}) == ["aaa"]
    assert ckan.result("organization_list") == ["org-a"]
    assert ckan.result("organization_list", {"organizations": ["nope"]}) == []
    assert ckan.get("group_list", {"sort": "name"}).json()["result"] == ["aaa", "env", "zzz"]


def test_list_sorts_by_dataset_count(ckan):
    ckan.catalog.groups.create(GroupInput(name="empty", title="A"))
    assert ckan.result("group_list", {"sort": "packages"}) == ["env", "empty"]
    assert ckan.result("group_list", {"sort": "package_count asc"}) == ["empty", "env"]


@pytest.mark.parametrize("sort", ["weird", "name up", "name asc extra"])
def test_list_refuses_unknown_sorts(ckan, sort):
    error = ckan.error("group_list", {"sort": sort}, status=409)
    assert error["__type"] == "Validation Error" and "sort" in error


def test_list_all_fields_gives_dicts_with_counts(ckan):
    [org] = ckan.result("organization_list", {"all_fields": True})
    assert org["name"] == "org-a" and org["is_organization"] is True
    assert org["package_count"] == 1  # the private dataset is not counted for anonymous
    assert "users" not in org and "extras" not in org
    [org] = ckan.result("organization_list", {"all_fields": True}, who="carol")
    assert org["package_count"] == 2
    [org] = ckan.result(
        "organization_list",
        {"all_fields": True, "include_extras": True, "include_users": True},
    )
    assert org["extras"] == [] and {u["name"] for u in org["users"]} >= {"bob", "carol"}
    [org] = ckan.result("organization_list", {"all_fields": True, "include_dataset_count": False})
    assert "package_count" not in org


def test_list_all_fields_is_capped_at_25(ckan):
    for i in range(30):
        ckan.catalog.groups.create(GroupInput(name=f"g{i:02}"))
    assert len(ckan.result("group_list", {"all_fields": True, "limit": 100})) == 25
    assert len(ckan.result("group_list")) == 31


def test_list_refuses_bad_paging(ckan):
    assert "limit" in ckan.error("group_list", {"limit": "x"}, status=409)
    assert "offset" in ckan.error("group_list", {"offset": -1}, status=409)


# -- group_show / organization_show ----------------------------------------------------------


def test_show_gives_the_group_with_users_and_count(ckan):
    org = ckan.result("organization_show", {"id": "org-a"})
    assert org["id"] == ckan.ids["org-a"] and org["display_name"] == "Org A"
    assert org["package_count"] == 1 and "packages" not in org
    assert {(u["name"], u["capacity"]) for u in org["users"]} == {
        ("bob", "editor"),
        ("carol", "member"),
    }
    assert all("email" not in u for u in org["users"])
    assert ckan.result("organization_show", {"id": ckan.ids["org-a"]})["name"] == "org-a"
    same = ckan.get("organization_show", {"id": "org-a"}).json()["result"]
    assert same == org


def test_show_with_datasets(ckan):
    org = ckan.result("organization_show", {"id": "org-a", "include_datasets": True})
    assert [p["name"] for p in org["packages"]] == ["water"]
    org = ckan.result("organization_show", {"id": "org-a", "include_datasets": True}, who="carol")
    assert sorted(p["name"] for p in org["packages"]) == ["secret", "water"]
    assert org["packages"][0]["organization"]["name"] == "org-a"
    group = ckan.result("group_show", {"id": "env", "include_datasets": "true"}, who="admin")
    assert [p["name"] for p in group["packages"]] == ["water"]


def test_show_include_switches(ckan):
    group = ckan.result(
        "group_show",
        {
            "id": "env",
            "include_users": False,
            "include_extras": False,
            "include_dataset_count": False,
        },
    )
    assert "users" not in group and "extras" not in group and "package_count" not in group


def test_show_kind_and_existence(ckan):
    assert "message" in ckan.error("group_show", {"id": "org-a"}, status=404)
    assert ckan.error("organization_show", {"id": "env"}, status=404)["__type"] == (
        "Not Found Error"
    )
    assert ckan.error("group_show", {"id": "nope"}, status=404)
    assert ckan.error("group_show", {}, status=409)["id"] == ["Missing value"]
    assert "include_users" in ckan.error(
        "group_show", {"id": "env", "include_users": "maybe"}, status=409
    )


def test_deleted_groups_are_hidden_from_outsiders(ckan):
    ckan.result("group_delete", {"id": "env"}, who="admin")
    ckan.error("group_show", {"id": "env"}, who="dave", status=404)
    assert ckan.result("group_show", {"id": "env"}, who="admin")["state"] == "deleted"
    assert ckan.result("group_list") == []


# -- group_package_show ----------------------------------------------------------------------


def test_group_package_show(ckan):
    assert [p["name"] for p in ckan.result("group_package_show", {"id": "env"})] == ["water"]
    assert (
        ckan.result("group_package_show", {"id": "env", "limit": 5})[0]["groups"][0]["name"]
        == "env"
    )
    names = [p["name"] for p in ckan.result("group_package_show", {"id": "org-a"}, who="carol")]
    assert names == ["water"]  # never the private dataset
    ckan.error("group_package_show", {"id": "nope"}, status=404)
    assert "limit" in ckan.error("group_package_show", {"id": "env", "limit": -1}, status=409)


# -- create / update / patch -----------------------------------------------------------------


def test_group_create_makes_the_caller_admin(ckan):
    group = ckan.result(
        "group_create",
        {"name": "birds", "title": "Birds", "extras": [{"key": "k", "value": "v"}]},
        who="dave",
    )
    assert group["type"] == "group" and group["is_organization"] is False
    assert group["package_count"] == 0 and group["extras"] == [{"key": "k", "value": "v"}]
    assert [(u["name"], u["capacity"]) for u in group["users"]] == [("dave", "admin")]
    shown = ckan.result("group_show", {"id": "birds"})
    assert set(shown) == set(group)


def test_group_create_refusals(ckan):
    assert ckan.error("group_create", {"name": "x1"}, status=403)["__type"] == (
        "Authorization Error"
    )
    assert "name" in ckan.error("group_create", {}, who="dave", status=409)
    assert "name" in ckan.error("group_create", {"name": ""}, who="dave", status=409)
    assert "name" in ckan.error("group_create", {"name": "A B"}, who="dave", status=409)
    assert "name" in ckan.error("group_create", {"name": "env"}, who="dave", status=409)
    assert "name" in ckan.error("group_create", {"name": "org-a"}, who="dave", status=409)


def test_organization_create_is_for_sysadmins(ckan):
    for who in (None, "dave", "bob"):
        ckan.error("organization_create", {"name": "org-b"}, who=who, status=403)
    org = ckan.result("organization_create", {"name": "org-b"}, who="admin")
    assert (org["type"], org["is_organization"], org["display_name"]) == (
        "organization",
        True,
        "org-b",
    )
    assert org["name"] in ckan.result("organization_list")


def test_update_replaces_and_patch_merges(ckan):
    ckan.result("group_create", {"name": "birds", "title": "Birds"}, who="dave")
    updated = ckan.result(
        "group_update", {"id": "birds", "name": "birds", "description": "d"}, who="dave"
    )
    assert updated["title"] is None and updated["description"] == "d"
    assert updated["users"][0]["name"] == "dave"
    patched = ckan.result("group_patch", {"id": "birds", "title": "Fowl"}, who="dave")
    assert (patched["title"], patched["description"]) == ("Fowl", "d")
    renamed = ckan.result("organization_patch", {"id": "org-a", "name": "org-z"}, who="admin")
    assert renamed["name"] == "org-z" and renamed["title"] == "Org A"
    assert "name" in ckan.error("group_update", {"id": "birds"}, who="dave", status=409)
    assert "name" in ckan.error(
        "group_patch", {"id": "birds", "name": "env"}, who="dave", status=409
    )


@pytest.mark.parametrize("who", [None, "carol", "bob", "dave"])
def test_only_admins_update_an_organization(ckan, who):
    ckan.error("organization_patch", {"id": "org-a", "title": "T"}, who=who, status=403)
    ckan.error("organization_update", {"id": "org-a", "name": "org-a"}, who=who, status=403)
    ckan.error("organization_delete", {"id": "org-a"}, who=who, status=403)


def test_update_not_found_and_wrong_kind(ckan):
    ckan.error("group_patch", {"id": "nope", "title": "t"}, who="admin", status=404)
    ckan.error("group_update", {"id": "org-a", "name": "org-a"}, who="admin", status=404)
    assert ckan.error("group_patch", {}, who="admin", status=409)["id"] == ["Missing value"]


# -- delete / purge --------------------------------------------------------------------------


def test_organization_delete_refused_while_it_has_datasets(ckan):
    error = ckan.error("organization_delete", {"id": "org-a"}, who="admin", status=409)
    assert "still has datasets" in error["message"]
    org = ckan.result("organization_create", {"name": "org-b"}, who="admin")
    assert ckan.result("organization_delete", {"id": org["id"]}, who="admin") is None
    assert ckan.result("organization_list") == ["org-a"]


def test_group_delete_by_its_admin_and_purge_by_sysadmins(ckan):
    ckan.result("group_create", {"name": "birds"}, who="dave")
    ckan.error("group_delete", {"id": "birds"}, who="bob", status=403)
    assert ckan.result("group_delete", {"id": "birds"}, who="dave") is None
    ckan.error("group_purge", {"id": "env"}, who="dave", status=403)
    ckan.error("organization_purge", {"id": "org-a"}, who="bob", status=403)
    assert ckan.result("group_purge", {"id": "env"}, who="admin") is None
    ckan.error("group_show", {"id": "env"}, who="admin", status=404)
    assert ckan.result("package_show", {"id": "water"})["groups"] == []
    ckan.error("group_purge", {"id": "env"}, who="admin", status=404)


# -- memberships -----------------------------------------------------------------------------


def test_organization_member_create_and_delete(ckan):
    row = ckan.result(
        "organization_member_create",
        {"id": "org-a", "username": "dave", "role": "editor"},
        who="admin",
    )
    assert (row["table_name"], row["capacity"], row["group_id"]) == (
        "user",
        "editor",
        ckan.ids["org-a"],
    )
    assert [o["name"] for o in ckan.result("organization_list_for_user", who="dave")] == ["org-a"]
    assert (
        ckan.result("organization_member_delete", {"id": "org-a", "username": "dave"}, who="admin")
        is None
    )
    assert ckan.result("organization_list_for_user", who="dave") == []


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"username": "dave", "role": "member"}, "id"),
        ({"id": "org-a", "role": "member"}, "username"),
        ({"id": "org-a", "username": "dave"}, "role"),
        ({"id": "org-a", "username": "nobody", "role": "member"}, "username"),
        ({"id": "org-a", "username": "dave", "role": "boss"}, "role"),
        ({"id": "nope", "username": "dave", "role": "member"}, "id"),
    ],
)
def test_member_create_validation(ckan, data, field):
    assert field in ckan.error("organization_member_create", data, who="admin", status=409)


@pytest.mark.parametrize("who", [None, "dave", "carol", "bob"])
def test_only_admins_manage_members(ckan, who):
    data = {"id": "org-a", "username": "dave", "role": "member"}
    ckan.error("organization_member_create", data, who=who, status=403)
    ckan.error(
        "organization_member_delete", {"id": "org-a", "username": "carol"}, who=who, status=403
    )


def test_admins_cannot_demote_themselves(ckan):
    ckan.result("group_create", {"name": "birds"}, who="dave")
    data = {"id": "birds", "username": "dave", "role": "member"}
    ckan.error("group_member_create", data, who="dave", status=403)
    row = ckan.result(
        "group_member_create", {"id": "birds", "username": "carol", "role": "member"}, who="dave"
    )
    assert row["capacity"] == "member"
    ckan.result("group_member_delete", {"id": "birds", "username": "carol"}, who="dave")
    assert [u["name"] for u in ckan.result("group_show", {"id": "birds"})["users"]] == ["dave"]


def test_member_list(ckan):
    rows = ckan.result("member_list", {"id": "org-a"})
    users = {ckan.catalog.users.get(name).id: name for name in ("bob", "carol")}
    assert sorted(r for r in rows if r[1] == "user") == sorted(
        [
            [users_id, "user", "editor" if name == "bob" else "member"]
            for users_id, name in users.items()
        ]
    )
    assert [r for r in rows if r[1] == "package"] == [
        [ckan.ids["water"], "package", "organization"]
    ]
    rows = ckan.result("member_list", {"id": "org-a", "object_type": "package"}, who="carol")
    assert sorted(r[0] for r in rows) == sorted([ckan.ids["water"], ckan.ids["secret"]])
    assert ckan.result("member_list", {"id": "org-a", "capacity": "editor"})[0][2] == "editor"
    assert ckan.result("member_list", {"id": "env"}) == [[ckan.ids["water"], "package", "public"]]
    assert "object_type" in ckan.error(
        "member_list", {"id": "env", "object_type": "tree"}, status=409
    )
    ckan.error("member_list", {"id": "nope"}, status=404)


def test_member_create_and_delete_datasets_in_groups(ckan):
    ckan.catalog.datasets.create(DatasetInput(name="air", owner_org="org-a"))
    data = {"id": "env", "object": "air", "object_type": "package", "capacity": "public"}
    ckan.error("member_create", data, who="dave", status=403)
    row = ckan.result("member_create", data, who="admin")
    assert (row["table_name"], row["group_id"]) == ("package", ckan.ids["env"])
    assert [g["name"] for g in ckan.result("package_show", {"id": "air"})["groups"]] == ["env"]
    ckan.result(
        "member_delete", {"id": "env", "object": "air", "object_type": "package"}, who="admin"
    )
    assert ckan.result("package_show", {"id": "air"})["groups"] == []
    org_data = {"id": "org-a", "object": "air", "object_type": "package", "capacity": "public"}
    ckan.error("member_create", org_data, who="admin", status=409)


def test_member_create_and_delete_users(ckan):
    data = {"id": "env", "object": "dave", "object_type": "user", "capacity": "member"}
    ckan.error("member_create", data, who="dave", status=403)
    assert ckan.result("member_create", data, who="admin")["capacity"] == "member"
    assert [g["name"] for g in ckan.result("group_list_authz", who="dave")] == ["env"]
    ckan.result("member_delete", {**data, "capacity": None}, who="admin")
    assert ckan.result("group_list_authz", who="dave") == []


@pytest.mark.parametrize("missing", ["id", "object", "object_type", "capacity"])
def test_member_create_needs_every_key(ckan, missing):
    data = {"id": "env", "object": "dave", "object_type": "user", "capacity": "member"}
    del data[missing]
    assert missing in ckan.error("member_create", data, who="admin", status=409)


# -- for the caller --------------------------------------------------------------------------


def test_organization_list_for_user(ckan):
    assert ckan.result("organization_list_for_user") == []
    [org] = ckan.result("organization_list_for_user", who="carol")
    assert (org["name"], org["capacity"]) == ("org-a", "member")
    assert (
        ckan.result("organization_list_for_user", {"permission": "create_dataset"}, who="carol")
        == []
    )
    [org] = ckan.result(
        "organization_list_for_user",
        {"permission": "create_dataset", "include_dataset_count": True},
        who="bob",
    )
    assert (org["capacity"], org["package_count"]) == ("editor", 2)
    [org] = ckan.result("organization_list_for_user", {"id": "bob"}, who="dave")
    assert org["capacity"] == "editor"
    [org] = ckan.result("organization_list_for_user", who="admin")
    assert org["capacity"] == "admin"
    ckan.error("organization_list_for_user", {"id": "nobody"}, status=404)


def test_group_list_authz(ckan):
    assert ckan.result("group_list_authz") == []
    assert ckan.result("group_list_authz", who="bob") == []
    [group] = ckan.result("group_list_authz", who="admin")
    assert (group["name"], group["capacity"], group["package_count"]) == ("env", "admin", 1)
    assert ckan.result("group_list_authz", {"am_member": True}, who="admin") == []
    ckan.result("group_create", {"name": "birds"}, who="admin")
    mine = ckan.result("group_list_authz", {"am_member": "true"}, who="admin")
    assert [g["name"] for g in mine] == ["birds"]


def test_member_roles_list(ckan):
    roles = ckan.result("member_roles_list")
    assert [r["value"] for r in roles] == ["admin", "editor", "member"]
    assert roles[0] == {"text": "Admin", "value": "admin"}
    group_roles = ckan.result("member_roles_list", {"group_type": "group"})
    assert [r["value"] for r in group_roles] == ["admin", "member"]
    assert "group_type" in ckan.error("member_roles_list", {"group_type": "x"}, status=409)


def test_autocomplete(ckan):
    ckan.catalog.groups.create(GroupInput(name="wildlife", title="Environmental birds"))
    found = ckan.result("group_autocomplete", {"q": "ENV"})
    assert [g["name"] for g in found] == ["env", "wildlife"]
    assert set(found[0]) == {"id", "name", "title"}
    assert len(ckan.result("group_autocomplete", {"q": "env", "limit": 1})) == 1
    assert ckan.result("organization_autocomplete", {"q": "org"})[0]["name"] == "org-a"
    assert ckan.result("organization_autocomplete", {"q": "env"}) == []
    assert ckan.error("group_autocomplete", {}, status=409)["q"] == ["Missing value"]


# -- HTTP ------------------------------------------------------------------------------------

WRITES = [
    "group_create",
    "organization_create",
    "group_update",
    "organization_update",
    "group_patch",
    "organization_patch",
    "group_delete",
    "organization_delete",
    "group_purge",
    "organization_purge",
    "member_create",
    "member_delete",
    "group_member_create",
    "group_member_delete",
    "organization_member_create",
    "organization_member_delete",
]


@pytest.mark.parametrize("name", WRITES)
def test_writes_refuse_get(ckan, name):
    response = ckan.get(name, {"id": "env"}, who="admin")
    assert response.status_code == 400
    assert isinstance(response.json(), str) and "POST" in response.json()


def test_help_show_documents_every_action(ckan):
    for name in [*WRITES, "group_list", "organization_show", "member_list", "group_autocomplete"]:
        text = ckan.result("help_show", {"name": name})
        assert text and ("group" in text or "organization" in text)
