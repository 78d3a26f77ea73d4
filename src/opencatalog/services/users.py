"""User accounts and API tokens."""

from __future__ import annotations

import builtins
import hashlib
import secrets
from datetime import datetime, timedelta

import attrs
from attrs import frozen

from opencatalog.domain import rules
from opencatalog.domain.commands import UserInput, UserPatch
from opencatalog.domain.model import ApiToken, State, User
from opencatalog.domain.permissions import Action, Actor
from opencatalog.errors import NotAuthorized, NotFound, ValidationFailed

from ._base import Call, Service, actor_for, require_input
from .datasets import Page, _page_args
from .validation import Errors, email_field, given, name_field, text

__all__ = ["IssuedToken", "TokenService", "UserService", "hash_token"]

TOKEN_PREFIX = "oc_"
#: How stale ``last_used_at`` may get before a use is written down (saves a write per request).
TOKEN_TOUCH_INTERVAL = timedelta(minutes=1)


def hash_token(secret: str) -> str:
    """The stored form of a token secret. Secrets are 256 random bits, so a fast hash suffices."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _check_about(errors: Errors, about: object) -> None:
    text(errors, "about", about, max_length=5_000)
    if isinstance(about, str) and ("http://" in about or "https://" in about):
        errors.add(
            "about",
            "Edit not allowed as it looks like spam. Please avoid links in your description.",
        )


class UserService(Service):
    """Create, read, change and remove user accounts."""

    def _email_free(self, call: Call, email: str, own_id: str | None, errors: Errors) -> None:
        holder = call.uow.users.get_by_email(email.strip())
        if holder is not None and holder.id != own_id and holder.state is not State.DELETED:
            errors.add("email", "The email address is already registered on another account.")

    def create(self, data: UserInput) -> User:
        """Create an account (sysadmins). The password is stored hashed, never returned."""
        with self._call(write=True) as call:
            self._require(call, Action.USER_CREATE, self._policy.base_role(call.actor))
            errors = Errors()
            if not isinstance(data, UserInput):
                raise ValidationFailed({"message": ["Must be a user"]})
            name_field(errors, "name", data.name)
            email_field(errors, "email", data.email, required=True)
            errors.extend("password", rules.password_errors(data.password))
            text(errors, "fullname", data.fullname)
            text(errors, "image_url", data.image_url)
            _check_about(errors, data.about)
            if not isinstance(data.sysadmin, bool):
                errors.add("sysadmin", "Must be true or false")
            if data.id is not None and not rules.is_uuid(data.id):
                errors.add("id", "Must be a UUID")
            if not errors and call.uow.users.get_by_name(data.name) is not None:
                errors.add("name", "The username is already associated with another account.")
            if isinstance(data.email, str) and data.email.strip():
                self._email_free(call, data.email, None, errors)
            errors.raise_if_any()
            user = User(
                id=data.id or call.ctx.new_id(),
                name=data.name,
                email=data.email.strip(),
                fullname=data.fullname,
                about=data.about,
                image_url=data.image_url,
                password_hash=call.ctx.hasher.hash(data.password),
                sysadmin=data.sysadmin,
                created=call.now,
            )
            call.uow.users.add(user)
            call.activity("user", "created", user)
            call.commit()
        return user

    def get(self, id_or_name: str) -> User:
        """The account with this id or name (deleted ones for themselves and sysadmins)."""
        with self._call() as call:
            return self._user(call, id_or_name)

    def can_see_private(self, user: User) -> bool:
        """Whether the actor may see the account's private details (email...)."""
        with self._call() as call:
            role = self._policy.role_for_user(call.actor, user.id)
            return self._policy.allows(call.actor, Action.USER_READ_PRIVATE, role)

    def update(self, id_or_name: str, changes: UserPatch) -> User:
        """Change the given fields of an account (the user themselves, or sysadmins)."""
        require_input(changes, UserPatch, "a user patch")
        with self._call(write=True) as call:
            current = self._user(call, id_or_name, Action.USER_UPDATE)
            errors = Errors()
            values: dict[str, object] = {}
            if given(changes.name) and changes.name != current.name:
                name_field(errors, "name", changes.name)
                if not call.actor.is_sysadmin:
                    errors.add("name", "Only sysadmins may rename accounts")
                elif call.uow.users.get_by_name(str(changes.name)) is not None:
                    errors.add("name", "The username is already associated with another account.")
                values["name"] = changes.name
            if given(changes.email):
                email_field(errors, "email", changes.email, required=True)
                if isinstance(changes.email, str) and changes.email.strip():
                    self._email_free(call, changes.email, current.id, errors)
                    values["email"] = changes.email.strip()
            if given(changes.password):
                errors.extend("password", rules.password_errors(changes.password))
            for field in ("fullname", "image_url"):
                value = getattr(changes, field)
                if given(value):
                    text(errors, field, value)
                    values[field] = value
            if given(changes.about):
                _check_about(errors, changes.about)
                values["about"] = changes.about
            if given(changes.sysadmin) and changes.sysadmin != current.sysadmin:
                if not isinstance(changes.sysadmin, bool):
                    errors.add("sysadmin", "Must be true or false")
                self._require(call, Action.USER_SET_SYSADMIN, self._policy.base_role(call.actor))
                values["sysadmin"] = changes.sysadmin
            errors.raise_if_any()
            if given(changes.password):
                values["password_hash"] = call.ctx.hasher.hash(str(changes.password))
            new = attrs.evolve(current, **values, revision=current.revision + 1)  # type: ignore[arg-type]
            call.uow.users.save(new)
            call.activity("user", "updated", new)
            call.commit()
        return new

    def delete(self, id_or_name: str) -> None:
        """Soft-delete (sysadmins): memberships are removed and every token revoked."""
        with self._call(write=True) as call:
            current = self._user(call, id_or_name, Action.USER_DELETE)
            if current.state is State.DELETED:
                call.commit()
                return
            new = attrs.evolve(current, state=State.DELETED, revision=current.revision + 1)
            call.uow.users.save(new)
            call.uow.memberships.remove_for_user(current.id)
            call.uow.tokens.remove_for_user(current.id)
            call.activity("user", "deleted", new)
            call.commit()

    def restore(self, id_or_name: str) -> User:
        """Reactivate a deleted account (sysadmins). Memberships and tokens are not restored."""
        with self._call(write=True) as call:
            current = self._user(call, id_or_name, Action.USER_DELETE)
            if current.state is State.ACTIVE:
                return current
            new = attrs.evolve(current, state=State.ACTIVE, revision=current.revision + 1)
            call.uow.users.save(new)
            call.activity("user", "restored", new)
            call.commit()
        return new

    def purge(self, id_or_name: str) -> None:
        """Remove an account for good (sysadmins), with its memberships and tokens."""
        with self._call(write=True) as call:
            current = self._user(call, id_or_name, Action.USER_PURGE)
            call.uow.users.remove(current.id)
            call.uow.activities.remove_for_object(current.id)
            call.commit()

    def list(
        self, *, offset: int = 0, limit: int | None = None, include_deleted: bool = False
    ) -> Page:
        """Active accounts by name (deleted ones too for sysadmins)."""
        _page_args(offset, limit)
        with self._call() as call:
            states = frozenset({State.ACTIVE})
            if include_deleted and call.actor.is_sysadmin:
                states = frozenset(State)
            items = call.uow.users.list(states=states, offset=offset, limit=limit)
            total = call.uow.users.count(states=states)
        return Page(items=tuple(items), total=total, offset=offset, limit=limit)

    def find(self, q: str) -> builtins.list[User]:
        """Active accounts whose name or full name contains ``q`` case-insensitively, by name
        (CKAN user_list's ``q``); readable by anyone, as the accounts themselves are."""
        if not isinstance(q, str) or not q.strip():
            raise ValidationFailed({"q": ["Missing value"]})
        with self._call() as call:
            total = call.uow.users.count()
            return call.uow.users.search(q.strip(), limit=max(total, 1))

    def authenticate(self, name_or_email: str, password: str) -> Actor:
        """The actor for a user name (or email) and password; NotAuthorized otherwise."""
        with self._call() as call:
            user = None
            if isinstance(name_or_email, str) and name_or_email:
                user = call.uow.users.get_by_name(name_or_email) or call.uow.users.get_by_email(
                    name_or_email
                )
            ok = (
                user is not None
                and user.state is State.ACTIVE
                and user.password_hash is not None
                and isinstance(password, str)
                and call.ctx.hasher.verify(user.password_hash, password)
            )
            if not ok or user is None:
                raise NotAuthorized("Invalid user name or password")
            return actor_for(call.uow, user)


@frozen(kw_only=True)
class IssuedToken:
    """A newly created API token: ``secret`` is shown this once and never stored."""

    token: ApiToken
    secret: str = attrs.field(repr=False)


class TokenService(Service):
    """API tokens: create (the secret is returned once), list, revoke, authenticate."""

    def create(self, user: str, name: str, *, expires_at: datetime | None = None) -> IssuedToken:
        """A new token for ``user`` (id or name): the user themselves or sysadmins."""
        errors = Errors()
        text(errors, "name", name, required=True, max_length=200)
        if expires_at is not None and (
            not isinstance(expires_at, datetime) or expires_at.tzinfo is None
        ):
            errors.add("expires_at", "Must be a timezone-aware date and time")
        errors.raise_if_any()
        with self._call(write=True) as call:
            owner = self._user(call, user, Action.TOKEN_MANAGE)
            if owner.state is not State.ACTIVE:
                raise ValidationFailed({"user": ["User is not active"]})
            if expires_at is not None and expires_at <= call.now:
                raise ValidationFailed({"expires_at": ["Must be in the future"]})
            secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
            token = ApiToken(
                id=call.ctx.new_id(),
                user_id=owner.id,
                name=name,
                token_hash=hash_token(secret),
                created_at=call.now,
                expires_at=expires_at,
            )
            call.uow.tokens.add(token)
            call.commit()
        return IssuedToken(token=token, secret=secret)

    def list(self, user: str) -> builtins.list[ApiToken]:
        """The user's tokens, oldest first (the user themselves or sysadmins)."""
        with self._call() as call:
            owner = self._user(call, user, Action.TOKEN_MANAGE)
            return call.uow.tokens.list_for_user(owner.id)

    def revoke(self, token_id_or_secret: str) -> None:
        """Revoke a token by its id or its secret (its owner or sysadmins)."""
        if not isinstance(token_id_or_secret, str) or not token_id_or_secret:
            raise ValidationFailed({"token": ["Missing value"]})
        with self._call(write=True) as call:
            token = call.uow.tokens.get(token_id_or_secret) or call.uow.tokens.get_by_hash(
                hash_token(token_id_or_secret)
            )
            if token is None:
                raise NotFound("Token not found")
            self._user(call, token.user_id, Action.TOKEN_MANAGE)
            call.uow.tokens.remove(token.id)
            call.commit()

    def authenticate(self, secret: str) -> Actor | None:
        """The actor a token secret stands for, or None (unknown, expired or revoked token,
        deleted user). Records the use, at most once per :data:`TOKEN_TOUCH_INTERVAL`."""
        if not isinstance(secret, str) or not secret or len(secret) > 512:
            return None
        with self._call() as call:
            token = call.uow.tokens.get_by_hash(hash_token(secret))
            if token is None or token.is_expired(call.now):
                return None
            user = call.uow.users.get(token.user_id)
            if user is None or user.state is not State.ACTIVE:
                return None
            actor = actor_for(call.uow, user)
            stale = (
                token.last_used_at is None or call.now - token.last_used_at > TOKEN_TOUCH_INTERVAL
            )
        if stale:
            with self._ctx.storage.unit_of_work(write=True) as uow:
                uow.tokens.touch(token.id, call.now)
                uow.commit()
        return actor
