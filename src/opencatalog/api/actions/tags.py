"""Tag, vocabulary and tag autocomplete actions."""

from __future__ import annotations
