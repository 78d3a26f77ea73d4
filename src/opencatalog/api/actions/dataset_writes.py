"""Dataset and resource write actions, and resource_search.

``package_create``, ``package_update``, ``package_patch``, ``package_delete``,
``dataset_purge``, ``package_owner_org_update``, ``resource_create``, ``resource_update``,
``resource_patch``, ``resource_delete``, ``package_resource_reorder`` and ``resource_search``
(GET-able). Bodies are read with the serialization module's CKAN readers; the services check
the rights and the values.
"""

from __future__ import annotations

from typing import Any

import attrs
from starlette.datastructures import UploadFile

from opencatalog.domain.commands import DatasetPatch, ResourceInput, ResourcePatch
from opencatalog.domain.model import Resource
from opencatalog.errors import NotAuthorized, ValidationFailed
from opencatalog.serialization import (
    dataset_input_from_dict,
    resource_input_from_dict,
    resource_to_dict,
)
from opencatalog.services.catalog import Catalog

from ._registry import action
from .datasets import package_dicts
from .params import Params

#: Keys that never become resource extras: read by the action itself, or (a literal
#: ``extras``) ignored, as CKAN ignores it.
_RESOURCE_SKIPPED_KEYS = frozenset({"upload", "clear_upload", "package_id", "extras"})

_DATASET_PATCH_FIELDS = frozenset(f.name for f in attrs.fields(DatasetPatch))
_RESOURCE_PATCH_FIELDS = frozenset(f.name for f in attrs.fields(ResourcePatch)) - {"extras"}
_RESOURCE_CORE_FIELDS = frozenset(f.name for f in attrs.fields(ResourceInput))


# -- datasets ---------------------------------------------------------------------------------


@action("package_create")
def package_create(cat: Catalog, params: Params) -> dict[str, Any]:
    """Create a dataset from a package dict: ``name`` (required), ``title``, ``owner_org``
    (id or name; required unless the caller may create unowned datasets), ``private``,
    ``notes``, ``url``, ``version``, ``author(_email)``, ``maintainer(_email)``,
    ``license_id``, ``tags`` (or ``tag_string``), ``extras``, ``groups``, ``resources``;
    ``state`` and ``id`` for sysadmins only. Unknown keys are dropped.

    Returns the new dataset as package_show shows it. A name in use is 409
    ``{"name": ["That URL is already in use."]}``."""
    created = cat.datasets.create(dataset_input_from_dict(params.mapping()))
    return package_dicts(cat, [created])[0]


@action("package_update")
def package_update(cat: Catalog, params: Params) -> dict[str, Any]:
    """Replace a dataset's content: ``id`` (an id or a name; ``name`` when ``id`` is
    absent) and the full package dict as for package_create.

    Omitted text fields, ``tags`` and ``extras`` are cleared; ``name``, ``private``,
    ``owner_org`` and ``state`` are kept when omitted, and so are ``resources`` and
    ``groups`` (CKAN 2.12's rule); ``type`` never changes. Nothing changed means no new
    revision. The values kept are read first: a change by someone else in between is 409
    (Conflict) instead of being undone. Returns the dataset as package_show shows it."""
    ref = params.require("id", "name")
    data = params.mapping()
    current = cat.datasets.get(ref)
    data["id"] = current.id
    expected: int | None = None
    if data.get("name") is None:
        data["name"] = current.name
        expected = current.revision  # the name read above must still be the stored one
    if "private" not in data or data["private"] is None:
        data["private"] = current.private
        expected = current.revision
    updated = cat.datasets.update(
        current.id, dataset_input_from_dict(data), expected_revision=expected
    )
    return package_dicts(cat, [updated])[0]


@action("package_patch")
def package_patch(cat: Catalog, params: Params) -> dict[str, Any]:
    """Change only the top-level keys given for the dataset ``id`` (an id or a name); a
    given ``resources``, ``tags`` (or ``tag_string``), ``extras`` or ``groups`` replaces
    that whole collection, as in CKAN; ``owner_org`` null or ``""`` removes the
    organization. Returns the dataset as package_show shows it."""
    ref = params.require("id")
    data = params.mapping()
    given = {key for key in data if key in _DATASET_PATCH_FIELDS}
    if "tag_string" in data:
        given.add("tags")
        if "tags" not in data:
            data["tags"] = []  # tag_string alone replaces the tags, as in CKAN's overlay
    if "name" not in data:
        data["name"] = "-"  # read only to structure the other keys; not patched
    parsed = dataset_input_from_dict(data)
    changes: dict[str, Any] = {}
    for key in sorted(given):
        value = getattr(parsed, key)
        if value is None and key in ("state", "groups", "resources"):
            continue  # null means "leave as it is" for these
        changes[key] = value
    patched = cat.datasets.patch(ref, DatasetPatch(**changes))
    return package_dicts(cat, [patched])[0]


@action("package_delete")
def package_delete(cat: Catalog, params: Params) -> None:
    """Soft-delete the dataset ``id`` (an id or a name): its state becomes ``deleted``, it
    leaves its groups and its name becomes free for reuse. Returns null."""
    cat.datasets.delete(params.require("id"))


@action("dataset_purge")
def dataset_purge(cat: Catalog, params: Params) -> None:
    """Remove the dataset ``id`` (an id or a name) for good, in any state, with its
    activities and resource files (sysadmins only). Returns null."""
    cat.datasets.purge(params.require("id"))


@action("package_owner_org_update")
def package_owner_org_update(cat: Catalog, params: Params) -> None:
    """Move the dataset ``id`` (an id or a name) to the organization ``organization_id``
    (an id or a name; empty or absent makes it unowned). Sysadmins only, as in CKAN (whose
    auth function refuses everyone else). An unknown organization is 404. Returns null."""
    ref = params.require("id")
    if not cat.actor.is_sysadmin:
        raise NotAuthorized("Only sysadmins may change a dataset's organization this way")
    org_ref = params.string("organization_id") or None
    owner = cat.organizations.get(org_ref).id if org_ref else None
    cat.datasets.patch(ref, DatasetPatch(owner_org=owner))


# -- resources --------------------------------------------------------------------------------


def _resource_data(params: Params) -> tuple[dict[str, Any], UploadFile | None]:
    """The resource fields of the parameters, and the uploaded file if one came."""
    data = {k: v for k, v in params.mapping().items() if k not in _RESOURCE_SKIPPED_KEYS}
    upload = params.get("upload")
    if upload is None or upload == "":
        return data, None
    if not isinstance(upload, UploadFile):
        raise ValidationFailed({"upload": ["Must be a file (a multipart upload part)"]})
    return data, upload


def _store_upload(cat: Catalog, resource: Resource, upload: UploadFile) -> Resource:
    return cat.files.upload(
        resource.id,
        upload.file,
        filename=upload.filename,
        content_type=upload.content_type,
    ).resource


@action("resource_create")
def resource_create(cat: Catalog, params: Params) -> dict[str, Any]:
    """Append a resource to the dataset ``package_id`` (an id or a name): ``url`` (default
    ``""``), ``name``, ``description``, ``format`` (guessed from the URL when empty),
    ``mimetype``, ``hash``, ``size``, ``last_modified``, ``url_type``; any other key is a
    resource extra. A multipart ``upload`` file part is stored as the resource's file
    (``url_type`` ``upload``, ``url`` its download path, ``size``/``hash``/``mimetype`` from
    the bytes); if storing it fails, the new resource is removed again.

    Returns the resource dict."""
    package = params.require("package_id")
    data, upload = _resource_data(params)
    created = cat.resources.add(package, resource_input_from_dict(data))
    if upload is not None:
        try:
            created = _store_upload(cat, created, upload)
        except Exception:
            cat.resources.delete(created.id)
            raise
    return resource_to_dict(created)


@action("resource_update")
def resource_update(cat: Catalog, params: Params) -> dict[str, Any]:
    """Replace the resource ``id`` with the resource dict given: omitted fields (``url``
    included, which becomes ``""``) and extras are cleared. A multipart ``upload`` file part
    then becomes the resource's file. Returns the resource dict."""
    rid = params.require("id")
    data, upload = _resource_data(params)
    updated = cat.resources.update(rid, resource_input_from_dict(data))
    if upload is not None:
        updated = _store_upload(cat, updated, upload)
    return resource_to_dict(updated)


@action("resource_patch")
def resource_patch(cat: Catalog, params: Params) -> dict[str, Any]:
    """Change only the given fields of the resource ``id``; keys that are not resource
    fields are extras merged into the existing ones. A multipart ``upload`` file part then
    becomes the resource's file. Returns the resource dict."""
    rid = params.require("id")
    data, upload = _resource_data(params)
    parsed = resource_input_from_dict(data)
    changes: dict[str, Any] = {k: getattr(parsed, k) for k in _RESOURCE_PATCH_FIELDS if k in data}
    extras = {k: v for k, v in parsed.extras.items() if k not in _RESOURCE_CORE_FIELDS}
    if extras:
        changes["extras"] = extras
    patched = cat.resources.patch(rid, ResourcePatch(**changes))
    if upload is not None:
        patched = _store_upload(cat, patched, upload)
    return resource_to_dict(patched)


@action("resource_delete")
def resource_delete(cat: Catalog, params: Params) -> None:
    """Remove the resource ``id`` from its dataset (the others are renumbered; its file
    goes too). The catalog removes it outright where CKAN keeps a deleted row no one can
    read. Returns null."""
    cat.resources.delete(params.require("id"))


@action("package_resource_reorder")
def package_resource_reorder(cat: Catalog, params: Params) -> dict[str, Any]:
    """Reorder the resources of the dataset ``id`` (an id or a name): the resource ids in
    ``order`` move to the front in that order, the others keep their relative order.
    Duplicates or an id not in the dataset are 409 on ``order``. Returns ``{"id": <id as
    given>, "order": [every resource id, in the new order]}``."""
    ref = params.require("id")
    order = params.get("order")
    if order is None or order == "":
        raise ValidationFailed({"order": ["Missing value"]})
    if not isinstance(order, list) or not all(isinstance(rid, str) for rid in order):
        raise ValidationFailed({"order": ['Invalid "order" parameter']})
    if len(set(order)) != len(order):
        raise ValidationFailed({"order": ["Must supply unique resource_ids"]})
    current = cat.datasets.get(ref)
    existing = [r.id for r in current.resources]
    for rid in order:
        if rid not in existing:
            raise ValidationFailed({"order": [f"resource_id {rid} can not be found"]})
    full = [*order, *(rid for rid in existing if rid not in order)]
    reordered = cat.resources.reorder(current.id, full)
    return {"id": ref, "order": [r.id for r in reordered.resources]}


# -- search -----------------------------------------------------------------------------------


@action("resource_search", get=True)
def resource_search(cat: Catalog, params: Params) -> dict[str, Any]:
    """Resources of active public datasets matching every ``field:term`` of ``query`` (one
    string or a list; on GET, repeat ``query``): text fields match case-insensitive
    substrings, ``hash`` a prefix, others exactly. ``order_by`` a resource field,
    ``offset`` and ``limit`` (default: all) page the results.

    Returns ``{"count": <total>, "results": [resource dicts]}``. A missing query, a term
    without a colon or an unknown field is 409 on ``query``."""
    limit = None if params.get("limit", "") == "" else params.integer("limit", 0)
    found = cat.search.resources(
        params.get("query"),
        order_by=params.string("order_by"),
        offset=params.integer("offset", 0),
        limit=limit,
    )
    return {"count": found.count, "results": [resource_to_dict(r) for r in found.results]}
