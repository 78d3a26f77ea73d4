"""Dataset and resource write actions, and resource_search."""

from __future__ import annotations
