"""The canonical JSON form: dict shapes, CKAN-shaped inputs, field errors, round trips."""

from __future__ import annotations

import contextlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import attrs
import cattrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import opencatalog
from opencatalog import (
    Catalog,
    Dataset,
    DatasetInput,
    GroupInput,
    OpenCatalogError,
    Resource,
    ResourceInput,
    State,
    Tag,
    UserInput,
    ValidationFailed,
)
from opencatalog.domain import rules
from opencatalog.serialization import (
    RESOURCE_IGNORED_KEYS,
    activity_to_dict,
    dataset_input_from_dict,
    dataset_to_dict,
    group_input_from_dict,
    group_to_dict,
    make_converter,
    resource_input_from_dict,
    resource_to_dict,
    token_to_dict,
    user_input_from_dict,
    user_to_dict,
)
from opencatalog.services.validation import DATASET_CORE_FIELDS

T0 = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
DS_ID = "11111111-2222-4333-8444-555555555555"
RES_ID = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"


def _catalog() -> Catalog:
    return opencatalog.open_catalog(password_hash_params={"time_cost": 1, "memory_cost": 8})


def _resource(**changes: Any) -> Resource:
    values: dict[str, Any] = {
        "id": RES_ID,
        "package_id": DS_ID,
        "url": "http://example.org/data.csv",
        "format": "CSV",
        "size": 10,
        "created": T0,
        "metadata_modified": T0,
        "extras": {"cache_url": "c", "datastore_active": True, "layers": [1, 2]},
    }
    values.update(changes)
    return Resource(**values)


def _dataset(**changes: Any) -> Dataset:
    values: dict[str, Any] = {
        "id": DS_ID,
        "name": "water",
        "title": "Water",
        "license_id": "cc-by",
        "owner_org": "org-id",
        "tags": [Tag(name="rivers"), Tag(name="blue", vocabulary_id="colours-id")],
        "extras": {"zeta": "1", "alpha": "2"},
        "groups": ["g1", "g2"],
        "resources": [_resource()],
        "metadata_created": T0,
        "metadata_modified": T0,
    }
    values.update(changes)
    return Dataset(**values)


# ---------------------------------------------------------------------------------------------
# The converter
# ---------------------------------------------------------------------------------------------


def test_make_converter_gives_a_new_private_converter_each_time() -> None:
    first, second = make_converter(), make_converter()
    assert first is not second
    assert first is not cattrs.global_converter
    assert first.unstructure(T0) == "2024-05-06T07:08:09.123456+00:00"
    assert first.unstructure(State.DRAFT) == "draft"
    assert first.unstructure(Tag(name="x")) == {"name": "x", "vocabulary_id": None}


def test_naive_and_offset_datetimes_are_read_as_utc() -> None:
    conv = make_converter()
    assert conv.structure("2024-05-06T07:08:09", datetime) == datetime(
        2024, 5, 6, 7, 8, 9, tzinfo=UTC
    )
    assert conv.structure("2024-05-06T09:08:09+02:00", datetime) == datetime(
        2024, 5, 6, 7, 8, 9, tzinfo=UTC
    )
    assert conv.structure("2024-05-06T07:08:09Z", datetime).tzinfo is UTC


# ---------------------------------------------------------------------------------------------
# Dicts out
# ---------------------------------------------------------------------------------------------


def test_dataset_dict_has_the_package_show_shape() -> None:
    out = dataset_to_dict(_dataset())
    assert json.loads(json.dumps(out)) == out  # JSON-ready
    assert out["id"] == DS_ID and out["name"] == "water" and out["state"] == "active"
    assert out["tags"] == [
        {"name": "rivers", "vocabulary_id": None},
        {"name": "blue", "vocabulary_id": "colours-id"},
    ]
    assert out["extras"] == [{"key": "alpha", "value": "2"}, {"key": "zeta", "value": "1"}]
    assert out["groups"] == ["g1", "g2"]
    assert out["num_resources"] == 1 and out["num_tags"] == 2
    assert out["license_title"] == "Creative Commons Attribution"
    assert out["isopen"] is True
    assert out["metadata_created"] == "2024-05-06T07:08:09.123456+00:00"
    assert "revision" not in out and "organization" not in out


def test_dataset_dict_spells_out_organization_and_groups_when_given() -> None:
    org = opencatalog.Group(
        id="org-id", name="org", title="The Org", is_organization=True, created=T0
    )
    grp = opencatalog.Group(id="g1", name="group-one", is_organization=False, created=T0)
    out = dataset_to_dict(_dataset(groups=["g1"]), organization=org, groups=[grp])
    assert out["organization"]["name"] == "org"
    assert out["organization"]["display_name"] == "The Org"
    assert out["groups"] == [
        {
            "id": "g1",
            "name": "group-one",
            "title": None,
            "display_name": "group-one",
            "description": None,
            "image_url": None,
        }
    ]


def test_unknown_license_shows_its_id_as_title_and_is_not_open() -> None:
    out = dataset_to_dict(_dataset(license_id="my-licence"))
    assert out["license_title"] == "my-licence" and out["isopen"] is False
    assert "license_title" not in dataset_to_dict(_dataset(license_id=None))


def test_resource_dict_flattens_extras_and_never_lets_them_hide_a_field() -> None:
    res = _resource(extras={"cache_url": "c", "size": 999, "format": "XML"})
    out = resource_to_dict(res)
    assert out["cache_url"] == "c"
    assert out["size"] == 10 and out["format"] == "CSV"
    assert "extras" not in out
    assert out["created"] == "2024-05-06T07:08:09.123456+00:00"


def test_user_dict_never_has_the_password_hash_and_email_only_when_private() -> None:
    user = opencatalog.User(
        id="u1", name="ann", email="ann@example.org", password_hash="$argon2$secret", created=T0
    )
    public = user_to_dict(user, private=False)
    private = user_to_dict(user, private=True)
    assert "email" not in public
    assert private["email"] == "ann@example.org"
    for out in (public, private):
        assert "password_hash" not in out
        assert "$argon2$secret" not in json.dumps(out)
        assert out["state"] == "active" and out["display_name"] == "ann"


def test_token_dict_never_has_the_hash() -> None:
    token = opencatalog.ApiToken(
        id="t1", user_id="u1", name="ci", token_hash="deadbeef", created_at=T0
    )
    out = token_to_dict(token)
    assert out == {
        "id": "t1",
        "user_id": "u1",
        "name": "ci",
        "created_at": "2024-05-06T07:08:09.123456+00:00",
        "expires_at": None,
        "last_used_at": None,
    }


def test_group_and_activity_dicts() -> None:
    group = opencatalog.Group(
        id="g", name="grp", is_organization=False, extras={"b": "2", "a": "1"}, created=T0
    )
    out = group_to_dict(group)
    assert out["extras"] == [{"key": "a", "value": "1"}, {"key": "b", "value": "2"}]
    assert out["state"] == "active" and out["is_organization"] is False
    cat = _catalog()
    cat.datasets.create(DatasetInput(name="act"))
    [activity] = cat.activities.for_dataset("act")
    data = activity_to_dict(activity)
    assert json.loads(json.dumps(data)) == data
    assert data["activity_type"] == "dataset.created"
    assert data["data"]["name"] == "act"
    assert "permission_labels" not in data


# ---------------------------------------------------------------------------------------------
# Inputs in
# ---------------------------------------------------------------------------------------------


def test_dataset_input_accepts_the_ckan_shapes() -> None:
    inp = dataset_input_from_dict(
        {
            "id": DS_ID,
            "name": "water",
            "owner_org": "org",
            "private": "true",
            "tags": [{"name": "rivers", "display_name": "rivers", "id": "x"}, "lakes"],
            "tag_string": "sea, ocean,",
            "extras": [
                {"key": "rating", "value": 1.5},
                {"key": "spatial", "value": {"type": "Point"}},
                {"key": "old", "value": "x", "deleted": True},
            ],
            "groups": [{"name": "g-name"}, {"id": "g-id", "name": "ignored"}, "g3"],
            "resources": [
                {
                    "url": "http://x/a.csv",
                    "size": "12",
                    "last_modified": "2024-01-01T00:00:00",
                    "position": 7,
                    "package_id": "other",
                    "datastore_active": False,
                }
            ],
            "metadata_created": "ignored",
            "num_resources": 1,
            "organization": {"name": "org"},
            "unknown_key": [1],
        }
    )
    assert inp.id == DS_ID and inp.private is True and inp.owner_org == "org"
    assert [t.name for t in inp.tags] == ["rivers", "lakes", "sea", "ocean"]
    assert inp.extras == {"rating": "1.5", "spatial": '{"type": "Point"}'}
    assert inp.groups == ("g-name", "g-id", "g3")
    assert inp.resources == (
        ResourceInput(
            url="http://x/a.csv",
            size=12,
            last_modified=datetime(2024, 1, 1, tzinfo=UTC),
            extras={"datastore_active": False},
        ),
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), ("true", True), ("False", False), (None, False), (0, False)],
)
def test_private_accepts_booleans_and_their_text(value: Any, expected: bool) -> None:
    assert dataset_input_from_dict({"name": "x1", "private": value}).private is expected


def test_extras_as_a_mapping_and_omitted_collections() -> None:
    inp = dataset_input_from_dict({"name": "x1", "extras": {"a": "1", "b": 2, "c": True}})
    assert inp.extras == {"a": "1", "b": "2", "c": "true"}
    bare = dataset_input_from_dict({"name": "x1"})
    assert bare.tags == () and bare.extras == {}
    assert bare.groups is None and bare.resources is None  # omitted: kept on update


@pytest.mark.parametrize(
    ("data", "errors"),
    [
        ({"name": "x1", "tags": "a,b"}, {"tags": ["Must be a list of tags"]}),
        ({"name": "x1", "tags": [{"name": 5}]}, {"tags": ["Tags must be strings"]}),
        (
            {"name": "x1", "tag_string": 5},
            {"tag_string": ["Must be a comma-separated string of tags"]},
        ),
        ({"name": "x1", "extras": "a=b"}, {"extras": ["Must be a list of {key, value} objects"]}),
        (
            {"name": "x1", "extras": [{"key": "a", "value": "1"}, {"key": "a", "value": "2"}]},
            {"extras": ['There is a duplicate key "a"']},
        ),
        ({"name": "x1", "extras": {"a": None}}, {"extras": ["a: Missing value"]}),
        ({"name": "x1", "groups": "g"}, {"groups": ["Must be a list of groups"]}),
        (
            {"name": "x1", "groups": [{"title": "no ref"}]},
            {"groups": ["Must be a list of group ids or names"]},
        ),
        ({"name": "x1", "private": "maybe"}, {"private": ["Must be true or false"]}),
        ({"name": "x1", "state": "gone"}, {"state": ["Must be one of: active, draft, deleted"]}),
        ({"name": ["x1"]}, {"name": ["Must be a string"]}),
        ({"title": "no name"}, {"name": ["Missing value"]}),
        ({"name": "x1", "resources": {"url": "u"}}, {"resources": ["Must be a list of resources"]}),
        (
            {"name": "x1", "resources": [{"url": "u"}, {"size": "big"}, {"size": 1.5}, "r"]},
            {
                "resources": [
                    {},
                    {"size": ["Invalid integer"]},
                    {"size": ["Invalid integer"]},
                    {"message": ["Must be a resource object"]},
                ]
            },
        ),
        (
            {"name": "x1", "resources": [{"last_modified": "yesterday", "url": []}]},
            {
                "resources": [
                    {"url": ["Must be a string"], "last_modified": ["Date format incorrect"]}
                ]
            },
        ),
        ([1, 2], {"message": ["Must be a JSON object (dataset)"]}),
    ],
)
def test_structural_errors_are_ckan_shaped_field_errors(data: Any, errors: dict[str, Any]) -> None:
    with pytest.raises(ValidationFailed) as info:
        dataset_input_from_dict(data)
    assert info.value.errors == errors


def test_every_structural_error_is_reported_at_once() -> None:
    with pytest.raises(ValidationFailed) as info:
        dataset_input_from_dict({"tags": 1, "private": "?", "resources": [{"size": True}]})
    assert set(info.value.errors) == {"name", "tags", "private", "resources"}


def test_numbers_are_taken_as_text_where_text_is_expected() -> None:
    inp = dataset_input_from_dict({"name": "x1", "version": 2.1, "title": 7})
    assert inp.version == "2.1" and inp.title == "7"


def test_the_dicts_a_caller_passes_are_not_changed() -> None:
    data = {"name": "x1", "tag_string": "a1", "resources": [{"url": "u", "k": "v"}]}
    before = json.dumps(data)
    dataset_input_from_dict(data)
    assert json.dumps(data) == before


def test_resource_group_and_user_inputs() -> None:
    res = resource_input_from_dict({"id": RES_ID, "url": None, "size": 3.0, "foo": {"a": 1}})
    assert res == ResourceInput(id=RES_ID, url="", size=3, extras={"foo": {"a": 1}})
    group = group_input_from_dict(
        {"name": "g1", "title": "G", "extras": [{"key": "k", "value": 1}], "package_count": 3}
    )
    assert group == GroupInput(name="g1", title="G", extras={"k": "1"})
    user = user_input_from_dict(
        {"name": "ann", "email": "a@example.org", "password": "12345678", "sysadmin": "false"}
    )
    assert user == UserInput(name="ann", email="a@example.org", password="12345678")
    with pytest.raises(ValidationFailed) as info:
        user_input_from_dict({"name": "ann"})
    assert info.value.errors == {"email": ["Missing value"], "password": ["Missing value"]}
    with pytest.raises(ValidationFailed) as info:
        resource_input_from_dict("http://x")  # type: ignore[arg-type]
    assert info.value.errors == {"message": ["Must be a JSON object (resource)"]}


def test_a_read_back_dataset_dict_updates_nothing_in_the_catalog() -> None:
    """show -> input -> update is a no-op: the revision stays."""
    cat = _catalog()
    cat.organizations.create(GroupInput(name="org"))
    created = cat.datasets.create(
        dataset_input_from_dict(
            {
                "name": "water",
                "owner_org": "org",
                "tags": ["rivers"],
                "extras": {"a": "1"},
                "resources": [{"url": "http://x/a.csv", "layer": 3}],
            }
        )
    )
    again = cat.datasets.update("water", dataset_input_from_dict(dataset_to_dict(created)))
    assert again.revision == created.revision


# ---------------------------------------------------------------------------------------------
# Hypothesis: generated datasets round-trip; junk is refused cleanly
# ---------------------------------------------------------------------------------------------

_uuids = st.uuids().map(str)
_names = st.from_regex(r"[a-z0-9_-]{2,30}", fullmatch=True).filter(
    lambda n: not rules.name_errors(n)
)
_text = st.none() | st.text(max_size=40)
_emails = st.none() | st.from_regex(r"[a-z0-9.]{1,8}@[a-z]{1,8}\.(org|net)", fullmatch=True)
_times = st.datetimes(timezones=st.just(UTC))
_json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
)
_json_values = st.recursive(
    _json_scalars | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
_resource_fields = {f.name for f in attrs.fields(ResourceInput)}
_resource_extra_keys = st.text(min_size=1, max_size=12).filter(
    lambda k: k not in _resource_fields and k not in RESOURCE_IGNORED_KEYS
)
_dataset_extra_keys = st.text(min_size=1, max_size=12).filter(
    lambda k: bool(k.strip()) and k not in DATASET_CORE_FIELDS
)
_formats = st.none() | st.sampled_from(["CSV", "JSON", "XLSX", "GeoJSON", "my-format"]).filter(
    lambda f: rules.canonical_format(f) == f
)


@st.composite
def _resources(draw: st.DrawFn, dataset_id: str) -> list[Resource]:
    ids = draw(st.lists(_uuids, max_size=3, unique=True))
    out = []
    for position, rid in enumerate(ids):
        fmt = draw(_formats)
        url = draw(st.text(max_size=30))
        if fmt is None:  # no format: the catalog would guess one from the URL's extension
            url = url if rules.guess_format(url) is None else ""
        out.append(
            Resource(
                id=rid,
                package_id=dataset_id,
                url=url,
                url_type=draw(_text),
                name=draw(_text),
                description=draw(_text),
                format=fmt,
                mimetype=draw(_text),
                hash=draw(_text),
                size=draw(st.none() | st.integers(0, 2**53)),
                position=position,
                created=draw(_times),
                last_modified=draw(st.none() | _times),
                metadata_modified=draw(_times),
                extras=draw(st.dictionaries(_resource_extra_keys, _json_values, max_size=3)),
            )
        )
    return out


@st.composite
def _datasets(draw: st.DrawFn) -> tuple[Dataset, list[str], list[str]]:
    """A valid dataset, with the ids of the organizations and groups it needs."""
    dataset_id = draw(_uuids)
    org_ids = draw(st.lists(_uuids, max_size=1))
    group_ids = draw(st.lists(_uuids, max_size=3, unique=True))
    owner = org_ids[0] if org_ids else None
    tag_names = draw(
        st.lists(st.from_regex(r"[\w .-]{2,20}", fullmatch=True), max_size=4, unique=True).filter(
            lambda names: all(not rules.tag_errors(n) for n in names)
        )
    )
    dataset = Dataset(
        id=dataset_id,
        name=draw(_names),
        title=draw(_text),
        notes=draw(_text),
        url=draw(_text),
        version=draw(st.none() | st.text(max_size=100)),
        author=draw(_text),
        author_email=draw(_emails),
        maintainer=draw(_text),
        maintainer_email=draw(_emails),
        license_id=draw(st.none() | st.sampled_from(["cc-by", "odc-odbl", "custom-licence"])),
        owner_org=owner,
        private=draw(st.booleans()) if owner else False,
        state=draw(st.sampled_from(list(State))),
        type=draw(st.sampled_from(["dataset", "harvest", "showcase"])),
        tags=[Tag(name=n) for n in tag_names],
        extras=draw(st.dictionaries(_dataset_extra_keys, st.text(max_size=20), max_size=3)),
        groups=group_ids,
        resources=draw(_resources(dataset_id)),
        metadata_created=draw(_times),
        metadata_modified=draw(_times),
    )
    return dataset, org_ids, group_ids


def _content(dataset: Dataset) -> Dataset:
    """A dataset without what the catalog sets itself (timestamps, creator, revision)."""
    return attrs.evolve(
        dataset,
        metadata_created=T0,
        metadata_modified=T0,
        creator_user_id=None,
        revision=1,
        resources=[attrs.evolve(r, created=T0, metadata_modified=T0) for r in dataset.resources],
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_datasets())
def test_a_dataset_dict_recreates_the_same_dataset(
    case: tuple[Dataset, list[str], list[str]],
) -> None:
    dataset, org_ids, group_ids = case
    wire = json.loads(json.dumps(dataset_to_dict(dataset)))
    with _catalog() as cat:
        for n, org_id in enumerate(org_ids):
            cat.organizations.create(GroupInput(id=org_id, name=f"org-{n}"))
        for n, group_id in enumerate(group_ids):
            cat.groups.create(GroupInput(id=group_id, name=f"group-{n}"))
        cat.datasets.create(dataset_input_from_dict(wire))
        stored = cat.datasets.get(dataset.id)
    assert _content(stored) == _content(dataset)


_dataset_keys = st.sampled_from(
    [
        "name", "id", "title", "private", "state", "type", "owner_org", "tags", "tag_string",
        "extras", "groups", "resources", "url", "version", "author_email", "license_id",
    ]
)  # fmt: skip
_resource_keys = st.sampled_from(["id", "url", "size", "last_modified", "format", "name", "x"])
_junk_resource = st.dictionaries(_resource_keys | st.text(max_size=5), _json_values, max_size=5)
_junk = (
    st.dictionaries(
        _dataset_keys | st.text(max_size=5),
        _json_values | st.lists(_junk_resource | _json_values, max_size=3),
        max_size=8,
    )
    | _json_values
)


@settings(max_examples=400, deadline=None)
@given(_junk)
def test_junk_structures_or_raises_validation_failed(data: Any) -> None:
    try:
        result = dataset_input_from_dict(data)
    except ValidationFailed as exc:
        assert exc.errors
        json.dumps(exc.errors)  # the errors are JSON-ready
    else:
        assert isinstance(result, DatasetInput)


@settings(max_examples=150, deadline=None)
@given(_junk)
def test_structured_junk_never_crashes_the_service(data: Any) -> None:
    try:
        item = dataset_input_from_dict(data)
    except ValidationFailed:
        return
    with _catalog() as cat, contextlib.suppress(OpenCatalogError):
        cat.datasets.create(item)


def test_ids_in_the_round_trip_are_kept() -> None:
    """The ids a dump carries are the ids a load creates (the system actor may set them)."""
    cat = _catalog()
    wire = dataset_to_dict(_dataset(owner_org=None, groups=[], tags=[Tag(name="rivers")]))
    created = cat.datasets.create(dataset_input_from_dict(wire))
    assert created.id == DS_ID
    assert [r.id for r in created.resources] == [RES_ID]
    assert uuid.UUID(created.id)
