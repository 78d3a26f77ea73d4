"""The ASGI application: ``create_app(catalog)`` serves a catalog over HTTP.

Needs the ``server`` extra (``pip install 'opencatalog[server]'``: Starlette, uvicorn,
python-multipart). Mount it in any ASGI server or application::

    from opencatalog import open_catalog
    from opencatalog.api import create_app

    app = create_app(open_catalog("./my-catalog"), close_catalog=True)
    # uvicorn module:app

The routes served so far are those of resource files (``/api/v1``, Kukan style; errors as RFC
7807 problems, see :mod:`opencatalog.api.errors`; callers identified by API token, see
:mod:`opencatalog.api.auth`):

=======================================================  ==========================================
``POST /api/v1/resources/{id}/upload``                   proxied upload (multipart field ``file``)
``POST /api/v1/resources/{id}/upload-url``               a signed upload URL (JSON body, optional)
``PUT|POST /api/v1/uploads/{token}``                     upload the raw bytes to a signed URL
``POST /api/v1/resources/{id}/upload-complete``          confirm an upload, enqueue the pipeline
``GET /api/v1/resources/{id}/download``                  302 to an external link, or the file
``GET /dataset/{id}/resource/{rid}/download/{name}``     the same (the ``url`` of uploads)
``GET /api/v1/resources/{id}/preview``                   the preview; ``Range`` gives 206 or 416
``GET /api/v1/resources/{id}/text``                      extracted text (``?max_chars=``)
=======================================================  ==========================================

Service calls block (database, blob store), so every one runs in a worker thread; request
bodies are streamed to the blob store from that thread, never held in memory whole. File
responses carry ``X-Content-Type-Options: nosniff`` and ``Content-Security-Policy: sandbox``;
downloads are always attachments.
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import anyio.from_thread
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import (
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route
from starlette.types import Message

from opencatalog.errors import OpenCatalogError, ValidationFailed
from opencatalog.ports.blobs import BlobTooLarge
from opencatalog.serialization import resource_to_dict
from opencatalog.services.catalog import Catalog
from opencatalog.services.files import (
    TEXT_LIMIT,
    FileContent,
    RangeNotSatisfiable,
    UploadResult,
    safe_filename,
)

from .action import action_routes
from .auth import catalog_for
from .errors import handle_catalog_error, handle_http_error, handle_unexpected, problem
from .legacy_search import legacy_search_routes
from .util import util_routes

__all__ = ["create_app"]

#: Room for the multipart framing around a file of ``upload_max_bytes``.
MULTIPART_OVERHEAD = 64 * 1024

_FILE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox",
}


# -- plumbing ------------------------------------------------------------------------------


def _catalog(request: Request) -> Catalog:
    catalog: Catalog = request.app.state.catalog
    return catalog


async def _caller(request: Request) -> Catalog:
    """The catalog acting for whoever the request's token names (anonymous without one)."""
    return await run_in_threadpool(catalog_for, _catalog(request), request.headers)


class _BodyReader(io.RawIOBase):
    """Blocking ``read`` over an ASGI request body, for the worker thread a service call runs
    in (each chunk is fetched from the event loop)."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = bytearray()
        self._done = False

    def readable(self) -> bool:
        return True

    async def _next(self) -> bytes:
        return await self._chunks.__anext__()

    def read(self, size: int | None = -1) -> bytes:
        while not self._done and (size is None or size < 0 or len(self._buffer) < size):
            try:
                chunk = anyio.from_thread.run(self._next)
            except StopAsyncIteration:
                self._done = True
                break
            self._buffer += chunk
        if size is None or size < 0:
            size = len(self._buffer)
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data


def _declared_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None:
        return None
    try:
        length = int(value)
    except ValueError:
        raise ValidationFailed({"Content-Length": ["Not a number"]}) from None
    if length < 0:
        raise ValidationFailed({"Content-Length": ["Not a number"]})
    return length


def _content_disposition(filename: str | None) -> str:
    """``attachment`` with an ASCII ``filename`` and the exact ``filename*`` (RFC 6266)."""
    name = safe_filename(filename, default="download")
    fallback = name.encode("ascii", "replace").decode("ascii").replace("?", "_")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def _file_response(
    content: FileContent, *, headers: dict[str, str], media_type: str | None = None
) -> Response:
    all_headers = {**_FILE_HEADERS, **headers, "Content-Length": str(content.length)}
    if content.content_range:
        all_headers["Content-Range"] = content.content_range
    if content.sha256:
        all_headers["ETag"] = f'"{content.sha256}"'
    return StreamingResponse(
        content.chunks(),
        status_code=content.status,
        media_type=media_type or content.mimetype,
        headers=all_headers,
        background=BackgroundTask(content.close),
    )


def _upload_answer(result: UploadResult) -> Response:
    return JSONResponse(
        {
            "pipeline_status": result.record.status.value,
            "job_id": result.job.id if result.job is not None else result.record.job_id,
            "resource": resource_to_dict(result.resource),
        }
    )


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise ValidationFailed({"body": ["Not valid JSON"]}) from None
    if not isinstance(data, dict):
        raise ValidationFailed({"body": ["Must be a JSON object"]})
    return data


# -- routes --------------------------------------------------------------------------------


async def upload(request: Request) -> Response:
    """``POST /api/v1/resources/{id}/upload``: multipart/form-data with the file in ``file``."""
    caller = await _caller(request)
    files = caller.files
    limit = files.upload_max_bytes
    declared = _declared_length(request)
    if declared is not None and declared > limit + MULTIPART_OVERHEAD:
        raise BlobTooLarge(limit)
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise ValidationFailed({"file": ["Send the file as multipart/form-data in 'file'"]})
    seen = 0
    receive = request.receive

    async def capped_receive() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit + MULTIPART_OVERHEAD:
                raise BlobTooLarge(limit)
        return message

    capped = Request(request.scope, capped_receive)
    async with capped.form(max_files=1, max_fields=20) as form:
        part = form.get("file")
        if not isinstance(part, UploadFile):
            raise ValidationFailed({"file": ["Missing value"]})
        result = await run_in_threadpool(
            files.upload,
            request.path_params["id"],
            part.file,
            filename=part.filename,
            content_type=part.content_type,
        )
    return _upload_answer(result)


async def upload_url(request: Request) -> Response:
    """``POST /api/v1/resources/{id}/upload-url``: body ``{filename?, content_type?,
    max_size?, expires_in? (seconds, at most 900)}``."""
    caller = await _caller(request)
    body = await _json_body(request)
    options: dict[str, Any] = {}
    for key in ("filename", "content_type", "max_size"):
        if body.get(key) is not None:
            options[key] = body[key]
    if body.get("expires_in") is not None:
        seconds = body["expires_in"]
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise ValidationFailed({"expires_in": ["Must be a number of seconds"]})
        options["expires_in"] = timedelta(seconds=seconds)
    issued = await run_in_threadpool(
        caller.files.create_upload_url, request.path_params["id"], **options
    )
    base = str(request.base_url).rstrip("/")
    return JSONResponse(
        {
            "upload_url": base + issued.url,
            "method": issued.method,
            "expires_at": issued.expires_at.isoformat().replace("+00:00", "Z"),
            "max_size": issued.max_size,
        }
    )


async def signed_upload(request: Request) -> Response:
    """``PUT|POST /api/v1/uploads/{token}``: the raw bytes of the file as the body."""
    files = _catalog(request).files
    declared = _declared_length(request)
    if declared is not None and declared > files.upload_max_bytes:
        raise BlobTooLarge(files.upload_max_bytes)
    reader = _BodyReader(request.stream().__aiter__())
    result = await run_in_threadpool(
        files.accept_signed_upload,
        request.path_params["token"],
        reader,  # type: ignore[arg-type]
        content_type=request.headers.get("content-type"),
    )
    return _upload_answer(result)


async def upload_complete(request: Request) -> Response:
    """``POST /api/v1/resources/{id}/upload-complete``."""
    caller = await _caller(request)
    result = await run_in_threadpool(caller.files.complete_upload, request.path_params["id"])
    return _upload_answer(result)


async def download(request: Request) -> Response:
    """``GET /api/v1/resources/{id}/download`` (and the ``/dataset/.../download/...``
    permalink): a 302 for external links, else the stored file as an attachment."""
    caller = await _caller(request)
    rid = request.path_params.get("id") or request.path_params["resource_id"]
    found = await run_in_threadpool(caller.files.download, rid)
    if found.redirect is not None:
        return RedirectResponse(
            found.redirect, status_code=302, headers={"Cache-Control": "private, max-age=0"}
        )
    assert found.content is not None
    content = found.content
    return _file_response(
        content,
        headers={
            "Content-Disposition": _content_disposition(content.filename),
            "Cache-Control": "private, max-age=0",
        },
    )


async def preview(request: Request) -> Response:
    """``GET /api/v1/resources/{id}/preview``, with optional ``Range: bytes=...``."""
    caller = await _caller(request)
    found = await run_in_threadpool(
        caller.files.preview, request.path_params["id"], request.headers.get("range")
    )
    if isinstance(found, RangeNotSatisfiable):
        return problem(
            416,
            "Range not satisfiable",
            headers={"Content-Range": found.content_range, "Accept-Ranges": "bytes"},
        )
    return _file_response(
        found,
        headers={"Accept-Ranges": "bytes", "Cache-Control": "private, max-age=300"},
    )


async def text(request: Request) -> Response:
    """``GET /api/v1/resources/{id}/text?max_chars=N`` (default and ceiling 1 Mi chars)."""
    caller = await _caller(request)
    raw = request.query_params.get("max_chars")
    max_chars = TEXT_LIMIT
    if raw is not None:
        try:
            max_chars = int(raw)
        except ValueError:
            raise ValidationFailed({"max_chars": ["Must be an integer"]}) from None
    found = await run_in_threadpool(caller.files.text, request.path_params["id"], max_chars)
    return PlainTextResponse(
        found.text,
        media_type="text/plain; charset=utf-8",
        headers={
            **_FILE_HEADERS,
            "X-Truncated": "true" if found.truncated else "false",
            "Cache-Control": "private, max-age=300",
        },
    )


# -- the application -----------------------------------------------------------------------


def _guard(endpoint: Callable[[Request], Any]) -> Callable[[Request], Any]:
    """Answer a client that went away mid-body without a traceback."""

    async def guarded(request: Request) -> Response:
        try:
            response: Response = await endpoint(request)
        except ClientDisconnect:
            return problem(400, "The client closed the connection")
        return response

    guarded.__name__ = endpoint.__name__
    guarded.__doc__ = endpoint.__doc__
    return guarded


def routes() -> list[Route]:
    """The routes of resource files (for mounting into another application)."""
    v1 = "/api/v1"
    return [
        Route(f"{v1}/resources/{{id}}/upload", _guard(upload), methods=["POST"]),
        Route(f"{v1}/resources/{{id}}/upload-url", _guard(upload_url), methods=["POST"]),
        Route(f"{v1}/resources/{{id}}/upload-complete", _guard(upload_complete), methods=["POST"]),
        Route(f"{v1}/uploads/{{token}}", _guard(signed_upload), methods=["PUT", "POST"]),
        Route(f"{v1}/resources/{{id}}/download", _guard(download), methods=["GET"]),
        Route(f"{v1}/resources/{{id}}/preview", _guard(preview), methods=["GET"]),
        Route(f"{v1}/resources/{{id}}/text", _guard(text), methods=["GET"]),
        Route(
            "/dataset/{dataset_id}/resource/{resource_id}/download/{filename}",
            _guard(download),
            methods=["GET"],
        ),
    ]


def create_app(catalog: Catalog, *, close_catalog: bool = False, debug: bool = False) -> Starlette:
    """An ASGI application serving ``catalog``.

    ``close_catalog`` closes the catalog when the application shuts down (use it when the
    application owns the catalog). Errors are answered through :mod:`opencatalog.api.errors`.
    """

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if close_catalog:
                await run_in_threadpool(catalog.close)

    app = Starlette(
        debug=debug,
        routes=[*routes(), *action_routes(), *util_routes(), *legacy_search_routes()],
        lifespan=lifespan,
        exception_handlers={
            OpenCatalogError: handle_catalog_error,
            HTTPException: handle_http_error,
            Exception: handle_unexpected,
        },
    )
    app.state.catalog = catalog
    return app
