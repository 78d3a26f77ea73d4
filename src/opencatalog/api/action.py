"""The HTTP layer of CKAN's Action API: ``/api/3/action/<name>`` and ``/api/action/<name>``.

What a CKAN client sees, as CKAN answers it (``ckan/views/api.py``):

* GET and POST. An action with side effects refuses GET with 400 and the JSON string
  ``"Bad request: JSON Error: Invalid request. Please use POST method for your request"``;
  an unknown name gives 400 ``"Bad request: Action name not known: <name>"``.
* Parameters: on GET the query string (a key given once is a string, repeated a list); on
  POST a JSON object, a form (repeated keys a list; a form whose only field has the value
  ``""`` or ``"1"`` is the old ``curl -d '{...}'`` idiom and its key is read as JSON), or a
  multipart form whose file parts are passed under their field names; an empty body is
  ``{}``. A POST to a GET-able action with a query string reads the query string. A body that
  is not JSON, or JSON that is not an object, gives 400 with a ``"Bad request: JSON Error:
  ..."`` string.
* Success: ``{"help": <URL of help_show for the action>, "success": true, "result": ...}``.
  Errors: the same envelope with ``"success": false`` and an ``error`` object whose
  ``__type`` and status come from :data:`~opencatalog.api.errors.ERROR_TABLE` (404 ``Not Found
  Error``, 403 ``Authorization Error``, 409 ``Validation Error`` carrying the field errors, 400
  ``Search Query Error``; anything unexpected 500 ``Internal Server Error`` with nothing of the
  failure in the body, only a logged incident id).
* JSONP: a GET with ``callback`` answers ``<callback>(<json>);`` as
  ``application/javascript`` when it succeeds, and runs as an anonymous caller. A callback
  that is not a plain JavaScript name (letters, digits, ``_``, ``$``, ``.``) is not echoed:
  the answer is plain JSON.
* The caller's API token comes in ``Authorization`` (raw, or ``Bearer``) or
  ``X-CKAN-API-Key``; a token that does not resolve makes the request anonymous, as in CKAN.

``/api``, ``/api/1``, ``/api/2`` and ``/api/3`` answer ``{"version": N}``.
"""

from __future__ import annotations

import enum
import html
import json
import logging
import re
import secrets
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from opencatalog.errors import (
    AlreadyExists,
    NotAuthorized,
    NotFound,
    OpenCatalogError,
    ValidationFailed,
)
from opencatalog.services.catalog import Catalog

from .actions import ACTIONS, Action
from .actions.params import Params
from .auth import token_from_headers
from .errors import row_for

__all__ = [
    "BadRequest",
    "action_routes",
    "caller_catalog",
    "decode_json_object",
    "error_object",
    "json_response",
    "jsonp_or_json",
    "multi_dict",
]

log = logging.getLogger("opencatalog.api")

JSON_UTF8 = "application/json;charset=utf-8"
JAVASCRIPT_UTF8 = "application/javascript;charset=utf-8"
_CALLBACK = re.compile(r"^[A-Za-z_$][\w$.]{0,127}$")


class BadRequest(Exception):
    """A request CKAN refuses before the action runs: 400 with a JSON string body."""


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _dumps(body: Any) -> bytes:
    return json.dumps(body, default=_json_default, ensure_ascii=False).encode("utf-8")


def json_response(body: Any, status: int = 200) -> Response:
    """``body`` as CKAN's JSON answer (``application/json;charset=utf-8``)."""
    return Response(_dumps(body), status_code=status, media_type=JSON_UTF8)


def multi_dict(items: list[tuple[str, Any]]) -> dict[str, Any]:
    """Pairs to a dict: a key given once maps to its value, a repeated key to a list."""
    out: dict[str, Any] = {}
    for key, value in items:
        if key in out:
            if isinstance(out[key], list):
                out[key].append(value)
            else:
                out[key] = [out[key], value]
        else:
            out[key] = value
    return out


def decode_json_object(text: str | bytes) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise BadRequest(
            f"Bad request: JSON Error: Error decoding JSON data. Error: {exc}"
        ) from None
    if not isinstance(data, dict):
        raise BadRequest(
            f"Bad request: JSON Error: Request data JSON decoded to {data!r} but it needs to be "
            "a dictionary."
        )
    return data


async def _request_data(request: Request, spec: Action) -> dict[str, Any]:
    if request.method == "GET" or (spec.get and request.query_params):
        return multi_dict(list(request.query_params.multi_items()))
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        form = await request.form()
        items = list(form.multi_items())
        if (
            ctype == "application/x-www-form-urlencoded"
            and len(items) == 1
            and items[0][1] in ("", "1")
        ):
            return decode_json_object(items[0][0])
        return multi_dict(items)
    body = await request.body()
    if not body.strip():
        return {}
    return decode_json_object(body)


def caller_catalog(catalog: Catalog, headers: Mapping[str, str], *, anonymous: bool) -> Catalog:
    """The catalog view acting for the caller; an unknown token means anonymous (blocking)."""
    token = None if anonymous else token_from_headers(headers)
    if token is None:
        return catalog.anonymous()
    actor = catalog.tokens.authenticate(token)
    return catalog.anonymous() if actor is None else catalog.as_actor(actor)


def _detail(exc: OpenCatalogError, prefix: str) -> str:
    detail = str(getattr(exc, "message", "") or "")
    return f"{prefix}: {detail}" if detail else prefix


def error_object(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """CKAN's status and ``error`` object for an exception."""
    row = row_for(exc)
    if isinstance(exc, ValidationFailed | AlreadyExists) and getattr(exc, "errors", None):
        return row.ckan_status, {**exc.errors, "__type": row.ckan_type}
    if isinstance(exc, NotFound):
        return row.ckan_status, {"__type": row.ckan_type, "message": _detail(exc, "Not found")}
    if isinstance(exc, NotAuthorized):
        message = _detail(exc, "Access denied")
        return row.ckan_status, {"__type": row.ckan_type, "message": message}
    if row.ckan_status >= 500 or not isinstance(exc, OpenCatalogError):
        incident = secrets.token_hex(8)
        log.error("action failed, incident %s", incident, exc_info=exc)
        return row.ckan_status, {
            "__type": row.ckan_type,
            "message": "Internal Server Error",
            "incident": incident,
        }
    return row.ckan_status, {"__type": row.ckan_type, "message": exc.message}


async def action_endpoint(request: Request) -> Response:
    name = request.path_params["name"]
    spec = ACTIONS.get(name)
    if spec is None:
        return json_response(f"Bad request: Action name not known: {name}", 400)
    if request.method == "GET" and not spec.get:
        return json_response(
            "Bad request: JSON Error: Invalid request. Please use POST method for your request",
            400,
        )
    try:
        data = await _request_data(request, spec)
    except BadRequest as exc:
        return json_response(str(exc), 400)
    callback = request.query_params.get("callback") if request.method == "GET" else None
    if callback is not None:
        data.pop("callback", None)
    files = [v for v in data.values() if isinstance(v, UploadFile)]
    help_url = f"{request.url_for('ckan_action', name='help_show')}?name={name}"
    catalog: Catalog = request.app.state.catalog
    params = Params(data)

    def call() -> Any:
        cat = caller_catalog(catalog, request.headers, anonymous=callback is not None)
        return spec.function(cat, params)

    try:
        result = await run_in_threadpool(call)
    except Exception as exc:  # every failure answers in the envelope
        status, error = error_object(exc)
        return json_response({"help": help_url, "success": False, "error": error}, status)
    finally:
        for upload in files:
            await upload.close()
    return jsonp_or_json({"help": help_url, "success": True, "result": result}, callback)


def jsonp_or_json(body: Any, callback: str | None) -> Response:
    """A successful answer: ``<callback>(<json>);`` for a plain JavaScript name, else JSON."""
    if callback is not None and _CALLBACK.match(callback):
        text = f"{html.escape(callback)}({_dumps(body).decode('utf-8')});"
        return Response(text.encode("utf-8"), media_type=JAVASCRIPT_UTF8)
    return json_response(body)


def _version(number: int) -> Any:
    async def endpoint(request: Request) -> Response:
        return JSONResponse({"version": number})

    return endpoint


def action_routes() -> list[Route]:
    """The Action API's routes and the API version routes."""
    return [
        Route("/api/3/action/{name}", action_endpoint, methods=["GET", "POST"], name="ckan_action"),
        Route("/api/action/{name}", action_endpoint, methods=["GET", "POST"]),
        Route("/api", _version(1), methods=["GET"]),
        *(Route(f"/api/{n}", _version(n), methods=["GET"]) for n in (1, 2, 3)),
    ]
