"""CKAN's Util API: the autocomplete helpers of ``/api/util/...`` (and ``/api/2/util/...``).

GET only, answered by the same code as the matching actions (so with the same visibility and
permissions), in CKAN's shapes:

==============================================  ===============================================
``dataset/autocomplete?incomplete=&limit=10``   ``{"ResultSet": {"Result": [{"name", "title",
                                                "match_field", "match_displayed"}]}}``
``tag/autocomplete?incomplete=&limit=10``       ``{"ResultSet": {"Result": [{"Name": ...}]}}``
(and ``vocabulary_id``)
``resource/format_autocomplete?incomplete=``    ``{"ResultSet": {"Result": [{"Format": ...}]}}``
(``limit=5``)
``user/autocomplete?q=&limit=20``               a list of ``{"id", "name", "fullname"}``
``group/autocomplete?q=&limit=20``              a list of ``{"id", "name", "title"}``
``organization/autocomplete?q=&limit=20``       the same for organizations
==============================================  ===============================================

An empty ``incomplete`` or ``q`` answers the empty result without a lookup. ``callback`` makes
it JSONP (run anonymously), as on the Action API. A failure answers CKAN's ``error`` object
with its status (a parameter that is not a number: 409 ``Validation Error``; user
autocomplete without a token: 403).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from opencatalog.services.catalog import Catalog

from .action import caller_catalog, error_object, json_response, jsonp_or_json
from .actions import ACTIONS
from .actions.params import Params

__all__ = ["util_routes"]


def _result_set(key: str | None) -> Callable[[Any], Any]:
    def shape(found: Any) -> Any:
        rows = found if key is None else [{key: value} for value in found]
        return {"ResultSet": {"Result": rows}}

    return shape


def _plain(found: Any) -> Any:
    return found


#: path -> (the query parameter with the text, the action, its parameter, default limit,
#: the shape of the answer).
_UTILS: dict[str, tuple[str, str, str, int, Callable[[Any], Any]]] = {
    "dataset/autocomplete": ("incomplete", "package_autocomplete", "q", 10, _result_set(None)),
    "tag/autocomplete": ("incomplete", "tag_autocomplete", "query", 10, _result_set("Name")),
    "resource/format_autocomplete": (
        "incomplete",
        "format_autocomplete",
        "q",
        5,
        _result_set("Format"),
    ),
    "user/autocomplete": ("q", "user_autocomplete", "q", 20, _plain),
    "group/autocomplete": ("q", "group_autocomplete", "q", 20, _plain),
    "organization/autocomplete": ("q", "organization_autocomplete", "q", 20, _plain),
}


def _endpoint(path: str) -> Callable[[Request], Any]:
    source, action_name, target, default_limit, shape = _UTILS[path]

    async def endpoint(request: Request) -> Response:
        query = request.query_params
        callback = query.get("callback")
        text = (query.get(source) or "").strip()
        if not text:
            return jsonp_or_json(shape([]), callback)
        data: dict[str, Any] = {target: text, "limit": query.get("limit") or default_limit}
        if path == "tag/autocomplete" and query.get("vocabulary_id"):
            data["vocabulary_id"] = query["vocabulary_id"]
        catalog: Catalog = request.app.state.catalog
        function = ACTIONS[action_name].function

        def call() -> Any:
            cat = caller_catalog(catalog, request.headers, anonymous=callback is not None)
            return function(cat, Params(data))

        try:
            found = await run_in_threadpool(call)
        except Exception as exc:  # answered as CKAN's error object
            status, error = error_object(exc)
            return json_response(error, status)
        return jsonp_or_json(shape(found), callback)

    return endpoint


def util_routes() -> list[Route]:
    """The Util API's autocomplete routes, under ``/api/util`` and ``/api/2/util``."""
    return [
        Route(f"{prefix}/{path}", _endpoint(path), methods=["GET"])
        for prefix in ("/api/util", "/api/2/util")
        for path in _UTILS
    ]
