"""GroupService for organizations and groups: life cycle, members, datasets in groups."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from opencatalog.domain.commands import DatasetPatch, GroupInput, GroupPatch
from opencatalog.domain.model import Capacity, State
from opencatalog.errors import Conflict, NotAuthorized, NotFound, ValidationFailed
from opencatalog.testing.stateful import stored_contents


def members(service, ref):
    return [(m.user.name, m.capacity) for m in service.members(ref)]


# -- create and get --------------------------------------------------------------------------


def test_organizations_are_created_by_sysadmins(cast, snapshot):
    before = snapshot(cast.catalog)
    for who in ("alice", "dave", "anonymous"):
        with pytest.raises(NotAuthorized):
            cast.as_(who).organizations.create(GroupInput(name="org-c"))
    assert snapshot(cast.catalog) == before
    org = cast.as_("root").organizations.create(
        GroupInput(name="org-c", title="Org C", description="d", extras={"k": "v"})
    )
    assert (org.is_organization, org.type, org.state, org.revision) == (
        True,
        "organization",
        State.ACTIVE,
        1,
    )
    assert org.display_name == "Org C"
    assert cast.catalog.organizations.get("org-c") == org
    assert cast.as_("anonymous").organizations.get(org.id) == org
    assert members(cast.catalog.organizations, "org-c") == [("root", Capacity.ADMIN)]


def test_any_user_may_create_a_group_and_becomes_its_admin(cast):
    group = cast.as_("dave").groups.create(GroupInput(name="hobby"))
    assert (group.is_organization, group.type) == (False, "group")
    assert group.display_name == "hobby"
    assert members(cast.catalog.groups, "hobby") == [("dave", Capacity.ADMIN)]
    with pytest.raises(NotAuthorized):
        cast.as_("anonymous").groups.create(GroupInput(name="anon"))


def test_user_create_switches(make_catalog, populate):
    cast = populate(make_catalog(user_create_organizations=True, user_create_groups=False))
    assert cast.as_("dave").organizations.create(GroupInput(name="daves-org")).name == "daves-org"
    with pytest.raises(NotAuthorized):
        cast.as_("dave").groups.create(GroupInput(name="daves-group"))


def test_organizations_and_groups_share_one_name_space(cast, snapshot):
    before = snapshot(cast.catalog)
    with pytest.raises(ValidationFailed) as exc:
        cast.catalog.groups.create(GroupInput(name="org-a"))
    assert exc.value.errors == {"name": ["Group name already exists in database"]}
    with pytest.raises(ValidationFailed):
        cast.catalog.organizations.create(GroupInput(name="science"))
    assert snapshot(cast.catalog) == before


def test_each_service_finds_only_its_kind(cast):
    with pytest.raises(NotFound):
        cast.catalog.groups.get("org-a")
    with pytest.raises(NotFound):
        cast.catalog.organizations.get("science")
    assert cast.catalog.groups.get(cast.group.id) == cast.group


def test_create_validates(cast):
    with pytest.raises(ValidationFailed) as exc:
        cast.catalog.organizations.create(
            GroupInput(name="Bad Name", title=5, extras={"id": "x", "ok": 1})  # type: ignore[arg-type]
        )
    errors = exc.value.errors
    assert set(errors) == {"name", "title", "extras"}
    with pytest.raises(ValidationFailed) as exc:
        cast.as_("dave").groups.create(
            GroupInput(name="chosen", id="12345678-1234-4234-8234-123456789abc")
        )
    assert exc.value.errors == {"id": ["The input field id was not expected."]}


def test_create_with_something_that_is_not_an_input(cast):
    with pytest.raises(ValidationFailed):
        cast.catalog.groups.create(None)  # type: ignore[arg-type]


# -- update and patch ------------------------------------------------------------------------


def test_update_replaces_and_patch_merges(cast):
    alice = cast.as_("alice")
    alice.organizations.patch("org-a", GroupPatch(description="About A", extras={"k": "v"}))
    updated = alice.organizations.update("org-a", GroupInput(name="org-a", title="New A"))
    assert updated.title == "New A"
    assert updated.description is None
    assert updated.extras == {}
    assert updated.type == "organization"  # not changed by update
    patched = alice.organizations.patch("org-a", GroupPatch(image_url="http://img"))
    assert (patched.title, patched.image_url) == ("New A", "http://img")
    assert patched.revision == cast.org.revision + 3
    assert cast.catalog.organizations.get("org-a") == patched


def test_update_with_nothing_changed_keeps_the_revision_and_adds_no_activity(cast):
    org = cast.catalog.organizations.get("org-a")
    activities = cast.catalog.activities.for_organization("org-a")
    same = cast.as_("alice").organizations.update(
        "org-a", GroupInput(name="org-a", title=org.title)
    )
    assert same == org
    assert cast.as_("alice").organizations.patch("org-a", GroupPatch(title=org.title)) == org
    assert cast.catalog.activities.for_organization("org-a") == activities


def test_rename(cast, snapshot):
    renamed = cast.as_("alice").organizations.patch("org-a", GroupPatch(name="org-alpha"))
    assert cast.catalog.organizations.get("org-alpha") == renamed
    with pytest.raises(NotFound):
        cast.catalog.organizations.get("org-a")
    before = snapshot(cast.catalog)
    with pytest.raises(ValidationFailed) as exc:
        cast.as_("alice").organizations.patch("org-alpha", GroupPatch(name="science"))
    assert exc.value.errors == {"name": ["Group name already exists in database"]}
    with pytest.raises(ValidationFailed):
        cast.as_("alice").organizations.patch("org-alpha", GroupPatch(name="Not Valid"))
    assert snapshot(cast.catalog) == before


@pytest.mark.parametrize("who", ["bob", "carol", "dave", "erin"])
def test_only_admins_change_an_organization(cast, snapshot, who):
    before = snapshot(cast.catalog)
    with pytest.raises(NotAuthorized):
        cast.as_(who).organizations.patch("org-a", GroupPatch(title="x"))
    with pytest.raises(NotAuthorized):
        cast.as_(who).organizations.update("org-a", GroupInput(name="org-a"))
    assert snapshot(cast.catalog) == before


# -- delete, restore, purge ------------------------------------------------------------------


def test_an_organization_with_datasets_cannot_be_deleted(cast, make_dataset, snapshot):
    make_dataset("one")
    make_dataset("two", state=State.DRAFT)
    before = snapshot(cast.catalog)
    with pytest.raises(Conflict, match="still has datasets"):
        cast.as_("alice").organizations.delete("org-a")
    with pytest.raises(Conflict):
        cast.catalog.organizations.purge("org-a")
    assert snapshot(cast.catalog) == before
    cast.catalog.datasets.delete("one")
    cast.catalog.datasets.delete("two")
    cast.as_("alice").organizations.delete("org-a")  # deleted datasets do not count
    assert cast.catalog.organizations.get("org-a").state is State.DELETED


def test_delete_is_soft_and_removes_memberships(cast):
    cast.as_("alice").organizations.delete("org-a")
    deleted = cast.catalog.organizations.get("org-a")
    assert deleted.state is State.DELETED
    assert deleted.revision == cast.org.revision + 1
    assert members(cast.catalog.organizations, "org-a") == []
    assert cast.as_("bob").actor.capacity_in(cast.org.id) is None
    for who in ("alice", "carol", "anonymous"):
        with pytest.raises(NotFound):
            cast.as_(who).organizations.get("org-a")
    assert [o.name for o in cast.catalog.organizations.list().items] == ["org-b"]
    listed = cast.catalog.organizations.list(include_deleted=True).items
    assert [o.name for o in listed] == ["org-a", "org-b"]
    assert cast.as_("dave").organizations.list(include_deleted=True).total == 1
    # the name stays taken while the organization exists
    with pytest.raises(ValidationFailed):
        cast.catalog.groups.create(GroupInput(name="org-a"))
    types = [a.activity_type for a in cast.catalog.activities.for_organization("org-a")]
    assert types[0] == "organization.deleted"


def test_deleting_twice_changes_nothing(cast, snapshot):
    cast.catalog.groups.delete("science")
    before = snapshot(cast.catalog)
    cast.catalog.groups.delete("science")
    assert snapshot(cast.catalog) == before


def test_restore_is_for_sysadmins(cast):
    cast.catalog.groups.delete("science")
    with pytest.raises(NotFound):  # alice lost her membership with the delete
        cast.as_("alice").groups.restore("science")
    restored = cast.as_("root").groups.restore("science")
    assert restored.state is State.ACTIVE
    assert cast.as_("anonymous").groups.get("science") == restored
    assert members(cast.catalog.groups, "science") == []
    cast.as_("dave").groups.create(GroupInput(name="own"))
    with pytest.raises(NotAuthorized):  # only sysadmins, even for the group's admin
        cast.as_("dave").groups.restore("own")


def test_purge_organization_removes_its_deleted_datasets(cast, make_dataset):
    ds = make_dataset("gone")
    cast.catalog.datasets.delete("gone")
    with pytest.raises(NotAuthorized):
        cast.as_("alice").organizations.purge("org-a")
    cast.as_("root").organizations.purge("org-a")
    with pytest.raises(NotFound):
        cast.catalog.organizations.get("org-a")
    with pytest.raises(NotFound):
        cast.catalog.datasets.get(ds.id)
    assert cast.as_("alice").actor.memberships == {cast.group.id: Capacity.ADMIN}
    assert cast.catalog.groups.create(GroupInput(name="org-a")).name == "org-a"  # name free


def test_purge_organization_leaves_no_activities_of_its_datasets(cast, make_dataset):
    ds = make_dataset("gone")
    cast.catalog.datasets.delete("gone")
    cast.catalog.organizations.purge("org-a")
    assert all(a.object_id != ds.id for a in cast.catalog.activities.recent(limit=1000))


def test_purge_group_takes_it_out_of_its_datasets(cast, make_dataset):
    ds = make_dataset(groups=["science"])
    cast.catalog.groups.purge("science")
    assert cast.catalog.datasets.get(ds.id).groups == ()
    with pytest.raises(NotFound):
        cast.catalog.groups.get("science")
    assert cast.catalog.activities.recent(limit=1000)  # others' activities stay
    with pytest.raises(NotFound):
        cast.catalog.activities.for_group(cast.group.id)


def test_deleting_a_group_takes_it_out_of_its_datasets(cast, make_dataset):
    cast.catalog.groups.create(GroupInput(name="other"))
    cast.catalog.groups.add_member("other", "bob", "member")
    ds = make_dataset(groups=["science"])
    cast.catalog.groups.delete("science")
    patched = cast.as_("bob").datasets.patch(ds.id, DatasetPatch(groups=["other"]))
    assert len(patched.groups) == 1


# -- members ---------------------------------------------------------------------------------


def test_members_are_listed_by_name_with_capacities(cast):
    assert members(cast.as_("anonymous").organizations, "org-a") == [
        ("alice", Capacity.ADMIN),
        ("bob", Capacity.EDITOR),
        ("carol", Capacity.MEMBER),
    ]


def test_add_change_and_remove_members(cast, make_dataset):
    make_dataset()
    alice = cast.as_("alice").organizations
    added = alice.add_member("org-a", "dave", "editor")
    assert (added.user_id, added.capacity) == (cast.id_of("dave"), Capacity.EDITOR)
    # membership takes effect at once
    assert cast.as_("dave").datasets.patch("water-quality", DatasetPatch(title="by dave"))
    alice.add_member("org-a", cast.id_of("dave"), Capacity.MEMBER)  # by id, enum capacity
    assert ("dave", Capacity.MEMBER) in members(alice, "org-a")
    with pytest.raises(NotAuthorized):
        cast.as_("dave").datasets.patch("water-quality", DatasetPatch(title="again"))
    alice.remove_member("org-a", "dave")
    assert "dave" not in [name for name, _ in members(alice, "org-a")]
    assert cast.as_("dave").actor.memberships == {}
    types = [a.activity_type for a in cast.catalog.activities.for_organization("org-a")]
    assert types[:3] == ["organization.member_changed"] * 3


def test_member_checks(cast, snapshot):
    before = snapshot(cast.catalog)
    alice = cast.as_("alice").organizations
    with pytest.raises(ValidationFailed) as exc:
        alice.add_member("org-a", "dave", "owner")
    assert exc.value.errors == {"role": ["role does not exist."]}
    with pytest.raises(ValidationFailed) as exc:
        alice.add_member("org-a", "nobody", "member")
    assert exc.value.errors == {"username": ["User not found"]}
    with pytest.raises(ValidationFailed):
        alice.remove_member("org-a", "nobody")
    with pytest.raises(NotFound):
        alice.add_member("no-org", "dave", "member")
    assert snapshot(cast.catalog) == before


def test_an_admin_cannot_demote_themselves(cast, snapshot):
    before = snapshot(cast.catalog)
    for capacity in ("editor", "member"):
        with pytest.raises(NotAuthorized, match="cannot revoke their own admin status"):
            cast.as_("alice").organizations.add_member("org-a", "alice", capacity)
    assert snapshot(cast.catalog) == before
    cast.as_("alice").organizations.add_member("org-a", "alice", "admin")  # no change: fine
    cast.as_("root").organizations.add_member("org-a", "alice", "member")  # sysadmins may
    assert ("alice", Capacity.MEMBER) in members(cast.catalog.organizations, "org-a")


@pytest.mark.parametrize("who", ["bob", "carol", "dave", "erin", "anonymous"])
def test_only_admins_manage_members(cast, snapshot, who):
    before = snapshot(cast.catalog)
    with pytest.raises(NotAuthorized):
        cast.as_(who).organizations.add_member("org-a", "dave", "member")
    with pytest.raises(NotAuthorized):
        cast.as_(who).organizations.remove_member("org-a", "carol")
    assert snapshot(cast.catalog) == before


def test_deleted_users_cannot_become_members(cast):
    cast.catalog.users.delete("dave")
    with pytest.raises(ValidationFailed):
        cast.catalog.organizations.add_member("org-a", "dave", "member")


# -- datasets in groups ----------------------------------------------------------------------


def test_group_members_add_and_remove_datasets(cast, make_dataset):
    ds = make_dataset()
    bob = cast.as_("bob")  # member of science
    added = bob.groups.add_dataset("science", "water-quality")
    assert added.groups == (cast.group.id,)
    assert added.revision == ds.revision + 1
    assert bob.groups.add_dataset("science", ds.id) == added  # already in: no change
    assert [d.name for d in cast.catalog.datasets.list(group="science").items] == [ds.name]
    assert cast.as_("anonymous").groups.dataset_counts() == {
        cast.group.id: 1,
        cast.org.id: 1,
    }
    removed = bob.groups.remove_dataset("science", ds.id)
    assert removed.groups == ()
    types = [a.activity_type for a in cast.catalog.activities.for_dataset(ds.id)]
    assert types == ["dataset.updated", "dataset.updated", "dataset.created"]


def test_non_members_may_not_link_datasets_to_a_group(cast, make_dataset, snapshot):
    make_dataset()
    before = snapshot(cast.catalog)
    for who in ("carol", "dave", "anonymous"):
        with pytest.raises(NotAuthorized):
            cast.as_(who).groups.add_dataset("science", "water-quality")
    assert snapshot(cast.catalog) == before


def test_private_datasets_stay_hidden_when_linking(cast, make_dataset):
    make_dataset("secret", private=True)
    cast.catalog.groups.add_member("science", "frank", "member")
    with pytest.raises(NotFound):
        cast.as_("frank").groups.add_dataset("science", "secret")


def test_organizations_take_datasets_through_owner_org_only(cast, make_dataset):
    make_dataset()
    with pytest.raises(ValidationFailed):
        cast.catalog.organizations.add_dataset("org-b", "water-quality")


def test_dataset_counts_hide_private_datasets_from_outsiders(cast, make_dataset):
    make_dataset("pub", groups=["science"])
    make_dataset("priv", private=True, groups=["science"])
    assert cast.as_("anonymous").groups.dataset_counts() == {cast.group.id: 1, cast.org.id: 1}
    assert cast.as_("carol").groups.dataset_counts() == {cast.group.id: 2, cast.org.id: 2}


def test_list_pages(cast):
    for name in ("g1", "g2", "g3"):
        cast.catalog.groups.create(GroupInput(name=name))
    page = cast.as_("anonymous").groups.list(offset=1, limit=2)
    assert [g.name for g in page.items] == ["g2", "g3"]
    assert page.total == 4
    with pytest.raises(ValidationFailed):
        cast.catalog.groups.list(limit=-1)


# -- bad input everywhere ------------------------------------------------------------------

_WRONG = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=30),
    st.lists(st.text(max_size=10), max_size=3),
    st.dictionaries(
        st.one_of(st.text(max_size=5), st.integers()),
        st.one_of(st.text(max_size=5), st.integers()),
        max_size=3,
    ),
)
_GROUP_FIELDS = [f.name for f in attrs.fields(GroupInput)]


def _assert_field_errors(exc: ValidationFailed) -> None:
    assert isinstance(exc.errors, dict) and exc.errors
    for key, messages in exc.errors.items():
        assert key in _GROUP_FIELDS, key
        assert isinstance(messages, list) and messages
        assert all(isinstance(m, str) for m in messages)


@given(
    kind=st.sampled_from(["organizations", "groups"]),
    changes=st.dictionaries(st.sampled_from(_GROUP_FIELDS), _WRONG, min_size=1, max_size=3),
)
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_bad_input_is_refused_cleanly(cast, kind, changes):
    catalog = cast.catalog
    service = getattr(catalog, kind)
    number = catalog.organizations.list().total + catalog.groups.list().total
    data = attrs.evolve(GroupInput(name=f"g-{number}", title="T"), **changes)
    existing = "org-a" if kind == "organizations" else "science"
    for call in (
        lambda: service.create(data),
        lambda: getattr(cast.as_("alice"), kind).update(existing, data),
    ):
        before = stored_contents(catalog)
        try:
            result = call()
        except ValidationFailed as exc:
            event("refused")
            _assert_field_errors(exc)
            assert stored_contents(catalog) == before
        else:
            event("accepted")
            assert service.get(result.id) == result
            if result.id in (cast.org.id, cast.group.id) and result.name != existing:
                service.patch(result.id, GroupPatch(name=existing))  # back for the next example


def test_patch_validates_wrong_types(cast):
    with pytest.raises(ValidationFailed) as exc:
        cast.catalog.groups.patch(
            "science",
            GroupPatch(name=3, extras="x", description=[1]),  # type: ignore[arg-type]
        )
    assert set(exc.value.errors) == {"name", "extras", "description"}


@pytest.mark.parametrize("method", ["update", "patch"])
def test_changes_that_are_not_inputs(cast, method):
    with pytest.raises(ValidationFailed):
        getattr(cast.catalog.groups, method)("science", None)


def test_member_references_of_the_wrong_type(cast):
    with pytest.raises(ValidationFailed):
        cast.catalog.groups.add_member("science", ["dave"], "member")  # type: ignore[arg-type]
