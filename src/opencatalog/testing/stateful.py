"""Stateful differential testing of the services against the in-memory oracle.

:func:`make_service_machine` builds a Hypothesis ``RuleBasedStateMachine`` that drives random
sequences of service calls (datasets, resources, organizations, groups, members, users, tokens,
reads as different actors) against two catalogs at once: the catalog under test and a catalog
on the memory backend, the oracle. Both get the same deterministic clock and id generator, so
every id and timestamp must match. After each call the machine compares the results (equal
values, or the same exception type and, for ValidationFailed, the same field errors); after
each step it compares the whole content of both catalogs and checks invariants (resource
positions contiguous, dataset names unique, listings equal)::

    from hypothesis import settings
    from opencatalog import open_catalog
    from opencatalog.testing.stateful import make_service_machine

    Machine = make_service_machine(lambda: open_catalog("sqlite:///" + fresh_path()))
    TestMyStorage = Machine.TestCase
    TestMyStorage.settings = settings(max_examples=200, stateful_step_count=20, deadline=None)

``make_catalog`` must return a new, empty catalog acting as the system actor each time it is
called (once per example). The machine replaces the catalog's clock and id generator with
deterministic ones and closes the catalog at the end of the example.

The helpers :class:`SteppingClock`, :class:`SequentialIds`, :func:`observe` and
:func:`plain` are useful on their own in tests.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from opencatalog.domain.commands import (
    DatasetInput,
    DatasetPatch,
    GroupInput,
    ResourceInput,
    ResourcePatch,
    UserInput,
    UserPatch,
)
from opencatalog.domain.model import State, Tag
from opencatalog.errors import OpenCatalogError, ValidationFailed
from opencatalog.ports.storage import DatasetFilter
from opencatalog.services.catalog import Catalog

__all__ = [
    "CHEAP_PASSWORD_HASHING",
    "SequentialIds",
    "SteppingClock",
    "make_deterministic",
    "make_service_machine",
    "observe",
    "plain",
    "stored_contents",
]

#: Argon2 parameters that make hashing nearly free (tests only).
CHEAP_PASSWORD_HASHING: Mapping[str, int] = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}

#: Fields that hold secrets or salted values: left out of comparisons.
_SECRET_FIELDS = frozenset({"password_hash", "token_hash", "secret"})


class SteppingClock:
    """A clock for tests: each reading is ``step`` later than the one before.

    Two clocks built with the same arguments give the same sequence of readings, so two
    catalogs doing the same calls see the same times. :meth:`advance` jumps ahead.
    """

    def __init__(
        self,
        start: datetime = datetime(2024, 1, 1, tzinfo=UTC),
        step: timedelta = timedelta(seconds=1),
    ) -> None:
        self._next = start
        self.step = step

    def __call__(self) -> datetime:
        now = self._next
        self._next = now + self.step
        return now

    def peek(self) -> datetime:
        """The next reading, without taking it."""
        return self._next

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward by ``delta``."""
        self._next += delta


class SequentialIds:
    """An id generator for tests: UUID-shaped strings numbered 1, 2, 3..."""

    def __init__(self, start: int = 1) -> None:
        self._last = start - 1

    def __call__(self) -> str:
        self._last += 1
        return f"00000000-0000-4000-8000-{self._last:012x}"


def make_deterministic(
    catalog: Catalog, *, clock: Callable[[], datetime], new_id: Callable[[], str]
) -> Catalog:
    """Give ``catalog`` (and every view of it) this clock and id generator; returns it."""
    ctx = catalog._ctx
    ctx.clock = clock
    ctx.new_id = new_id
    return catalog


def plain(value: Any) -> Any:
    """``value`` as plain comparable data: attrs objects become dicts (secrets and salted
    hashes left out), enums their values, sequences lists, mappings dicts."""
    if attrs.has(type(value)):
        return {
            f.name: plain(getattr(value, f.name))
            for f in attrs.fields(type(value))
            if f.name not in _SECRET_FIELDS
        }
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def stored_contents(catalog: Catalog) -> dict[str, Any]:
    """Everything a catalog stores, as domain objects, read through its storage port in one
    unit of work: datasets, organizations, groups, users, memberships, tokens, vocabularies
    and activities (not the outbox). Compare two readings of one catalog to show that a
    refused call changed nothing."""
    every_state = frozenset(State)
    with catalog._ctx.storage.unit_of_work() as uow:
        datasets = uow.datasets.list(DatasetFilter(states=every_state))
        orgs = uow.groups.list(is_organization=True, states=every_state)
        groups = uow.groups.list(is_organization=False, states=every_state)
        users = uow.users.list(states=every_state)
        return {
            "datasets": datasets,
            "dataset_total": uow.datasets.count(DatasetFilter(states=every_state)),
            "organizations": orgs,
            "groups": groups,
            "users": users,
            "members": {g.name: uow.memberships.for_group(g.id) for g in (*orgs, *groups)},
            "tokens": {u.name: uow.tokens.list_for_user(u.id) for u in users},
            "vocabularies": uow.vocabularies.list(),
            "activities": uow.activities.list(limit=1_000_000),
        }


def observe(catalog: Catalog) -> dict[str, Any]:
    """:func:`stored_contents` as plain data (see :func:`plain`), without salted hashes: two
    catalogs that did the same things observe equal."""
    return plain(stored_contents(catalog))


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    """Where two plain values first differ, for readable failures."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if key not in a or key not in b:
                return f"{path}/{key}: only in {'oracle' if key in b else 'catalog under test'}"
            if a[key] != b[key]:
                return _first_difference(a[key], b[key], f"{path}/{key}")
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} items under test, {len(b)} in the oracle"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return _first_difference(x, y, f"{path}[{i}]")
    return f"{path}: under test {a!r}, oracle {b!r}"


def _outcome(call: Callable[[Catalog], Any], catalog: Catalog) -> tuple[Any, Any]:
    """(kind, plain result or error details, raw result) of one call."""
    try:
        raw = call(catalog)
    except ValidationFailed as exc:
        return ("ValidationFailed", plain(exc.errors)), None
    except OpenCatalogError as exc:
        return (type(exc).__name__, None), None
    return ("ok", plain(raw)), raw


# Pools the machine draws from: small, so that calls often hit existing objects and clash.
# Weights (repeated entries) keep most calls valid and authorized, so that successful changes
# are common enough to compare; the rest exercise the refusals.
_USERS = ("ann", "ben", "cat", "dan", "eve")
_GROUP_NAMES = ("alpha", "beta", "gamma", "delta")  # organizations and groups share names
_DATASETS = ("d1", "d2", "d3", "d4", "d5")
_VOCABULARY = "genre"
_VOCAB_TAGS = ("rock", "jazz")
_FORMATS = (None, "csv", "JSON", "text/csv", "")
_URLS = ("http://example.org/a.csv", "https://example.org/b.json", "", "ftp://x/y")


def _weighted(*pairs: tuple[Any, int]) -> st.SearchStrategy[Any]:
    return st.sampled_from([value for value, weight in pairs for _ in range(weight)])


# ann: admin of alpha; ben: editor of alpha; cat: member of alpha and of the group gamma
_actors = _weighted(
    ("system", 4), ("ben", 3), ("ann", 2), ("cat", 2), ("anonymous", 1), ("dan", 1), ("eve", 1)
)
_datasets = _weighted(("d1", 4), ("d2", 3), ("d3", 2), ("d4", 1), ("d5", 1))
_group_names = _weighted(("alpha", 3), ("gamma", 3), ("beta", 1), ("delta", 1))
_users = _weighted(("ann", 2), ("ben", 2), ("cat", 2), ("dan", 2), ("eve", 1))
_kinds = st.sampled_from(("organization", "group"))
_tag = _weighted(
    (Tag(name="water"), 4),
    (Tag(name="air"), 4),
    (Tag(name="soil"), 3),
    (Tag(name="rock", vocabulary_id=_VOCABULARY), 3),
    (Tag(name="jazz", vocabulary_id=_VOCABULARY), 2),
    (Tag(name="x"), 1),  # too short
    (Tag(name="pop", vocabulary_id=_VOCABULARY), 1),  # not in the vocabulary
)
_tags = st.lists(_tag, max_size=3)
_extras = st.dictionaries(
    _weighted(("a", 4), ("b", 4), ("name", 1)),  # "name" shadows a core field
    st.sampled_from(("1", "2")),
    max_size=2,
)
_titles = _weighted((None, 2), ("T", 2), ("Water quality", 2), ("", 1))


@st.composite
def _resource_inputs(draw: st.DrawFn) -> ResourceInput:
    return ResourceInput(
        url=draw(st.sampled_from(_URLS)),
        name=draw(st.one_of(st.none(), st.sampled_from(("r", "data")))),
        format=draw(st.sampled_from(_FORMATS)),
        size=draw(_weighted((None, 6), (0, 1), (3, 2), (-1, 1))),  # -1 is refused
        extras=draw(st.dictionaries(st.sampled_from(("k", "v")), st.integers(0, 2), max_size=2)),
    )


def _create_user(cat: Any, *, user: UserInput) -> Any:
    return cat.users.create(user)


def _add_member(cat: Any, *, user: str, capacity: str) -> Any:
    return cat.organizations.add_member("alpha", user, capacity)


def make_service_machine(
    make_catalog: Callable[[], Catalog],
    *,
    make_oracle: Callable[[], Catalog] | None = None,
) -> type[RuleBasedStateMachine]:
    """A state machine comparing the catalogs ``make_catalog`` builds with memory catalogs.

    ``make_oracle`` builds the reference catalog (default: ``open_catalog()`` in memory with
    cheap password hashing). Use the returned class's ``TestCase`` as a test.
    """

    def default_oracle() -> Catalog:
        from opencatalog.bootstrap import open_catalog

        return open_catalog(password_hash_params=dict(CHEAP_PASSWORD_HASHING))

    oracle_factory = make_oracle or default_oracle

    class ServiceMachine(RuleBasedStateMachine):
        """Random service calls against the catalog under test and the oracle."""

        def __init__(self) -> None:
            super().__init__()
            self.sut = make_deterministic(
                make_catalog(), clock=SteppingClock(), new_id=SequentialIds()
            )
            self.oracle = make_deterministic(
                oracle_factory(), clock=SteppingClock(), new_id=SequentialIds()
            )
            #: token id -> (secret under test, oracle secret)
            self.secrets: dict[str, tuple[str, str]] = {}
            self.resource_ids: list[str] = []
            self.dataset_ids: list[str] = []

        def teardown(self) -> None:
            self.sut.close()
            self.oracle.close()

        # -- running one call on both catalogs ---------------------------------------------

        def both(self, call: Callable[[Catalog], Any]) -> tuple[Any, Any]:
            """Run ``call`` on both catalogs and compare; returns the raw results (None on
            an error), under test first."""
            got, raw_sut = _outcome(call, self.sut)
            want, raw_oracle = _outcome(call, self.oracle)
            assert got == want, "results differ: " + _first_difference(got, want)
            self._remember(raw_oracle)
            return raw_sut, raw_oracle

        def as_(self, actor: str) -> Callable[[Callable[[Catalog], Any]], Callable[[Catalog], Any]]:
            """Wrap a call so that it runs acting for ``actor``."""

            def wrap(call: Callable[[Catalog], Any]) -> Callable[[Catalog], Any]:
                def run(cat: Catalog) -> Any:
                    if actor == "system":
                        return call(cat)
                    if actor == "anonymous":
                        return call(cat.anonymous())
                    return call(cat.as_user(actor))

                return run

            return wrap

        def act(self, actor: str, call: Callable[[Catalog], Any]) -> tuple[Any, Any]:
            return self.both(self.as_(actor)(call))

        def _remember(self, raw: Any) -> None:
            datasets = []
            if isinstance(raw, list | tuple):
                datasets = [x for x in raw if hasattr(x, "resources")]
            elif hasattr(raw, "resources") and hasattr(raw, "owner_org"):
                datasets = [raw]
            elif hasattr(raw, "items") and isinstance(raw.items, tuple):
                datasets = [x for x in raw.items if hasattr(x, "resources")]
            for ds in datasets:
                if ds.id not in self.dataset_ids:
                    self.dataset_ids.append(ds.id)
                for res in ds.resources:
                    if res.id not in self.resource_ids:
                        self.resource_ids.append(res.id)
            if hasattr(raw, "package_id") and raw.id not in self.resource_ids:
                self.resource_ids.append(raw.id)

        def current(self, ref: str) -> Any:
            """The dataset ``ref`` as the system sees it (read on both), or None."""
            return self.both(lambda cat: cat.datasets.get(ref))[1]

        def pick_resource(self, data: st.DataObject) -> str:
            choices = [*self.resource_ids, "00000000-0000-4000-8000-0000000fffff"]
            return data.draw(st.sampled_from(choices), label="resource")

        def pick_dataset(self, data: st.DataObject) -> str:
            by_id = data.draw(st.booleans(), label="by id") and self.dataset_ids
            if by_id:
                return data.draw(st.sampled_from(self.dataset_ids), label="dataset id")
            return data.draw(_datasets, label="dataset")

        # -- setup -------------------------------------------------------------------------

        @initialize()
        def base_world(self) -> None:
            for name in ("ann", "ben", "cat"):
                user = UserInput(name=name, email=f"{name}@example.org", password="password1")
                self.both(functools.partial(_create_user, user=user))
            self.both(lambda cat: cat.organizations.create(GroupInput(name="alpha")))
            self.both(lambda cat: cat.groups.create(GroupInput(name="gamma")))
            for name, capacity in (("ann", "admin"), ("ben", "editor"), ("cat", "member")):
                self.both(functools.partial(_add_member, user=name, capacity=capacity))
            self.both(lambda cat: cat.groups.add_member("gamma", "cat", "member"))
            self.both(lambda cat: cat.tags.create_vocabulary(_VOCABULARY, _VOCAB_TAGS))
            resources = [
                ResourceInput(url="http://example.org/a.csv"),
                ResourceInput(url="http://example.org/b.json", name="b"),
                ResourceInput(url="http://example.org/c", extras={"k": 1}),
            ]
            self.both(
                lambda cat: cat.datasets.create(
                    DatasetInput(
                        name="d1",
                        owner_org="alpha",
                        tags=[Tag(name="water")],
                        resources=resources,
                    )
                )
            )
            self.both(
                lambda cat: cat.datasets.create(
                    DatasetInput(name="d2", owner_org="alpha", private=True, groups=["gamma"])
                )
            )

        # -- users -------------------------------------------------------------------------

        @rule(actor=_actors, name=_users, sysadmin=st.booleans(), clash=st.booleans())
        def create_user(self, actor: str, name: str, sysadmin: bool, clash: bool) -> None:
            email = "ann@example.org" if clash else f"{name}@example.org"
            data = UserInput(name=name, email=email, password="password1", sysadmin=sysadmin)
            self.act(actor, lambda cat: cat.users.create(data))

        @rule(actor=_actors, name=_users, fullname=st.sampled_from(("Ann", None, "x" * 2000)))
        def update_user(self, actor: str, name: str, fullname: str | None) -> None:
            self.act(actor, lambda cat: cat.users.update(name, UserPatch(fullname=fullname)))

        @rule(actor=_actors, name=_users, restore=st.booleans())
        def delete_user(self, actor: str, name: str, restore: bool) -> None:
            if restore:
                self.act(actor, lambda cat: cat.users.restore(name))
            else:
                self.act(actor, lambda cat: cat.users.delete(name))

        @rule(actor=_actors, name=_users)
        def get_user(self, actor: str, name: str) -> None:
            self.act(actor, lambda cat: cat.users.get(name))

        # -- organizations, groups and members ------------------------------------------------

        @staticmethod
        def _service(cat: Catalog, kind: str) -> Any:
            return cat.organizations if kind == "organization" else cat.groups

        @rule(actor=_actors, kind=_kinds, name=_group_names, title=_titles)
        def create_group(self, actor: str, kind: str, name: str, title: str | None) -> None:
            data = GroupInput(name=name, title=title)
            self.act(actor, lambda cat: self._service(cat, kind).create(data))

        @rule(actor=_actors, kind=_kinds, name=_group_names, title=_titles)
        def update_group(self, actor: str, kind: str, name: str, title: str | None) -> None:
            data = GroupInput(name=name, title=title, description="changed")
            self.act(actor, lambda cat: self._service(cat, kind).update(name, data))

        @rule(
            actor=_actors,
            kind=_kinds,
            name=_group_names,
            how=st.sampled_from(("delete", "restore", "purge")),
        )
        def remove_group(self, actor: str, kind: str, name: str, how: str) -> None:
            self.act(actor, lambda cat: getattr(self._service(cat, kind), how)(name))

        @rule(
            actor=_actors,
            kind=_kinds,
            group=_group_names,
            user=_users,
            capacity=st.sampled_from(("admin", "editor", "member", "owner")),
        )
        def add_member(self, actor: str, kind: str, group: str, user: str, capacity: str) -> None:
            self.act(actor, lambda cat: self._service(cat, kind).add_member(group, user, capacity))

        @rule(actor=_actors, kind=_kinds, group=_group_names, user=_users)
        def remove_member(self, actor: str, kind: str, group: str, user: str) -> None:
            self.act(actor, lambda cat: self._service(cat, kind).remove_member(group, user))

        @rule(actor=_actors, group=_group_names, add=st.booleans(), data=st.data())
        def link_dataset(self, actor: str, group: str, add: bool, data: st.DataObject) -> None:
            ref = self.pick_dataset(data)
            if add:
                self.act(actor, lambda cat: cat.groups.add_dataset(group, ref))
            else:
                self.act(actor, lambda cat: cat.groups.remove_dataset(group, ref))

        @rule(actor=_actors, kind=_kinds, name=_group_names)
        def read_group(self, actor: str, kind: str, name: str) -> None:
            self.act(actor, lambda cat: self._service(cat, kind).get(name))
            self.act(actor, lambda cat: self._service(cat, kind).members(name))
            self.act(actor, lambda cat: self._service(cat, kind).dataset_counts())

        # -- datasets ----------------------------------------------------------------------

        @rule(
            actor=_actors,
            name=_weighted(("d3", 3), ("d4", 3), ("d5", 2), ("d1", 1)),
            owner=_weighted(("alpha", 6), (None, 1), ("gamma", 1), ("beta", 1)),
            private=_weighted((False, 2), (True, 1)),
            tags=_tags,
            extras=_extras,
            groups=_weighted((None, 4), ((), 1), (("gamma",), 2), (("alpha",), 1)),
            resources=st.one_of(st.none(), st.lists(_resource_inputs(), max_size=3)),
            state=_weighted((None, 4), (State.DRAFT, 1)),
        )
        def create_dataset(
            self,
            actor: str,
            name: str,
            owner: str | None,
            private: bool,
            tags: list[Tag],
            extras: dict[str, str],
            groups: list[str] | None,
            resources: list[ResourceInput] | None,
            state: State | None,
        ) -> None:
            data = DatasetInput(
                name=name,
                owner_org=owner,
                private=private,
                tags=tags,
                extras=extras,
                groups=groups,
                resources=resources,
                state=state,
                title=name.upper(),
            )
            self.act(actor, lambda cat: cat.datasets.create(data))

        @rule(
            actor=_actors,
            title=_titles,
            private=st.booleans(),
            tags=_tags,
            extras=_extras,
            resources=st.sampled_from(("keep", "reverse", "replace", "clear")),
            groups=_weighted((None, 4), ((), 1), (("gamma",), 2), (("alpha",), 1)),
            owner=_weighted(("keep", 6), (None, 1), ("alpha", 1), ("beta", 1)),
            stale=_weighted((None, 4), ("current", 1), ("stale", 1)),
            data=st.data(),
        )
        def update_dataset(
            self,
            actor: str,
            title: str | None,
            private: bool,
            tags: list[Tag],
            extras: dict[str, str],
            resources: str,
            groups: list[str] | None,
            owner: str | None,
            stale: str | None,
            data: st.DataObject,
        ) -> None:
            ref = self.pick_dataset(data)
            current = self.current(ref)
            if current is None:
                self.act(actor, lambda cat: cat.datasets.update(ref, DatasetInput(name=ref)))
                return
            inputs: tuple[ResourceInput, ...] | None = None
            existing = tuple(
                ResourceInput(id=r.id, url=r.url, name=r.name, format=r.format)
                for r in current.resources
            )
            if resources == "reverse":
                inputs = existing[::-1]
            elif resources == "replace":
                inputs = (*existing[1:], ResourceInput(url="http://example.org/new.csv"))
            elif resources == "clear":
                inputs = ()
            new = DatasetInput(
                name=current.name,
                title=title,
                private=private,
                tags=tags,
                extras=extras,
                resources=inputs,
                groups=groups,
                owner_org=current.owner_org if owner == "keep" else owner,
            )
            expected = {
                None: None,
                "current": current.revision,
                "stale": current.revision - 1,
            }[stale]
            self.act(
                actor,
                lambda cat: cat.datasets.update(ref, new, expected_revision=expected),
            )

        @rule(
            actor=_actors,
            name=st.one_of(st.none(), _datasets),
            title=_titles,
            private=st.one_of(st.none(), st.booleans()),
            tags=st.one_of(st.none(), _tags),
            state=st.sampled_from((None, State.ACTIVE, State.DRAFT, State.DELETED)),
            data=st.data(),
        )
        def patch_dataset(
            self,
            actor: str,
            name: str | None,
            title: str | None,
            private: bool | None,
            tags: list[Tag] | None,
            state: State | None,
            data: st.DataObject,
        ) -> None:
            ref = self.pick_dataset(data)
            changes: dict[str, Any] = {"title": title}
            if name is not None:
                changes["name"] = name
            if private is not None:
                changes["private"] = private
            if tags is not None:
                changes["tags"] = tags
            if state is not None:
                changes["state"] = state
            patch = DatasetPatch(**changes)
            self.act(actor, lambda cat: cat.datasets.patch(ref, patch))

        @rule(
            actor=_actors,
            how=st.sampled_from(("delete", "restore", "purge")),
            data=st.data(),
        )
        def remove_dataset(self, actor: str, how: str, data: st.DataObject) -> None:
            ref = self.pick_dataset(data)
            self.act(actor, lambda cat: getattr(cat.datasets, how)(ref))

        @rule(actor=_actors, data=st.data())
        def read_dataset(self, actor: str, data: st.DataObject) -> None:
            ref = self.pick_dataset(data)
            self.act(actor, lambda cat: cat.datasets.get(ref))
            self.act(actor, lambda cat: cat.activities.for_dataset(ref))

        @rule(
            actor=_actors,
            private=st.booleans(),
            drafts=st.booleans(),
            deleted=st.booleans(),
            organization=st.one_of(st.none(), _group_names),
            tag=st.sampled_from((None, "water", "air", "rock")),
            order=st.sampled_from(("name", "-metadata_modified")),
            window=st.tuples(st.integers(0, 3), st.one_of(st.none(), st.integers(0, 3))),
        )
        def list_datasets(
            self,
            actor: str,
            private: bool,
            drafts: bool,
            deleted: bool,
            organization: str | None,
            tag: str | None,
            order: str,
            window: tuple[int, int | None],
        ) -> None:
            offset, limit = window
            self.act(
                actor,
                lambda cat: cat.datasets.list(
                    include_private=private,
                    include_drafts=drafts,
                    include_deleted=deleted,
                    organization=organization,
                    tag=tag,
                    order=order,
                    offset=offset,
                    limit=limit,
                ),
            )
            self.act(actor, lambda cat: cat.datasets.count())
            self.act(actor, lambda cat: cat.tags.counts())
            self.act(actor, lambda cat: cat.tags.counts(vocabulary=_VOCABULARY))

        # -- resources ---------------------------------------------------------------------

        @rule(actor=_actors, resource=_resource_inputs(), data=st.data())
        def add_resource(self, actor: str, resource: ResourceInput, data: st.DataObject) -> None:
            ref = self.pick_dataset(data)
            self.act(actor, lambda cat: cat.resources.add(ref, resource))

        @rule(actor=_actors, resource=_resource_inputs(), data=st.data())
        def update_resource(self, actor: str, resource: ResourceInput, data: st.DataObject) -> None:
            rid = self.pick_resource(data)
            self.act(actor, lambda cat: cat.resources.update(rid, resource))

        @rule(
            actor=_actors,
            name=st.one_of(st.none(), st.sampled_from(("renamed", ""))),
            extras=st.dictionaries(st.sampled_from(("k", "z")), st.integers(0, 2), max_size=2),
            data=st.data(),
        )
        def patch_resource(
            self, actor: str, name: str | None, extras: dict[str, int], data: st.DataObject
        ) -> None:
            rid = self.pick_resource(data)
            patch = ResourcePatch(name=name, extras=extras)
            self.act(actor, lambda cat: cat.resources.patch(rid, patch))

        @rule(actor=_actors, data=st.data())
        def delete_resource(self, actor: str, data: st.DataObject) -> None:
            rid = self.pick_resource(data)
            self.act(actor, lambda cat: cat.resources.delete(rid))
            self.act(actor, lambda cat: cat.resources.get(rid))

        @rule(
            actor=_actors,
            how=st.sampled_from(("reverse", "rotate", "same", "missing", "duplicate", "foreign")),
            data=st.data(),
        )
        def reorder(self, actor: str, how: str, data: st.DataObject) -> None:
            ref = self.pick_dataset(data)
            current = self.current(ref)
            ids = [r.id for r in current.resources] if current is not None else []
            order = {
                "reverse": ids[::-1],
                "rotate": ids[1:] + ids[:1],
                "same": ids,
                "missing": ids[1:],
                "duplicate": ids + ids[:1],
                "foreign": [*ids[1:], "00000000-0000-4000-8000-0000000fffff"],
            }[how]
            self.act(actor, lambda cat: cat.resources.reorder(ref, order))

        # -- tokens ------------------------------------------------------------------------

        @rule(actor=_actors, user=_users)
        def create_token(self, actor: str, user: str) -> None:
            sut, oracle = self.act(actor, lambda cat: cat.tokens.create(user, "key"))
            if oracle is not None:
                self.secrets[oracle.token.id] = (sut.secret, oracle.secret)

        @precondition(lambda self: self.secrets)
        @rule(actor=_actors, by_secret=st.booleans(), data=st.data())
        def revoke_token(self, actor: str, by_secret: bool, data: st.DataObject) -> None:
            token_id = data.draw(st.sampled_from(sorted(self.secrets)), label="token")
            sut_secret, oracle_secret = self.secrets[token_id]
            view = self.as_(actor)
            if by_secret:
                got, _ = _outcome(view(lambda cat: cat.tokens.revoke(sut_secret)), self.sut)
                want, _ = _outcome(view(lambda cat: cat.tokens.revoke(oracle_secret)), self.oracle)
                assert got == want, "results differ: " + _first_difference(got, want)
            else:
                self.act(actor, lambda cat: cat.tokens.revoke(token_id))

        @precondition(lambda self: self.secrets)
        @rule(data=st.data())
        def authenticate(self, data: st.DataObject) -> None:
            token_id = data.draw(st.sampled_from(sorted(self.secrets)), label="token")
            sut_secret, oracle_secret = self.secrets[token_id]
            got = plain(self.sut.tokens.authenticate(sut_secret))
            want = plain(self.oracle.tokens.authenticate(oracle_secret))
            assert got == want, "authentication differs: " + _first_difference(got, want)

        # -- invariants --------------------------------------------------------------------

        @invariant()
        def same_content_and_sound(self) -> None:
            got = observe(self.sut)
            want = observe(self.oracle)
            assert got == want, "contents differ: " + _first_difference(got, want)
            self.both(
                lambda cat: cat.datasets.list(
                    include_private=True, include_drafts=True, include_deleted=True
                )
            )
            names = [ds["name"] for ds in got["datasets"]]
            assert len(names) == len(set(names)), f"dataset names not unique: {names}"
            live = [ds["name"] for ds in got["datasets"] if ds["state"] != State.DELETED.value]
            assert len(live) == len(set(live))
            for ds in got["datasets"]:
                positions = [r["position"] for r in ds["resources"]]
                assert positions == list(range(len(positions))), (
                    f"positions of {ds['name']} not contiguous: {positions}"
                )
                assert all(r["package_id"] == ds["id"] for r in ds["resources"])
            group_names = [g["name"] for g in got["organizations"] + got["groups"]]
            assert len(group_names) == len(set(group_names)), "group names not unique"

    ServiceMachine.__name__ = ServiceMachine.__qualname__ = "ServiceMachine"
    return ServiceMachine
