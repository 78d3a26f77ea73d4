"""The blob store port: content-addressed, streamed file storage.

A blob store holds the bytes of uploaded (and mirrored) resource files. Its rules:

* **Content addressing.** A blob's key is derived from its SHA-256 only:
  ``sha256/<2 hex>/<2 hex>/<64 hex>`` (the two shard directories are the first four hex digits
  of the digest). Storing the same bytes twice gives the same key and one stored copy. Client
  file names never become storage paths; they are display data kept in the catalog.
* **Keys are validated before any storage call.** Every public method checks its key against
  ``KEY_PATTERN`` first (in this base class, before the implementation's hook runs), so a key
  that comes from outside can never address anything but a blob: ``../x``, absolute paths,
  upper-case or short digests are refused with ``InvalidBlobKey`` by construction.
* **Streaming with a cap.** ``put`` reads the source in chunks of ``CHUNK_SIZE`` bytes (never
  the whole file), hashes and counts as it goes, writes to a temporary object and moves it
  into place under its key only when the whole stream is read. Passing ``max_size`` stops
  reading as soon as the cap is exceeded. On any failure, the temporary object is removed and
  no key appears.
* **Blobs are written before the metadata that points to them is committed.** Blobs no
  resource points to are removed by ``remove_unreferenced`` (the orphan sweep), with a grace
  period protecting blobs whose metadata commit is still under way.

Implementations subclass ``BlobStore`` and implement the underscore hooks; the public methods
validate their arguments and then call the hooks, so the rules above hold for every backend.
The shipped kit :mod:`opencatalog.testing.blobs` checks them. Stores that can hand out signed
URLs also implement :class:`opencatalog.ports.capabilities.SupportsSignedUrls`.

Implementations are found by URL scheme through the entry-point group ``opencatalog.blobs``;
each exposes ``from_url(url, **options)`` as a classmethod.
"""

from __future__ import annotations

import abc
import hashlib
import logging
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO

from attrs import frozen

from opencatalog.errors import NotFound, ValidationFailed

__all__ = [
    "CHUNK_SIZE",
    "KEY_PATTERN",
    "MAX_RANGE_BYTES",
    "ORPHAN_GRACE",
    "BlobInfo",
    "BlobStore",
    "BlobTooLarge",
    "InvalidBlobKey",
    "TemporaryBlob",
    "is_blob_key",
    "key_for_digest",
    "validate_key",
]

logger = logging.getLogger(__name__)

CHUNK_SIZE = 1024 * 1024
"""Bytes read from a source stream (and written to storage) per step of ``put``: 1 MiB."""

MAX_RANGE_BYTES = 16 * 1024 * 1024
"""The longest range ``read_range`` returns in one call: 16 MiB. Longer reads use ``open``."""

ORPHAN_GRACE = timedelta(hours=1)
"""How old an unreferenced blob must be before ``remove_unreferenced`` deletes it by default."""

KEY_PATTERN = re.compile(r"sha256/([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})")
"""The only keys a blob store accepts (matched in full; see ``validate_key``)."""

_DIGEST_PATTERN = re.compile(r"[0-9a-f]{64}")


class InvalidBlobKey(ValidationFailed, ValueError):
    """A string that is not a blob key. Raised before any storage is touched.

    It is both a ``ValidationFailed`` (``errors == {"key": [...]}``) and a ``ValueError``.
    The message does not echo the offending value, which may come from outside.
    """

    def __init__(self) -> None:
        message = "Not a blob key (expected sha256/<2 hex>/<2 hex>/<64 lower-case hex>)"
        super().__init__({"key": [message]}, message)


class BlobTooLarge(ValidationFailed):
    """The stream given to ``put`` is longer than its ``max_size``.

    ``errors == {"upload": ["File is larger than N bytes"]}``; ``max_size`` is N. Nothing was
    stored: the temporary object is gone and no key was created.
    """

    def __init__(self, max_size: int) -> None:
        message = f"File is larger than {max_size} bytes"
        super().__init__({"upload": [message]}, message)
        self.max_size = max_size


@frozen
class BlobInfo:
    """What ``put`` stored: the ``key``, the hex ``sha256`` of the bytes and their ``size``."""

    key: str
    sha256: str
    size: int


def key_for_digest(sha256: str) -> str:
    """The key of the blob whose SHA-256 is ``sha256`` (64 lower-case hex digits).

    Raises ``InvalidBlobKey`` for anything that is not such a digest.
    """
    if not isinstance(sha256, str) or not _DIGEST_PATTERN.fullmatch(sha256):
        raise InvalidBlobKey()
    return f"sha256/{sha256[:2]}/{sha256[2:4]}/{sha256}"


def is_blob_key(key: object) -> bool:
    """Whether ``key`` is a well-formed blob key whose shard directories match its digest."""
    if not isinstance(key, str):
        return False
    match = KEY_PATTERN.fullmatch(key)
    if match is None:
        return False
    first, second, digest = match.groups()
    return digest[:2] == first and digest[2:4] == second


def validate_key(key: object) -> str:
    """Return ``key`` if it is a blob key (see ``is_blob_key``); raise ``InvalidBlobKey``."""
    if not is_blob_key(key):
        raise InvalidBlobKey()
    assert isinstance(key, str)
    return key


def _check_age(older_than: timedelta) -> timedelta:
    if not isinstance(older_than, timedelta) or older_than < timedelta(0):
        raise ValueError("older_than must be a timedelta of zero or more")
    return older_than


class TemporaryBlob(abc.ABC):
    """A temporary object being written by ``BlobStore.put`` (an implementation hook).

    ``put`` calls ``write`` for each chunk, then either ``commit`` once or ``discard`` once.
    """

    @abc.abstractmethod
    def write(self, data: bytes) -> None:
        """Append ``data`` to the temporary object."""

    @abc.abstractmethod
    def commit(self, key: str) -> None:
        """Finish writing and move the temporary object to ``key`` (already validated).

        After this returns, the blob is readable under ``key`` with all its bytes and the
        temporary object is gone. If ``key`` already holds a blob (the same bytes, by content
        addressing) it is replaced or kept, and its modification time becomes now, so that an
        orphan sweep with a grace period does not delete it under a metadata commit that is
        about to reference it. Readers never see a partly written blob under ``key``.
        """

    @abc.abstractmethod
    def discard(self) -> None:
        """Remove the temporary object. Never raises: a failure is logged and the object is
        left for ``sweep_temporary``."""


class BlobStore(abc.ABC):
    """Content-addressed storage of file bytes.

    Implementations are safe to call from several threads of one process, and several
    processes may share one store: concurrent ``put`` calls of the same bytes all succeed and
    leave one copy. Errors of the underlying storage surface as ``BackendError``; a missing
    blob as ``NotFound``; a malformed key as ``InvalidBlobKey``, before any storage call.

    Subclasses implement the underscore hooks, which receive validated arguments only.
    """

    CHUNK_SIZE = CHUNK_SIZE
    MAX_RANGE_BYTES = MAX_RANGE_BYTES

    @classmethod
    def from_url(cls, url: str, **options: Any) -> BlobStore:
        """Open (creating if needed) the store that ``url`` names; ``options`` are
        implementation-specific keyword settings. Raises ``ConfigurationError`` for a URL the
        implementation cannot use."""
        raise NotImplementedError(f"{cls.__name__} cannot be opened from a URL")

    # -- writing -------------------------------------------------------------------------

    def put(self, stream: BinaryIO, *, max_size: int | None = None) -> BlobInfo:
        """Store everything ``stream`` yields and return its key, digest and size.

        The stream is read with ``stream.read(CHUNK_SIZE)`` until it returns ``b""``; it is
        never read whole, so memory use does not grow with the file. The bytes go to a
        temporary object while their SHA-256 and size are computed; when the stream ends, the
        temporary object is moved to ``sha256/<2 hex>/<2 hex>/<64 hex>``. Idempotent: the same
        bytes give the same key and one stored copy (and refresh its modification time).

        ``max_size`` (bytes, ``None`` for no limit) is checked while reading: the first chunk
        that takes the total past it stops the upload with ``BlobTooLarge``, without reading
        the rest. A stream of exactly ``max_size`` bytes is accepted.

        On ``BlobTooLarge``, on an exception raised by the stream (propagated unchanged) and
        on any other failure, the temporary object is removed and no key is created. The
        stream is not closed.
        """
        if max_size is not None and (not isinstance(max_size, int) or max_size < 0):
            raise ValueError("max_size must be None or an int of zero or more")
        digest = hashlib.sha256()
        size = 0
        temporary = self._new_temporary()
        try:
            while True:
                chunk = stream.read(self.CHUNK_SIZE)
                if chunk is None:
                    raise ValueError("put needs a blocking stream (read() returned None)")
                if not chunk:
                    break
                size += len(chunk)
                if max_size is not None and size > max_size:
                    raise BlobTooLarge(max_size)
                digest.update(chunk)
                temporary.write(chunk)
            hexdigest = digest.hexdigest()
            key = key_for_digest(hexdigest)
            temporary.commit(key)
        except BaseException:
            temporary.discard()
            raise
        logger.debug("stored blob %s (%d bytes)", key, size)
        return BlobInfo(key=key, sha256=hexdigest, size=size)

    def delete(self, key: str) -> None:
        """Remove the blob ``key``. A key that is not stored is ignored (idempotent)."""
        self._delete(validate_key(key))

    # -- reading -------------------------------------------------------------------------

    def open(self, key: str) -> BinaryIO:
        """A binary file object reading the blob ``key`` from its start, streamed (the blob is
        not loaded whole). The caller closes it (it is a context manager). Raises
        ``NotFound`` if the key is not stored."""
        return self._open(validate_key(key))

    def read_range(self, key: str, start: int, end: int) -> bytes:
        """The bytes of blob ``key`` from offset ``start`` (inclusive) to ``end``
        (exclusive), like ``data[start:end]``.

        ``0 <= start <= end`` and ``end - start <= MAX_RANGE_BYTES`` (16 MiB) are required
        (``ValueError`` otherwise): a range is always bounded. A range reaching past the end
        of the blob is cut at the end; a range starting at or after the end gives ``b""``.
        Raises ``NotFound`` if the key is not stored.
        """
        validate_key(key)
        if not (isinstance(start, int) and isinstance(end, int)) or start < 0 or end < start:
            raise ValueError("a range needs integers 0 <= start <= end")
        if end - start > self.MAX_RANGE_BYTES:
            raise ValueError(f"a range may span at most {self.MAX_RANGE_BYTES} bytes")
        return self._read_range(key, start, end)

    def size(self, key: str) -> int:
        """The size in bytes of blob ``key``. Raises ``NotFound`` if it is not stored."""
        return self._size(validate_key(key))

    def modified(self, key: str) -> datetime:
        """When blob ``key`` was last stored (an aware UTC datetime): the latest ``put`` of
        its bytes. Raises ``NotFound`` if it is not stored."""
        return self._modified(validate_key(key))

    def exists(self, key: str) -> bool:
        """Whether blob ``key`` is stored."""
        return self._exists(validate_key(key))

    def keys(self) -> Iterator[str]:
        """Every stored key, in no particular order; temporary objects are not listed.

        Deleting blobs while iterating is allowed. Blobs stored during the iteration may or
        may not be listed.
        """
        for key in self._keys():
            if is_blob_key(key):
                yield key

    # -- housekeeping --------------------------------------------------------------------

    def sweep_temporary(self, older_than: timedelta) -> int:
        """Remove temporary objects last written at least ``older_than`` ago (left behind
        by crashed processes) and return how many were removed.

        A temporary object still being written by a live ``put`` is younger than
        ``older_than`` as long as that put makes progress faster than ``older_than``; pick a
        value far above the longest stall of an upload (an hour or a day).
        """
        removed = self._sweep_temporary(_check_age(older_than))
        if removed:
            logger.info("removed %d stale temporary blob objects", removed)
        return removed

    def remove_unreferenced(
        self, referenced_keys: Iterable[str], *, older_than: timedelta = ORPHAN_GRACE
    ) -> int:
        """Delete every stored blob whose key is not in ``referenced_keys`` and that was
        last stored at least ``older_than`` ago; return how many were deleted.

        This is the orphan sweep. Blobs are written before the metadata that references
        them is committed, so a blob can be unreferenced for a moment; the grace period
        (``ORPHAN_GRACE``, one hour, by default) keeps those. ``put`` of bytes already stored
        refreshes their modification time, so re-uploading an old orphan also protects it.
        The one remaining race is a ``put`` of an old orphan's bytes landing between this
        method's age check and its delete of that key; pass a grace period well above the
        time from upload to metadata commit and compute ``referenced_keys`` from committed
        metadata after the uploads of interest have committed.

        Strings in ``referenced_keys`` that are not blob keys are ignored.
        """
        _check_age(older_than)
        referenced = set(referenced_keys)
        cutoff = self._now() - older_than
        removed = 0
        for key in self.keys():
            if key in referenced:
                continue
            if older_than:
                try:
                    if self.modified(key) > cutoff:
                        continue
                except NotFound:
                    continue
            self.delete(key)
            removed += 1
        if removed:
            logger.info("removed %d unreferenced blobs", removed)
        return removed

    def close(self) -> None:  # noqa: B027 - a concrete no-op default, not an abstract hook
        """Release connections and handles. The store must not be used afterwards. Calling
        it twice is harmless."""

    def __enter__(self) -> BlobStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- hooks for implementations (arguments already validated) -------------------------

    def _now(self) -> datetime:
        """The current time (aware, UTC). Fakes may override it to control the clock."""
        return datetime.now(UTC)

    @abc.abstractmethod
    def _new_temporary(self) -> TemporaryBlob:
        """Create an empty temporary object for ``put`` (see ``TemporaryBlob``)."""

    @abc.abstractmethod
    def _open(self, key: str) -> BinaryIO:
        """See ``open``."""

    @abc.abstractmethod
    def _read_range(self, key: str, start: int, end: int) -> bytes:
        """See ``read_range``; the range is already checked and at most MAX_RANGE_BYTES."""

    @abc.abstractmethod
    def _size(self, key: str) -> int:
        """See ``size``."""

    @abc.abstractmethod
    def _modified(self, key: str) -> datetime:
        """See ``modified``."""

    @abc.abstractmethod
    def _exists(self, key: str) -> bool:
        """See ``exists``."""

    @abc.abstractmethod
    def _delete(self, key: str) -> None:
        """See ``delete``."""

    @abc.abstractmethod
    def _keys(self) -> Iterable[str]:
        """Candidate keys for ``keys`` (anything that is not a blob key is filtered out)."""

    @abc.abstractmethod
    def _sweep_temporary(self, older_than: timedelta) -> int:
        """See ``sweep_temporary``."""
