"""Blob store on any fsspec filesystem: a local folder, fsspec memory, S3 (through s3fs), ...

Layout under the store's root (the path of the URL)::

    <root>/sha256/<2 hex>/<2 hex>/<64 hex>   blobs, by content
    <root>/tmp/<uuid>                        temporary objects of puts in progress (or crashed)

Temporary names are version-7 UUIDs, which carry their creation time, so ``sweep_temporary``
can age them on filesystems that report no modification time.

How a blob appears under its key:

* Local files (``file:///abs/dir``): the temporary file is flushed and ``fsync``-ed, then
  renamed over the key with ``os.replace`` (the atomic rename that fsspec's local ``mv`` does on
  POSIX, and atomic on Windows too), and the directory is ``fsync``-ed. A reader sees either no
  blob or the whole blob, and a crash leaves at most a temporary file behind. ``fsync=False``
  skips the syncs (faster, not durable across power loss).
* Object stores (``s3://bucket/prefix``, ``memory://``): fsspec's ``mv`` is a server-side copy
  followed by a delete of the temporary object. The key becomes visible only when the copy has
  completed (object stores publish an object whole), so readers still never see part of a
  blob; a crash between copy and delete leaves a temporary object for ``sweep_temporary``.

S3 needs s3fs (``pip install 'opencatalog[s3]'``), imported only when an ``s3://`` URL is
opened; storage options such as ``key``, ``secret``, ``endpoint_url`` or ``anon`` pass through
to it. Stores on a filesystem that can sign URLs (s3fs can) are ``FsspecSigningBlobStore``
instances and implement ``SupportsSignedUrls``; the others do not claim the capability.
"""

from __future__ import annotations

import importlib
import io
import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO, cast
from urllib.parse import urlsplit

import fsspec
from fsspec.implementations.local import LocalFileSystem
from fsspec.implementations.memory import MemoryFileSystem
from fsspec.spec import AbstractFileSystem

from opencatalog.errors import BackendError, ConfigurationError, NotFound
from opencatalog.ports.blobs import BlobStore, TemporaryBlob, validate_key
from opencatalog.ports.capabilities import MAX_SIGNED_URL_LIFETIME

__all__ = ["FsspecBlobStore", "FsspecSigningBlobStore"]

logger = logging.getLogger(__name__)

BLOB_DIR = "sha256"
TEMPORARY_DIR = "tmp"


def _temporary_name(now: datetime) -> str:
    """A version-7 UUID (RFC 9562): 48 bits of Unix milliseconds, then random bits."""
    millis = int(now.timestamp() * 1000) & ((1 << 48) - 1)
    rand = int.from_bytes(os.urandom(10), "big")
    value = (
        (millis << 80)
        | (0x7 << 76)
        | (((rand >> 62) & 0xFFF) << 64)
        | (0b10 << 62)
        | (rand & ((1 << 62) - 1))
    )
    return str(uuid.UUID(int=value))


def _created_from_name(name: str) -> datetime | None:
    """The creation time carried by a version-7 UUID name, or None for any other name."""
    try:
        value = uuid.UUID(name)
    except ValueError:
        return None
    if value.version != 7:
        return None
    return datetime.fromtimestamp((value.int >> 80) / 1000, UTC)


@contextmanager
def _backend_errors(action: str, *, missing: str | None = None) -> Iterator[None]:
    """Translate filesystem errors: a missing file is ``NotFound`` when ``missing`` names
    the blob, any other ``OSError`` a ``BackendError`` with a message that holds no path."""
    try:
        yield
    except FileNotFoundError as exc:
        if missing is not None:
            raise NotFound(f"No blob {missing}") from exc
        raise BackendError(f"Blob store failed to {action}") from exc
    except OSError as exc:
        raise BackendError(f"Blob store failed to {action}") from exc


def _fsync_directory(path: str) -> None:
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _FsspecTemporary(TemporaryBlob):
    def __init__(self, store: FsspecBlobStore) -> None:
        self._store = store
        self._path = f"{store.root}/{TEMPORARY_DIR}/{_temporary_name(store._now())}"
        self._file: Any = store._open_for_write(self._path)

    def write(self, data: bytes) -> None:
        with _backend_errors("write a blob"):
            self._file.write(data)

    def commit(self, key: str) -> None:
        store = self._store
        with _backend_errors("store a blob"):
            if store._local and store._fsync:
                self._file.flush()
                os.fsync(self._file.fileno())
            self._file.close()
            store._move_into_place(self._path, store._path(key))

    def discard(self) -> None:
        try:
            self._file.close()
        except Exception:
            logger.debug("closing a discarded temporary blob failed", exc_info=True)
        try:
            self._store.fs.rm_file(self._path)
        except FileNotFoundError:
            pass
        except Exception:
            logger.warning(
                "could not remove temporary blob object %s; sweep_temporary will",
                self._path,
                exc_info=True,
            )


class FsspecBlobStore(BlobStore):
    """Content-addressed blobs under ``root`` on the fsspec filesystem ``fs``.

    Open one with ``from_url``, or with ``for_filesystem`` for a filesystem object you have
    already configured (both pick ``FsspecSigningBlobStore`` when ``fs`` can sign URLs).
    """

    def __init__(self, fs: AbstractFileSystem, root: str, *, fsync: bool = True) -> None:
        root = root.rstrip("/")
        if not root.strip("/"):
            raise ConfigurationError("A blob store needs a directory (or bucket) to live in")
        self._fs = fs
        self._root = root
        self._local = isinstance(fs, LocalFileSystem)
        self._fsync = fsync
        self._in_memory = isinstance(fs, MemoryFileSystem)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> FsspecBlobStore:
        """Open the store at ``url``: ``file:///abs/dir`` (created if missing),
        ``memory://bucket/prefix``, ``s3://bucket/prefix`` or any other fsspec URL.

        ``fsync`` (bool, default True; local files only) makes each put durable before it
        returns. Every other option is an fsspec storage option for the filesystem (for S3:
        ``key``, ``secret``, ``endpoint_url``, ``client_kwargs``, ...). Raises
        ``ConfigurationError`` for a relative or non-local ``file://`` URL, a URL without a
        path, an unknown protocol, bad storage options, or a missing driver (s3fs).
        """
        fsync = bool(options.pop("fsync", True))
        if "://" not in url:
            raise ConfigurationError(f"Not a blob store URL (no scheme): {url!r}")
        scheme = url.split("://", 1)[0].lower()
        if scheme in {"s3", "s3a"}:
            try:
                importlib.import_module("s3fs")
            except ImportError as exc:
                raise ConfigurationError(
                    "The s3 blob store needs s3fs; install it with: pip install 'opencatalog[s3]'"
                ) from exc
        if scheme == "file":
            parts = urlsplit(url)
            if parts.netloc not in {"", "localhost"} or not parts.path.startswith("/"):
                raise ConfigurationError(
                    "A file blob store URL needs an absolute path: file:///absolute/dir"
                )
        try:
            fs, root = fsspec.url_to_fs(url, **options)
        except (ValueError, TypeError, ImportError) as exc:
            raise ConfigurationError(f"Cannot open blob store {url!r}: {exc}") from exc
        store = cls.for_filesystem(fs, root, fsync=fsync)
        if store._local:
            try:
                fs.makedirs(store.root, exist_ok=True)
            except OSError as exc:
                raise ConfigurationError(f"Cannot create the blob directory of {url!r}") from exc
        return store

    @staticmethod
    def for_filesystem(fs: AbstractFileSystem, root: str, *, fsync: bool = True) -> FsspecBlobStore:
        """A store under ``root`` on ``fs``: an ``FsspecSigningBlobStore`` if ``fs``
        implements ``sign``, else a plain ``FsspecBlobStore``."""
        can_sign = type(fs).sign is not AbstractFileSystem.sign
        kind = FsspecSigningBlobStore if can_sign else FsspecBlobStore
        return kind(fs, root, fsync=fsync)

    @property
    def fs(self) -> AbstractFileSystem:
        """The fsspec filesystem the blobs live on."""
        return self._fs

    @property
    def root(self) -> str:
        """The store's directory on ``fs`` (no trailing slash)."""
        return self._root

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self._fs).__name__}, {self._root!r})"

    # -- paths ---------------------------------------------------------------------------

    def _path(self, key: str) -> str:
        # ``key`` has been validated: sha256/<2 hex>/<2 hex>/<64 hex>, nothing else.
        return f"{self._root}/{key}"

    def _ensure_directory(self, path: str) -> None:
        self._fs.makedirs(path, exist_ok=True)
        if self._local and self._fsync:
            # make the new directory entries themselves durable, up to the root
            current = path
            while len(current) > len(self._root):
                parent = self._fs._parent(current)
                _fsync_directory(parent)
                current = parent

    # -- hooks ---------------------------------------------------------------------------

    def _open_for_write(self, path: str) -> Any:
        with _backend_errors("start a blob"):
            try:
                return self._fs.open(path, "wb")
            except FileNotFoundError:
                self._ensure_directory(self._fs._parent(path))
                return self._fs.open(path, "wb")

    def _move_into_place(self, source: str, target: str) -> None:
        move = os.replace if self._local else self._fs.mv
        try:
            move(source, target)
        except FileNotFoundError:
            if not self._fs.exists(source):
                raise
            self._ensure_directory(self._fs._parent(target))
            move(source, target)
        if self._local and self._fsync:
            _fsync_directory(self._fs._parent(target))

    def _new_temporary(self) -> TemporaryBlob:
        return _FsspecTemporary(self)

    def _open(self, key: str) -> BinaryIO:
        path = self._path(key)
        with _backend_errors("read a blob", missing=key):
            if self._in_memory:
                # fsspec's memory filesystem hands every reader the one stored file object;
                # give each reader its own copy so positions do not interfere.
                return io.BytesIO(self._fs.cat_file(path))
            return cast(BinaryIO, self._fs.open(path, "rb"))

    def _read_range(self, key: str, start: int, end: int) -> bytes:
        path = self._path(key)
        with _backend_errors("read a blob", missing=key):
            size = self._fs.size(path)
            end = min(end, size)
            if start >= end:
                return b""
            return bytes(self._fs.cat_file(path, start=start, end=end))

    def _size(self, key: str) -> int:
        with _backend_errors("read a blob size", missing=key):
            return int(self._fs.size(self._path(key)))

    def _modified(self, key: str) -> datetime:
        with _backend_errors("read a blob time", missing=key):
            when = self._modified_path(self._path(key))
        if when is None:
            raise BackendError("This filesystem reports no modification times")
        return when

    def _modified_path(self, path: str) -> datetime | None:
        try:
            when = self._fs.modified(path)
        except NotImplementedError:
            info = self._fs.info(path)
            when = info.get("LastModified") or info.get("mtime") or info.get("created")
        if isinstance(when, int | float):
            when = datetime.fromtimestamp(when, UTC)
        if not isinstance(when, datetime):
            return None
        return when if when.tzinfo is not None else when.replace(tzinfo=UTC)

    def _exists(self, key: str) -> bool:
        with _backend_errors("check a blob"):
            return bool(self._fs.exists(self._path(key)))

    def _delete(self, key: str) -> None:
        with _backend_errors("delete a blob"), suppress(FileNotFoundError):
            self._fs.rm_file(self._path(key))

    def _keys(self) -> Iterator[str]:
        prefix = f"{self._root}/"
        with _backend_errors("list blobs"):
            try:
                paths = self._fs.find(f"{self._root}/{BLOB_DIR}")
            except FileNotFoundError:
                paths = []
        for path in paths:
            if path.startswith(prefix):
                yield path[len(prefix) :]

    def _sweep_temporary(self, older_than: timedelta) -> int:
        cutoff = self._now() - older_than
        with _backend_errors("list temporary blobs"):
            try:
                paths = self._fs.find(f"{self._root}/{TEMPORARY_DIR}")
            except FileNotFoundError:
                paths = []
        removed = 0
        for path in paths:
            times = [_created_from_name(path.rsplit("/", 1)[-1])]
            try:
                times.append(self._modified_path(path))
            except FileNotFoundError:
                continue  # gone already (committed or swept by someone else)
            except OSError:
                logger.debug("no modification time for %s", path, exc_info=True)
            known = [t for t in times if t is not None]
            if not known:
                logger.warning("cannot tell the age of temporary blob object %s; kept", path)
                continue
            if max(known) > cutoff:
                continue
            with _backend_errors("remove a temporary blob"):
                try:
                    self._fs.rm_file(path)
                except FileNotFoundError:
                    continue
            removed += 1
        return removed

    def close(self) -> None:
        """Nothing to release: fsspec filesystems are shared, cached objects that close
        their own connections."""


class FsspecSigningBlobStore(FsspecBlobStore):
    """An ``FsspecBlobStore`` on a filesystem that signs URLs (S3): ``SupportsSignedUrls``."""

    def signed_url(self, key: str, *, expires_in: timedelta, method: str = "GET") -> str:
        """A presigned ``GET`` URL for blob ``key``, valid for ``expires_in`` (whole seconds,
        at least one; at most ``MAX_SIGNED_URL_LIFETIME``). See ``SupportsSignedUrls``."""
        validate_key(key)
        if not isinstance(method, str) or method.upper() != "GET":
            raise ValueError("This blob store signs GET URLs only; uploads go through put()")
        if not isinstance(expires_in, timedelta) or not (
            timedelta(0) < expires_in <= MAX_SIGNED_URL_LIFETIME
        ):
            raise ValueError(
                f"expires_in must be positive and at most {MAX_SIGNED_URL_LIFETIME.days} days"
            )
        if not self._exists(key):
            raise NotFound(f"No blob {key}")
        seconds = max(1, int(expires_in.total_seconds()))
        with _backend_errors("sign a blob URL"):
            return str(self._fs.sign(self._path(key), expiration=seconds))
