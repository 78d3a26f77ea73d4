"""The catalog's entities and value objects.

Everything here is a frozen attrs class: services change state by building new instances with
``attrs.evolve``, never by mutating one in place, so a value handed to a caller can never be
changed behind their back. The classes carry no persistence or wire configuration; adapters map
them explicitly.

Aggregates carry a ``revision`` (1 on create, +1 on every stored change) that storage checks on
save: a stale save raises :class:`~opencatalog.errors.Conflict` instead of losing an update.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from attrs import field, frozen

__all__ = [
    "Activity",
    "ApiToken",
    "Capacity",
    "Dataset",
    "Group",
    "Membership",
    "Resource",
    "State",
    "Tag",
    "User",
    "Vocabulary",
    "snapshot",
    "utcnow",
]


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC (the only kind of datetime the domain holds)."""
    return datetime.now(UTC)


class State(enum.StrEnum):
    """Life-cycle state shared by datasets, groups, organizations and users."""

    ACTIVE = "active"
    DRAFT = "draft"
    DELETED = "deleted"


class Capacity(enum.StrEnum):
    """A user's role in an organization or group; each includes the rights of the next."""

    ADMIN = "admin"
    EDITOR = "editor"
    MEMBER = "member"


def _utc(value: Any) -> Any:
    """Datetimes are held in UTC: aware ones are converted, naive ones are taken as UTC."""
    if isinstance(value, datetime) and value.tzinfo is not UTC:
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    return value


def _tuple(value: Any) -> tuple[Any, ...]:
    return tuple(value)


def _mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return dict(value or {})


@frozen(kw_only=True)
class Tag:
    """A keyword on a dataset; free tags have no vocabulary."""

    name: str
    vocabulary_id: str | None = None


@frozen(kw_only=True)
class Vocabulary:
    """A named, closed list of tags (vocabulary tags carry the vocabulary's id)."""

    id: str
    name: str
    tags: tuple[str, ...] = field(default=(), converter=_tuple)


@frozen(kw_only=True)
class Resource:
    """A file or link inside a dataset. ``position`` is its 0-based place in the dataset.

    ``extras`` holds any further keys; unlike dataset extras their values may be any JSON value.
    """

    id: str
    package_id: str
    url: str = ""
    url_type: str | None = None
    name: str | None = None
    description: str | None = None
    format: str | None = None
    mimetype: str | None = None
    hash: str | None = None
    size: int | None = None
    position: int = 0
    created: datetime = field(converter=_utc)
    last_modified: datetime | None = field(default=None, converter=_utc)
    metadata_modified: datetime = field(converter=_utc)
    extras: Mapping[str, Any] = field(factory=dict, converter=_mapping)


@frozen(kw_only=True)
class Dataset:
    """A dataset (CKAN: package), the aggregate that owns its resources.

    ``groups`` holds the ids of the groups the dataset belongs to; ``owner_org`` the id of its
    organization. ``resources`` holds the active resources in position order.
    """

    id: str
    name: str
    title: str | None = None
    notes: str | None = None
    url: str | None = None
    version: str | None = None
    author: str | None = None
    author_email: str | None = None
    maintainer: str | None = None
    maintainer_email: str | None = None
    license_id: str | None = None
    owner_org: str | None = None
    private: bool = False
    state: State = State.ACTIVE
    type: str = "dataset"
    tags: tuple[Tag, ...] = field(default=(), converter=_tuple)
    extras: Mapping[str, str] = field(factory=dict, converter=_mapping)
    groups: tuple[str, ...] = field(default=(), converter=_tuple)
    resources: tuple[Resource, ...] = field(default=(), converter=_tuple)
    metadata_created: datetime = field(converter=_utc)
    metadata_modified: datetime = field(converter=_utc)
    creator_user_id: str | None = None
    revision: int = 1

    def resource(self, resource_id: str) -> Resource | None:
        """The resource with this id, or None."""
        for res in self.resources:
            if res.id == resource_id:
                return res
        return None

    @property
    def is_public(self) -> bool:
        """Anyone may see it: active and not private."""
        return self.state is State.ACTIVE and not self.private


@frozen(kw_only=True)
class Group:
    """A group (a category of datasets) or, with ``is_organization``, an organization.

    Groups and organizations share one name space, as in CKAN.
    """

    id: str
    name: str
    is_organization: bool
    title: str | None = None
    description: str | None = None
    image_url: str | None = None
    type: str = "group"
    state: State = State.ACTIVE
    extras: Mapping[str, str] = field(factory=dict, converter=_mapping)
    created: datetime = field(converter=_utc)
    revision: int = 1

    @property
    def display_name(self) -> str:
        return self.title or self.name


@frozen(kw_only=True)
class Membership:
    """A user's capacity in an organization or group."""

    group_id: str
    user_id: str
    capacity: Capacity


@frozen(kw_only=True)
class User:
    """A person or machine account. ``password_hash`` is never shown outside storage."""

    id: str
    name: str
    email: str | None = None
    fullname: str | None = None
    about: str | None = None
    image_url: str | None = None
    password_hash: str | None = field(default=None, repr=False)
    sysadmin: bool = False
    state: State = State.ACTIVE
    created: datetime = field(converter=_utc)
    revision: int = 1

    @property
    def display_name(self) -> str:
        return self.fullname or self.name


@frozen(kw_only=True)
class ApiToken:
    """An API token. Only the hash of its secret is kept; the secret is shown once on create."""

    id: str
    user_id: str
    name: str
    token_hash: str = field(repr=False)
    created_at: datetime = field(converter=_utc)
    expires_at: datetime | None = field(default=None, converter=_utc)
    last_used_at: datetime | None = field(default=None, converter=_utc)

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at


@frozen(kw_only=True)
class Activity:
    """Who did what to which object, when, with a snapshot of the object after the change.

    ``activity_type`` is ``<object_type>.<created|updated|deleted|...>``, e.g.
    ``dataset.created``; ``data`` is a JSON-ready snapshot (see :func:`snapshot`).
    """

    id: str
    timestamp: datetime = field(converter=_utc)
    user_id: str | None
    object_id: str
    object_type: str
    activity_type: str
    data: Mapping[str, Any] = field(factory=dict, converter=_mapping)
    permission_labels: tuple[str, ...] = field(default=(), converter=_tuple)


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float):
        return value.value if isinstance(value, enum.Enum) else value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    fields = getattr(type(value), "__attrs_attrs__", None)
    if fields is not None:
        return {f.name: _plain(getattr(value, f.name)) for f in fields}
    return value


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _resource_snapshot(res: Resource) -> dict[str, Any]:
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
        "last_modified": _iso(res.last_modified),
        "metadata_modified": _iso(res.metadata_modified),
        "extras": _plain(res.extras) if res.extras else {},
    }


def _dataset_snapshot(ds: Dataset) -> dict[str, Any]:
    # written out field by field: activities snapshot every dataset change, bulk loads too
    return {
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
        "tags": [{"name": t.name, "vocabulary_id": t.vocabulary_id} for t in ds.tags],
        "extras": dict(ds.extras),
        "groups": list(ds.groups),
        "resources": [_resource_snapshot(r) for r in ds.resources],
        "metadata_created": _iso(ds.metadata_created),
        "metadata_modified": _iso(ds.metadata_modified),
        "creator_user_id": ds.creator_user_id,
        "revision": ds.revision,
    }


def snapshot(obj: Any) -> dict[str, Any]:
    """A JSON-ready dict of an entity, for activity records. Secrets and users' emails are
    left out."""
    if type(obj) is Dataset:
        return _dataset_snapshot(obj)
    data: dict[str, Any] = _plain(obj)
    data.pop("password_hash", None)
    data.pop("token_hash", None)
    if type(obj) is User:
        data.pop("email", None)  # private: activities are readable by anyone who may see them
    return data
