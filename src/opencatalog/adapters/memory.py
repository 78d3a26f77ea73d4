"""In-memory storage: the notebook default, the fake for unit tests, the oracle for stateful tests.

Committed state is an immutable snapshot. A write unit of work takes the one writer lock, works
on a copy of the snapshot and swaps it in on commit; readers always see the last committed
snapshot and never wait. Domain objects are frozen, so the copies are shallow.
"""

from __future__ import annotations

import builtins
import json
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

import attrs

from opencatalog.domain.files import HealthStatus, PipelineStatus, ResourceFile
from opencatalog.domain.model import (
    Activity,
    ApiToken,
    Dataset,
    Group,
    Membership,
    Resource,
    State,
    User,
    Vocabulary,
    utcnow,
)
from opencatalog.errors import AlreadyExists, Conflict, NotFound
from opencatalog.ports.storage import (
    ActivityRepository,
    DatasetFilter,
    DatasetRepository,
    GroupRepository,
    MembershipRepository,
    OutboxEntry,
    OutboxRepository,
    ResourceCriterion,
    ResourceFileRepository,
    Storage,
    TokenRepository,
    UnitOfWork,
    UserRepository,
    VocabularyRepository,
)

__all__ = ["MemoryStorage"]


class _State:
    """Every table as a dict; copied shallowly for each write unit of work."""

    def __init__(self) -> None:
        self.datasets: dict[str, Dataset] = {}
        self.dataset_names: dict[str, str] = {}
        self.resource_owner: dict[str, str] = {}
        self.groups: dict[str, Group] = {}
        self.group_names: dict[str, str] = {}
        self.users: dict[str, User] = {}
        self.user_names: dict[str, str] = {}
        self.tokens: dict[str, ApiToken] = {}
        self.memberships: dict[tuple[str, str], Membership] = {}
        self.vocabularies: dict[str, Vocabulary] = {}
        self.activities: list[Activity] = []
        self.outbox: list[OutboxEntry] = []
        self.outbox_seq = 0
        self.files: dict[str, ResourceFile] = {}

    def copy(self) -> _State:
        new = _State.__new__(_State)
        for key, value in vars(self).items():
            setattr(new, key, value.copy() if hasattr(value, "copy") else value)
        return new


def _check_revision(stored: Any, new: Any, kind: str) -> None:
    if stored is None:
        raise NotFound(f"{kind} not found")
    if new.revision != stored.revision + 1:
        raise Conflict(
            f"{kind} was changed by someone else (revision {stored.revision}, "
            f"update based on {new.revision - 1})"
        )


def _matches(flt: DatasetFilter, ds: Dataset) -> bool:
    if ds.state not in flt.states:
        return False
    if not flt.include_private and ds.private:
        return False
    if flt.owner_org is not None and ds.owner_org != flt.owner_org:
        return False
    if flt.group_id is not None and flt.group_id not in ds.groups:
        return False
    if flt.tag is not None and not any(
        t.name == flt.tag and t.vocabulary_id is None for t in ds.tags
    ):
        return False
    return flt.visibility.allows(ds)


class _Datasets(DatasetRepository):
    def __init__(self, s: _State) -> None:
        self._s = s

    def get(self, dataset_id: str, *, for_update: bool = False) -> Dataset | None:
        return self._s.datasets.get(dataset_id)

    def get_by_name(self, name: str, *, for_update: bool = False) -> Dataset | None:
        dataset_id = self._s.dataset_names.get(name)
        return None if dataset_id is None else self._s.datasets[dataset_id]

    def get_many(self, ids: Sequence[str]) -> builtins.list[Dataset]:
        return [self._s.datasets[i] for i in ids if i in self._s.datasets]

    def find_by_resource(self, resource_id: str) -> Dataset | None:
        dataset_id = self._s.resource_owner.get(resource_id)
        return None if dataset_id is None else self._s.datasets[dataset_id]

    def resource_owners(self, resource_ids: Sequence[str]) -> dict[str, str]:
        owners = self._s.resource_owner
        return {rid: owners[rid] for rid in resource_ids if rid in owners}

    def get_many_by_name(self, names: Sequence[str]) -> builtins.list[Dataset]:
        found = (self.get_by_name(name) for name in names)
        return [ds for ds in found if ds is not None]

    def _claim(self, ds: Dataset, previous: Dataset | None) -> None:
        owner = self._s.dataset_names.get(ds.name)
        if owner is not None and owner != ds.id:
            raise AlreadyExists("That URL is already in use.", field="name")
        for res in ds.resources:
            holder = self._s.resource_owner.get(res.id)
            if holder is not None and holder != ds.id:
                raise AlreadyExists(f"Resource id {res.id} is already in use", field="resources")
        if previous is not None:
            self._s.dataset_names.pop(previous.name, None)
            for res in previous.resources:
                self._s.resource_owner.pop(res.id, None)
        self._s.dataset_names[ds.name] = ds.id
        for res in ds.resources:
            self._s.resource_owner[res.id] = ds.id
        self._s.datasets[ds.id] = ds

    def add(self, dataset: Dataset) -> None:
        if dataset.id in self._s.datasets:
            raise AlreadyExists("Dataset id already exists", field="id")
        self._claim(dataset, None)

    def save(self, dataset: Dataset) -> None:
        stored = self._s.datasets.get(dataset.id)
        _check_revision(stored, dataset, "Dataset")
        self._claim(dataset, stored)

    def remove(self, dataset_id: str) -> None:
        ds = self._s.datasets.pop(dataset_id, None)
        if ds is None:
            return
        self._s.dataset_names.pop(ds.name, None)
        for res in ds.resources:
            self._s.resource_owner.pop(res.id, None)
        for rid in [r for r, f in self._s.files.items() if f.package_id == dataset_id]:
            del self._s.files[rid]

    def _select(self, flt: DatasetFilter) -> builtins.list[Dataset]:
        return [ds for ds in self._s.datasets.values() if _matches(flt, ds)]

    def list(
        self, flt: DatasetFilter, *, offset: int = 0, limit: int | None = None, order: str = "name"
    ) -> builtins.list[Dataset]:
        items = self._select(flt)
        if order == "name":
            items.sort(key=lambda d: d.name)
        elif order == "-metadata_modified":
            items.sort(key=lambda d: d.name)
            items.sort(key=lambda d: d.metadata_modified, reverse=True)
        else:
            raise ValueError(f"unknown order {order!r}")
        end = None if limit is None else offset + limit
        return items[offset:end]

    def count(self, flt: DatasetFilter) -> int:
        return len(self._select(flt))

    def ids(self) -> Iterable[tuple[str, datetime]]:
        return [(ds.id, ds.metadata_modified) for ds in self._s.datasets.values()]

    def tag_counts(
        self, flt: DatasetFilter, *, vocabulary_id: str | None = None
    ) -> builtins.list[tuple[str, int]]:
        counts: dict[str, int] = {}
        for ds in self._select(flt):
            for name in {t.name for t in ds.tags if t.vocabulary_id == vocabulary_id}:
                counts[name] = counts.get(name, 0) + 1
        return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))

    def group_counts(self, flt: DatasetFilter) -> dict[str, int]:
        counts: dict[str, int] = {}
        for ds in self._select(flt):
            linked = set(ds.groups)
            if ds.owner_org is not None:
                linked.add(ds.owner_org)
            for gid in linked:
                counts[gid] = counts.get(gid, 0) + 1
        return counts

    def search_resources(
        self,
        criteria: Sequence[ResourceCriterion],
        *,
        order_by: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> tuple[int, builtins.list[Resource]]:
        tests = [_resource_test(c) for c in criteria]
        found = [
            res
            for ds in self._s.datasets.values()
            if ds.state is State.ACTIVE and not ds.private
            for res in ds.resources
            if all(test(res) for test in tests)
        ]
        found.sort(key=lambda r: r.id)
        if order_by is not None:
            found.sort(key=_resource_sort_key(order_by))
        end = None if limit is None else offset + limit
        return len(found), found[offset:end]


#: Resource fields matched as integers (exactly); ``hash`` matches by prefix, every other
#: field of :class:`Resource` is text (datetimes as ISO 8601), and any name that is not a
#: field is an extras key whose value matches as compact JSON text. An empty term matches
#: every resource, except on the integer fields (it is not an integer).
_INT_FIELDS = frozenset({"size", "position"})
_RESOURCE_FIELDS = frozenset(a.name for a in attrs.fields(Resource)) - {"extras"}


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _resource_test(c: ResourceCriterion) -> Callable[[Resource], bool]:
    term = c.term.lower()
    name = c.field
    if name in _INT_FIELDS:
        try:
            number = int(c.term.strip())
        except ValueError:
            return lambda res: False
        return lambda res: getattr(res, name) == number
    if not term:
        return lambda res: True
    if name == "hash":
        return lambda res: res.hash is not None and res.hash.lower().startswith(term)
    if name in _RESOURCE_FIELDS:

        def text_test(res: Resource) -> bool:
            value = _text(getattr(res, name))
            return value is not None and term in value.lower()

        return text_test

    def extra_test(res: Resource) -> bool:
        if name not in res.extras:
            return False
        text = json.dumps(res.extras[name], ensure_ascii=False, separators=(",", ":"))
        return term in text.lower()

    return extra_test


def _resource_sort_key(order_by: str) -> Callable[[Resource], tuple[bool, Any]]:
    """Ascending by the field, values that are missing (None) last."""
    if order_by not in _RESOURCE_FIELDS:
        raise ValueError(f"cannot order resources by {order_by!r}")

    def key(res: Resource) -> tuple[bool, Any]:
        value = getattr(res, order_by)
        return (value is None, value if value is not None else 0)

    return key


class _Groups(GroupRepository):
    def __init__(self, s: _State) -> None:
        self._s = s

    def get(self, group_id: str) -> Group | None:
        return self._s.groups.get(group_id)

    def get_by_name(self, name: str) -> Group | None:
        gid = self._s.group_names.get(name)
        return None if gid is None else self._s.groups[gid]

    def get_many(self, ids: Sequence[str]) -> builtins.list[Group]:
        return [self._s.groups[i] for i in ids if i in self._s.groups]

    def _claim(self, group: Group, previous: Group | None) -> None:
        owner = self._s.group_names.get(group.name)
        if owner is not None and owner != group.id:
            raise AlreadyExists("Group name already exists in database", field="name")
        if previous is not None:
            self._s.group_names.pop(previous.name, None)
        self._s.group_names[group.name] = group.id
        self._s.groups[group.id] = group

    def add(self, group: Group) -> None:
        if group.id in self._s.groups:
            raise AlreadyExists("Group id already exists", field="id")
        self._claim(group, None)

    def save(self, group: Group) -> None:
        stored = self._s.groups.get(group.id)
        _check_revision(stored, group, "Group")
        self._claim(group, stored)

    def remove(self, group_id: str) -> None:
        group = self._s.groups.pop(group_id, None)
        if group is None:
            return
        self._s.group_names.pop(group.name, None)
        for key in [k for k in self._s.memberships if k[0] == group_id]:
            del self._s.memberships[key]
        for ds in list(self._s.datasets.values()):
            if group_id in ds.groups:
                self._s.datasets[ds.id] = attrs.evolve(
                    ds, groups=tuple(g for g in ds.groups if g != group_id)
                )

    def _select(self, is_organization: bool, states: frozenset[State]) -> builtins.list[Group]:
        return sorted(
            (
                g
                for g in self._s.groups.values()
                if g.is_organization == is_organization and g.state in states
            ),
            key=lambda g: g.name,
        )

    def list(
        self,
        *,
        is_organization: bool,
        states: frozenset[State] = frozenset({State.ACTIVE}),
        offset: int = 0,
        limit: int | None = None,
    ) -> builtins.list[Group]:
        items = self._select(is_organization, states)
        end = None if limit is None else offset + limit
        return items[offset:end]

    def count(
        self, *, is_organization: bool, states: frozenset[State] = frozenset({State.ACTIVE})
    ) -> int:
        return len(self._select(is_organization, states))


class _Users(UserRepository):
    def __init__(self, s: _State) -> None:
        self._s = s

    def get(self, user_id: str) -> User | None:
        return self._s.users.get(user_id)

    def get_by_name(self, name: str) -> User | None:
        uid = self._s.user_names.get(name)
        return None if uid is None else self._s.users[uid]

    def get_by_email(self, email: str) -> User | None:
        wanted = email.casefold()
        found = [
            u
            for u in self._s.users.values()
            if u.email is not None and u.email.casefold() == wanted
        ]
        found.sort(key=lambda u: (u.state is not State.ACTIVE, u.created, u.id))
        return found[0] if found else None

    def _claim(self, user: User, previous: User | None) -> None:
        owner = self._s.user_names.get(user.name)
        if owner is not None and owner != user.id:
            raise AlreadyExists(
                "The username is already associated with another account.", field="name"
            )
        if previous is not None:
            self._s.user_names.pop(previous.name, None)
        self._s.user_names[user.name] = user.id
        self._s.users[user.id] = user

    def add(self, user: User) -> None:
        if user.id in self._s.users:
            raise AlreadyExists("User id already exists", field="id")
        self._claim(user, None)

    def save(self, user: User) -> None:
        stored = self._s.users.get(user.id)
        _check_revision(stored, user, "User")
        self._claim(user, stored)

    def remove(self, user_id: str) -> None:
        user = self._s.users.pop(user_id, None)
        if user is None:
            return
        self._s.user_names.pop(user.name, None)
        for key in [k for k in self._s.memberships if k[1] == user_id]:
            del self._s.memberships[key]
        for tid in [t.id for t in self._s.tokens.values() if t.user_id == user_id]:
            del self._s.tokens[tid]

    def _select(self, states: frozenset[State]) -> builtins.list[User]:
        return sorted(
            (u for u in self._s.users.values() if u.state in states), key=lambda u: u.name
        )

    def list(
        self,
        *,
        states: frozenset[State] = frozenset({State.ACTIVE}),
        offset: int = 0,
        limit: int | None = None,
    ) -> builtins.list[User]:
        end = None if limit is None else offset + limit
        return self._select(states)[offset:end]

    def count(self, *, states: frozenset[State] = frozenset({State.ACTIVE})) -> int:
        return len(self._select(states))

    def search(self, q: str, *, limit: int = 20) -> builtins.list[User]:
        wanted = q.lower()
        found = [
            u
            for u in self._select(frozenset({State.ACTIVE}))
            if wanted in u.name.lower() or (u.fullname is not None and wanted in u.fullname.lower())
        ]
        return found[:limit]


class _Tokens(TokenRepository):
    def __init__(self, s: _State) -> None:
        self._s = s

    def get(self, token_id: str) -> ApiToken | None:
        return self._s.tokens.get(token_id)

    def get_by_hash(self, token_hash: str) -> ApiToken | None:
        for token in self._s.tokens.values():
            if token.token_hash == token_hash:
                return token
        return None

    def add(self, token: ApiToken) -> None:
        if token.id in self._s.tokens:
            raise AlreadyExists("Token id already exists", field="id")
        self._s.tokens[token.id] = token

    def touch(self, token_id: str, when: datetime) -> None:
        token = self._s.tokens.get(token_id)
        if token is not None:
            self._s.tokens[token_id] = attrs.evolve(token, last_used_at=when)

    def remove(self, token_id: str) -> None:
        self._s.tokens.pop(token_id, None)

    def remove_for_user(self, user_id: str) -> int:
        ids = [t.id for t in self._s.tokens.values() if t.user_id == user_id]
        for tid in ids:
            del self._s.tokens[tid]
        return len(ids)

    def list_for_user(self, user_id: str) -> builtins.list[ApiToken]:
        return sorted(
            (t for t in self._s.tokens.values() if t.user_id == user_id),
            key=lambda t: (t.created_at, t.id),
        )


class _Memberships(MembershipRepository):
    def __init__(self, s: _State) -> None:
        self._s = s

    def get(self, group_id: str, user_id: str) -> Membership | None:
        return self._s.memberships.get((group_id, user_id))

    def put(self, membership: Membership) -> None:
        self._s.memberships[(membership.group_id, membership.user_id)] = membership

    def remove(self, group_id: str, user_id: str) -> None:
        self._s.memberships.pop((group_id, user_id), None)

    def for_user(self, user_id: str) -> builtins.list[Membership]:
        return sorted(
            (m for m in self._s.memberships.values() if m.user_id == user_id),
            key=lambda m: m.group_id,
        )

    def for_group(self, group_id: str) -> builtins.list[Membership]:
        return sorted(
            (m for m in self._s.memberships.values() if m.group_id == group_id),
            key=lambda m: m.user_id,
        )

    def remove_for_user(self, user_id: str) -> None:
        for key in [k for k in self._s.memberships if k[1] == user_id]:
            del self._s.memberships[key]

    def remove_for_group(self, group_id: str) -> None:
        for key in [k for k in self._s.memberships if k[0] == group_id]:
            del self._s.memberships[key]


class _Vocabularies(VocabularyRepository):
    def __init__(self, s: _State) -> None:
        self._s = s

    def get(self, vocabulary_id: str) -> Vocabulary | None:
        return self._s.vocabularies.get(vocabulary_id)

    def get_by_name(self, name: str) -> Vocabulary | None:
        for vocab in self._s.vocabularies.values():
            if vocab.name == name:
                return vocab
        return None

    def add(self, vocabulary: Vocabulary) -> None:
        existing = self.get_by_name(vocabulary.name)
        if existing is not None or vocabulary.id in self._s.vocabularies:
            raise AlreadyExists("That vocabulary name is already in use.", field="name")
        self._s.vocabularies[vocabulary.id] = vocabulary

    def save(self, vocabulary: Vocabulary) -> None:
        if vocabulary.id not in self._s.vocabularies:
            raise NotFound("Vocabulary not found")
        existing = self.get_by_name(vocabulary.name)
        if existing is not None and existing.id != vocabulary.id:
            raise AlreadyExists("That vocabulary name is already in use.", field="name")
        self._s.vocabularies[vocabulary.id] = vocabulary

    def remove(self, vocabulary_id: str) -> None:
        self._s.vocabularies.pop(vocabulary_id, None)

    def list(self) -> builtins.list[Vocabulary]:
        return sorted(self._s.vocabularies.values(), key=lambda v: v.name)


class _Activities(ActivityRepository):
    def __init__(self, s: _State) -> None:
        self._s = s

    def add(self, activity: Activity) -> None:
        self._s.activities.append(activity)

    def list(
        self,
        *,
        object_id: str | None = None,
        user_id: str | None = None,
        offset: int = 0,
        limit: int = 31,
    ) -> builtins.list[Activity]:
        items = [
            a
            for a in self._s.activities
            if (object_id is None or a.object_id == object_id)
            and (user_id is None or a.user_id == user_id)
        ]
        items.sort(key=lambda a: (a.timestamp, a.id), reverse=True)
        return items[offset : offset + limit]

    def remove_for_object(self, object_id: str) -> None:
        self._s.activities = [a for a in self._s.activities if a.object_id != object_id]


class _Outbox(OutboxRepository):
    def __init__(self, s: _State) -> None:
        self._s = s

    def add(self, topic: str, object_id: str) -> None:
        self._s.outbox_seq += 1
        self._s.outbox.append(
            OutboxEntry(id=self._s.outbox_seq, topic=topic, object_id=object_id, created=utcnow())
        )

    def pending(self, *, limit: int = 1000) -> builtins.list[OutboxEntry]:
        return self._s.outbox[:limit]

    def remove(self, entry_ids: Iterable[int]) -> None:
        gone = set(entry_ids)
        self._s.outbox = [e for e in self._s.outbox if e.id not in gone]


class _Files(ResourceFileRepository):
    def __init__(self, s: _State) -> None:
        self._s = s

    def get(self, resource_id: str) -> ResourceFile | None:
        return self._s.files.get(resource_id)

    def get_many(self, resource_ids: Sequence[str]) -> builtins.list[ResourceFile]:
        files = self._s.files
        return [files[rid] for rid in dict.fromkeys(resource_ids) if rid in files]

    def put(self, record: ResourceFile) -> None:
        self._s.files[record.resource_id] = record

    def remove(self, resource_ids: Iterable[str]) -> None:
        for rid in resource_ids:
            self._s.files.pop(rid, None)

    def list(
        self,
        *,
        status: PipelineStatus | None = None,
        health: HealthStatus | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> builtins.list[ResourceFile]:
        items = [
            f
            for f in self._s.files.values()
            if (status is None or f.status is status)
            and (health is None or (f.health is not None and f.health.status is health))
        ]
        items.sort(key=lambda f: f.resource_id)
        items.sort(key=lambda f: f.updated, reverse=True)
        end = None if limit is None else offset + limit
        return items[offset:end]

    def status_counts(self) -> dict[PipelineStatus, int]:
        counts = dict.fromkeys(PipelineStatus, 0)
        for f in self._s.files.values():
            counts[f.status] += 1
        return counts

    def health_counts(self) -> dict[HealthStatus | None, int]:
        counts: dict[HealthStatus | None, int] = dict.fromkeys(HealthStatus, 0)
        counts[None] = 0
        for f in self._s.files.values():
            counts[None if f.health is None else f.health.status] += 1
        return counts

    def blob_keys(self) -> Iterable[str]:
        return {key for f in self._s.files.values() for key in f.blob_keys()}


class _MemoryUnitOfWork(UnitOfWork):
    def __init__(self, storage: MemoryStorage, write: bool) -> None:
        self._storage = storage
        self._write = write
        self._done = False
        if write:
            storage._writer.acquire()
            state = storage._state.copy()
        else:
            state = storage._state
        self._state = state
        self.datasets = _Datasets(state)
        self.groups = _Groups(state)
        self.users = _Users(state)
        self.tokens = _Tokens(state)
        self.memberships = _Memberships(state)
        self.vocabularies = _Vocabularies(state)
        self.activities = _Activities(state)
        self.outbox = _Outbox(state)
        self.files = _Files(state)

    def commit(self) -> None:
        if not self._write:
            return
        if self._done:
            raise RuntimeError("unit of work already finished")
        self._storage._state = self._state
        self._done = True
        self._state = self._state.copy()  # later writes in this block go nowhere visible

    def rollback(self) -> None:
        pass  # uncommitted changes live only in this unit of work's private copy

    def close(self) -> None:
        if self._write and not getattr(self, "_released", False):
            self._released = True
            self._storage._writer.release()


class MemoryStorage(Storage):
    """Storage in process memory; lost when the process ends."""

    def __init__(self) -> None:
        self._state = _State()
        self._writer = threading.Lock()
        self._closed = False

    @classmethod
    def from_url(cls, url: str = "memory://", **options: Any) -> MemoryStorage:
        """``memory://`` (anything after the scheme is ignored)."""
        return cls()

    def unit_of_work(self, *, write: bool = False) -> UnitOfWork:
        return _MemoryUnitOfWork(self, write)

    def initialize(self) -> None:
        """Nothing to create."""

    def close(self) -> None:
        self._closed = True

    def describe(self) -> dict[str, object]:
        return {"backend": "memory", "datasets": len(self._state.datasets)}
