"""CKAN's user and API token actions over HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from opencatalog.domain.commands import UserPatch

pytest.importorskip("starlette")

GET_REFUSED = "Bad request: JSON Error: Invalid request. Please use POST method for your request"

WRITE_ACTIONS = [
    "user_create",
    "user_update",
    "user_patch",
    "user_delete",
    "api_token_create",
    "api_token_revoke",
]


@pytest.mark.parametrize("name", WRITE_ACTIONS)
def test_get_is_refused_for_write_actions(ckan: Any, name: str) -> None:
    response = ckan.get(name, {"id": "bob"}, who="admin")
    assert response.status_code == 400
    assert response.json() == GET_REFUSED


# -- user_show ------------------------------------------------------------------------------


@pytest.mark.parametrize("who", [None, "dave"])
def test_user_show_hides_the_email_from_others(ckan: Any, who: str | None) -> None:
    user = ckan.result("user_show", {"id": "bob"}, who=who)
    assert user["name"] == "bob" and user["display_name"] == "bob"
    assert "email" not in user
    assert "password_hash" not in user and "password" not in user


@pytest.mark.parametrize("who", ["bob", "admin"])
def test_user_show_gives_the_email_to_self_and_sysadmins(ckan: Any, who: str) -> None:
    user = ckan.result("user_show", {"id": "bob"}, who=who)
    assert user["email"] == "bob@example.org"
    assert "password_hash" not in user


def test_user_show_by_id_and_over_get(ckan: Any) -> None:
    bob = ckan.result("user_show", {"id": "bob"})
    response = ckan.get("user_show", {"id": bob["id"]})
    assert response.status_code == 200
    assert response.json()["result"]["name"] == "bob"


def test_user_show_errors(ckan: Any) -> None:
    assert ckan.error("user_show", {}, status=409)["id"] == ["Missing value"]
    error = ckan.error("user_show", {"id": "nobody"}, status=404)
    assert error["__type"] == "Not Found Error"


# -- user_list ------------------------------------------------------------------------------


def test_user_list_gives_dicts_by_name_without_emails_for_outsiders(ckan: Any) -> None:
    users = ckan.result("user_list")
    assert [u["name"] for u in users] == ["admin", "bob", "carol", "dave"]
    assert all("email" not in u and "password_hash" not in u for u in users)


def test_user_list_shows_emails_to_sysadmins_and_only_own_to_users(ckan: Any) -> None:
    assert all("email" in u for u in ckan.result("user_list", who="admin"))
    mine = [u["name"] for u in ckan.result("user_list", who="carol") if "email" in u]
    assert mine == ["carol"]


def test_user_list_q_and_names_only(ckan: Any) -> None:
    ckan.catalog.users.update("dave", UserPatch(fullname="Bobby Dave"))
    assert ckan.result("user_list", {"q": "BO", "all_fields": False}) == ["bob", "dave"]
    assert ckan.result("user_list", {"q": "zzz"}) == []


def test_user_list_order_by(ckan: Any) -> None:
    ckan.catalog.users.update("admin", UserPatch(fullname="Zed"))
    ckan.catalog.users.update("dave", UserPatch(fullname="Alice"))
    names = ckan.result("user_list", {"order_by": "display_name", "all_fields": "false"})
    assert names == ["dave", "bob", "carol", "admin"]
    error = ckan.error("user_list", {"order_by": "password_hash"}, status=409)
    assert "order_by" in error


def test_user_list_leaves_out_deleted_accounts(ckan: Any) -> None:
    ckan.result("user_delete", {"id": "dave"}, who="admin")
    assert "dave" not in ckan.result("user_list", {"all_fields": False})


# -- user_create ----------------------------------------------------------------------------


def test_user_create_by_a_sysadmin(ckan: Any) -> None:
    user = ckan.result(
        "user_create",
        {"name": "erin", "email": "erin@example.org", "password": "pw-long-2", "fullname": "E"},
        who="admin",
    )
    assert user["name"] == "erin" and user["email"] == "erin@example.org"
    assert user["fullname"] == "E" and user["sysadmin"] is False
    assert "password" not in user and "password_hash" not in user
    assert ckan.catalog.users.authenticate("erin", "pw-long-2").name == "erin"


def test_user_create_with_an_api_token(ckan: Any) -> None:
    user = ckan.result(
        "user_create",
        {"name": "erin", "email": "e@example.org", "password": "pw-long-2", "with_apitoken": True},
        who="admin",
    )
    assert ckan.result("user_show", {"id": "erin"}, who=None)["name"] == "erin"
    ckan.tokens["erin"] = user["token"]
    assert ckan.result("user_show", {"id": "erin"}, who="erin")["email"] == "e@example.org"


@pytest.mark.parametrize("who,status", [(None, 403), ("dave", 403)])
def test_user_create_needs_a_sysadmin(ckan: Any, who: str | None, status: int) -> None:
    data = {"name": "erin", "email": "erin@example.org", "password": "pw-long-2"}
    error = ckan.error("user_create", data, who=who, status=status)
    assert error["__type"] == "Authorization Error"


def test_user_create_reports_every_missing_field(ckan: Any) -> None:
    error = ckan.error("user_create", {}, who="admin", status=409)
    assert error["__type"] == "Validation Error"
    for key in ("name", "email", "password"):
        assert error[key] == ["Missing value"]


def test_user_create_refuses_a_taken_name_and_a_bad_name(ckan: Any) -> None:
    data = {"name": "bob", "email": "other@example.org", "password": "pw-long-2"}
    assert "name" in ckan.error("user_create", data, who="admin", status=409)
    data = {"name": "Not A Name!", "email": "x@example.org", "password": "pw-long-2"}
    assert "name" in ckan.error("user_create", data, who="admin", status=409)


# -- user_update / user_patch ---------------------------------------------------------------


def test_user_update_by_self(ckan: Any) -> None:
    user = ckan.result(
        "user_update",
        {"id": "bob", "email": "robert@example.org", "fullname": "Robert"},
        who="bob",
    )
    assert user["email"] == "robert@example.org" and user["fullname"] == "Robert"
    assert ckan.catalog.users.get("bob").fullname == "Robert"


def test_user_update_requires_the_email(ckan: Any) -> None:
    error = ckan.error("user_update", {"id": "bob", "fullname": "R"}, who="bob", status=409)
    assert error["email"] == ["Missing value"]
    assert ckan.error("user_update", {}, who="bob", status=409)["id"] == ["Missing value"]


def test_user_update_changes_the_password_only_when_given(ckan: Any) -> None:
    ckan.result("user_update", {"id": "bob", "email": "b@example.org", "password": ""}, who="bob")
    assert ckan.catalog.users.authenticate("bob", "pw-long-1").name == "bob"
    data = {"id": "bob", "email": "b@example.org", "password": "new-pw-long"}
    ckan.result("user_update", data, who="bob")
    assert ckan.catalog.users.authenticate("bob", "new-pw-long").name == "bob"


def test_user_patch_changes_only_given_fields(ckan: Any) -> None:
    ckan.result("user_patch", {"id": "carol", "fullname": "Carol C"}, who="carol")
    user = ckan.result("user_patch", {"id": "carol", "about": "hydrologist"}, who="carol")
    assert user["fullname"] == "Carol C" and user["about"] == "hydrologist"
    assert user["email"] == "carol@example.org"


@pytest.mark.parametrize("action", ["user_update", "user_patch"])
@pytest.mark.parametrize("who", [None, "dave"])
def test_others_may_not_change_an_account(ckan: Any, action: str, who: str | None) -> None:
    data = {"id": "bob", "email": "evil@example.org", "fullname": "Evil"}
    ckan.error(action, data, who=who, status=403)
    assert ckan.catalog.users.get("bob").fullname is None


def test_sysadmins_change_any_account_and_the_sysadmin_flag(ckan: Any) -> None:
    user = ckan.result("user_patch", {"id": "dave", "sysadmin": "true"}, who="admin")
    assert user["sysadmin"] is True
    ckan.error("user_patch", {"id": "bob", "sysadmin": True}, who="bob", status=403)
    bad = ckan.error("user_patch", {"id": "dave", "sysadmin": "maybe"}, who="admin", status=409)
    assert "sysadmin" in bad


def test_user_patch_unknown_user(ckan: Any) -> None:
    ckan.error("user_patch", {"id": "nobody", "fullname": "x"}, who="admin", status=404)


# -- user_delete ----------------------------------------------------------------------------


def test_user_delete_by_a_sysadmin_revokes_tokens(ckan: Any) -> None:
    assert ckan.result("user_delete", {"id": "dave"}, who="admin") is None
    ckan.error("user_show", {"id": "dave"}, who="bob", status=404)
    assert ckan.result("user_show", {"id": "dave"}, who="admin")["state"] == "deleted"
    assert ckan.catalog.tokens.authenticate(ckan.tokens["dave"]) is None
    assert ckan.result("api_token_list", {"user": "dave"}, who="admin") == []


@pytest.mark.parametrize("who", [None, "dave", "bob"])
def test_user_delete_needs_a_sysadmin(ckan: Any, who: str | None) -> None:
    ckan.error("user_delete", {"id": "dave"}, who=who, status=403)
    assert ckan.catalog.users.get("dave").state.value == "active"


def test_user_delete_errors(ckan: Any) -> None:
    assert ckan.error("user_delete", {}, who="admin", status=409)["id"] == ["Missing value"]
    ckan.error("user_delete", {"id": "nobody"}, who="admin", status=404)


# -- user_autocomplete ----------------------------------------------------------------------


def test_user_autocomplete(ckan: Any) -> None:
    ckan.catalog.users.update("carol", UserPatch(fullname="Caroline Bobbins"))
    found = ckan.result("user_autocomplete", {"q": "bob"}, who="dave")
    assert [u["name"] for u in found] == ["bob", "carol"]
    assert set(found[0]) == {"id", "name", "fullname"}
    assert ckan.result("user_autocomplete", {"q": "bob", "limit": 1}, who="dave") == found[:1]
    response = ckan.get("user_autocomplete", {"q": "car"}, who="dave")
    assert [u["name"] for u in response.json()["result"]] == ["carol"]


def test_user_autocomplete_errors(ckan: Any) -> None:
    assert ckan.error("user_autocomplete", {}, who="dave", status=409)["q"] == ["Missing value"]
    ckan.error("user_autocomplete", {"q": "bob"}, status=403)
    bad = ckan.error("user_autocomplete", {"q": "b", "limit": "x"}, who="dave", status=409)
    assert bad["limit"] == ["Invalid integer"]


# -- API tokens -----------------------------------------------------------------------------


def test_api_token_create_list_and_revoke_by_self(ckan: Any) -> None:
    created = ckan.result("api_token_create", {"user": "dave", "name": "laptop"}, who="dave")
    assert set(created) == {"token"}
    ckan.tokens["dave2"] = created["token"]
    assert ckan.result("user_show", {"id": "dave"}, who="dave2")["email"] == "dave@example.org"

    tokens = ckan.result("api_token_list", {"user_id": "dave"}, who="dave")
    listed = ckan.get("api_token_list", {"user_id": "dave"}, who="dave")  # GET-able, as in CKAN
    assert listed.status_code == 200
    assert [t["id"] for t in listed.json()["result"]] == [t["id"] for t in tokens]
    assert [t["name"] for t in tokens] == ["test", "laptop"]
    assert all("token_hash" not in t and "last_access" in t for t in tokens)
    assert ckan.result("api_token_list", {"user": "dave"}, who="dave2") == ckan.result(
        "api_token_list", {"user_id": "dave"}, who="dave"
    )

    assert ckan.result("api_token_revoke", {"jti": tokens[1]["id"]}, who="dave") is None
    assert [t["name"] for t in ckan.result("api_token_list", {"user": "dave"}, who="dave")] == [
        "test"
    ]
    ckan.error("api_token_list", {"user": "dave"}, who="dave2", status=403)


def test_api_token_revoke_by_secret(ckan: Any) -> None:
    secret = ckan.result("api_token_create", {"user": "bob", "name": "ci"}, who="bob")["token"]
    ckan.result("api_token_revoke", {"token": secret}, who="bob")
    assert [t["name"] for t in ckan.result("api_token_list", {"user": "bob"}, who="bob")] == [
        "test"
    ]


def test_sysadmins_manage_anyones_tokens(ckan: Any) -> None:
    ckan.result("api_token_create", {"user": "bob", "name": "x"}, who="admin")
    tokens = ckan.result("api_token_list", {"user_id": "bob"}, who="admin")
    assert [t["name"] for t in tokens] == ["test", "x"]
    ckan.result("api_token_revoke", {"jti": tokens[0]["id"]}, who="admin")
    assert ckan.post("user_show", {"id": "bob"}, who="bob").status_code == 200
    assert "email" not in ckan.result("user_show", {"id": "bob"}, who="bob")


@pytest.mark.parametrize("who", [None, "dave"])
def test_outsiders_may_not_touch_anothers_tokens(ckan: Any, who: str | None) -> None:
    ckan.error("api_token_create", {"user": "bob", "name": "x"}, who=who, status=403)
    ckan.error("api_token_list", {"user_id": "bob"}, who=who, status=403)
    bob_token = ckan.catalog.tokens.list("bob")[0].id
    ckan.error("api_token_revoke", {"jti": bob_token}, who=who, status=403)
    assert len(ckan.catalog.tokens.list("bob")) == 1


def test_api_token_errors(ckan: Any) -> None:
    error = ckan.error("api_token_create", {"user": "dave"}, who="dave", status=409)
    assert error["name"] == ["Missing value"]
    error = ckan.error("api_token_create", {"name": "x"}, who="dave", status=409)
    assert error["user"] == ["Missing value"]
    ckan.error("api_token_create", {"user": "nobody", "name": "x"}, who="admin", status=404)
    assert ckan.error("api_token_list", {}, who="dave", status=409)["user_id"] == ["Missing value"]
    assert ckan.error("api_token_revoke", {}, who="dave", status=409)["token"] == ["Missing value"]
    ckan.error("api_token_revoke", {"jti": "no-such-token"}, who="dave", status=404)
