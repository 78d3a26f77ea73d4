"""Site actions: ``site_read``, ``status_show``, ``license_list``, ``help_show``."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from opencatalog.errors import NotFound
from opencatalog.services.catalog import Catalog

from ._registry import ACTIONS, action
from .params import Params

#: The CKAN release whose Action API behaviour this one follows (``status_show``).
CKAN_VERSION = "2.11.0"


def _own_version() -> str:
    try:
        return version("opencatalog")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


@action("site_read", get=True)
def site_read(cat: Catalog, params: Params) -> bool:
    """True: the caller may read the site."""
    return True


@action("status_show", get=True)
def status_show(cat: Catalog, params: Params) -> dict[str, Any]:
    """Facts about the site: title, version of the API it follows, extensions (none)."""
    return {
        "site_title": "opencatalog",
        "site_description": "",
        "site_url": "",
        "error_emails_to": None,
        "locale_default": "en",
        "extensions": [],
        "ckan_version": CKAN_VERSION,
        "opencatalog_version": _own_version(),
    }


@action("license_list", get=True)
def license_list(cat: Catalog, params: Params) -> list[dict[str, Any]]:
    """The licenses datasets may use: ``id``, ``title``, ``url`` and whether each is open."""
    return [
        {
            "id": lic.id,
            "title": lic.title,
            "url": lic.url or "",
            "od_conformance": "approved" if lic.is_open else "not reviewed",
            "osd_conformance": "not reviewed",
            "is_okd_compliant": lic.is_open,
            "is_osi_compliant": False,
            "status": "active",
            "family": "",
            "maintainer": "",
            "domain_content": False,
            "domain_data": False,
            "domain_software": False,
            "is_generic": False,
        }
        for lic in cat.licenses.list()
    ]


@action("help_show", get=True)
def help_show(cat: Catalog, params: Params) -> str | None:
    """The documentation of the action ``name``."""
    name = params.require("name")
    spec = ACTIONS.get(name)
    if spec is None:
        raise NotFound(f"Action function not found: {name}")
    return spec.function.__doc__
