"""Conformance kit for ``BlobStore`` implementations.

Subclass ``BlobStoreTests`` in a test module, override the ``store`` fixture to return a new,
empty store, and implement the three backdoor helpers, which reach past the port to set up
what only a crash or the passing of time would produce::

    class TestMyBlobStore(BlobStoreTests):
        @pytest.fixture
        def store(self, tmp_path):
            s = MyBlobStore.from_url(f"my://{tmp_path}")
            yield s
            s.close()

        def temporaries(self, store): ...                 # names of temporary objects
        def plant_temporary(self, store, *, age): ...     # leave one, as a crashed put would
        def age_blob(self, store, key, age): ...          # make a blob look `age` old

Set ``in_memory = True`` for stores that keep blobs in process memory: the streaming test then
uses a smaller stream and skips the memory-peak assertion (the store itself holds the bytes).
Stores implementing ``SupportsSignedUrls`` are also checked for that capability.
"""

from __future__ import annotations

import hashlib
import io
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO, ClassVar, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opencatalog.errors import NotFound, ValidationFailed
from opencatalog.ports.blobs import (
    CHUNK_SIZE,
    KEY_PATTERN,
    MAX_RANGE_BYTES,
    BlobStore,
    BlobTooLarge,
    InvalidBlobKey,
    key_for_digest,
)
from opencatalog.ports.capabilities import MAX_SIGNED_URL_LIFETIME, SupportsSignedUrls

__all__ = ["INVALID_KEYS", "BlobStoreTests", "GeneratedStream", "as_stream", "failing_stream"]

_HEX = "ab" * 32
_VALID = f"sha256/ab/ab/{_HEX}"

INVALID_KEYS: tuple[str, ...] = (
    "",
    "../etc/passwd",
    "/etc/passwd",
    "etc/passwd",
    "sha256/../../etc/passwd",
    f"sha256/ab/ab/../../../{_HEX}",
    f"/{_VALID}",
    f"{_VALID}/..",
    f"{_VALID}\n",
    f"{_VALID}\x00",
    f" {_VALID}",
    _VALID.replace("/", "\\"),
    _VALID.upper(),
    f"sha256/AB/AB/{_HEX.upper()}",
    "sha256/ab/ab/abab",
    f"sha256/ab/ab/{_HEX}ab",
    f"sha256/00/00/{_HEX}",
    f"sha256/{_HEX}",
    f"sha1/ab/ab/{_HEX}",
    f"tmp/{_HEX}",
    "C:\\Windows\\win.ini",
    "%2e%2e%2fetc%2fpasswd",
    f"sha256/ab/ab/{_HEX[:-1]}\u0661",
)
"""Strings that are not blob keys: traversal, absolute paths, upper case, short or long
digests, shard directories that do not match the digest, stray characters."""


def _blocks(total: int, *, block: int = 64 * 1024) -> Iterator[bytes]:
    """``total`` bytes of deterministic, non-repeating-per-block data, in blocks."""
    produced = 0
    index = 0
    while produced < total:
        seed = hashlib.sha256(index.to_bytes(8, "big")).digest()
        data = (seed * (block // len(seed) + 1))[: min(block, total - produced)]
        produced += len(data)
        index += 1
        yield data


class GeneratedStream(io.RawIOBase):
    """A read-only stream producing ``total`` bytes from a generator, never all at once.

    It refuses ``read()`` / ``read(-1)`` (a store must read in bounded chunks) and records
    the largest request and how many bytes were handed out.
    """

    def __init__(self, total: int, *, fail_after: int | None = None) -> None:
        super().__init__()
        self.total = total
        self.fail_after = fail_after
        self.consumed = 0
        self.largest_request = 0
        self._blocks = _blocks(total)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            raise AssertionError("the store asked for the whole stream at once")
        self.largest_request = max(self.largest_request, size)
        if self.fail_after is not None and self.consumed >= self.fail_after:
            raise OSError("connection reset by peer (simulated)")
        pieces: list[bytes] = []
        wanted = size
        while wanted > 0:
            if not self._pending:
                self._pending = next(self._blocks, b"")
                if not self._pending:
                    break
            piece, self._pending = self._pending[:wanted], self._pending[wanted:]
            pieces.append(piece)
            wanted -= len(piece)
        data = b"".join(pieces)
        self.consumed += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    @staticmethod
    def digest_of(total: int) -> str:
        """The hex SHA-256 of the bytes a ``GeneratedStream(total)`` produces."""
        digest = hashlib.sha256()
        for block in _blocks(total):
            digest.update(block)
        return digest.hexdigest()


def failing_stream(total: int, *, fail_after: int) -> GeneratedStream:
    """A stream that raises ``OSError`` once ``fail_after`` bytes have been read, as a
    client that disconnects mid-upload."""
    return GeneratedStream(total, fail_after=fail_after)


def as_stream(data: bytes) -> BinaryIO:
    """``data`` as a binary stream for ``put``."""
    return io.BytesIO(data)


def _key_of(data: bytes) -> str:
    return key_for_digest(hashlib.sha256(data).hexdigest())


class BlobStoreTests:
    """The behaviour every ``BlobStore`` must have. Override ``store`` and the backdoors."""

    in_memory: ClassVar[bool] = False
    """Whether the store keeps blobs in process memory (see the module docstring)."""

    large_size: ClassVar[int] = 50 * 1000 * 1000
    """Bytes streamed by the large-put test when the store is not ``in_memory``."""

    hypothesis_examples: ClassVar[int] = 30
    """How many random blobs and ranges the Hypothesis round trip tries."""

    # -- to override -----------------------------------------------------------------------

    @pytest.fixture
    def store(self) -> Iterator[BlobStore]:
        """A new, empty store of the implementation under test (override this)."""
        raise NotImplementedError("override the `store` fixture in the subclass")

    def temporaries(self, store: BlobStore) -> list[str]:
        """Names of the temporary objects the store currently holds (backdoor)."""
        raise NotImplementedError

    def plant_temporary(self, store: BlobStore, *, age: timedelta) -> None:
        """Leave a temporary object last written ``age`` ago, as a crashed put would."""
        raise NotImplementedError

    def age_blob(self, store: BlobStore, key: str, age: timedelta) -> None:
        """Make the stored blob ``key`` look last stored ``age`` ago (backdoor)."""
        raise NotImplementedError

    # -- helpers ---------------------------------------------------------------------------

    def assert_clean(self, store: BlobStore) -> None:
        assert self.temporaries(store) == [], "a temporary object was left behind"

    def read_all(self, store: BlobStore, key: str) -> bytes:
        with store.open(key) as f:
            return f.read()

    # -- round trip and content addressing -------------------------------------------------

    def test_round_trip(self, store: BlobStore) -> None:
        data = b"col1,col2\na,b\n"
        info = store.put(as_stream(data))
        assert info.sha256 == hashlib.sha256(data).hexdigest()
        assert info.size == len(data)
        assert info.key == f"sha256/{info.sha256[:2]}/{info.sha256[2:4]}/{info.sha256}"
        assert KEY_PATTERN.fullmatch(info.key)
        assert store.exists(info.key)
        assert store.size(info.key) == len(data)
        assert self.read_all(store, info.key) == data
        self.assert_clean(store)

    def test_empty_blob(self, store: BlobStore) -> None:
        info = store.put(as_stream(b""))
        assert info.key == _key_of(b"")
        assert info.size == 0
        assert store.size(info.key) == 0
        assert self.read_all(store, info.key) == b""
        assert store.read_range(info.key, 0, 10) == b""

    def test_same_bytes_same_key_one_copy(self, store: BlobStore) -> None:
        first = store.put(as_stream(b"same bytes"))
        second = store.put(as_stream(b"same bytes"))
        assert first == second
        assert list(store.keys()) == [first.key]
        assert self.read_all(store, first.key) == b"same bytes"
        self.assert_clean(store)

    def test_different_bytes_different_keys(self, store: BlobStore) -> None:
        a = store.put(as_stream(b"a"))
        b = store.put(as_stream(b"b"))
        assert a.key != b.key
        assert sorted(store.keys()) == sorted([a.key, b.key])
        assert self.read_all(store, a.key) == b"a"
        assert self.read_all(store, b.key) == b"b"

    def test_open_streams_in_pieces(self, store: BlobStore) -> None:
        data = bytes(range(256)) * 64
        key = store.put(as_stream(data)).key
        with store.open(key) as f:
            pieces = [f.read(1000)]
            while piece := f.read(1000):
                pieces.append(piece)
        assert b"".join(pieces) == data
        assert max(len(p) for p in pieces) <= 1000

    def test_two_readers_do_not_interfere(self, store: BlobStore) -> None:
        key = store.put(as_stream(b"0123456789")).key
        with store.open(key) as first, store.open(key) as second:
            assert first.read(4) == b"0123"
            assert second.read(2) == b"01"
            assert first.read() == b"456789"
            assert second.read() == b"23456789"

    def test_modified_is_recent_and_aware(self, store: BlobStore) -> None:
        key = store.put(as_stream(b"when")).key
        when = store.modified(key)
        assert when.tzinfo is not None
        assert abs(datetime.now(UTC) - when) < timedelta(minutes=5)

    def test_put_again_refreshes_the_time(self, store: BlobStore) -> None:
        key = store.put(as_stream(b"old orphan")).key
        self.age_blob(store, key, timedelta(days=2))
        assert datetime.now(UTC) - store.modified(key) > timedelta(days=1)
        store.put(as_stream(b"old orphan"))
        assert datetime.now(UTC) - store.modified(key) < timedelta(minutes=5)
        assert store.remove_unreferenced(set()) == 0
        assert store.exists(key)

    def test_concurrent_puts(self, store: BlobStore) -> None:
        same = b"x" * (CHUNK_SIZE + 17)
        errors: list[BaseException] = []
        results: list[str] = []

        def work(i: int) -> None:
            try:
                results.append(store.put(as_stream(same)).key)
                results.append(store.put(as_stream(b"own %d" % i)).key)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert set(store.keys()) == {_key_of(same)} | {_key_of(b"own %d" % i) for i in range(8)}
        assert self.read_all(store, _key_of(same)) == same
        self.assert_clean(store)

    # -- streaming and limits --------------------------------------------------------------

    def test_large_put_streams(self, store: BlobStore) -> None:
        total = 4 * 1000 * 1000 + 3 if self.in_memory else self.large_size
        stream = GeneratedStream(total)
        tracemalloc.start()
        try:
            info = store.put(cast(BinaryIO, stream))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert stream.consumed == total
        assert 0 < stream.largest_request <= 16 * 1024 * 1024
        assert info.size == total
        assert info.sha256 == GeneratedStream.digest_of(total)
        if not self.in_memory:
            assert peak < 16 * 1024 * 1024, f"put held {peak} bytes for a {total}-byte stream"
        digest = hashlib.sha256()
        with store.open(info.key) as f:
            while chunk := f.read(CHUNK_SIZE):
                digest.update(chunk)
        assert digest.hexdigest() == info.sha256
        assert store.size(info.key) == total
        self.assert_clean(store)

    def test_max_size_refused_and_nothing_left(self, store: BlobStore) -> None:
        with pytest.raises(BlobTooLarge) as caught:
            store.put(as_stream(b"x" * 11), max_size=10)
        assert isinstance(caught.value, ValidationFailed)
        assert caught.value.errors == {"upload": ["File is larger than 10 bytes"]}
        assert caught.value.max_size == 10
        assert list(store.keys()) == []
        assert not store.exists(_key_of(b"x" * 11))
        self.assert_clean(store)

    def test_max_size_is_inclusive(self, store: BlobStore) -> None:
        assert store.put(as_stream(b"x" * 10), max_size=10).size == 10
        assert store.put(as_stream(b""), max_size=0).size == 0

    def test_max_size_stops_reading_early(self, store: BlobStore) -> None:
        stream = GeneratedStream(40 * CHUNK_SIZE)
        with pytest.raises(BlobTooLarge):
            store.put(cast(BinaryIO, stream), max_size=CHUNK_SIZE + 1)
        assert stream.consumed <= 3 * CHUNK_SIZE
        assert list(store.keys()) == []
        self.assert_clean(store)

    def test_negative_max_size(self, store: BlobStore) -> None:
        with pytest.raises(ValueError):
            store.put(as_stream(b"x"), max_size=-1)

    def test_failing_stream_leaves_nothing(self, store: BlobStore) -> None:
        stream = failing_stream(10 * CHUNK_SIZE, fail_after=2 * CHUNK_SIZE)
        with pytest.raises(OSError, match="simulated"):
            store.put(cast(BinaryIO, stream))
        assert list(store.keys()) == []
        self.assert_clean(store)

    def test_old_content_survives_a_failed_put(self, store: BlobStore) -> None:
        key = store.put(as_stream(b"keep me")).key
        with pytest.raises(BlobTooLarge):
            store.put(as_stream(b"keep me, and more"), max_size=7)
        assert self.read_all(store, key) == b"keep me"
        assert list(store.keys()) == [key]

    # -- ranges ----------------------------------------------------------------------------

    def test_ranges(self, store: BlobStore) -> None:
        data = bytes(range(256)) * 4
        key = store.put(as_stream(data)).key
        for start, end in [
            (0, 0),
            (0, 1),
            (0, 10),
            (10, 20),
            (255, 257),
            (1000, 1024),
            (0, 1024),
            (1023, 1024),
            (1000, 5000),
            (1024, 1030),
            (2000, 3000),
            (5, 5),
        ]:
            assert store.read_range(key, start, end) == data[start:end], (start, end)

    def test_bad_ranges(self, store: BlobStore) -> None:
        key = store.put(as_stream(b"0123456789")).key
        for start, end in [(-1, 5), (5, 4), (0, MAX_RANGE_BYTES + 1)]:
            with pytest.raises(ValueError):
                store.read_range(key, start, end)
        assert store.read_range(key, 0, MAX_RANGE_BYTES) == b"0123456789"

    def test_range_of_missing_key(self, store: BlobStore) -> None:
        with pytest.raises(NotFound):
            store.read_range(_key_of(b"missing"), 0, 10)

    def test_round_trip_and_ranges_of_random_blobs(self, store: BlobStore) -> None:
        @settings(
            max_examples=self.hypothesis_examples,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        )
        @given(
            data=st.binary(max_size=3000),
            start=st.integers(0, 3500),
            length=st.integers(0, 3500),
        )
        def check(data: bytes, start: int, length: int) -> None:
            info = store.put(as_stream(data))
            assert info.key == _key_of(data)
            assert self.read_all(store, info.key) == data
            assert store.read_range(info.key, start, start + length) == data[start : start + length]

        check()

    # -- missing and invalid keys ----------------------------------------------------------

    def test_missing_key(self, store: BlobStore) -> None:
        key = _key_of(b"never stored")
        assert not store.exists(key)
        with pytest.raises(NotFound):
            store.open(key)
        with pytest.raises(NotFound):
            store.size(key)
        with pytest.raises(NotFound):
            store.modified(key)

    @pytest.mark.parametrize("key", INVALID_KEYS)
    def test_invalid_keys_refused_before_storage(
        self, store: BlobStore, key: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def untouchable(*args: object, **kwargs: object) -> Any:
            raise AssertionError("storage was touched with an invalid key")

        for hook in ("_open", "_read_range", "_size", "_modified", "_exists", "_delete"):
            monkeypatch.setattr(store, hook, untouchable)
        calls: list[Callable[[], object]] = [
            lambda: store.open(key),
            lambda: store.read_range(key, 0, 10),
            lambda: store.size(key),
            lambda: store.modified(key),
            lambda: store.exists(key),
            lambda: store.delete(key),
        ]
        if isinstance(store, SupportsSignedUrls):
            calls.append(lambda: store.signed_url(key, expires_in=timedelta(minutes=5)))
        for call in calls:
            with pytest.raises(InvalidBlobKey) as caught:
                call()
            assert isinstance(caught.value, ValidationFailed)
            assert isinstance(caught.value, ValueError)
            assert set(caught.value.errors) == {"key"}

    @pytest.mark.parametrize("key", [None, b"sha256/ab/ab/" + _HEX.encode(), 42])
    def test_non_string_keys(self, store: BlobStore, key: Any) -> None:
        with pytest.raises(InvalidBlobKey):
            store.exists(key)

    # -- delete, keys and sweeps -----------------------------------------------------------

    def test_delete_is_idempotent(self, store: BlobStore) -> None:
        key = store.put(as_stream(b"delete me")).key
        store.delete(key)
        assert not store.exists(key)
        store.delete(key)
        store.delete(_key_of(b"never stored"))
        with pytest.raises(NotFound):
            store.open(key)
        assert list(store.keys()) == []

    def test_keys_lists_blobs_only(self, store: BlobStore) -> None:
        assert list(store.keys()) == []
        stored = {store.put(as_stream(b"blob %d" % i)).key for i in range(5)}
        self.plant_temporary(store, age=timedelta(0))
        assert set(store.keys()) == stored
        assert len(list(store.keys())) == 5
        listing = store.keys()
        for key in listing:
            store.delete(key)  # deleting while iterating is allowed
        assert list(store.keys()) == []

    def test_remove_unreferenced(self, store: BlobStore) -> None:
        a, b, c = (store.put(as_stream(x)).key for x in (b"a", b"b", b"c"))
        # fresh orphans are kept by the default grace period
        assert store.remove_unreferenced({a}) == 0
        assert set(store.keys()) == {a, b, c}
        self.age_blob(store, b, timedelta(hours=2))
        assert store.remove_unreferenced({a, "not a key", "../x"}) == 1
        assert set(store.keys()) == {a, c}
        assert store.remove_unreferenced([a], older_than=timedelta(0)) == 1
        assert set(store.keys()) == {a}
        assert store.remove_unreferenced({a}, older_than=timedelta(0)) == 0
        assert store.remove_unreferenced(set(), older_than=timedelta(0)) == 1
        assert list(store.keys()) == []
        with pytest.raises(ValueError):
            store.remove_unreferenced(set(), older_than=timedelta(seconds=-1))

    def test_sweep_temporary(self, store: BlobStore) -> None:
        key = store.put(as_stream(b"a real blob")).key
        self.plant_temporary(store, age=timedelta(hours=2))
        self.plant_temporary(store, age=timedelta(minutes=1))
        assert len(self.temporaries(store)) == 2
        assert store.sweep_temporary(timedelta(hours=1)) == 1
        assert len(self.temporaries(store)) == 1
        assert store.sweep_temporary(timedelta(hours=1)) == 0
        assert store.sweep_temporary(timedelta(0)) == 1
        self.assert_clean(store)
        assert self.read_all(store, key) == b"a real blob"
        with pytest.raises(ValueError):
            store.sweep_temporary(timedelta(seconds=-1))

    def test_close_is_idempotent(self, store: BlobStore) -> None:
        store.close()
        store.close()

    # -- capability: signed URLs -----------------------------------------------------------

    def test_signed_urls(self, store: BlobStore) -> None:
        if not isinstance(store, SupportsSignedUrls):
            pytest.skip("the store does not sign URLs")
        key = store.put(as_stream(b"signed")).key
        url = store.signed_url(key, expires_in=timedelta(minutes=10))
        assert isinstance(url, str)
        assert url
        with pytest.raises(NotFound):
            store.signed_url(_key_of(b"missing"), expires_in=timedelta(minutes=10))
        for expires_in in (timedelta(0), -timedelta(seconds=1), MAX_SIGNED_URL_LIFETIME * 2):
            with pytest.raises(ValueError):
                store.signed_url(key, expires_in=expires_in)
        with pytest.raises(ValueError):
            store.signed_url(key, expires_in=timedelta(minutes=10), method="PUT")
