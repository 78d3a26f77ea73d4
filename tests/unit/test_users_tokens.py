"""UserService and TokenService: accounts, passwords, soft delete, API tokens."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from opencatalog.domain.commands import DatasetInput, UserInput, UserPatch
from opencatalog.domain.model import Capacity, State
from opencatalog.errors import NotAuthorized, NotFound, ValidationFailed
from opencatalog.ports.storage import DatasetFilter
from opencatalog.testing.stateful import observe, stored_contents


def user_input(name: str = "zoe", **fields: Any) -> UserInput:
    fields.setdefault("email", f"{name}@example.org")
    fields.setdefault("password", "long-enough")
    return UserInput(name=name, **fields)


def refusal(call: Any) -> dict[str, Any] | None:
    """The field errors ``call`` is refused with, or None when it succeeds."""
    try:
        call()
    except ValidationFailed as exc:
        return exc.errors
    return None


def stored_objects(catalog) -> list[Any]:
    """Every object the storage holds, read through the storage port."""
    with catalog._ctx.storage.unit_of_work() as uow:
        users = uow.users.list(states=frozenset(State))
        everything: list[Any] = [*users]
        for user in users:
            everything += uow.tokens.list_for_user(user.id)
            everything += uow.memberships.for_user(user.id)
        everything += uow.datasets.list(DatasetFilter(states=frozenset(State)))
        for is_org in (True, False):
            everything += uow.groups.list(is_organization=is_org, states=frozenset(State))
        everything += uow.vocabularies.list()
        everything += uow.activities.list(limit=100_000)
        everything += uow.outbox.pending(limit=100_000)
    return everything


def dump(objects: list[Any]) -> str:
    """Every field of every object, secrets included, as text."""
    return repr([attrs.asdict(o) for o in objects])


# -- accounts ----------------------------------------------------------------------------------


def test_create_stores_a_hashed_password_and_authenticates(cast):
    user = cast.catalog.users.create(
        user_input(fullname="Zoë Z", about="Hydrologist", email=" Zoe@Example.org ")
    )
    assert (user.name, user.fullname, user.state, user.sysadmin) == (
        "zoe",
        "Zoë Z",
        State.ACTIVE,
        False,
    )
    assert user.email == "Zoe@Example.org"
    assert user.password_hash and user.password_hash != "long-enough"
    assert "long-enough" not in dump(stored_objects(cast.catalog))
    assert "long-enough" not in repr(user)
    assert cast.catalog.users.get("zoe") == user
    assert cast.catalog.users.get(user.id) == user
    for login in ("zoe", "zoe@example.org", "Zoe@Example.org"):
        actor = cast.as_("anonymous").users.authenticate(login, "long-enough")
        assert (actor.user_id, actor.name, actor.sysadmin) == (user.id, "zoe", False)
    types = [a.activity_type for a in cast.catalog.activities.for_user(user.id)]
    assert types == []  # the system created it: the activity is the system's
    created = [a for a in cast.catalog.activities.recent() if a.object_id == user.id]
    assert [a.activity_type for a in created] == ["user.created"]
    assert "password_hash" not in created[0].data


def test_authentication_failures_look_alike(cast):
    anonymous = cast.as_("anonymous").users
    messages = set()
    for login, password in [("alice", "wrong-password"), ("nobody", cast.password), ("", "")]:
        with pytest.raises(NotAuthorized) as exc:
            anonymous.authenticate(login, password)
        messages.add(str(exc.value))
    assert messages == {"Invalid user name or password"}


def test_authenticated_actor_carries_memberships(cast):
    actor = cast.catalog.users.authenticate("bob", cast.password)
    assert actor.memberships == {cast.org.id: Capacity.EDITOR, cast.group.id: Capacity.MEMBER}


def test_create_checks_every_field(cast, snapshot):
    before = snapshot(cast.catalog)
    with pytest.raises(ValidationFailed) as exc:
        cast.catalog.users.create(UserInput(name="", email="", password=""))
    assert exc.value.errors == {
        "name": ["Missing value"],
        "email": ["Missing value"],
        "password": ["Your password must be 8 characters or longer"],
    }
    with pytest.raises(ValidationFailed) as exc:
        cast.catalog.users.create(user_input(about="see https://spam.example"))
    assert list(exc.value.errors) == ["about"]
    with pytest.raises(ValidationFailed) as exc:
        cast.catalog.users.create(user_input("alice", email="fresh@example.org"))
    assert exc.value.errors == {
        "name": ["The username is already associated with another account."]
    }
    with pytest.raises(ValidationFailed) as exc:
        cast.catalog.users.create(user_input(email="ALICE@example.org"))
    assert exc.value.errors == {
        "email": ["The email address is already registered on another account."]
    }
    assert snapshot(cast.catalog) == before


@pytest.mark.parametrize("who", ["alice", "dave", "anonymous"])
def test_only_sysadmins_create_accounts(cast, snapshot, who):
    before = snapshot(cast.catalog)
    with pytest.raises(NotAuthorized):
        cast.as_(who).users.create(user_input())
    assert snapshot(cast.catalog) == before
    assert cast.as_("root").users.create(user_input()).name == "zoe"


def test_whitespace_is_not_an_email(cast):
    assert refusal(lambda: cast.catalog.users.create(user_input(email="   "))) == {
        "email": ["Missing value"]
    }


@pytest.mark.parametrize("value", ["false", "no", 1, [0]])
def test_sysadmin_flag_must_be_a_boolean(cast, value):
    errors = refusal(lambda: cast.catalog.users.create(user_input(sysadmin=value)))
    assert errors is not None and list(errors) == ["sysadmin"]


def test_sysadmins_may_choose_ids_and_make_sysadmins(cast):
    wanted = "12345678-1234-4234-8234-123456789abc"
    user = cast.catalog.users.create(user_input(id=wanted, sysadmin=True))
    assert (user.id, user.sysadmin) == (wanted, True)
    with pytest.raises(ValidationFailed):
        cast.catalog.users.create(user_input("other", id="nope"))


# -- update ----------------------------------------------------------------------------------


def test_users_update_themselves(cast):
    dave = cast.as_("dave")
    updated = dave.users.update("dave", UserPatch(fullname="Dave D", about="hi"))
    assert (updated.fullname, updated.about, updated.display_name) == ("Dave D", "hi", "Dave D")
    assert updated.revision == 2
    assert cast.catalog.users.get("dave") == updated
    dave.users.update("dave", UserPatch(password="new-password"))
    assert cast.catalog.users.authenticate("dave", "new-password").name == "dave"
    with pytest.raises(NotAuthorized):
        cast.catalog.users.authenticate("dave", cast.password)
    assert [a.activity_type for a in dave.activities.for_user("dave")] == ["user.updated"] * 2


def test_users_may_not_update_others_rename_or_promote(cast, snapshot):
    before = snapshot(cast.catalog)
    with pytest.raises(NotAuthorized):
        cast.as_("dave").users.update("alice", UserPatch(fullname="x"))
    with pytest.raises(NotAuthorized):
        cast.as_("dave").users.update("dave", UserPatch(sysadmin=True))
    with pytest.raises(ValidationFailed) as exc:
        cast.as_("dave").users.update("dave", UserPatch(name="david"))
    assert exc.value.errors == {"name": ["Only sysadmins may rename accounts"]}
    with pytest.raises(ValidationFailed):
        cast.as_("dave").users.update("dave", UserPatch(email="alice@example.org"))
    with pytest.raises(ValidationFailed):
        cast.as_("dave").users.update("dave", UserPatch(password="short"))
    assert snapshot(cast.catalog) == before
    renamed = cast.as_("root").users.update("dave", UserPatch(name="david", sysadmin=True))
    assert (renamed.name, renamed.sysadmin) == ("david", True)
    assert cast.as_("david").actor.is_sysadmin


# -- delete, restore, purge ----------------------------------------------------------------


def test_soft_delete_revokes_tokens_and_memberships(cast):
    issued = cast.as_("bob").tokens.create("bob", "laptop")
    assert cast.catalog.tokens.authenticate(issued.secret).name == "bob"
    with pytest.raises(NotAuthorized):
        cast.as_("alice").users.delete("bob")
    cast.as_("root").users.delete("bob")

    assert cast.catalog.tokens.authenticate(issued.secret) is None
    assert cast.catalog.tokens.list("bob") == []
    assert cast.catalog.users.get("bob").state is State.DELETED
    assert "bob" not in [m.user.name for m in cast.catalog.organizations.members("org-a")]
    with pytest.raises(NotFound):
        cast.as_("anonymous").users.get("bob")
    with pytest.raises(NotFound):
        cast.catalog.as_user("bob")
    with pytest.raises(NotAuthorized):
        cast.catalog.users.authenticate("bob", cast.password)
    assert "bob" not in [u.name for u in cast.catalog.users.list().items]
    assert "bob" in [u.name for u in cast.catalog.users.list(include_deleted=True).items]
    assert "bob" not in [u.name for u in cast.as_("dave").users.list(include_deleted=True).items]


def test_restore_brings_the_account_back_without_tokens_or_memberships(cast):
    issued = cast.catalog.tokens.create("bob", "laptop")
    cast.catalog.users.delete("bob")
    restored = cast.catalog.users.restore("bob")
    assert restored.state is State.ACTIVE
    assert cast.catalog.users.authenticate("bob", cast.password).memberships == {}
    assert cast.catalog.tokens.authenticate(issued.secret) is None
    assert cast.catalog.users.restore("bob") == restored  # already active


def test_purge_removes_the_account(cast):
    cast.catalog.tokens.create("dave", "key")
    cast.catalog.users.purge("dave")
    with pytest.raises(NotFound):
        cast.catalog.users.get("dave")
    assert cast.catalog.users.create(user_input("dave")).name == "dave"  # name free again
    assert cast.catalog.tokens.list("dave") == []


# -- tokens ------------------------------------------------------------------------------------


def test_token_secret_is_returned_once_and_stored_hashed(cast):
    issued = cast.as_("dave").tokens.create("dave", "laptop")
    secret = issued.secret
    assert secret.startswith("oc_") and len(secret) > 40
    assert issued.token.user_id == cast.id_of("dave")
    assert secret not in repr(issued)
    with cast.catalog._ctx.storage.unit_of_work() as uow:
        stored = uow.tokens.get(issued.token.id)
    assert stored is not None
    assert stored.token_hash != secret
    assert secret not in stored.token_hash
    assert secret not in dump(stored_objects(cast.catalog))
    listed = cast.as_("dave").tokens.list("dave")
    assert [t.id for t in listed] == [issued.token.id]
    assert secret not in dump(listed)
    assert secret not in repr(observe(cast.catalog))


def test_tokens_authenticate_as_their_user(cast):
    issued = cast.as_("bob").tokens.create("bob", "ci")
    actor = cast.as_("anonymous").tokens.authenticate(issued.secret)
    assert actor is not None
    assert (actor.user_id, actor.memberships[cast.org.id]) == (cast.id_of("bob"), Capacity.EDITOR)
    view = cast.catalog.as_actor(actor)
    created = view.datasets.create(DatasetInput(name="via-token", owner_org="org-a"))
    assert created.creator_user_id == cast.id_of("bob")


@pytest.mark.parametrize("secret", ["", "oc_nope", "x" * 600, None, 5, ["oc_"]])
def test_unknown_or_malformed_secrets_do_not_authenticate(cast, secret):
    cast.catalog.tokens.create("bob", "ci")
    assert cast.catalog.tokens.authenticate(secret) is None


def test_list_oldest_first_and_only_for_the_owner(cast):
    first = cast.as_("dave").tokens.create("dave", "one")
    second = cast.as_("dave").tokens.create("dave", "two")
    assert [t.name for t in cast.as_("dave").tokens.list("dave")] == ["one", "two"]
    assert [t.id for t in cast.as_("root").tokens.list("dave")] == [
        first.token.id,
        second.token.id,
    ]
    for who in ("alice", "anonymous"):
        with pytest.raises(NotAuthorized):
            cast.as_(who).tokens.list("dave")
        with pytest.raises(NotAuthorized):
            cast.as_(who).tokens.create("dave", "theirs")


def test_revoke_by_id_or_secret(cast, snapshot):
    by_id = cast.as_("dave").tokens.create("dave", "one")
    by_secret = cast.as_("dave").tokens.create("dave", "two")
    kept = cast.as_("dave").tokens.create("dave", "three")
    before = snapshot(cast.catalog)
    with pytest.raises(NotAuthorized):
        cast.as_("alice").tokens.revoke(by_id.token.id)
    with pytest.raises(NotAuthorized):
        cast.as_("anonymous").tokens.revoke(by_secret.secret)
    assert snapshot(cast.catalog) == before
    cast.as_("dave").tokens.revoke(by_id.token.id)
    cast.as_("dave").tokens.revoke(by_secret.secret)
    assert [t.name for t in cast.catalog.tokens.list("dave")] == ["three"]
    assert cast.catalog.tokens.authenticate(by_id.secret) is None
    assert cast.catalog.tokens.authenticate(by_secret.secret) is None
    assert cast.catalog.tokens.authenticate(kept.secret) is not None
    with pytest.raises(NotFound):
        cast.as_("dave").tokens.revoke(by_id.token.id)
    with pytest.raises(ValidationFailed):
        cast.as_("dave").tokens.revoke("")


def test_token_create_checks_its_input(cast, clock):
    with pytest.raises(ValidationFailed) as exc:
        cast.catalog.tokens.create("dave", "")
    assert exc.value.errors == {"name": ["Missing value"]}
    with pytest.raises(ValidationFailed) as exc:
        cast.catalog.tokens.create("dave", "k", expires_at=datetime(2030, 1, 1))  # naive
    assert list(exc.value.errors) == ["expires_at"]
    with pytest.raises(ValidationFailed) as exc:
        cast.catalog.tokens.create("dave", "k", expires_at=clock.peek() - timedelta(seconds=5))
    assert exc.value.errors == {"expires_at": ["Must be in the future"]}
    with pytest.raises(NotFound):
        cast.catalog.tokens.create("nobody", "k")
    cast.catalog.users.delete("dave")
    with pytest.raises(ValidationFailed):
        cast.catalog.tokens.create("dave", "k")


def test_tokens_expire(cast, clock):
    issued = cast.as_("dave").tokens.create(
        "dave", "short", expires_at=clock.peek() + timedelta(hours=1)
    )
    assert cast.catalog.tokens.authenticate(issued.secret) is not None
    clock.advance(timedelta(minutes=58))
    assert cast.catalog.tokens.authenticate(issued.secret) is not None
    clock.advance(timedelta(minutes=2))
    assert cast.catalog.tokens.authenticate(issued.secret) is None
    assert issued.token.expires_at.tzinfo is not None


def test_last_use_is_recorded_at_most_once_a_minute(cast, clock):
    issued = cast.as_("dave").tokens.create("dave", "k")
    assert issued.token.last_used_at is None

    def last_used():
        return cast.catalog.tokens.list("dave")[0].last_used_at

    first_use = clock.peek()
    cast.catalog.tokens.authenticate(issued.secret)
    assert last_used() == first_use
    cast.catalog.tokens.authenticate(issued.secret)  # seconds later: not written again
    assert last_used() == first_use
    clock.advance(timedelta(minutes=2))
    later = clock.peek()
    cast.catalog.tokens.authenticate(issued.secret)
    assert last_used() == later


def test_membership_changes_apply_to_existing_tokens(cast):
    issued = cast.catalog.tokens.create("bob", "k")
    cast.catalog.organizations.remove_member("org-a", "bob")
    actor = cast.catalog.tokens.authenticate(issued.secret)
    assert actor is not None and cast.org.id not in actor.memberships


def test_expiry_times_are_compared_in_utc(cast, clock):
    expires = (clock.peek() + timedelta(minutes=30)).astimezone(timezone(timedelta(hours=2)))
    assert expires.utcoffset() == timedelta(hours=2)
    issued = cast.catalog.tokens.create("dave", "k", expires_at=expires)
    assert cast.catalog.tokens.authenticate(issued.secret) is not None
    clock.advance(timedelta(minutes=31))
    assert cast.catalog.tokens.authenticate(issued.secret) is None


# -- bad input everywhere ------------------------------------------------------------------

_WRONG = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=30),
    st.lists(st.text(max_size=10), max_size=3),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
)
_USER_FIELDS = [f.name for f in attrs.fields(UserInput)]


@given(changes=st.dictionaries(st.sampled_from(_USER_FIELDS), _WRONG, min_size=1, max_size=3))
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_bad_input_is_refused_cleanly(cast, changes):
    catalog = cast.catalog
    number = catalog.users.list(include_deleted=True).total
    data = attrs.evolve(user_input(f"user-{number}"), **changes)
    before = stored_contents(catalog)
    try:
        user = catalog.users.create(data)
    except ValidationFailed as exc:
        event("refused")
        assert exc.errors and set(exc.errors) <= {*_USER_FIELDS, "message"}
        for messages in exc.errors.values():
            assert messages and all(isinstance(m, str) for m in messages)
        assert stored_contents(catalog) == before
    else:
        event("accepted")
        assert catalog.users.get(user.id) == user
        assert isinstance(user.name, str) and isinstance(user.email, str)


@given(
    changes=st.dictionaries(
        st.sampled_from([f.name for f in attrs.fields(UserPatch)]), _WRONG, min_size=1
    )
)
@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_bad_input_to_update_is_refused_cleanly(cast, changes):
    catalog = cast.catalog
    before = stored_contents(catalog)
    try:
        user = catalog.as_user("dave").users.update("dave", UserPatch(**changes))
    except (ValidationFailed, NotAuthorized) as exc:
        event(type(exc).__name__)
        assert stored_contents(catalog) == before
    else:
        event("accepted")
        assert catalog.users.get(user.id) == user


@pytest.mark.parametrize("data", [None, {"name": "x"}, "zoe"])
def test_something_that_is_not_a_user_input(cast, data):
    with pytest.raises(ValidationFailed) as exc:
        cast.catalog.users.create(data)
    assert exc.value.errors == {"message": ["Must be a user"]}


def test_an_email_reused_after_a_deletion_stays_unique(cast):
    cast.catalog.users.create(user_input("anna", email="x@example.org"))
    cast.catalog.users.delete("anna")
    cast.catalog.users.create(user_input("bert", email="x@example.org"))
    errors = refusal(lambda: cast.catalog.users.create(user_input("carl", email="X@example.org")))
    assert errors == {"email": ["The email address is already registered on another account."]}


def test_login_by_email_finds_the_active_account(cast):
    cast.catalog.users.create(user_input("anna", email="x@example.org", password="password-a"))
    cast.catalog.users.delete("anna")
    cast.catalog.users.create(user_input("bert", email="x@example.org", password="password-b"))
    assert cast.catalog.users.authenticate("x@example.org", "password-b").name == "bert"


def test_update_with_something_that_is_not_a_patch(cast):
    with pytest.raises(ValidationFailed):
        cast.catalog.users.update("dave", None)  # type: ignore[arg-type]
