"""The storage conformance kit against PostgreSQL (a fresh database per test), plus
PostgreSQL specifics: URL normalisation, row locks and migrations."""

from __future__ import annotations

import importlib
import pkgutil
import threading
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from opencatalog.adapters.sqlalchemy import SqlAlchemyStorage, migrations
from opencatalog.adapters.sqlalchemy.tables import metadata
from opencatalog.errors import AlreadyExists, BackendError
from opencatalog.ports.storage import DatasetFilter
from opencatalog.testing.storage import (
    StorageTests,
    bump,
    make_dataset,
    make_resource_file,
    store,
    store_files,
)

pytestmark = pytest.mark.postgres


class TestPostgresStorage(StorageTests):
    @pytest.fixture
    def storage(self, postgres_url: str) -> Iterator[SqlAlchemyStorage]:
        storage = SqlAlchemyStorage.from_url(postgres_url)
        storage.initialize()
        yield storage
        storage.close()


@pytest.fixture
def pg_storage(postgres_url: str) -> Iterator[SqlAlchemyStorage]:
    storage = SqlAlchemyStorage.from_url(postgres_url)
    storage.initialize()
    yield storage
    storage.close()


def test_urls_are_normalised_to_psycopg_3(postgres_url: str) -> None:
    for scheme in ("postgresql://", "postgresql+psycopg://", "postgres://"):
        url = postgres_url.replace("postgresql://", scheme, 1)
        storage = SqlAlchemyStorage.from_url(url)
        try:
            assert storage.engine.dialect.driver == "psycopg"
            info = storage.describe()
            assert info["dialect"] == "postgresql"
            assert "password" not in str(info["url"]) or "***" in str(info["url"])
        finally:
            storage.close()


def test_initialize_is_idempotent_and_concurrent(postgres_url: str) -> None:
    storages = [SqlAlchemyStorage.from_url(postgres_url) for _ in range(4)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(storages))

    def init(storage: SqlAlchemyStorage) -> None:
        barrier.wait()
        try:
            storage.initialize()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=init, args=(s,)) for s in storages]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    try:
        assert not errors, errors
        assert storages[0].current_revision() == SqlAlchemyStorage.head_revision()
        storages[0].initialize()
    finally:
        for storage in storages:
            storage.close()


def _load_every_table_module() -> None:
    """Import every module of the adapter, so that ``metadata`` holds every table."""
    import opencatalog.adapters.sqlalchemy as package

    for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        if not info.name.endswith(".migrations"):
            importlib.import_module(info.name)


def test_migrated_schema_matches_the_tables_module(pg_storage: SqlAlchemyStorage) -> None:
    _load_every_table_module()
    with pg_storage.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        diff = compare_metadata(context, metadata)
    relevant = [d for d in diff if "ix_dataset_modified_name" not in repr(d)]
    assert relevant == []


def test_a_database_at_revision_0002_is_upgraded_keeping_its_data(postgres_url: str) -> None:
    storage = SqlAlchemyStorage.from_url(postgres_url)
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


def test_names_sort_by_code_point(pg_storage: SqlAlchemyStorage) -> None:
    names = ["a-b", "ab", "a_b", "A", "a", "b", "a-c"]
    store(pg_storage, *(make_dataset(n) for n in names))
    with pg_storage.unit_of_work() as uow:
        assert [d.name for d in uow.datasets.list(DatasetFilter())] == sorted(names)


def test_for_update_blocks_a_second_writer_until_commit(pg_storage: SqlAlchemyStorage) -> None:
    ds = make_dataset()
    store(pg_storage, ds)
    order: list[str] = []
    locked = threading.Event()

    def second() -> None:
        locked.wait(10)
        with pg_storage.unit_of_work(write=True) as uow:
            current = uow.datasets.get(ds.id, for_update=True)
            order.append("second-read")
            assert current is not None
            uow.datasets.save(bump(current, title="second"))
            uow.commit()

    thread = threading.Thread(target=second)
    thread.start()
    with pg_storage.unit_of_work(write=True) as uow:
        current = uow.datasets.get(ds.id, for_update=True)
        assert current is not None
        locked.set()
        thread.join(0.3)
        order.append("first-commit")
        uow.datasets.save(bump(current, title="first"))
        uow.commit()
    thread.join(10)
    assert order == ["first-commit", "second-read"]
    with pg_storage.unit_of_work() as uow:
        final = uow.datasets.get(ds.id)
    assert final is not None and final.title == "second" and final.revision == 3


def test_a_caught_clash_leaves_the_transaction_usable(pg_storage: SqlAlchemyStorage) -> None:
    store(pg_storage, make_dataset("taken"))
    fine = make_dataset("fine")
    with pg_storage.unit_of_work(write=True) as uow:
        with pytest.raises(AlreadyExists):
            uow.datasets.add(make_dataset("taken"))
        uow.datasets.add(fine)
        uow.commit()
    with pg_storage.unit_of_work() as uow:
        assert uow.datasets.get(fine.id) == fine


def test_bulk_copy_clashes_are_translated(pg_storage: SqlAlchemyStorage) -> None:
    first = make_dataset("taken", resources=1)
    store(pg_storage, first)
    batch = [make_dataset(resources=1) for _ in range(40)]
    for clash, field in (
        (make_dataset("taken"), "name"),
        (make_dataset(resources=[first.resources[0]]), "resources"),
    ):
        with pg_storage.unit_of_work(write=True) as uow:
            with pytest.raises(AlreadyExists) as err:
                uow.datasets.add_many([*batch, clash])
            assert err.value.field == field
            # The failed batch left nothing behind and the transaction goes on.
            assert uow.datasets.count(DatasetFilter()) == 1
            uow.datasets.add_many(batch)
            assert uow.datasets.count(DatasetFilter()) == 41


def test_a_lock_wait_ends_after_lock_timeout(postgres_url: str) -> None:
    storage = SqlAlchemyStorage.from_url(postgres_url, lock_timeout=200)
    try:
        storage.initialize()
        ds = make_dataset()
        store(storage, ds)
        with storage.unit_of_work(write=True) as holder:
            assert holder.datasets.get(ds.id, for_update=True) is not None
            with (
                storage.unit_of_work(write=True) as waiter,
                pytest.raises(BackendError, match="busy"),
            ):
                waiter.datasets.get(ds.id, for_update=True)
    finally:
        storage.close()
