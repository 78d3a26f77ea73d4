"""Input checks that need no storage, collected into CKAN-shaped field errors.

Every check reports into an :class:`Errors` collector instead of raising at the first problem,
so a caller learns about every bad field at once, as CKAN reports them:
``{"name": ["Must be at least 2 characters long"], "resources": [{}, {"url": [...]}]}``.
Checks also cover types, so a Python caller passing ``size="big"`` gets a field error, not a
crash further down.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from opencatalog.domain import rules
from opencatalog.domain.commands import (
    UNSET,
    DatasetInput,
    GroupInput,
    ResourceInput,
    Unset,
)
from opencatalog.domain.model import State, Tag
from opencatalog.errors import ValidationFailed

__all__ = [
    "DATASET_CORE_FIELDS",
    "Errors",
    "check_dataset",
    "check_group",
    "check_resource",
]

MISSING = "Missing value"
MAX_TEXT = 100_000  # generous bound for free text (notes, descriptions)
MAX_SHORT = 1_000  # bound for one-line fields

#: Dataset fields an extra may not shadow.
DATASET_CORE_FIELDS = frozenset(
    {
        "id", "name", "title", "notes", "url", "version", "author", "author_email",
        "maintainer", "maintainer_email", "license_id", "owner_org", "private", "state",
        "type", "tags", "extras", "groups", "resources", "metadata_created",
        "metadata_modified", "creator_user_id", "organization", "num_resources", "num_tags",
    }
)  # fmt: skip


#: Resource fields (and derived keys) a resource extra may not shadow.
RESOURCE_CORE_FIELDS = frozenset(
    {
        "id", "package_id", "url", "url_type", "name", "description", "format", "mimetype",
        "hash", "size", "position", "created", "last_modified", "metadata_modified",
        "state", "extras",
    }
)  # fmt: skip


class Errors:
    """Collects field errors; :meth:`raise_if_any` raises one ValidationFailed with them all."""

    def __init__(self) -> None:
        self.fields: dict[str, Any] = {}

    def add(self, name: str, message: str) -> None:
        self.fields.setdefault(name, []).append(message)

    def extend(self, name: str, messages: list[str]) -> None:
        for message in messages:
            self.add(name, message)

    def __bool__(self) -> bool:
        return bool(self.fields)

    def raise_if_any(self) -> None:
        if self.fields:
            raise ValidationFailed(self.fields)


def text(
    errors: Errors,
    name: str,
    value: Any,
    *,
    required: bool = False,
    max_length: int = MAX_SHORT,
) -> None:
    """A string field: optional unless ``required``; bounded length."""
    if value is None or value is UNSET:
        if required:
            errors.add(name, MISSING)
        return
    if not isinstance(value, str):
        errors.add(name, "Must be a string")
        return
    if required and not value.strip():
        errors.add(name, MISSING)
    elif len(value) > max_length:
        errors.add(name, f"Must be at most {max_length} characters long")


def name_field(errors: Errors, field: str, value: Any) -> None:
    if value is None or value == "":
        errors.add(field, MISSING)
        return
    errors.extend(field, rules.name_errors(value))


def email_field(errors: Errors, field: str, value: Any, *, required: bool = False) -> None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            errors.add(field, MISSING)
        return
    if not isinstance(value, str):
        errors.add(field, "Must be a string")
        return
    errors.extend(field, rules.email_errors(value))


def boolean(errors: Errors, field: str, value: Any) -> None:
    if not isinstance(value, bool):
        errors.add(field, "Must be true or false")


def string_mapping(errors: Errors, field: str, value: Any, *, reserved: frozenset[str]) -> None:
    """Extras of datasets and groups: string keys and string values."""
    if not isinstance(value, Mapping):
        errors.add(field, "Must be a mapping of keys to values")
        return
    for key, item in value.items():
        if not isinstance(key, str) or not key.strip():
            errors.add(field, "key: Missing value")
        elif key in reserved:
            errors.add(field, f"There is a schema field with the same name: {key}")
        elif len(key) > MAX_SHORT:
            errors.add(field, f"key {key[:20]}...: too long")
        if not isinstance(item, str):
            errors.add(field, f"Value of {key!r} must be a string")


def tags_field(errors: Errors, value: Any) -> None:
    if not isinstance(value, tuple | list):
        errors.add("tags", "Must be a list of tags")
        return
    for tag in value:
        if not isinstance(tag, Tag):
            errors.add("tags", "Must be a list of tags")
            continue
        errors.extend("tags", rules.tag_errors(tag.name))
        if tag.vocabulary_id is not None and not isinstance(tag.vocabulary_id, str):
            errors.add("tags", "vocabulary_id must be a string")


def check_resource(value: Any) -> dict[str, Any]:
    """The field errors of one resource input (empty when it is fine)."""
    errors = Errors()
    if not isinstance(value, ResourceInput):
        return {"message": ["Must be a resource"]}
    if value.id is not None and not rules.is_uuid(value.id):
        errors.add("id", "Must be a UUID")
    text(errors, "url", value.url, max_length=8_000)
    if value.url is None:
        errors.add("url", "Must be a string")
    for name in ("url_type", "name", "format", "mimetype", "hash"):
        text(errors, name, getattr(value, name))
    text(errors, "description", value.description, max_length=MAX_TEXT)
    if value.size is not None and (
        isinstance(value.size, bool) or not isinstance(value.size, int) or value.size < 0
    ):
        errors.add("size", "Invalid integer")
    if value.last_modified is not None and not isinstance(value.last_modified, datetime):
        errors.add("last_modified", "Date format incorrect")
    if not isinstance(value.extras, Mapping):
        errors.add("extras", "Must be a mapping")
    else:
        for key in value.extras:
            if not isinstance(key, str) or not key:
                errors.add("extras", "key: Missing value")
            elif key in RESOURCE_CORE_FIELDS:
                errors.add("extras", f"There is a schema field with the same name: {key}")
    return errors.fields


def check_dataset(value: Any, *, errors: Errors | None = None) -> Errors:
    """Field errors of a dataset input, resources included (CKAN's nested list shape)."""
    errors = errors if errors is not None else Errors()
    if not isinstance(value, DatasetInput):
        errors.add("message", "Must be a dataset")
        return errors
    name_field(errors, "name", value.name)
    if value.id is not None and not rules.is_uuid(value.id):
        errors.add("id", "Must be a UUID")
    for name in ("title", "url", "author", "maintainer", "license_id", "owner_org", "type"):
        text(errors, name, getattr(value, name))
    text(errors, "version", value.version, max_length=100)
    text(errors, "notes", value.notes, max_length=MAX_TEXT)
    email_field(errors, "author_email", value.author_email)
    email_field(errors, "maintainer_email", value.maintainer_email)
    boolean(errors, "private", value.private)
    if value.state is not None and not isinstance(value.state, State):
        errors.add("state", "Must be one of: active, draft, deleted")
    tags_field(errors, value.tags)
    string_mapping(errors, "extras", value.extras, reserved=DATASET_CORE_FIELDS)
    groups_ok = isinstance(value.groups, tuple) and all(
        isinstance(g, str) and g for g in value.groups
    )
    if value.groups is not None and not groups_ok:
        errors.add("groups", "Must be a list of group ids or names")
    if value.resources is not None:
        if not isinstance(value.resources, tuple):
            errors.add("resources", "Must be a list of resources")
        else:
            nested = [check_resource(res) for res in value.resources]
            if any(nested):
                errors.fields["resources"] = nested
    return errors


def check_group(value: Any) -> Errors:
    errors = Errors()
    if not isinstance(value, GroupInput):
        errors.add("message", "Must be a group")
        return errors
    name_field(errors, "name", value.name)
    if value.id is not None and not rules.is_uuid(value.id):
        errors.add("id", "Must be a UUID")
    for name in ("title", "image_url", "type"):
        text(errors, name, getattr(value, name))
    text(errors, "description", value.description, max_length=MAX_TEXT)
    string_mapping(
        errors, "extras", value.extras, reserved=frozenset({"id", "name", "title", "description"})
    )
    return errors


def given(value: Any) -> bool:
    """Whether a patch field was given."""
    return not isinstance(value, Unset)
