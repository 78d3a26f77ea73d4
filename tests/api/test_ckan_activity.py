"""CKAN's activity stream actions over HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from opencatalog.domain.commands import DatasetPatch, GroupPatch

pytest.importorskip("starlette")

LISTS = [
    ("package_activity_list", "water"),
    ("organization_activity_list", "org-a"),
    ("group_activity_list", "env"),
    ("user_activity_list", "bob"),
]


@pytest.fixture
def busy(ckan: Any) -> Any:
    """Bob edits the public and the private dataset and his profile; the admin renames the
    organization and the group."""
    as_bob = ckan.catalog.as_user("bob")
    as_bob.datasets.patch("water", DatasetPatch(title="Water quality 2"))
    as_bob.datasets.patch("secret", DatasetPatch(title="Secret plans 2"))
    ckan.result("user_patch", {"id": "bob", "fullname": "Bob B"}, who="bob")
    as_admin = ckan.catalog.as_user("admin")
    as_admin.organizations.patch("org-a", GroupPatch(title="Org A 2"))
    as_admin.groups.patch("env", GroupPatch(title="Environment 2"))
    return ckan


def test_package_activity_list_newest_first(busy: Any) -> None:
    items = busy.result("package_activity_list", {"id": "water"})
    assert [a["activity_type"] for a in items] == ["dataset.updated", "dataset.created"]
    assert items[0]["object_id"] == busy.ids["water"]
    assert items[0]["data"]["title"] == "Water quality 2"
    assert items[0]["user_id"] == busy.catalog.users.get("bob").id
    assert set(items[0]) >= {"id", "timestamp", "user_id", "object_id", "activity_type", "data"}
    assert "permission_labels" not in items[0]
    assert busy.result("package_activity_list", {"id": busy.ids["water"]}) == items
    assert busy.get("package_activity_list", {"id": "water"}).json()["result"] == items


def test_private_dataset_activity_is_for_members_only(busy: Any) -> None:
    for who in (None, "dave"):
        error = busy.error("package_activity_list", {"id": "secret"}, who=who, status=404)
        assert error["__type"] == "Not Found Error"
    for who in ("carol", "admin"):
        items = busy.result("package_activity_list", {"id": "secret"}, who=who)
        assert items[0]["data"]["title"] == "Secret plans 2"


def test_organization_and_group_activity_lists(busy: Any) -> None:
    org = busy.result("organization_activity_list", {"id": "org-a"})
    assert [a["activity_type"] for a in org] == [
        "organization.updated",
        "organization.member_changed",
        "organization.member_changed",
        "organization.created",
    ]
    assert org[0]["data"]["title"] == "Org A 2"
    group = busy.result("group_activity_list", {"id": busy.ids["env"]})
    assert [a["activity_type"] for a in group] == ["group.updated", "group.created"]
    # an organization is not a group and a group is not an organization
    busy.error("group_activity_list", {"id": "org-a"}, status=404)
    busy.error("organization_activity_list", {"id": "env"}, status=404)


def test_user_activity_list_hides_private_datasets_from_outsiders(busy: Any) -> None:
    def kinds(who: str | None) -> list[tuple[str, str]]:
        items = busy.result("user_activity_list", {"id": "bob"}, who=who)
        return [(a["activity_type"], a["data"].get("name", "")) for a in items]

    everything = [
        ("user.updated", "bob"),
        ("dataset.updated", "secret"),
        ("dataset.updated", "water"),
    ]
    assert kinds("carol") == everything
    assert kinds("admin") == everything
    assert kinds(None) == [("user.updated", "bob"), ("dataset.updated", "water")]
    assert kinds("dave") == kinds(None)
    assert all("email" not in a["data"] for a in busy.result("user_activity_list", {"id": "bob"}))


def test_recently_changed_packages_activity_list(busy: Any) -> None:
    def names(who: str | None) -> list[str]:
        items = busy.result("recently_changed_packages_activity_list", who=who)
        assert all(a["object_type"] == "dataset" for a in items)
        return [a["data"]["name"] for a in items]

    assert names(None) == ["water", "water"]
    assert names("dave") == ["water", "water"]
    assert names("carol") == ["secret", "water", "secret", "water"]
    response = busy.get("recently_changed_packages_activity_list", {"limit": "1"})
    assert [a["data"]["title"] for a in response.json()["result"]] == ["Water quality 2"]


@pytest.mark.parametrize("name,ref", LISTS)
def test_paging(busy: Any, name: str, ref: str) -> None:
    everything = busy.result(name, {"id": ref}, who="admin")
    assert len(everything) >= 2
    assert busy.result(name, {"id": ref, "limit": 1}, who="admin") == everything[:1]
    assert busy.result(name, {"id": ref, "offset": 1, "limit": "1"}, who="admin") == everything[1:2]
    assert busy.result(name, {"id": ref, "limit": 0}, who="admin") == []
    assert busy.result(name, {"id": ref, "limit": 5000}, who="admin") == everything


def test_limit_defaults_to_31_and_is_cut_to_100(ckan: Any) -> None:
    as_bob = ckan.catalog.as_user("bob")
    for i in range(110):
        as_bob.datasets.patch("water", DatasetPatch(title=f"Water {i}"))
    assert len(ckan.result("package_activity_list", {"id": "water"})) == 31
    assert len(ckan.result("package_activity_list", {"id": "water", "limit": 500})) == 100
    assert len(ckan.result("recently_changed_packages_activity_list", {"limit": 500})) == 100


@pytest.mark.parametrize("name,ref", LISTS)
def test_bad_parameters(ckan: Any, name: str, ref: str) -> None:
    assert ckan.error(name, {}, status=409)["id"] == ["Missing value"]
    assert "limit" in ckan.error(name, {"id": ref, "limit": "many"}, status=409)
    assert "offset" in ckan.error(name, {"id": ref, "offset": -1}, status=409)
    error = ckan.error(name, {"id": "no-such-thing"}, status=404)
    assert error["__type"] == "Not Found Error"


def test_recently_changed_bad_parameters(ckan: Any) -> None:
    name = "recently_changed_packages_activity_list"
    assert "limit" in ckan.error(name, {"limit": "x"}, status=409)
    assert "offset" in ckan.error(name, {"offset": "-2"}, status=409)


@pytest.mark.parametrize("name", [name for name, _ in LISTS])
def test_help_show_documents_each_list(ckan: Any, name: str) -> None:
    text = ckan.result("help_show", {"name": name})
    assert "``id``" in text and "``limit``" in text
