"""Activity stream actions."""

from __future__ import annotations
