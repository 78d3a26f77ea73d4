"""Fixtures for the service tests: catalogs per storage backend, a cast of users, two
organizations with a member of every capacity, a group, and input factories.

The cast (every password is ``PASSWORD``):

========  ==============================================================
alice     admin of ``org-a``, admin of the group ``science``
bob       editor of ``org-a``, member of ``science``
carol     member of ``org-a``
dave      logged in, no role anywhere
erin      admin of ``org-b``
frank     member of ``org-b``
root      sysadmin
========  ==============================================================
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from opencatalog.bootstrap import open_catalog
from opencatalog.domain.commands import DatasetInput, GroupInput, UserInput, UserPatch
from opencatalog.domain.model import Group, User
from opencatalog.services.catalog import Catalog
from opencatalog.testing.stateful import (
    CHEAP_PASSWORD_HASHING,
    SteppingClock,
    make_deterministic,
    stored_contents,
)

#: Storage backends every service test runs on (each passes the storage conformance kit).
BACKENDS = ["memory", "sqlite"]

PASSWORD = "correct-horse"

CAST = {
    "alice": ("org-a", "admin"),
    "bob": ("org-a", "editor"),
    "carol": ("org-a", "member"),
    "dave": (None, None),
    "erin": ("org-b", "admin"),
    "frank": ("org-b", "member"),
}


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


CatalogFactory = Callable[..., Catalog]


@pytest.fixture
def make_catalog(backend: str, tmp_path: Path) -> Iterator[CatalogFactory]:
    """A factory of new, empty catalogs on the backend under test, acting as the system.

    Each catalog has its own :class:`SteppingClock` (``catalog._ctx.clock``): every reading
    is one second after the one before, so timestamps are distinct and ordered. Keyword
    arguments are settings (``create_unowned_dataset=True``...); ``database`` places a
    SQLite catalog's file (memory catalogs ignore it).
    """
    opened: list[Catalog] = []

    def make(*, database: Path | None = None, **settings: Any) -> Catalog:
        location = None
        if backend == "sqlite":
            path = database or tmp_path / f"catalog{len(opened)}.db"
            location = "sqlite:///" + str(path)
        catalog = open_catalog(
            location, password_hash_params=dict(CHEAP_PASSWORD_HASHING), **settings
        )
        opened.append(catalog)
        return make_deterministic(catalog, clock=SteppingClock(), new_id=catalog._ctx.new_id)

    yield make
    for catalog in opened:
        catalog.close()


@pytest.fixture
def catalog(make_catalog: CatalogFactory) -> Catalog:
    """An empty catalog acting as the system actor."""
    return make_catalog()


@pytest.fixture
def clock(catalog: Catalog) -> SteppingClock:
    """The clock of ``catalog``."""
    clk = catalog._ctx.clock
    assert isinstance(clk, SteppingClock)
    return clk


@attrs.define
class Cast:
    """A populated catalog: the users above, ``org-a``, ``org-b`` and the group ``science``."""

    catalog: Catalog
    users: dict[str, User]
    org: Group
    other_org: Group
    group: Group
    password: str = PASSWORD

    def as_(self, who: str) -> Catalog:
        """The catalog acting for a user name, ``"anonymous"`` or ``"system"``."""
        if who == "system":
            return self.catalog
        if who == "anonymous":
            return self.catalog.anonymous()
        return self.catalog.as_user(who)

    def id_of(self, who: str) -> str:
        return self.users[who].id


def _populate(catalog: Catalog) -> Cast:
    """Create the cast in ``catalog`` (acting as the system)."""
    users = {
        name: catalog.users.create(
            UserInput(name=name, email=f"{name}@example.org", password=PASSWORD)
        )
        for name in (*CAST, "root")
    }
    users["root"] = catalog.users.update("root", UserPatch(sysadmin=True))
    org = catalog.organizations.create(GroupInput(name="org-a", title="Org A"))
    other = catalog.organizations.create(GroupInput(name="org-b", title="Org B"))
    for name, (org_name, capacity) in CAST.items():
        if org_name is not None:
            catalog.organizations.add_member(org_name, name, capacity)
    group = catalog.groups.create(GroupInput(name="science", title="Science"))
    catalog.groups.add_member("science", "alice", "admin")
    catalog.groups.add_member("science", "bob", "member")
    return Cast(catalog=catalog, users=users, org=org, other_org=other, group=group)


@pytest.fixture
def cast(catalog: Catalog) -> Cast:
    return _populate(catalog)


@pytest.fixture
def populate() -> Callable[[Catalog], Cast]:
    """The function that fills a catalog with the cast (for catalogs with other settings)."""
    return _populate


@pytest.fixture
def snapshot() -> Callable[[Catalog], dict[str, Any]]:
    """Everything a catalog holds, as plain data (compare before and after a refused call)."""
    return stored_contents


# -- factories ---------------------------------------------------------------------------


@pytest.fixture
def make_dataset(cast: Cast) -> Callable[..., Any]:
    """Create a dataset (in ``org-a`` unless told otherwise) as the system, or as the user
    named by ``as_``."""

    def make(name: str = "water-quality", *, as_: str = "system", **fields: Any) -> Any:
        fields.setdefault("owner_org", "org-a")
        return cast.as_(as_).datasets.create(DatasetInput(name=name, **fields))

    return make
