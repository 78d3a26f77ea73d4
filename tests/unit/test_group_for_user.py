"""GroupService.for_user: the organizations or groups a user holds a capacity in."""

from __future__ import annotations

import pytest

from opencatalog.domain.model import Capacity
from opencatalog.errors import NotFound


def held(rows):
    return [(row.group.name, row.capacity) for row in rows]


def test_for_user_gives_the_callers_capacities_by_kind(cast):
    assert held(cast.as_("bob").organizations.for_user()) == [("org-a", Capacity.EDITOR)]
    assert held(cast.as_("bob").groups.for_user()) == [("science", Capacity.MEMBER)]
    assert held(cast.as_("dave").organizations.for_user()) == []
    assert cast.as_("anonymous").organizations.for_user() == []


def test_for_user_names_another_user(cast):
    assert held(cast.as_("dave").organizations.for_user("erin")) == [("org-b", Capacity.ADMIN)]
    frank = cast.catalog.users.get("frank")
    assert held(cast.as_("anonymous").organizations.for_user(frank.id)) == [
        ("org-b", Capacity.MEMBER)
    ]
    with pytest.raises(NotFound):
        cast.as_("dave").organizations.for_user("nobody")


def test_sysadmins_hold_admin_everywhere(cast):
    rows = held(cast.as_("root").organizations.for_user())
    assert rows == [("org-a", Capacity.ADMIN), ("org-b", Capacity.ADMIN)]


def test_deleted_groups_are_left_out(cast):
    cast.as_("root").groups.delete("science")
    assert cast.as_("alice").groups.for_user() == []
