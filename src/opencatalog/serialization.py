"""The canonical JSON form of catalog objects, and service inputs from CKAN-shaped dicts.

Out: :func:`dataset_to_dict`, :func:`resource_to_dict`, :func:`group_to_dict`,
:func:`user_to_dict`, :func:`token_to_dict` and :func:`activity_to_dict` give plain,
JSON-ready dicts shaped like CKAN's ``*_show`` results (datetimes as ISO 8601 in UTC, enums as
their values, tags as ``{"name", "vocabulary_id"}``, extras as ``{"key", "value"}`` sorted by
key, resource extras flattened to the resource's top level). Secrets never appear: no password
hash, no token hash, and a user's email only when asked for the private form.

In: :func:`dataset_input_from_dict`, :func:`resource_input_from_dict`,
:func:`group_input_from_dict` and :func:`user_input_from_dict` accept what CKAN's API and
ckanapi dumps send (``tags`` as dicts or names or a ``tag_string``; ``extras`` as a list of
``{"key", "value"}`` or a mapping; ``groups`` as dicts or names; unknown resource keys as
resource extras) and give the frozen inputs the services take. Keys the services do not take
(``metadata_created``, ``organization``, ``num_resources``...) are dropped, as CKAN's default
schema drops them. Structural problems raise
:class:`~opencatalog.errors.ValidationFailed` with CKAN-shaped field errors
(``{"size": ["Invalid integer"]}``, resources as a list with one dict per resource); the rules
that need no structure (name syntax, tag length, ...) are the services' business.

Everything goes through a private cattrs converter made by :func:`make_converter`; the
module's helpers build one lazily on first use and share it.
"""

from __future__ import annotations

import enum
import functools
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import cattrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from opencatalog.domain import rules
from opencatalog.domain.commands import DatasetInput, GroupInput, ResourceInput, UserInput
from opencatalog.domain.licenses import license_by_id
from opencatalog.domain.model import (
    Activity,
    ApiToken,
    Capacity,
    Dataset,
    Group,
    Resource,
    State,
    Tag,
    User,
)
from opencatalog.errors import NotFound, ValidationFailed

if TYPE_CHECKING:
    from opencatalog.services.catalog import Catalog

__all__ = [
    "DATASET_IGNORED_KEYS",
    "RESOURCE_IGNORED_KEYS",
    "GroupLookup",
    "activity_to_dict",
    "dataset_input_from_dict",
    "dataset_to_dict",
    "group_input_from_dict",
    "group_to_dict",
    "make_converter",
    "parse_bool",
    "resource_input_from_dict",
    "resource_to_dict",
    "token_to_dict",
    "user_input_from_dict",
    "user_to_dict",
]

T = TypeVar("T")

#: Keys of a CKAN package dict that are derived or set by the catalog; input ignores them.
DATASET_IGNORED_KEYS = frozenset(
    {
        "metadata_created", "metadata_modified", "creator_user_id", "organization",
        "num_resources", "num_tags", "isopen", "license_title", "license_url",
        "relationships_as_object", "relationships_as_subject", "revision_id",
        "tracking_summary",
    }
)  # fmt: skip

#: Keys of a CKAN resource dict that are derived or set by the catalog; input ignores them.
#: Every other key a resource dict has beyond :class:`ResourceInput`'s fields is an extra.
RESOURCE_IGNORED_KEYS = frozenset(
    {
        "package_id", "position", "created", "metadata_modified", "state", "revision_id",
        "tracking_summary",
    }
)  # fmt: skip

_TRUE = frozenset({"true", "yes", "on", "t", "y", "1"})
_FALSE = frozenset({"false", "no", "off", "f", "n", "0", ""})


class _Invalid(ValueError):
    """A structural error in one field: its messages, or (resources) nested field errors."""

    def __init__(self, *messages: str, nested: list[dict[str, Any]] | None = None) -> None:
        super().__init__("; ".join(messages))
        self.messages = list(messages)
        self.nested = nested


# ---------------------------------------------------------------------------------------------
# Scalar hooks
# ---------------------------------------------------------------------------------------------


def _iso(value: datetime) -> str:
    """ISO 8601 in UTC; a naive datetime is taken to be UTC already."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def _structure_datetime(value: Any, _: Any) -> datetime | None:
    """An ISO 8601 string (``Z``, an offset or none, which means UTC) or a datetime."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        if not value.strip():
            return None
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise _Invalid("Date format incorrect") from None
    else:
        raise _Invalid("Date format incorrect")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _structure_str(value: Any, _: Any) -> str:
    """A string; numbers are taken as their text (as CKAN does), anything else is refused."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise _Invalid("Must be a string")


def _structure_int(value: Any, _: Any) -> int | None:
    """An integer, a float without a fraction or an integer's text; ``""`` means none."""
    if isinstance(value, bool):
        raise _Invalid("Invalid integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise _Invalid("Invalid integer")
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            return int(text)
        except ValueError:
            raise _Invalid("Invalid integer") from None
    raise _Invalid("Invalid integer")


def parse_bool(value: Any) -> bool:
    """A boolean, ``"true"``/``"false"`` (and yes/no/on/off/1/0), 0/1; null means false.
    Raises ValueError for anything else (CKAN's ``asbool`` on request values)."""
    return _structure_bool(value, bool)


def _structure_bool(value: Any, _: Any) -> bool:
    """See :func:`parse_bool`."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise _Invalid("Must be true or false")


def _structure_enum(cls: type[enum.Enum]) -> Callable[[Any, Any], enum.Enum]:
    choices = ", ".join(str(member.value) for member in cls)

    def structure(value: Any, _: Any) -> enum.Enum:
        try:
            return cls(value)
        except (ValueError, TypeError):
            raise _Invalid(f"Must be one of: {choices}") from None

    return structure


# ---------------------------------------------------------------------------------------------
# Collection hooks for the CKAN shapes
# ---------------------------------------------------------------------------------------------


def _is_list(value: Any) -> bool:
    return isinstance(value, list | tuple)


def _structure_tag(value: Any, _: Any) -> Tag:
    """A tag from a name or a ``{"name", "vocabulary_id"}`` dict."""
    if isinstance(value, Tag):
        return value
    if isinstance(value, str):
        return Tag(name=value)
    if isinstance(value, Mapping):
        name = value.get("name")
        if name is None:
            raise _Invalid("Tag name: Missing value")
        if not isinstance(name, str):
            raise _Invalid("Tags must be strings")
        vocabulary = value.get("vocabulary_id")
        if vocabulary is not None and not isinstance(vocabulary, str):
            raise _Invalid("vocabulary_id must be a string")
        return Tag(name=name, vocabulary_id=vocabulary or None)
    raise _Invalid("Must be a list of tags")


def _structure_tags(value: Any, _: Any) -> tuple[Tag, ...]:
    if value is None:
        return ()
    if not _is_list(value):
        raise _Invalid("Must be a list of tags")
    tags: list[Tag] = []
    messages: list[str] = []
    for item in value:
        try:
            tags.append(_structure_tag(item, Tag))
        except _Invalid as exc:
            messages.extend(m for m in exc.messages if m not in messages)
    if messages:
        raise _Invalid(*messages)
    return tuple(tags)


def _tag_string(value: Any) -> list[Tag]:
    """CKAN's ``tag_string``: ``"a, b,c"`` (or a list of names)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [Tag(name=name) for name in rules.normalize_tag_string(value)]
    if _is_list(value) and all(isinstance(item, str) for item in value):
        return [Tag(name=item.strip()) for item in value if item.strip()]
    raise _Invalid("Must be a comma-separated string of tags")


def _truthy(value: Any) -> bool:
    try:
        return _structure_bool(value, bool)
    except _Invalid:
        return bool(value)


def _structure_string_extras(value: Any, _: Any) -> dict[str, str]:
    """Dataset and group extras: ``[{"key", "value"}]`` or a mapping. Values that are not
    strings are JSON-encoded (``1.5`` -> ``"1.5"``), as CKAN does; items flagged ``deleted``
    are skipped; a key given twice is an error."""
    if value is None:
        return {}
    pairs: list[tuple[Any, Any]] = []
    messages: list[str] = []
    if isinstance(value, Mapping):
        pairs = list(value.items())
    elif _is_list(value):
        for item in value:
            if not isinstance(item, Mapping):
                messages.append("Must be a list of {key, value} objects")
                continue
            if _truthy(item.get("deleted")):
                continue
            if "key" not in item:
                messages.append("key: Missing value")
                continue
            pairs.append((item["key"], item.get("value")))
    else:
        raise _Invalid("Must be a list of {key, value} objects")
    out: dict[str, str] = {}
    for key, item in pairs:
        if not isinstance(key, str):
            messages.append("key: Must be a string")
        elif key in out:
            messages.append(f'There is a duplicate key "{key}"')
        elif item is None:
            messages.append(f"{key}: Missing value")
        else:
            out[key] = item if isinstance(item, str) else json.dumps(item)
    if messages:
        raise _Invalid(*dict.fromkeys(messages))
    return out


def _structure_groups(value: Any, _: Any) -> tuple[str, ...] | None:
    """Group references: ids or names, or ``{"id"}``/``{"name"}`` dicts (id first, as CKAN)."""
    if value is None:
        return None
    if not _is_list(value):
        raise _Invalid("Must be a list of groups")
    refs: list[str] = []
    messages: list[str] = []
    for item in value:
        ref: Any = item
        if isinstance(item, Mapping):
            ref = item.get("id") or item.get("name")
        if isinstance(ref, str) and ref:
            refs.append(ref)
        else:
            messages.append("Must be a list of group ids or names")
    if messages:
        raise _Invalid(*dict.fromkeys(messages))
    return tuple(refs)


# ---------------------------------------------------------------------------------------------
# The converter
# ---------------------------------------------------------------------------------------------


def _field_names(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in attrs.fields(cls))


def _resource_hook(converter: cattrs.Converter) -> Callable[[Any, Any], ResourceInput]:
    structure = make_dict_structure_fn(ResourceInput, converter)
    core = _field_names(ResourceInput) - {"extras"}

    def structure_resource(value: Any, _: Any) -> ResourceInput:
        if not isinstance(value, Mapping):
            raise _Invalid("Must be a resource object")
        known: dict[str, Any] = {}
        extras: dict[str, Any] = {}
        for key, item in value.items():
            if key in core:
                known[key] = item
            elif key in RESOURCE_IGNORED_KEYS:
                continue
            elif isinstance(key, str) and key:
                extras[key] = item
            else:
                raise _Invalid("Keys must be non-empty strings")
        if known.get("url") is None:
            known["url"] = ""
        if known.get("id") == "":
            known["id"] = None
        known["extras"] = extras
        return structure(known, ResourceInput)

    return structure_resource


def _resources_hook(converter: cattrs.Converter) -> Callable[[Any, Any], Any]:
    def structure_resources(value: Any, _: Any) -> tuple[ResourceInput, ...] | None:
        if value is None:
            return None
        if not _is_list(value):
            raise _Invalid("Must be a list of resources")
        out: list[ResourceInput] = []
        nested: list[dict[str, Any]] = []
        for item in value:
            try:
                out.append(converter.structure(item, ResourceInput))
                nested.append({})
            except (ClassValidationError, IterableValidationError, _Invalid) as exc:
                nested.append(_field_errors(exc))
        if any(nested):
            raise _Invalid(nested=nested)
        return tuple(out)

    return structure_resources


def make_converter() -> cattrs.Converter:
    """A new private converter for the canonical JSON form.

    Unstructuring: datetimes to ISO 8601 in UTC, enums to their values, tags to
    ``{"name", "vocabulary_id"}``, tuples to lists; users without ``password_hash`` and tokens
    without ``token_hash``. Structuring (into the service inputs): strict scalars (a list is
    never a string, ``"false"`` is false, ``size`` must be an integer), the CKAN collection
    shapes, and extra keys forbidden on the already filtered dicts.
    """
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)

    conv.register_unstructure_hook(datetime, _iso)
    conv.register_unstructure_hook_func(
        lambda t: isinstance(t, type) and issubclass(t, enum.Enum), lambda e: e.value
    )
    for str_enum in (State, Capacity):  # str enums would otherwise pass through as they are
        conv.register_unstructure_hook(str_enum, lambda e: e.value)
    conv.register_unstructure_hook(
        Tag, lambda tag: {"name": tag.name, "vocabulary_id": tag.vocabulary_id}
    )
    conv.register_unstructure_hook(
        User, make_dict_unstructure_fn(User, conv, password_hash=override(omit=True))
    )
    conv.register_unstructure_hook(
        ApiToken, make_dict_unstructure_fn(ApiToken, conv, token_hash=override(omit=True))
    )

    conv.register_structure_hook(str, _structure_str)
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(bool, _structure_bool)
    conv.register_structure_hook(datetime, _structure_datetime)
    conv.register_structure_hook_factory(
        lambda t: isinstance(t, type) and issubclass(t, enum.Enum), _structure_enum
    )
    # a str enum would otherwise match the str hook registered above
    conv.register_structure_hook(State, _structure_enum(State))
    conv.register_structure_hook(Tag, _structure_tag)
    conv.register_structure_hook(ResourceInput, _resource_hook(conv))
    conv.register_structure_hook(
        DatasetInput,
        make_dict_structure_fn(
            DatasetInput,
            conv,
            tags=override(struct_hook=_structure_tags),
            extras=override(struct_hook=_structure_string_extras),
            groups=override(struct_hook=_structure_groups),
            resources=override(struct_hook=_resources_hook(conv)),
        ),
    )
    conv.register_structure_hook(
        GroupInput,
        make_dict_structure_fn(
            GroupInput, conv, extras=override(struct_hook=_structure_string_extras)
        ),
    )
    return conv


@functools.cache
def _converter() -> cattrs.Converter:
    return make_converter()


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


def _add(out: dict[str, Any], field: str, message: str) -> None:
    messages = out.setdefault(field, [])
    if isinstance(messages, list) and message not in messages:
        messages.append(message)


def _collect(exc: BaseException, field: str | None, out: dict[str, Any]) -> None:
    """Walk a cattrs error tree; the first attribute name on the path is the field."""
    if isinstance(exc, ClassValidationError):
        with_notes, others = exc.group_exceptions()
        for sub, note in with_notes:
            _collect(sub, field or note.name, out)
        for sub in others:
            _collect(sub, field, out)
    elif isinstance(exc, IterableValidationError):
        with_index, rest = exc.group_exceptions()
        for sub, _note in with_index:
            _collect(sub, field, out)
        for sub in rest:
            _collect(sub, field, out)
    elif isinstance(exc, ForbiddenExtraKeysError):
        for key in sorted(exc.extra_fields):
            _add(out, key, f"The input field {key} was not expected.")
    elif isinstance(exc, _Invalid):
        if exc.nested is not None:
            out[field or "message"] = exc.nested
        for message in exc.messages:
            _add(out, field or "message", message)
    elif isinstance(exc, KeyError):  # a required key is missing
        _add(out, field or "message", "Missing value")
    else:
        _add(out, field or "message", "Invalid value")


def _field_errors(exc: BaseException) -> dict[str, Any]:
    out: dict[str, Any] = {}
    _collect(exc, None, out)
    return out


def _structure(data: Mapping[str, Any], cls: type[T], pre: dict[str, Any] | None = None) -> T:
    """Structure an already filtered dict; every problem becomes one ValidationFailed."""
    errors = dict(pre or {})
    try:
        result = _converter().structure(data, cls)
    except (ClassValidationError, IterableValidationError, _Invalid) as exc:
        for key, value in _field_errors(exc).items():
            if isinstance(value, list) and isinstance(errors.get(key), list):
                errors[key] = [*errors[key], *(v for v in value if v not in errors[key])]
            else:
                errors[key] = value
        raise ValidationFailed(errors) from None
    if errors:
        raise ValidationFailed(errors)
    return result


def _require_mapping(data: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ValidationFailed({"message": [f"Must be a JSON object ({what})"]})
    return data


def _pick(data: Mapping[str, Any], cls: type) -> dict[str, Any]:
    names = _field_names(cls)
    return {key: value for key, value in data.items() if key in names}


# ---------------------------------------------------------------------------------------------
# Inputs from dicts
# ---------------------------------------------------------------------------------------------


def dataset_input_from_dict(data: Mapping[str, Any]) -> DatasetInput:
    """A :class:`DatasetInput` from a CKAN package dict (package_create body, package_show
    result or a ckanapi dump line).

    ``tags``: ``[{"name", "vocabulary_id"?}]`` or names; ``tag_string``: ``"a,b"`` adds tags.
    ``extras``: ``[{"key", "value"}]`` or a mapping; values that are not strings are
    JSON-encoded. ``groups``: ``[{"id"}|{"name"}]`` or ids/names. ``owner_org``: an id or a
    name. ``resources``: dicts whose keys beyond the resource fields become resource extras.
    ``private``: a boolean or ``"true"``/``"false"``. ``id`` and ``state`` pass through (the
    service decides whether the caller may set them); the keys in
    :data:`DATASET_IGNORED_KEYS` and unknown keys are dropped.

    Raises ValidationFailed with CKAN-shaped field errors for structural problems.
    """
    data = _require_mapping(data, "dataset")
    picked = _pick(data, DatasetInput)
    pre: dict[str, Any] = {}
    if "tag_string" in data:
        try:
            extra_tags = _tag_string(data["tag_string"])
        except _Invalid as exc:
            pre["tag_string"] = exc.messages
        else:
            tags = picked.get("tags")
            if tags is None:
                picked["tags"] = extra_tags
            elif _is_list(tags):
                picked["tags"] = [*tags, *extra_tags]
    for key in ("id", "state", "type"):
        if picked.get(key) == "":
            picked[key] = None
    return _structure(picked, DatasetInput, pre)


def resource_input_from_dict(data: Mapping[str, Any]) -> ResourceInput:
    """A :class:`ResourceInput` from a CKAN resource dict: keys beyond the resource fields
    (and :data:`RESOURCE_IGNORED_KEYS`) become extras, with any JSON value."""
    return _structure(_require_mapping(data, "resource"), ResourceInput)


def group_input_from_dict(data: Mapping[str, Any]) -> GroupInput:
    """A :class:`GroupInput` from a CKAN group or organization dict (unknown keys dropped;
    extras as for datasets)."""
    picked = _pick(_require_mapping(data, "group"), GroupInput)
    for key in ("id", "type"):
        if picked.get(key) == "":
            picked[key] = None
    return _structure(picked, GroupInput)


def user_input_from_dict(data: Mapping[str, Any]) -> UserInput:
    """A :class:`UserInput` from a CKAN user dict (``name``, ``email``, ``password``
    required; unknown keys dropped)."""
    picked = _pick(_require_mapping(data, "user"), UserInput)
    if picked.get("id") == "":
        picked["id"] = None
    return _structure(picked, UserInput)


# ---------------------------------------------------------------------------------------------
# Dicts from domain objects
# ---------------------------------------------------------------------------------------------


def _extras_list(extras: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"key": key, "value": extras[key]} for key in sorted(extras)]


def resource_to_dict(resource: Resource) -> dict[str, Any]:
    """A resource as CKAN shows it: its fields, then its extras flattened to the top level
    (an extra never hides a field)."""
    out: dict[str, Any] = _converter().unstructure(resource)
    extras = out.pop("extras")
    for key, value in extras.items():
        out.setdefault(key, value)
    return out


def group_to_dict(group: Group) -> dict[str, Any]:
    """An organization or group as CKAN shows it (without members or datasets)."""
    out: dict[str, Any] = _converter().unstructure(group)
    out["display_name"] = group.display_name
    out["extras"] = _extras_list(group.extras)
    out.pop("revision", None)
    return out


def _group_ref(group: Group) -> dict[str, Any]:
    return {
        "id": group.id,
        "name": group.name,
        "title": group.title,
        "display_name": group.display_name,
        "description": group.description,
        "image_url": group.image_url,
    }


def dataset_to_dict(
    dataset: Dataset,
    *,
    organization: Group | None = None,
    groups: Sequence[Group] | None = None,
) -> dict[str, Any]:
    """A dataset in the shape of CKAN's package_show result.

    ``groups`` is the list of group ids, or, when the :class:`Group` objects are passed, of
    ``{"id", "name", "title", "display_name", ...}`` dicts; ``organization`` (the owning
    organization's object, if passed) adds the ``organization`` dict. The result is what
    :func:`dataset_input_from_dict` reads back.
    """
    out: dict[str, Any] = _converter().unstructure(dataset)
    out.pop("revision", None)
    license_ = license_by_id(dataset.license_id)
    if dataset.license_id is not None:
        out["license_title"] = license_.title if license_ is not None else dataset.license_id
        if license_ is not None and license_.url:
            out["license_url"] = license_.url
    out["isopen"] = bool(license_ is not None and license_.is_open)
    out["extras"] = _extras_list(dataset.extras)
    out["resources"] = [resource_to_dict(res) for res in dataset.resources]
    out["num_resources"] = len(dataset.resources)
    out["num_tags"] = len(dataset.tags)
    if groups is not None:
        out["groups"] = [_group_ref(group) for group in groups]
    if organization is not None:
        org = group_to_dict(organization)
        org.pop("extras", None)
        out["organization"] = org
    return out


def user_to_dict(user: User, *, private: bool) -> dict[str, Any]:
    """A user account; ``email`` only when ``private`` (never the password hash)."""
    out: dict[str, Any] = _converter().unstructure(user)
    out.pop("revision", None)
    out["display_name"] = user.display_name
    if not private:
        out.pop("email", None)
    return out


def token_to_dict(token: ApiToken) -> dict[str, Any]:
    """An API token's facts (never its hash; the secret is not stored at all)."""
    out: dict[str, Any] = _converter().unstructure(token)
    return out


def activity_to_dict(activity: Activity) -> dict[str, Any]:
    """An activity record: who did what to which object when, with its snapshot."""
    out: dict[str, Any] = _converter().unstructure(activity)
    out.pop("permission_labels", None)
    return out


class GroupLookup:
    """Organizations and groups by id or name, remembered, to show datasets with their
    ``organization`` and ``groups`` dicts (as CKAN's package_show does)."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._known: dict[tuple[bool, str], Group | None] = {}

    def find(self, ref: str, *, organization: bool) -> Group | None:
        """The organization or group with this id or name, or None."""
        key = (organization, ref)
        if key not in self._known:
            service = self._catalog.organizations if organization else self._catalog.groups
            try:
                self._known[key] = service.get(ref)
            except NotFound:
                self._known[key] = None
        return self._known[key]

    def remember(self, group: Group) -> None:
        """Note a group or organization just created."""
        self._known[(group.is_organization, group.id)] = group
        self._known[(group.is_organization, group.name)] = group

    def dataset_dict(self, dataset: Dataset) -> dict[str, Any]:
        """The dataset's dict with its organization and groups spelled out."""
        org = self.find(dataset.owner_org, organization=True) if dataset.owner_org else None
        groups = [g for ref in dataset.groups if (g := self.find(ref, organization=False))]
        return dataset_to_dict(dataset, organization=org, groups=groups)
