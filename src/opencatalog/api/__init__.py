"""The HTTP edge: an ASGI application over a catalog (needs the ``server`` extra).

Only this package imports Starlette; the core never does. See :func:`create_app`.
"""

from __future__ import annotations

from .app import create_app

__all__ = ["create_app"]
