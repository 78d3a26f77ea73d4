"""CKAN's legacy Search API: ``/api/search/dataset``, ``/api/search/resource`` and
``/api/tag_counts`` (also under ``/api/1/`` and ``/api/2/``; ``/api`` means version 1).

Parameters come from the query string (GET) or a JSON object (POST), or JSON-encoded in
``qjson``. The searches see **public** datasets only, whatever token the request carries, as
CKAN's legacy API does (``package_search`` is the way to private ones).

``search/dataset``: ``q`` (words, or CKAN's query syntax), any other parameter ``field=value``
as a ``field:"value"`` clause (``title``, ``notes``, ``tags`` (repeatable), ``author``,
``groups``...; a name the catalog does not index, like ``department``, searches the extra of
that name), ``order_by`` (a field, ascending; ``rank``: by relevance), ``offset`` and
``limit`` (default 20, at most 1000), ``all_fields=1`` for whole records. Answers ``{"count",
"results"}`` where results are dataset names (version 1), ids (version 2) or package dicts.

``search/resource``: ``url``, ``format``, ``description`` (case-insensitive substrings),
``hash`` (a prefix), ``offset``/``limit`` (default 20), ``all_fields=1``; results are resource
ids or resource dicts.

``tag_counts``: ``[[tag, number of public datasets], ...]``, most used first.

Bad parameters answer 400 with a JSON string, ``"Bad request: ..."``, as CKAN's legacy API
does; ``callback`` gives JSONP on a successful GET.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from opencatalog.domain.search import EXTRAS_PREFIX, KEYWORD_FIELDS, TEXT_FIELDS
from opencatalog.errors import OpenCatalogError, SearchQueryError, ValidationFailed
from opencatalog.serialization import resource_to_dict
from opencatalog.services.catalog import Catalog

from .action import (
    BadRequest,
    decode_json_object,
    error_object,
    json_response,
    jsonp_or_json,
    multi_dict,
)
from .actions.datasets import ROWS_MAX, package_dicts
from .actions.params import Params

__all__ = ["legacy_search_routes"]

_DATASET_RESERVED = frozenset(
    {"q", "qjson", "offset", "limit", "order_by", "all_fields", "callback", "tags"}
)
_RESOURCE_FIELDS = ("url", "format", "description", "hash")


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _values(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [str(v) for v in items if v is not None and str(v).strip()]


def _query(data: Mapping[str, Any]) -> str:
    """The legacy parameters as one query in the catalog's syntax (clauses ANDed)."""
    clauses = [q for q in _values(data.get("q", ""))]
    for tag in _values(data.get("tags", [])):
        clauses.append(f"tags:{_quoted(tag)}")
    for key, value in data.items():
        if key in _DATASET_RESERVED:
            continue
        field = key if key in KEYWORD_FIELDS | TEXT_FIELDS else EXTRAS_PREFIX + key
        clauses.extend(f"{field}:{_quoted(v)}" for v in _values(value))
    return " AND ".join(f"({c})" for c in clauses)


async def _parameters(request: Request) -> dict[str, Any]:
    """The query string (GET) or the JSON object (POST), merged with ``qjson``."""
    if request.method == "POST":
        body = await request.body()
        data = decode_json_object(body) if body.strip() else {}
    else:
        data = multi_dict(list(request.query_params.multi_items()))
    qjson = data.pop("qjson", None)
    if qjson:
        data.update(qjson if isinstance(qjson, dict) else decode_json_object(str(qjson)))
    return data


def _datasets(cat: Catalog, data: dict[str, Any], version: int) -> dict[str, Any]:
    params = Params(data)
    order = params.string("order_by")
    found = cat.search.datasets(
        _query(data),
        sort=None if order in (None, "", "rank") else f"{order} asc",
        offset=params.integer("offset", 0),
        limit=params.integer("limit", 20, maximum=ROWS_MAX),
    )
    if params.boolean("all_fields"):
        results: list[Any] = package_dicts(cat, found.results)
    elif version == 1:
        results = [ds.name for ds in found.results]
    else:
        results = [ds.id for ds in found.results]
    return {"count": found.count, "results": results}


def _resources(cat: Catalog, data: dict[str, Any], version: int) -> dict[str, Any]:
    params = Params(data)
    terms = [f"{field}:{value}" for field in _RESOURCE_FIELDS for value in _values(data.get(field))]
    if not terms:
        raise BadRequest(f"Bad request: give at least one of {', '.join(_RESOURCE_FIELDS)}")
    found = cat.search.resources(
        terms, offset=params.integer("offset", 0), limit=params.integer("limit", 20)
    )
    if params.boolean("all_fields"):
        return {"count": found.count, "results": [resource_to_dict(r) for r in found.results]}
    return {"count": found.count, "results": [r.id for r in found.results]}


def _tag_counts(cat: Catalog, data: dict[str, Any], version: int) -> list[list[Any]]:
    return [[name, count] for name, count in cat.tags.counts()]


def _message(exc: OpenCatalogError) -> str:
    if isinstance(exc, ValidationFailed):
        return "; ".join(
            f"{field}: {', '.join(map(str, messages)) if isinstance(messages, list) else messages}"
            for field, messages in exc.errors.items()
        )
    return exc.message


def _endpoint(
    search: Callable[[Catalog, dict[str, Any], int], Any], version: int
) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        try:
            data = await _parameters(request)
        except BadRequest as exc:
            return json_response(str(exc), 400)
        callback = data.pop("callback", None) if request.method == "GET" else None
        data.pop("callback", None)
        catalog: Catalog = request.app.state.catalog

        def call() -> Any:
            return search(catalog.anonymous(), data, version)

        try:
            result = await run_in_threadpool(call)
        except BadRequest as exc:
            return json_response(str(exc), 400)
        except (SearchQueryError, ValidationFailed) as exc:
            return json_response(f"Bad request: {_message(exc)}", 400)
        except Exception as exc:  # the same answers as the Action API's, without envelope
            status, error = error_object(exc)
            return json_response(error, status)
        return jsonp_or_json(result, callback if isinstance(callback, str) else None)

    return endpoint


def legacy_search_routes() -> list[Route]:
    """The legacy Search API's routes."""
    both = ["GET", "POST"]
    routes = []
    for prefix, version in (("/api", 1), ("/api/1", 1), ("/api/2", 2)):
        routes += [
            Route(f"{prefix}/search/dataset", _endpoint(_datasets, version), methods=both),
            Route(f"{prefix}/search/resource", _endpoint(_resources, version), methods=both),
            Route(f"{prefix}/tag_counts", _endpoint(_tag_counts, version), methods=["GET"]),
        ]
    return routes
