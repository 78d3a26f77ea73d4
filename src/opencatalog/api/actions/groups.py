"""Organization, group and membership actions."""

from __future__ import annotations
