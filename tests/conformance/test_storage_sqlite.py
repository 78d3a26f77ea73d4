"""The storage conformance kit against SQLite (a file, and in memory), plus SQLite specifics:
pragmas, options, migrations and error translation."""

from __future__ import annotations

import importlib
import multiprocessing
import pkgutil
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from opencatalog.adapters.sqlalchemy import SqlAlchemyStorage, migrations
from opencatalog.adapters.sqlalchemy.tables import metadata
from opencatalog.errors import BackendError, ConfigurationError
from opencatalog.ports.storage import DatasetFilter
from opencatalog.testing.storage import (
    StorageTests,
    make_dataset,
    make_resource_file,
    store,
    store_files,
)


class TestSqliteFileStorage(StorageTests):
    @pytest.fixture
    def storage(self, tmp_path: Path) -> Iterator[SqlAlchemyStorage]:
        storage = SqlAlchemyStorage.from_url(f"sqlite:///{tmp_path / 'catalog.db'}")
        storage.initialize()
        yield storage
        storage.close()


class TestSqliteMemoryStorage(StorageTests):
    concurrent_units_of_work = False

    @pytest.fixture
    def storage(self) -> Iterator[SqlAlchemyStorage]:
        storage = SqlAlchemyStorage.from_url("sqlite://")
        storage.initialize()
        yield storage
        storage.close()


# -- SQLite specifics ------------------------------------------------------------------------


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "catalog.db"


@pytest.fixture
def file_storage(db_path: Path) -> Iterator[SqlAlchemyStorage]:
    storage = SqlAlchemyStorage.from_url(f"sqlite:///{db_path}")
    storage.initialize()
    yield storage
    storage.close()


def _pragma(storage: SqlAlchemyStorage, name: str) -> object:
    with storage.unit_of_work() as uow:
        return uow.connection.exec_driver_sql(f"PRAGMA {name}").scalar()


def test_pragmas_make_commits_durable_and_writers_wait(file_storage: SqlAlchemyStorage) -> None:
    assert _pragma(file_storage, "journal_mode") == "wal"
    assert _pragma(file_storage, "synchronous") == 2  # FULL
    assert _pragma(file_storage, "foreign_keys") == 1
    assert int(str(_pragma(file_storage, "busy_timeout"))) >= 5000
    assert int(str(_pragma(file_storage, "cache_size"))) == -65536


def test_options_change_the_pragmas(db_path: Path) -> None:
    storage = SqlAlchemyStorage.from_url(
        f"sqlite:///{db_path}", synchronous="normal", busy_timeout=9000, cache_size_kib=1024
    )
    try:
        assert _pragma(storage, "synchronous") == 1  # NORMAL
        assert _pragma(storage, "busy_timeout") == 9000
        assert _pragma(storage, "cache_size") == -1024
        assert storage.describe()["synchronous"] == "NORMAL"
    finally:
        storage.close()


@pytest.mark.parametrize(
    ("url", "options"),
    [
        ("sqlite:///x.db", {"no_such_option": 1}),
        ("sqlite:///x.db", {"synchronous": "off"}),
        ("sqlite:///x.db", {"busy_timeout": "soon"}),
        ("sqlite+aiosqlite:///x.db", {}),
        ("mysql://localhost/db", {}),
        ("not a url", {}),
        ("postgresql+psycopg2://localhost/db", {}),
        ("postgresql://localhost/db", {"synchronous": "full"}),
    ],
)
def test_bad_urls_and_options_raise_configuration_error(
    url: str, options: dict[str, object]
) -> None:
    with pytest.raises(ConfigurationError):
        SqlAlchemyStorage.from_url(url, **options)


def test_from_url_connects_to_nothing(tmp_path: Path) -> None:
    path = tmp_path / "never.db"
    storage = SqlAlchemyStorage.from_url(f"sqlite:///{path}")
    storage.close()
    assert not path.exists()


def test_write_units_of_work_take_the_write_lock_at_begin(file_storage: SqlAlchemyStorage) -> None:
    with file_storage.unit_of_work(write=True) as uow:
        assert uow.connection.connection.dbapi_connection.in_transaction  # type: ignore[union-attr]
        # A second writer cannot start while this one is open (BEGIN IMMEDIATE held).
        other = SqlAlchemyStorage.from_url(
            file_storage.engine.url.render_as_string(), busy_timeout=50
        )
        try:
            with pytest.raises(BackendError, match="busy"), other.unit_of_work(write=True):
                pass
            with other.unit_of_work() as reader:  # readers still proceed
                assert reader.datasets.count(DatasetFilter()) == 0
        finally:
            other.close()


def test_writing_in_a_read_unit_of_work_is_refused(file_storage: SqlAlchemyStorage) -> None:
    with file_storage.unit_of_work() as uow, pytest.raises(BackendError, match="read-only"):
        uow.datasets.add(make_dataset())


def test_in_memory_storage_refuses_a_second_unit_of_work_in_one_thread() -> None:
    storage = SqlAlchemyStorage.from_url("sqlite://")
    storage.initialize()
    try:
        with storage.unit_of_work(), pytest.raises(BackendError, match="one unit of work"):
            storage.unit_of_work()
        # The lock was released: the storage still works, from other threads too.
        errors: list[BaseException] = []

        def use() -> None:
            try:
                store(storage, make_dataset())
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=use)
        thread.start()
        thread.join()
        assert not errors
        with storage.unit_of_work() as uow:
            assert uow.datasets.count(DatasetFilter()) == 1
    finally:
        storage.close()


def test_a_closed_storage_raises_backend_error(tmp_path: Path) -> None:
    storage = SqlAlchemyStorage.from_url(f"sqlite:///{tmp_path / 'c.db'}")
    storage.initialize()
    storage.close()
    with pytest.raises(BackendError):
        storage.unit_of_work()


def test_driver_errors_are_wrapped(tmp_path: Path) -> None:
    storage = SqlAlchemyStorage.from_url(f"sqlite:///{tmp_path / 'missing-dir' / 'c.db'}")
    try:
        with pytest.raises(BackendError) as err:
            storage.initialize()
        assert err.value.__cause__ is not None
    finally:
        storage.close()


def test_queries_before_initialize_raise_backend_error(tmp_path: Path) -> None:
    storage = SqlAlchemyStorage.from_url(f"sqlite:///{tmp_path / 'c.db'}")
    try:
        with storage.unit_of_work() as uow, pytest.raises(BackendError):
            uow.datasets.get("x")
    finally:
        storage.close()


# -- migrations ---------------------------------------------------------------------------


def test_initialize_is_idempotent_and_describe_reports_the_revision(db_path: Path) -> None:
    storage = SqlAlchemyStorage.from_url(f"sqlite:///{db_path}")
    try:
        assert storage.current_revision() is None
        storage.initialize()
        store(storage, make_dataset("kept"))
        storage.initialize()
        head = SqlAlchemyStorage.head_revision()
        assert head is not None
        assert storage.current_revision() == head
        info = storage.describe()
        assert info["dialect"] == "sqlite"
        assert info["schema_revision"] == head and info["schema_current"] is True
        with storage.unit_of_work() as uow:
            assert uow.datasets.get_by_name("kept") is not None
    finally:
        storage.close()


def _load_every_table_module() -> None:
    """Import every module of the adapter, so that ``metadata`` holds every table."""
    import opencatalog.adapters.sqlalchemy as package

    for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        if not info.name.endswith(".migrations"):
            importlib.import_module(info.name)


def test_migrated_schema_matches_the_tables_module(file_storage: SqlAlchemyStorage) -> None:
    _load_every_table_module()
    with file_storage.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        diff = compare_metadata(context, metadata)
    # Expression indexes (DESC) are not compared reliably by autogenerate; skip them.
    relevant = [d for d in diff if "ix_dataset_modified_name" not in repr(d)]
    assert relevant == []


def test_a_database_from_a_newer_version_is_refused(file_storage: SqlAlchemyStorage) -> None:
    with file_storage.engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = 'ffffffff'")
    with pytest.raises(ConfigurationError, match="newer"):
        file_storage.initialize()


def test_a_database_at_revision_0002_is_upgraded_keeping_its_data(db_path: Path) -> None:
    storage = SqlAlchemyStorage.from_url(f"sqlite:///{db_path}")
    try:
        with storage.engine.begin() as connection:
            migrations.upgrade(connection, "0002")
        assert storage.current_revision() == "0002"
        ds = make_dataset("older", resources=1)
        store(storage, ds)
        storage.initialize()
        assert storage.current_revision() == SqlAlchemyStorage.head_revision() == "0003"
        record = make_resource_file(ds.resources[0].id, ds.id)
        store_files(storage, record)
        with storage.unit_of_work() as uow:
            assert uow.datasets.get(ds.id) == ds
            assert uow.files.get(record.resource_id) == record
    finally:
        storage.close()


def test_migrations_ship_inside_the_package() -> None:
    location = Path(migrations.script_location())
    assert (location / "env.py").is_file()
    assert (location / "script.py.mako").is_file()
    assert any(location.joinpath("versions").glob("0001_*.py"))


def _initialize_in_process(url: str, start: object) -> None:
    start.wait()  # type: ignore[attr-defined]
    storage = SqlAlchemyStorage.from_url(url)
    try:
        storage.initialize()
    finally:
        storage.close()


def test_concurrent_initialize_from_several_processes(db_path: Path) -> None:
    url = f"sqlite:///{db_path}"
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=_initialize_in_process, args=(url, start)) for _ in range(4)]
    for proc in procs:
        proc.start()
    start.set()
    for proc in procs:
        proc.join(60)
    assert [proc.exitcode for proc in procs] == [0, 0, 0, 0]
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        versions = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    finally:
        conn.close()
    assert versions == [(SqlAlchemyStorage.head_revision(),)]
