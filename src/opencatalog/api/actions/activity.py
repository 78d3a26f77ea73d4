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


#: The streams of one object: action name, ActivityService method, docstring.
_OBJECT_STREAMS = [
    (
        "package_activity_list",
        "for_dataset",
        "The activity stream of the dataset ``id`` (an id or a name), for those who may read it",
    ),
    (
        "organization_activity_list",
        "for_organization",
        "The activity stream of the organization ``id`` (the organization's own changes)",
    ),
    (
        "group_activity_list",
        "for_group",
        "The activity stream of the group ``id`` (the group's own changes)",
    ),
    (
        "user_activity_list",
        "for_user",
        "What the user ``id`` did, without activities on datasets the caller may not read",
    ),
]


def _register_object_stream(name: str, method: str, doc: str) -> None:
    def object_stream(cat: Catalog, params: Params) -> list[dict[str, Any]]:
        return _stream(params, getattr(cat.activities, method), params.require("id"))

    object_stream.__name__ = object_stream.__qualname__ = name
    object_stream.__doc__ = f"{doc}; ``offset`` and ``limit`` (default 31, at most 100)."
    action(name, get=True)(object_stream)


for _name, _method, _doc in _OBJECT_STREAMS:
    _register_object_stream(_name, _method, _doc)


@action("recently_changed_packages_activity_list", get=True)
def recently_changed_packages_activity_list(cat: Catalog, params: Params) -> list[dict[str, Any]]:
    """The site's latest dataset activities the caller may read; ``offset`` and ``limit``
    (default 31, at most 100)."""
    return _stream(params, cat.activities.recent_datasets)
