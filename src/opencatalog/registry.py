"""Backends by name: entry-point discovery per port, lazy import, programmatic registration.

Each port has an entry-point group (``opencatalog.storage``, ``opencatalog.search``,
``opencatalog.blobs``, ``opencatalog.queue``). An entry point's name is a URL scheme and its
value a factory ``(url: str, **options) -> implementation``. The built-in backends register
through the same entry points a third-party package uses; nothing is imported until a URL
asks for it.

A URL picks its backend by the scheme before any ``+``: ``postgresql+psycopg://...`` uses the
``postgresql`` backend and passes the whole URL on.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from types import MappingProxyType
from typing import Any

from opencatalog.errors import ConfigurationError

__all__ = ["GROUPS", "available", "create", "register", "scheme_of"]

GROUPS = ("storage", "search", "blobs", "queue")

#: What to install when a known backend's library is missing.
INSTALL_HINTS: Mapping[tuple[str, str], str] = MappingProxyType(
    {
        ("storage", "postgresql"): "pip install 'opencatalog[postgres]'",
        ("blobs", "s3"): "pip install 'opencatalog[s3]'",
    }
)

Factory = Callable[..., Any]

_lock = threading.Lock()
_registered: dict[str, dict[str, Factory | str]] = {group: {} for group in GROUPS}
_discovered: dict[str, dict[str, str]] = {}


def _discover(group: str) -> dict[str, str]:
    with _lock:
        if group not in _discovered:
            found = entry_points(group=f"opencatalog.{group}")
            _discovered[group] = {ep.name: ep.value for ep in found}
        return _discovered[group]


def _check_group(group: str) -> None:
    if group not in GROUPS:
        raise ConfigurationError(f"Unknown backend kind {group!r}; expected one of {GROUPS}")


def register(group: str, name: str, factory: Factory | str, *, clobber: bool = False) -> None:
    """Register a backend factory (or a ``"module:attr"`` path) under a scheme name.

    Raises ConfigurationError if the name is taken, unless ``clobber``.
    """
    _check_group(group)
    with _lock:
        if not clobber and name in _registered[group]:
            raise ConfigurationError(f"{group} backend {name!r} is already registered")
        _registered[group][name] = factory


def available(group: str) -> Mapping[str, str]:
    """Backend names of a kind with where they come from (read-only)."""
    _check_group(group)
    names: dict[str, str] = dict(_discover(group))
    for name, target in _registered[group].items():
        names[name] = target if isinstance(target, str) else repr(target)
    return MappingProxyType(names)


def scheme_of(url: str) -> str:
    """The backend name a URL asks for: its scheme up to any ``+``."""
    if "://" not in url:
        raise ConfigurationError(f"Not a backend URL (no scheme): {url!r}")
    return url.split("://", 1)[0].split("+", 1)[0].lower()


def _load(path: str) -> Factory:
    module_name, _, attr = path.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(f"Cannot import backend module {module_name!r}: {exc}") from exc
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def create(group: str, url: str, **options: Any) -> Any:
    """Build the backend of kind ``group`` that ``url`` names."""
    _check_group(group)
    name = scheme_of(url)
    target: Factory | str | None = _registered[group].get(name) or _discover(group).get(name)
    if target is None:
        known = ", ".join(sorted(available(group))) or "none"
        raise ConfigurationError(
            f"No {group} backend named {name!r} (known: {known}). Install the package that "
            "provides it, or register one with opencatalog.registry.register()."
        )
    try:
        factory = _load(target) if isinstance(target, str) else target
        return factory(url, **options)
    except ImportError as exc:
        hint = INSTALL_HINTS.get((group, name))
        extra = f"; install it with: {hint}" if hint else ""
        raise ConfigurationError(f"The {name} {group} backend needs {exc.name}{extra}") from exc
