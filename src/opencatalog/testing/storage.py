"""The storage conformance kit: every contract of :mod:`opencatalog.ports.storage` as tests.

A backend proves itself by subclassing :class:`StorageTests` in its own test suite and
overriding the ``storage`` fixture with a fresh, initialized, empty storage::

    import pytest
    from opencatalog.testing.storage import StorageTests

    class TestMyStorage(StorageTests):
        @pytest.fixture
        def storage(self, tmp_path):
            storage = MyStorage.from_url(f"my://{tmp_path}")
            storage.initialize()
            yield storage
            storage.close()

Class attributes switch off what a backend cannot do, with the reason in its docs:

* ``concurrent_units_of_work = False``: units of work of different threads never overlap in
  time (an in-memory SQLite database on one connection); the isolation tests that need two
  open units of work at once are skipped. Thread-safety tests still run.

The builders (:func:`make_dataset`, :func:`make_group` ...) are public so that backend authors
can write further tests in the same terms.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opencatalog.domain.files import HealthStatus, LinkHealth, PipelineStatus, ResourceFile
from opencatalog.domain.jobs import StepLog, StepStatus
from opencatalog.domain.model import (
    Activity,
    ApiToken,
    Capacity,
    Dataset,
    Group,
    Membership,
    Resource,
    State,
    Tag,
    User,
    Vocabulary,
)
from opencatalog.domain.permissions import Visibility
from opencatalog.errors import AlreadyExists, BackendError, Conflict, NotFound
from opencatalog.ports.storage import DatasetFilter, ResourceCriterion, Storage, UnitOfWork

__all__ = [
    "T0",
    "StorageTests",
    "bump",
    "make_activity",
    "make_dataset",
    "make_group",
    "make_organization",
    "make_resource",
    "make_resource_file",
    "make_token",
    "make_user",
    "make_vocabulary",
    "new_id",
    "store",
    "store_files",
]

#: A fixed instant with microseconds, so round trips check sub-second precision.
T0 = datetime(2024, 5, 17, 12, 30, 45, 123456, tzinfo=UTC)

ALL_STATES = frozenset(State)


# =============================================================================================
# Builders
# =============================================================================================


def new_id() -> str:
    """A fresh random uuid string."""
    return str(uuid.uuid4())


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def make_resource(package_id: str, *, position: int = 0, **fields: Any) -> Resource:
    """A resource of dataset ``package_id``; ``fields`` override the defaults."""
    values: dict[str, Any] = {
        "id": new_id(),
        "package_id": package_id,
        "url": f"https://example.org/files/{position}.csv",
        "name": f"File {position}",
        "format": "CSV",
        "position": position,
        "created": T0,
        "metadata_modified": T0,
    }
    values.update(fields)
    return Resource(**values)


def make_resource_file(
    resource_id: str | None = None, package_id: str | None = None, **fields: Any
) -> ResourceFile:
    """A pending resource file record (new ids unless given); ``fields`` override."""
    values: dict[str, Any] = {
        "resource_id": resource_id or new_id(),
        "package_id": package_id or new_id(),
        "updated": T0,
    }
    values.update(fields)
    return ResourceFile(**values)


def make_dataset(
    name: str | None = None,
    *,
    resources: int | Sequence[Resource] = 0,
    tags: Iterable[str | Tag] = (),
    **fields: Any,
) -> Dataset:
    """An active public dataset; ``resources`` is a count or the resources themselves, ``tags``
    names (free tags) or :class:`Tag` objects; ``fields`` override the defaults."""
    dataset_id = fields.pop("id", None) or new_id()
    if isinstance(resources, int):
        res = tuple(make_resource(dataset_id, position=i) for i in range(resources))
    else:
        res = tuple(resources)
    values: dict[str, Any] = {
        "id": dataset_id,
        "name": name or _name("ds"),
        "title": "A dataset",
        "tags": tuple(Tag(name=t) if isinstance(t, str) else t for t in tags),
        "resources": res,
        "metadata_created": T0,
        "metadata_modified": T0,
    }
    values.update(fields)
    return Dataset(**values)


def make_group(name: str | None = None, **fields: Any) -> Group:
    """An active group (not an organization)."""
    values: dict[str, Any] = {
        "id": new_id(),
        "name": name or _name("group"),
        "is_organization": False,
        "title": "A group",
        "created": T0,
    }
    values.update(fields)
    return Group(**values)


def make_organization(name: str | None = None, **fields: Any) -> Group:
    """An active organization."""
    fields.setdefault("type", "organization")
    return make_group(name or _name("org"), is_organization=True, **fields)


def make_user(name: str | None = None, **fields: Any) -> User:
    """An active user with an email derived from the name."""
    user_name = name or _name("user")
    values: dict[str, Any] = {
        "id": new_id(),
        "name": user_name,
        "email": f"{user_name}@example.org",
        "fullname": "A. User",
        "password_hash": "$argon2id$fake",
        "created": T0,
    }
    values.update(fields)
    return User(**values)


def make_token(user_id: str, **fields: Any) -> ApiToken:
    """An API token of ``user_id`` with a random hash."""
    values: dict[str, Any] = {
        "id": new_id(),
        "user_id": user_id,
        "name": "token",
        "token_hash": uuid.uuid4().hex,
        "created_at": T0,
    }
    values.update(fields)
    return ApiToken(**values)


def make_vocabulary(
    name: str | None = None, *, tags: Sequence[str] = (), **fields: Any
) -> Vocabulary:
    """A vocabulary with these tags."""
    values: dict[str, Any] = {"id": new_id(), "name": name or _name("vocab"), "tags": tuple(tags)}
    values.update(fields)
    return Vocabulary(**values)


def make_activity(object_id: str, *, timestamp: datetime = T0, **fields: Any) -> Activity:
    """A ``dataset.updated`` activity about ``object_id``."""
    values: dict[str, Any] = {
        "id": new_id(),
        "timestamp": timestamp,
        "user_id": None,
        "object_id": object_id,
        "object_type": "dataset",
        "activity_type": "dataset.updated",
        "data": {"name": "x", "nested": {"list": [1, 2.5, None, True, "é"]}},
        "permission_labels": ("public",),
    }
    values.update(fields)
    return Activity(**values)


def bump(obj: Any, **changes: Any) -> Any:
    """``obj`` with ``changes`` and its revision + 1 (what a service saves)."""
    return attrs.evolve(obj, revision=obj.revision + 1, **changes)


def store(storage: Storage, *objects: Any) -> None:
    """Add objects (datasets, groups, users, tokens, vocabularies, memberships, activities)
    in one write unit of work and commit."""
    with storage.unit_of_work(write=True) as uow:
        for obj in objects:
            _add(uow, obj)
        uow.commit()


def store_files(storage: Storage, *records: ResourceFile) -> None:
    """Put resource file records in one write unit of work and commit."""
    with storage.unit_of_work(write=True) as uow:
        for record in records:
            uow.files.put(record)
        uow.commit()


def _add(uow: UnitOfWork, obj: Any) -> None:
    if isinstance(obj, Dataset):
        uow.datasets.add(obj)
    elif isinstance(obj, Group):
        uow.groups.add(obj)
    elif isinstance(obj, User):
        uow.users.add(obj)
    elif isinstance(obj, ApiToken):
        uow.tokens.add(obj)
    elif isinstance(obj, Vocabulary):
        uow.vocabularies.add(obj)
    elif isinstance(obj, Membership):
        uow.memberships.put(obj)
    elif isinstance(obj, Activity):
        uow.activities.add(obj)
    else:
        raise TypeError(f"cannot store {type(obj).__name__}")


def _names(datasets: Iterable[Dataset]) -> list[str]:
    return [d.name for d in datasets]


def _assert_utc(value: datetime | None) -> None:
    assert value is not None
    assert value.tzinfo is not None and value.utcoffset() == timedelta(0), value


# Hypothesis strategies for round trips: any text a JSON document and a database column can
# hold (no surrogates, no NUL), datetimes with any fixed offset, JSON values in extras.
_text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=40)
_opt_text = st.none() | _text
_offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
_datetimes = st.datetimes(
    min_value=datetime(1900, 1, 2), max_value=datetime(2200, 1, 1), timezones=_offsets
)
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)


@st.composite
def _datasets(draw: st.DrawFn) -> Dataset:
    dataset_id = new_id()
    n_res = draw(st.integers(min_value=0, max_value=3))
    resources = tuple(
        Resource(
            id=new_id(),
            package_id=dataset_id,
            url=draw(_text),
            url_type=draw(st.sampled_from([None, "upload"])),
            name=draw(_opt_text),
            description=draw(_opt_text),
            format=draw(_opt_text),
            mimetype=draw(_opt_text),
            hash=draw(_opt_text),
            size=draw(st.none() | st.integers(min_value=0, max_value=2**62)),
            position=i,
            created=draw(_datetimes),
            last_modified=draw(st.none() | _datetimes),
            metadata_modified=draw(_datetimes),
            extras=draw(st.dictionaries(_text, _json, max_size=3)),
        )
        for i in range(n_res)
    )
    tag_names = draw(st.lists(_text.filter(bool), max_size=4, unique=True))
    vocab_tags = draw(st.lists(_text.filter(bool), max_size=2, unique=True))
    vocab_id = new_id()
    return Dataset(
        id=dataset_id,
        name=_name("hyp"),
        title=draw(_opt_text),
        notes=draw(_opt_text),
        url=draw(_opt_text),
        version=draw(_opt_text),
        author=draw(_opt_text),
        author_email=draw(_opt_text),
        maintainer=draw(_opt_text),
        maintainer_email=draw(_opt_text),
        license_id=draw(_opt_text),
        owner_org=draw(st.none() | st.just(new_id())),
        private=draw(st.booleans()),
        state=draw(st.sampled_from(list(State))),
        type=draw(st.sampled_from(["dataset", "harvest", "ünïcode"])),
        tags=tuple(Tag(name=t) for t in tag_names)
        + tuple(Tag(name=t, vocabulary_id=vocab_id) for t in vocab_tags),
        extras=draw(st.dictionaries(_text, _text, max_size=4)),
        groups=tuple(new_id() for _ in range(draw(st.integers(min_value=0, max_value=2)))),
        resources=resources,
        metadata_created=draw(_datetimes),
        metadata_modified=draw(_datetimes),
        creator_user_id=draw(st.none() | st.just(new_id())),
        revision=draw(st.integers(min_value=1, max_value=1000)),
    )


# =============================================================================================
# The kit
# =============================================================================================


class StorageTests:
    """Conformance tests for a :class:`~opencatalog.ports.storage.Storage` backend.

    Subclass it (with a ``Test`` prefix) and override the ``storage`` fixture.
    """

    #: Whether units of work of different threads (or two in one thread) may be open at once.
    concurrent_units_of_work: ClassVar[bool] = True

    @pytest.fixture
    def storage(self) -> Iterator[Storage]:
        """A fresh, initialized, empty storage. Backends override this fixture."""
        raise NotImplementedError("override the storage fixture in your StorageTests subclass")
        yield  # pragma: no cover

    def _requires_concurrency(self) -> None:
        if not self.concurrent_units_of_work:
            pytest.skip("this backend runs one unit of work at a time")

    # -- unit of work ----------------------------------------------------------------------

    def test_commit_makes_writes_visible(self, storage: Storage) -> None:
        ds = make_dataset()
        with storage.unit_of_work(write=True) as uow:
            uow.datasets.add(ds)
            uow.commit()
        with storage.unit_of_work() as uow:
            assert uow.datasets.get(ds.id) == ds

    def test_leaving_without_commit_rolls_back(self, storage: Storage) -> None:
        ds = make_dataset(resources=1, tags=["a"])
        user = make_user()
        with storage.unit_of_work(write=True) as uow:
            uow.datasets.add(ds)
            uow.users.add(user)
            uow.outbox.add("dataset", ds.id)
        with storage.unit_of_work() as uow:
            assert uow.datasets.get(ds.id) is None
            assert uow.datasets.find_by_resource(ds.resources[0].id) is None
            assert uow.users.get(user.id) is None
            assert uow.outbox.pending() == []
        # The names and resource ids are free again.
        store(storage, make_dataset(ds.name, resources=list(ds.resources)))

    def test_exception_rolls_back_and_propagates(self, storage: Storage) -> None:
        ds = make_dataset()

        class Boom(Exception):
            pass

        with pytest.raises(Boom), storage.unit_of_work(write=True) as uow:
            uow.datasets.add(ds)
            raise Boom
        with storage.unit_of_work() as uow:
            assert uow.datasets.get(ds.id) is None

    def test_explicit_rollback_discards_and_rollback_after_commit_is_harmless(
        self, storage: Storage
    ) -> None:
        kept, dropped = make_dataset(), make_dataset()
        with storage.unit_of_work(write=True) as uow:
            uow.datasets.add(kept)
            uow.commit()
            uow.rollback()
        with storage.unit_of_work(write=True) as uow:
            uow.datasets.add(dropped)
            uow.rollback()
        with storage.unit_of_work() as uow:
            assert uow.datasets.get(kept.id) == kept
            assert uow.datasets.get(dropped.id) is None

    def test_reads_see_own_uncommitted_writes(self, storage: Storage) -> None:
        org = make_organization()
        ds = make_dataset(owner_org=org.id, resources=1, tags=["own"])
        with storage.unit_of_work(write=True) as uow:
            uow.groups.add(org)
            uow.datasets.add(ds)
            assert uow.datasets.get(ds.id) == ds
            assert uow.datasets.get_by_name(ds.name) == ds
            assert uow.datasets.find_by_resource(ds.resources[0].id) == ds
            assert uow.datasets.count(DatasetFilter(tag="own")) == 1
            assert uow.groups.get_by_name(org.name) == org
            changed = bump(ds, title="changed")
            uow.datasets.save(changed)
            assert uow.datasets.get(ds.id) == changed
            uow.datasets.remove(ds.id)
            assert uow.datasets.get(ds.id) is None

    def test_uncommitted_writes_are_invisible_to_other_units_of_work(
        self, storage: Storage
    ) -> None:
        self._requires_concurrency()
        ds = make_dataset()
        with storage.unit_of_work(write=True) as writer:
            writer.datasets.add(ds)
            with storage.unit_of_work() as reader:
                assert reader.datasets.get(ds.id) is None
                assert reader.datasets.get_by_name(ds.name) is None
                assert reader.datasets.count(DatasetFilter()) == 0
            writer.commit()
        with storage.unit_of_work() as reader:
            assert reader.datasets.get(ds.id) == ds

    def test_readers_do_not_block_writers(self, storage: Storage) -> None:
        self._requires_concurrency()
        first, second = make_dataset(), make_dataset()
        store(storage, first)
        with storage.unit_of_work() as reader:
            assert reader.datasets.get(first.id) == first
            done = threading.Event()

            def write() -> None:
                store(storage, second)
                done.set()

            thread = threading.Thread(target=write)
            thread.start()
            assert done.wait(10), "a writer waited for an open read unit of work"
            thread.join()
        with storage.unit_of_work() as uow:
            assert uow.datasets.get(second.id) == second

    # -- datasets: CRUD and lookups -----------------------------------------------------------

    def test_dataset_round_trip_keeps_every_field(self, storage: Storage) -> None:
        dataset_id = new_id()
        resources = (
            make_resource(
                dataset_id,
                position=0,
                url_type="upload",
                description="déjà vu ✓",
                mimetype="text/csv",
                hash="sha256:abc",
                size=12345678901,
                last_modified=T0 + timedelta(seconds=1),
                extras={"any": [1, {"json": None}], "flag": True},
            ),
            make_resource(dataset_id, position=1),
        )
        ds = make_dataset(
            id=dataset_id,
            title="Title ü",
            notes="Notes\nwith lines",
            url="https://example.org",
            version="1.0",
            author="A",
            author_email="a@example.org",
            maintainer="M",
            maintainer_email="m@example.org",
            license_id="cc-by",
            owner_org=new_id(),
            private=True,
            state=State.DRAFT,
            type="harvest",
            tags=[Tag(name="water"), Tag(name="Water Quality"), Tag(name="x", vocabulary_id="v1")],
            extras={"spatial": "{}", "ключ": "значение"},
            groups=(new_id(), new_id()),
            resources=resources,
            creator_user_id=new_id(),
            revision=7,
            metadata_modified=T0 + timedelta(days=1),
        )
        store(storage, ds)
        with storage.unit_of_work() as uow:
            got = uow.datasets.get(ds.id)
        assert got == ds
        assert got is not None
        assert got.tags == ds.tags
        assert got.resources == ds.resources
        assert dict(got.extras) == dict(ds.extras)

    def test_dataset_lookups_of_missing_objects_return_none(self, storage: Storage) -> None:
        store(storage, make_dataset("present", resources=1))
        with storage.unit_of_work() as uow:
            assert uow.datasets.get(new_id()) is None
            assert uow.datasets.get_by_name("absent") is None
            assert uow.datasets.find_by_resource(new_id()) is None
            assert uow.datasets.get_many([]) == []

    def test_get_by_name_is_exact_and_case_sensitive(self, storage: Storage) -> None:
        ds = make_dataset("lower-name")
        store(storage, ds)
        with storage.unit_of_work() as uow:
            assert uow.datasets.get_by_name("lower-name") == ds
            assert uow.datasets.get_by_name("Lower-Name") is None
            assert uow.datasets.get_by_name("lower") is None
            assert uow.datasets.get_by_name(ds.id) is None

    def test_get_returns_datasets_in_any_state(self, storage: Storage) -> None:
        deleted = make_dataset(state=State.DELETED)
        draft = make_dataset(state=State.DRAFT, private=True)
        store(storage, deleted, draft)
        with storage.unit_of_work() as uow:
            assert uow.datasets.get(deleted.id) == deleted
            assert uow.datasets.get_by_name(draft.name) == draft

    def test_get_for_update_returns_the_dataset(self, storage: Storage) -> None:
        ds = make_dataset()
        store(storage, ds)
        with storage.unit_of_work(write=True) as uow:
            assert uow.datasets.get(ds.id, for_update=True) == ds
            assert uow.datasets.get_by_name(ds.name, for_update=True) == ds
            assert uow.datasets.get(new_id(), for_update=True) is None

    def test_get_many_keeps_the_given_order_and_skips_missing(self, storage: Storage) -> None:
        a, b, c = make_dataset("a-ds"), make_dataset("b-ds"), make_dataset("c-ds")
        store(storage, a, b, c)
        with storage.unit_of_work() as uow:
            got = uow.datasets.get_many([c.id, new_id(), a.id, b.id])
        assert [d.id for d in got] == [c.id, a.id, b.id]
        assert got[0] == c

    def test_get_many_handles_long_id_lists(self, storage: Storage) -> None:
        datasets = [make_dataset() for _ in range(30)]
        store(storage, *datasets)
        ids = [d.id for d in reversed(datasets)] + [new_id() for _ in range(1200)]
        with storage.unit_of_work() as uow:
            got = uow.datasets.get_many(ids)
        assert [d.id for d in got] == [d.id for d in reversed(datasets)]

    def test_find_by_resource(self, storage: Storage) -> None:
        ds = make_dataset(resources=3)
        other = make_dataset(resources=1)
        store(storage, ds, other)
        with storage.unit_of_work() as uow:
            for res in ds.resources:
                assert uow.datasets.find_by_resource(res.id) == ds
            assert uow.datasets.find_by_resource(other.resources[0].id) == other

    def test_add_with_a_taken_name_raises_already_exists_name(self, storage: Storage) -> None:
        store(storage, make_dataset("taken"))
        with storage.unit_of_work(write=True) as uow, pytest.raises(AlreadyExists) as err:
            uow.datasets.add(make_dataset("taken"))
        assert err.value.field == "name"

    def test_names_of_deleted_datasets_stay_taken(self, storage: Storage) -> None:
        store(storage, make_dataset("gone", state=State.DELETED))
        with storage.unit_of_work(write=True) as uow, pytest.raises(AlreadyExists) as err:
            uow.datasets.add(make_dataset("gone"))
        assert err.value.field == "name"

    def test_add_with_a_taken_id_raises_already_exists_id(self, storage: Storage) -> None:
        ds = make_dataset()
        store(storage, ds)
        with storage.unit_of_work(write=True) as uow, pytest.raises(AlreadyExists) as err:
            uow.datasets.add(make_dataset(id=ds.id))
        assert err.value.field == "id"

    def test_add_with_a_resource_id_of_another_dataset_raises(self, storage: Storage) -> None:
        first = make_dataset(resources=2)
        store(storage, first)
        second_id = new_id()
        stolen = attrs.evolve(first.resources[1], package_id=second_id, position=0)
        with storage.unit_of_work(write=True) as uow, pytest.raises(AlreadyExists) as err:
            uow.datasets.add(make_dataset(id=second_id, resources=[stolen]))
        assert err.value.field == "resources"
        with storage.unit_of_work() as uow:
            assert uow.datasets.get(second_id) is None
            assert uow.datasets.find_by_resource(stolen.id) == first

    def test_a_failed_add_leaves_the_unit_of_work_usable(self, storage: Storage) -> None:
        first = make_dataset("first", resources=1)
        store(storage, first)
        clash = make_dataset(resources=[attrs.evolve(first.resources[0], package_id="x")])
        fine = make_dataset("fine")
        with storage.unit_of_work(write=True) as uow:
            with pytest.raises(AlreadyExists):
                uow.datasets.add(clash)
            assert uow.datasets.get(clash.id) is None
            uow.datasets.add(fine)
            uow.commit()
        with storage.unit_of_work() as uow:
            assert uow.datasets.get(fine.id) == fine
            assert uow.datasets.get(clash.id) is None
            assert uow.datasets.count(DatasetFilter()) == 2

    def test_save_replaces_the_dataset_and_its_query_data(self, storage: Storage) -> None:
        g1, g2 = new_id(), new_id()
        ds = make_dataset(resources=2, tags=["old", "kept"], groups=(g1,), owner_org=None)
        store(storage, ds)
        kept_res = ds.resources[1]
        new_res = make_resource(ds.id, position=1)
        changed = bump(
            ds,
            name=ds.name + "-renamed",
            title="New title",
            tags=(Tag(name="kept"), Tag(name="new")),
            groups=(g2,),
            resources=(attrs.evolve(kept_res, position=0), new_res),
            metadata_modified=T0 + timedelta(hours=1),
        )
        with storage.unit_of_work(write=True) as uow:
            uow.datasets.save(changed)
            uow.commit()
        with storage.unit_of_work() as uow:
            assert uow.datasets.get(ds.id) == changed
            assert uow.datasets.get_by_name(changed.name) == changed
            assert uow.datasets.get_by_name(ds.name) is None
            assert uow.datasets.find_by_resource(ds.resources[0].id) is None
            assert uow.datasets.find_by_resource(kept_res.id) == changed
            assert uow.datasets.find_by_resource(new_res.id) == changed
            assert uow.datasets.count(DatasetFilter(tag="old")) == 0
            assert uow.datasets.count(DatasetFilter(tag="new")) == 1
            assert uow.datasets.count(DatasetFilter(group_id=g1)) == 0
            assert uow.datasets.count(DatasetFilter(group_id=g2)) == 1
            assert dict(uow.datasets.tag_counts(DatasetFilter())) == {"kept": 1, "new": 1}
        # The old name and the dropped resource id are free for others.
        store(storage, make_dataset(ds.name, resources=[ds.resources[0]]))

    def test_save_after_reading_in_another_unit_of_work(self, storage: Storage) -> None:
        ds = make_dataset(resources=1, tags=["a"], groups=(new_id(),))
        store(storage, ds)
        with storage.unit_of_work() as uow:
            loaded = uow.datasets.get(ds.id)
        assert loaded is not None
        changed = bump(loaded, tags=(Tag(name="b"),), groups=(), resources=())
        with storage.unit_of_work(write=True) as uow:
            uow.datasets.save(changed)
            uow.commit()
        with storage.unit_of_work() as uow:
            assert uow.datasets.get(ds.id) == changed
            assert uow.datasets.find_by_resource(ds.resources[0].id) is None
            assert uow.datasets.tag_counts(DatasetFilter()) == [("b", 1)]
            assert uow.datasets.group_counts(DatasetFilter()) == {}

    def test_save_twice_in_one_unit_of_work(self, storage: Storage) -> None:
        ds = make_dataset(resources=1)
        store(storage, ds)
        first = bump(ds, resources=(*ds.resources, make_resource(ds.id, position=1)))
        second = bump(first, resources=first.resources[1:])
        with storage.unit_of_work(write=True) as uow:
            uow.datasets.save(first)
            uow.datasets.save(second)
            uow.commit()
        with storage.unit_of_work() as uow:
            assert uow.datasets.get(ds.id) == second
            assert uow.datasets.find_by_resource(ds.resources[0].id) is None
            assert uow.datasets.find_by_resource(second.resources[0].id) == second

    def test_save_with_a_stale_revision_raises_conflict(self, storage: Storage) -> None:
        ds = make_dataset()
        store(storage, ds)
        with storage.unit_of_work(write=True) as uow:
            uow.datasets.save(bump(ds, title="first"))
            uow.commit()
        for revision in (ds.revision, ds.revision + 1, ds.revision + 3):
            with storage.unit_of_work(write=True) as uow, pytest.raises(Conflict) as err:
                uow.datasets.save(attrs.evolve(ds, title="stale", revision=revision))
            assert not isinstance(err.value, AlreadyExists)
        with storage.unit_of_work() as uow:
            got = uow.datasets.get(ds.id)
        assert got is not None and got.title == "first" and got.revision == ds.revision + 1

    def test_save_of_a_missing_dataset_raises_not_found(self, storage: Storage) -> None:
        with storage.unit_of_work(write=True) as uow, pytest.raises(NotFound):
            uow.datasets.save(bump(make_dataset()))

    def test_save_with_a_taken_name_raises_already_exists(self, storage: Storage) -> None:
        a, b = make_dataset("name-a"), make_dataset("name-b")
        store(storage, a, b)
        with storage.unit_of_work(write=True) as uow:
            with pytest.raises(AlreadyExists) as err:
                uow.datasets.save(bump(b, name="name-a"))
            assert err.value.field == "name"
            assert uow.datasets.get(b.id) == b

    def test_save_with_a_resource_of_another_dataset_raises(self, storage: Storage) -> None:
        a, b = make_dataset(resources=1), make_dataset(resources=1)
        store(storage, a, b)
        stolen = attrs.evolve(a.resources[0], package_id=b.id, position=1)
        with storage.unit_of_work(write=True) as uow:
            with pytest.raises(AlreadyExists) as err:
                uow.datasets.save(bump(b, resources=(*b.resources, stolen)))
            assert err.value.field == "resources"
            assert uow.datasets.get(b.id) == b
            assert uow.datasets.find_by_resource(stolen.id) == a

    def test_remove_deletes_the_dataset_and_everything_it_owns(self, storage: Storage) -> None:
        gid = new_id()
        ds = make_dataset(resources=2, tags=["t"], groups=(gid,))
        other = make_dataset(tags=["t"])
        store(storage, ds, other)
        with storage.unit_of_work(write=True) as uow:
            uow.datasets.remove(ds.id)
            uow.datasets.remove(new_id())  # missing: ignored
            uow.commit()
        with storage.unit_of_work() as uow:
            assert uow.datasets.get(ds.id) is None
            assert uow.datasets.get_by_name(ds.name) is None
            assert uow.datasets.find_by_resource(ds.resources[0].id) is None
            assert uow.datasets.tag_counts(DatasetFilter()) == [("t", 1)]
            assert uow.datasets.group_counts(DatasetFilter()) == {}
            assert [i for i, _ in uow.datasets.ids()] == [other.id]
        store(storage, make_dataset(ds.name, id=ds.id, resources=list(ds.resources)))

    def test_add_many_stores_every_dataset(self, storage: Storage) -> None:
        gid = new_id()
        datasets = [
            make_dataset(f"bulk-{i:03d}", resources=i % 4, tags=[f"t{i % 3}", "all"], groups=(gid,))
            for i in range(120)
        ]
        with storage.unit_of_work(write=True) as uow:
            uow.datasets.add_many(datasets)
            uow.datasets.add_many([])
            uow.commit()
        with storage.unit_of_work() as uow:
            assert uow.datasets.count(DatasetFilter()) == 120
            assert uow.datasets.get_many([d.id for d in datasets]) == datasets
            assert uow.datasets.find_by_resource(datasets[3].resources[2].id) == datasets[3]
            assert uow.datasets.tag_counts(DatasetFilter())[0] == ("all", 120)
            assert uow.datasets.group_counts(DatasetFilter()) == {gid: 120}

    def test_add_many_with_a_clash_keeps_nothing_after_rollback(self, storage: Storage) -> None:
        store(storage, make_dataset("exists"))
        batch = [make_dataset("new-1"), make_dataset("exists"), make_dataset("new-2")]
        with storage.unit_of_work(write=True) as uow, pytest.raises(AlreadyExists) as err:
            uow.datasets.add_many(batch)
        assert err.value.field == "name"
        with storage.unit_of_work() as uow:
            assert _names(uow.datasets.list(DatasetFilter())) == ["exists"]

    def test_add_many_with_a_clash_inside_the_batch(self, storage: Storage) -> None:
        res = make_resource("x")
        batch = [make_dataset(resources=[res]), make_dataset(resources=[res])]
        with storage.unit_of_work(write=True) as uow, pytest.raises(AlreadyExists) as err:
            uow.datasets.add_many(batch)
        assert err.value.field == "resources"
        with storage.unit_of_work(write=True) as uow, pytest.raises(AlreadyExists) as err:
            uow.datasets.add_many([make_dataset("twice"), make_dataset("twice")])
        assert err.value.field == "name"

    def test_ids_lists_every_dataset_with_its_modification_time(self, storage: Storage) -> None:
        a = make_dataset(state=State.DELETED, metadata_modified=T0 + timedelta(minutes=5))
        b = make_dataset(private=True, state=State.DRAFT)
        store(storage, a, b)
        with storage.unit_of_work() as uow:
            got = dict(uow.datasets.ids())
        assert got == {a.id: a.metadata_modified, b.id: b.metadata_modified}
        for value in got.values():
            _assert_utc(value)

    # -- datasets: listing, filters, counts ----------------------------------------------------

    def test_list_orders_by_name_and_pages(self, storage: Storage) -> None:
        names = ["b-2", "a-1", "c_3", "a-10", "a_1", "z", "0-first"]
        store(storage, *(make_dataset(n) for n in names))
        expected = sorted(names)
        with storage.unit_of_work() as uow:
            assert _names(uow.datasets.list(DatasetFilter())) == expected
            assert _names(uow.datasets.list(DatasetFilter(), limit=3)) == expected[:3]
            assert _names(uow.datasets.list(DatasetFilter(), offset=3, limit=3)) == expected[3:6]
            assert _names(uow.datasets.list(DatasetFilter(), offset=5)) == expected[5:]
            assert uow.datasets.list(DatasetFilter(), offset=50) == []
            assert uow.datasets.list(DatasetFilter(), limit=0) == []

    def test_list_orders_by_modification_time_newest_first_ties_by_name(
        self, storage: Storage
    ) -> None:
        t = T0
        store(
            storage,
            make_dataset("old", metadata_modified=t),
            make_dataset("new-b", metadata_modified=t + timedelta(microseconds=1)),
            make_dataset("new-a", metadata_modified=t + timedelta(microseconds=1)),
            make_dataset("middle", metadata_modified=t.astimezone(timezone(timedelta(hours=5)))),
        )
        with storage.unit_of_work() as uow:
            got = _names(uow.datasets.list(DatasetFilter(), order="-metadata_modified"))
            paged = _names(
                uow.datasets.list(DatasetFilter(), order="-metadata_modified", offset=1, limit=2)
            )
        assert got == ["new-a", "new-b", "middle", "old"]
        assert paged == ["new-b", "middle"]

    def test_filter_by_states(self, storage: Storage) -> None:
        store(
            storage,
            make_dataset("active"),
            make_dataset("draft", state=State.DRAFT),
            make_dataset("deleted", state=State.DELETED),
        )
        with storage.unit_of_work() as uow:
            assert _names(uow.datasets.list(DatasetFilter())) == ["active"]
            flt = DatasetFilter(states=frozenset({State.DRAFT, State.DELETED}))
            assert _names(uow.datasets.list(flt)) == ["deleted", "draft"]
            assert uow.datasets.count(DatasetFilter(states=ALL_STATES)) == 3
            assert uow.datasets.list(DatasetFilter(states=frozenset())) == []
            assert uow.datasets.count(DatasetFilter(states=frozenset())) == 0

    def test_filter_by_owner_org_group_and_tag(self, storage: Storage) -> None:
        org, other_org, group = new_id(), new_id(), new_id()
        vocab = new_id()
        store(
            storage,
            make_dataset("owned", owner_org=org, tags=["water"]),
            make_dataset("other", owner_org=other_org, groups=(group,), tags=["Water"]),
            make_dataset("grouped", groups=(group, new_id()), tags=["water", "air"]),
            make_dataset("vocab", tags=[Tag(name="water", vocabulary_id=vocab)]),
        )
        with storage.unit_of_work() as uow:
            assert _names(uow.datasets.list(DatasetFilter(owner_org=org))) == ["owned"]
            assert _names(uow.datasets.list(DatasetFilter(group_id=group))) == ["grouped", "other"]
            assert _names(uow.datasets.list(DatasetFilter(tag="water"))) == ["grouped", "owned"]
            assert _names(uow.datasets.list(DatasetFilter(tag="air", group_id=group))) == [
                "grouped"
            ]
            assert uow.datasets.list(DatasetFilter(owner_org=org, group_id=group)) == []
            assert uow.datasets.count(DatasetFilter(tag="nothing")) == 0

    def test_include_private_false_drops_private_datasets(self, storage: Storage) -> None:
        org = new_id()
        store(
            storage,
            make_dataset("public", owner_org=org),
            make_dataset("private", owner_org=org, private=True),
        )
        with storage.unit_of_work() as uow:
            assert _names(uow.datasets.list(DatasetFilter())) == ["private", "public"]
            flt = DatasetFilter(include_private=False)
            assert _names(uow.datasets.list(flt)) == ["public"]
            vis = Visibility(unrestricted=False, org_ids=frozenset({org}))
            flt = DatasetFilter(visibility=vis, include_private=False)
            assert _names(uow.datasets.list(flt)) == ["public"]

    def _visibility_fixture(self, storage: Storage) -> tuple[list[Dataset], str, str, str]:
        org_a, org_b, user = new_id(), new_id(), new_id()
        datasets = []
        for owner in (org_a, org_b, None):
            for state in State:
                for private in (False, True):
                    for creator in (user, new_id()):
                        tag = "t" if private else "u"
                        datasets.append(
                            make_dataset(
                                owner_org=owner,
                                state=state,
                                private=private,
                                creator_user_id=creator,
                                tags=[tag],
                                groups=(org_b,) if owner is None else (),
                            )
                        )
        with storage.unit_of_work(write=True) as uow:
            uow.datasets.add_many(datasets)
            uow.commit()
        return datasets, org_a, org_b, user

    def test_visibility_is_applied_as_the_domain_defines_it(self, storage: Storage) -> None:
        datasets, org_a, org_b, user = self._visibility_fixture(storage)
        visibilities = [
            Visibility.public(),
            Visibility(unrestricted=False, user_id=new_id()),
            Visibility(unrestricted=False, org_ids=frozenset({org_a})),
            Visibility(unrestricted=False, org_ids=frozenset({org_a, org_b}), user_id=user),
            Visibility(unrestricted=False, user_id=user),
            Visibility.everything(),
        ]
        state_sets = [frozenset({State.ACTIVE}), ALL_STATES, frozenset({State.DRAFT})]
        with storage.unit_of_work() as uow:
            for vis in visibilities:
                for states in state_sets:
                    for include_private in (True, False):
                        flt = DatasetFilter(
                            visibility=vis, states=states, include_private=include_private
                        )
                        expected = sorted(
                            d.name
                            for d in datasets
                            if vis.allows(d)
                            and d.state in states
                            and (include_private or not d.private)
                        )
                        assert _names(uow.datasets.list(flt)) == expected, flt
                        assert uow.datasets.count(flt) == len(expected), flt

    def test_public_visibility_sees_only_active_public_datasets(self, storage: Storage) -> None:
        datasets, *_ = self._visibility_fixture(storage)
        flt = DatasetFilter(visibility=Visibility.public(), states=ALL_STATES)
        with storage.unit_of_work() as uow:
            got = uow.datasets.list(flt)
        assert got and all(d.state is State.ACTIVE and not d.private for d in got)
        assert len(got) == sum(1 for d in datasets if d.is_public)

    def test_count_matches_list(self, storage: Storage) -> None:
        _, org_a, _, user = self._visibility_fixture(storage)
        vis = Visibility(unrestricted=False, org_ids=frozenset({org_a}), user_id=user)
        with storage.unit_of_work() as uow:
            for flt in (
                DatasetFilter(),
                DatasetFilter(visibility=vis),
                DatasetFilter(visibility=vis, states=ALL_STATES, tag="t"),
                DatasetFilter(owner_org=org_a, states=ALL_STATES),
            ):
                assert uow.datasets.count(flt) == len(uow.datasets.list(flt))

    def test_tag_counts_most_used_first_ties_by_name(self, storage: Storage) -> None:
        vocab = new_id()
        store(
            storage,
            make_dataset(tags=["b", "a", "c"]),
            make_dataset(tags=["b", "a"]),
            make_dataset(tags=["c", "d", Tag(name="v1", vocabulary_id=vocab)]),
            make_dataset(tags=["b", Tag(name="v1", vocabulary_id=vocab)]),
            make_dataset(tags=["zz"], state=State.DELETED),
            make_dataset(tags=["private"], private=True, owner_org=new_id()),
        )
        with storage.unit_of_work() as uow:
            assert uow.datasets.tag_counts(DatasetFilter(visibility=Visibility.public())) == [
                ("b", 3),
                ("a", 2),
                ("c", 2),
                ("d", 1),
            ]
            assert uow.datasets.tag_counts(DatasetFilter(), vocabulary_id=vocab) == [("v1", 2)]
            everything = DatasetFilter(states=ALL_STATES)
            assert ("zz", 1) in uow.datasets.tag_counts(everything)
            assert ("private", 1) in uow.datasets.tag_counts(everything)
            assert uow.datasets.tag_counts(DatasetFilter(tag="d")) == [("c", 1), ("d", 1)]
            assert uow.datasets.tag_counts(DatasetFilter(), vocabulary_id=new_id()) == []

    def test_group_counts_count_owner_org_and_group_links(self, storage: Storage) -> None:
        org, g1, g2 = new_id(), new_id(), new_id()
        store(
            storage,
            make_dataset(owner_org=org, groups=(g1,)),
            make_dataset(owner_org=org, groups=(g1, g2)),
            make_dataset(groups=(g2,)),
            make_dataset(owner_org=org, private=True),
            make_dataset(owner_org=org, state=State.DELETED, groups=(g1,)),
        )
        with storage.unit_of_work() as uow:
            assert uow.datasets.group_counts(DatasetFilter()) == {org: 3, g1: 2, g2: 2}
            public = DatasetFilter(visibility=Visibility.public())
            assert uow.datasets.group_counts(public) == {org: 2, g1: 2, g2: 2}
            assert uow.datasets.group_counts(DatasetFilter(group_id=g2)) == {org: 1, g1: 1, g2: 2}
            assert uow.datasets.group_counts(DatasetFilter(states=frozenset())) == {}

    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.differing_executors,
        ],
    )
    @given(ds=_datasets())
    def test_any_dataset_round_trips(self, storage: Storage, ds: Dataset) -> None:
        store(storage, ds)
        with storage.unit_of_work() as uow:
            got = uow.datasets.get(ds.id)
            assert uow.datasets.get_by_name(ds.name) == got
        assert got == ds
        assert got is not None
        for value in (got.metadata_created, got.metadata_modified):
            _assert_utc(value)
        for res in got.resources:
            _assert_utc(res.created)
            _assert_utc(res.metadata_modified)

    # -- groups and organizations ----------------------------------------------------------

    def test_group_round_trip_and_lookups(self, storage: Storage) -> None:
        group = make_group(
            description="About ✓",
            image_url="https://example.org/logo.png",
            extras={"k": "v"},
            state=State.DELETED,
            revision=3,
        )
        org = make_organization()
        store(storage, group, org)
        with storage.unit_of_work() as uow:
            assert uow.groups.get(group.id) == group
            assert uow.groups.get_by_name(group.name) == group
            assert uow.groups.get(org.id) == org
            assert uow.groups.get_by_name(org.name.upper()) is None
            assert uow.groups.get(new_id()) is None
            assert uow.groups.get_by_name("absent") is None
            assert uow.groups.get_many([org.id, new_id(), group.id]) == [org, group]

    def test_groups_and_organizations_share_one_name_space(self, storage: Storage) -> None:
        store(storage, make_group("shared"))
        for candidate in (make_organization("shared"), make_group("shared")):
            with storage.unit_of_work(write=True) as uow, pytest.raises(AlreadyExists) as err:
                uow.groups.add(candidate)
            assert err.value.field == "name"

    def test_group_id_clash_raises_already_exists(self, storage: Storage) -> None:
        group = make_group()
        store(storage, group)
        with storage.unit_of_work(write=True) as uow, pytest.raises(AlreadyExists) as err:
            uow.groups.add(make_organization(id=group.id))
        assert err.value.field == "id"

    def test_group_save_checks_revision_and_existence(self, storage: Storage) -> None:
        group, other = make_organization(), make_group()
        store(storage, group, other)
        changed = bump(group, title="New", extras={"a": "b"})
        with storage.unit_of_work(write=True) as uow:
            uow.groups.save(changed)
            uow.commit()
        with storage.unit_of_work(write=True) as uow:
            with pytest.raises(Conflict):
                uow.groups.save(bump(group, title="stale"))
            with pytest.raises(NotFound):
                uow.groups.save(bump(make_group()))
            with pytest.raises(AlreadyExists) as err:
                uow.groups.save(bump(changed, name=other.name))
            assert err.value.field == "name"
        with storage.unit_of_work() as uow:
            assert uow.groups.get(group.id) == changed

    def test_group_list_and_count(self, storage: Storage) -> None:
        store(
            storage,
            make_group("g-b"),
            make_group("g-a"),
            make_group("g-c", state=State.DELETED),
            make_organization("o-b"),
            make_organization("o-a"),
        )
        with storage.unit_of_work() as uow:
            groups = uow.groups.list(is_organization=False)
            assert [g.name for g in groups] == ["g-a", "g-b"]
            orgs = uow.groups.list(is_organization=True)
            assert [g.name for g in orgs] == ["o-a", "o-b"]
            every = uow.groups.list(is_organization=False, states=ALL_STATES, offset=1, limit=1)
            assert [g.name for g in every] == ["g-b"]
            assert uow.groups.count(is_organization=False) == 2
            assert uow.groups.count(is_organization=False, states=ALL_STATES) == 3
            assert uow.groups.count(is_organization=True) == 2
            deleted = frozenset({State.DELETED})
            assert [g.name for g in uow.groups.list(is_organization=False, states=deleted)] == [
                "g-c"
            ]

    def test_group_remove_takes_memberships_and_dataset_links(self, storage: Storage) -> None:
        group, kept = make_group(), make_group()
        user = make_user()
        linked = make_dataset(groups=(group.id, kept.id))
        store(
            storage,
            group,
            kept,
            user,
            linked,
            Membership(group_id=group.id, user_id=user.id, capacity=Capacity.ADMIN),
            Membership(group_id=kept.id, user_id=user.id, capacity=Capacity.MEMBER),
        )
        with storage.unit_of_work(write=True) as uow:
            uow.groups.remove(group.id)
            uow.groups.remove(new_id())
            uow.commit()
        with storage.unit_of_work() as uow:
            assert uow.groups.get(group.id) is None
            assert uow.groups.get_by_name(group.name) is None
            assert uow.memberships.for_group(group.id) == []
            assert [ms.group_id for ms in uow.memberships.for_user(user.id)] == [kept.id]
            got = uow.datasets.get(linked.id)
            assert got is not None and got.groups == (kept.id,)
            assert uow.datasets.count(DatasetFilter(group_id=group.id)) == 0
            assert uow.datasets.group_counts(DatasetFilter()) == {kept.id: 1}
        # A dataset saved after the removal must not bring the link back.
        with storage.unit_of_work(write=True) as uow:
            current = uow.datasets.get(linked.id)
            assert current is not None
            uow.datasets.save(bump(current, title="after"))
            uow.commit()
        with storage.unit_of_work() as uow:
            assert uow.datasets.count(DatasetFilter(group_id=group.id)) == 0
        store(storage, make_organization(group.name))

    # -- users ---------------------------------------------------------------------------------

    def test_user_round_trip_and_lookups(self, storage: Storage) -> None:
        user = make_user(
            email="Mixed.Case@Example.ORG",
            about="about",
            image_url="https://example.org/me.png",
            sysadmin=True,
            state=State.DELETED,
            revision=4,
        )
        store(storage, user)
        with storage.unit_of_work() as uow:
            got = uow.users.get(user.id)
            assert got == user
            assert got is not None and got.password_hash == user.password_hash
            assert uow.users.get_by_name(user.name) == user
            assert uow.users.get_by_name(user.name.upper()) is None
            assert uow.users.get_by_email("mixed.case@example.org") == user
            assert uow.users.get_by_email("MIXED.CASE@EXAMPLE.ORG") == user
            assert uow.users.get_by_email("other@example.org") is None
            assert uow.users.get(new_id()) is None

    def test_user_without_email(self, storage: Storage) -> None:
        a, b = make_user(email=None), make_user(email=None)
        store(storage, a, b)
        with storage.unit_of_work() as uow:
            assert uow.users.get(a.id) == a
            assert uow.users.get_by_email("") is None

    def test_user_name_clash_raises_already_exists(self, storage: Storage) -> None:
        store(storage, make_user("taken"))
        with storage.unit_of_work(write=True) as uow, pytest.raises(AlreadyExists) as err:
            uow.users.add(make_user("taken", email="else@example.org"))
        assert err.value.field == "name"

    def test_user_save_checks_revision_and_existence(self, storage: Storage) -> None:
        user = make_user()
        store(storage, user)
        changed = bump(user, email="NEW@example.org", fullname="New")
        with storage.unit_of_work(write=True) as uow:
            uow.users.save(changed)
            uow.commit()
        with storage.unit_of_work(write=True) as uow:
            with pytest.raises(Conflict):
                uow.users.save(bump(user))
            with pytest.raises(NotFound):
                uow.users.save(bump(make_user()))
        with storage.unit_of_work() as uow:
            assert uow.users.get(user.id) == changed
            assert uow.users.get_by_email("new@example.org") == changed
            assert uow.users.get_by_email(user.email or "") is None

    def test_user_list_and_count(self, storage: Storage) -> None:
        store(
            storage,
            make_user("u-c"),
            make_user("u-a"),
            make_user("u-b", state=State.DELETED),
        )
        with storage.unit_of_work() as uow:
            assert [u.name for u in uow.users.list()] == ["u-a", "u-c"]
            every = uow.users.list(states=ALL_STATES)
            assert [u.name for u in every] == ["u-a", "u-b", "u-c"]
            page = uow.users.list(states=ALL_STATES, offset=1, limit=1)
            assert [u.name for u in page] == ["u-b"]
            assert uow.users.count() == 2
            assert uow.users.count(states=ALL_STATES) == 3

    def test_user_remove_takes_memberships_and_tokens(self, storage: Storage) -> None:
        user, other = make_user(), make_user()
        group = make_organization()
        token, other_token = make_token(user.id), make_token(other.id)
        store(
            storage,
            user,
            other,
            group,
            token,
            other_token,
            Membership(group_id=group.id, user_id=user.id, capacity=Capacity.EDITOR),
            Membership(group_id=group.id, user_id=other.id, capacity=Capacity.MEMBER),
        )
        with storage.unit_of_work(write=True) as uow:
            uow.users.remove(user.id)
            uow.users.remove(new_id())
            uow.commit()
        with storage.unit_of_work() as uow:
            assert uow.users.get(user.id) is None
            assert uow.tokens.get(token.id) is None
            assert uow.tokens.get_by_hash(token.token_hash) is None
            assert uow.memberships.for_user(user.id) == []
            assert [ms.user_id for ms in uow.memberships.for_group(group.id)] == [other.id]
            assert uow.tokens.get(other_token.id) == other_token
        store(storage, make_user(user.name))

    # -- tokens --------------------------------------------------------------------------------

    def test_token_round_trip_and_lookups(self, storage: Storage) -> None:
        user = make_user()
        token = make_token(user.id, expires_at=T0 + timedelta(days=30))
        store(storage, user, token)
        with storage.unit_of_work() as uow:
            assert uow.tokens.get(token.id) == token
            got = uow.tokens.get_by_hash(token.token_hash)
            assert got == token and got is not None and got.token_hash == token.token_hash
            assert uow.tokens.get_by_hash("nope") is None
            assert uow.tokens.get(new_id()) is None

    def test_token_touch_records_last_use(self, storage: Storage) -> None:
        user = make_user()
        token = make_token(user.id)
        store(storage, user, token)
        when = T0 + timedelta(hours=2, microseconds=7)
        with storage.unit_of_work(write=True) as uow:
            uow.tokens.touch(token.id, when)
            uow.tokens.touch(new_id(), when)
            uow.commit()
        with storage.unit_of_work() as uow:
            got = uow.tokens.get(token.id)
        assert got is not None and got.last_used_at == when
        _assert_utc(got.last_used_at)

    def test_tokens_remove_and_list_for_user(self, storage: Storage) -> None:
        user, other = make_user(), make_user()
        tokens = [
            make_token(user.id, name=f"t{i}", created_at=T0 + timedelta(minutes=m))
            for i, m in enumerate([5, 1, 3])
        ]
        foreign = make_token(other.id)
        store(storage, user, other, *tokens, foreign)
        with storage.unit_of_work() as uow:
            listed = uow.tokens.list_for_user(user.id)
        assert [t.name for t in listed] == ["t1", "t2", "t0"]
        with storage.unit_of_work(write=True) as uow:
            uow.tokens.remove(tokens[0].id)
            uow.tokens.remove(new_id())
            uow.commit()
        with storage.unit_of_work(write=True) as uow:
            assert uow.tokens.remove_for_user(user.id) == 2
            assert uow.tokens.remove_for_user(user.id) == 0
            uow.commit()
        with storage.unit_of_work() as uow:
            assert uow.tokens.list_for_user(user.id) == []
            assert uow.tokens.list_for_user(other.id) == [foreign]

    # -- memberships -------------------------------------------------------------------------

    def test_membership_put_is_an_upsert(self, storage: Storage) -> None:
        group, user = new_id(), new_id()
        with storage.unit_of_work(write=True) as uow:
            uow.memberships.put(Membership(group_id=group, user_id=user, capacity=Capacity.MEMBER))
            uow.commit()
        with storage.unit_of_work(write=True) as uow:
            uow.memberships.put(Membership(group_id=group, user_id=user, capacity=Capacity.ADMIN))
            uow.commit()
        with storage.unit_of_work() as uow:
            assert uow.memberships.get(group, user) == Membership(
                group_id=group, user_id=user, capacity=Capacity.ADMIN
            )
            assert len(uow.memberships.for_group(group)) == 1
            assert uow.memberships.get(group, new_id()) is None

    def test_memberships_for_user_and_group_are_ordered(self, storage: Storage) -> None:
        groups = sorted(new_id() for _ in range(3))
        users = sorted(new_id() for _ in range(3))
        store(
            storage,
            *(
                Membership(group_id=g, user_id=u, capacity=Capacity.EDITOR)
                for g in reversed(groups)
                for u in reversed(users)
            ),
        )
        with storage.unit_of_work() as uow:
            assert [ms.group_id for ms in uow.memberships.for_user(users[0])] == groups
            assert [ms.user_id for ms in uow.memberships.for_group(groups[1])] == users
            assert uow.memberships.for_user(new_id()) == []

    def test_membership_removal(self, storage: Storage) -> None:
        g1, g2, u1, u2 = new_id(), new_id(), new_id(), new_id()
        store(
            storage,
            *(
                Membership(group_id=g, user_id=u, capacity=Capacity.MEMBER)
                for g in (g1, g2)
                for u in (u1, u2)
            ),
        )
        with storage.unit_of_work(write=True) as uow:
            uow.memberships.remove(g1, u1)
            uow.memberships.remove(g1, new_id())
            uow.commit()
        with storage.unit_of_work() as uow:
            assert uow.memberships.get(g1, u1) is None
            assert uow.memberships.get(g1, u2) is not None
        with storage.unit_of_work(write=True) as uow:
            uow.memberships.remove_for_user(u2)
            uow.commit()
        with storage.unit_of_work() as uow:
            assert uow.memberships.for_user(u2) == []
            assert [ms.group_id for ms in uow.memberships.for_user(u1)] == [g2]
        with storage.unit_of_work(write=True) as uow:
            uow.memberships.remove_for_group(g2)
            uow.commit()
        with storage.unit_of_work() as uow:
            assert uow.memberships.for_group(g2) == []
            assert uow.memberships.for_user(u1) == []

    # -- vocabularies ------------------------------------------------------------------------

    def test_vocabulary_crud(self, storage: Storage) -> None:
        vocab = make_vocabulary("countries", tags=["uk", "fr", "Côte d'Ivoire"])
        other = make_vocabulary("alpha")
        store(storage, vocab, other)
        with storage.unit_of_work() as uow:
            assert uow.vocabularies.get(vocab.id) == vocab
            assert uow.vocabularies.get_by_name("countries") == vocab
            assert uow.vocabularies.get_by_name("Countries") is None
            assert uow.vocabularies.get(new_id()) is None
            assert [v.name for v in uow.vocabularies.list()] == ["alpha", "countries"]
        changed = attrs.evolve(vocab, tags=("de",))
        with storage.unit_of_work(write=True) as uow:
            uow.vocabularies.save(changed)
            with pytest.raises(NotFound):
                uow.vocabularies.save(make_vocabulary())
            uow.commit()
        with storage.unit_of_work(write=True) as uow:
            assert uow.vocabularies.get(vocab.id) == changed
            uow.vocabularies.remove(vocab.id)
            uow.vocabularies.remove(new_id())
            uow.commit()
        with storage.unit_of_work() as uow:
            assert uow.vocabularies.list() == [other]

    def test_vocabulary_name_clash_raises_already_exists(self, storage: Storage) -> None:
        store(storage, make_vocabulary("taken"))
        with storage.unit_of_work(write=True) as uow, pytest.raises(AlreadyExists) as err:
            uow.vocabularies.add(make_vocabulary("taken"))
        assert err.value.field == "name"

    # -- activities ----------------------------------------------------------------------------

    def test_activities_newest_first_with_filters_and_paging(self, storage: Storage) -> None:
        obj, other_obj, user = new_id(), new_id(), new_id()
        ids = sorted(new_id() for _ in range(2))
        acts = [
            make_activity(obj, timestamp=T0, id=new_id(), user_id=user),
            make_activity(obj, timestamp=T0 + timedelta(minutes=2), id=ids[0]),
            make_activity(obj, timestamp=T0 + timedelta(minutes=2), id=ids[1], user_id=user),
            make_activity(other_obj, timestamp=T0 + timedelta(minutes=1), user_id=user),
        ]
        store(storage, *acts)
        a0, a1, a2, a3 = acts
        with storage.unit_of_work() as uow:
            assert uow.activities.list() == [a2, a1, a3, a0]
            assert uow.activities.list(object_id=obj) == [a2, a1, a0]
            assert uow.activities.list(user_id=user) == [a2, a3, a0]
            assert uow.activities.list(object_id=obj, user_id=user) == [a2, a0]
            assert uow.activities.list(offset=1, limit=2) == [a1, a3]
            assert uow.activities.list(object_id=new_id()) == []
        with storage.unit_of_work(write=True) as uow:
            uow.activities.remove_for_object(obj)
            uow.commit()
        with storage.unit_of_work() as uow:
            assert uow.activities.list() == [a3]

    def test_activity_round_trip(self, storage: Storage) -> None:
        act = make_activity(
            new_id(),
            timestamp=T0.astimezone(timezone(timedelta(hours=-7))),
            user_id=new_id(),
            permission_labels=("member-x", "creator-y"),
        )
        store(storage, act)
        with storage.unit_of_work() as uow:
            (got,) = uow.activities.list()
        assert got == act
        assert dict(got.data) == dict(act.data)
        _assert_utc(got.timestamp)

    def test_activities_add_many(self, storage: Storage) -> None:
        obj = new_id()
        acts = [make_activity(obj, timestamp=T0 + timedelta(seconds=i)) for i in range(5)]
        with storage.unit_of_work(write=True) as uow:
            uow.activities.add_many(acts)
            uow.commit()
        with storage.unit_of_work() as uow:
            assert uow.activities.list(object_id=obj) == acts[::-1]

    # -- outbox ------------------------------------------------------------------------------

    def test_outbox_is_first_in_first_out(self, storage: Storage) -> None:
        objects = [new_id() for _ in range(5)]
        with storage.unit_of_work(write=True) as uow:
            for obj in objects:
                uow.outbox.add("dataset", obj)
            uow.outbox.add("group", objects[0])
            uow.commit()
        with storage.unit_of_work() as uow:
            pending = uow.outbox.pending()
            assert [(e.topic, e.object_id) for e in pending] == [
                *(("dataset", o) for o in objects),
                ("group", objects[0]),
            ]
            assert [e.id for e in pending] == sorted(e.id for e in pending)
            assert len({e.id for e in pending}) == 6
            assert uow.outbox.pending(limit=2) == pending[:2]
            for entry in pending:
                _assert_utc(entry.created)
        with storage.unit_of_work(write=True) as uow:
            uow.outbox.remove([pending[0].id, pending[2].id, 10**9])
            uow.outbox.remove([])
            uow.commit()
        with storage.unit_of_work(write=True) as uow:
            assert uow.outbox.pending() == [pending[1], *pending[3:]]
            uow.outbox.add("dataset", "later")
            uow.commit()
        with storage.unit_of_work() as uow:
            last = uow.outbox.pending()[-1]
        assert last.object_id == "later" and last.id > pending[-1].id

    def test_outbox_ids_are_not_reused_after_removal(self, storage: Storage) -> None:
        with storage.unit_of_work(write=True) as uow:
            uow.outbox.add("dataset", "a")
            uow.commit()
        with storage.unit_of_work(write=True) as uow:
            (entry,) = uow.outbox.pending()
            uow.outbox.remove([entry.id])
            uow.outbox.add("dataset", "b")
            uow.commit()
        with storage.unit_of_work() as uow:
            (again,) = uow.outbox.pending()
        assert again.id > entry.id

    # -- resource files ----------------------------------------------------------------------

    def test_resource_file_round_trip_keeps_every_field(self, storage: Storage) -> None:
        plus_two = timezone(timedelta(hours=2))
        record = make_resource_file(
            blob_key="sha256/ab/cd/abcd",
            uploaded=True,
            size=2**40,
            sha256="ab" * 32,
            mimetype="text/csv",
            format="CSV",
            encoding="utf-8",
            text_key="sha256/12/34/1234",
            text_truncated=True,
            preview_key="sha256/56/78/5678",
            status=PipelineStatus.ERROR,
            job_id=new_id(),
            error="fetch failed: ünïcode",
            steps=(
                StepLog(
                    name="fetch",
                    status=StepStatus.OK,
                    started=T0,
                    finished=T0 + timedelta(seconds=1),
                ),
                StepLog(name="extract", status=StepStatus.ERROR, message="bad", started=T0),
            ),
            source_url="https://example.org/data.csv",
            health=LinkHealth(
                status=HealthStatus.ERROR,
                checked=datetime(2024, 1, 2, 5, 4, 5, 678901, tzinfo=plus_two),
                http_status=503,
                error="unavailable",
                etag='"v1"',
                last_modified="Tue, 02 Jan 2024 03:04:05 GMT",
            ),
            updated=datetime(2024, 1, 2, 5, 4, 5, 123456, tzinfo=plus_two),
        )
        bare = make_resource_file()
        with storage.unit_of_work(write=True) as uow:
            uow.files.put(record)
            uow.files.put(bare)
            assert uow.files.get(record.resource_id) == record  # own uncommitted write
            uow.commit()
        with storage.unit_of_work() as uow:
            got = uow.files.get(record.resource_id)
            assert got == record
            assert got is not None and got.health is not None
            _assert_utc(got.updated)
            _assert_utc(got.health.checked)
            assert got.steps[0].finished == T0 + timedelta(seconds=1)
            assert uow.files.get(bare.resource_id) == bare
            assert uow.files.get(new_id()) is None
            many = uow.files.get_many([bare.resource_id, new_id(), record.resource_id])
            assert sorted(many, key=lambda f: f.resource_id) == sorted(
                [record, bare], key=lambda f: f.resource_id
            )
            assert uow.files.get_many([]) == []

    def test_resource_file_put_replaces_every_field(self, storage: Storage) -> None:
        first = make_resource_file(
            blob_key="sha256/aa/aa/aaaa",
            status=PipelineStatus.COMPLETE,
            steps=(StepLog(name="fetch", status=StepStatus.OK),),
            health=LinkHealth(status=HealthStatus.OK, checked=T0, http_status=200),
            text_truncated=True,
        )
        store_files(storage, first)
        second = make_resource_file(
            first.resource_id, first.package_id, status=PipelineStatus.PROCESSING
        )
        store_files(storage, second)
        with storage.unit_of_work() as uow:
            got = uow.files.get(first.resource_id)
            assert got == second
            assert got is not None and got.health is None and got.steps == ()
            assert got.blob_key is None and got.text_truncated is False
            assert uow.files.status_counts()[PipelineStatus.PROCESSING] == 1

    def test_resource_file_remove_ignores_missing_ids(self, storage: Storage) -> None:
        a, b, c = make_resource_file(), make_resource_file(), make_resource_file()
        store_files(storage, a, b, c)
        with storage.unit_of_work(write=True) as uow:
            uow.files.remove([a.resource_id, new_id(), c.resource_id])
            uow.files.remove([])
            uow.commit()
        with storage.unit_of_work() as uow:
            assert uow.files.get(a.resource_id) is None
            assert uow.files.get(c.resource_id) is None
            assert uow.files.get(b.resource_id) == b

    def test_resource_files_list_filters_orders_and_pages(self, storage: Storage) -> None:
        ok = LinkHealth(status=HealthStatus.OK, checked=T0)
        broken = LinkHealth(status=HealthStatus.ERROR, checked=T0, http_status=404)
        records = [
            make_resource_file("r-a", status=PipelineStatus.COMPLETE, health=ok, updated=T0),
            make_resource_file(
                "r-b", status=PipelineStatus.ERROR, health=broken, updated=T0 + timedelta(1)
            ),
            make_resource_file("r-c", status=PipelineStatus.COMPLETE, updated=T0),
            make_resource_file(
                "r-d", status=PipelineStatus.COMPLETE, health=broken, updated=T0 - timedelta(1)
            ),
        ]
        store_files(storage, *records)

        def ids(items: Iterable[ResourceFile]) -> list[str]:
            return [f.resource_id for f in items]

        with storage.unit_of_work() as uow:
            # Newest first, ties by resource id.
            assert ids(uow.files.list()) == ["r-b", "r-a", "r-c", "r-d"]
            assert ids(uow.files.list(offset=1, limit=2)) == ["r-a", "r-c"]
            assert ids(uow.files.list(limit=0)) == []
            assert ids(uow.files.list(status=PipelineStatus.COMPLETE)) == ["r-a", "r-c", "r-d"]
            assert ids(uow.files.list(health=HealthStatus.ERROR)) == ["r-b", "r-d"]
            both = uow.files.list(status=PipelineStatus.COMPLETE, health=HealthStatus.ERROR)
            assert ids(both) == ["r-d"]
            assert ids(uow.files.list(status=PipelineStatus.PENDING)) == []
            assert ids(uow.files.list(health=HealthStatus.UNKNOWN)) == []

    def test_resource_file_status_and_health_counts(self, storage: Storage) -> None:
        with storage.unit_of_work() as uow:
            assert uow.files.status_counts() == dict.fromkeys(PipelineStatus, 0)
            assert uow.files.health_counts() == {
                HealthStatus.OK: 0,
                HealthStatus.ERROR: 0,
                HealthStatus.UNKNOWN: 0,
                None: 0,
            }
        ok = LinkHealth(status=HealthStatus.OK, checked=T0)
        store_files(
            storage,
            make_resource_file(status=PipelineStatus.COMPLETE, health=ok),
            make_resource_file(status=PipelineStatus.COMPLETE, health=ok),
            make_resource_file(
                status=PipelineStatus.ERROR,
                health=LinkHealth(status=HealthStatus.UNKNOWN, checked=T0),
            ),
            make_resource_file(),
        )
        with storage.unit_of_work() as uow:
            assert uow.files.status_counts() == {
                PipelineStatus.PENDING: 1,
                PipelineStatus.PROCESSING: 0,
                PipelineStatus.COMPLETE: 2,
                PipelineStatus.ERROR: 1,
            }
            assert uow.files.health_counts() == {
                HealthStatus.OK: 2,
                HealthStatus.ERROR: 0,
                HealthStatus.UNKNOWN: 1,
                None: 1,
            }

    def test_resource_file_blob_keys_name_every_key_once(self, storage: Storage) -> None:
        with storage.unit_of_work() as uow:
            assert list(uow.files.blob_keys()) == []
        store_files(
            storage,
            make_resource_file(blob_key="k1", text_key="k2", preview_key="k3"),
            make_resource_file(blob_key="k1", text_key="k4"),
            make_resource_file(preview_key="k5"),
            make_resource_file(),
        )
        with storage.unit_of_work() as uow:
            keys = list(uow.files.blob_keys())
        assert sorted(keys) == ["k1", "k2", "k3", "k4", "k5"]

    def test_resource_file_writes_roll_back(self, storage: Storage) -> None:
        kept = make_resource_file(status=PipelineStatus.COMPLETE)
        store_files(storage, kept)
        with storage.unit_of_work(write=True) as uow:
            uow.files.put(make_resource_file())
            uow.files.put(attrs.evolve(kept, status=PipelineStatus.ERROR))
            uow.files.remove([kept.resource_id])
            assert uow.files.get(kept.resource_id) is None
        with storage.unit_of_work(write=True) as uow:
            uow.files.put(make_resource_file())
            uow.rollback()
        with storage.unit_of_work() as uow:
            assert uow.files.list() == [kept]

    def test_removing_a_dataset_removes_its_resource_files(self, storage: Storage) -> None:
        ds, other = make_dataset(resources=2), make_dataset(resources=1)
        store(storage, ds, other)
        mine = [make_resource_file(r.id, ds.id) for r in ds.resources]
        theirs = make_resource_file(other.resources[0].id, other.id)
        store_files(storage, *mine, theirs)
        with storage.unit_of_work(write=True) as uow:
            uow.datasets.remove(ds.id)
            assert uow.files.get(mine[0].resource_id) is None
            uow.commit()
        with storage.unit_of_work() as uow:
            assert uow.files.get_many([f.resource_id for f in mine]) == []
            assert uow.files.list() == [theirs]

    # -- resource search -----------------------------------------------------------------------

    def _resource_search_fixture(self, storage: Storage) -> dict[str, Resource]:
        """Resources of one public dataset plus decoys in a private and a deleted dataset;
        returns the public ones by short name."""
        ds_id = new_id()

        def res(position: int, **fields: Any) -> Resource:
            return make_resource(ds_id, position=position, **fields)

        public = {
            "one": res(
                0,
                name="One file",
                description="The Index of everything",
                format="CSV",
                size=10,
                hash="ABCDEF0123",
                extras={"language": "en_GB", "pages": 3},
            ),
            "two": res(
                1,
                name="second",
                description="indexes, 50%_off",
                format="JSON",
                size=100,
                hash="0123ABCDEF",
                extras={"language": "fr"},
            ),
            "three": res(2, name="third one", description=None, format="csv", size=110),
        }
        private_id, deleted_id = new_id(), new_id()
        store(
            storage,
            make_dataset(id=ds_id, resources=list(public.values())),
            make_dataset(
                id=private_id,
                private=True,
                resources=[make_resource(private_id, name="one private", size=10)],
            ),
            make_dataset(
                id=deleted_id,
                state=State.DELETED,
                resources=[make_resource(deleted_id, name="one deleted", size=10)],
            ),
        )
        return public

    @staticmethod
    def _search(
        uow: UnitOfWork, *criteria: tuple[str, str], **options: Any
    ) -> tuple[int, set[str]]:
        total, page = uow.datasets.search_resources(
            [ResourceCriterion(f, t) for f, t in criteria], **options
        )
        return total, {r.id for r in page}

    def test_search_resources_matches_substrings_case_insensitively(self, storage: Storage) -> None:
        r = self._resource_search_fixture(storage)
        with storage.unit_of_work() as uow:
            assert self._search(uow, ("name", "nothing like it")) == (0, set())
            assert self._search(uow, ("name", "one")) == (2, {r["one"].id, r["three"].id})
            assert self._search(uow, ("name", "ONE F")) == (1, {r["one"].id})
            assert self._search(uow, ("description", "index")) == (
                2,
                {r["one"].id, r["two"].id},
            )
            assert self._search(uow, ("format", "csv")) == (2, {r["one"].id, r["three"].id})
            # Two criteria: both must hold.
            assert self._search(uow, ("name", "one"), ("format", "CSV")) == (
                2,
                {r["one"].id, r["three"].id},
            )
            assert self._search(uow, ("name", "one"), ("description", "index")) == (
                1,
                {r["one"].id},
            )
            # The resource's own fields are there too.
            assert self._search(uow, ("id", r["two"].id.upper())) == (1, {r["two"].id})
            assert self._search(uow, ("url", "example.org/files/2")) == (1, {r["three"].id})

    def test_search_resources_empty_term_matches_every_visible_resource(
        self, storage: Storage
    ) -> None:
        r = self._resource_search_fixture(storage)
        every = {res.id for res in r.values()}
        with storage.unit_of_work() as uow:
            assert self._search(uow) == (3, every)
            assert self._search(uow, ("name", "")) == (3, every)
            assert self._search(uow, ("description", "")) == (3, every)  # even when None

    def test_search_resources_treats_like_wildcards_literally(self, storage: Storage) -> None:
        r = self._resource_search_fixture(storage)
        with storage.unit_of_work() as uow:
            assert self._search(uow, ("description", "index%")) == (0, set())
            assert self._search(uow, ("description", "in_ex")) == (0, set())
            assert self._search(uow, ("description", "50%_off")) == (1, {r["two"].id})
            assert self._search(uow, ("description", "0%_")) == (1, {r["two"].id})
            assert self._search(uow, ("description", "\\")) == (0, set())

    def test_search_resources_size_and_position_are_exact_integers(self, storage: Storage) -> None:
        r = self._resource_search_fixture(storage)
        with storage.unit_of_work() as uow:
            assert self._search(uow, ("size", "10")) == (1, {r["one"].id})
            assert self._search(uow, ("size", "1")) == (0, set())
            assert self._search(uow, ("size", "ten")) == (0, set())
            assert self._search(uow, ("size", "")) == (0, set())
            assert self._search(uow, ("position", "2")) == (1, {r["three"].id})

    def test_search_resources_hash_matches_by_prefix(self, storage: Storage) -> None:
        r = self._resource_search_fixture(storage)
        with storage.unit_of_work() as uow:
            assert self._search(uow, ("hash", "abc")) == (1, {r["one"].id})
            assert self._search(uow, ("hash", "0123")) == (1, {r["two"].id})
            assert self._search(uow, ("hash", "def")) == (0, set())  # inside, not a prefix
            assert self._search(uow, ("hash", "a%")) == (0, set())

    def test_search_resources_looks_up_other_fields_in_extras(self, storage: Storage) -> None:
        r = self._resource_search_fixture(storage)
        with storage.unit_of_work() as uow:
            assert self._search(uow, ("language", "en_gb")) == (1, {r["one"].id})
            assert self._search(uow, ("language", "en_")) == (1, {r["one"].id})
            assert self._search(uow, ("language", "e")) == (1, {r["one"].id})
            assert self._search(uow, ("language", "FR")) == (1, {r["two"].id})
            assert self._search(uow, ("language", "e%")) == (0, set())
            assert self._search(uow, ("pages", "3")) == (1, {r["one"].id})
            assert self._search(uow, ("no_such_key", "x")) == (0, set())

    def test_search_resources_skips_private_and_deleted_datasets(self, storage: Storage) -> None:
        r = self._resource_search_fixture(storage)
        with storage.unit_of_work() as uow:
            assert self._search(uow, ("name", "private")) == (0, set())
            assert self._search(uow, ("name", "deleted")) == (0, set())
            total, ids = self._search(uow, ("size", "10"))
            assert (total, ids) == (1, {r["one"].id})

    def test_search_resources_orders_and_pages(self, storage: Storage) -> None:
        ds_id = new_id()
        names = ["b", "a", "B", "a", "a_b", "a-b"]  # ordered by code point: B a a a-b a_b b
        resources = [
            make_resource(ds_id, position=i, name=n, size=100 - i) for i, n in enumerate(names)
        ]
        store(storage, make_dataset(id=ds_id, resources=resources))
        by_name = sorted(resources, key=lambda res: (res.name or "", res.id))
        by_id = sorted(resources, key=lambda res: res.id)
        with storage.unit_of_work() as uow:
            search = uow.datasets.search_resources
            total, page = search([], order_by="name")
            assert total == 6 and page == by_name
            assert [res.name for res in page] == ["B", "a", "a", "a-b", "a_b", "b"]
            total, page = search([], order_by="name", offset=1, limit=2)
            assert total == 6 and page == by_name[1:3]
            total, page = search([], order_by="size")
            assert page == resources[::-1]
            total, page = search([])
            assert total == 6 and page == by_id
            with_a = [res for res in by_name if "a" in (res.name or "")]
            total, page = search([ResourceCriterion("name", "A")], order_by="name", offset=1)
            assert total == 4 and page == with_a[1:]
            total, page = search([], offset=10)
            assert (total, page) == (6, [])

    def test_search_resources_returns_the_stored_resources(self, storage: Storage) -> None:
        ds = make_dataset(
            resources=[
                make_resource(
                    "ignored",
                    name="full",
                    description="every field",
                    mimetype="text/csv",
                    hash="ff",
                    size=5,
                    url_type="upload",
                    last_modified=T0,
                    extras={"nested": {"list": [1, None, "é"]}},
                )
            ]
        )
        ds = attrs.evolve(ds, resources=[attrs.evolve(r, package_id=ds.id) for r in ds.resources])
        store(storage, ds)
        with storage.unit_of_work() as uow:
            total, page = uow.datasets.search_resources([ResourceCriterion("name", "full")])
        assert (total, page) == (1, list(ds.resources))

    # -- user search ---------------------------------------------------------------------------

    def test_user_search_matches_name_or_fullname(self, storage: Storage) -> None:
        store(
            storage,
            make_user("alice", fullname="Alice Smith"),
            make_user("bob", fullname="Robert ALIson"),
            make_user("carol", fullname=None),
            make_user("dave", fullname="Alice Deleted", state=State.DELETED),
            make_user("al_x", fullname="Percent 100%"),
        )

        def names(q: str, **options: Any) -> list[str]:
            with storage.unit_of_work() as uow:
                return [u.name for u in uow.users.search(q, **options)]

        assert names("ali") == ["alice", "bob"]
        assert names("ALI") == ["alice", "bob"]
        assert names("ali", limit=1) == ["alice"]
        assert names("carol") == ["carol"]
        assert names("l_") == ["al_x"]
        assert names("100%") == ["al_x"]
        assert names("%") == ["al_x"]
        assert names("c%") == []
        assert names("deleted") == []
        assert names("nobody") == []
        assert names("") == ["al_x", "alice", "bob", "carol"]

    # -- datetimes ---------------------------------------------------------------------------

    def test_datetimes_come_back_aware_in_utc_and_equal(self, storage: Storage) -> None:
        plus_five = timezone(timedelta(hours=5, minutes=30))
        when = datetime(2023, 12, 31, 23, 59, 59, 999999, tzinfo=plus_five)
        user = make_user(created=when)
        group = make_group(created=when)
        token = make_token(user.id, created_at=when, expires_at=when, last_used_at=when)
        dataset_id = new_id()
        res = make_resource(dataset_id, created=when, last_modified=when, metadata_modified=when)
        ds = make_dataset(
            id=dataset_id, resources=[res], metadata_created=when, metadata_modified=when
        )
        act = make_activity(ds.id, timestamp=when)
        store(storage, user, group, token, ds, act)
        with storage.unit_of_work() as uow:
            got_user = uow.users.get(user.id)
            got_group = uow.groups.get(group.id)
            got_token = uow.tokens.get(token.id)
            got_ds = uow.datasets.get(ds.id)
            (got_act,) = uow.activities.list()
            listed = dict(uow.datasets.ids())
        assert got_user is not None and got_group is not None
        assert got_token is not None and got_ds is not None
        values = [
            got_user.created,
            got_group.created,
            got_token.created_at,
            got_token.expires_at,
            got_token.last_used_at,
            got_ds.metadata_created,
            got_ds.metadata_modified,
            got_ds.resources[0].created,
            got_ds.resources[0].last_modified,
            got_ds.resources[0].metadata_modified,
            got_act.timestamp,
            listed[ds.id],
        ]
        for value in values:
            _assert_utc(value)
            assert value == when

    # -- concurrency -------------------------------------------------------------------------

    def test_concurrent_read_modify_write_loses_no_update(self, storage: Storage) -> None:
        threads, increments = 8, 25
        ds = make_dataset(extras={"n": "0"})
        store(storage, ds)
        acknowledged = [0] * threads
        conflicts: list[str] = []
        failures: list[str] = []
        barrier = threading.Barrier(threads)

        def worker(index: int) -> None:
            barrier.wait()
            retries = 0
            while acknowledged[index] < increments:
                try:
                    with storage.unit_of_work(write=True) as uow:
                        current = uow.datasets.get(ds.id, for_update=True)
                        assert current is not None
                        n = int(current.extras["n"])
                        uow.datasets.save(bump(current, extras={"n": str(n + 1)}))
                        uow.commit()
                except Conflict as exc:
                    conflicts.append(str(exc))
                    return
                except BackendError as exc:  # busy: retry a few times
                    retries += 1
                    if retries > 20:
                        failures.append(repr(exc))
                        return
                    continue
                except Exception as exc:
                    failures.append(repr(exc))
                    return
                acknowledged[index] += 1

        pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join(timeout=120)
        assert not failures, failures
        assert not conflicts, "write units of work were not serialised: " + conflicts[0]
        with storage.unit_of_work() as uow:
            final = uow.datasets.get(ds.id)
        assert final is not None
        total = sum(acknowledged)
        assert total == threads * increments
        assert final.revision == ds.revision + total
        assert int(final.extras["n"]) == total

    def test_concurrent_adds_with_one_name_have_one_winner(self, storage: Storage) -> None:
        racers = 16
        name = _name("race")
        results: list[str] = []
        lock = threading.Lock()
        barrier = threading.Barrier(racers)

        def racer() -> None:
            candidate = make_dataset(name, resources=1)
            barrier.wait()
            try:
                with storage.unit_of_work(write=True) as uow:
                    uow.datasets.add(candidate)
                    uow.commit()
                outcome = "created"
            except AlreadyExists as exc:
                outcome = f"exists:{exc.field}"
            except Exception as exc:
                outcome = repr(exc)
            with lock:
                results.append(outcome)

        pool = [threading.Thread(target=racer) for _ in range(racers)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join(timeout=120)
        assert sorted(results) == ["created"] + ["exists:name"] * (racers - 1), results
        with storage.unit_of_work() as uow:
            assert uow.datasets.count(DatasetFilter()) == 1
