"""An in-memory blob store: the fake for tests and notebooks.

Blobs live in a dict of bytes for the life of the object; nothing is shared between
instances. It follows the whole ``BlobStore`` contract (temporary objects, size caps, grace
periods) so that services tested against it behave the same on real stores.
"""

from __future__ import annotations

import io
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO

from opencatalog.errors import BackendError, ConfigurationError, NotFound
from opencatalog.ports.blobs import BlobStore, TemporaryBlob

__all__ = ["MemoryBlobStore"]


class _MemoryTemporary(TemporaryBlob):
    def __init__(self, store: MemoryBlobStore, name: str) -> None:
        self._store = store
        self._name = name

    def _take(self, *, remove: bool) -> bytearray:
        # the caller holds the lock
        entry = self._store._temporaries.get(self._name)
        if entry is None:
            raise BackendError("The temporary object was removed while being written")
        if remove:
            del self._store._temporaries[self._name]
        return entry[0]

    def write(self, data: bytes) -> None:
        with self._store._lock:
            buffer = self._take(remove=False)
            buffer += data
            self._store._temporaries[self._name] = (buffer, self._store._now())

    def commit(self, key: str) -> None:
        with self._store._lock:
            buffer = self._take(remove=True)
            self._store._blobs[key] = (bytes(buffer), self._store._now())

    def discard(self) -> None:
        with self._store._lock:
            self._store._temporaries.pop(self._name, None)


class MemoryBlobStore(BlobStore):
    """Blobs in a dict. ``clock`` (default: the system clock, UTC) sets the times recorded
    for blobs and temporary objects, so tests can age them."""

    def __init__(self, *, clock: Callable[[], datetime] | None = None) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._blobs: dict[str, tuple[bytes, datetime]] = {}
        self._temporaries: dict[str, tuple[bytearray, datetime]] = {}

    @classmethod
    def from_url(cls, url: str, **options: Any) -> MemoryBlobStore:
        """A new, empty store for ``memory://`` (anything after the scheme is ignored);
        ``options`` may hold ``clock``."""
        if not url.lower().startswith("memory://"):
            raise ConfigurationError(f"MemoryBlobStore needs a memory:// URL, not {url!r}")
        unknown = set(options) - {"clock"}
        if unknown:
            raise ConfigurationError(f"Unknown memory blob store options: {sorted(unknown)}")
        return cls(**options)

    def _now(self) -> datetime:
        return self._clock() if self._clock is not None else datetime.now(UTC)

    def _new_temporary(self) -> TemporaryBlob:
        name = str(uuid.uuid4())
        with self._lock:
            self._temporaries[name] = (bytearray(), self._now())
        return _MemoryTemporary(self, name)

    def _get(self, key: str) -> tuple[bytes, datetime]:
        with self._lock:
            try:
                return self._blobs[key]
            except KeyError:
                raise NotFound(f"No blob {key}") from None

    def _open(self, key: str) -> BinaryIO:
        return io.BytesIO(self._get(key)[0])

    def _read_range(self, key: str, start: int, end: int) -> bytes:
        return self._get(key)[0][start:end]

    def _size(self, key: str) -> int:
        return len(self._get(key)[0])

    def _modified(self, key: str) -> datetime:
        return self._get(key)[1]

    def _exists(self, key: str) -> bool:
        with self._lock:
            return key in self._blobs

    def _delete(self, key: str) -> None:
        with self._lock:
            self._blobs.pop(key, None)

    def _keys(self) -> Iterator[str]:
        with self._lock:
            snapshot = list(self._blobs)
        return iter(snapshot)

    def _sweep_temporary(self, older_than: timedelta) -> int:
        cutoff = self._now() - older_than
        with self._lock:
            stale = [name for name, (_, at) in self._temporaries.items() if at <= cutoff]
            for name in stale:
                del self._temporaries[name]
        return len(stale)

    def close(self) -> None:
        """Nothing to release; the blobs stay readable until the store is dropped."""
