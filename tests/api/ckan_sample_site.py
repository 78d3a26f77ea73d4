"""The sample CKAN site the API tests share: a fresh in-memory catalog with users, tokens,
an organization, a group and two datasets (see :func:`sample_catalog`)."""

from __future__ import annotations

from opencatalog.bootstrap import open_catalog
from opencatalog.domain.commands import DatasetInput, GroupInput, ResourceInput, UserInput
from opencatalog.services.catalog import Catalog
from opencatalog.testing.stateful import CHEAP_PASSWORD_HASHING


def sample_catalog() -> tuple[Catalog, dict[str, str], dict[str, str]]:
    """The catalog, the API token of each user and the ids of the named objects.

    Users: ``admin`` (sysadmin), ``bob`` (editor of ``org-a``), ``carol`` (member of
    ``org-a``), ``dave`` (no organization). Datasets: ``water`` (public, in ``org-a`` and group
    ``env``, two resources, tags ``water`` and ``ph``), ``secret`` (private, in ``org-a``).
    """
    catalog = open_catalog(
        password_hash_params=dict(CHEAP_PASSWORD_HASHING), run_jobs_in_process=False
    )
    tokens = {}
    for name in ("admin", "bob", "carol", "dave"):
        catalog.users.create(
            UserInput(
                name=name,
                email=f"{name}@example.org",
                password="pw-long-1",
                sysadmin=name == "admin",
            )
        )
        tokens[name] = catalog.tokens.create(name, "test").secret
    org = catalog.organizations.create(GroupInput(name="org-a", title="Org A"))
    group = catalog.groups.create(GroupInput(name="env", title="Environment"))
    catalog.organizations.add_member("org-a", "bob", "editor")
    catalog.organizations.add_member("org-a", "carol", "member")
    water = catalog.datasets.create(
        DatasetInput(
            name="water",
            title="Water quality",
            owner_org="org-a",
            groups=["env"],
            tags=["water", "ph"],
            resources=[
                ResourceInput(url="https://example.org/water.csv", name="readings"),
                ResourceInput(url="https://example.org/water.json", name="stations"),
            ],
        )
    )
    secret = catalog.datasets.create(
        DatasetInput(name="secret", title="Secret plans", owner_org="org-a", private=True)
    )
    ids = {"org-a": org.id, "env": group.id, "water": water.id, "secret": secret.id}
    return catalog, tokens, ids
