"""Shipped test support: conformance kits for backend authors, strategies, stateful tests.

Each port has a kit of abstract test classes (``opencatalog.testing.storage.StorageTests``,
``opencatalog.testing.search.SearchIndexTests`` ...) that a backend's own test suite
subclasses, overriding one fixture. The kits need pytest and Hypothesis, which opencatalog does
not install by default: ``pip install 'opencatalog[test]'``.

Importing this package imports no kit; import the module you need.
"""

from __future__ import annotations

from importlib.util import find_spec

_missing = [name for name in ("pytest", "hypothesis") if find_spec(name) is None]
if _missing:
    raise ImportError(
        f"opencatalog.testing needs {' and '.join(_missing)}, which are not installed: "
        "pip install 'opencatalog[test]'"
    )
del _missing
