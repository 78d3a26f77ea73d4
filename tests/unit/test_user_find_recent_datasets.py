"""UserService.find (user_list's ``q``) and ActivityService.recent_datasets (the public
stream of dataset changes)."""

from __future__ import annotations

import pytest

from opencatalog.domain.commands import GroupPatch, UserPatch
from opencatalog.errors import ValidationFailed
from opencatalog.services import tags as tags_module


def test_find_matches_name_or_fullname_case_insensitively(cast):
    cast.catalog.users.update("frank", UserPatch(fullname="Frank Bobson"))
    found = cast.as_("anonymous").users.find("BO")
    assert [u.name for u in found] == ["bob", "frank"]
    assert cast.as_("dave").users.find("zzz") == []


def test_find_leaves_out_deleted_accounts_and_needs_a_query(cast):
    cast.catalog.users.delete("bob")
    assert [u.name for u in cast.catalog.users.find("bob")] == []
    with pytest.raises(ValidationFailed) as info:
        cast.catalog.users.find("  ")
    assert info.value.errors == {"q": ["Missing value"]}


def test_recent_datasets_hides_private_ones_from_outsiders(cast, make_dataset):
    make_dataset("open-one")
    make_dataset("hidden-one", private=True)
    cast.catalog.organizations.patch("org-a", GroupPatch(title="Renamed"))

    def names(who: str) -> list[str]:
        return [a.data["name"] for a in cast.as_(who).activities.recent_datasets()]

    assert names("anonymous") == ["open-one"]
    assert names("dave") == ["open-one"]
    assert names("carol") == ["hidden-one", "open-one"]
    assert names("root") == ["hidden-one", "open-one"]
    assert all(a.object_type == "dataset" for a in cast.as_("root").activities.recent_datasets())


def test_recent_datasets_pages_across_scan_batches(cast, make_dataset, monkeypatch):
    monkeypatch.setattr(tags_module, "_SCAN_BATCH", 2)
    for i in range(5):
        make_dataset(f"set-{i}")
        make_dataset(f"hide-{i}", private=True)
    stream = cast.as_("dave").activities
    assert [a.data["name"] for a in stream.recent_datasets(limit=3)] == [
        "set-4",
        "set-3",
        "set-2",
    ]
    assert [a.data["name"] for a in stream.recent_datasets(offset=3, limit=5)] == [
        "set-1",
        "set-0",
    ]
    with pytest.raises(ValidationFailed):
        stream.recent_datasets(limit=0)
