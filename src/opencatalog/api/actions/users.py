"""User, API token and user autocomplete actions."""

from __future__ import annotations
