"""The exceptions opencatalog raises.

Every error the library raises on purpose derives from one root, so callers can catch
``OpenCatalogError`` and know they have seen everything that is not a bug::

    OpenCatalogError
    ├── NotFound                 the object does not exist, or the actor may not know it does
    ├── Conflict                 the change collides with the current state
    │   └── AlreadyExists        a unique name or id is taken
    ├── ValidationFailed         bad input; ``errors`` maps field names to lists of messages
    ├── NotAuthorized            the actor may see the object but not do this to it
    ├── SearchQueryError         a search query outside the supported syntax or limits
    ├── BackendError             a storage, search, blob or queue backend failed
    └── ConfigurationError       settings or backend URLs that cannot work

Adapters translate their drivers' exceptions into these (an ``IntegrityError`` on a unique
name becomes ``AlreadyExists``); the HTTP edge maps them to status codes in one table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "AlreadyExists",
    "BackendError",
    "ConfigurationError",
    "Conflict",
    "NotAuthorized",
    "NotFound",
    "OpenCatalogError",
    "SearchQueryError",
    "ValidationFailed",
]


class OpenCatalogError(Exception):
    """Root of every error opencatalog raises on purpose."""

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message


class NotFound(OpenCatalogError):
    """The object does not exist, or the actor may not learn that it exists."""

    def __init__(self, message: str = "Not found") -> None:
        super().__init__(message)


class Conflict(OpenCatalogError):
    """The change collides with the current state (for example a stale revision)."""


class AlreadyExists(Conflict):
    """A unique name or id is already taken.

    ``field`` names the input field at fault, so the edge can report it as a field error.
    """

    def __init__(self, message: str, *, field: str = "name") -> None:
        super().__init__(message)
        self.field = field

    @property
    def errors(self) -> dict[str, list[str]]:
        return {self.field: [self.message]}


class ValidationFailed(OpenCatalogError):
    """Bad input.

    ``errors`` has CKAN's shape: field name to a list of messages; nested inputs (resources)
    map to a list with one dict per item; errors that belong to no field use ``"message"``.
    """

    def __init__(self, errors: Mapping[str, Any], message: str = "Validation failed") -> None:
        super().__init__(message)
        self.errors: dict[str, Any] = dict(errors)

    def __str__(self) -> str:
        return f"{self.message}: {self.errors}"


class NotAuthorized(OpenCatalogError):
    """The actor may see the object but is not allowed to do this to it."""

    def __init__(self, message: str = "Access denied") -> None:
        super().__init__(message)


class SearchQueryError(OpenCatalogError):
    """A search query outside the supported syntax, fields or limits."""


class BackendError(OpenCatalogError):
    """A backend failed in a way the caller cannot fix by changing the input."""


class ConfigurationError(OpenCatalogError):
    """Settings, URLs or backend names that cannot work."""
