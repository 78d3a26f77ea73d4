"""DatasetService: create, read, update (replace), patch (merge), delete, restore, purge, list."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from opencatalog.domain.commands import DatasetInput, DatasetPatch, GroupInput, ResourceInput
from opencatalog.domain.model import State, Tag
from opencatalog.errors import Conflict, NotAuthorized, NotFound, ValidationFailed
from opencatalog.testing.stateful import stored_contents

CHARSET = "Must be purely lowercase alphanumeric (ascii) characters and these symbols: -_"


def ds_input(name: str = "water-quality", **fields: Any) -> DatasetInput:
    fields.setdefault("owner_org", "org-a")
    return DatasetInput(name=name, **fields)


def full_input(name: str = "water-quality", **overrides: Any) -> DatasetInput:
    """A dataset input with every kind of field filled."""
    fields: dict[str, Any] = {
        "title": "Water quality",
        "notes": "Samples from rivers",
        "url": "http://example.org/water",
        "version": "1.0",
        "author": "Ann Author",
        "author_email": " ann@example.org ",
        "maintainer": "Max Maintainer",
        "maintainer_email": "max@example.org",
        "license_id": "cc-by",
        "tags": ["water", "rivers"],
        "extras": {"spatial": "EU", "frequency": "daily"},
        "groups": ["science"],
        "resources": [
            ResourceInput(url="http://example.org/a.csv", name="a"),
            ResourceInput(url="http://example.org/b.json", name="b"),
        ],
    }
    fields.update(overrides)
    return ds_input(name, **fields)


# -- create and get ------------------------------------------------------------------------


def test_create_stores_every_field_and_get_finds_it_by_id_and_name(cast):
    bob = cast.as_("bob")  # editor of org-a, member of science
    created = bob.datasets.create(full_input())

    assert created.name == "water-quality"
    assert created.title == "Water quality"
    assert created.author_email == "ann@example.org"  # stripped
    assert created.owner_org == cast.org.id  # given by name, stored as id
    assert created.tags == (Tag(name="water"), Tag(name="rivers"))
    assert created.extras == {"spatial": "EU", "frequency": "daily"}
    assert created.groups == (cast.group.id,)
    assert created.state is State.ACTIVE
    assert created.type == "dataset"
    assert created.private is False
    assert created.revision == 1
    assert created.creator_user_id == cast.id_of("bob")
    assert created.metadata_created == created.metadata_modified
    assert [r.position for r in created.resources] == [0, 1]
    assert all(r.package_id == created.id for r in created.resources)
    assert [r.format for r in created.resources] == ["CSV", "JSON"]  # guessed from the URL

    assert bob.datasets.get(created.id) == created
    assert bob.datasets.get("water-quality") == created
    assert cast.as_("anonymous").datasets.get("water-quality") == created


def test_duplicate_tags_collapse(cast):
    ds = cast.catalog.datasets.create(ds_input(tags=["water", "water", Tag(name="air")]))
    assert ds.tags == (Tag(name="water"), Tag(name="air"))


def test_get_unknown_dataset_is_not_found(cast):
    with pytest.raises(NotFound):
        cast.catalog.datasets.get("no-such-dataset")
    with pytest.raises(ValidationFailed) as exc:
        cast.catalog.datasets.get("")
    assert exc.value.errors == {"id": ["Missing value"]}


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("a", "Must be at least 2 characters long"),
        ("x" * 101, "Name must be a maximum of 100 characters long"),
        ("Water", CHARSET),
        ("wa ter", CHARSET),
        ("new", "That name cannot be used"),
        ("", "Missing value"),
    ],
)
def test_create_rejects_bad_names(cast, snapshot, name, message):
    before = snapshot(cast.catalog)
    with pytest.raises(ValidationFailed) as exc:
        cast.catalog.datasets.create(ds_input(name))
    assert exc.value.errors == {"name": [message]}
    assert snapshot(cast.catalog) == before


def test_create_reports_every_bad_field_at_once(cast):
    with pytest.raises(ValidationFailed) as exc:
        cast.catalog.datasets.create(
            ds_input(
                "A",
                author_email="not an email",
                version="v" * 101,
                extras={"name": "shadow", "ok": 5},
            )
        )
    errors = exc.value.errors
    assert set(errors) == {"name", "author_email", "version", "extras"}
    assert errors["author_email"] == ["Email not an email is not a valid format"]
    assert "There is a schema field with the same name: name" in errors["extras"]
    assert "Value of 'ok' must be a string" in errors["extras"]


def test_name_in_use_by_an_active_dataset_is_refused(cast, make_dataset, snapshot):
    make_dataset("water-quality")
    before = snapshot(cast.catalog)
    with pytest.raises(ValidationFailed) as exc:
        cast.catalog.datasets.create(ds_input("water-quality"))
    assert exc.value.errors == {"name": ["That URL is already in use."]}
    assert snapshot(cast.catalog) == before


def test_editor_needs_an_organization(cast):
    with pytest.raises(NotAuthorized, match="An organization must be provided"):
        cast.as_("bob").datasets.create(DatasetInput(name="loose"))
    unowned = cast.catalog.datasets.create(DatasetInput(name="loose"))  # sysadmins may
    assert unowned.owner_org is None


def test_unowned_datasets_for_any_user_when_enabled(make_catalog, populate):
    cast = populate(make_catalog(create_unowned_dataset=True))
    ds = cast.as_("dave").datasets.create(DatasetInput(name="mine", private=False))
    assert ds.owner_org is None
    assert ds.creator_user_id == cast.id_of("dave")
    # the creator may edit it; another user may not
    cast.as_("dave").datasets.patch("mine", DatasetPatch(title="Mine"))
    with pytest.raises(NotAuthorized):
        cast.as_("frank").datasets.patch("mine", DatasetPatch(title="Theirs"))


@pytest.mark.parametrize("who", ["carol", "dave", "erin", "anonymous"])
def test_only_editors_of_the_organization_create_in_it(cast, snapshot, who):
    before = snapshot(cast.catalog)
    with pytest.raises(NotAuthorized):
        cast.as_(who).datasets.create(ds_input())
    assert snapshot(cast.catalog) == before


def test_create_in_unknown_organization(cast):
    with pytest.raises(ValidationFailed) as exc:
        cast.catalog.datasets.create(ds_input(owner_org="nowhere"))
    assert exc.value.errors == {"owner_org": ["Organization does not exist"]}
    with pytest.raises(ValidationFailed):  # a group is not an organization
        cast.catalog.datasets.create(ds_input(owner_org="science"))


def test_private_needs_an_organization(cast):
    with pytest.raises(ValidationFailed) as exc:
        cast.catalog.datasets.create(DatasetInput(name="secret", private=True))
    assert exc.value.errors == {"private": ["Datasets with no organization can't be private."]}


def test_state_is_honoured_for_sysadmins_only(cast):
    draft = cast.catalog.datasets.create(ds_input("draft-one", state=State.DRAFT))
    assert draft.state is State.DRAFT
    dropped = cast.as_("bob").datasets.create(ds_input("draft-two", state=State.DRAFT))
    assert dropped.state is State.ACTIVE


def test_ids_are_chosen_by_sysadmins_only(cast):
    wanted = "12345678-1234-4234-8234-123456789abc"
    with pytest.raises(ValidationFailed) as exc:
        cast.as_("bob").datasets.create(ds_input(id=wanted))
    assert exc.value.errors == {"id": ["The input field id was not expected."]}
    assert cast.catalog.datasets.create(ds_input(id=wanted)).id == wanted
    with pytest.raises(ValidationFailed) as exc:
        cast.catalog.datasets.create(ds_input("other", id=wanted))
    assert exc.value.errors == {"id": ["Dataset id already exists"]}
    with pytest.raises(ValidationFailed) as exc:
        cast.catalog.datasets.create(ds_input("third", id="not-a-uuid"))
    assert exc.value.errors == {"id": ["Must be a UUID"]}


def test_unknown_groups_on_create(cast):
    with pytest.raises(ValidationFailed) as exc:
        cast.catalog.datasets.create(ds_input("gg", groups=["no-such-group", "org-b"]))
    assert exc.value.errors == {
        "groups": ["Group not found: no-such-group", "Group not found: org-b"]
    }


def test_group_rights_checked_for_non_members(cast, snapshot):
    cast.catalog.organizations.add_member("org-a", "frank", "editor")
    before = snapshot(cast.catalog)
    with pytest.raises(NotAuthorized, match="datasets of this group"):
        cast.as_("frank").datasets.create(ds_input(groups=["science"]))
    assert snapshot(cast.catalog) == before
    created = cast.as_("bob").datasets.create(ds_input(groups=["science"]))
    assert created.groups == (cast.group.id,)


# -- create with resources: one transaction ------------------------------------------------


def test_a_bad_resource_refuses_the_whole_dataset(cast, snapshot):
    before = snapshot(cast.catalog)
    with pytest.raises(ValidationFailed) as exc:
        cast.as_("bob").datasets.create(
            ds_input(
                resources=[
                    ResourceInput(url="http://example.org/ok.csv"),
                    ResourceInput(url=None),  # type: ignore[arg-type]
                    ResourceInput(url="http://example.org/x", size=-3),
                ]
            )
        )
    assert exc.value.errors == {
        "resources": [{}, {"url": ["Must be a string"]}, {"size": ["Invalid integer"]}]
    }
    assert snapshot(cast.catalog) == before
    with pytest.raises(NotFound):
        cast.catalog.datasets.get("water-quality")


def test_field_errors_and_reference_errors_are_reported_together(cast):
    with pytest.raises(ValidationFailed) as exc:
        cast.catalog.datasets.create(ds_input("A", owner_org="nowhere"))
    assert set(exc.value.errors) == {"name", "owner_org"}


def test_bad_resources_and_bad_fields_are_reported_together(cast):
    with pytest.raises(ValidationFailed) as exc:
        cast.catalog.datasets.create(ds_input("Bad", resources=[ResourceInput(url="x", id="nope")]))
    assert exc.value.errors == {
        "name": [CHARSET],
        "resources": [{"id": ["Must be a UUID"]}],
    }


def test_duplicate_resource_ids_are_refused(cast, snapshot):
    rid = "12345678-1234-4234-8234-123456789abc"
    before = snapshot(cast.catalog)
    with pytest.raises(ValidationFailed) as exc:
        cast.catalog.datasets.create(
            ds_input(resources=[ResourceInput(id=rid, url="a"), ResourceInput(id=rid, url="b")])
        )
    assert exc.value.errors == {"resources": ["Resource ids must be unique"]}
    assert snapshot(cast.catalog) == before


def test_resource_id_of_another_dataset_is_refused_and_left_alone(cast, make_dataset, snapshot):
    other = make_dataset("other", resources=[ResourceInput(url="http://example.org/o.csv")])
    make_dataset("second")
    taken = other.resources[0].id
    before = snapshot(cast.catalog)
    with pytest.raises((ValidationFailed, Conflict)):
        cast.catalog.datasets.create(
            ds_input(resources=[ResourceInput(id=taken, url="http://evil.example/")])
        )
    with pytest.raises((ValidationFailed, Conflict)):
        cast.catalog.datasets.patch(
            "second", DatasetPatch(resources=(ResourceInput(id=taken, url="http://evil/"),))
        )
    with pytest.raises(ValidationFailed):
        cast.catalog.resources.add("second", ResourceInput(id=taken, url="http://evil/"))
    assert cast.catalog.resources.get(taken) == other.resources[0]
    assert snapshot(cast.catalog) == before


def test_resource_id_of_another_dataset_is_a_validation_error(cast, make_dataset):
    other = make_dataset("other", resources=[ResourceInput(url="http://example.org/o.csv")])
    with pytest.raises(ValidationFailed) as exc:
        cast.catalog.datasets.create(
            ds_input(resources=[ResourceInput(id=other.resources[0].id, url="http://x/")])
        )
    assert list(exc.value.errors) == ["resources"]


def test_create_with_something_that_is_not_an_input(cast):
    with pytest.raises(ValidationFailed):
        cast.catalog.datasets.create(None)  # type: ignore[arg-type]


# -- update: full replacement -------------------------------------------------------------


def test_update_replaces_fields_and_keeps_resources_and_groups(cast):
    bob = cast.as_("bob")
    created = bob.datasets.create(full_input())
    updated = bob.datasets.update("water-quality", ds_input(title="New title"))

    assert updated.title == "New title"
    for field in (
        "notes", "url", "version", "author", "author_email", "maintainer",
        "maintainer_email", "license_id",
    ):  # fmt: skip
        assert getattr(updated, field) is None, field
    assert updated.tags == ()
    assert updated.extras == {}
    assert updated.resources == created.resources  # None keeps them
    assert updated.groups == created.groups  # None keeps them
    assert updated.revision == 2
    assert updated.metadata_modified > created.metadata_modified
    assert updated.metadata_created == created.metadata_created
    assert updated.creator_user_id == created.creator_user_id
    assert bob.datasets.get(created.id) == updated


def test_update_with_empty_collections_clears_them(cast):
    bob = cast.as_("bob")
    bob.datasets.create(full_input())
    updated = bob.datasets.update("water-quality", ds_input(resources=(), groups=()))
    assert updated.resources == ()
    assert updated.groups == ()


def test_update_resources_by_id_keep_their_identity(cast, clock):
    bob = cast.as_("bob")
    created = bob.datasets.create(full_input())
    first, second = created.resources
    updated = bob.datasets.update(
        "water-quality",
        full_input(
            resources=[
                ResourceInput(id=second.id, url=second.url, name="b"),
                ResourceInput(url="http://example.org/c.xml"),
            ]
        ),
    )
    assert updated.resources[0].id == second.id
    assert updated.resources[0].created == second.created
    assert updated.resources[0].position == 0
    assert updated.resources[1].position == 1
    assert updated.resources[1].id not in (first.id, second.id)
    with pytest.raises(NotFound):
        bob.resources.get(first.id)


def test_update_with_nothing_changed_keeps_the_revision_and_adds_no_activity(cast):
    bob = cast.as_("bob")
    created = bob.datasets.create(full_input())
    activities = cast.catalog.activities.for_dataset(created.id)
    same = bob.datasets.update("water-quality", full_input(resources=None, groups=None))
    assert same == created
    assert bob.datasets.get(created.id).revision == 1
    assert cast.catalog.activities.for_dataset(created.id) == activities


def test_update_writes_an_activity_with_a_snapshot(cast):
    bob = cast.as_("bob")
    created = bob.datasets.create(ds_input())
    bob.datasets.update("water-quality", ds_input(title="Now titled"))
    newest, oldest = cast.catalog.activities.for_dataset(created.id)
    assert (newest.activity_type, oldest.activity_type) == ("dataset.updated", "dataset.created")
    assert newest.data["title"] == "Now titled"
    assert newest.data["revision"] == 2
    assert newest.user_id == cast.id_of("bob")


def test_expected_revision_guards_updates(cast, snapshot):
    bob = cast.as_("bob")
    bob.datasets.create(ds_input())
    before = snapshot(cast.catalog)
    with pytest.raises(Conflict):
        bob.datasets.update("water-quality", ds_input(title="x"), expected_revision=7)
    with pytest.raises(Conflict):
        bob.datasets.patch("water-quality", DatasetPatch(title="x"), expected_revision=0)
    assert snapshot(cast.catalog) == before
    done = bob.datasets.update("water-quality", ds_input(title="x"), expected_revision=1)
    assert done.revision == 2
    assert bob.datasets.patch("water-quality", DatasetPatch(title="y"), expected_revision=2)


def test_update_omitting_the_organization_keeps_it(cast):
    """As in CKAN, ``owner_org`` is kept when an update leaves it out (commands docs)."""
    cast.as_("bob").datasets.create(ds_input())
    updated = cast.as_("bob").datasets.update("water-quality", DatasetInput(name="water-quality"))
    assert updated.owner_org == cast.org.id


def test_an_empty_organization_makes_the_dataset_unowned_which_editors_may_not(cast, snapshot):
    cast.as_("bob").datasets.create(ds_input())
    before = snapshot(cast.catalog)
    with pytest.raises(NotAuthorized):
        cast.as_("bob").datasets.update("water-quality", ds_input(owner_org=""))
    with pytest.raises(NotAuthorized):
        cast.as_("bob").datasets.patch("water-quality", DatasetPatch(owner_org=None))
    assert snapshot(cast.catalog) == before
    unowned = cast.catalog.datasets.patch("water-quality", DatasetPatch(owner_org=None))
    assert unowned.owner_org is None


def test_moving_to_another_organization_needs_rights_there(cast):
    cast.as_("bob").datasets.create(ds_input())
    with pytest.raises(NotAuthorized):
        cast.as_("bob").datasets.update("water-quality", ds_input(owner_org="org-b"))
    cast.catalog.organizations.add_member("org-b", "bob", "editor")
    moved = cast.as_("bob").datasets.update("water-quality", ds_input(owner_org="org-b"))
    assert moved.owner_org == cast.other_org.id


def test_rename_onto_an_active_name_is_refused_onto_a_deleted_one_takes_it(cast, make_dataset):
    make_dataset("one")
    make_dataset("two")
    with pytest.raises(ValidationFailed) as exc:
        cast.catalog.datasets.update("one", ds_input("two"))
    assert exc.value.errors == {"name": ["That URL is already in use."]}
    two = cast.catalog.datasets.get("two")
    cast.catalog.datasets.delete("two")
    renamed = cast.catalog.datasets.update("one", ds_input("two"))
    assert renamed.name == "two"
    assert cast.catalog.datasets.get(two.id).name == two.id


def test_update_unknown_dataset(cast):
    with pytest.raises(NotFound):
        cast.catalog.datasets.update("ghost", ds_input("ghost"))


# -- patch: merge top-level keys ------------------------------------------------------------


def test_patch_changes_only_the_given_fields(cast):
    bob = cast.as_("bob")
    created = bob.datasets.create(full_input())
    patched = bob.datasets.patch("water-quality", DatasetPatch(title="Patched"))
    assert patched.title == "Patched"
    assert (
        attrs.evolve(
            patched, title=created.title, metadata_modified=created.metadata_modified, revision=1
        )
        == created
    )


def test_patch_replaces_a_given_collection_whole(cast):
    bob = cast.as_("bob")
    created = bob.datasets.create(full_input())
    patched = bob.datasets.patch(
        "water-quality", DatasetPatch(tags=["air"], extras={"new": "1"}, resources=())
    )
    assert patched.tags == (Tag(name="air"),)
    assert patched.extras == {"new": "1"}
    assert patched.resources == ()
    assert patched.groups == created.groups
    assert patched.notes == created.notes


def test_patch_rename_and_state(cast):
    bob = cast.as_("bob")
    created = bob.datasets.create(ds_input())
    patched = bob.datasets.patch(created.id, DatasetPatch(name="renamed", state=State.DRAFT))
    assert (patched.name, patched.state) == ("renamed", State.DRAFT)
    assert bob.datasets.get("renamed").id == created.id
    with pytest.raises(NotFound):
        bob.datasets.get("water-quality")


def test_patch_with_nothing_changed_keeps_the_revision(cast):
    bob = cast.as_("bob")
    created = bob.datasets.create(full_input())
    assert bob.datasets.patch("water-quality", DatasetPatch()) == created
    assert bob.datasets.patch("water-quality", DatasetPatch(title=created.title)) == created
    assert len(cast.catalog.activities.for_dataset(created.id)) == 1


def test_patch_validates_like_create(cast, snapshot):
    cast.as_("bob").datasets.create(ds_input())
    before = snapshot(cast.catalog)
    with pytest.raises(ValidationFailed) as exc:
        cast.as_("bob").datasets.patch("water-quality", DatasetPatch(name="Bad Name"))
    assert list(exc.value.errors) == ["name"]
    assert snapshot(cast.catalog) == before


# -- delete, restore, purge -----------------------------------------------------------------


def test_delete_is_soft_and_hides_the_dataset_from_outsiders(cast):
    created = cast.as_("bob").datasets.create(full_input())
    assert cast.as_("bob").datasets.delete("water-quality") is None

    seen = cast.as_("carol").datasets.get(created.id)  # any org member still sees it
    assert seen.state is State.DELETED
    assert seen.groups == ()  # group links dropped
    assert seen.name == "water-quality"  # kept until someone takes it
    assert seen.revision == 2
    for who in ("anonymous", "dave", "frank"):
        with pytest.raises(NotFound):
            cast.as_(who).datasets.get(created.id)
    assert cast.catalog.datasets.list().total == 0
    assert cast.catalog.datasets.list(include_deleted=True).total == 1
    types = [a.activity_type for a in cast.catalog.activities.for_dataset(created.id)]
    assert types == ["dataset.deleted", "dataset.created"]


def test_deleting_twice_changes_nothing(cast, make_dataset, snapshot):
    make_dataset()
    cast.catalog.datasets.delete("water-quality")
    before = snapshot(cast.catalog)
    cast.catalog.datasets.delete("water-quality")
    assert snapshot(cast.catalog) == before


def test_a_deleted_datasets_name_is_reusable(cast, make_dataset):
    old = make_dataset("water-quality", title="Old")
    cast.catalog.datasets.delete("water-quality")
    new = cast.as_("bob").datasets.create(ds_input("water-quality", title="New"))

    assert new.id != old.id
    assert cast.catalog.datasets.get("water-quality") == new
    moved = cast.catalog.datasets.get(old.id)
    assert moved.name == old.id  # renamed to its id
    assert (moved.state, moved.title) == (State.DELETED, "Old")


def test_restore_brings_a_deleted_dataset_back(cast, make_dataset):
    created = make_dataset()
    cast.as_("bob").datasets.delete("water-quality")
    restored = cast.as_("bob").datasets.restore("water-quality")
    assert restored.state is State.ACTIVE
    assert restored.revision == 3
    assert cast.as_("anonymous").datasets.get(created.id) == restored
    types = [a.activity_type for a in cast.catalog.activities.for_dataset(created.id)]
    assert types == ["dataset.restored", "dataset.deleted", "dataset.created"]
    # restoring an active dataset changes nothing
    assert cast.as_("bob").datasets.restore("water-quality") == restored


def test_restore_after_the_name_was_taken_keeps_the_id_as_name(cast, make_dataset):
    old = make_dataset()
    cast.catalog.datasets.delete(old.id)
    make_dataset()
    restored = cast.catalog.datasets.restore(old.id)
    assert (restored.name, restored.state) == (old.id, State.ACTIVE)


def test_purge_removes_the_dataset_its_resources_and_activities(cast, make_dataset):
    created = make_dataset(resources=[ResourceInput(url="http://example.org/a.csv")])
    with pytest.raises(NotAuthorized):
        cast.as_("bob").datasets.purge("water-quality")  # editors may not
    cast.as_("alice").datasets.purge("water-quality")  # org admins may
    with pytest.raises(NotFound):
        cast.catalog.datasets.get(created.id)
    with pytest.raises(NotFound):
        cast.catalog.resources.get(created.resources[0].id)
    with pytest.raises(NotFound):
        cast.catalog.activities.for_dataset(created.id)
    assert all(a.object_id != created.id for a in cast.catalog.activities.recent(limit=1000))
    assert make_dataset().name == "water-quality"  # the name is free


def test_purge_works_in_any_state(cast, make_dataset):
    make_dataset()
    cast.catalog.datasets.delete("water-quality")
    cast.catalog.datasets.purge("water-quality")
    assert cast.catalog.datasets.count() == 0


# -- listing -----------------------------------------------------------------------------------


def test_list_shows_active_public_datasets_by_default(cast, make_dataset):
    make_dataset("b-public")
    make_dataset("a-public")
    make_dataset("c-private", private=True)
    make_dataset("d-draft", state=State.DRAFT)
    make_dataset("e-deleted")
    cast.catalog.datasets.delete("e-deleted")

    def names(page):
        return [d.name for d in page.items]

    carol = cast.as_("carol")
    assert names(carol.datasets.list()) == ["a-public", "b-public"]
    assert names(carol.datasets.list(include_private=True)) == ["a-public", "b-public", "c-private"]
    assert names(
        carol.datasets.list(include_private=True, include_drafts=True, include_deleted=True)
    ) == ["a-public", "b-public", "c-private", "d-draft", "e-deleted"]
    # outsiders never see what they may not read, whatever they ask for
    everything = {"include_private": True, "include_drafts": True, "include_deleted": True}
    for who in ("anonymous", "dave", "erin"):
        assert names(cast.as_(who).datasets.list(**everything)) == ["a-public", "b-public"]
        assert cast.as_(who).datasets.count() == 2
    assert carol.datasets.count() == 5


def test_list_windows_filters_and_order(cast, make_dataset, clock):
    for name in ("d1", "d2", "d3", "d4"):
        make_dataset(name, tags=["even"] if name in ("d2", "d4") else [])
    cast.catalog.datasets.patch("d1", DatasetPatch(title="touched"))
    page = cast.catalog.datasets.list(offset=1, limit=2)
    assert [d.name for d in page.items] == ["d2", "d3"]
    assert (page.total, page.offset, page.limit) == (4, 1, 2)
    assert [d.name for d in cast.catalog.datasets.list(tag="even").items] == ["d2", "d4"]
    newest = cast.catalog.datasets.list(order="-metadata_modified")
    assert [d.name for d in newest.items] == ["d1", "d4", "d3", "d2"]
    assert cast.catalog.datasets.list(organization="org-b").total == 0
    assert cast.catalog.datasets.list(organization="org-a").total == 4
    with pytest.raises(NotFound):
        cast.catalog.datasets.list(organization="nowhere")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"offset": -1}, "offset"),
        ({"limit": -5}, "limit"),
        ({"offset": "3"}, "offset"),
        ({"limit": True}, "limit"),
        ({"order": "title"}, "order"),
    ],
)
def test_list_rejects_bad_arguments(cast, kwargs, field):
    with pytest.raises(ValidationFailed) as exc:
        cast.catalog.datasets.list(**kwargs)
    assert list(exc.value.errors) == [field]


def test_get_many_skips_what_the_actor_may_not_read(cast, make_dataset):
    public = make_dataset("pub")
    private = make_dataset("priv", private=True)
    ids = [private.id, "missing", public.id]
    assert cast.as_("anonymous").datasets.get_many(ids) == [public]
    assert cast.as_("carol").datasets.get_many(ids) == [private, public]


# -- bad input everywhere ------------------------------------------------------------------

_WRONG = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.lists(st.text(max_size=10), max_size=3),
    st.dictionaries(st.text(max_size=5), st.one_of(st.text(max_size=5), st.integers()), max_size=3),
    st.just(State.DRAFT),
    st.just((ResourceInput(url="http://example.org/x"),)),
)
_DATASET_FIELDS = [f.name for f in attrs.fields(DatasetInput)]
_BAD_INPUT = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _check_refusal(exc: ValidationFailed) -> None:
    assert isinstance(exc.errors, dict) and exc.errors
    for key, messages in exc.errors.items():
        assert isinstance(key, str)
        assert isinstance(messages, list) and messages
        if key == "resources" and isinstance(messages[0], dict):
            for item in messages:
                assert isinstance(item, dict)
                assert all(
                    isinstance(k, str) and all(isinstance(m, str) for m in v)
                    for k, v in item.items()
                )
        else:
            assert all(isinstance(m, str) for m in messages), exc.errors


@given(changes=st.dictionaries(st.sampled_from(_DATASET_FIELDS), _WRONG, min_size=1, max_size=3))
@_BAD_INPUT
def test_bad_input_to_create_is_refused_cleanly(cast, changes):
    catalog = cast.catalog
    name = f"ds-{len(catalog.datasets.list(include_deleted=True, include_drafts=True).items)}"
    data = attrs.evolve(ds_input(name, resources=[ResourceInput(url="http://x/a.csv")]), **changes)
    before = stored_contents(catalog)
    try:
        created = catalog.as_user("bob").datasets.create(data)
    except ValidationFailed as exc:
        event("refused")
        _check_refusal(exc)
        assert stored_contents(catalog) == before
    except NotAuthorized:
        event("not authorized")  # e.g. a group bob may not use, or no organization
        assert stored_contents(catalog) == before
    else:
        event("accepted")
        assert catalog.datasets.get(created.id) == created


@given(changes=st.dictionaries(st.sampled_from(_DATASET_FIELDS), _WRONG, min_size=1, max_size=3))
@_BAD_INPUT
def test_bad_input_to_update_is_refused_cleanly(cast, changes):
    catalog = cast.catalog
    if not catalog.datasets.count():
        catalog.datasets.create(full_input("target"))
    data = attrs.evolve(full_input("target"), **changes)
    before = stored_contents(catalog)
    try:
        updated = catalog.as_user("bob").datasets.update("target", data)
    except ValidationFailed as exc:
        event("refused")
        _check_refusal(exc)
        assert stored_contents(catalog) == before
    except NotAuthorized:
        event("not authorized")
        assert stored_contents(catalog) == before
    else:
        event("accepted")
        assert catalog.datasets.get(updated.id) == updated
        catalog.datasets.update(updated.id, full_input("target"))  # back for the next example


def test_wrong_types_get_field_errors(cast):
    with pytest.raises(ValidationFailed) as exc:
        cast.catalog.datasets.create(
            attrs.evolve(
                ds_input(),
                name=5,
                private="yes",
                tags={"a": 1},
                extras=["x"],
                groups=[1],
                resources="r",
                state="active",
                title=3.5,
            )
        )
    assert set(exc.value.errors) == {
        "name", "private", "tags", "extras", "groups", "resources", "state", "title",
    }  # fmt: skip


def test_organizations_still_usable_after_refusals(cast):
    cast.catalog.organizations.create(GroupInput(name="org-c"))
    assert cast.catalog.datasets.create(ds_input(owner_org="org-c")).name == "water-quality"


@pytest.mark.parametrize("call", ["patch-none", "get-many-none"])
def test_wrong_argument_types_are_refused_cleanly(cast, make_dataset, call):
    make_dataset()
    with pytest.raises((ValidationFailed, NotFound)):
        if call == "patch-none":
            cast.catalog.datasets.patch("water-quality", None)  # type: ignore[arg-type]
        else:
            cast.catalog.datasets.get_many(None)  # type: ignore[arg-type]


def test_list_tag_of_the_wrong_type(cast):
    with pytest.raises(ValidationFailed):
        cast.catalog.datasets.list(tag=["water"])  # type: ignore[arg-type]
