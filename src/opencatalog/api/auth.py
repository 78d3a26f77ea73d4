"""Who is calling: API tokens from request headers.

A request carries its API token in one of (first found wins):

* ``Authorization: Bearer <token>``;
* ``Authorization: <token>`` (the raw token, as CKAN clients send it);
* ``X-CKAN-API-Key: <token>``.

The token is resolved through the catalog's token service (stored hashed; expired, revoked
or deleted-user tokens resolve to nothing). No token means an anonymous caller. A token that
does not resolve is refused (``NotAuthorized``, 403) rather than silently downgraded, so a
client with a stale token notices.
"""

from __future__ import annotations

from collections.abc import Mapping

from opencatalog.errors import NotAuthorized
from opencatalog.services.catalog import Catalog

__all__ = ["catalog_for", "token_from_headers"]


def token_from_headers(headers: Mapping[str, str]) -> str | None:
    """The API token a request carries, or None."""
    value = (headers.get("authorization") or "").strip()
    if value:
        scheme, _, rest = value.partition(" ")
        if scheme.lower() == "bearer":
            return rest.strip() or None
        return value
    value = (headers.get("x-ckan-api-key") or "").strip()
    return value or None


def catalog_for(catalog: Catalog, headers: Mapping[str, str]) -> Catalog:
    """A view of ``catalog`` acting for the caller the headers identify (blocking: call it
    from a worker thread)."""
    token = token_from_headers(headers)
    if token is None:
        return catalog.anonymous()
    actor = catalog.tokens.authenticate(token)
    if actor is None:
        raise NotAuthorized("Invalid API token")
    return catalog.as_actor(actor)
