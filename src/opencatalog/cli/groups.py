"""``org`` and ``group``: organizations and groups, built by one factory."""

from __future__ import annotations

from typing import Any

import click

from opencatalog.domain.commands import GroupInput
from opencatalog.domain.model import Capacity, Group
from opencatalog.serialization import group_to_dict
from opencatalog.services.groups import GroupService

from ._common import CliState, CommandGroup, emit, emit_list, jsonl_option, message, pass_state

__all__ = ["group", "make_group_command", "org"]

ROLES = click.Choice([c.value for c in Capacity], case_sensitive=False)


def _service(state: CliState, organizations: bool) -> GroupService:
    catalog = state.open()
    return catalog.organizations if organizations else catalog.groups


def _with_count(data: dict[str, Any], counts: dict[str, int]) -> dict[str, Any]:
    return {**data, "package_count": counts.get(data["id"], 0)}


def make_group_command(*, organizations: bool) -> click.Group:
    """The ``org`` (``organizations=True``) or ``group`` command group."""
    kind = "organization" if organizations else "group"
    upper = "ORG" if organizations else "GROUP"

    @click.group(
        name="org" if organizations else "group",
        cls=CommandGroup,
        help=f"Create, list and show {kind}s and manage their members.",
    )
    def command() -> None:
        pass

    @command.command("create", help=f"Create the {kind} NAME and show it (JSON).")
    @click.argument("name")
    @click.option("--title", help="A human-readable title.")
    @click.option("--description", help="A longer description.")
    @click.option("--image-url", help="The address of a logo or picture.")
    @pass_state
    def create(
        state: CliState,
        name: str,
        title: str | None,
        description: str | None,
        image_url: str | None,
    ) -> None:
        service = _service(state, organizations)
        created: Group = service.create(
            GroupInput(name=name, title=title, description=description, image_url=image_url)
        )
        emit(_with_count(group_to_dict(created), {}))
        message(f"Created {kind} {created.name}")

    @command.command("show", help=f"Show the {kind} {upper} (id or name) with its members.")
    @click.argument("ref", metavar=upper)
    @pass_state
    def show(state: CliState, ref: str) -> None:
        service = _service(state, organizations)
        found = service.get(ref)
        data = _with_count(group_to_dict(found), service.dataset_counts())
        data["users"] = [
            {"id": m.user.id, "name": m.user.name, "capacity": m.capacity.value}
            for m in service.members(found.id)
        ]
        emit(data)

    @command.command("list", help=f"List the {kind}s by name (JSON).")
    @jsonl_option
    @pass_state
    def list_(state: CliState, jsonl: bool) -> None:
        service = _service(state, organizations)
        counts = service.dataset_counts()
        items = service.list().items
        emit_list((_with_count(group_to_dict(g), counts) for g in items), jsonl=jsonl)

    @command.command("member-add", help=f"Give USER a role in the {kind} {upper} (or change it).")
    @click.argument("ref", metavar=upper)
    @click.argument("user")
    @click.option(
        "--role", type=ROLES, default=Capacity.MEMBER.value, show_default=True, help="The role."
    )
    @pass_state
    def member_add(state: CliState, ref: str, user: str, role: str) -> None:
        membership = _service(state, organizations).add_member(ref, user, role.lower())
        emit(
            {
                "group_id": membership.group_id,
                "user_id": membership.user_id,
                "capacity": membership.capacity.value,
            }
        )
        message(f"{user} is now {membership.capacity.value} of {kind} {ref}")

    @command.command("member-remove", help=f"Take USER out of the {kind} {upper}.")
    @click.argument("ref", metavar=upper)
    @click.argument("user")
    @pass_state
    def member_remove(state: CliState, ref: str, user: str) -> None:
        _service(state, organizations).remove_member(ref, user)
        message(f"Removed {user} from {kind} {ref}")

    return command


org = make_group_command(organizations=True)
group = make_group_command(organizations=False)
