"""The one table that turns catalog errors into HTTP answers.

Every exception the services raise on purpose derives from
:class:`~opencatalog.errors.OpenCatalogError`; :data:`ERROR_TABLE` gives, for each class, the
status of the Kukan-style REST API (``/api/v1``, RFC 7807 ``application/problem+json``), the
status and ``__type`` of the CKAN action API, and the machine code that the problem's
``title`` carries. The first row whose class matches wins, so subclasses come first.

Problem bodies look like::

    {"type": "about:blank", "title": "NOT_FOUND", "status": 404,
     "detail": "Resource not found", "errors": {...}}

``errors`` (field name to messages) appears for validation errors only. Unexpected
exceptions give a 500 with a generic detail and a correlation ``id`` that is also logged with
the traceback; no message, path or driver text of the failure reaches the client.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from typing import Any

from attrs import frozen
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from opencatalog.errors import (
    AlreadyExists,
    BackendError,
    ConfigurationError,
    Conflict,
    NotAuthorized,
    NotFound,
    OpenCatalogError,
    SearchQueryError,
    ValidationFailed,
)
from opencatalog.ports.blobs import BlobTooLarge

__all__ = ["ERROR_TABLE", "PROBLEM_JSON", "ErrorRow", "problem", "problem_for", "row_for"]

log = logging.getLogger("opencatalog.api")

PROBLEM_JSON = "application/problem+json"


@frozen
class ErrorRow:
    """How one error class is answered: ``status`` on ``/api/v1``, ``code`` (the problem
    title), and ``ckan_status``/``ckan_type`` on the CKAN action API."""

    error: type[BaseException]
    status: int
    code: str
    ckan_status: int
    ckan_type: str


ERROR_TABLE: tuple[ErrorRow, ...] = (
    ErrorRow(BlobTooLarge, 413, "PAYLOAD_TOO_LARGE", 413, "Validation Error"),
    ErrorRow(NotFound, 404, "NOT_FOUND", 404, "Not Found Error"),
    ErrorRow(NotAuthorized, 403, "FORBIDDEN", 403, "Authorization Error"),
    ErrorRow(AlreadyExists, 409, "CONFLICT", 409, "Validation Error"),
    ErrorRow(Conflict, 409, "CONFLICT", 409, "Validation Error"),
    ErrorRow(ValidationFailed, 400, "VALIDATION_ERROR", 409, "Validation Error"),
    ErrorRow(SearchQueryError, 400, "SEARCH_QUERY_ERROR", 400, "Search Query Error"),
    ErrorRow(BackendError, 503, "SERVICE_UNAVAILABLE", 503, "Internal Server Error"),
    ErrorRow(ConfigurationError, 501, "NOT_CONFIGURED", 501, "Internal Server Error"),
    ErrorRow(OpenCatalogError, 500, "INTERNAL_SERVER_ERROR", 500, "Internal Server Error"),
)
"""Error class to answer; the first matching row wins (subclasses first)."""

_UNEXPECTED = ErrorRow(Exception, 500, "INTERNAL_SERVER_ERROR", 500, "Internal Server Error")

_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    416: "RANGE_NOT_SATISFIABLE",
}


def row_for(exc: BaseException) -> ErrorRow:
    """The table row answering ``exc`` (a generic 500 row for anything unexpected)."""
    for row in ERROR_TABLE:
        if isinstance(exc, row.error):
            return row
    return _UNEXPECTED


def problem(
    status: int,
    detail: str,
    *,
    code: str | None = None,
    errors: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> Response:
    """An ``application/problem+json`` response."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": code or _HTTP_CODES.get(status, "ERROR"),
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = dict(errors)
    body.update(extra)
    return JSONResponse(
        body, status_code=status, headers=dict(headers or {}), media_type=PROBLEM_JSON
    )


def problem_for(exc: BaseException) -> Response:
    """The problem response for an exception, through :data:`ERROR_TABLE`."""
    row = row_for(exc)
    if row is _UNEXPECTED or row.error is OpenCatalogError:
        incident = secrets.token_hex(8)
        log.error("unexpected error %s", incident, exc_info=exc)
        return problem(500, "An unexpected error occurred", code=row.code, id=incident)
    detail = getattr(exc, "message", "") or row.code
    if isinstance(exc, BackendError | ConfigurationError):
        log.warning("%s: %s", type(exc).__name__, detail)
    errors = exc.errors if isinstance(exc, ValidationFailed | AlreadyExists) else None
    return problem(row.status, detail, code=row.code, errors=errors)


async def handle_catalog_error(request: Request, exc: Exception) -> Response:
    return problem_for(exc)


async def handle_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else "Error"
    return problem(exc.status_code, detail, headers=exc.headers)


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    return problem_for(exc)
