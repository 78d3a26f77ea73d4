"""Activity stream actions: ``package_activity_list``, ``organization_activity_list``,
``group_activity_list``, ``user_activity_list``, ``recently_changed_packages_activity_list``.

Each returns activity dicts, newest first: ``id``, ``timestamp``, ``user_id``, ``object_id``,
``object_type``, ``activity_type`` and ``data`` (a snapshot of the object after the change).
The catalog names activity types ``<object>.<change>`` (``dataset.created``,
``organization.updated``...) where CKAN says ``new package``, ``changed organization``...;
CKAN's ``after``/``before``, ``activity_types`` and ``include_hidden_activity`` filters are
not supported.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from opencatalog.domain.model import Activity
from opencatalog.serialization import activity_to_dict
from opencatalog.services.catalog import Catalog

from ._registry import action
from .params import Params

#: CKAN's ``ckan.activity_list_limit`` and ``ckan.activity_list_limit_max``.
LIMIT_DEFAULT = 31
LIMIT_MAX = 100


def _page(params: Params) -> tuple[int, int]:
    """``offset`` and ``limit`` (default 31, larger values cut to 100)."""
    offset = params.integer("offset", 0, minimum=0)
    limit = params.integer("limit", LIMIT_DEFAULT, minimum=0, maximum=LIMIT_MAX)
    return offset, limit


def _stream(
    params: Params, read: Callable[..., Sequence[Activity]], *args: str
) -> list[dict[str, Any]]:
    offset, limit = _page(params)
    if limit == 0:
        return []
    return [activity_to_dict(a) for a in read(*args, offset=offset, limit=limit)]


@action("package_activity_list", get=True)
def package_activity_list(cat: Catalog, params: Params) -> list[dict[str, Any]]:
    """The activity stream of the dataset ``id`` (an id or a name), for those who may read
    it; ``offset`` and ``limit`` (default 31, at most 100) page it."""
    return _stream(params, cat.activities.for_dataset, params.require("id"))


@action("organization_activity_list", get=True)
def organization_activity_list(cat: Catalog, params: Params) -> list[dict[str, Any]]:
    """The activity stream of the organization ``id`` (the organization's own changes);
    ``offset`` and ``limit`` (default 31, at most 100)."""
    return _stream(params, cat.activities.for_organization, params.require("id"))


@action("group_activity_list", get=True)
def group_activity_list(cat: Catalog, params: Params) -> list[dict[str, Any]]:
    """The activity stream of the group ``id`` (the group's own changes); ``offset`` and
    ``limit`` (default 31, at most 100)."""
    return _stream(params, cat.activities.for_group, params.require("id"))


@action("user_activity_list", get=True)
def user_activity_list(cat: Catalog, params: Params) -> list[dict[str, Any]]:
    """What the user ``id`` did, without activities on datasets the caller may not read;
    ``offset`` and ``limit`` (default 31, at most 100)."""
    return _stream(params, cat.activities.for_user, params.require("id"))


@action("recently_changed_packages_activity_list", get=True)
def recently_changed_packages_activity_list(cat: Catalog, params: Params) -> list[dict[str, Any]]:
    """The site's latest dataset activities the caller may read; ``offset`` and ``limit``
    (default 31, at most 100)."""
    return _stream(params, cat.activities.recent_datasets)
