"""User and API token actions: ``user_show``, ``user_list``, ``user_create``,
``user_update``, ``user_patch``, ``user_delete``, ``user_autocomplete``, ``api_token_create``,
``api_token_list``, ``api_token_revoke``."""

from __future__ import annotations

from typing import Any

from opencatalog.domain.commands import UserPatch
from opencatalog.domain.model import ApiToken, User
from opencatalog.errors import ValidationFailed
from opencatalog.serialization import token_to_dict, user_input_from_dict, user_to_dict
from opencatalog.services.catalog import Catalog

from ._registry import action
from .params import Params

#: How user_list may sort, and the key for each (CKAN orders by a column of the user table).
_USER_ORDER: dict[str, Any] = {
    "name": lambda u: u.name,
    "display_name": lambda u: (u.display_name.casefold(), u.name),
    "fullname": lambda u: (u.fullname or "", u.name),
    "created": lambda u: (u.created, u.name),
    "sysadmin": lambda u: (u.sysadmin, u.name),
}

#: The text fields of an account that user_update and user_patch change when given.
_PATCH_TEXT = ("name", "email", "password", "fullname", "about", "image_url")


def _user_dict(cat: Catalog, user: User) -> dict[str, Any]:
    return user_to_dict(user, private=cat.users.can_see_private(user))


def _token_dict(token: ApiToken) -> dict[str, Any]:
    out = token_to_dict(token)
    out["last_access"] = out["last_used_at"]  # CKAN's name for it
    return out


@action("user_show", get=True)
def user_show(cat: Catalog, params: Params) -> dict[str, Any]:
    """The account ``id`` (an id or a name). ``email`` appears only for the user themselves
    and sysadmins; the password hash never does."""
    return _user_dict(cat, cat.users.get(params.require("id")))


@action("user_list", get=True)
def user_list(cat: Catalog, params: Params) -> list[Any]:
    """Active accounts: ``q`` keeps those whose name or full name contains it
    (case-insensitive); ``order_by`` is ``name`` (default), ``display_name``, ``fullname``,
    ``created`` or ``sysadmin``; ``all_fields`` (default true) gives user_show dicts, false
    gives names."""
    order_by = params.string("order_by") or "name"
    if order_by not in _USER_ORDER:
        raise ValidationFailed({"order_by": [f"Cannot sort by field `{order_by}`"]})
    all_fields = params.boolean("all_fields", True)
    q = params.string("q")
    users = cat.users.find(q) if q else list(cat.users.list().items)
    users.sort(key=_USER_ORDER[order_by])
    if not all_fields:
        return [u.name for u in users]
    return [_user_dict(cat, u) for u in users]


@action("user_create")
def user_create(cat: Catalog, params: Params) -> dict[str, Any]:
    """Create an account (sysadmins): ``name``, ``email``, ``password`` (required),
    ``fullname``, ``about``, ``image_url``, ``id``, ``sysadmin``. With ``with_apitoken`` the
    result also has ``token``, the secret of a new token named ``default``. Returns the
    account with its email."""
    data = params.mapping()
    missing = {k: ["Missing value"] for k in ("name", "email", "password") if not data.get(k)}
    if missing:
        raise ValidationFailed(missing)
    user = cat.users.create(user_input_from_dict(data))
    out = user_to_dict(user, private=True)
    if params.boolean("with_apitoken"):
        out["token"] = cat.tokens.create(user.id, "default").secret
    return out


def _patch(params: Params) -> UserPatch:
    values: dict[str, Any] = {k: params.data[k] for k in _PATCH_TEXT if k in params.data}
    if values.get("password") in ("", None):
        values.pop("password", None)  # CKAN keeps the password when none is given
    if "sysadmin" in params.data:
        values["sysadmin"] = params.boolean("sysadmin")
    return UserPatch(**values)


@action("user_update")
def user_update(cat: Catalog, params: Params) -> dict[str, Any]:
    """Update the account ``id`` (the user themselves, or sysadmins). ``email`` is required,
    as in CKAN; the other fields of user_create change when given (``password`` only when
    non-empty; renaming and ``sysadmin`` need a sysadmin). Returns the account."""
    ref = params.require("id")
    params.require("email")
    return user_to_dict(cat.users.update(ref, _patch(params)), private=True)


@action("user_patch")
def user_patch(cat: Catalog, params: Params) -> dict[str, Any]:
    """Change only the given fields of the account ``id`` (as user_update, nothing
    required). Returns the account."""
    ref = params.require("id")
    return user_to_dict(cat.users.update(ref, _patch(params)), private=True)


@action("user_delete")
def user_delete(cat: Catalog, params: Params) -> None:
    """Delete the account ``id`` (sysadmins): its memberships and tokens go with it."""
    cat.users.delete(params.require("id"))


@action("user_autocomplete", get=True)
def user_autocomplete(cat: Catalog, params: Params) -> list[dict[str, Any]]:
    """Active users whose name or full name contains ``q`` (``limit``, default 20): ``id``,
    ``name`` and ``fullname`` each. Signed-in callers only (the catalog does not let
    anonymous callers enumerate accounts)."""
    q = params.require("q")
    limit = params.integer("limit", 20, minimum=1, maximum=100)
    return [
        {"id": u.id, "name": u.name, "fullname": u.fullname}
        for u in cat.search.suggest_users(q, limit=limit)
    ]


@action("api_token_create")
def api_token_create(cat: Catalog, params: Params) -> dict[str, str]:
    """A new API token named ``name`` for ``user`` (id or name; the user themselves or
    sysadmins): ``{"token": secret}``. The secret is shown this once; the catalog's tokens
    are random strings, not JWTs."""
    user = params.require("user")
    name = params.require("name")
    return {"token": cat.tokens.create(user, name).secret}


@action("api_token_list", get=True)
def api_token_list(cat: Catalog, params: Params) -> list[dict[str, Any]]:
    """The tokens of ``user_id`` (or ``user``; id or name), oldest first: ``id``, ``name``,
    ``user_id``, ``created_at``, ``last_access`` (also as ``last_used_at``),
    ``expires_at``. The user themselves or sysadmins."""
    user = params.require("user_id", "user")
    return [_token_dict(t) for t in cat.tokens.list(user)]


@action("api_token_revoke")
def api_token_revoke(cat: Catalog, params: Params) -> None:
    """Revoke a token given by its id (``jti``) or its secret (``token``): its owner or
    sysadmins."""
    cat.tokens.revoke(params.require("token", "jti"))
