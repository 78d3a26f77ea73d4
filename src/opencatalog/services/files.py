"""Resource files: uploads (proxied and by signed URL), downloads, text, previews, garbage.

``catalog.files`` is the use-case layer over the blob store (:mod:`opencatalog.ports.blobs`)
and the per-resource file records (:class:`~opencatalog.domain.files.ResourceFile`).

Uploads. The bytes go to the blob store first (streamed, capped at ``upload_max_bytes``, under
their content address); then one unit of work points the resource at them: ``url_type`` is
``upload``, ``url`` the stable download path ``/dataset/<dataset id>/resource/<resource
id>/download/<file name>``, ``size``/``hash``/``mimetype`` describe the bytes, the file record
names the blob, and the ``pipeline`` job is enqueued in the same transaction. Client file
names are display data only: they are reduced to a safe name (:func:`safe_filename`) and never
become storage paths. A failed or oversized upload leaves no blob behind; a blob whose metadata
commit failed is an orphan that :meth:`FileService.collect_garbage` removes after a grace
period.

Signed upload URLs. :meth:`FileService.create_upload_url` issues a short-lived (at most 15
minutes) token for one resource, signed with HMAC-SHA256 under the catalog's secret key. The
token binds the resource id, the byte limit, the expiry, the declared file name and content
type, the user who asked (whose rights are checked again when the bytes arrive) and the
resource's current version, so it is single-use: the upload it makes changes the resource,
which retires the token. The URL is the path of the HTTP edge's upload route
(``/api/v1/uploads/<token>``); the bytes are PUT (or POSTed) there and
:meth:`FileService.accept_signed_upload` does what a proxied upload does. Content-addressed
keys are only known once the bytes are hashed, so uploads never go straight to an object
store, S3 included: every store uses this route.

Reading. :meth:`FileService.download` gives a redirect for external links (``http``/``https``
only) or the stored bytes; :meth:`FileService.text` the extracted text (bounded);
:meth:`FileService.preview` the pipeline's preview with single-range support. All three need
read permission on the dataset: files of a private dataset do not exist for outsiders.

Everything here is stdlib + attrs: the HTTP edge (``opencatalog.api``) turns these values into
responses.
"""

from __future__ import annotations

import base64
import codecs
import contextlib
import hashlib
import hmac
import io
import json
import mimetypes
import os
import re
import secrets
import threading
import unicodedata
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Self
from urllib.parse import quote, unquote, urlsplit

import attrs
from attrs import field, frozen

from opencatalog.domain import rules
from opencatalog.domain.files import PipelineStatus, ResourceFile
from opencatalog.domain.jobs import Job
from opencatalog.domain.model import Dataset, Resource
from opencatalog.domain.permissions import Action, Role
from opencatalog.errors import ConfigurationError, NotAuthorized, NotFound, ValidationFailed
from opencatalog.ports.blobs import MAX_RANGE_BYTES, ORPHAN_GRACE, BlobStore

from ._base import Call, Principal
from .datasets import _DatasetWriter

__all__ = [
    "DEFAULT_UPLOAD_MAX_BYTES",
    "MAX_UPLOAD_URL_LIFETIME",
    "PIPELINE_JOB",
    "PREVIEW_CHUNK",
    "TEXT_LIMIT",
    "UPLOAD_ROUTE",
    "Download",
    "FileContent",
    "FileService",
    "GarbageReport",
    "RangeNotSatisfiable",
    "TextContent",
    "UploadResult",
    "UploadUrl",
    "download_path",
    "parse_range",
    "read_or_create_secret_key",
    "safe_filename",
]

DEFAULT_UPLOAD_MAX_BYTES = 100 * 1024 * 1024
"""The largest upload a catalog accepts unless ``upload_max_bytes`` says otherwise: 100 MiB."""

MAX_UPLOAD_URL_LIFETIME = timedelta(minutes=15)
"""The longest a signed upload URL may stay valid."""

DEFAULT_UPLOAD_URL_LIFETIME = timedelta(minutes=10)

TEXT_LIMIT = 1024 * 1024
"""The most characters :meth:`FileService.text` returns (and its default): 1 Mi."""

PREVIEW_CHUNK = 1024 * 1024
"""An open-ended range (``bytes=N-``) of a preview returns at most this many bytes: 1 MiB."""

PIPELINE_JOB = "pipeline"
"""The job kind that processes a resource's file (enqueued by every upload)."""

UPLOAD_ROUTE = "/api/v1/uploads"
"""The HTTP edge's route for signed uploads; a signed URL is ``<UPLOAD_ROUTE>/<token>``."""

SECRET_KEY_FILE = "secret_key"
"""The file holding a folder catalog's secret key (created with mode 0600)."""

_MAX_FILENAME = 100
_MAX_TOKEN = 4096
_TOKEN_CONTEXT = b"opencatalog upload v1\x00"
_SYSTEM_SUBJECT = "@system"
_MIMETYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
_RANGE = re.compile(r"bytes=(\d*)-(\d*)", re.IGNORECASE)

# -- pure helpers -------------------------------------------------------------------------


def safe_filename(name: object, *, default: str = "file") -> str:
    """A file name that is safe to show, to put in a URL path and in a header.

    Only the last path segment of ``name`` is kept (``/`` and ``\\`` both separate); it is
    NFKC-normalised; control, format and separator characters go; anything but letters,
    digits, ``.``, ``-`` and ``_`` becomes ``-``; leading dots and dashes are dropped (no hidden
    or option-like names); the name is cut to 100 characters, keeping a short extension.
    Nothing usable left (``..``, an empty string, a non-string) gives ``default``.
    """
    if not isinstance(name, str):
        return default
    text = unicodedata.normalize("NFKC", name)
    text = re.split(r"[/\\\u2215\u2044\u29f8\uff0f\uff3c]", text)[-1]
    out: list[str] = []
    for char in text:
        category = unicodedata.category(char)
        if category[0] in "CZ":
            out.append("-" if char == " " else "")
        elif char.isalnum() or char in "._-":
            out.append(char)
        else:
            out.append("-")
    cleaned = re.sub(r"-{2,}", "-", "".join(out)).lstrip(".-").rstrip("-")
    cleaned = re.sub(r"-*\.+-*", ".", cleaned).rstrip(".")
    if len(cleaned) > _MAX_FILENAME:
        stem, dot, ext = cleaned.rpartition(".")
        if dot and stem and 0 < len(ext) <= 16:
            cleaned = stem[: _MAX_FILENAME - len(ext) - 1].rstrip(".-") + "." + ext
        else:
            cleaned = cleaned[:_MAX_FILENAME]
    return cleaned or default


def download_path(dataset_id: str, resource_id: str, filename: str) -> str:
    """The stable download path of an uploaded file (CKAN's permalink shape):
    ``/dataset/<dataset id>/resource/<resource id>/download/<file name>``, the name
    percent-encoded."""
    name = quote(safe_filename(filename), safe="")
    return f"/dataset/{dataset_id}/resource/{resource_id}/download/{name}"


def _filename_from_url(url: str) -> str | None:
    if not url:
        return None
    last = urlsplit(url).path.rsplit("/", 1)[-1]
    return safe_filename(unquote(last), default="") or None


def _clean_mimetype(value: object) -> str | None:
    """A bare ``type/subtype`` (lower case, parameters dropped), or None when ``value`` is not
    a plausible media type."""
    if not isinstance(value, str):
        return None
    bare = value.split(";", 1)[0].strip().lower()
    return bare if _MIMETYPE.fullmatch(bare) else None


def _guess_mimetype(filename: str | None) -> str | None:
    if not filename:
        return None
    guessed, _ = mimetypes.guess_type(filename, strict=False)
    return _clean_mimetype(guessed)


def _redirect_target(url: str) -> str | None:
    """``url`` if it is an absolute ``http``/``https`` URL without whitespace or control
    characters (safe for a ``Location`` header), else None."""
    if not url or len(url) > 8000 or any(ch.isspace() or ord(ch) < 32 for ch in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    if "\\" in parts.netloc:
        return None
    return url


def parse_range(header: str | None, size: int, *, open_cap: int = PREVIEW_CHUNK) -> Any:
    """Read a ``Range`` header against a body of ``size`` bytes.

    Returns ``None`` when the whole body should be sent (no header, a malformed one, another
    unit, several ranges: all ignored, as RFC 9110 allows), ``(start, end)`` (``end``
    exclusive) for one satisfiable range, or :class:`RangeNotSatisfiable`. Suffix ranges
    (``bytes=-N``) give the last N bytes; an open-ended range (``bytes=N-``) gives at most
    ``open_cap`` bytes; no range gives more than ``MAX_RANGE_BYTES``.
    """
    if not header or not isinstance(header, str) or len(header) > 200:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix: the last N bytes
        length = int(last)
        if length == 0 or size == 0:
            return RangeNotSatisfiable(size=size)
        start = max(0, size - length)
        end = min(size, start + MAX_RANGE_BYTES)
        return start, end
    start = int(first)
    if last and int(last) < start:
        return None  # invalid: ignored
    if start >= size:
        return RangeNotSatisfiable(size=size)
    end = size if not last else min(size, int(last) + 1)
    cap = open_cap if not last else MAX_RANGE_BYTES
    return start, min(end, start + cap)


def read_or_create_secret_key(path: str | Path) -> bytes:
    """The secret key stored in ``path``; a new random one (32 bytes, hex) is written there
    first, readable by the owner only (mode 0600), when the file does not exist.

    The file appears whole or not at all: the key is written and synced to a temporary file
    that is then linked into place (``os.link`` fails if another process got there first, and
    its key is used). An empty file, as a crash of an older release could leave, is replaced.
    """
    target = Path(path)
    for _ in range(5):
        try:
            text = target.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            text = None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigurationError(f"Cannot read the secret key file {target.name}") from exc
        if text:
            return text.encode("ascii")
        new = secrets.token_hex(32)
        temporary = target.with_name(f".{target.name}.{secrets.token_hex(8)}")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(new + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            if text is None:
                try:
                    os.link(temporary, target)
                except FileExistsError:  # another process made it first: use theirs
                    continue
            else:  # an empty file left by a crash
                os.replace(temporary, target)
            return new.encode("ascii")
        except OSError as exc:
            raise ConfigurationError(f"Cannot write the secret key file {target.name}") from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
    raise ConfigurationError(f"Cannot read or create the secret key file {target.name}")


_process_secret: bytes | None = None
_process_secret_lock = threading.Lock()


def _process_secret_key() -> bytes:
    """A random key for this process, made on first use (catalogs without a configured key)."""
    global _process_secret
    with _process_secret_lock:
        if _process_secret is None:
            _process_secret = secrets.token_bytes(32)
        return _process_secret


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _resource_version(resource: Resource) -> str:
    """What a signed upload token binds: changes whenever the resource does."""
    stamp = f"{resource.id}|{resource.metadata_modified.isoformat()}|{resource.url}"
    return hashlib.sha256(stamp.encode("utf-8")).hexdigest()[:24]


# -- values -----------------------------------------------------------------------------


@frozen(kw_only=True)
class UploadResult:
    """What an upload did: the updated ``resource``, its file ``record`` and the pipeline
    ``job`` (None when the queue enqueues after the commit or there is no queue)."""

    resource: Resource
    record: ResourceFile
    job: Job | None = None


@frozen(kw_only=True)
class UploadUrl:
    """A signed upload URL: ``url`` is the path of the edge's upload route (the edge makes it
    absolute), to be used with ``method`` before ``expires_at``, for at most ``max_size``
    bytes. ``token`` is the signed part of the path."""

    url: str
    method: str
    token: str = field(repr=False)
    resource_id: str
    expires_at: datetime
    max_size: int


@frozen(kw_only=True)
class RangeNotSatisfiable:
    """A ``Range`` no byte of the body satisfies (HTTP 416); ``content_range`` is the header
    value to send (``bytes */<size>``)."""

    size: int

    @property
    def content_range(self) -> str:
        return f"bytes */{self.size}"


@attrs.define(kw_only=True)
class FileContent:
    """Bytes to send: ``length`` bytes read from ``stream`` (the caller closes it, or uses
    the value as a context manager).

    ``size`` is the whole object's size; ``status`` is 200, or 206 for a range, with
    ``content_range`` (``bytes a-b/size``). ``mimetype``, ``filename`` (a safe name, or None)
    and ``sha256`` (hex, when known) describe the object.
    """

    stream: BinaryIO
    length: int
    size: int
    mimetype: str
    filename: str | None = None
    sha256: str | None = None
    status: int = 200
    content_range: str | None = None

    def read_all(self) -> bytes:
        """Every byte of the body (for small bodies and tests)."""
        with self:
            return self.stream.read(self.length)

    def chunks(self, chunk_size: int = 64 * 1024) -> Iterator[bytes]:
        """The body in chunks; closes the stream at the end."""
        try:
            left = self.length
            while left > 0:
                data = self.stream.read(min(chunk_size, left))
                if not data:
                    break
                left -= len(data)
                yield data
        finally:
            self.close()

    def close(self) -> None:
        self.stream.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@frozen(kw_only=True)
class Download:
    """A resource's file: a ``redirect`` URL (an external link; HTTP 302) or the stored
    ``content``. Exactly one of the two is set. Close it when done (a context manager)."""

    redirect: str | None = None
    content: FileContent | None = None

    def close(self) -> None:
        if self.content is not None:
            self.content.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@frozen(kw_only=True)
class TextContent:
    """Extracted text of a resource: at most the requested number of characters;
    ``truncated`` says there is more (or the extraction stopped at its own limit)."""

    text: str
    truncated: bool
    encoding: str | None = None


@frozen(kw_only=True)
class GarbageReport:
    """What :meth:`FileService.collect_garbage` found: ``referenced`` blobs kept,
    ``orphans`` removed (or, in a dry run, that would be), ``temporaries`` left by crashed
    uploads removed (None in a dry run)."""

    referenced: int
    orphans: int
    temporaries: int | None
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@frozen(kw_only=True)
class _Grant:
    """The decoded content of a signed upload token."""

    resource_id: str
    subject: str
    max_size: int
    expires: int
    version: str
    filename: str | None
    content_type: str | None


# -- the service --------------------------------------------------------------------------


class FileService(_DatasetWriter):
    """Resource files (``catalog.files``): upload, signed upload URLs, download, text,
    preview and the orphan sweep."""

    # -- configuration -------------------------------------------------------------------

    @property
    def upload_max_bytes(self) -> int:
        """The largest upload this catalog accepts (setting ``upload_max_bytes``)."""
        configured = self._ctx.upload_max_bytes
        return DEFAULT_UPLOAD_MAX_BYTES if configured is None else configured

    def _secret(self) -> bytes:
        return self._ctx.upload_secret or _process_secret_key()

    def _blobs(self) -> BlobStore:
        if self._ctx.blobs is None:
            raise ConfigurationError("This catalog has no blob store (setting 'blobs')")
        return self._ctx.blobs

    # -- loading -------------------------------------------------------------------------

    @staticmethod
    def _resource_id(value: object) -> str:
        if not rules.is_uuid(value):
            raise ValidationFailed({"id": ["Not a valid resource id (a UUID)"]})
        assert isinstance(value, str)
        return value.lower()

    def _resource(
        self, call: Call, resource_id: str, action: Action | None, *, for_update: bool = False
    ) -> tuple[Dataset, Resource]:
        """The dataset and the resource; NotFound unless the actor may read the dataset, then
        ``action`` is checked (NotAuthorized)."""
        found = call.uow.datasets.find_by_resource(resource_id)
        if found is None or not self._policy.can_read_dataset(call.actor, found):
            raise NotFound("Resource not found")
        dataset = found
        if for_update:
            dataset = call.uow.datasets.get(found.id, for_update=True) or found
        if action is not None:
            self._require(call, action, self._policy.role_for_dataset(call.actor, dataset))
        resource = dataset.resource(resource_id)
        if resource is None:
            raise NotFound("Resource not found")
        return dataset, resource

    # -- uploads -------------------------------------------------------------------------

    def upload(
        self,
        resource_id: str,
        stream: BinaryIO,
        *,
        filename: str | None = None,
        content_type: str | None = None,
    ) -> UploadResult:
        """Store ``stream`` as the file of a resource (update rights on its dataset).

        The bytes are read in chunks into the blob store, at most ``upload_max_bytes``
        (:class:`~opencatalog.ports.blobs.BlobTooLarge`, a ``ValidationFailed``, beyond);
        then the resource becomes an upload pointing at them and the pipeline job is
        enqueued, in one unit of work. ``filename`` is display data (made safe);
        ``content_type`` is kept when it is a plausible media type, else guessed from the
        name.
        """
        rid = self._resource_id(resource_id)
        return self._ingest(
            rid,
            stream,
            filename=filename,
            content_type=content_type,
            max_size=self.upload_max_bytes,
            version=None,
        )

    def _ingest(
        self,
        rid: str,
        stream: BinaryIO,
        *,
        filename: str | None,
        content_type: str | None,
        max_size: int,
        version: str | None,
    ) -> UploadResult:
        blobs = self._blobs()
        with self._call() as call:  # refuse before reading a byte
            _, resource = self._resource(call, rid, Action.DATASET_UPDATE)
            self._check_version(resource, version)
        info = blobs.put(stream, max_size=max_size)
        with self._call(write=True) as call:
            current, old = self._resource(call, rid, Action.DATASET_UPDATE, for_update=True)
            self._check_version(old, version)
            name = safe_filename(filename) if filename else _filename_from_url(old.url)
            name = name or "file"
            mimetype = _clean_mimetype(content_type) or _guess_mimetype(name)
            resource = attrs.evolve(
                old,
                url=download_path(current.id, rid, name),
                url_type="upload",
                name=old.name or name,
                mimetype=mimetype or old.mimetype,
                size=info.size,
                hash=f"sha256:{info.sha256}",
                format=rules.guess_format(name) or old.format,
                last_modified=call.now,
                metadata_modified=call.now,
            )
            new = attrs.evolve(
                current,
                resources=tuple(resource if r.id == rid else r for r in current.resources),
                metadata_modified=call.now,
                revision=current.revision + 1,
            )
            self._store_change(call, current, new)
            job = call.enqueue(PIPELINE_JOB, {"resource_id": rid}, dedupe_key=f"pipeline:{rid}")
            previous = call.uow.files.get(rid)
            same_bytes = previous is not None and previous.blob_key == info.key
            record = ResourceFile(
                resource_id=rid,
                package_id=current.id,
                blob_key=info.key,
                uploaded=True,
                size=info.size,
                sha256=info.sha256,
                mimetype=mimetype,
                text_key=previous.text_key if same_bytes and previous else None,
                text_truncated=bool(same_bytes and previous and previous.text_truncated),
                preview_key=previous.preview_key if same_bytes and previous else None,
                encoding=previous.encoding if same_bytes and previous else None,
                status=PipelineStatus.PENDING,
                job_id=job.id if job is not None else None,
                updated=call.now,
            )
            call.uow.files.put(record)
            call.commit()
        return UploadResult(resource=resource, record=record, job=job)

    @staticmethod
    def _check_version(resource: Resource, version: str | None) -> None:
        if version is not None and not hmac.compare_digest(_resource_version(resource), version):
            raise NotAuthorized("This upload URL was used or the resource changed since")

    # -- signed uploads ------------------------------------------------------------------

    def create_upload_url(
        self,
        resource_id: str,
        *,
        max_size: int | None = None,
        expires_in: timedelta = DEFAULT_UPLOAD_URL_LIFETIME,
        filename: str | None = None,
        content_type: str | None = None,
    ) -> UploadUrl:
        """A signed, single-use URL through which the bytes of a resource's file can be
        uploaded without other credentials (update rights on its dataset to ask for it).

        ``max_size`` (default and ceiling: ``upload_max_bytes``) bounds the upload;
        ``expires_in`` is at most 15 minutes. ``filename`` and ``content_type`` are what the
        upload will record. The rights of the user who asked are checked again when the
        bytes arrive.
        """
        rid = self._resource_id(resource_id)
        errors: dict[str, list[str]] = {}
        limit = self.upload_max_bytes
        if max_size is None:
            max_size = limit
        if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 0:
            errors["max_size"] = ["Must be a natural number"]
        elif max_size > limit:
            errors["max_size"] = [f"Must be at most {limit} bytes"]
        if (
            not isinstance(expires_in, timedelta)
            or expires_in <= timedelta(0)
            or expires_in > MAX_UPLOAD_URL_LIFETIME
        ):
            errors["expires_in"] = ["Must be more than 0 and at most 15 minutes"]
        if filename is not None and not isinstance(filename, str):
            errors["filename"] = ["Must be a string"]
        if content_type is not None and _clean_mimetype(content_type) is None:
            errors["content_type"] = ["Not a media type"]
        if errors:
            raise ValidationFailed(errors)
        with self._call() as call:
            _, resource = self._resource(call, rid, Action.DATASET_UPDATE)
            actor = call.actor
            if actor.user_id is not None:
                subject = actor.user_id
            elif actor.system:
                subject = _SYSTEM_SUBJECT
            else:  # pragma: no cover - an actor with update rights has an identity
                raise NotAuthorized("Only users may ask for upload URLs")
            expires_at = call.now + expires_in
            grant = _Grant(
                resource_id=rid,
                subject=subject,
                max_size=max_size,
                expires=int(expires_at.timestamp()),
                version=_resource_version(resource),
                filename=safe_filename(filename) if filename else None,
                content_type=_clean_mimetype(content_type),
            )
        token = self._sign(grant)
        return UploadUrl(
            url=f"{UPLOAD_ROUTE}/{token}",
            method="PUT",
            token=token,
            resource_id=rid,
            expires_at=expires_at.replace(microsecond=0),
            max_size=max_size,
        )

    def _sign(self, grant: _Grant) -> str:
        payload = json.dumps(
            {
                "r": grant.resource_id,
                "s": grant.subject,
                "m": grant.max_size,
                "e": grant.expires,
                "v": grant.version,
                "f": grant.filename,
                "t": grant.content_type,
            },
            separators=(",", ":"),
            ensure_ascii=True,
        ).encode("ascii")
        body = _b64(payload)
        mac = hmac.new(self._secret(), _TOKEN_CONTEXT + body.encode("ascii"), hashlib.sha256)
        return f"{body}.{_b64(mac.digest())}"

    def _verify(self, token: object, now: datetime) -> _Grant:
        """The grant a token carries; NotAuthorized for anything forged, altered or expired
        (one message for all, compared in constant time)."""
        refused = NotAuthorized("Invalid or expired upload URL")
        if not isinstance(token, str) or not token or len(token) > _MAX_TOKEN:
            raise refused
        body, dot, signature = token.partition(".")
        if not dot:
            raise refused
        expected = hmac.new(
            self._secret(), _TOKEN_CONTEXT + body.encode("ascii", "replace"), hashlib.sha256
        ).digest()
        try:
            given = _unb64(signature)
        except ValueError:
            given = b""
        if not hmac.compare_digest(expected, given):
            raise refused
        try:
            data = json.loads(_unb64(body))
            grant = _Grant(
                resource_id=str(data["r"]),
                subject=str(data["s"]),
                max_size=int(data["m"]),
                expires=int(data["e"]),
                version=str(data["v"]),
                filename=data["f"] if isinstance(data["f"], str) else None,
                content_type=data["t"] if isinstance(data["t"], str) else None,
            )
        except (ValueError, KeyError, TypeError) as exc:  # signed by us, so never in practice
            raise refused from exc
        if now.timestamp() >= grant.expires:
            raise refused
        return grant

    def accept_signed_upload(
        self, token: str, stream: BinaryIO, *, content_type: str | None = None
    ) -> UploadResult:
        """Store ``stream`` through a signed upload URL's ``token``.

        The token must be genuine and unexpired, and its resource unchanged since it was
        issued (so a token works once); the user it was issued to must still have update
        rights. At most the token's ``max_size`` bytes are read. ``content_type`` is used
        when the token does not name one. Then it does what :meth:`upload` does.
        """
        grant = self._verify(token, self._ctx.clock())
        if grant.subject == _SYSTEM_SUBJECT:
            principal = Principal.system()
        else:
            principal = Principal(user_id=grant.subject)
        issuer = FileService(self._ctx, principal)
        return issuer._ingest(
            self._resource_id(grant.resource_id),
            stream,
            filename=grant.filename,
            content_type=grant.content_type or content_type,
            max_size=min(grant.max_size, self.upload_max_bytes),
            version=grant.version,
        )

    def complete_upload(self, resource_id: str) -> UploadResult:
        """Confirm that an uploaded resource's file is stored and (re)enqueue its pipeline job
        (update rights). The bytes of every upload, signed ones included, are verified and
        hashed by the catalog as they arrive, so this checks that the blob is there with the
        recorded size; duplicate calls enqueue one job. A resource that is not an upload is
        a ValidationFailed."""
        rid = self._resource_id(resource_id)
        blobs = self._blobs()
        with self._call(write=True) as call:
            _, resource = self._resource(call, rid, Action.DATASET_UPDATE, for_update=True)
            record = call.uow.files.get(rid)
            if (
                resource.url_type != "upload"
                or record is None
                or not record.uploaded
                or record.blob_key is None
            ):
                raise ValidationFailed({"id": ["Resource is not an uploaded file"]})
            try:
                stored = blobs.size(record.blob_key)
            except NotFound:
                stored = None
            if stored is None or (record.size is not None and stored != record.size):
                raise ValidationFailed({"id": ["The uploaded file is missing"]})
            job = call.enqueue(PIPELINE_JOB, {"resource_id": rid}, dedupe_key=f"pipeline:{rid}")
            record = attrs.evolve(
                record,
                status=PipelineStatus.PENDING,
                job_id=job.id if job is not None else record.job_id,
                error=None,
                updated=call.now,
            )
            call.uow.files.put(record)
            call.commit()
        return UploadResult(resource=resource, record=record, job=job)

    # -- reading -------------------------------------------------------------------------

    def _readable(self, resource_id: str) -> tuple[Resource, ResourceFile | None]:
        rid = self._resource_id(resource_id)
        with self._call() as call:
            _, resource = self._resource(call, rid, None)
            return resource, call.uow.files.get(rid)

    def record(self, resource_id: str) -> ResourceFile | None:
        """The file record of a resource (read rights), or None when it has none."""
        return self._readable(resource_id)[1]

    def download(self, resource_id: str) -> Download:
        """A resource's file (read rights on its dataset): the stored bytes of an upload,
        or a redirect to an external ``http``/``https`` link. NotFound when there is
        neither (no file, or a link with another scheme)."""
        resource, record = self._readable(resource_id)
        if resource.url_type == "upload":
            if record is None or not record.uploaded or record.blob_key is None:
                raise NotFound("File not found")
            blobs = self._blobs()
            filename = _filename_from_url(resource.url)
            mimetype = (
                _clean_mimetype(resource.mimetype)
                or record.mimetype
                or _guess_mimetype(filename)
                or "application/octet-stream"
            )
            stream = blobs.open(record.blob_key)
            size = record.size if record.size is not None else blobs.size(record.blob_key)
            content = FileContent(
                stream=stream,
                length=size,
                size=size,
                mimetype=mimetype,
                filename=filename,
                sha256=record.sha256,
            )
            return Download(content=content)
        target = _redirect_target(resource.url.strip())
        if target is None:
            raise NotFound("File not found")
        return Download(redirect=target)

    def text(self, resource_id: str, max_chars: int = TEXT_LIMIT) -> TextContent:
        """The text the pipeline extracted from a resource's file, at most ``max_chars``
        characters (1 to ``TEXT_LIMIT``). NotFound when there is none (yet)."""
        if (
            isinstance(max_chars, bool)
            or not isinstance(max_chars, int)
            or not 1 <= max_chars <= TEXT_LIMIT
        ):
            raise ValidationFailed({"max_chars": [f"Must be between 1 and {TEXT_LIMIT}"]})
        _, record = self._readable(resource_id)
        if record is None or record.text_key is None:
            raise NotFound("Text not available")
        blobs = self._blobs()
        size = blobs.size(record.text_key)
        want = min(size, max_chars * 4, MAX_RANGE_BYTES)
        raw = blobs.read_range(record.text_key, 0, want)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        text = decoder.decode(raw, final=want >= size)
        truncated = record.text_truncated or want < size or len(text) > max_chars
        return TextContent(text=text[:max_chars], truncated=truncated, encoding=record.encoding)

    def preview(
        self, resource_id: str, range_header: str | None = None
    ) -> FileContent | RangeNotSatisfiable:
        """The pipeline's preview of a resource's file (JSON, see
        :mod:`opencatalog.pipeline.preview`), whole or one byte range.

        ``range_header`` is an HTTP ``Range`` value (see :func:`parse_range`): one
        satisfiable range gives a 206 content with ``content_range``; a range past the end
        gives :class:`RangeNotSatisfiable`; a malformed header is ignored. NotFound when there
        is no preview (yet).
        """
        _, record = self._readable(resource_id)
        if record is None or record.preview_key is None:
            raise NotFound("Preview not available")
        blobs = self._blobs()
        key = record.preview_key
        size = blobs.size(key)
        wanted = parse_range(range_header, size)
        if isinstance(wanted, RangeNotSatisfiable):
            return wanted
        mimetype = "application/json"
        if wanted is None:
            return FileContent(stream=blobs.open(key), length=size, size=size, mimetype=mimetype)
        start, end = wanted
        data = blobs.read_range(key, start, end)
        return FileContent(
            stream=io.BytesIO(data),
            length=len(data),
            size=size,
            mimetype=mimetype,
            status=206,
            content_range=f"bytes {start}-{start + len(data) - 1}/{size}",
        )

    # -- housekeeping --------------------------------------------------------------------

    def collect_garbage(
        self, grace: timedelta = ORPHAN_GRACE, *, dry_run: bool = False
    ) -> GarbageReport:
        """Remove blobs no file record names that were stored at least ``grace`` ago, and
        temporary objects of uploads that stopped that long ago (sysadmins only).

        ``dry_run`` counts the orphans without removing anything. The grace period protects
        uploads whose metadata commit is still under way: keep it well above the longest
        upload.
        """
        if not isinstance(grace, timedelta) or grace < timedelta(0):
            raise ValidationFailed({"grace": ["Must be a duration of zero or more"]})
        with self._call() as call:
            # a pure policy question: the housekeeping of shared storage is for sysadmins
            if self._policy.base_role(call.actor) < Role.SYSADMIN:
                raise NotAuthorized("Only sysadmins may collect garbage")
            referenced = set(call.uow.files.blob_keys())
        blobs = self._blobs()
        if dry_run:
            cutoff = blobs._now() - grace
            orphans = 0
            for key in blobs.keys():  # noqa: SIM118 - a BlobStore, not a dict
                if key in referenced:
                    continue
                try:
                    if grace and blobs.modified(key) > cutoff:
                        continue
                except NotFound:
                    continue
                orphans += 1
            return GarbageReport(
                referenced=len(referenced), orphans=orphans, temporaries=None, dry_run=True
            )
        orphans = blobs.remove_unreferenced(referenced, older_than=grace)
        temporaries = blobs.sweep_temporary(grace)
        return GarbageReport(referenced=len(referenced), orphans=orphans, temporaries=temporaries)
