"""What every service shares: the context (ports and policy), the principal, the call frame.

Each public service method is one use case and one unit of work::

    with self._call(write=True) as call:          # opens the unit of work, resolves the actor
        dataset = self._dataset(call, ref, Action.DATASET_UPDATE)   # load + authorize
        ...
        call.commit()                              # commit, then after-commit hooks

Authorization is one structural step: objects are only ever loaded through the ``_dataset``,
``_group``... helpers, which take the action and check the policy before returning. An object
the actor may not read raises NotFound; one they may read but not change, NotAuthorized.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from attrs import define, field, frozen

from opencatalog.domain.jobs import Job
from opencatalog.domain.model import Activity, Dataset, Group, State, User, snapshot, utcnow
from opencatalog.domain.permissions import Action, Actor, Policy, Role, dataset_labels
from opencatalog.errors import NotAuthorized, NotFound, ValidationFailed
from opencatalog.pipeline.fetch import Fetcher
from opencatalog.ports.blobs import BlobStore
from opencatalog.ports.capabilities import SupportsTransactionalEnqueue
from opencatalog.ports.queue import TaskQueue
from opencatalog.ports.search import SearchIndex
from opencatalog.ports.security import PasswordHasher
from opencatalog.ports.storage import Storage, UnitOfWork

__all__ = ["Call", "Principal", "Service", "ServiceContext"]

log = logging.getLogger("opencatalog.services")


def _new_id() -> str:
    return str(uuid.uuid4())


@define(kw_only=True)
class ServiceContext:
    """The ports and switches one catalog's services share.

    ``after_commit`` callables run after every committed write (the search indexer drains the
    outbox there); their errors are logged, never raised: the write is already durable.
    ``outbox_topics`` names the topics a consumer exists for; others are not recorded.
    """

    storage: Storage
    policy: Policy = field(factory=Policy)
    hasher: PasswordHasher
    clock: Callable[[], datetime] = utcnow
    new_id: Callable[[], str] = _new_id
    after_commit: list[Callable[[], None]] = field(factory=list)
    outbox_topics: frozenset[str] = frozenset()
    search_index: SearchIndex | None = None
    task_queue: TaskQueue | None = None
    blobs: BlobStore | None = None
    fetcher: Fetcher | None = None
    """Fetches external URLs for the pipeline and the link checker (None: no network)."""
    upload_secret: bytes | None = field(default=None, repr=False)
    """Signs upload URLs (None: a random key per process; see ``services.files``)."""
    upload_max_bytes: int | None = None
    """The largest upload accepted (None: ``services.files.DEFAULT_UPLOAD_MAX_BYTES``)."""


@frozen
class Principal:
    """On whose behalf services act: a fixed actor, or a user resolved afresh on every call
    (so membership changes take effect at once)."""

    actor: Actor | None = None
    user_id: str | None = None

    @classmethod
    def system(cls) -> Principal:
        return cls(actor=Actor.system_actor())

    @classmethod
    def anonymous(cls) -> Principal:
        return cls(actor=Actor.anonymous())


class Call:
    """One service call in progress: its unit of work and its resolved actor."""

    def __init__(self, ctx: ServiceContext, uow: UnitOfWork, actor: Actor) -> None:
        self.ctx = ctx
        self.uow = uow
        self.actor = actor
        self.now = ctx.clock()
        self.committed = False
        self._groups: dict[str, Group | None] = {}
        self.after_commit: list[Callable[[], None]] = []
        """Run after this call commits, before the catalog-wide ``ctx.after_commit`` hooks."""
        self._resource_owners: dict[str, str | None] = {}

    def resource_owners(self, resource_ids: Sequence[str]) -> dict[str, str]:
        """Which datasets hold these resource ids (those in use), remembered for this call;
        a bulk path asks for a whole batch at once, then per dataset from memory."""
        unknown = [rid for rid in resource_ids if rid not in self._resource_owners]
        if unknown:
            found = self.uow.datasets.resource_owners(unknown)
            for rid in unknown:
                self._resource_owners[rid] = found.get(rid)
        owners = ((rid, self._resource_owners[rid]) for rid in resource_ids)
        return {rid: owner for rid, owner in owners if owner is not None}

    def find_group(self, ref: str) -> Group | None:
        """The group or organization with this id or name, remembered for this call (bulk
        paths resolve the same few organizations thousands of times)."""
        if ref not in self._groups:
            groups = self.uow.groups
            self._groups[ref] = groups.get(ref) or groups.get_by_name(ref)
        return self._groups[ref]

    def changed(self, topic: str, object_id: str) -> None:
        """Record a change for derived stores, in this transaction."""
        if topic in self.ctx.outbox_topics:
            self.uow.outbox.add(topic, object_id)

    def enqueue(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        dedupe_key: str | None = None,
        max_attempts: int = 3,
    ) -> Job | None:
        """Ask for background work caused by this call's change.

        With a queue that supports transactional enqueue on this storage, the job is written
        in this transaction (it exists if and only if the change commits) and returned;
        otherwise it is enqueued right after the commit (None is returned). Without a queue
        nothing happens.
        """
        queue = self.ctx.task_queue
        if queue is None:
            return None
        if isinstance(queue, SupportsTransactionalEnqueue) and queue.accepts(self.uow):
            return queue.enqueue_in(
                self.uow, kind, payload, dedupe_key=dedupe_key, max_attempts=max_attempts
            )

        def enqueue_now() -> None:
            queue.enqueue(kind, payload, dedupe_key=dedupe_key, max_attempts=max_attempts)

        self.after_commit.append(enqueue_now)
        return None

    def make_activity(
        self, object_type: str, verb: str, obj: Any, *, labels: tuple[str, ...] = ()
    ) -> Activity:
        """An activity by this call's actor with a snapshot of ``obj`` after the change."""
        return Activity(
            id=self.ctx.new_id(),
            timestamp=self.now,
            user_id=self.actor.user_id,
            object_id=obj.id,
            object_type=object_type,
            activity_type=f"{object_type}.{verb}",
            data=snapshot(obj),
            permission_labels=labels,
        )

    def activity(
        self, object_type: str, verb: str, obj: Any, *, labels: tuple[str, ...] = ()
    ) -> None:
        """Append an activity about ``obj`` in this transaction."""
        self.uow.activities.add(self.make_activity(object_type, verb, obj, labels=labels))

    def dataset_activity_record(self, verb: str, dataset: Dataset) -> Activity:
        labels = tuple(sorted(dataset_labels(dataset)))
        return self.make_activity("dataset", verb, dataset, labels=labels)

    def dataset_activity(self, verb: str, dataset: Dataset) -> None:
        self.uow.activities.add(self.dataset_activity_record(verb, dataset))

    def commit(self) -> None:
        self.uow.commit()
        self.committed = True


def require_input(value: Any, cls: type, what: str) -> None:
    """Services take their input classes only; anything else is a validation error."""
    if not isinstance(value, cls):
        raise ValidationFailed({"message": [f"Must be {what}"]})


def require_ref(value: Any, field: str = "id") -> str:
    """An id or name argument must be a non-empty string."""
    if not isinstance(value, str) or not value:
        raise ValidationFailed({field: ["Missing value" if not value else "Must be a string"]})
    return value


def resolve_actor(uow: UnitOfWork, principal: Principal) -> Actor:
    """The actor for this call. A missing or deleted user acts as anonymous."""
    if principal.actor is not None:
        return principal.actor
    if principal.user_id is None:
        return Actor.anonymous()
    user = uow.users.get(principal.user_id)
    if user is None or user.state is not State.ACTIVE:
        return Actor.anonymous()
    return actor_for(uow, user)


def actor_for(uow: UnitOfWork, user: User) -> Actor:
    memberships = {m.group_id: m.capacity for m in uow.memberships.for_user(user.id)}
    return Actor(user_id=user.id, name=user.name, sysadmin=user.sysadmin, memberships=memberships)


class Service:
    """Base of every service: the call frame and the authorized loaders."""

    def __init__(self, ctx: ServiceContext, principal: Principal) -> None:
        self._ctx = ctx
        self._principal = principal

    @property
    def _policy(self) -> Policy:
        return self._ctx.policy

    @contextmanager
    def _call(self, *, write: bool = False) -> Iterator[Call]:
        with self._ctx.storage.unit_of_work(write=write) as uow:
            call = Call(self._ctx, uow, resolve_actor(uow, self._principal))
            yield call
        if call.committed:
            for hook in [*call.after_commit, *self._ctx.after_commit]:
                try:
                    hook()
                except Exception:  # the write is durable; derived stores catch up later
                    log.exception("after-commit hook %r failed", hook)

    # -- authorization -----------------------------------------------------------------

    def _require(self, call: Call, action: Action, role: Role, message: str = "") -> None:
        if not self._policy.allows(call.actor, action, role):
            who = call.actor.name or "anonymous"
            raise NotAuthorized(message or f"Access denied: {who} may not {action.value}")

    # -- loaders -----------------------------------------------------------------------

    def _dataset(
        self, call: Call, ref: str, action: Action | None = None, *, for_update: bool = False
    ) -> Dataset:
        """Load a dataset by id or name; NotFound unless the actor may read it; then check
        ``action`` (NotAuthorized)."""
        if not isinstance(ref, str) or not ref:
            raise ValidationFailed({"id": ["Missing value"]})
        repo = call.uow.datasets
        dataset = repo.get(ref, for_update=for_update) or repo.get_by_name(
            ref, for_update=for_update
        )
        if dataset is None or not self._policy.can_read_dataset(call.actor, dataset):
            raise NotFound("Dataset not found")
        if action is not None:
            self._require(call, action, self._policy.role_for_dataset(call.actor, dataset))
        return dataset

    def _group(
        self, call: Call, ref: str, *, is_organization: bool | None, action: Action | None = None
    ) -> Group:
        """Load a group or organization by id or name, with the same rules as ``_dataset``.
        ``is_organization=None`` accepts either kind."""
        if not isinstance(ref, str) or not ref:
            raise ValidationFailed({"id": ["Missing value"]})
        group = call.uow.groups.get(ref) or call.uow.groups.get_by_name(ref)
        kind = "Organization" if is_organization else "Group"
        if group is None or (
            is_organization is not None and group.is_organization != is_organization
        ):
            raise NotFound(f"{kind} not found")
        if not self._policy.can_read_group(call.actor, group):
            raise NotFound(f"{kind} not found")
        if action is not None:
            self._require(call, action, self._policy.role_in_group(call.actor, group.id))
        return group

    def _user(self, call: Call, ref: str, action: Action | None = None) -> User:
        """Load a user by id or name. Deleted users are visible to themselves and sysadmins."""
        if not isinstance(ref, str) or not ref:
            raise ValidationFailed({"id": ["Missing value"]})
        user = call.uow.users.get(ref) or call.uow.users.get_by_name(ref)
        if user is None:
            raise NotFound("User not found")
        role = self._policy.role_for_user(call.actor, user.id)
        if user.state is State.DELETED and not self._policy.allows(
            call.actor, Action.USER_READ_PRIVATE, role
        ):
            raise NotFound("User not found")
        if action is not None:
            self._require(call, action, role)
        return user
