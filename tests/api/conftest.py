"""A small CKAN site for the Action API tests: an in-memory catalog served through Starlette's
TestClient, with users, tokens, an organization, a group and a few datasets.

Users: ``admin`` (sysadmin), ``bob`` (editor of ``org-a``), ``carol`` (member of ``org-a``),
``dave`` (no organization). Datasets: ``water`` (public, in ``org-a`` and group ``env``, two
resources, tags ``water`` and ``ph``), ``secret`` (private, in ``org-a``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import attrs
import pytest
from starlette.testclient import TestClient  # the test extra has Starlette and httpx2

from opencatalog.api import create_app
from opencatalog.bootstrap import open_catalog
from opencatalog.domain.commands import DatasetInput, GroupInput, ResourceInput, UserInput
from opencatalog.services.catalog import Catalog
from opencatalog.testing.stateful import CHEAP_PASSWORD_HASHING


@attrs.define
class CkanSite:
    """The site and a way to call its actions as someone."""

    catalog: Catalog
    client: Any
    tokens: dict[str, str]
    ids: dict[str, str]

    def headers(self, who: str | None) -> dict[str, str]:
        """CKAN clients send the raw token in ``Authorization``."""
        return {} if who is None else {"Authorization": self.tokens[who]}

    def post(self, name: str, data: Mapping[str, Any] | None = None, *, who: str | None = None):
        """POST a JSON object to ``/api/3/action/<name>``; returns the response."""
        return self.client.post(
            f"/api/3/action/{name}", json=dict(data or {}), headers=self.headers(who)
        )

    def get(self, name: str, params: Any = None, *, who: str | None = None):
        return self.client.get(
            f"/api/3/action/{name}", params=params or {}, headers=self.headers(who)
        )

    def result(self, name: str, data: Mapping[str, Any] | None = None, *, who: str | None = None):
        """The ``result`` of a call that must succeed."""
        response = self.post(name, data, who=who)
        body = response.json()
        assert response.status_code == 200 and body["success"] is True, (
            response.status_code,
            body,
        )
        return body["result"]

    def error(
        self,
        name: str,
        data: Mapping[str, Any] | None = None,
        *,
        who: str | None = None,
        status: int,
    ) -> dict[str, Any]:
        """The ``error`` object of a call that must fail with ``status``."""
        response = self.post(name, data, who=who)
        body = response.json()
        assert response.status_code == status, (response.status_code, body)
        assert body["success"] is False
        return body["error"]


@pytest.fixture
def ckan() -> Iterator[CkanSite]:
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
    with TestClient(create_app(catalog, close_catalog=True)) as client:
        yield CkanSite(catalog=catalog, client=client, tokens=tokens, ids=ids)
