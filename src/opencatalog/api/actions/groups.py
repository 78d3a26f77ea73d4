"""Organization, group and membership actions: ``group_list``/``organization_list``,
``*_show``, ``group_package_show``, ``*_create``/``*_update``/``*_patch``/``*_delete``/
``*_purge``, ``member_create``/``member_delete``/``member_list``,
``group_member_*``/``organization_member_*``, ``organization_list_for_user``,
``group_list_authz``, ``member_roles_list`` and ``*_autocomplete``.

Organizations and groups go through their service (``cat.organizations`` or ``cat.groups``),
which checks the caller's rights; the shapes come from :func:`group_to_dict` and
:func:`group_input_from_dict`. The catalog has no group hierarchy, group tags or followers, so
``groups`` and ``tags`` are always empty and ``num_followers`` is 0.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from opencatalog.domain.commands import GroupPatch
from opencatalog.domain.model import Capacity, Dataset, Group, Membership
from opencatalog.errors import NotFound, ValidationFailed
from opencatalog.serialization import group_input_from_dict, group_to_dict, user_to_dict
from opencatalog.services.catalog import Catalog
from opencatalog.services.groups import GroupService

from ._registry import ActionFunction, action
from .datasets import ROWS_MAX, package_dicts
from .params import Params

#: CKAN's ``ckan.group_and_organization_list_max``: names group_list returns at most.
LIST_MAX = 1000
#: CKAN's ``ckan.group_and_organization_list_all_fields_max``: dicts it returns at most.
LIST_ALL_FIELDS_MAX = 25
#: CKAN's ``ckan.default_group_sort``.
DEFAULT_SORT = "title asc"
_SORT_FIELDS = {
    "name": "name",
    "title": "title",
    "packages": "package_count",
    "package_count": "package_count",
}

#: member_roles_list: the roles per group type (groups have no editors in CKAN's list).
_ROLES = {
    "organization": (Capacity.ADMIN, Capacity.EDITOR, Capacity.MEMBER),
    "group": (Capacity.ADMIN, Capacity.MEMBER),
}

#: organization_list_for_user: CKAN permission to the capacities that hold it.
_PERMISSION_ROLES = {
    "read": frozenset(Capacity),
    "manage_group": frozenset(Capacity),
    "create_dataset": frozenset({Capacity.ADMIN, Capacity.EDITOR}),
    "update_dataset": frozenset({Capacity.ADMIN, Capacity.EDITOR}),
    "delete_dataset": frozenset({Capacity.ADMIN, Capacity.EDITOR}),
    "admin": frozenset({Capacity.ADMIN}),
    "membership": frozenset({Capacity.ADMIN}),
}


def _service(cat: Catalog, organization: bool) -> GroupService:
    return cat.organizations if organization else cat.groups


def _member_dicts(service: GroupService, group: Group) -> list[dict[str, Any]]:
    out = []
    for member in service.members(group.id):
        row = user_to_dict(member.user, private=False)
        row["capacity"] = member.capacity.value
        out.append(row)
    return out


def _datasets_in(cat: Catalog, group: Group, **options: Any) -> tuple[Dataset, ...]:
    """The active datasets of an organization or group the caller may read (``options`` go
    to the dataset service's ``list``)."""
    org = group.is_organization
    page = cat.datasets.list(
        organization=group.id if org else None, group=None if org else group.id, **options
    )
    return page.items


def _datasets(cat: Catalog, group: Group, *, limit: int | None) -> list[dict[str, Any]]:
    """The group's active datasets, newest first, as package_search would find them: an
    organization's private ones for those who may read them, a group's public ones only."""
    found = _datasets_in(
        cat, group, include_private=group.is_organization, order="-metadata_modified", limit=limit
    )
    return package_dicts(cat, found)


def _group_dict(
    cat: Catalog,
    group: Group,
    *,
    counts: dict[str, int] | None,
    extras: bool,
    users: bool,
    groups: bool,
    tags: bool,
    datasets: bool = False,
) -> dict[str, Any]:
    """group_show's dict; ``counts`` (from dataset_counts) adds ``package_count``."""
    out = group_to_dict(group)
    out["approval_status"] = "approved"
    out["image_display_url"] = group.image_url or ""
    out["num_followers"] = 0
    if not extras:
        del out["extras"]
    if counts is not None:
        out["package_count"] = counts.get(group.id, 0)
    if datasets:
        out["packages"] = _datasets(cat, group, limit=ROWS_MAX)
    if users:
        out["users"] = _member_dicts(_service(cat, group.is_organization), group)
    if groups:
        out["groups"] = []
    if tags:
        out["tags"] = []
    return out


def _show(cat: Catalog, params: Params, organization: bool) -> dict[str, Any]:
    service = _service(cat, organization)
    group = service.get(params.require("id"))
    datasets = params.boolean("include_datasets")
    count = params.boolean("include_dataset_count", True)
    return _group_dict(
        cat,
        group,
        counts=service.dataset_counts() if datasets or count else None,
        extras=params.boolean("include_extras", True),
        users=params.boolean("include_users", True),
        groups=params.boolean("include_groups", True),
        tags=params.boolean("include_tags", True),
        datasets=datasets,
    )


def _sort_key(sort: str) -> tuple[str, bool]:
    """CKAN's group sort: one field of name, title or package_count (``packages``) with an
    optional direction; ``packages`` alone sorts descending."""
    text = sort.strip()
    if text in ("packages", "package_count"):
        text = "package_count desc"
    parts = text.split()
    field = _SORT_FIELDS.get(parts[0]) if parts else None
    if field is None or len(parts) > 2 or (len(parts) == 2 and parts[1] not in ("asc", "desc")):
        raise ValidationFailed({"sort": [f"Cannot sort by field `{text}`"]})
    return field, len(parts) == 2 and parts[1] == "desc"


def _list(cat: Catalog, params: Params, organization: bool) -> list[Any]:
    service = _service(cat, organization)
    sort = params.string("sort") or params.string("order_by") or DEFAULT_SORT
    field, descending = _sort_key(sort)
    all_fields = params.boolean("all_fields")
    cap = LIST_ALL_FIELDS_MAX if all_fields else LIST_MAX
    limit = params.integer("limit", cap, minimum=0, maximum=cap) or cap
    offset = params.integer("offset", 0, minimum=0)
    wanted = set(params.string_list("organizations" if organization else "groups"))
    group_type = params.string("type") or ("organization" if organization else "group")
    q = (params.string("q") or "").lower()
    counts = service.dataset_counts()

    def matches(group: Group) -> bool:
        if group.type != group_type or (wanted and group.name not in wanted):
            return False
        texts = (group.name, group.title or "", group.description or "")
        return not q or any(q in text.lower() for text in texts)

    found = [g for g in service.list().items if matches(g)]
    keys: dict[str, Callable[[Group], Any]] = {
        "name": lambda g: g.name,
        "title": lambda g: (g.title or "", g.name),
        "package_count": lambda g: (counts.get(g.id, 0), g.name),
    }
    found.sort(key=keys[field], reverse=descending)
    page = found[offset : offset + limit]
    if not all_fields:
        return [g.name for g in page]
    return [
        _group_dict(
            cat,
            g,
            counts=counts if params.boolean("include_dataset_count", True) else None,
            extras=params.boolean("include_extras"),
            users=params.boolean("include_users"),
            groups=params.boolean("include_groups"),
            tags=params.boolean("include_tags"),
        )
        for g in page
    ]


def _create(cat: Catalog, params: Params, organization: bool) -> dict[str, Any]:
    service = _service(cat, organization)
    group = service.create(group_input_from_dict(params.mapping()))
    return _group_dict(
        cat,
        group,
        counts=service.dataset_counts(),
        extras=True,
        users=True,
        groups=True,
        tags=True,
    )


def _update(cat: Catalog, params: Params, organization: bool) -> dict[str, Any]:
    service = _service(cat, organization)
    ref = params.require("id")
    group = service.update(ref, group_input_from_dict(params.mapping()))
    return _show(cat, Params({"id": group.id}), organization)


_PATCH_FIELDS = ("name", "title", "description", "image_url", "extras")


def _patch(cat: Catalog, params: Params, organization: bool) -> dict[str, Any]:
    service = _service(cat, organization)
    current = service.get(params.require("id"))
    # the given keys over the current dict, structured as group_update would read them
    merged = group_input_from_dict({**group_to_dict(current), **params.mapping()})
    changes = GroupPatch(**{key: getattr(merged, key) for key in _PATCH_FIELDS if key in params})
    group = service.patch(current.id, changes)
    return _show(cat, Params({"id": group.id}), organization)


def _membership_dict(membership: Membership) -> dict[str, Any]:
    return {
        "group_id": membership.group_id,
        "table_name": "user",
        "table_id": membership.user_id,
        "capacity": membership.capacity.value,
        "state": "active",
    }


def _member_create(cat: Catalog, params: Params, organization: bool) -> dict[str, Any]:
    ref = params.require("id")
    username = params.require("username")
    role = params.require("role")
    service = _service(cat, organization)
    try:
        service.get(ref)
    except NotFound:
        raise ValidationFailed({"id": ["That group name or ID does not exist."]}) from None
    return _membership_dict(service.add_member(ref, username, role))


def _member_delete(cat: Catalog, params: Params, organization: bool) -> None:
    ref = params.require("id")
    _service(cat, organization).remove_member(ref, params.require("username"))


def _autocomplete(cat: Catalog, params: Params, organization: bool) -> list[dict[str, Any]]:
    q = params.require("q").lower()
    limit = params.integer("limit", 20, minimum=1, maximum=LIST_MAX)
    found = [
        g
        for g in _service(cat, organization).list().items
        if q in g.name.lower() or q in (g.title or "").lower()
    ]
    return [{"id": g.id, "name": g.name, "title": g.title} for g in found[:limit]]


def _either(cat: Catalog, ref: str) -> Group:
    """A group or, failing that, an organization, by id or name."""
    try:
        return cat.groups.get(ref)
    except NotFound:
        return cat.organizations.get(ref)


# -- the actions, in pairs -------------------------------------------------------------------


def _pair(
    name: str, function: Callable[[Catalog, Params, bool], Any], doc: str, *, get: bool = False
) -> None:
    """Register ``group_<name>`` and ``organization_<name>`` with ``doc`` (``{kind}`` filled
    in with group or organization)."""
    for organization, kind in ((False, "group"), (True, "organization")):

        def run(cat: Catalog, params: Params, organization: bool = organization) -> Any:
            return function(cat, params, organization)

        run.__name__ = f"{kind}_{name}"
        run.__doc__ = doc.format(kind=kind, kinds=f"{kind}s")
        registered: ActionFunction = run
        action(f"{kind}_{name}", get=get)(registered)


_pair(
    "list",
    _list,
    """Names of the active {kinds}, sorted by ``sort`` (``name``, ``title`` or
    ``package_count``/``packages``, with ``asc``/``desc``; default ``title asc``; the deprecated
    ``order_by`` also works). ``limit`` (at most 1000 names, or 25 dicts) and ``offset`` page
    them; ``{kinds}`` (names) and ``q`` (a substring of name, title or description) filter them;
    ``type`` chooses the type (default ``{kind}``). With ``all_fields`` the result is
    {kind}_show dicts with ``package_count`` (``include_dataset_count``, default true) and,
    when asked, ``extras``, ``users``, ``groups`` and ``tags`` (``include_*``, default false).""",
    get=True,
)
_pair(
    "show",
    _show,
    """The {kind} ``id`` (id or name) with ``package_count`` (``include_dataset_count``, default
    true), ``extras`` (``include_extras``, default true), ``users`` with their ``capacity``
    (``include_users``, default true), ``groups`` and ``tags`` (always empty here) and, with
    ``include_datasets`` (default false), ``packages``: its first 1000 active datasets as
    package_show dicts, newest first (an organization's private ones for its members; a
    group's public ones only, as in CKAN). A deleted {kind} is 404 for outsiders.""",
    get=True,
)
_pair(
    "create",
    _create,
    """Create a {kind}: ``name`` (required), ``title``, ``description``, ``image_url``,
    ``type``, ``extras`` and, for sysadmins, ``id``; the caller becomes its admin. Returns the
    {kind}_show dict. Not taken here: ``packages``, ``users`` and ``groups`` (add members and
    datasets afterwards) and ``state``. Groups: any logged-in user; organizations: sysadmins.""",
)
_pair(
    "update",
    _update,
    """Replace the {kind} ``id`` with the given fields (``name`` required, as in
    {kind}_create; omitted fields are cleared). Admins of the {kind}. Returns the {kind}_show
    dict. ``packages``, ``users`` and ``groups`` are not taken: members and datasets are
    kept.""",
)
_pair(
    "patch",
    _patch,
    """Change only the given fields (``name``, ``title``, ``description``, ``image_url``,
    ``extras``) of the {kind} ``id``. Admins of the {kind}. Returns the {kind}_show dict.""",
)
_pair(
    "delete",
    lambda cat, params, org: _service(cat, org).delete(params.require("id")),
    """Delete the {kind} ``id`` (its state becomes deleted; its memberships go, and a group's
    datasets leave it). Admins of the {kind}. An organization that still owns datasets that
    are not deleted cannot be deleted (409). Returns null.""",
)
_pair(
    "purge",
    lambda cat, params, org: _service(cat, org).purge(params.require("id")),
    """Remove the {kind} ``id`` for good (sysadmins). An organization that still owns datasets
    that are not deleted cannot be purged (409). Returns null.""",
)
_pair(
    "member_create",
    _member_create,
    """Give the user ``username`` (id or name) the ``role`` admin, editor or member in the
    {kind} ``id``, or change it. Admins of the {kind}; an admin cannot demote themselves.
    Returns the membership: ``group_id``, ``table_name`` ("user"), ``table_id``, ``capacity``,
    ``state``.""",
)
_pair(
    "member_delete",
    _member_delete,
    """Take the user ``username`` out of the {kind} ``id``. Admins of the {kind}. Returns
    null.""",
)
_pair(
    "autocomplete",
    _autocomplete,
    """Active {kinds} whose name or title contains ``q`` (case-insensitive), by name, at most
    ``limit`` (default 20): ``id``, ``name`` and ``title`` each.""",
    get=True,
)


@action("group_package_show", get=True)
def group_package_show(cat: Catalog, params: Params) -> list[dict[str, Any]]:
    """The active datasets of the group ``id`` as package_show dicts, newest first, at most
    ``limit`` (default 10, at most 1000, as package_search). Private datasets are left out,
    as CKAN's search for the group leaves them out; for an organization the catalog lists its
    datasets (CKAN finds none)."""
    ref = params.require("id")
    limit = params.integer("limit", 10, minimum=0, maximum=ROWS_MAX) or 10
    group = _either(cat, ref)
    return package_dicts(cat, _datasets_in(cat, group, order="-metadata_modified", limit=limit))


_OBJECT_TYPES = ("user", "package")


def _object_type(params: Params) -> str:
    object_type = params.require("object_type")
    if object_type not in _OBJECT_TYPES:
        raise ValidationFailed({"object_type": ["Must be user or package"]})
    return object_type


@action("member_list", get=True)
def member_list(cat: Catalog, params: Params) -> list[list[str]]:
    """The members of the group or organization ``id``: ``[id, type, capacity]`` triples,
    users (capacity admin/editor/member) then datasets (capacity ``public`` in a group,
    ``organization`` in an organization; only those the caller may read). ``object_type``
    (user or package) and ``capacity`` filter them."""
    group = _either(cat, params.require("id"))
    object_type = params.string("object_type")
    if object_type and object_type not in _OBJECT_TYPES:
        raise ValidationFailed({"object_type": ["Must be user or package"]})
    capacity = params.string("capacity")
    rows: list[list[str]] = []
    if object_type in (None, "", "user"):
        service = _service(cat, group.is_organization)
        rows += [[m.user.id, "user", m.capacity.value] for m in service.members(group.id)]
    if object_type in (None, "", "package"):
        link = "organization" if group.is_organization else "public"
        rows += [[ds.id, "package", link] for ds in _datasets_in(cat, group, include_private=True)]
    return [row for row in rows if not capacity or row[2] == capacity]


@action("member_create")
def member_create(cat: Catalog, params: Params) -> dict[str, Any]:
    """Make ``object`` (a user or dataset, id or name; ``object_type`` user or package) a
    member of the group or organization ``id`` with ``capacity`` (users: admin, editor or
    member; datasets: ignored). Users need the admins of the group; datasets join groups by
    any member of the group, and join organizations only through their ``owner_org`` (409
    here). Returns the membership: ``group_id``, ``table_name``, ``table_id``, ``capacity``,
    ``state``."""
    ref = params.require("id")
    obj = params.require("object")
    object_type = _object_type(params)
    capacity = params.require("capacity")
    group = _either(cat, ref)
    service = _service(cat, group.is_organization)
    if object_type == "user":
        return _membership_dict(service.add_member(group.id, obj, capacity))
    dataset = service.add_dataset(group.id, obj)
    return {
        "group_id": group.id,
        "table_name": "package",
        "table_id": dataset.id,
        "capacity": "public",
        "state": "active",
    }


@action("member_delete")
def member_delete(cat: Catalog, params: Params) -> None:
    """Take ``object`` (a user or dataset, id or name; ``object_type`` user or package) out of
    the group or organization ``id``. Rights as for member_create. Returns null."""
    ref = params.require("id")
    obj = params.require("object")
    object_type = _object_type(params)
    group = _either(cat, ref)
    service = _service(cat, group.is_organization)
    if object_type == "user":
        service.remove_member(group.id, obj)
    else:
        service.remove_dataset(group.id, obj)


def _capacity_dicts(
    cat: Catalog, rows: Sequence[tuple[Group, Capacity]], *, counts: dict[str, int] | None
) -> list[dict[str, Any]]:
    out = []
    for group, capacity in rows:
        row = _group_dict(
            cat, group, counts=counts, extras=False, users=False, groups=False, tags=False
        )
        row["capacity"] = capacity.value
        out.append(row)
    return out


@action("organization_list_for_user", get=True)
def organization_list_for_user(cat: Catalog, params: Params) -> list[dict[str, Any]]:
    """The active organizations in which the user ``id`` (id or name; default the caller)
    holds ``permission`` (default ``manage_group``, which every member holds; ``read``,
    ``create_dataset``, ``update_dataset``, ``delete_dataset``, ``admin``, ``membership``):
    organization dicts with the user's ``capacity`` (sysadmins: admin of every one) and, with
    ``include_dataset_count``, ``package_count``. Anonymous callers get []."""
    permission = params.string("permission") or "manage_group"
    roles = _PERMISSION_ROLES.get(permission, frozenset())
    held = cat.organizations.for_user(params.string("id") or None)
    counts = cat.organizations.dataset_counts() if params.boolean("include_dataset_count") else None
    rows = [(h.group, h.capacity) for h in held if h.capacity in roles]
    return _capacity_dicts(cat, rows, counts=counts)


@action("group_list_authz", get=True)
def group_list_authz(cat: Catalog, params: Params) -> list[dict[str, Any]]:
    """The active groups the caller may put datasets into: those they are a member of in any
    capacity (sysadmins: every group, unless ``am_member``). Group dicts with
    ``package_count`` and the caller's ``capacity``. ``available_only`` is accepted; without
    a dataset in context it changes nothing, as in CKAN. Anonymous callers get []."""
    params.boolean("available_only")
    am_member = params.boolean("am_member")
    held = [(h.group, h.capacity) for h in cat.groups.for_user()]
    if am_member:
        mine = cat.actor.memberships
        held = [(group, mine[group.id]) for group, _ in held if group.id in mine]
    return _capacity_dicts(cat, held, counts=cat.groups.dataset_counts())


@action("member_roles_list", get=True)
def member_roles_list(cat: Catalog, params: Params) -> list[dict[str, str]]:
    """The roles a member may hold in a ``group_type`` (``organization``, the default: admin,
    editor, member; ``group``: admin, member): ``{"text", "value"}`` each."""
    group_type = params.string("group_type") or "organization"
    roles = _ROLES.get(group_type)
    if roles is None:
        raise ValidationFailed({"group_type": ["Must be organization or group"]})
    return [{"text": role.value.capitalize(), "value": role.value} for role in roles]
