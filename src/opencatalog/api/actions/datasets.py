"""Dataset read actions: ``package_list``, ``package_show``, ``package_search``,
``current_package_list_with_resources``, ``resource_show``, ``package_autocomplete``,
``format_autocomplete``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opencatalog.domain.model import Dataset
from opencatalog.errors import SearchQueryError
from opencatalog.serialization import GroupLookup, resource_to_dict
from opencatalog.services.catalog import Catalog
from opencatalog.services.search import FacetItem

from ._registry import action
from .params import Params

#: CKAN's ``ckan.search.rows_max``: larger ``rows`` are cut to it.
ROWS_MAX = 1000
DEFAULT_SORT = "score desc, metadata_modified desc"

#: The parameters package_search reads; any other key is a Search Query Error, as in CKAN.
SEARCH_PARAMS = frozenset(
    {
        "q",
        "fq",
        "fq_list",
        "sort",
        "rows",
        "start",
        "facet",
        "facet.mincount",
        "facet.limit",
        "facet.field",
        "fl",
        "include_private",
        "include_drafts",
        "include_deleted",
        "use_default_schema",
        "qf",
        "bf",
        "boost",
        "tie",
        "defType",
        "mm",
        "df",
    }
)


def package_dicts(cat: Catalog, datasets: Sequence[Dataset]) -> list[dict[str, Any]]:
    """Datasets as package_show shows them (organization and groups spelled out)."""
    lookup = GroupLookup(cat)
    return [lookup.dataset_dict(ds) for ds in datasets]


@action("package_list", get=True)
def package_list(cat: Catalog, params: Params) -> list[str]:
    """Names of the active public datasets, by name; ``limit`` and ``offset`` page them."""
    limit = params.integer("limit", 0, minimum=0) or None
    offset = params.integer("offset", 0, minimum=0)
    page = cat.datasets.list(offset=offset, limit=limit)
    return [ds.name for ds in page.items]


@action("current_package_list_with_resources", get=True)
def current_package_list_with_resources(cat: Catalog, params: Params) -> list[dict[str, Any]]:
    """Active datasets the caller may read, most recently modified first, with resources;
    ``limit`` (default 5) and ``offset`` (or the deprecated ``page``) page them."""
    limit = params.integer("limit", 5, minimum=1, maximum=ROWS_MAX)
    offset = params.integer("offset", 0, minimum=0)
    if "page" in params:
        offset = (params.integer("page", 1, minimum=1) - 1) * limit
    page = cat.datasets.list(
        offset=offset, limit=limit, include_private=True, order="-metadata_modified"
    )
    return package_dicts(cat, page.items)


@action("package_show", get=True)
def package_show(cat: Catalog, params: Params) -> dict[str, Any]:
    """The dataset ``id`` (an id or a name; ``name_or_id`` also works)."""
    ref = params.require("id", "name_or_id")
    return package_dicts(cat, [cat.datasets.get(ref)])[0]


@action("resource_show", get=True)
def resource_show(cat: Catalog, params: Params) -> dict[str, Any]:
    """The resource ``id``."""
    return resource_to_dict(cat.resources.get(params.require("id")))


@action("package_search", get=True)
def package_search(cat: Catalog, params: Params) -> dict[str, Any]:
    """Find datasets: ``q`` and ``fq``/``fq_list`` in CKAN's query syntax, ``sort``, ``rows``
    (default 10, at most 1000) and ``start``, ``facet.field`` with ``facet.limit`` and
    ``facet.mincount``, ``include_private``/``include_drafts``/``include_deleted``.

    The result has ``count``, ``results`` (package_show dicts), ``sort``, ``facets`` (value to
    count per field) and ``search_facets`` (per field, ``items`` of ``name``,
    ``display_name`` and ``count``)."""
    unknown = sorted(k for k in params.data if k not in SEARCH_PARAMS and not k.startswith("ext_"))
    if unknown:
        raise SearchQueryError(f"Search Query is invalid: Invalid search parameters: {unknown}")
    q = params.string("q", "") or ""
    if q.strip() in ('""', "''"):
        q = ""
    fq = [f for f in [params.string("fq", "") or "", *params.string_list("fq_list")] if f]
    sort = params.string("sort") or DEFAULT_SORT
    want_facets = params.boolean("facet", True)
    fields = params.string_list("facet.field") if want_facets else []
    facet_limit = params.get("facet.limit", 50)
    try:
        facet_limit = int(facet_limit)
    except (TypeError, ValueError):
        raise SearchQueryError("Search Query is invalid: facet.limit must be an integer") from None
    found = cat.search.datasets(
        q,
        fq=fq,
        facets=fields,
        facet_limit=facet_limit,
        facet_mincount=params.integer("facet.mincount", 1, minimum=0),
        sort=None if sort.strip() in (DEFAULT_SORT, "rank") else sort,
        offset=params.integer("start", 0, minimum=0),
        limit=params.integer("rows", 10, minimum=0, maximum=ROWS_MAX),
        include_private=params.boolean("include_private"),
        include_drafts=params.boolean("include_drafts"),
        include_deleted=params.boolean("include_deleted"),
    )
    results = package_dicts(cat, found.results)
    wanted = params.string_list("fl") if "fl" in params else []
    if wanted:
        if len(wanted) == 1 and ("," in wanted[0] or " " in wanted[0]):
            wanted = [w for w in wanted[0].replace(",", " ").split() if w]
        results = [{key: row[key] for key in wanted if key in row} for row in results]
    search_facets = {
        name: {"title": name, "items": _facet_items(items)} for name, items in found.facets.items()
    }
    return {
        "count": found.count,
        "results": results,
        "sort": sort,
        "facets": {name: {i.name: i.count for i in items} for name, items in found.facets.items()},
        "search_facets": search_facets,
    }


def _facet_items(items: Sequence[FacetItem]) -> list[dict[str, Any]]:
    """CKAN's ``search_facets`` items: by display name, descending (as CKAN sorts them)."""
    rows: list[dict[str, Any]] = [
        {"name": i.name, "display_name": i.display_name, "count": i.count} for i in items
    ]
    rows.sort(key=lambda row: str(row["display_name"]), reverse=True)
    return rows


@action("package_autocomplete", get=True)
def package_autocomplete(cat: Catalog, params: Params) -> list[dict[str, Any]]:
    """Datasets whose name or title starts with ``q`` (``limit``, default 10): ``name``,
    ``title``, ``match_field`` and ``match_displayed``."""
    q = params.require("q")
    limit = params.integer("limit", 10, minimum=1, maximum=100)
    out = []
    for ds in cat.search.suggest_datasets(q, limit=limit):
        by_name = ds.name.lower().startswith(q.lower())
        out.append(
            {
                "name": ds.name,
                "title": ds.title or ds.name,
                "match_field": "name" if by_name else "title",
                "match_displayed": ds.name if by_name else (ds.title or ds.name),
            }
        )
    return out


@action("format_autocomplete", get=True)
def format_autocomplete(cat: Catalog, params: Params) -> list[str]:
    """Resource formats in use containing ``q`` (``limit``, default 5)."""
    q = params.require("q")
    return cat.search.suggest_formats(q, limit=params.integer("limit", 5, minimum=1, maximum=100))
