"""TagService (tag counts, vocabularies) and ActivityService (the activity stream)."""

from __future__ import annotations

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
from opencatalog.domain.model import Tag
from opencatalog.errors import NotAuthorized, NotFound, ValidationFailed


def genre(name: str) -> Tag:
    return Tag(name=name, vocabulary_id="genre")


# -- tag counts --------------------------------------------------------------------------------


def test_counts_are_over_readable_active_datasets_most_used_first(cast, make_dataset):
    make_dataset("d1", tags=["water", "air"])
    make_dataset("d2", tags=["water"])
    make_dataset("d3", tags=["water", "soil"], private=True)
    make_dataset("d4", tags=["Air"])
    make_dataset("d5", tags=["gone"])
    cast.catalog.datasets.delete("d5")

    assert cast.as_("anonymous").tags.counts() == [("water", 2), ("Air", 1), ("air", 1)]
    assert cast.as_("carol").tags.counts() == [
        ("water", 3),
        ("Air", 1),
        ("air", 1),
        ("soil", 1),
    ]
    assert cast.as_("anonymous").tags.counts(query="AI") == [("Air", 1), ("air", 1)]
    assert cast.as_("anonymous").tags.counts(limit=1) == [("water", 2)]
    assert cast.as_("anonymous").tags.names() == ["Air", "air", "water"]


def test_vocabularies_are_managed_by_sysadmins(cast, snapshot):
    before = snapshot(cast.catalog)
    for who in ("alice", "dave", "anonymous"):
        with pytest.raises(NotAuthorized):
            cast.as_(who).tags.create_vocabulary("genre", ["rock", "jazz"])
    assert snapshot(cast.catalog) == before
    vocab = cast.as_("root").tags.create_vocabulary("genre", ["rock", "jazz", "rock"])
    assert (vocab.name, vocab.tags) == ("genre", ("rock", "jazz"))
    assert cast.as_("anonymous").tags.get_vocabulary("genre") == vocab
    assert cast.as_("anonymous").tags.get_vocabulary(vocab.id) == vocab
    assert cast.catalog.tags.list_vocabularies() == [vocab]
    assert cast.as_("anonymous").tags.names(vocabulary="genre") == ["jazz", "rock"]
    with pytest.raises(ValidationFailed) as exc:
        cast.catalog.tags.create_vocabulary("genre", [])
    assert exc.value.errors == {"name": ["That vocabulary name is already in use."]}
    with pytest.raises(ValidationFailed) as exc:
        cast.catalog.tags.create_vocabulary("x", ["a", "ok"])
    assert set(exc.value.errors) == {"name", "tags"}
    with pytest.raises(NotFound):
        cast.catalog.tags.get_vocabulary("nope")


def test_vocabulary_tags_must_be_in_the_vocabulary(cast, snapshot):
    vocab = cast.catalog.tags.create_vocabulary("genre", ["rock", "jazz"])
    before = snapshot(cast.catalog)
    with pytest.raises(ValidationFailed) as exc:
        cast.catalog.datasets.create(
            DatasetInput(name="d1", owner_org="org-a", tags=[genre("pop")])
        )
    assert exc.value.errors == {"tags": ['Tag "pop" does not belong to vocabulary genre']}
    with pytest.raises(ValidationFailed) as exc:
        cast.catalog.datasets.create(
            DatasetInput(name="d1", owner_org="org-a", tags=[Tag(name="rock", vocabulary_id="x")])
        )
    assert exc.value.errors == {"tags": ["Tag vocabulary x does not exist"]}
    assert snapshot(cast.catalog) == before

    ds = cast.catalog.datasets.create(
        DatasetInput(name="d1", owner_org="org-a", tags=["rock", genre("rock")])
    )
    # the vocabulary may be named; the dataset stores its id
    assert ds.tags == (Tag(name="rock"), Tag(name="rock", vocabulary_id=vocab.id))
    assert cast.catalog.tags.counts() == [("rock", 1)]
    assert cast.catalog.tags.counts(vocabulary="genre") == [("rock", 1)]
    with pytest.raises(NotFound):
        cast.catalog.tags.counts(vocabulary="nope")


def test_vocabulary_changes_keep_used_tags(cast):
    cast.catalog.tags.create_vocabulary("genre", ["rock", "jazz"])
    cast.catalog.datasets.create(DatasetInput(name="d1", owner_org="org-a", tags=[genre("rock")]))
    with pytest.raises(ValidationFailed) as exc:
        cast.catalog.tags.update_vocabulary("genre", tags=["jazz"])
    assert list(exc.value.errors) == ["tags"]
    changed = cast.catalog.tags.update_vocabulary("genre", name="genres", tags=["rock", "pop"])
    assert (changed.name, changed.tags) == ("genres", ("rock", "pop"))
    with pytest.raises(ValidationFailed):
        cast.catalog.tags.delete_vocabulary("genres")
    with pytest.raises(NotAuthorized):
        cast.as_("alice").tags.delete_vocabulary("genres")
    cast.catalog.datasets.purge("d1")
    cast.catalog.tags.delete_vocabulary("genres")
    assert cast.catalog.tags.list_vocabularies() == []


def test_tag_names_are_validated(cast):
    with pytest.raises(ValidationFailed) as exc:
        cast.catalog.datasets.create(
            DatasetInput(name="d1", owner_org="org-a", tags=["x", "ok", "bad/slash", "ア ok"])
        )
    assert exc.value.errors == {
        "tags": [
            'Tag "x" length is less than minimum 2',
            'Tag "bad/slash" must be alphanumeric characters or symbols: -_.',
        ]
    }


# -- activities ----------------------------------------------------------------------------


def test_every_dataset_change_is_recorded_newest_first_with_a_snapshot(cast):
    bob = cast.as_("bob")
    ds = bob.datasets.create(DatasetInput(name="d1", owner_org="org-a", title="One"))
    bob.datasets.patch("d1", DatasetPatch(title="Two"))
    res = bob.resources.add("d1", ResourceInput(url="http://example.org/a.csv"))
    bob.resources.patch(res.id, ResourcePatch(name="r"))
    bob.resources.add("d1", ResourceInput(url="http://example.org/b.csv"))
    bob.resources.reorder("d1", [r.id for r in bob.datasets.get("d1").resources][::-1])
    bob.resources.delete(res.id)
    bob.groups.add_dataset("science", "d1")
    bob.datasets.delete("d1")
    bob.datasets.restore("d1")

    stream = cast.catalog.activities.for_dataset(ds.id)
    assert [a.activity_type for a in stream] == [
        "dataset.restored",
        "dataset.deleted",
        *["dataset.updated"] * 7,
        "dataset.created",
    ]
    timestamps = [a.timestamp for a in stream]
    assert timestamps == sorted(timestamps, reverse=True)
    assert len(set(timestamps)) == len(timestamps)
    assert all(a.user_id == cast.id_of("bob") for a in stream)
    assert all(a.object_id == ds.id and a.object_type == "dataset" for a in stream)
    # each snapshot is the dataset after that change
    assert stream[-1].data["title"] == "One"
    assert stream[-2].data["title"] == "Two"
    assert stream[-3].data["resources"][0]["url"] == "http://example.org/a.csv"
    assert stream[0].data["state"] == "active"
    assert stream[1].data["state"] == "deleted"
    current = cast.catalog.datasets.get(ds.id)
    assert stream[0].data["revision"] == current.revision
    assert stream[0].data["metadata_modified"] == current.metadata_modified.isoformat()
    assert set(stream[0].permission_labels) == {"public", f"member-{cast.org.id}"}
    assert set(stream[1].permission_labels) == {f"member-{cast.org.id}"}  # deleted: members only


def test_refused_and_empty_changes_record_nothing(cast, make_dataset):
    ds = make_dataset("d1")
    stream = cast.catalog.activities.for_dataset(ds.id)
    with pytest.raises(ValidationFailed):
        cast.catalog.datasets.patch("d1", DatasetPatch(name="Bad Name"))
    with pytest.raises(NotAuthorized):
        cast.as_("carol").datasets.patch("d1", DatasetPatch(title="x"))
    cast.catalog.datasets.patch("d1", DatasetPatch())
    cast.catalog.datasets.restore("d1")  # already active
    assert cast.catalog.activities.for_dataset(ds.id) == stream


def test_group_organization_and_user_changes_are_recorded(cast):
    alice = cast.as_("alice")
    alice.organizations.patch("org-a", GroupPatch(title="A!"))
    alice.organizations.add_member("org-a", "dave", "member")
    alice.organizations.remove_member("org-a", "dave")
    org_stream = cast.catalog.activities.for_organization("org-a")
    assert [a.activity_type for a in org_stream][:3] == [
        "organization.member_changed",
        "organization.member_changed",
        "organization.updated",
    ]
    assert org_stream[2].data["title"] == "A!"
    assert org_stream[-1].activity_type == "organization.created"
    assert all(a.object_type == "organization" for a in org_stream)

    group = cast.as_("dave").groups.create(GroupInput(name="hobby"))
    cast.as_("dave").groups.delete("hobby")
    group_stream = cast.as_("root").activities.for_group(group.id)
    assert [a.activity_type for a in group_stream] == ["group.deleted", "group.created"]
    assert group_stream[0].data["state"] == "deleted"

    cast.as_("dave").users.update("dave", UserPatch(fullname="Dave"))
    cast.catalog.users.delete("dave")
    cast.catalog.users.restore("dave")
    recent = cast.catalog.activities.recent(limit=1000)
    user_stream = [a for a in recent if a.object_id == cast.id_of("dave")]
    assert [a.activity_type for a in user_stream] == [
        "user.restored",
        "user.deleted",
        "user.updated",
        "user.created",
    ]
    assert user_stream[2].data["fullname"] == "Dave"
    assert user_stream[2].user_id == cast.id_of("dave")
    assert all("password_hash" not in a.data for a in user_stream)


def test_for_user_hides_activities_on_datasets_the_viewer_may_not_read(cast):
    bob = cast.as_("bob")
    bob.datasets.create(DatasetInput(name="open", owner_org="org-a"))
    bob.datasets.create(DatasetInput(name="secret-plans", owner_org="org-a", private=True))
    seen_by = {
        who: [a.data["name"] for a in cast.as_(who).activities.for_user("bob")]
        for who in ("anonymous", "dave", "erin", "carol", "root")
    }
    for outsider in ("anonymous", "dave", "erin"):
        assert seen_by[outsider] == ["open"]
    assert seen_by["carol"] == ["secret-plans", "open"]
    assert seen_by["root"] == ["secret-plans", "open"]


def test_private_dataset_streams_are_not_found_for_outsiders(cast, make_dataset):
    ds = make_dataset("secret", private=True)
    assert cast.as_("carol").activities.for_dataset(ds.id)
    for who in ("anonymous", "dave", "frank"):
        with pytest.raises(NotFound):
            cast.as_(who).activities.for_dataset(ds.id)
        with pytest.raises(NotFound):
            cast.as_(who).activities.for_dataset("secret")


def test_recent_is_for_sysadmins_and_pages(cast, make_dataset):
    for i in range(5):
        make_dataset(f"d{i}")
    for who in ("alice", "dave", "anonymous"):
        with pytest.raises(NotAuthorized):
            cast.as_(who).activities.recent()
    everything = cast.as_("root").activities.recent(limit=1000)
    assert everything[0].data["name"] == "d4"
    assert cast.catalog.activities.recent(offset=1, limit=2) == everything[1:3]
    for bad in ({"limit": 0}, {"limit": 1001}, {"offset": -1}, {"limit": "5"}):
        with pytest.raises(ValidationFailed):
            cast.catalog.activities.recent(**bad)


def test_activities_of_users_created_by_themselves(cast):
    root = cast.as_("root")
    zoe = root.users.create(UserInput(name="zoe", email="zoe@example.org", password="long-enough"))
    stream = cast.catalog.activities.for_user("root")
    assert stream[0].activity_type == "user.created"
    assert stream[0].object_id == zoe.id


@pytest.mark.parametrize("who", ["anonymous", "alice"])
def test_user_activities_do_not_reveal_emails(cast, who):
    cast.as_("dave").users.update("dave", UserPatch(fullname="D"))
    stream = cast.as_(who).activities.for_user("dave")
    assert [a.activity_type for a in stream] == ["user.updated"]
    assert "dave@example.org" not in repr([a.data for a in stream])


@pytest.mark.parametrize("call", ["query", "limit", "search", "suggest"])
def test_wrong_argument_types_are_refused_cleanly(cast, make_dataset, call):
    from opencatalog.errors import SearchQueryError

    make_dataset(tags=["water"])
    run = {
        "query": lambda: cast.catalog.tags.counts(query=5),
        "limit": lambda: cast.catalog.tags.counts(limit="x"),
        "search": lambda: cast.catalog.search.datasets(5),
        "suggest": lambda: cast.catalog.search.suggest_datasets(5),
    }[call]
    with pytest.raises((ValidationFailed, SearchQueryError)):
        run()
