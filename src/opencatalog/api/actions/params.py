"""An action's parameters, read the way CKAN reads them.

Parameters arrive as a JSON object (POST) or as query-string values (GET: strings, a repeated
key as a list of strings), so every reader accepts both a typed value and its string form.
A missing required value raises ``ValidationFailed({key: ["Missing value"]})`` and a malformed
one ``ValidationFailed({key: [message]})``: CKAN's 409 ``Validation Error``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from opencatalog.errors import ValidationFailed
from opencatalog.serialization import parse_bool

__all__ = ["Params"]


class Params:
    """Read-only access to an action's parameters with CKAN's conversions."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data: dict[str, Any] = dict(data)

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def get(self, key: str, default: Any = None) -> Any:
        """The raw value (None counts as absent)."""
        value = self.data.get(key)
        return default if value is None else value

    def require(self, *keys: str) -> str:
        """The first of ``keys`` present with a non-empty value, as a string; reports the
        first key as missing otherwise."""
        for key in keys:
            value = self.data.get(key)
            if value is not None and value != "":
                if isinstance(value, list | dict):
                    raise ValidationFailed({key: ["Must be a string"]})
                return str(value)
        raise ValidationFailed({keys[0]: ["Missing value"]})

    def string(self, key: str, default: str | None = None) -> str | None:
        value = self.data.get(key)
        if value is None:
            return default
        if isinstance(value, list | dict):
            raise ValidationFailed({key: ["Must be a string"]})
        return str(value)

    def integer(
        self, key: str, default: int, *, minimum: int = 0, maximum: int | None = None
    ) -> int:
        """An integer at least ``minimum`` (and at most ``maximum`` when given: larger values
        are clipped to it, as CKAN's row limits are)."""
        value = self.data.get(key)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            raise ValidationFailed({key: ["Invalid integer"]})
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ValidationFailed({key: ["Invalid integer"]}) from None
        if isinstance(value, float) and value != number:
            raise ValidationFailed({key: ["Invalid integer"]})
        if number < minimum:
            raise ValidationFailed({key: [f"Must be a natural number >= {minimum}"]})
        if maximum is not None and number > maximum:
            return maximum
        return number

    def boolean(self, key: str, default: bool = False) -> bool:
        value = self.data.get(key)
        if value is None:
            return default
        try:
            return parse_bool(value)
        except ValueError:
            raise ValidationFailed({key: [f"Bad value: {value!r} is not a boolean"]}) from None

    def string_list(self, key: str) -> list[str]:
        """A list of strings: a JSON list, a JSON-encoded list in a string (how GET passes
        lists, e.g. ``facet.field=["tags"]``), or a single string."""
        value = self.data.get(key)
        if value is None or value == "":
            return []
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    value = json.loads(text)
                except ValueError:
                    raise ValidationFailed({key: ["Invalid JSON list"]}) from None
            else:
                return [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValidationFailed({key: ["Must be a list of strings"]})
        return list(value)

    def mapping(self) -> dict[str, Any]:
        """All parameters as a dict (for actions that take a whole object)."""
        return dict(self.data)
