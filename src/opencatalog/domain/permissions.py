"""Who may do what: the authorization policy as pure functions over one table.

Every service method asks :meth:`Policy.role` for the actor's role towards the target object
and compares it with the minimum role the :data:`POLICY` table gives for the action. Roles are
ordered: anonymous < user < member < editor < admin < sysadmin.

How an actor relates to a target:

* organization or group: the capacity of their membership in it (member/editor/admin), else
  ``user`` when logged in, else ``anonymous``;
* dataset: the role in its owning organization; for an unowned dataset the creator is an
  ``editor``;
* user account: ``admin`` of their own account, ``user`` of anyone else's;
* sysadmins and the system actor (background work) are ``sysadmin`` of everything.

Reading is decided by visibility first: a dataset that is not active-and-public needs
``member``; a deleted group or organization needs ``member`` of it. An object the actor may
not read is reported as not found, never as forbidden (services enforce this).

Permission labels make the same read rule usable as a filter in search indexes: a dataset's
labels (:func:`dataset_labels`) intersect an actor's labels (:meth:`Actor.labels`) exactly
when the actor may read it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from attrs import field, frozen

from opencatalog.domain.model import Capacity, Dataset, Group, State

__all__ = [
    "POLICY",
    "Action",
    "Actor",
    "Policy",
    "Role",
    "Visibility",
    "dataset_labels",
]


class Role(enum.IntEnum):
    """An actor's relation to a target, ordered by power."""

    ANONYMOUS = 0
    USER = 1
    MEMBER = 2
    EDITOR = 3
    ADMIN = 4
    SYSADMIN = 5


_CAPACITY_ROLE = {
    Capacity.MEMBER: Role.MEMBER,
    Capacity.EDITOR: Role.EDITOR,
    Capacity.ADMIN: Role.ADMIN,
}


class Action(enum.StrEnum):
    """Everything the policy decides. The target of each is named after the dot."""

    DATASET_READ = "dataset.read"  # a public, active dataset
    DATASET_READ_PRIVATE = "dataset.read_private"  # private, draft or deleted
    DATASET_CREATE = "dataset.create"  # target: the owner organization
    DATASET_CREATE_UNOWNED = "dataset.create_unowned"  # target: none
    DATASET_UPDATE = "dataset.update"
    DATASET_DELETE = "dataset.delete"
    DATASET_PURGE = "dataset.purge"
    DATASET_SET_STATE = "dataset.set_state"  # create in a chosen state
    GROUP_READ = "group.read"  # an active group
    GROUP_READ_DELETED = "group.read_deleted"
    GROUP_CREATE = "group.create"
    GROUP_UPDATE = "group.update"
    GROUP_DELETE = "group.delete"
    GROUP_PURGE = "group.purge"
    GROUP_MANAGE_MEMBERS = "group.manage_members"
    GROUP_MANAGE_DATASETS = "group.manage_datasets"  # put datasets into it / take them out
    ORGANIZATION_READ = "organization.read"
    ORGANIZATION_READ_DELETED = "organization.read_deleted"
    ORGANIZATION_CREATE = "organization.create"
    ORGANIZATION_UPDATE = "organization.update"
    ORGANIZATION_DELETE = "organization.delete"
    ORGANIZATION_PURGE = "organization.purge"
    ORGANIZATION_MANAGE_MEMBERS = "organization.manage_members"
    USER_READ = "user.read"
    USER_READ_PRIVATE = "user.read_private"  # email, tokens, deleted accounts
    USER_CREATE = "user.create"
    USER_UPDATE = "user.update"
    USER_SET_SYSADMIN = "user.set_sysadmin"
    USER_DELETE = "user.delete"
    USER_PURGE = "user.purge"
    TOKEN_MANAGE = "token.manage"  # target: the token's user
    VOCABULARY_MANAGE = "vocabulary.manage"
    ACTIVITY_READ_ALL = "activity.read_all"  # the site-wide stream
    SEARCH_ADMIN = "search.admin"  # index checks, repairs, rebuilds, stats
    JOBS_ADMIN = "jobs.admin"  # job statistics, listings, retries


#: The minimum role for each action. The one table the services and the tests read.
POLICY: Mapping[Action, Role] = {
    Action.DATASET_READ: Role.ANONYMOUS,
    Action.DATASET_READ_PRIVATE: Role.MEMBER,
    Action.DATASET_CREATE: Role.EDITOR,
    Action.DATASET_CREATE_UNOWNED: Role.SYSADMIN,
    Action.DATASET_UPDATE: Role.EDITOR,
    Action.DATASET_DELETE: Role.EDITOR,
    Action.DATASET_PURGE: Role.ADMIN,
    Action.DATASET_SET_STATE: Role.SYSADMIN,
    Action.GROUP_READ: Role.ANONYMOUS,
    Action.GROUP_READ_DELETED: Role.MEMBER,
    Action.GROUP_CREATE: Role.USER,
    Action.GROUP_UPDATE: Role.ADMIN,
    Action.GROUP_DELETE: Role.ADMIN,
    Action.GROUP_PURGE: Role.SYSADMIN,
    Action.GROUP_MANAGE_MEMBERS: Role.ADMIN,
    Action.GROUP_MANAGE_DATASETS: Role.MEMBER,
    Action.ORGANIZATION_READ: Role.ANONYMOUS,
    Action.ORGANIZATION_READ_DELETED: Role.MEMBER,
    Action.ORGANIZATION_CREATE: Role.SYSADMIN,
    Action.ORGANIZATION_UPDATE: Role.ADMIN,
    Action.ORGANIZATION_DELETE: Role.ADMIN,
    Action.ORGANIZATION_PURGE: Role.SYSADMIN,
    Action.ORGANIZATION_MANAGE_MEMBERS: Role.ADMIN,
    Action.USER_READ: Role.ANONYMOUS,
    Action.USER_READ_PRIVATE: Role.ADMIN,
    Action.USER_CREATE: Role.SYSADMIN,
    Action.USER_UPDATE: Role.ADMIN,
    Action.USER_SET_SYSADMIN: Role.SYSADMIN,
    Action.USER_DELETE: Role.SYSADMIN,
    Action.USER_PURGE: Role.SYSADMIN,
    Action.TOKEN_MANAGE: Role.ADMIN,
    Action.VOCABULARY_MANAGE: Role.SYSADMIN,
    Action.ACTIVITY_READ_ALL: Role.SYSADMIN,
    Action.SEARCH_ADMIN: Role.SYSADMIN,
    Action.JOBS_ADMIN: Role.SYSADMIN,
}


@frozen(kw_only=True)
class Actor:
    """Who is acting: anonymous, a user (with their memberships), or the system.

    ``memberships`` maps organization/group ids to the user's capacity there. Build actors
    with :meth:`anonymous`, :meth:`system` or the user service; never by hand for real users.
    """

    user_id: str | None = None
    name: str | None = None
    sysadmin: bool = False
    system: bool = False
    memberships: Mapping[str, Capacity] = field(factory=dict)

    @classmethod
    def anonymous(cls) -> Actor:
        return cls()

    @classmethod
    def system_actor(cls) -> Actor:
        """The explicit actor of background work and of the embedded library's owner."""
        return cls(name="system", sysadmin=True, system=True)

    @property
    def is_anonymous(self) -> bool:
        return self.user_id is None and not self.system

    @property
    def is_sysadmin(self) -> bool:
        return self.sysadmin or self.system

    def capacity_in(self, group_id: str | None) -> Capacity | None:
        if group_id is None:
            return None
        return self.memberships.get(group_id)

    def labels(self) -> frozenset[str] | None:
        """The permission labels the actor holds; None for sysadmins (they see everything)."""
        if self.is_sysadmin:
            return None
        labels = {"public"}
        if self.user_id is not None:
            labels.add(f"creator-{self.user_id}")
            labels.update(f"member-{gid}" for gid in self.memberships)
        return frozenset(labels)

    def visibility(self) -> Visibility:
        if self.is_sysadmin:
            return Visibility.everything()
        return Visibility(
            unrestricted=False, org_ids=frozenset(self.memberships), user_id=self.user_id
        )


@frozen(kw_only=True)
class Visibility:
    """The set of datasets an actor may read, in a form storage can turn into a filter.

    A dataset is readable when ``unrestricted`` is set, or it is active and not private, or its
    ``owner_org`` is in ``org_ids``, or it is unowned and ``creator_user_id == user_id``.
    """

    unrestricted: bool
    org_ids: frozenset[str] = frozenset()
    user_id: str | None = None

    @classmethod
    def everything(cls) -> Visibility:
        """Every dataset (sysadmins and the system actor)."""
        return cls(unrestricted=True)

    @classmethod
    def public(cls) -> Visibility:
        """Only active public datasets (anonymous)."""
        return cls(unrestricted=False)

    def allows(self, dataset: Dataset) -> bool:
        if self.unrestricted or dataset.is_public:
            return True
        if dataset.owner_org is not None:
            return dataset.owner_org in self.org_ids
        return self.user_id is not None and dataset.creator_user_id == self.user_id


def dataset_labels(dataset: Dataset) -> frozenset[str]:
    """The permission labels of a dataset: ``public`` for active public ones, plus
    ``member-<org id>`` (owned) or ``creator-<user id>`` (unowned)."""
    labels: set[str] = set()
    if dataset.is_public:
        labels.add("public")
    if dataset.owner_org is not None:
        labels.add(f"member-{dataset.owner_org}")
    elif dataset.creator_user_id is not None:
        labels.add(f"creator-{dataset.creator_user_id}")
    return frozenset(labels)


@frozen(kw_only=True)
class Policy:
    """The authorization policy with the site's switches applied to :data:`POLICY`.

    ``create_unowned_dataset``: any logged-in user may create datasets without an
    organization. ``user_create_organizations``: any logged-in user may create organizations
    (they become its admin). ``user_create_groups``: any logged-in user may create groups.
    """

    create_unowned_dataset: bool = False
    user_create_organizations: bool = False
    user_create_groups: bool = True

    def minimum(self, action: Action) -> Role:
        if action is Action.DATASET_CREATE_UNOWNED and self.create_unowned_dataset:
            return Role.USER
        if action is Action.ORGANIZATION_CREATE and self.user_create_organizations:
            return Role.USER
        if action is Action.GROUP_CREATE and not self.user_create_groups:
            return Role.SYSADMIN
        return POLICY[action]

    def allows(self, actor: Actor, action: Action, role: Role) -> bool:
        """Whether an actor whose role towards the target is ``role`` may do ``action``."""
        return role >= self.minimum(action)

    # -- the actor's role towards each kind of target -------------------------------------

    @staticmethod
    def base_role(actor: Actor) -> Role:
        if actor.is_sysadmin:
            return Role.SYSADMIN
        return Role.ANONYMOUS if actor.user_id is None else Role.USER

    def role_in_group(self, actor: Actor, group_id: str | None) -> Role:
        base = self.base_role(actor)
        if base is Role.SYSADMIN:
            return base
        capacity = actor.capacity_in(group_id)
        return _CAPACITY_ROLE[capacity] if capacity is not None else base

    def role_for_dataset(self, actor: Actor, dataset: Dataset) -> Role:
        if dataset.owner_org is not None:
            return self.role_in_group(actor, dataset.owner_org)
        base = self.base_role(actor)
        creator = actor.user_id is not None and actor.user_id == dataset.creator_user_id
        if base is not Role.SYSADMIN and creator:
            return Role.EDITOR
        return base

    def role_for_user(self, actor: Actor, user_id: str) -> Role:
        base = self.base_role(actor)
        if base is not Role.SYSADMIN and actor.user_id == user_id:
            return Role.ADMIN
        return base

    # -- reading --------------------------------------------------------------------------

    def can_read_dataset(self, actor: Actor, dataset: Dataset) -> bool:
        action = Action.DATASET_READ if dataset.is_public else Action.DATASET_READ_PRIVATE
        return self.allows(actor, action, self.role_for_dataset(actor, dataset))

    def can_read_group(self, actor: Actor, group: Group) -> bool:
        if group.state is State.ACTIVE:
            action = Action.ORGANIZATION_READ if group.is_organization else Action.GROUP_READ
        else:
            action = (
                Action.ORGANIZATION_READ_DELETED
                if group.is_organization
                else Action.GROUP_READ_DELETED
            )
        return self.allows(actor, action, self.role_in_group(actor, group.id))
