"""Organizations and groups: one service class, two instances (one per kind)."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

import attrs
from attrs import frozen

from opencatalog.domain.commands import GroupInput, GroupPatch
from opencatalog.domain.model import Capacity, Dataset, Group, Membership, State, User
from opencatalog.domain.permissions import Action
from opencatalog.errors import Conflict, NotAuthorized, ValidationFailed
from opencatalog.ports.storage import DatasetFilter

from ._base import Call, Principal, Service, ServiceContext, require_input, require_ref
from .datasets import TOPIC, Page, _page_args
from .validation import check_group, given

__all__ = ["GroupService", "Member", "UserGroup"]


@frozen(kw_only=True)
class Member:
    """A user with their capacity in an organization or group."""

    user: User
    capacity: Capacity


@frozen(kw_only=True)
class UserGroup:
    """An organization or group with a user's capacity in it."""

    group: Group
    capacity: Capacity


_ACTIONS = {
    True: {
        "create": Action.ORGANIZATION_CREATE,
        "update": Action.ORGANIZATION_UPDATE,
        "delete": Action.ORGANIZATION_DELETE,
        "purge": Action.ORGANIZATION_PURGE,
        "members": Action.ORGANIZATION_MANAGE_MEMBERS,
    },
    False: {
        "create": Action.GROUP_CREATE,
        "update": Action.GROUP_UPDATE,
        "delete": Action.GROUP_DELETE,
        "purge": Action.GROUP_PURGE,
        "members": Action.GROUP_MANAGE_MEMBERS,
    },
}


class GroupService(Service):
    """Organizations (``is_organization=True``) or groups, with their members.

    Organizations own datasets (``Dataset.owner_org``); groups collect datasets of any
    organization (``Dataset.groups``). Both share one name space.
    """

    def __init__(self, ctx: ServiceContext, principal: Principal, *, is_organization: bool) -> None:
        super().__init__(ctx, principal)
        self.is_organization = is_organization
        self._kind = "organization" if is_organization else "group"
        self._actions = _ACTIONS[is_organization]

    def _load(self, call: Call, ref: str, action: Action | None = None) -> Group:
        return self._group(call, ref, is_organization=self.is_organization, action=action)

    def create(self, data: GroupInput) -> Group:
        """Create an organization or group; a creating user becomes its admin."""
        with self._call(write=True) as call:
            self._require(call, self._actions["create"], self._policy.base_role(call.actor))
            errors = check_group(data)
            errors.raise_if_any()
            if data.id is not None and not call.actor.is_sysadmin:
                errors.add("id", "The input field id was not expected.")
            errors.raise_if_any()
            if call.uow.groups.get_by_name(data.name) is not None:
                raise ValidationFailed({"name": ["Group name already exists in database"]})
            group = Group(
                id=data.id or call.ctx.new_id(),
                name=data.name,
                is_organization=self.is_organization,
                title=data.title,
                description=data.description,
                image_url=data.image_url,
                type=data.type or self._kind,
                extras=dict(data.extras),
                created=call.now,
            )
            call.uow.groups.add(group)
            if call.actor.user_id is not None:
                call.uow.memberships.put(
                    Membership(
                        group_id=group.id, user_id=call.actor.user_id, capacity=Capacity.ADMIN
                    )
                )
            call.activity(self._kind, "created", group)
            call.commit()
        return group

    def get(self, id_or_name: str) -> Group:
        """The organization or group with this id or name (deleted ones for members only)."""
        with self._call() as call:
            return self._load(call, id_or_name)

    def update(self, id_or_name: str, data: GroupInput) -> Group:
        """Replace the content of an organization or group (admins)."""
        require_input(data, GroupInput, "a group")
        with self._call(write=True) as call:
            current = self._load(call, id_or_name, self._actions["update"])
            errors = check_group(attrs.evolve(data, id=None))
            errors.raise_if_any()
            new = attrs.evolve(
                current,
                name=data.name,
                title=data.title,
                description=data.description,
                image_url=data.image_url,
                extras=dict(data.extras),
                revision=current.revision + 1,
            )
            result = self._save(call, current, new)
            call.commit()
        return result

    def patch(self, id_or_name: str, changes: GroupPatch) -> Group:
        """Change only the given fields (admins)."""
        require_input(changes, GroupPatch, "a group patch")
        with self._call(write=True) as call:
            current = self._load(call, id_or_name, self._actions["update"])
            values: dict[str, Any] = {
                "name": current.name,
                "title": current.title,
                "description": current.description,
                "image_url": current.image_url,
                "extras": current.extras,
            }
            for f in attrs.fields(GroupPatch):
                value = getattr(changes, f.name)
                if given(value):
                    values[f.name] = value
            check_group(GroupInput(**values)).raise_if_any()
            new = attrs.evolve(current, **values, revision=current.revision + 1)
            result = self._save(call, current, new)
            call.commit()
        return result

    def _save(self, call: Call, current: Group, new: Group) -> Group:
        if attrs.evolve(new, revision=current.revision) == current:
            return current
        if new.name != current.name:
            holder = call.uow.groups.get_by_name(new.name)
            if holder is not None and holder.id != new.id:
                raise ValidationFailed({"name": ["Group name already exists in database"]})
        call.uow.groups.save(new)
        call.activity(self._kind, "updated", new)
        for ds in self._datasets_of(call, current.id):
            call.changed(TOPIC, ds.id)  # names and titles of groups are indexed with datasets
        return new

    def _datasets_of(self, call: Call, group_id: str) -> builtins.list[Dataset]:
        states = frozenset(State)
        if self.is_organization:
            flt = DatasetFilter(states=states, owner_org=group_id)
        else:
            flt = DatasetFilter(states=states, group_id=group_id)
        return call.uow.datasets.list(flt)

    def _unlink(self, call: Call, ds: Dataset, group_id: str) -> None:
        new = attrs.evolve(
            ds,
            groups=tuple(g for g in ds.groups if g != group_id),
            metadata_modified=call.now,
            revision=ds.revision + 1,
        )
        call.uow.datasets.save(new)
        call.changed(TOPIC, ds.id)
        call.dataset_activity("updated", new)

    def delete(self, id_or_name: str) -> None:
        """Soft-delete; memberships (and, for groups, dataset links) are removed. An
        organization that still owns datasets that are not deleted cannot be deleted
        (Conflict)."""
        with self._call(write=True) as call:
            current = self._load(call, id_or_name, self._actions["delete"])
            if current.state is State.DELETED:
                call.commit()
                return
            self._refuse_if_owning(call, current)
            new = attrs.evolve(current, state=State.DELETED, revision=current.revision + 1)
            call.uow.groups.save(new)
            call.uow.memberships.remove_for_group(current.id)
            if not self.is_organization:
                # as CKAN deletes the group's member rows: its datasets leave it
                for ds in self._datasets_of(call, current.id):
                    self._unlink(call, ds, current.id)
            call.activity(self._kind, "deleted", new)
            call.commit()

    def _refuse_if_owning(self, call: Call, group: Group) -> None:
        if not self.is_organization:
            return
        flt = DatasetFilter(states=frozenset({State.ACTIVE, State.DRAFT}), owner_org=group.id)
        if call.uow.datasets.count(flt):
            raise Conflict("Organization cannot be deleted while it still has datasets")

    def restore(self, id_or_name: str) -> Group:
        """Bring a deleted organization or group back (sysadmins: members were removed)."""
        with self._call(write=True) as call:
            current = self._load(call, id_or_name, self._actions["purge"])
            if current.state is State.ACTIVE:
                return current
            new = attrs.evolve(current, state=State.ACTIVE, revision=current.revision + 1)
            call.uow.groups.save(new)
            call.activity(self._kind, "restored", new)
            call.commit()
        return new

    def purge(self, id_or_name: str) -> None:
        """Remove for good (sysadmins). Datasets leave a purged group; an organization still
        owning datasets that are not deleted cannot be purged (Conflict)."""
        with self._call(write=True) as call:
            current = self._load(call, id_or_name, self._actions["purge"])
            self._refuse_if_owning(call, current)
            for ds in self._datasets_of(call, current.id):
                if self.is_organization:
                    call.uow.datasets.remove(ds.id)  # only deleted datasets are left
                    call.uow.activities.remove_for_object(ds.id)
                    call.changed(TOPIC, ds.id)
                else:
                    self._unlink(call, ds, current.id)
            call.uow.groups.remove(current.id)
            call.uow.activities.remove_for_object(current.id)
            call.commit()

    def list(
        self, *, offset: int = 0, limit: int | None = None, include_deleted: bool = False
    ) -> Page:
        """Active organizations or groups by name (deleted ones too for sysadmins)."""
        _page_args(offset, limit)
        with self._call() as call:
            states = frozenset({State.ACTIVE})
            if include_deleted and call.actor.is_sysadmin:
                states = frozenset({State.ACTIVE, State.DELETED})
            items = call.uow.groups.list(
                is_organization=self.is_organization, states=states, offset=offset, limit=limit
            )
            total = call.uow.groups.count(is_organization=self.is_organization, states=states)
        return Page(items=tuple(items), total=total, offset=offset, limit=limit)

    def dataset_counts(self) -> dict[str, int]:
        """Group id to the number of active datasets in it the actor may read."""
        with self._call() as call:
            flt = DatasetFilter(visibility=call.actor.visibility())
            return call.uow.datasets.group_counts(flt)

    # -- members -----------------------------------------------------------------------

    def members(self, id_or_name: str) -> builtins.list[Member]:
        """The members with their capacities, by user name."""
        with self._call() as call:
            group = self._load(call, id_or_name)
            out = []
            for m in call.uow.memberships.for_group(group.id):
                user = call.uow.users.get(m.user_id)
                if user is not None and user.state is State.ACTIVE:
                    out.append(Member(user=user, capacity=m.capacity))
            return sorted(out, key=lambda m: m.user.name)

    def add_member(self, id_or_name: str, user: str, capacity: Capacity | str) -> Membership:
        """Add a user (id or name) or change their capacity (admins)."""
        require_ref(user, "username")
        with self._call(write=True) as call:
            group = self._load(call, id_or_name, self._actions["members"])
            try:
                cap = Capacity(capacity)
            except ValueError:
                raise ValidationFailed({"role": ["role does not exist."]}) from None
            target = call.uow.users.get(user) or call.uow.users.get_by_name(user)
            if target is None or target.state is not State.ACTIVE:
                raise ValidationFailed({"username": ["User not found"]})
            if (
                target.id == call.actor.user_id
                and cap is not Capacity.ADMIN
                and not call.actor.is_sysadmin
            ):
                raise NotAuthorized("Administrators cannot revoke their own admin status")
            membership = Membership(group_id=group.id, user_id=target.id, capacity=cap)
            call.uow.memberships.put(membership)
            call.activity(self._kind, "member_changed", group)
            call.commit()
        return membership

    def remove_member(self, id_or_name: str, user: str) -> None:
        """Take a user out of the organization or group (admins)."""
        require_ref(user, "username")
        with self._call(write=True) as call:
            group = self._load(call, id_or_name, self._actions["members"])
            target = call.uow.users.get(user) or call.uow.users.get_by_name(user)
            if target is None:
                raise ValidationFailed({"username": ["User not found"]})
            call.uow.memberships.remove(group.id, target.id)
            call.activity(self._kind, "member_changed", group)
            call.commit()

    def for_user(self, user: str | None = None) -> builtins.list[UserGroup]:
        """The active organizations or groups a user (id or name; the actor when None) holds
        a capacity in, by name. A sysadmin holds ``admin`` in every one of them, as CKAN's
        organization_list_for_user says; anonymous actors hold none."""
        with self._call() as call:
            if user is None:
                if call.actor.user_id is None:
                    return []
                target = self._user(call, call.actor.user_id)
            else:
                target = self._user(call, require_ref(user, "id"))
            groups = call.uow.groups.list(
                is_organization=self.is_organization, states=frozenset({State.ACTIVE})
            )
            if target.sysadmin:
                return [UserGroup(group=g, capacity=Capacity.ADMIN) for g in groups]
            held = {m.group_id: m.capacity for m in call.uow.memberships.for_user(target.id)}
            return [UserGroup(group=g, capacity=held[g.id]) for g in groups if g.id in held]

    # -- datasets in groups ------------------------------------------------------------

    def add_dataset(self, id_or_name: str, dataset: str) -> Dataset:
        """Put a dataset into this group (group members; groups only)."""
        return self._link(id_or_name, dataset, add=True)

    def remove_dataset(self, id_or_name: str, dataset: str) -> Dataset:
        """Take a dataset out of this group (group members; groups only)."""
        return self._link(id_or_name, dataset, add=False)

    def _link(self, id_or_name: str, dataset: str, *, add: bool) -> Dataset:
        if self.is_organization:
            raise ValidationFailed({"message": ["Datasets join organizations through owner_org"]})
        with self._call(write=True) as call:
            group = self._load(call, id_or_name, Action.GROUP_MANAGE_DATASETS)
            ds = self._dataset(call, dataset, None, for_update=True)
            groups: Sequence[str]
            if add:
                groups = ds.groups if group.id in ds.groups else (*ds.groups, group.id)
            else:
                groups = tuple(g for g in ds.groups if g != group.id)
            if tuple(groups) == ds.groups:
                return ds
            new = attrs.evolve(
                ds, groups=groups, metadata_modified=call.now, revision=ds.revision + 1
            )
            call.uow.datasets.save(new)
            call.changed(TOPIC, new.id)
            call.dataset_activity("updated", new)
            call.commit()
        return new
