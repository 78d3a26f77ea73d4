"""Explicit conversion between domain objects and rows of the SQL schema.

Written by hand for speed: a dataset is read back from its JSON document with one
``json.loads`` and the domain constructors (no reflection, no generic converter). The domain
classes know nothing about this module.

Document format of ``dataset.doc`` (the format belongs to the schema revision; a migration
that changes it rewrites every document):

* every :class:`~opencatalog.domain.model.Dataset` field under its own name; datetimes as
  ISO 8601 strings in UTC; ``state`` as its value;
* ``tags``: a list whose items are the tag name (free tags) or ``[name, vocabulary_id]``;
* ``groups``: the list of group ids; ``extras``: an object;
* ``resources``: a list of objects with every :class:`~opencatalog.domain.model.Resource`
  field under its own name.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from opencatalog.domain.files import HealthStatus, LinkHealth, PipelineStatus, ResourceFile
from opencatalog.domain.jobs import StepLog
from opencatalog.domain.model import (
    Activity,
    ApiToken,
    Capacity,
    Dataset,
    Group,
    Membership,
    Resource,
    State,
    Tag,
    User,
    Vocabulary,
)

from .tables import FREE_TAG

__all__ = [
    "ACTIVITY_COLUMNS",
    "DATASET_COLUMNS",
    "GROUP_COLUMNS",
    "RESOURCE_FILE_COLUMNS",
    "TOKEN_COLUMNS",
    "USER_COLUMNS",
    "activity_from_row",
    "activity_params",
    "activity_to_row",
    "dataset_doc",
    "dataset_from_doc",
    "dataset_params",
    "dataset_tag_keys",
    "dataset_to_row",
    "dumps",
    "email_key",
    "group_from_row",
    "group_to_row",
    "loads",
    "membership_from_row",
    "postgresql_datetime",
    "resource_file_from_row",
    "resource_file_to_row",
    "resource_from_doc",
    "sqlite_datetime",
    "token_from_row",
    "token_to_row",
    "user_from_row",
    "user_to_row",
    "utc",
    "vocabulary_from_row",
    "vocabulary_to_row",
]


def _json_default(value: object) -> object:
    # Mappings other than dict (a MappingProxyType nested in extras, say) become objects.
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_ENCODER = json.JSONEncoder(
    ensure_ascii=False, check_circular=False, separators=(",", ":"), default=_json_default
)
dumps = _ENCODER.encode
loads = json.loads

_STATES: Mapping[str, State] = {s.value: s for s in State}
_CAPACITIES: Mapping[str, Capacity] = {c.value: c for c in Capacity}
_fromiso = datetime.fromisoformat


def utc(value: datetime) -> datetime:
    """``value`` in UTC; a naive datetime is taken to be in UTC already."""
    if value.tzinfo is UTC:
        return value
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _iso(value: datetime) -> str:
    return utc(value).isoformat()


def _iso_or_none(value: datetime | None) -> str | None:
    return None if value is None else utc(value).isoformat()


# -- datasets -------------------------------------------------------------------------------


def _resource_doc(res: Resource) -> dict[str, Any]:
    return {
        "id": res.id,
        "package_id": res.package_id,
        "url": res.url,
        "url_type": res.url_type,
        "name": res.name,
        "description": res.description,
        "format": res.format,
        "mimetype": res.mimetype,
        "hash": res.hash,
        "size": res.size,
        "position": res.position,
        "created": _iso(res.created),
        "last_modified": _iso_or_none(res.last_modified),
        "metadata_modified": _iso(res.metadata_modified),
        "extras": res.extras,
    }


def dataset_doc(ds: Dataset) -> str:
    """The JSON document of a dataset (see the module docstring for its format)."""
    return dumps(
        {
            "id": ds.id,
            "name": ds.name,
            "title": ds.title,
            "notes": ds.notes,
            "url": ds.url,
            "version": ds.version,
            "author": ds.author,
            "author_email": ds.author_email,
            "maintainer": ds.maintainer,
            "maintainer_email": ds.maintainer_email,
            "license_id": ds.license_id,
            "owner_org": ds.owner_org,
            "private": ds.private,
            "state": ds.state.value,
            "type": ds.type,
            "tags": [
                t.name if t.vocabulary_id is None else [t.name, t.vocabulary_id] for t in ds.tags
            ],
            "extras": ds.extras,
            "groups": ds.groups,
            "resources": [_resource_doc(r) for r in ds.resources],
            "metadata_created": _iso(ds.metadata_created),
            "metadata_modified": _iso(ds.metadata_modified),
            "creator_user_id": ds.creator_user_id,
            "revision": ds.revision,
        }
    )


def sqlite_datetime(value: datetime) -> str:
    """A datetime as SQLite stores it: UTC text ``YYYY-MM-DD HH:MM:SS.ffffff`` (the format of
    SQLAlchemy's SQLite ``DATETIME``, so Core and plain SQL writes agree and sort alike)."""
    return utc(value).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def postgresql_datetime(value: datetime) -> datetime:
    """A datetime as bound for PostgreSQL ``timestamptz``: aware, in UTC."""
    return utc(value)


#: Column order of :func:`dataset_params` (plain SQL bulk inserts).
DATASET_COLUMNS = (
    "id",
    "name",
    "state",
    "private",
    "owner_org",
    "type",
    "creator_user_id",
    "metadata_created",
    "metadata_modified",
    "revision",
    "doc",
)


def dataset_params(ds: Dataset, when: Callable[[datetime], Any]) -> tuple[Any, ...]:
    """The ``dataset`` row as driver-ready values in :data:`DATASET_COLUMNS` order;
    ``when`` binds datetimes for the dialect (:func:`sqlite_datetime` ...)."""
    return (
        ds.id,
        ds.name,
        ds.state.value,
        ds.private,
        ds.owner_org,
        ds.type,
        ds.creator_user_id,
        when(ds.metadata_created),
        when(ds.metadata_modified),
        ds.revision,
        dataset_doc(ds),
    )


def dataset_to_row(ds: Dataset) -> dict[str, Any]:
    """The ``dataset`` row of a dataset, with its JSON document."""
    return {
        "id": ds.id,
        "name": ds.name,
        "state": ds.state.value,
        "private": ds.private,
        "owner_org": ds.owner_org,
        "type": ds.type,
        "creator_user_id": ds.creator_user_id,
        "metadata_created": ds.metadata_created,
        "metadata_modified": ds.metadata_modified,
        "revision": ds.revision,
        "doc": dataset_doc(ds),
    }


def _resource_from_doc(doc: dict[str, Any]) -> Resource:
    doc["created"] = _fromiso(doc["created"])
    if (last := doc["last_modified"]) is not None:
        doc["last_modified"] = _fromiso(last)
    doc["metadata_modified"] = _fromiso(doc["metadata_modified"])
    return Resource(**doc)


def resource_from_doc(text: str) -> Resource:
    """A resource from its object in a dataset document, as JSON text."""
    return _resource_from_doc(loads(text))


def dataset_from_doc(text: str) -> Dataset:
    """The dataset stored as ``text`` (its JSON document)."""
    doc = loads(text)
    doc["state"] = _STATES[doc["state"]]
    doc["tags"] = tuple(
        Tag(name=t) if t.__class__ is str else Tag(name=t[0], vocabulary_id=t[1])
        for t in doc["tags"]
    )
    doc["groups"] = tuple(doc["groups"])
    doc["resources"] = tuple(_resource_from_doc(r) for r in doc["resources"])
    doc["metadata_created"] = _fromiso(doc["metadata_created"])
    doc["metadata_modified"] = _fromiso(doc["metadata_modified"])
    return Dataset(**doc)


def dataset_tag_keys(ds: Dataset) -> set[tuple[str, str]]:
    """The distinct (vocabulary, name) keys of the dataset's tags (``''`` for free tags)."""
    return {(t.vocabulary_id or FREE_TAG, t.name) for t in ds.tags}


# -- groups, users, tokens, memberships, vocabularies, activities -----------------------------

#: Column order of the group rows :func:`group_from_row` reads.
GROUP_COLUMNS = (
    "id",
    "name",
    "is_organization",
    "title",
    "description",
    "image_url",
    "type",
    "state",
    "extras",
    "created",
    "revision",
)


def group_to_row(group: Group) -> dict[str, Any]:
    """The ``grp`` row of a group or organization."""
    return {
        "id": group.id,
        "name": group.name,
        "is_organization": group.is_organization,
        "title": group.title,
        "description": group.description,
        "image_url": group.image_url,
        "type": group.type,
        "state": group.state.value,
        "extras": dumps(group.extras),
        "created": group.created,
        "revision": group.revision,
    }


def group_from_row(row: Sequence[Any]) -> Group:
    """A group from a row with the columns of :data:`GROUP_COLUMNS`, in that order."""
    gid, name, is_org, title, description, image_url, type_, state, extras, created, rev = row
    return Group(
        id=gid,
        name=name,
        is_organization=bool(is_org),
        title=title,
        description=description,
        image_url=image_url,
        type=type_,
        state=_STATES[state],
        extras=loads(extras),
        created=created,
        revision=rev,
    )


#: Column order of the user rows :func:`user_from_row` reads.
USER_COLUMNS = (
    "id",
    "name",
    "email",
    "fullname",
    "about",
    "image_url",
    "password_hash",
    "sysadmin",
    "state",
    "created",
    "revision",
)


def email_key(email: str | None) -> str | None:
    """The case-insensitive lookup key of an email address."""
    return None if email is None else email.lower()


def user_to_row(user: User) -> dict[str, Any]:
    """The ``usr`` row of a user."""
    return {
        "id": user.id,
        "name": user.name,
        "email": user.email,
        "email_lower": email_key(user.email),
        "fullname": user.fullname,
        "about": user.about,
        "image_url": user.image_url,
        "password_hash": user.password_hash,
        "sysadmin": user.sysadmin,
        "state": user.state.value,
        "created": user.created,
        "revision": user.revision,
    }


def user_from_row(row: Sequence[Any]) -> User:
    """A user from a row with the columns of :data:`USER_COLUMNS`, in that order."""
    uid, name, email, fullname, about, image_url, pw_hash, sysadmin, state, created, rev = row
    return User(
        id=uid,
        name=name,
        email=email,
        fullname=fullname,
        about=about,
        image_url=image_url,
        password_hash=pw_hash,
        sysadmin=bool(sysadmin),
        state=_STATES[state],
        created=created,
        revision=rev,
    )


#: Column order of the token rows :func:`token_from_row` reads.
TOKEN_COLUMNS = ("id", "user_id", "name", "token_hash", "created_at", "expires_at", "last_used_at")


def token_to_row(token: ApiToken) -> dict[str, Any]:
    """The ``api_token`` row of a token."""
    return {
        "id": token.id,
        "user_id": token.user_id,
        "name": token.name,
        "token_hash": token.token_hash,
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "last_used_at": token.last_used_at,
    }


def token_from_row(row: Sequence[Any]) -> ApiToken:
    """A token from a row with the columns of :data:`TOKEN_COLUMNS`, in that order."""
    tid, user_id, name, token_hash, created_at, expires_at, last_used_at = row
    return ApiToken(
        id=tid,
        user_id=user_id,
        name=name,
        token_hash=token_hash,
        created_at=created_at,
        expires_at=expires_at,
        last_used_at=last_used_at,
    )


def membership_from_row(row: Sequence[Any]) -> Membership:
    """A membership from a (group_id, user_id, capacity) row."""
    group_id, user_id, capacity = row
    return Membership(group_id=group_id, user_id=user_id, capacity=_CAPACITIES[capacity])


def vocabulary_to_row(vocabulary: Vocabulary) -> dict[str, Any]:
    """The ``vocabulary`` row of a vocabulary."""
    return {"id": vocabulary.id, "name": vocabulary.name, "tags": dumps(list(vocabulary.tags))}


def vocabulary_from_row(row: Sequence[Any]) -> Vocabulary:
    """A vocabulary from an (id, name, tags) row."""
    vid, name, tags = row
    return Vocabulary(id=vid, name=name, tags=loads(tags))


#: Column order of the activity rows :func:`activity_from_row` reads.
ACTIVITY_COLUMNS = (
    "id",
    "timestamp",
    "user_id",
    "object_id",
    "object_type",
    "activity_type",
    "data",
    "permission_labels",
)


def activity_to_row(act: Activity) -> dict[str, Any]:
    """The ``activity`` row of an activity."""
    return {
        "id": act.id,
        "timestamp": act.timestamp,
        "user_id": act.user_id,
        "object_id": act.object_id,
        "object_type": act.object_type,
        "activity_type": act.activity_type,
        "data": dumps(act.data),
        "permission_labels": dumps(list(act.permission_labels)),
    }


def activity_params(act: Activity, when: Callable[[datetime], Any]) -> tuple[Any, ...]:
    """The ``activity`` row as driver-ready values in :data:`ACTIVITY_COLUMNS` order."""
    return (
        act.id,
        when(act.timestamp),
        act.user_id,
        act.object_id,
        act.object_type,
        act.activity_type,
        dumps(act.data),
        dumps(list(act.permission_labels)),
    )


def activity_from_row(row: Sequence[Any]) -> Activity:
    """An activity from a row with the columns of :data:`ACTIVITY_COLUMNS`, in that order."""
    aid, timestamp, user_id, object_id, object_type, activity_type, data, labels = row
    return Activity(
        id=aid,
        timestamp=timestamp,
        user_id=user_id,
        object_id=object_id,
        object_type=object_type,
        activity_type=activity_type,
        data=loads(data),
        permission_labels=loads(labels),
    )


# -- resource files --------------------------------------------------------------------------

_PIPELINE_STATUSES: Mapping[str, PipelineStatus] = {s.value: s for s in PipelineStatus}
_HEALTH_STATUSES: Mapping[str, HealthStatus] = {s.value: s for s in HealthStatus}

#: Column order of the resource file rows :func:`resource_file_from_row` reads.
RESOURCE_FILE_COLUMNS = (
    "resource_id",
    "package_id",
    "blob_key",
    "uploaded",
    "size",
    "sha256",
    "mimetype",
    "format",
    "encoding",
    "text_key",
    "text_truncated",
    "preview_key",
    "status",
    "job_id",
    "error",
    "steps",
    "source_url",
    "health_status",
    "health_checked",
    "health_http_status",
    "health_error",
    "health_etag",
    "health_last_modified",
    "updated",
)


def resource_file_to_row(record: ResourceFile) -> dict[str, Any]:
    """The ``resource_files`` row of a record; ``steps`` as a JSON list of
    :meth:`StepLog.to_dict` objects, the link health spread over the ``health_*`` columns."""
    health = record.health
    return {
        "resource_id": record.resource_id,
        "package_id": record.package_id,
        "blob_key": record.blob_key,
        "uploaded": record.uploaded,
        "size": record.size,
        "sha256": record.sha256,
        "mimetype": record.mimetype,
        "format": record.format,
        "encoding": record.encoding,
        "text_key": record.text_key,
        "text_truncated": record.text_truncated,
        "preview_key": record.preview_key,
        "status": record.status.value,
        "job_id": record.job_id,
        "error": record.error,
        "steps": dumps([step.to_dict() for step in record.steps]),
        "source_url": record.source_url,
        "health_status": None if health is None else health.status.value,
        "health_checked": None if health is None else health.checked,
        "health_http_status": None if health is None else health.http_status,
        "health_error": None if health is None else health.error,
        "health_etag": None if health is None else health.etag,
        "health_last_modified": None if health is None else health.last_modified,
        "updated": record.updated,
    }


def resource_file_from_row(row: Sequence[Any]) -> ResourceFile:
    """A record from a row with the columns of :data:`RESOURCE_FILE_COLUMNS`, in order."""
    (
        resource_id,
        package_id,
        blob_key,
        uploaded,
        size,
        sha256,
        mimetype,
        fmt,
        encoding,
        text_key,
        text_truncated,
        preview_key,
        status,
        job_id,
        error,
        steps,
        source_url,
        health_status,
        health_checked,
        health_http_status,
        health_error,
        health_etag,
        health_last_modified,
        updated,
    ) = row
    health = None
    if health_status is not None:
        health = LinkHealth(
            status=_HEALTH_STATUSES[health_status],
            checked=health_checked,
            http_status=health_http_status,
            error=health_error,
            etag=health_etag,
            last_modified=health_last_modified,
        )
    return ResourceFile(
        resource_id=resource_id,
        package_id=package_id,
        blob_key=blob_key,
        uploaded=bool(uploaded),
        size=None if size is None else int(size),
        sha256=sha256,
        mimetype=mimetype,
        format=fmt,
        encoding=encoding,
        text_key=text_key,
        text_truncated=bool(text_truncated),
        preview_key=preview_key,
        status=_PIPELINE_STATUSES[status],
        job_id=job_id,
        error=error,
        steps=tuple(StepLog.from_dict(d) for d in loads(steps)),
        source_url=source_url,
        health=health,
        updated=updated,
    )
