"""The authorization matrix: actor x service method x object state, at service level.

Every cell's expected outcome is computed from the policy table itself
(:data:`~opencatalog.domain.permissions.POLICY` through :class:`Policy`): an actor who may not
read the target gets NotFound, one who may read it but not act gets NotAuthorized, everyone
else succeeds (and the effect is checked). A refused write must leave the catalog unchanged.
Each cell runs on a freshly built catalog, so cells cannot influence each other.

A few cells are also pinned by hand (``PINNED``), so that a wrong change to the table itself
fails here too. The second half is the canary crawl: private, draft and deleted datasets carry
a unique string that no outsider may find through any read path.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest

from opencatalog.domain.commands import (
    DatasetInput,
    DatasetPatch,
    GroupInput,
    GroupPatch,
    ResourceInput,
    ResourcePatch,
    UserInput,
    UserPatch,
)
from opencatalog.domain.model import State, Tag
from opencatalog.domain.permissions import POLICY, Action, Actor, Policy, Role
from opencatalog.errors import (
    Conflict,
    NotAuthorized,
    NotFound,
    OpenCatalogError,
    ValidationFailed,
)
from opencatalog.services.catalog import Catalog
from opencatalog.testing.stateful import SteppingClock, make_deterministic, stored_contents

# -- the world every cell starts from ----------------------------------------------------------

#: actor key -> user name (None: anonymous)
ACTORS: dict[str, str | None] = {
    "anonymous": None,
    "user": "uma",  # logged in, no role
    "member": "mia",  # member of org-a and of grp
    "editor": "ed",  # editor of org-a and of grp
    "admin": "ada",  # admin of org-a and of grp
    "other_member": "olga",  # member of org-b and grp-b
    "other_admin": "oscar",  # admin of org-b and grp-b, member of grp-a
    "sysadmin": "root",
}

#: dataset state key -> dataset name (all in org-a, each with two resources)
DATASETS = {
    "public": "ds-public",
    "private": "ds-private",
    "draft": "ds-draft",
    "deleted": "ds-deleted",
    "private_deleted": "ds-private-deleted",
}
CANARY = "zqxcanary"
LATER = datetime(2030, 1, 1, tzinfo=UTC)
PASSWORD = "correct-horse"


@attrs.define
class World:
    catalog: Catalog
    policy: Policy
    token_ids: dict[str, str] = attrs.field(factory=dict)

    def view(self, actor: str) -> Catalog:
        name = ACTORS[actor]
        return self.catalog.anonymous() if name is None else self.catalog.as_user(name)

    def actor(self, actor: str) -> Actor:
        return self.view(actor).actor

    def dataset(self, key: str) -> Any:
        return self.catalog.datasets.get(DATASETS[key])


def _canary_fields(secret: bool) -> dict[str, Any]:
    if not secret:
        return {"title": "Open data", "tags": ["open"]}
    return {
        "title": f"Title {CANARY}",
        "notes": f"Notes {CANARY}",
        "tags": [f"{CANARY}tag"],
        "extras": {"secret": CANARY},
    }


def build_world(catalog: Catalog) -> World:
    """Users, two organizations and two groups (one of each also deleted), and a dataset in
    every state, created as the system."""
    for name in ("uma", "mia", "ed", "ada", "olga", "oscar", "zed", "gone"):
        catalog.users.create(UserInput(name=name, email=f"{name}@example.org", password=PASSWORD))
    catalog.users.create(
        UserInput(name="root", email="root@example.org", password=PASSWORD, sysadmin=True)
    )
    catalog.users.delete("gone")
    roles_a = (("mia", "member"), ("ed", "editor"), ("ada", "admin"))
    roles_b = (("olga", "member"), ("oscar", "admin"))
    for service in (catalog.organizations, catalog.groups):
        prefix = "org" if service is catalog.organizations else "grp"
        # oscar is also a plain member of grp-a: he may put datasets into it, but not
        # org-a's hidden ones
        extra = (("oscar", "member"),) if prefix == "grp" else ()
        for suffix, roles in (("-a", roles_a + extra), ("-b", roles_b), ("-gone", roles_a)):
            service.create(GroupInput(name=prefix + suffix))
            for user, capacity in roles:
                service.add_member(prefix + suffix, user, capacity)
    catalog.groups.delete("grp-gone")
    # private datasets come from an editor, so that their activities are the editor's (and
    # must stay hidden in the editor's stream); the others were public once, or drafts
    creators = {"private": "ed", "private_deleted": "ed"}
    for key, name in DATASETS.items():
        secret = key != "public"
        creator = creators.get(key)
        view = catalog if creator is None else catalog.as_user(creator)
        view.datasets.create(
            DatasetInput(
                name=name,
                owner_org="org-a",
                private="private" in key,
                state=State.DRAFT if key == "draft" else None,
                resources=[
                    ResourceInput(url=f"http://example.org/{name}/one.csv", name="one"),
                    ResourceInput(
                        url=f"http://example.org/{CANARY if secret else 'x'}/two",
                        name=f"two {CANARY}" if secret else "two",
                        format="CANARYFMT" if secret else "CSV",
                    ),
                ],
                **_canary_fields(secret),
            )
        )
    catalog.datasets.create(DatasetInput(name="ds-linked", owner_org="org-a", groups=["grp-a"]))
    catalog.datasets.delete("ds-deleted")
    catalog.as_user("ed").datasets.delete("ds-private-deleted")
    # org-gone has no datasets, so it can be deleted
    catalog.organizations.delete("org-gone")
    return World(catalog=catalog, policy=catalog._ctx.policy)


# -- expectations from the policy --------------------------------------------------------------

Check = tuple[str, bool]  # ("read" | "act" | "valid" | "conflict", passes)


def read_dataset(w: World, a: Actor, key: str) -> Check:
    return ("read", w.policy.can_read_dataset(a, w.dataset(key)))


def act_dataset(w: World, a: Actor, key: str, action: Action) -> Check:
    ds = w.dataset(key)
    return ("act", w.policy.allows(a, action, w.policy.role_for_dataset(a, ds)))


def _group_obj(w: World, kind: str, name: str) -> Any:
    with w.catalog._ctx.storage.unit_of_work() as uow:
        return uow.groups.get_by_name(name)


def read_group(w: World, a: Actor, kind: str, name: str) -> Check:
    return ("read", w.policy.can_read_group(a, _group_obj(w, kind, name)))


def act_group(w: World, a: Actor, kind: str, name: str, action: Action) -> Check:
    group = _group_obj(w, kind, name)
    return ("act", w.policy.allows(a, action, w.policy.role_in_group(a, group.id)))


def _user_obj(w: World, name: str) -> Any:
    with w.catalog._ctx.storage.unit_of_work() as uow:
        return uow.users.get_by_name(name)


def read_user(w: World, a: Actor, name: str) -> Check:
    user = _user_obj(w, name)
    role = w.policy.role_for_user(a, user.id)
    ok = w.policy.allows(a, Action.USER_READ, role) and (
        user.state is State.ACTIVE or w.policy.allows(a, Action.USER_READ_PRIVATE, role)
    )
    return ("read", ok)


def act_user(w: World, a: Actor, name: str, action: Action) -> Check:
    role = w.policy.role_for_user(a, _user_obj(w, name).id)
    return ("act", w.policy.allows(a, action, role))


def act_site(w: World, a: Actor, action: Action) -> Check:
    return ("act", w.policy.allows(a, action, w.policy.base_role(a)))


OUTCOME_OF_FAILED_CHECK = {
    "read": NotFound,
    "act": NotAuthorized,
    "valid": ValidationFailed,
    "conflict": Conflict,
}


def expected_outcome(checks: list[Check]) -> type[Exception] | None:
    """The exception the first failing check calls for; None when every check passes."""
    for kind, passes in checks:
        if not passes:
            return OUTCOME_OF_FAILED_CHECK[kind]
    return None


# -- the service methods under test ------------------------------------------------------------


@attrs.frozen
class Spec:
    """One service method: which targets, how to call it, what the policy requires."""

    name: str
    targets: tuple[str, ...]
    run: Callable[[Catalog, World, str], Any]
    checks: Callable[[World, Actor, str], list[Check]]
    actions: frozenset[Action]
    write: bool = True
    effect: Callable[[World, str, Any, Actor], None] | None = None
    prepare: Callable[[World, str], None] | None = None


SPECS: list[Spec] = []


def spec(
    name: str,
    targets: tuple[str, ...],
    actions: tuple[Action, ...] = (),
    *,
    write: bool = True,
    effect: Callable[[World, str, Any, Actor], None] | None = None,
    prepare: Callable[[World, str], None] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``run``; ``checks`` is given as the ``checks`` attribute of the function."""

    def register(run: Callable[..., Any]) -> Callable[..., Any]:
        SPECS.append(
            Spec(
                name=name,
                targets=targets,
                run=run,
                checks=run.checks,  # type: ignore[attr-defined]
                actions=frozenset(actions),
                write=write,
                effect=effect,
                prepare=prepare,
            )
        )
        return run

    return register


def checks(fn: Callable[[World, Actor, str], list[Check]]) -> Callable[[Any], Any]:
    def attach(run: Any) -> Any:
        run.checks = fn
        return run

    return attach


DS = tuple(DATASETS)


# datasets ------------------------------------------------------------------------------------


def _ds_read(w: World, a: Actor, key: str) -> list[Check]:
    return [read_dataset(w, a, key)]


def _ds(action: Action) -> Callable[[World, Actor, str], list[Check]]:
    return lambda w, a, key: [read_dataset(w, a, key), act_dataset(w, a, key, action)]


def _same_id(w: World, key: str, result: Any, a: Actor) -> None:
    assert result.name == DATASETS[key]


@spec("dataset.get", DS, (Action.DATASET_READ, Action.DATASET_READ_PRIVATE), write=False,
      effect=_same_id)  # fmt: skip
@checks(_ds_read)
def _(view: Catalog, w: World, key: str) -> Any:
    return view.datasets.get(DATASETS[key])


@spec("dataset.get_by_id", DS, write=False, effect=_same_id)
@checks(_ds_read)
def _(view: Catalog, w: World, key: str) -> Any:
    return view.datasets.get(w.dataset(key).id)


def _title_is(title: str) -> Callable[[World, str, Any, Actor], None]:
    def effect(w: World, key: str, result: Any, a: Actor) -> None:
        assert w.dataset(key).title == title

    return effect


@spec("dataset.update", DS, (Action.DATASET_UPDATE,), effect=_title_is("Changed"))
@checks(_ds(Action.DATASET_UPDATE))
def _(view: Catalog, w: World, key: str) -> Any:
    ds = w.dataset(key)
    return view.datasets.update(
        DATASETS[key],
        DatasetInput(name=ds.name, owner_org="org-a", private=ds.private, title="Changed"),
    )


@spec("dataset.patch", DS, (Action.DATASET_UPDATE,), effect=_title_is("Patched"))
@checks(_ds(Action.DATASET_UPDATE))
def _(view: Catalog, w: World, key: str) -> Any:
    return view.datasets.patch(DATASETS[key], DatasetPatch(title="Patched"))


def _state_is(state: State) -> Callable[[World, str, Any, Actor], None]:
    def effect(w: World, key: str, result: Any, a: Actor) -> None:
        assert w.dataset(key).state is state

    return effect


@spec("dataset.delete", DS, (Action.DATASET_DELETE,), effect=_state_is(State.DELETED))
@checks(_ds(Action.DATASET_DELETE))
def _(view: Catalog, w: World, key: str) -> Any:
    return view.datasets.delete(DATASETS[key])


def _restored(w: World, key: str, result: Any, a: Actor) -> None:
    assert w.dataset(key).state is (State.DRAFT if key == "draft" else State.ACTIVE)


@spec("dataset.restore", DS, (Action.DATASET_UPDATE,), effect=_restored)
@checks(_ds(Action.DATASET_UPDATE))
def _(view: Catalog, w: World, key: str) -> Any:
    return view.datasets.restore(DATASETS[key])


def _purged(w: World, key: str, result: Any, a: Actor) -> None:
    with pytest.raises(NotFound):
        w.dataset(key)


@spec("dataset.purge", DS, (Action.DATASET_PURGE,), effect=_purged)
@checks(_ds(Action.DATASET_PURGE))
def _(view: Catalog, w: World, key: str) -> Any:
    return view.datasets.purge(DATASETS[key])


@spec("activity.for_dataset", DS, write=False)
@checks(_ds_read)
def _(view: Catalog, w: World, key: str) -> Any:
    return view.activities.for_dataset(DATASETS[key])


# resources -----------------------------------------------------------------------------------


def _res(w: World, key: str, index: int = 0) -> str:
    return str(w.dataset(key).resources[index].id)


@spec("resource.get", DS, write=False)
@checks(_ds_read)
def _(view: Catalog, w: World, key: str) -> Any:
    return view.resources.get(_res(w, key))


def _resource_count(n: int) -> Callable[[World, str, Any, Actor], None]:
    def effect(w: World, key: str, result: Any, a: Actor) -> None:
        assert len(w.dataset(key).resources) == n

    return effect


@spec("resource.add", DS, (Action.DATASET_UPDATE,), effect=_resource_count(3))
@checks(_ds(Action.DATASET_UPDATE))
def _(view: Catalog, w: World, key: str) -> Any:
    return view.resources.add(DATASETS[key], ResourceInput(url="http://example.org/new"))


def _first_resource_named(name: str) -> Callable[[World, str, Any, Actor], None]:
    def effect(w: World, key: str, result: Any, a: Actor) -> None:
        assert w.dataset(key).resources[0].name == name

    return effect


@spec("resource.update", DS, (Action.DATASET_UPDATE,), effect=_first_resource_named("new"))
@checks(_ds(Action.DATASET_UPDATE))
def _(view: Catalog, w: World, key: str) -> Any:
    return view.resources.update(_res(w, key), ResourceInput(url="http://x/", name="new"))


@spec("resource.patch", DS, (Action.DATASET_UPDATE,), effect=_first_resource_named("patched"))
@checks(_ds(Action.DATASET_UPDATE))
def _(view: Catalog, w: World, key: str) -> Any:
    return view.resources.patch(_res(w, key), ResourcePatch(name="patched"))


@spec("resource.delete", DS, (Action.DATASET_UPDATE,), effect=_resource_count(1))
@checks(_ds(Action.DATASET_UPDATE))
def _(view: Catalog, w: World, key: str) -> Any:
    return view.resources.delete(_res(w, key))


def _reordered(w: World, key: str, result: Any, a: Actor) -> None:
    assert w.dataset(key).resources[0].name.startswith("two")


@spec("resource.reorder", DS, (Action.DATASET_UPDATE,), effect=_reordered)
@checks(_ds(Action.DATASET_UPDATE))
def _(view: Catalog, w: World, key: str) -> Any:
    return view.resources.reorder(DATASETS[key], [_res(w, key, 1), _res(w, key, 0)])


# creating datasets ---------------------------------------------------------------------------

OWNERS = ("org-a", "org-b", "org-gone", "unowned")


def _create_checks(w: World, a: Actor, owner: str) -> list[Check]:
    if owner == "unowned":
        return [act_site(w, a, Action.DATASET_CREATE_UNOWNED)]
    org = _group_obj(w, "organization", owner)
    return [
        ("valid", org.state is State.ACTIVE),
        ("act", w.policy.allows(a, Action.DATASET_CREATE, w.policy.role_in_group(a, org.id))),
    ]


def _created(w: World, owner: str, result: Any, a: Actor) -> None:
    assert w.catalog.datasets.get("new-dataset") == result


@spec("dataset.create", OWNERS, (Action.DATASET_CREATE, Action.DATASET_CREATE_UNOWNED),
      effect=_created)  # fmt: skip
@checks(_create_checks)
def _(view: Catalog, w: World, owner: str) -> Any:
    org = None if owner == "unowned" else owner
    return view.datasets.create(DatasetInput(name="new-dataset", owner_org=org))


def _draft_if_allowed(w: World, owner: str, result: Any, a: Actor) -> None:
    may = w.policy.allows(a, Action.DATASET_SET_STATE, w.policy.base_role(a))
    assert result.state is (State.DRAFT if may else State.ACTIVE)


@spec("dataset.create_draft", ("org-a",), (Action.DATASET_SET_STATE,), effect=_draft_if_allowed)
@checks(_create_checks)
def _(view: Catalog, w: World, owner: str) -> Any:
    return view.datasets.create(DatasetInput(name="new-draft", owner_org=owner, state=State.DRAFT))


# organizations and groups ----------------------------------------------------------------------

KIND_ACTIONS = {
    "organization": {
        "read": (Action.ORGANIZATION_READ, Action.ORGANIZATION_READ_DELETED),
        "update": Action.ORGANIZATION_UPDATE,
        "delete": Action.ORGANIZATION_DELETE,
        "purge": Action.ORGANIZATION_PURGE,
        "members": Action.ORGANIZATION_MANAGE_MEMBERS,
    },
    "group": {
        "read": (Action.GROUP_READ, Action.GROUP_READ_DELETED),
        "update": Action.GROUP_UPDATE,
        "delete": Action.GROUP_DELETE,
        "purge": Action.GROUP_PURGE,
        "members": Action.GROUP_MANAGE_MEMBERS,
    },
}
GROUP_TARGETS = {"organization": ("org-a", "org-gone"), "group": ("grp-a", "grp-gone")}


def _svc(view: Catalog, kind: str) -> Any:
    return view.organizations if kind == "organization" else view.groups


def _group_read(kind: str) -> Callable[[World, Actor, str], list[Check]]:
    return lambda w, a, name: [read_group(w, a, kind, name)]


def _group_act(kind: str, what: str) -> Callable[[World, Actor, str], list[Check]]:
    action = KIND_ACTIONS[kind][what]
    return lambda w, a, name: [read_group(w, a, kind, name), act_group(w, a, kind, name, action)]


def _empty_the_organization(w: World, name: str) -> None:
    if name.startswith("org"):
        for ds in w.catalog.datasets.list(
            organization=name, include_private=True, include_drafts=True, include_deleted=True
        ).items:
            w.catalog.datasets.purge(ds.id)


def _group_state(state: State | None) -> Callable[[World, str, Any, Actor], None]:
    def effect(w: World, name: str, result: Any, a: Actor) -> None:
        group = _group_obj(w, "", name)
        if state is None:
            assert group is None
        else:
            assert group is not None and group.state is state

    return effect


def _member_names(w: World, kind: str, name: str) -> list[str]:
    return [m.user.name for m in _svc(w.catalog, kind).members(name)]


def _register_group_specs(kind: str) -> None:
    targets = GROUP_TARGETS[kind]
    acts = KIND_ACTIONS[kind]

    @spec(f"{kind}.get", targets, acts["read"], write=False)
    @checks(_group_read(kind))
    def _(view: Catalog, w: World, name: str) -> Any:
        return _svc(view, kind).get(name)

    @spec(f"{kind}.members", targets, write=False)
    @checks(_group_read(kind))
    def _(view: Catalog, w: World, name: str) -> Any:
        return _svc(view, kind).members(name)

    @spec(f"{kind}.activities", targets, write=False)
    @checks(_group_read(kind))
    def _(view: Catalog, w: World, name: str) -> Any:
        stream = (
            view.activities.for_organization
            if kind == "organization"
            else (view.activities.for_group)
        )
        return stream(name)

    def titled(title: str) -> Callable[[World, str, Any, Actor], None]:
        def effect(w: World, name: str, result: Any, a: Actor) -> None:
            assert _group_obj(w, kind, name).title == title

        return effect

    @spec(f"{kind}.update", targets, (acts["update"],), effect=titled("T"))
    @checks(_group_act(kind, "update"))
    def _(view: Catalog, w: World, name: str) -> Any:
        return _svc(view, kind).update(name, GroupInput(name=name, title="T"))

    @spec(f"{kind}.patch", targets, (acts["update"],), effect=titled("P"))
    @checks(_group_act(kind, "update"))
    def _(view: Catalog, w: World, name: str) -> Any:
        return _svc(view, kind).patch(name, GroupPatch(title="P"))

    @spec(f"{kind}.delete", targets, (acts["delete"],), effect=_group_state(State.DELETED),
          prepare=_empty_the_organization)  # fmt: skip
    @checks(_group_act(kind, "delete"))
    def _(view: Catalog, w: World, name: str) -> Any:
        return _svc(view, kind).delete(name)

    @spec(f"{kind}.restore", targets, (acts["purge"],), effect=_group_state(State.ACTIVE))
    @checks(_group_act(kind, "purge"))  # restoring is for those who may purge
    def _(view: Catalog, w: World, name: str) -> Any:
        return _svc(view, kind).restore(name)

    @spec(f"{kind}.purge", targets, (acts["purge"],), effect=_group_state(None),
          prepare=_empty_the_organization)  # fmt: skip
    @checks(_group_act(kind, "purge"))
    def _(view: Catalog, w: World, name: str) -> Any:
        return _svc(view, kind).purge(name)

    def zed_is_member(w: World, name: str, result: Any, a: Actor) -> None:
        assert "zed" in _member_names(w, kind, name)

    @spec(f"{kind}.add_member", targets, (acts["members"],), effect=zed_is_member)
    @checks(_group_act(kind, "members"))
    def _(view: Catalog, w: World, name: str) -> Any:
        return _svc(view, kind).add_member(name, "zed", "member")

    def mia_is_gone(w: World, name: str, result: Any, a: Actor) -> None:
        assert "mia" not in _member_names(w, kind, name)

    @spec(f"{kind}.remove_member", targets, (acts["members"],), effect=mia_is_gone)
    @checks(_group_act(kind, "members"))
    def _(view: Catalog, w: World, name: str) -> Any:
        return _svc(view, kind).remove_member(name, "mia")


_register_group_specs("organization")
_register_group_specs("group")


def _still_owning(w: World, a: Actor, name: str) -> list[Check]:
    return [*_group_act("organization", "delete")(w, a, name), ("conflict", False)]


@spec("organization.delete_while_owning", ("org-a",), (Action.ORGANIZATION_DELETE,))
@checks(_still_owning)
def _(view: Catalog, w: World, name: str) -> Any:
    return view.organizations.delete(name)


def _link_checks(dataset_key: str | None) -> Callable[[World, Actor, str], list[Check]]:
    def make(w: World, a: Actor, target: str) -> list[Check]:
        group, key = ("grp-a", target) if dataset_key is None else (target, dataset_key)
        found = [
            read_group(w, a, "group", group),
            act_group(w, a, "group", group, Action.GROUP_MANAGE_DATASETS),
        ]
        if key == "linked":
            return found
        return [*found, read_dataset(w, a, key)]

    return make


def _in_group(w: World, target: str, result: Any, a: Actor) -> None:
    assert _group_obj(w, "group", "grp-a").id in result.groups


@spec("group.add_dataset", DS, (Action.GROUP_MANAGE_DATASETS,), effect=_in_group)
@checks(_link_checks(None))
def _(view: Catalog, w: World, key: str) -> Any:
    return view.groups.add_dataset("grp-a", DATASETS[key])


@spec("group.add_dataset_to", GROUP_TARGETS["group"], (Action.GROUP_MANAGE_DATASETS,))
@checks(_link_checks("public"))
def _(view: Catalog, w: World, name: str) -> Any:
    return view.groups.add_dataset(name, DATASETS["public"])


def _unlinked(w: World, name: str, result: Any, a: Actor) -> None:
    group_id = _group_obj(w, "group", name).id
    assert group_id not in w.catalog.datasets.get("ds-linked").groups


@spec("group.remove_dataset", GROUP_TARGETS["group"], (Action.GROUP_MANAGE_DATASETS,),
      effect=_unlinked)  # fmt: skip
@checks(_link_checks("linked"))
def _(view: Catalog, w: World, name: str) -> Any:
    return view.groups.remove_dataset(name, "ds-linked")


# users and tokens ----------------------------------------------------------------------------

USER_TARGETS = ("self", "other", "deleted")


def _target_user(actor_key: str, target: str) -> str:
    if target == "self":
        name = ACTORS[actor_key]
        assert name is not None
        return name
    return {"other": "zed", "deleted": "gone"}[target]


# user specs take the target *user name* (resolved per actor when the cells are generated)


def _user_checks(*actions: Action) -> Callable[[World, Actor, str], list[Check]]:
    def make(w: World, a: Actor, name: str) -> list[Check]:
        return [read_user(w, a, name), *(act_user(w, a, name, act) for act in actions)]

    return make


def _user_state(state: State | None) -> Callable[[World, str, Any, Actor], None]:
    def effect(w: World, name: str, result: Any, a: Actor) -> None:
        user = _user_obj(w, name)
        assert (user.state if user is not None else None) is state

    return effect


@spec("user.get", USER_TARGETS, (Action.USER_READ, Action.USER_READ_PRIVATE), write=False)
@checks(_user_checks())
def _(view: Catalog, w: World, name: str) -> Any:
    return view.users.get(name)


def _fullname(w: World, name: str, result: Any, a: Actor) -> None:
    assert _user_obj(w, name).fullname == "New Name"


@spec("user.update", USER_TARGETS, (Action.USER_UPDATE,), effect=_fullname)
@checks(_user_checks(Action.USER_UPDATE))
def _(view: Catalog, w: World, name: str) -> Any:
    return view.users.update(name, UserPatch(fullname="New Name"))


def _set_sysadmin_checks(w: World, a: Actor, name: str) -> list[Check]:
    found = _user_checks(Action.USER_UPDATE)(w, a, name)
    if _user_obj(w, name).sysadmin:  # no change asked
        return found
    return [*found, act_site(w, a, Action.USER_SET_SYSADMIN)]


def _is_sysadmin(w: World, name: str, result: Any, a: Actor) -> None:
    assert _user_obj(w, name).sysadmin is True


@spec("user.set_sysadmin", USER_TARGETS, (Action.USER_SET_SYSADMIN,), effect=_is_sysadmin)
@checks(_set_sysadmin_checks)
def _(view: Catalog, w: World, name: str) -> Any:
    return view.users.update(name, UserPatch(sysadmin=True))


@spec("user.delete", USER_TARGETS, (Action.USER_DELETE,), effect=_user_state(State.DELETED))
@checks(_user_checks(Action.USER_DELETE))
def _(view: Catalog, w: World, name: str) -> Any:
    return view.users.delete(name)


@spec("user.restore", USER_TARGETS, (Action.USER_DELETE,), effect=_user_state(State.ACTIVE))
@checks(_user_checks(Action.USER_DELETE))
def _(view: Catalog, w: World, name: str) -> Any:
    return view.users.restore(name)


@spec("user.purge", USER_TARGETS, (Action.USER_PURGE,), effect=_user_state(None))
@checks(_user_checks(Action.USER_PURGE))
def _(view: Catalog, w: World, name: str) -> Any:
    return view.users.purge(name)


@spec("activity.for_user", USER_TARGETS, write=False)
@checks(_user_checks())
def _(view: Catalog, w: World, name: str) -> Any:
    return view.activities.for_user(name)


TOKEN_TARGETS = ("self", "other")


def _token_created(w: World, name: str, result: Any, a: Actor) -> None:
    assert w.catalog.tokens.authenticate(result.secret).name == name


@spec("token.create", TOKEN_TARGETS, (Action.TOKEN_MANAGE,), effect=_token_created)
@checks(_user_checks(Action.TOKEN_MANAGE))
def _(view: Catalog, w: World, name: str) -> Any:
    return view.tokens.create(name, "key")


@spec("token.list", TOKEN_TARGETS, (Action.TOKEN_MANAGE,), write=False)
@checks(_user_checks(Action.TOKEN_MANAGE))
def _(view: Catalog, w: World, name: str) -> Any:
    return view.tokens.list(name)


def _make_token(w: World, name: str) -> None:
    w.token_ids[name] = w.catalog.tokens.create(name, "existing").token.id


def _revoked(w: World, name: str, result: Any, a: Actor) -> None:
    assert w.catalog.tokens.list(name) == []


@spec("token.revoke", TOKEN_TARGETS, (Action.TOKEN_MANAGE,), effect=_revoked,
      prepare=_make_token)  # fmt: skip
@checks(_user_checks(Action.TOKEN_MANAGE))
def _(view: Catalog, w: World, name: str) -> Any:
    return view.tokens.revoke(w.token_ids[name])


# the site --------------------------------------------------------------------------------------


def _site(action: Action) -> Callable[[World, Actor, str], list[Check]]:
    return lambda w, a, target: [act_site(w, a, action)]


@spec("organization.create", ("site",), (Action.ORGANIZATION_CREATE,))
@checks(_site(Action.ORGANIZATION_CREATE))
def _(view: Catalog, w: World, target: str) -> Any:
    return view.organizations.create(GroupInput(name="new-org"))


@spec("group.create", ("site",), (Action.GROUP_CREATE,))
@checks(_site(Action.GROUP_CREATE))
def _(view: Catalog, w: World, target: str) -> Any:
    return view.groups.create(GroupInput(name="new-group"))


@spec("user.create", ("site",), (Action.USER_CREATE,))
@checks(_site(Action.USER_CREATE))
def _(view: Catalog, w: World, target: str) -> Any:
    return view.users.create(UserInput(name="newbie", email="n@example.org", password=PASSWORD))


@spec("vocabulary.create", ("site",), (Action.VOCABULARY_MANAGE,))
@checks(_site(Action.VOCABULARY_MANAGE))
def _(view: Catalog, w: World, target: str) -> Any:
    return view.tags.create_vocabulary("genre", ["rock", "jazz"])


@spec("activity.recent", ("site",), (Action.ACTIVITY_READ_ALL,), write=False)
@checks(_site(Action.ACTIVITY_READ_ALL))
def _(view: Catalog, w: World, target: str) -> Any:
    return view.activities.recent()


@spec("search.stats", ("site",), (Action.SEARCH_ADMIN,), write=False)
@checks(_site(Action.SEARCH_ADMIN))
def _(view: Catalog, w: World, target: str) -> Any:
    return view.search.stats()


@spec("jobs.stats", ("site",), (Action.JOBS_ADMIN,), write=False)
@checks(_site(Action.JOBS_ADMIN))
def _(view: Catalog, w: World, target: str) -> Any:
    return view.jobs.stats()


# -- the cells ---------------------------------------------------------------------------------


@attrs.frozen
class Cell:
    spec: Spec
    actor: str
    target: str  # the spec's target; for user specs the resolved user name

    @property
    def id(self) -> str:
        return f"{self.spec.name}-{self.target}-{self.actor}"


def _cells() -> list[Cell]:
    cells = []
    for s in SPECS:
        for actor in ACTORS:
            for target in s.targets:
                if s.targets in (USER_TARGETS, TOKEN_TARGETS):
                    if target == "self" and ACTORS[actor] is None:
                        continue  # anonymous has no account
                    target = _target_user(actor, target)
                cells.append(Cell(spec=s, actor=actor, target=target))
    return cells


CELLS = _cells()


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where built worlds are kept for copying (file-based backends)."""
    return tmp_path_factory.mktemp("worlds")


@pytest.fixture
def world(
    backend: str, make_catalog: Callable[..., Catalog], templates: Path, tmp_path: Path
) -> World:
    """A freshly built world. Memory worlds are built from scratch (fast); SQLite worlds
    are copies of one built world (building one takes a hundred writes)."""
    if backend == "memory":
        return build_world(make_catalog())
    template = templates / f"{backend}.db"
    if not template.exists():
        built = make_catalog(database=template)
        build_world(built)
        built.close()
    copy = tmp_path / "world.db"
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{template}{suffix}").exists():
            shutil.copyfile(f"{template}{suffix}", f"{copy}{suffix}")
    catalog = make_catalog(database=copy, initialize=False)  # the schema is current
    # later than everything in the template, so new changes sort after the old ones
    make_deterministic(catalog, clock=SteppingClock(start=LATER), new_id=catalog._ctx.new_id)
    return World(catalog=catalog, policy=catalog._ctx.policy)


@pytest.mark.parametrize("cell", CELLS, ids=[c.id for c in CELLS])
def test_cell(world: World, cell: Cell) -> None:
    s = cell.spec
    if s.prepare is not None:
        s.prepare(world, cell.target)
    actor = world.actor(cell.actor)
    expected = expected_outcome(s.checks(world, actor, cell.target))
    view = world.view(cell.actor)
    before = stored_contents(world.catalog) if s.write and expected is not None else None

    if expected is None:
        result = s.run(view, world, cell.target)
        if s.effect is not None:
            s.effect(world, cell.target, result, actor)
    else:
        with pytest.raises(OpenCatalogError) as exc:
            s.run(view, world, cell.target)
        assert type(exc.value) is expected, (
            f"{cell.id}: expected {expected.__name__}, got {type(exc.value).__name__}: {exc.value}"
        )
        if before is not None:
            assert stored_contents(world.catalog) == before, (
                f"{cell.id}: a refused write changed data"
            )


# -- the matrix covers the table, and the table says what CKAN says -------------------------


def test_every_action_of_the_policy_is_exercised():
    exercised = set().union(*(s.actions for s in SPECS))
    assert set(POLICY) <= exercised, sorted(set(POLICY) - exercised)


def test_the_matrix_is_not_vacuous(world):
    """Allowed, hidden and forbidden cells all occur, for readers and for writers."""
    outcomes: dict[str, set[Any]] = {}
    for cell in CELLS:
        if cell.spec.prepare is None:
            actor = world.actor(cell.actor)
            got = expected_outcome(cell.spec.checks(world, actor, cell.target))
            outcomes.setdefault(cell.spec.name, set()).add(got)
    assert len(CELLS) > 1000
    everything = {None, NotFound, NotAuthorized}
    for name in ("dataset.update", "dataset.purge", "resource.reorder", "group.add_dataset",
                 "organization.add_member", "user.update", "user.delete"):  # fmt: skip
        assert outcomes[name] == everything, name
    assert outcomes["dataset.get"] == {None, NotFound}
    assert outcomes["dataset.create"] == {None, NotAuthorized, ValidationFailed}


#: (spec, target, actor) -> expected outcome, written by hand from ckan.md section 4 and
#: reliability.md 5.A (member reads private, editor writes datasets, admin manages members
#: and purges datasets, org/group purge and restore are for sysadmins).
PINNED: dict[tuple[str, str, str], type[Exception] | None] = {
    ("dataset.get", "public", "anonymous"): None,
    ("dataset.get", "private", "anonymous"): NotFound,
    ("dataset.get", "private", "user"): NotFound,
    ("dataset.get", "private", "other_admin"): NotFound,
    ("dataset.get", "private", "member"): None,
    ("dataset.get", "draft", "member"): None,
    ("dataset.get", "deleted", "anonymous"): NotFound,
    ("dataset.get", "deleted", "member"): None,
    ("dataset.update", "public", "anonymous"): NotAuthorized,
    ("dataset.update", "public", "user"): NotAuthorized,
    ("dataset.update", "public", "member"): NotAuthorized,
    ("dataset.update", "public", "editor"): None,
    ("dataset.update", "private", "other_admin"): NotFound,
    ("dataset.delete", "public", "editor"): None,
    ("dataset.purge", "public", "editor"): NotAuthorized,
    ("dataset.purge", "public", "admin"): None,
    ("dataset.purge", "public", "other_admin"): NotAuthorized,
    ("resource.add", "private", "member"): NotAuthorized,
    ("resource.add", "private", "editor"): None,
    ("resource.get", "private", "other_member"): NotFound,
    ("dataset.create", "org-a", "editor"): None,
    ("dataset.create", "org-a", "member"): NotAuthorized,
    ("dataset.create", "org-a", "other_admin"): NotAuthorized,
    ("dataset.create", "unowned", "user"): NotAuthorized,
    ("dataset.create", "unowned", "sysadmin"): None,
    ("organization.update", "org-a", "editor"): NotAuthorized,
    ("organization.update", "org-a", "admin"): None,
    ("organization.add_member", "org-a", "admin"): None,
    ("organization.add_member", "org-a", "editor"): NotAuthorized,
    ("organization.purge", "org-a", "admin"): NotAuthorized,
    ("organization.restore", "org-gone", "admin"): NotFound,  # members left with the delete
    ("organization.restore", "org-gone", "sysadmin"): None,
    ("organization.get", "org-gone", "anonymous"): NotFound,
    ("organization.create", "site", "user"): NotAuthorized,
    ("organization.delete_while_owning", "org-a", "admin"): Conflict,
    ("group.create", "site", "user"): None,
    ("group.create", "site", "anonymous"): NotAuthorized,
    ("group.add_dataset", "public", "member"): None,  # any group member
    ("group.add_dataset", "private", "other_admin"): NotFound,  # in grp-a, not in org-a
    ("group.add_dataset", "public", "other_admin"): None,
    ("group.add_dataset", "private", "other_member"): NotAuthorized,  # no role in grp-a
    ("group.add_dataset", "private", "user"): NotAuthorized,
    ("user.update", "zed", "user"): NotAuthorized,
    ("user.update", "uma", "user"): None,
    ("user.delete", "uma", "user"): NotAuthorized,
    ("user.get", "gone", "user"): NotFound,
    ("user.get", "gone", "sysadmin"): None,
    ("user.set_sysadmin", "uma", "user"): NotAuthorized,
    ("token.create", "zed", "admin"): NotAuthorized,
    ("token.list", "uma", "user"): None,
    ("token.revoke", "zed", "anonymous"): NotAuthorized,
    ("vocabulary.create", "site", "admin"): NotAuthorized,
    ("activity.recent", "site", "admin"): NotAuthorized,
    ("activity.recent", "site", "sysadmin"): None,
}


@pytest.mark.parametrize(("key", "outcome"), list(PINNED.items()), ids=lambda v: str(v))
def test_pinned_cells_match_the_policy(world, key, outcome):
    _, target, actor = key
    [cell] = [c for c in CELLS if (c.spec.name, c.target, c.actor) == key]
    if cell.spec.prepare is not None:
        cell.spec.prepare(world, target)
    got = expected_outcome(cell.spec.checks(world, world.actor(actor), target))
    assert got is outcome


def test_the_policy_roles_are_ordered_as_documented():
    assert list(Role) == sorted(Role)
    assert POLICY[Action.DATASET_READ_PRIVATE] is Role.MEMBER
    assert POLICY[Action.DATASET_UPDATE] is Role.EDITOR
    assert POLICY[Action.ORGANIZATION_MANAGE_MEMBERS] is Role.ADMIN


# -- the canary crawl --------------------------------------------------------------------------

OUTSIDERS = ("anonymous", "user", "other_member", "other_admin")


def _crawl(view: Catalog, w: World) -> list[Any]:
    """Every read path an outsider can take, with everything it returns."""
    everything = {"include_private": True, "include_drafts": True, "include_deleted": True}
    seen: list[Any] = [
        view.datasets.list(**everything),
        view.datasets.list(**everything, organization="org-a"),
        view.datasets.list(**everything, group="grp-a"),
        view.datasets.list(**everything, tag=f"{CANARY}tag"),
        view.datasets.list(**everything, order="-metadata_modified"),
        view.datasets.count(),
        view.tags.counts(),
        view.tags.counts(query=CANARY),
        view.tags.names(),
        view.organizations.dataset_counts(),
        view.groups.dataset_counts(),
        view.organizations.list(),
        view.groups.list(),
        view.organizations.members("org-a"),
        view.activities.for_organization("org-a"),
        view.activities.for_group("grp-a"),
        view.activities.for_dataset("ds-public"),
    ]
    for user in ("root", "ada", "ed", "mia", "uma"):
        seen.append(view.activities.for_user(user))
    all_ids = [
        ds.id
        for ds in w.catalog.datasets.list(
            include_private=True, include_drafts=True, include_deleted=True
        ).items
    ]
    seen.append(view.datasets.get_many(all_ids))
    seen.append(
        view.search.datasets(
            CANARY, facets=["tags", "organization", "res_format", "groups"], **everything
        )
    )
    seen.append(view.search.datasets("", facets=["tags", "res_format"], **everything))
    seen.append(view.search.suggest_datasets("ds-"))
    seen.append(view.search.formats())
    return seen


@pytest.mark.parametrize("actor", OUTSIDERS)
def test_outsiders_find_no_trace_of_hidden_datasets(world, actor):
    world.catalog.search.reindex()  # a copied world's index starts empty
    insider = world.view("member").search.datasets(CANARY, include_private=True)
    assert insider.count >= 1  # so the search below can find the canary if it leaks
    view = world.view(actor)
    found = repr(_crawl(view, world))
    assert CANARY not in found
    assert CANARY.upper() not in found.upper()
    hidden_ids = [world.dataset(k).id for k in DATASETS if k != "public"]
    for hidden in hidden_ids:
        assert hidden not in found
    # counts are computed over what the actor may see
    assert view.datasets.count() == 2  # ds-public and ds-linked
    assert view.datasets.list(include_private=True, include_drafts=True).total == 2
    assert dict(view.tags.counts()) == {"open": 1}


@pytest.mark.parametrize("actor", OUTSIDERS)
@pytest.mark.parametrize("key", [k for k in DATASETS if k != "public"])
def test_hidden_datasets_are_not_found_never_forbidden(world, actor, key):
    """Every way in gives NotFound with the same message as for a dataset that does not
    exist (AZ-03)."""
    view = world.view(actor)
    ds = world.dataset(key)
    missing_ds = "00000000-0000-4000-8000-00000000dead"

    def message(call: Callable[[], Any]) -> str:
        with pytest.raises(NotFound) as exc:
            call()
        return str(exc.value)

    absent = message(lambda: view.datasets.get(missing_ds))
    assert message(lambda: view.datasets.get(ds.id)) == absent
    assert message(lambda: view.datasets.get(ds.name)) == absent
    assert message(lambda: view.activities.for_dataset(ds.id)) == absent
    absent_resource = message(lambda: view.resources.get(missing_ds))
    for res in ds.resources:
        assert message(lambda r=res: view.resources.get(r.id)) == absent_resource
        assert message(lambda r=res: view.resources.delete(r.id)) == absent_resource
    for call in (
        lambda: view.datasets.update(ds.id, DatasetInput(name=ds.name, owner_org="org-a")),
        lambda: view.datasets.patch(ds.id, DatasetPatch(title="x")),
        lambda: view.datasets.delete(ds.id),
        lambda: view.datasets.purge(ds.id),
        lambda: view.resources.add(ds.id, ResourceInput(url="x")),
        lambda: view.resources.reorder(ds.id, [r.id for r in ds.resources]),
    ):
        assert message(call) == absent


def test_insiders_see_the_hidden_datasets(world):
    for actor in ("member", "editor", "admin", "sysadmin"):
        view = world.view(actor)
        names = {
            d.name
            for d in view.datasets.list(
                include_private=True, include_drafts=True, include_deleted=True
            ).items
        }
        assert names == {*DATASETS.values(), "ds-linked"}
        assert CANARY in repr(view.datasets.get("ds-private"))
        assert dict(view.tags.counts())[f"{CANARY}tag"] == 1  # active private only


def test_tags_on_vocabularies_do_not_leak_either(world):
    world.catalog.tags.create_vocabulary("secret-words", [f"{CANARY}voc"])
    world.catalog.datasets.patch(
        "ds-private", DatasetPatch(tags=[Tag(name=f"{CANARY}voc", vocabulary_id="secret-words")])
    )
    for actor in OUTSIDERS:
        assert world.view(actor).tags.counts(vocabulary="secret-words") == []
    assert world.view("member").tags.counts(vocabulary="secret-words") == [(f"{CANARY}voc", 1)]
