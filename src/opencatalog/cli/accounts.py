"""``user`` and ``token``: accounts and API tokens, managed as the local administrator."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

import click

from opencatalog.domain.commands import UserInput
from opencatalog.serialization import token_to_dict, user_to_dict

from ._common import CliState, CommandGroup, emit, emit_list, jsonl_option, message, pass_state

__all__ = ["token", "user"]


@click.group(cls=CommandGroup)
def user() -> None:
    """Create, list, show and delete user accounts."""


def _read_password(password: str | None, from_stdin: bool) -> str:
    if password is not None and from_stdin:
        raise click.UsageError("Give --password or --password-stdin, not both")
    if from_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    if password is not None:
        return password
    value: str = click.prompt(
        "Password", hide_input=True, confirmation_prompt=True, err=True, type=str
    )
    return value


@user.command("create")
@click.argument("name")
@click.option("--email", required=True, help="The account's email address.")
@click.option(
    "--password",
    help="The password (prompted for, hidden, when neither this nor --password-stdin is given).",
)
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)
@click.option("--sysadmin", is_flag=True, help="Make the account a sysadmin.")
@click.option("--fullname", help="The person's full name.")
@pass_state
def user_create(
    state: CliState,
    name: str,
    email: str,
    password: str | None,
    password_stdin: bool,
    sysadmin: bool,
    fullname: str | None,
) -> None:
    """Create the account NAME and show it (JSON)."""
    catalog = state.open()
    secret = _read_password(password, password_stdin)
    created = catalog.users.create(
        UserInput(name=name, email=email, password=secret, fullname=fullname, sysadmin=sysadmin)
    )
    emit(user_to_dict(created, private=True))
    message(f"Created user {created.name}" + (" (sysadmin)" if created.sysadmin else ""))


@user.command("list")
@click.option("--include-deleted", is_flag=True, help="List deleted accounts too.")
@jsonl_option
@pass_state
def user_list(state: CliState, include_deleted: bool, jsonl: bool) -> None:
    """List the accounts by name (JSON)."""
    catalog = state.open()
    page = catalog.users.list(include_deleted=include_deleted)
    emit_list((user_to_dict(u, private=True) for u in page.items), jsonl=jsonl)


@user.command("show")
@click.argument("name")
@pass_state
def user_show(state: CliState, name: str) -> None:
    """Show the account NAME (id or name), email included (JSON)."""
    emit(user_to_dict(state.open().users.get(name), private=True))


@user.command("delete")
@click.argument("name")
@pass_state
def user_delete(state: CliState, name: str) -> None:
    """Delete the account NAME: its memberships and API tokens go with it."""
    state.open().users.delete(name)
    message(f"Deleted user {name}")


@click.group(cls=CommandGroup)
def token() -> None:
    """Create, list and revoke API tokens."""


@token.command("create")
@click.argument("user_ref", metavar="USER")
@click.argument("name")
@click.option(
    "--expires-in-days",
    type=click.IntRange(min=1),
    help="Let the token expire after this many days (default: never).",
)
@pass_state
def token_create(state: CliState, user_ref: str, name: str, expires_in_days: int | None) -> None:
    """Create an API token NAME for USER and print its secret.

    The secret is printed once, on stdout, and never stored: keep it now.
    """
    catalog = state.open()
    expires_at = None
    if expires_in_days is not None:
        expires_at = datetime.now(UTC) + timedelta(days=expires_in_days)
    issued = catalog.tokens.create(user_ref, name, expires_at=expires_at)
    click.echo(issued.secret)
    message(
        f"Created token {issued.token.id} ({name}) for {user_ref}; "
        "the secret above is not shown again"
    )


@token.command("list")
@click.argument("user_ref", metavar="USER")
@jsonl_option
@pass_state
def token_list(state: CliState, user_ref: str, jsonl: bool) -> None:
    """List USER's tokens, oldest first (JSON; secrets are never shown)."""
    tokens = state.open().tokens.list(user_ref)
    emit_list((token_to_dict(t) for t in tokens), jsonl=jsonl)


@token.command("revoke")
@click.argument("token_id", metavar="ID")
@pass_state
def token_revoke(state: CliState, token_id: str) -> None:
    """Revoke the token with this ID (or this secret)."""
    state.open().tokens.revoke(token_id)
    message("Revoked the token")
