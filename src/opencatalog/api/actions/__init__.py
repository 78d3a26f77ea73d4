"""The actions of CKAN's Action API (``/api/3/action/<name>``), one function each.

An action is a plain function ``(catalog, params) -> result`` registered under its CKAN name
with :func:`action`; it runs in a worker thread with the catalog view of the caller, reads
its parameters through :class:`~opencatalog.api.actions.params.Params` (which raises the
validation errors CKAN gives for missing or malformed values) and returns what goes into the
envelope's ``result``. Errors are the catalog's own exceptions; the HTTP layer
(:mod:`opencatalog.api.action`) maps them to CKAN's error objects. ``get=True`` marks an
action free of side effects, which CKAN also serves to GET requests.

Each module registers its actions when imported; :data:`ACTIONS` holds them all.
"""

from __future__ import annotations

from . import activity, dataset_writes, datasets, groups, site, tags, users
from ._registry import ACTIONS, Action, action

__all__ = [
    "ACTIONS",
    "Action",
    "action",
    "activity",
    "dataset_writes",
    "datasets",
    "groups",
    "site",
    "tags",
    "users",
]
