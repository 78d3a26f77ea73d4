"""The ``ckan`` fixture: the sample site (``ckan_sample_site.sample_catalog``: users admin,
bob, carol and dave with tokens; org-a, group env, datasets water and secret) served through
Starlette's TestClient, with helpers to call its actions as someone."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import attrs
import pytest
from ckan_sample_site import sample_catalog  # tests/api is on sys.path (no packages)
from starlette.testclient import TestClient  # the test extra has Starlette and httpx2

from opencatalog.api import create_app
from opencatalog.services.catalog import Catalog


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
    catalog, tokens, ids = sample_catalog()
    with TestClient(create_app(catalog, close_catalog=True)) as client:
        yield CkanSite(catalog=catalog, client=client, tokens=tokens, ids=ids)
