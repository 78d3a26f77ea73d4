"""Activity snapshots: the fast dataset form equals the generic one, and holds no secrets."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from opencatalog.domain.model import Dataset, Resource, State, Tag, User, _plain, snapshot

NOW = datetime(2026, 1, 2, 3, 4, 5, 6789, tzinfo=UTC)
text = st.text(max_size=20)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)


@st.composite
def datasets(draw: st.DrawFn) -> Dataset:
    resources = tuple(
        Resource(
            id=f"r{i}",
            package_id="d",
            url=draw(text),
            format=draw(st.none() | text),
            size=draw(st.none() | st.integers(min_value=0)),
            position=i,
            created=NOW,
            last_modified=draw(st.none() | st.just(NOW)),
            metadata_modified=NOW,
            extras=draw(st.dictionaries(text, json_values, max_size=3)),
        )
        for i in range(draw(st.integers(0, 3)))
    )
    return Dataset(
        id="d",
        name=draw(text),
        title=draw(st.none() | text),
        private=draw(st.booleans()),
        state=draw(st.sampled_from(State)),
        tags=[
            Tag(name=n, vocabulary_id=draw(st.none() | text))
            for n in draw(st.lists(text, max_size=3))
        ],
        extras=draw(st.dictionaries(text, text, max_size=3)),
        groups=draw(st.lists(text, max_size=2)),
        resources=resources,
        metadata_created=NOW,
        metadata_modified=NOW,
    )


@given(datasets())
def test_dataset_snapshot_equals_the_generic_form(ds: Dataset) -> None:
    fast = snapshot(ds)
    assert fast == _plain(ds)
    json.dumps(fast)  # JSON-ready


def test_user_snapshot_leaves_out_the_password_hash() -> None:
    user = User(id="u", name="alice", password_hash="$argon2id$secret", created=NOW)
    data = snapshot(user)
    assert "password_hash" not in data
    assert "secret" not in json.dumps(data)
    assert data["created"] == NOW.isoformat()
