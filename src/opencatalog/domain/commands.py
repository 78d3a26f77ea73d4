"""Inputs to the services: frozen attrs classes, one per use case.

Services never mutate what a caller passes, and read only these classes: the HTTP and CLI
edges structure wire data into them. Sequences are stored as tuples.

``*Patch`` classes name only what changes: a field left at :data:`UNSET` keeps its value.
On :class:`DatasetInput` used for a full update, ``resources=None``, ``groups=None`` and
``owner_org=None`` keep the dataset's resources, groups and organization (``owner_org=""``
removes it); every other omitted field is cleared, as in CKAN.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from attrs import field, frozen

from opencatalog.domain.model import State, Tag

__all__ = [
    "UNSET",
    "DatasetInput",
    "DatasetPatch",
    "GroupInput",
    "GroupPatch",
    "ResourceInput",
    "ResourcePatch",
    "Unset",
    "UserInput",
    "UserPatch",
]


class Unset(enum.Enum):
    """The type of :data:`UNSET`."""

    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


#: Marks a patch field the caller did not give.
UNSET: Final = Unset.UNSET


def _tags(value: Any) -> Any:
    """Accept tag names as plain strings as well as :class:`Tag` objects."""
    if isinstance(value, Unset) or value is None or isinstance(value, str | bytes):
        return value
    if not isinstance(value, Sequence | set | frozenset):
        return value
    return tuple(Tag(name=item) if isinstance(item, str) else item for item in value)


def _opt_tuple(value: Any) -> Any:
    if value is None or isinstance(value, Unset | str | bytes | Mapping):
        return value
    if isinstance(value, Sequence | set | frozenset):
        return tuple(value)
    return value


@frozen(kw_only=True)
class ResourceInput:
    """A resource to add, or the full new content of one (update)."""

    id: str | None = None
    url: str = ""
    url_type: str | None = None
    name: str | None = None
    description: str | None = None
    format: str | None = None
    mimetype: str | None = None
    hash: str | None = None
    size: int | None = None
    last_modified: datetime | None = None
    extras: Mapping[str, Any] = field(factory=dict)


@frozen(kw_only=True)
class ResourcePatch:
    """The fields of a resource to change; extras given are merged into the existing ones."""

    url: str | Unset = UNSET
    url_type: str | Unset | None = UNSET
    name: str | Unset | None = UNSET
    description: str | Unset | None = UNSET
    format: str | Unset | None = UNSET
    mimetype: str | Unset | None = UNSET
    hash: str | Unset | None = UNSET
    size: int | Unset | None = UNSET
    last_modified: datetime | Unset | None = UNSET
    extras: Mapping[str, Any] | Unset = UNSET


@frozen(kw_only=True)
class DatasetInput:
    """A dataset to create, or the full new content of one (update).

    ``owner_org`` and ``groups`` take ids or names. ``tags`` takes :class:`Tag` objects or
    plain names. ``state`` is honoured for sysadmins only (others create active datasets).
    """

    name: str
    id: str | None = None
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
    state: State | None = None
    type: str | None = None
    tags: tuple[Tag, ...] = field(default=(), converter=_tags)
    extras: Mapping[str, str] = field(factory=dict)
    groups: tuple[str, ...] | None = field(default=None, converter=_opt_tuple)
    resources: tuple[ResourceInput, ...] | None = field(default=None, converter=_opt_tuple)


@frozen(kw_only=True)
class DatasetPatch:
    """The top-level fields of a dataset to change; the rest keep their values.

    As in CKAN, a given ``resources``, ``tags``, ``extras`` or ``groups`` replaces the whole
    collection.
    """

    name: str | Unset = UNSET
    title: str | Unset | None = UNSET
    notes: str | Unset | None = UNSET
    url: str | Unset | None = UNSET
    version: str | Unset | None = UNSET
    author: str | Unset | None = UNSET
    author_email: str | Unset | None = UNSET
    maintainer: str | Unset | None = UNSET
    maintainer_email: str | Unset | None = UNSET
    license_id: str | Unset | None = UNSET
    owner_org: str | Unset | None = UNSET
    private: bool | Unset = UNSET
    state: State | Unset = UNSET
    tags: tuple[Tag, ...] | Unset = field(default=UNSET, converter=_tags)
    extras: Mapping[str, str] | Unset = UNSET
    groups: tuple[str, ...] | Unset = field(default=UNSET, converter=_opt_tuple)
    resources: tuple[ResourceInput, ...] | Unset = field(default=UNSET, converter=_opt_tuple)


@frozen(kw_only=True)
class GroupInput:
    """A group or organization to create, or its full new content (update)."""

    name: str
    id: str | None = None
    title: str | None = None
    description: str | None = None
    image_url: str | None = None
    type: str | None = None
    extras: Mapping[str, str] = field(factory=dict)


@frozen(kw_only=True)
class GroupPatch:
    """The fields of a group or organization to change."""

    name: str | Unset = UNSET
    title: str | Unset | None = UNSET
    description: str | Unset | None = UNSET
    image_url: str | Unset | None = UNSET
    extras: Mapping[str, str] | Unset = UNSET


@frozen(kw_only=True)
class UserInput:
    """A user account to create. ``sysadmin`` and ``id`` are honoured for sysadmins only."""

    name: str
    email: str
    password: str = field(repr=False)
    id: str | None = None
    fullname: str | None = None
    about: str | None = None
    image_url: str | None = None
    sysadmin: bool = False


@frozen(kw_only=True)
class UserPatch:
    """The fields of a user account to change. Renaming and ``sysadmin`` need a sysadmin."""

    name: str | Unset = UNSET
    email: str | Unset = UNSET
    password: str | Unset = field(default=UNSET, repr=False)
    fullname: str | Unset | None = UNSET
    about: str | Unset | None = UNSET
    image_url: str | Unset | None = UNSET
    sysadmin: bool | Unset = UNSET
