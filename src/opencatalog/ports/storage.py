"""The storage port: repositories per aggregate and the unit of work that groups them.

A backend implements :class:`Storage` (a factory of units of work) and the repositories. The
services use them like this::

    with storage.unit_of_work(write=True) as uow:
        dataset = uow.datasets.get_by_name("water")
        uow.datasets.save(attrs.evolve(dataset, title="New", revision=dataset.revision + 1))
        uow.commit()

Contracts every backend keeps (the conformance kit in ``opencatalog.testing.storage`` checks them):

* A unit of work is one transaction. Nothing it wrote is visible to others before ``commit()``;
  leaving the ``with`` block without ``commit()`` (or on an exception) rolls everything back.
* ``write=True`` units of work are serialised against each other for the whole transaction, so
  a read-modify-write inside one cannot lose an update (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL:
  a row lock taken by ``get(..., for_update=True)``). ``write=False`` units of work never block
  writers and must not write.
* Repositories return domain objects that the caller owns; changing the store requires
  ``add``/``save``/``remove``. Reads inside a unit of work see its own writes.
* ``save`` checks optimistic concurrency: the object's ``revision`` must be exactly the stored
  revision + 1, else :class:`~opencatalog.errors.Conflict`. A missing object raises
  :class:`~opencatalog.errors.NotFound`.
* Unique names are enforced by the store itself (never only by a prior read): a clash raises
  :class:`~opencatalog.errors.AlreadyExists` with the field at fault, never a driver error,
  even when two transactions race.
* Listing methods return items in a stable, documented order.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Self

from attrs import field, frozen

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
)
from opencatalog.domain.permissions import Visibility

__all__ = [
    "ActivityRepository",
    "DatasetFilter",
    "DatasetRepository",
    "GroupRepository",
    "MembershipRepository",
    "OutboxEntry",
    "OutboxRepository",
    "ResourceCriterion",
    "ResourceFileRepository",
    "Storage",
    "TokenRepository",
    "UnitOfWork",
    "UserRepository",
    "VocabularyRepository",
]


@frozen(kw_only=True)
class DatasetFilter:
    """Which datasets a listing returns.

    ``visibility`` restricts to what an actor may read (see
    :class:`~opencatalog.domain.permissions.Visibility`); ``states`` to those states;
    ``owner_org``/``group_id``/``tag`` to one organization, group or free tag.
    ``include_private=False`` drops private datasets even where the actor could read them.
    """

    visibility: Visibility = field(factory=Visibility.everything)
    states: frozenset[State] = frozenset({State.ACTIVE})
    owner_org: str | None = None
    group_id: str | None = None
    tag: str | None = None
    include_private: bool = True


@frozen
class ResourceCriterion:
    """One ``field:term`` condition of a resource search (CKAN ``resource_search``).

    Text fields (``name``, ``description``, ``format``, ``url``, ``mimetype``,
    ``url_type``...) match when ``term`` is a case-insensitive *substring* of the value (an
    empty term matches every resource); ``hash`` matches by case-insensitive *prefix*;
    ``size`` and ``position`` match the number exactly (a term that is not an integer matches
    nothing); any other field is looked up in the resource's extras and matched as a
    substring of its JSON text. ``%``, ``_`` and ``\\`` in a term are literal characters.
    """

    field: str
    term: str


@frozen(kw_only=True)
class OutboxEntry:
    """A change that derived stores (the search index) must still apply.

    Written in the same transaction as the change, removed once applied. ``topic`` names the
    kind of object (``dataset``), ``object_id`` which one.
    """

    id: int
    topic: str
    object_id: str
    created: datetime = field(eq=False)


class DatasetRepository(ABC):
    """Datasets with their resources, tags and group links, stored as one aggregate."""

    @abstractmethod
    def get(self, dataset_id: str, *, for_update: bool = False) -> Dataset | None:
        """The dataset with this id in any state, or None.

        ``for_update`` locks the row until the unit of work ends where the backend needs it
        to serialise writers (PostgreSQL).
        """

    @abstractmethod
    def get_by_name(self, name: str, *, for_update: bool = False) -> Dataset | None:
        """The dataset with this exact (case-sensitive) name in any state, or None."""

    @abstractmethod
    def get_many(self, ids: Sequence[str]) -> builtins.list[Dataset]:
        """The datasets with these ids, in the order given; ids not found are skipped."""

    def get_many_by_name(self, names: Sequence[str]) -> builtins.list[Dataset]:
        """The datasets with these names (any state), in the order given; names not found
        are skipped. Backends override this with one query."""
        found = (self.get_by_name(name) for name in names)
        return [ds for ds in found if ds is not None]

    @abstractmethod
    def find_by_resource(self, resource_id: str) -> Dataset | None:
        """The dataset that holds the (active) resource with this id, or None."""

    def resource_owners(self, resource_ids: Sequence[str]) -> dict[str, str]:
        """Resource id to the id of the dataset holding it, for the ids that are in use.
        Backends override this with one query."""
        owners: dict[str, str] = {}
        for rid in resource_ids:
            found = self.find_by_resource(rid)
            if found is not None:
                owners[rid] = found.id
        return owners

    @abstractmethod
    def add(self, dataset: Dataset) -> None:
        """Store a new dataset. Raises AlreadyExists (field ``name`` or ``id``) on a clash,
        and AlreadyExists(field ``resources``) when a resource id is already in use."""

    def add_many(self, datasets: Sequence[Dataset]) -> None:
        """Store many new datasets at once; the same contract as :meth:`add` for each.

        Backends override this with a bulk path; on any clash nothing of the batch is kept
        once the unit of work rolls back.
        """
        for dataset in datasets:
            self.add(dataset)

    @abstractmethod
    def save(self, dataset: Dataset) -> None:
        """Replace a stored dataset. ``dataset.revision`` must be the stored revision + 1
        (else Conflict); a missing dataset raises NotFound; a name clash AlreadyExists."""

    @abstractmethod
    def remove(self, dataset_id: str) -> None:
        """Delete the dataset and everything it owns for good. Missing ids are ignored.
        The resource file records of the dataset (``package_id == dataset_id``) go with it."""

    @abstractmethod
    def list(
        self, flt: DatasetFilter, *, offset: int = 0, limit: int | None = None, order: str = "name"
    ) -> builtins.list[Dataset]:
        """Datasets matching ``flt``, ordered by ``order``: ``name`` (ascending) or
        ``-metadata_modified`` (newest first, ties by name), then paged."""

    @abstractmethod
    def count(self, flt: DatasetFilter) -> int:
        """How many datasets match ``flt``."""

    @abstractmethod
    def ids(self) -> Iterable[tuple[str, datetime]]:
        """Every stored dataset id with its metadata_modified, in any state (for index checks)."""

    @abstractmethod
    def tag_counts(
        self, flt: DatasetFilter, *, vocabulary_id: str | None = None
    ) -> builtins.list[tuple[str, int]]:
        """(tag name, number of matching datasets) for the tags of one vocabulary (None: free
        tags), most used first, ties by name."""

    @abstractmethod
    def group_counts(self, flt: DatasetFilter) -> dict[str, int]:
        """Group or organization id to the number of matching datasets in it (both the
        ``owner_org`` and ``groups`` links count)."""

    @abstractmethod
    def search_resources(
        self,
        criteria: Sequence[ResourceCriterion],
        *,
        order_by: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> tuple[int, builtins.list[Resource]]:
        """Resources of *active, public* datasets meeting every criterion (see
        :class:`ResourceCriterion`): the total count and the requested page. Ordered by
        ``order_by`` (a resource field, ascending) and then by resource id; by id alone when
        ``order_by`` is None."""


class GroupRepository(ABC):
    """Groups and organizations (one table, one name space)."""

    @abstractmethod
    def get(self, group_id: str) -> Group | None:
        """The group or organization with this id in any state, or None."""

    @abstractmethod
    def get_by_name(self, name: str) -> Group | None:
        """The group or organization with this exact name in any state, or None."""

    @abstractmethod
    def get_many(self, ids: Sequence[str]) -> builtins.list[Group]:
        """The groups with these ids, in the order given; ids not found are skipped."""

    @abstractmethod
    def add(self, group: Group) -> None:
        """Store a new group. A name used by any group or organization, in any state, raises
        AlreadyExists(field ``name``)."""

    @abstractmethod
    def save(self, group: Group) -> None:
        """Replace a stored group; optimistic revision check as for datasets."""

    @abstractmethod
    def remove(self, group_id: str) -> None:
        """Delete the group for good, with its memberships and dataset links. Datasets it
        owned are left unowned by the caller beforehand. Missing ids are ignored."""

    @abstractmethod
    def list(
        self,
        *,
        is_organization: bool,
        states: frozenset[State] = frozenset({State.ACTIVE}),
        offset: int = 0,
        limit: int | None = None,
    ) -> builtins.list[Group]:
        """Groups (or organizations) in these states, ordered by name."""

    @abstractmethod
    def count(
        self, *, is_organization: bool, states: frozenset[State] = frozenset({State.ACTIVE})
    ) -> int:
        """How many groups (or organizations) are in these states."""


class UserRepository(ABC):
    """User accounts."""

    @abstractmethod
    def get(self, user_id: str) -> User | None:
        """The user with this id in any state, or None."""

    @abstractmethod
    def get_by_name(self, name: str) -> User | None:
        """The user with this exact name in any state, or None."""

    @abstractmethod
    def get_by_email(self, email: str) -> User | None:
        """The user with this email, compared case-insensitively, or None: the oldest active
        account with it, else the oldest account in any state."""

    @abstractmethod
    def add(self, user: User) -> None:
        """Store a new user. A taken name raises AlreadyExists(field ``name``)."""

    @abstractmethod
    def save(self, user: User) -> None:
        """Replace a stored user; optimistic revision check as for datasets."""

    @abstractmethod
    def remove(self, user_id: str) -> None:
        """Delete the user for good, with their memberships and tokens."""

    @abstractmethod
    def list(
        self,
        *,
        states: frozenset[State] = frozenset({State.ACTIVE}),
        offset: int = 0,
        limit: int | None = None,
    ) -> builtins.list[User]:
        """Users in these states ordered by name."""

    @abstractmethod
    def count(self, *, states: frozenset[State] = frozenset({State.ACTIVE})) -> int:
        """How many users are in these states."""

    @abstractmethod
    def search(self, q: str, *, limit: int = 20) -> builtins.list[User]:
        """Active users whose name or full name contains ``q`` case-insensitively (``%`` and
        ``_`` literal), ordered by name, at most ``limit`` (user autocomplete)."""


class TokenRepository(ABC):
    """API tokens (only their hashes)."""

    @abstractmethod
    def get(self, token_id: str) -> ApiToken | None:
        """The token with this id, or None."""

    @abstractmethod
    def get_by_hash(self, token_hash: str) -> ApiToken | None:
        """The token whose secret hashes to ``token_hash``, or None."""

    @abstractmethod
    def add(self, token: ApiToken) -> None:
        """Store a new token."""

    @abstractmethod
    def touch(self, token_id: str, when: datetime) -> None:
        """Record that the token was used at ``when``. Missing ids are ignored."""

    @abstractmethod
    def remove(self, token_id: str) -> None:
        """Delete the token. Missing ids are ignored."""

    @abstractmethod
    def remove_for_user(self, user_id: str) -> int:
        """Delete every token of the user; return how many there were."""

    @abstractmethod
    def list_for_user(self, user_id: str) -> builtins.list[ApiToken]:
        """The user's tokens, oldest first."""


class MembershipRepository(ABC):
    """Users' capacities in organizations and groups."""

    @abstractmethod
    def get(self, group_id: str, user_id: str) -> Membership | None:
        """The membership of this user in this group, or None."""

    @abstractmethod
    def put(self, membership: Membership) -> None:
        """Add the membership, or change the capacity of an existing one."""

    @abstractmethod
    def remove(self, group_id: str, user_id: str) -> None:
        """Remove the membership. Missing ones are ignored."""

    @abstractmethod
    def for_user(self, user_id: str) -> builtins.list[Membership]:
        """The user's memberships, ordered by group id."""

    @abstractmethod
    def for_group(self, group_id: str) -> builtins.list[Membership]:
        """The group's memberships, ordered by user id."""

    @abstractmethod
    def remove_for_user(self, user_id: str) -> None:
        """Remove every membership of the user."""

    @abstractmethod
    def remove_for_group(self, group_id: str) -> None:
        """Remove every membership in the group."""


class VocabularyRepository(ABC):
    """Tag vocabularies."""

    @abstractmethod
    def get(self, vocabulary_id: str) -> Vocabulary | None:
        """The vocabulary with this id, or None."""

    @abstractmethod
    def get_by_name(self, name: str) -> Vocabulary | None:
        """The vocabulary with this name, or None."""

    @abstractmethod
    def add(self, vocabulary: Vocabulary) -> None:
        """Store a new vocabulary; a taken name raises AlreadyExists(field ``name``)."""

    @abstractmethod
    def save(self, vocabulary: Vocabulary) -> None:
        """Replace a stored vocabulary (no revision check). Missing raises NotFound."""

    @abstractmethod
    def remove(self, vocabulary_id: str) -> None:
        """Delete the vocabulary. Missing ids are ignored."""

    @abstractmethod
    def list(self) -> builtins.list[Vocabulary]:
        """All vocabularies ordered by name."""


class ActivityRepository(ABC):
    """The activity stream: append-only records of changes."""

    @abstractmethod
    def add(self, activity: Activity) -> None:
        """Append an activity."""

    def add_many(self, activities: Sequence[Activity]) -> None:
        """Append many activities; backends override this with a bulk path."""
        for activity in activities:
            self.add(activity)

    @abstractmethod
    def list(
        self,
        *,
        object_id: str | None = None,
        user_id: str | None = None,
        offset: int = 0,
        limit: int = 31,
    ) -> builtins.list[Activity]:
        """Activities about ``object_id`` and/or by ``user_id`` (None: any), newest first
        (ties by id descending)."""

    @abstractmethod
    def remove_for_object(self, object_id: str) -> None:
        """Delete every activity about this object (used by purge)."""


class OutboxRepository(ABC):
    """Changes still to be applied to derived stores, written in the changing transaction."""

    @abstractmethod
    def add(self, topic: str, object_id: str) -> None:
        """Record that ``object_id`` of kind ``topic`` changed."""

    @abstractmethod
    def pending(self, *, limit: int = 1000) -> builtins.list[OutboxEntry]:
        """The oldest entries first, at most ``limit``."""

    @abstractmethod
    def remove(self, entry_ids: Iterable[int]) -> None:
        """Delete applied entries. Missing ids are ignored."""


class ResourceFileRepository(ABC):
    """The derived state of resources' content (see :mod:`opencatalog.domain.files`), one
    record per resource id. Written by uploads, the pipeline and the link checker only."""

    @abstractmethod
    def get(self, resource_id: str) -> ResourceFile | None:
        """The record of this resource, or None."""

    @abstractmethod
    def get_many(self, resource_ids: Sequence[str]) -> builtins.list[ResourceFile]:
        """The records of those ids that have one, in no particular order."""

    @abstractmethod
    def put(self, record: ResourceFile) -> None:
        """Insert or replace the record of ``record.resource_id`` (every field, including
        the step log and the link health)."""

    @abstractmethod
    def remove(self, resource_ids: Iterable[str]) -> None:
        """Delete the records of these resources; ids without one are ignored."""

    @abstractmethod
    def list(
        self,
        *,
        status: PipelineStatus | None = None,
        health: HealthStatus | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> builtins.list[ResourceFile]:
        """Records, optionally of one pipeline status and/or link health status, ordered by
        ``updated`` (newest first), then resource id."""

    @abstractmethod
    def status_counts(self) -> dict[PipelineStatus, int]:
        """How many records are in each pipeline status (every status present, 0 if none)."""

    @abstractmethod
    def health_counts(self) -> dict[HealthStatus | None, int]:
        """How many records have each link health status; ``None`` counts the records never
        checked. Every key present (0 if none)."""

    @abstractmethod
    def blob_keys(self) -> Iterable[str]:
        """Every blob key any record names (``blob_key``, ``text_key``, ``preview_key``),
        each once, in no particular order: what the orphan sweep must keep."""


class UnitOfWork(ABC):
    """One transaction over all repositories. Use it as a context manager.

    Leaving the block without :meth:`commit` rolls back; so does an exception.
    """

    datasets: DatasetRepository
    groups: GroupRepository
    users: UserRepository
    tokens: TokenRepository
    memberships: MembershipRepository
    vocabularies: VocabularyRepository
    activities: ActivityRepository
    outbox: OutboxRepository
    files: ResourceFileRepository

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.rollback()
        finally:
            self.close()

    @abstractmethod
    def commit(self) -> None:
        """Make every change of this unit of work durable and visible. Driver errors at commit
        are translated (a unique clash found at commit is AlreadyExists)."""

    @abstractmethod
    def rollback(self) -> None:
        """Discard every change not yet committed. Safe to call after commit (no-op)."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection. Called on leaving the ``with`` block."""


class Storage(ABC):
    """A storage backend: the factory of units of work.

    Implementations are created by a ``from_url(url, **options)`` factory registered in the
    ``opencatalog.storage`` entry-point group.
    """

    @abstractmethod
    def unit_of_work(self, *, write: bool = False) -> UnitOfWork:
        """A new unit of work; ``write=True`` serialises it against other writers."""

    @abstractmethod
    def initialize(self) -> None:
        """Create or upgrade the schema to the current version. Idempotent."""

    @abstractmethod
    def close(self) -> None:
        """Release every resource. The storage may not be used afterwards."""

    def describe(self) -> dict[str, object]:
        """Facts for ``opencatalog info``: backend name, location, schema version..."""
        return {"backend": type(self).__name__}
