"""The registry of actions: name to function, and whether GET may call it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from attrs import frozen

from opencatalog.services.catalog import Catalog

from .params import Params

__all__ = ["ACTIONS", "Action", "ActionFunction", "action"]

ActionFunction = Callable[[Catalog, Params], Any]


@frozen
class Action:
    """One action: its CKAN ``name``, the function, and ``get`` (free of side effects, so
    GET requests may call it too; every action takes POST)."""

    name: str
    function: ActionFunction
    get: bool = False


ACTIONS: dict[str, Action] = {}
"""Every registered action by name."""


def action(name: str, *, get: bool = False) -> Callable[[ActionFunction], ActionFunction]:
    """Register the decorated function as the action ``name``."""

    def register(function: ActionFunction) -> ActionFunction:
        if name in ACTIONS:
            raise ValueError(f"action {name} registered twice")
        ACTIONS[name] = Action(name=name, function=function, get=get)
        return function

    return register
