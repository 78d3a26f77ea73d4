"""The licenses a dataset's ``license_id`` can name.

:data:`DEFAULT_LICENSES` is the list a catalog offers out of the box, with the ids CKAN clients
know. Lookups are pure; nothing here is loaded from a file or a network at import time.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from attrs import frozen

__all__ = ["DEFAULT_LICENSES", "LICENSES_BY_ID", "License", "license_by_id"]


@frozen(kw_only=True)
class License:
    """A license a dataset may be published under.

    ``url`` is the license text's canonical address, or ``None`` for generic entries such as
    "Other (Open)". ``is_open`` is true when the license meets the Open Definition (free to
    use, modify and share, possibly with attribution or share-alike).
    """

    id: str
    title: str
    url: str | None
    is_open: bool


_OPENDEFINITION = "http://www.opendefinition.org/licenses/"

DEFAULT_LICENSES: tuple[License, ...] = (
    License(id="notspecified", title="License not specified", url=None, is_open=False),
    License(
        id="odc-pddl",
        title="Open Data Commons Public Domain Dedication and License (PDDL)",
        url=_OPENDEFINITION + "odc-pddl",
        is_open=True,
    ),
    License(
        id="odc-odbl",
        title="Open Data Commons Open Database License (ODbL)",
        url=_OPENDEFINITION + "odc-odbl",
        is_open=True,
    ),
    License(
        id="odc-by",
        title="Open Data Commons Attribution License",
        url=_OPENDEFINITION + "odc-by",
        is_open=True,
    ),
    License(
        id="cc-zero",
        title="Creative Commons CCZero",
        url=_OPENDEFINITION + "cc-zero",
        is_open=True,
    ),
    License(
        id="cc-by",
        title="Creative Commons Attribution",
        url=_OPENDEFINITION + "cc-by",
        is_open=True,
    ),
    License(
        id="cc-by-sa",
        title="Creative Commons Attribution Share-Alike",
        url=_OPENDEFINITION + "cc-by-sa",
        is_open=True,
    ),
    License(
        id="gfdl",
        title="GNU Free Documentation License",
        url=_OPENDEFINITION + "gfdl",
        is_open=True,
    ),
    License(id="other-open", title="Other (Open)", url=None, is_open=True),
    License(id="other-pd", title="Other (Public Domain)", url=None, is_open=True),
    License(id="other-at", title="Other (Attribution)", url=None, is_open=True),
    License(
        id="uk-ogl",
        title="UK Open Government Licence (OGL)",
        url="http://reference.data.gov.uk/id/open-government-licence",
        is_open=True,
    ),
    License(
        id="cc-nc",
        title="Creative Commons Non-Commercial (Any)",
        url="http://creativecommons.org/licenses/by-nc/2.0/",
        is_open=False,
    ),
    License(id="other-nc", title="Other (Non-Commercial)", url=None, is_open=False),
    License(id="other-closed", title="Other (Not Open)", url=None, is_open=False),
)

LICENSES_BY_ID: Mapping[str, License] = MappingProxyType(
    {entry.id: entry for entry in DEFAULT_LICENSES}
)
"""Read-only index of :data:`DEFAULT_LICENSES` by id."""


def license_by_id(license_id: str | None) -> License | None:
    """The default license with exactly this id (case-sensitive), or ``None``.

    ``None``, ``""`` and ids not in :data:`DEFAULT_LICENSES` give ``None``; callers decide
    whether an unknown id is an error (CKAN stores it and shows the id as the title).
    """
    if license_id is None:
        return None
    return LICENSES_BY_ID.get(license_id)
