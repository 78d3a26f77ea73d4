"""The blob store conformance kit against every built-in blob store.

MemoryBlobStore (the fake), FsspecBlobStore on a local folder (``file://``), on fsspec's
in-memory filesystem (``memory://``, a unique prefix per test) and on a memory filesystem that
signs URLs (standing in for S3, whose signing goes through the same fsspec ``sign`` call).
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fsspec
import pytest
from fsspec.implementations.memory import MemoryFileSystem

from opencatalog import registry
from opencatalog.adapters.fsspec_blobs import (
    FsspecBlobStore,
    FsspecSigningBlobStore,
    _created_from_name,
    _temporary_name,
)
from opencatalog.adapters.memory_blobs import MemoryBlobStore
from opencatalog.errors import BackendError, ConfigurationError
from opencatalog.ports.blobs import BlobStore, InvalidBlobKey
from opencatalog.ports.capabilities import SupportsSignedUrls
from opencatalog.testing.blobs import BlobStoreTests, as_stream


class TestMemoryBlobStore(BlobStoreTests):
    in_memory = True

    @pytest.fixture
    def store(self) -> Iterator[BlobStore]:
        s = MemoryBlobStore.from_url("memory://")
        yield s
        s.close()

    def temporaries(self, store: BlobStore) -> list[str]:
        assert isinstance(store, MemoryBlobStore)
        return list(store._temporaries)

    def plant_temporary(self, store: BlobStore, *, age: timedelta) -> None:
        assert isinstance(store, MemoryBlobStore)
        when = datetime.now(UTC) - age
        store._temporaries[str(uuid.uuid4())] = (bytearray(b"partial"), when)

    def age_blob(self, store: BlobStore, key: str, age: timedelta) -> None:
        assert isinstance(store, MemoryBlobStore)
        data, _ = store._blobs[key]
        store._blobs[key] = (data, datetime.now(UTC) - age)


class _FsspecBackdoors(BlobStoreTests):
    def temporaries(self, store: BlobStore) -> list[str]:
        assert isinstance(store, FsspecBlobStore)
        try:
            return list(store.fs.find(f"{store.root}/tmp"))
        except FileNotFoundError:
            return []

    def _set_time(self, store: FsspecBlobStore, path: str, when: datetime) -> None:
        if isinstance(store.fs, MemoryFileSystem):
            stored = store.fs.store[path]
            stored.created = stored.modified = when
        else:
            os.utime(path, (when.timestamp(), when.timestamp()))

    def plant_temporary(self, store: BlobStore, *, age: timedelta) -> None:
        assert isinstance(store, FsspecBlobStore)
        when = datetime.now(UTC) - age
        path = f"{store.root}/tmp/{_temporary_name(when)}"
        store.fs.makedirs(f"{store.root}/tmp", exist_ok=True)
        store.fs.pipe_file(path, b"partial")
        self._set_time(store, path, when)

    def age_blob(self, store: BlobStore, key: str, age: timedelta) -> None:
        assert isinstance(store, FsspecBlobStore)
        self._set_time(store, f"{store.root}/{key}", datetime.now(UTC) - age)


class TestFsspecLocalBlobStore(_FsspecBackdoors):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[BlobStore]:
        s = FsspecBlobStore.from_url((tmp_path / "blobs").as_uri())
        yield s
        s.close()

    def test_layout_on_disk(self, store: BlobStore, tmp_path: Path) -> None:
        info = store.put(as_stream(b"on disk"))
        path = tmp_path / "blobs" / info.key
        assert path.read_bytes() == b"on disk"
        assert sorted(p.name for p in (tmp_path / "blobs").iterdir()) == ["sha256", "tmp"]
        assert list((tmp_path / "blobs" / "tmp").iterdir()) == []

    def test_traversal_cannot_reach_outside(self, store: BlobStore, tmp_path: Path) -> None:
        (tmp_path / "secret").write_bytes(b"secret")
        for key in ("../secret", "sha256/../../secret", str(tmp_path / "secret")):
            with pytest.raises(InvalidBlobKey):
                store.open(key)
            with pytest.raises(InvalidBlobKey):
                store.delete(key)
        assert (tmp_path / "secret").read_bytes() == b"secret"

    def test_foreign_files_are_not_keys(self, store: BlobStore, tmp_path: Path) -> None:
        key = store.put(as_stream(b"mine")).key
        (tmp_path / "blobs" / "sha256" / "README").write_text("not a blob")
        assert list(store.keys()) == [key]
        assert store.remove_unreferenced(set(), older_than=timedelta(0)) == 1
        assert (tmp_path / "blobs" / "sha256" / "README").exists()

    def test_unsigned_on_local_files(self, store: BlobStore) -> None:
        assert not isinstance(store, SupportsSignedUrls)

    def test_no_fsync_option(self, tmp_path: Path) -> None:
        s = FsspecBlobStore.from_url((tmp_path / "fast").as_uri(), fsync=False)
        assert s.read_range(s.put(as_stream(b"quick")).key, 0, 5) == b"quick"

    def test_write_failure_is_a_backend_error(
        self, store: BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        assert isinstance(store, FsspecBlobStore)

        def refuse(path: str, *args: Any, **kwargs: Any) -> Any:
            raise PermissionError(13, "Permission denied", path)

        monkeypatch.setattr(store.fs, "open", refuse)
        with pytest.raises(BackendError) as caught:
            store.put(as_stream(b"no room"))
        assert str(tmp_path) not in str(caught.value)
        monkeypatch.undo()
        self.assert_clean(store)
        assert list(store.keys()) == []


class TestFsspecMemoryBlobStore(_FsspecBackdoors):
    in_memory = True

    @pytest.fixture
    def store(self) -> Iterator[BlobStore]:
        prefix = f"memory://opencatalog-tests/{uuid.uuid4().hex}"
        s = FsspecBlobStore.from_url(prefix)
        yield s
        s.close()
        if s.fs.exists(s.root):
            s.fs.rm(s.root, recursive=True)


class _SigningMemoryFileSystem(MemoryFileSystem):
    """fsspec memory with a ``sign`` like s3fs's: path and expiration in, URL out."""

    protocol = ("signmem",)

    def sign(self, path: str, expiration: int = 100, **kwargs: Any) -> str:
        return f"https://blobs.example.org{path}?expires={expiration}&signature=fake"


class TestFsspecSigningBlobStore(_FsspecBackdoors):
    in_memory = True
    hypothesis_examples = 10

    @pytest.fixture
    def store(self) -> Iterator[BlobStore]:
        fs = _SigningMemoryFileSystem()
        s = FsspecBlobStore.for_filesystem(fs, f"/signing-tests/{uuid.uuid4().hex}")
        yield s
        s.close()

    def test_is_a_signing_store(self, store: BlobStore) -> None:
        assert isinstance(store, FsspecSigningBlobStore)
        assert isinstance(store, SupportsSignedUrls)
        key = store.put(as_stream(b"x")).key
        url = store.signed_url(key, expires_in=timedelta(minutes=15))
        assert url.endswith("expires=900&signature=fake")
        assert key in url


# -- opening by URL -------------------------------------------------------------------------


def test_registry_names() -> None:
    """The entry points the package declares; registered here by hand until they exist."""
    expected = {
        "file": "opencatalog.adapters.fsspec_blobs:FsspecBlobStore.from_url",
        "memory": "opencatalog.adapters.memory_blobs:MemoryBlobStore.from_url",
        "s3": "opencatalog.adapters.fsspec_blobs:FsspecBlobStore.from_url",
    }
    for target in expected.values():
        module, _, attr = target.partition(":")
        obj: Any = __import__(module, fromlist=["_"])
        for part in attr.split("."):
            obj = getattr(obj, part)
        assert callable(obj)
    available = registry.available("blobs")
    for name, target in expected.items():
        if name in available:
            assert available[name] == target


def test_memory_store_by_url_is_fresh() -> None:
    a = MemoryBlobStore.from_url("memory://")
    b = MemoryBlobStore.from_url("memory://")
    a.put(as_stream(b"only in a"))
    assert list(b.keys()) == []
    with pytest.raises(ConfigurationError):
        MemoryBlobStore.from_url("file:///tmp/x")
    with pytest.raises(ConfigurationError):
        MemoryBlobStore.from_url("memory://", bogus=1)


@pytest.mark.parametrize(
    "url",
    [
        "file://relative/dir",
        "file://host/abs",
        "nonsense-protocol-xyz://x",
        "no-scheme",
        "memory://",
    ],
)
def test_bad_urls(url: str) -> None:
    with pytest.raises(ConfigurationError):
        FsspecBlobStore.from_url(url)


def test_s3_without_s3fs_gives_an_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "s3fs", None)  # makes `import s3fs` fail
    with pytest.raises(ConfigurationError, match=r"opencatalog\[s3\]"):
        FsspecBlobStore.from_url("s3://bucket/prefix")


def test_local_root_is_created(tmp_path: Path) -> None:
    root = tmp_path / "a" / "b"
    FsspecBlobStore.from_url(root.as_uri())
    assert root.is_dir()


def test_memory_url_gives_the_fsspec_memory_filesystem() -> None:
    s = FsspecBlobStore.from_url(f"memory://bucket/{uuid.uuid4().hex}")
    assert isinstance(s.fs, MemoryFileSystem)
    assert not isinstance(s, SupportsSignedUrls)
    fs, _ = fsspec.url_to_fs("memory://x")
    assert fs is s.fs  # fsspec shares one memory filesystem per process


def test_temporary_names_carry_their_time() -> None:
    when = datetime(2024, 5, 1, 12, 30, 15, 123000, tzinfo=UTC)
    name = _temporary_name(when)
    assert uuid.UUID(name).version == 7
    assert _created_from_name(name) == when
    assert _created_from_name(str(uuid.uuid4())) is None
    assert _created_from_name("not-a-uuid") is None
    assert _temporary_name(when) != name
