"""ResourceService: add, get, update (replace), patch (merge), delete, reorder."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from opencatalog.domain.commands import DatasetInput, ResourceInput, ResourcePatch
from opencatalog.errors import NotAuthorized, NotFound, ValidationFailed
from opencatalog.testing.stateful import stored_contents

RID = "12345678-1234-4234-8234-123456789abc"


@pytest.fixture
def dataset(make_dataset):
    """``water-quality`` in org-a with three resources a, b, c."""
    return make_dataset(
        resources=[
            ResourceInput(url="http://example.org/a.csv", name="a"),
            ResourceInput(url="http://example.org/b.json", name="b", extras={"k": [1, 2]}),
            ResourceInput(url="http://example.org/c", name="c", format="text/csv"),
        ]
    )


def positions(catalog, ref="water-quality"):
    return [(r.name, r.position) for r in catalog.datasets.get(ref).resources]


# -- add and get -----------------------------------------------------------------------------


def test_add_appends_at_the_end(cast, dataset):
    bob = cast.as_("bob")
    added = bob.resources.add(
        "water-quality", ResourceInput(url="http://example.org/d.geojson", name="d", size=10)
    )
    assert added.position == 3
    assert added.package_id == dataset.id
    assert added.format == "GeoJSON"
    assert added.size == 10
    assert bob.resources.get(added.id) == added
    after = bob.datasets.get(dataset.id)
    assert after.resources[-1] == added
    assert after.resources[:3] == dataset.resources
    assert after.revision == dataset.revision + 1
    assert after.metadata_modified > dataset.metadata_modified
    assert cast.catalog.activities.for_dataset(dataset.id)[0].activity_type == "dataset.updated"


def test_formats_are_normalised_or_guessed(cast, dataset):
    assert [r.format for r in dataset.resources] == ["CSV", "JSON", "CSV"]
    added = cast.catalog.resources.add(dataset.id, ResourceInput(url="", format="Weird"))
    assert added.format == "Weird"
    assert added.url == ""
    assert cast.catalog.resources.add(dataset.id, ResourceInput(url="x")).format is None


def test_resource_ids_may_be_chosen_once(cast, dataset, snapshot):
    chosen = cast.as_("bob").resources.add(dataset.id, ResourceInput(id=RID, url="a"))
    assert chosen.id == RID
    before = snapshot(cast.catalog)
    with pytest.raises(ValidationFailed) as exc:
        cast.as_("bob").resources.add(dataset.id, ResourceInput(id=RID, url="b"))
    assert exc.value.errors == {"id": ["Resource id already exists"]}
    with pytest.raises(ValidationFailed) as exc:
        cast.as_("bob").resources.add(dataset.id, ResourceInput(id="../../etc", url="b"))
    assert exc.value.errors == {"id": ["Must be a UUID"]}
    assert snapshot(cast.catalog) == before


def test_add_reports_resource_errors_flat_and_writes_nothing(cast, dataset, snapshot):
    before = snapshot(cast.catalog)
    with pytest.raises(ValidationFailed) as exc:
        cast.as_("bob").resources.add(
            dataset.id,
            ResourceInput(url=5, size="big", extras=[1]),  # type: ignore[arg-type]
        )
    assert exc.value.errors == {
        "url": ["Must be a string"],
        "size": ["Invalid integer"],
        "extras": ["Must be a mapping"],
    }
    assert snapshot(cast.catalog) == before


def test_members_and_outsiders_may_not_add(cast, dataset, snapshot):
    before = snapshot(cast.catalog)
    with pytest.raises(NotAuthorized):
        cast.as_("carol").resources.add(dataset.id, ResourceInput(url="x"))
    with pytest.raises(NotAuthorized):
        cast.as_("anonymous").resources.add(dataset.id, ResourceInput(url="x"))
    assert snapshot(cast.catalog) == before


def test_get_unknown_resource(cast, dataset):
    with pytest.raises(NotFound, match="Resource not found"):
        cast.catalog.resources.get(RID)
    with pytest.raises(ValidationFailed):
        cast.catalog.resources.get("")


def test_resources_of_private_datasets_are_hidden_from_outsiders(cast, make_dataset):
    ds = make_dataset("secret", private=True, resources=[ResourceInput(url="http://x/s.csv")])
    rid = ds.resources[0].id
    assert cast.as_("carol").resources.get(rid) == ds.resources[0]
    for who in ("anonymous", "dave", "erin"):
        with pytest.raises(NotFound, match="Resource not found"):
            cast.as_(who).resources.get(rid)
        with pytest.raises(NotFound):  # not NotAuthorized: existence is not revealed
            cast.as_(who).resources.update(rid, ResourceInput(url="x"))


# -- update: full replacement ---------------------------------------------------------------


def test_update_replaces_the_whole_resource(cast, dataset):
    b = dataset.resources[1]
    updated = cast.as_("bob").resources.update(b.id, ResourceInput(name="B"))
    assert updated.id == b.id
    assert updated.name == "B"
    assert updated.url == ""  # omitted: cleared
    assert updated.extras == {}  # extras not re-sent are dropped
    assert updated.format is None
    assert updated.position == 1
    assert updated.created == b.created
    assert updated.metadata_modified > b.metadata_modified
    after = cast.catalog.datasets.get(dataset.id)
    assert after.resources[1] == updated
    assert after.resources[0] == dataset.resources[0]
    assert after.revision == dataset.revision + 1


def test_update_with_the_same_content_changes_nothing(cast, dataset, snapshot):
    a = dataset.resources[0]
    before = snapshot(cast.catalog)
    same = cast.as_("bob").resources.update(
        a.id, ResourceInput(url=a.url, name=a.name, format=a.format)
    )
    assert same == a
    assert snapshot(cast.catalog) == before


def test_update_unknown_or_invalid(cast, dataset, snapshot):
    with pytest.raises(NotFound):
        cast.catalog.resources.update(RID, ResourceInput(url="x"))
    before = snapshot(cast.catalog)
    with pytest.raises(ValidationFailed) as exc:
        cast.catalog.resources.update(dataset.resources[0].id, ResourceInput(url=None))  # type: ignore[arg-type]
    assert exc.value.errors == {"url": ["Must be a string"]}
    assert snapshot(cast.catalog) == before


# -- patch: merge -----------------------------------------------------------------------------


def test_patch_changes_the_given_fields_and_merges_extras(cast, dataset):
    b = dataset.resources[1]
    patched = cast.as_("bob").resources.patch(
        b.id, ResourcePatch(description="about b", extras={"more": {"x": 1}})
    )
    assert patched.description == "about b"
    assert patched.extras == {"k": [1, 2], "more": {"x": 1}}
    assert (patched.url, patched.name, patched.format) == (b.url, b.name, b.format)
    assert patched.created == b.created


def test_patch_with_nothing_new_keeps_the_revision(cast, dataset):
    a = dataset.resources[0]
    assert cast.catalog.resources.patch(a.id, ResourcePatch()) == a
    assert cast.catalog.resources.patch(a.id, ResourcePatch(name=a.name)) == a
    assert cast.catalog.datasets.get(dataset.id).revision == dataset.revision


def test_patch_validates(cast, dataset, snapshot):
    before = snapshot(cast.catalog)
    with pytest.raises(ValidationFailed) as exc:
        cast.catalog.resources.patch(dataset.resources[0].id, ResourcePatch(size=-1))
    assert exc.value.errors == {"size": ["Invalid integer"]}
    assert snapshot(cast.catalog) == before


# -- delete ------------------------------------------------------------------------------------


def test_delete_renumbers_the_rest(cast, dataset):
    a, b, _ = dataset.resources
    cast.as_("bob").resources.delete(b.id)
    assert positions(cast.catalog) == [("a", 0), ("c", 1)]
    with pytest.raises(NotFound):
        cast.catalog.resources.get(b.id)
    assert cast.catalog.resources.get(a.id) == a
    assert cast.catalog.datasets.get(dataset.id).revision == dataset.revision + 1
    cast.as_("bob").resources.delete(a.id)
    assert positions(cast.catalog) == [("c", 0)]
    with pytest.raises(NotFound):
        cast.as_("bob").resources.delete(a.id)


def test_deleted_resource_ids_can_be_used_again(cast, dataset):
    rid = dataset.resources[0].id
    cast.catalog.resources.delete(rid)
    again = cast.catalog.resources.add(dataset.id, ResourceInput(id=rid, url="again"))
    assert (again.id, again.position) == (rid, 2)


# -- reorder -----------------------------------------------------------------------------------


def test_reorder_puts_resources_in_the_given_order(cast, dataset):
    a, b, c = dataset.resources
    result = cast.as_("bob").resources.reorder("water-quality", [c.id, a.id, b.id])
    assert [r.id for r in result.resources] == [c.id, a.id, b.id]
    assert [r.position for r in result.resources] == [0, 1, 2]
    assert result == cast.catalog.datasets.get(dataset.id)
    assert result.revision == dataset.revision + 1
    assert cast.catalog.resources.get(a.id).position == 1


def test_reorder_in_the_same_order_changes_nothing(cast, dataset):
    same = cast.catalog.resources.reorder(dataset.id, [r.id for r in dataset.resources])
    assert same == dataset


@pytest.mark.parametrize(
    ("order", "message"),
    [
        (lambda a, b, c: [c, a], "Must list every resource of the dataset exactly once"),
        (lambda a, b, c: [c, a, b, RID], "Must list every resource of the dataset exactly once"),
        (lambda a, b, c: [c, a, RID], "Must list every resource of the dataset exactly once"),
        (lambda a, b, c: [c, c, a, b], "Must supply unique resource_ids"),
        (lambda a, b, c: [a, a, b], "Must supply unique resource_ids"),
        (lambda a, b, c: a, "Must be a list of resource ids"),
        (lambda a, b, c: [], "Must list every resource of the dataset exactly once"),
    ],
    ids=["missing", "extra", "foreign", "duplicate", "duplicate-missing", "string", "empty"],
)
def test_reorder_must_be_a_permutation(cast, dataset, snapshot, order, message):
    ids = [r.id for r in dataset.resources]
    before = snapshot(cast.catalog)
    with pytest.raises(ValidationFailed) as exc:
        cast.catalog.resources.reorder(dataset.id, order(*ids))
    assert exc.value.errors == {"order": [message]}
    assert snapshot(cast.catalog) == before


@pytest.mark.parametrize("order", [[1, "a", "b"], [["a"], ["b"], ["c"]], [None, 1.5, "x"]])
def test_reorder_with_items_that_are_not_ids(cast, dataset, order):
    with pytest.raises(ValidationFailed):
        cast.catalog.resources.reorder(dataset.id, order)


def test_reorder_needs_edit_rights(cast, dataset, snapshot):
    before = snapshot(cast.catalog)
    ids = [r.id for r in dataset.resources][::-1]
    with pytest.raises(NotAuthorized):
        cast.as_("carol").resources.reorder(dataset.id, ids)
    with pytest.raises(NotAuthorized):
        cast.as_("frank").resources.reorder(dataset.id, ids)
    assert snapshot(cast.catalog) == before


def test_positions_stay_contiguous_through_a_mix_of_changes(cast, dataset):
    cat = cast.catalog
    x = cat.resources.add(dataset.id, ResourceInput(url="x", name="x"))
    cat.resources.delete(dataset.resources[0].id)
    cat.resources.reorder(dataset.id, [r.id for r in cat.datasets.get(dataset.id).resources][::-1])
    cat.resources.update(x.id, ResourceInput(url="y", name="x"))
    cat.resources.add(dataset.id, ResourceInput(url="z", name="z"))
    assert positions(cat) == [("x", 0), ("c", 1), ("b", 2), ("z", 3)]


# -- bad input everywhere ------------------------------------------------------------------

_WRONG = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.lists(st.text(max_size=10), max_size=3),
    st.dictionaries(
        st.one_of(st.text(max_size=5), st.integers()),
        st.one_of(st.text(max_size=5), st.integers(), st.none()),
        max_size=3,
    ),
)
_RESOURCE_FIELDS = [f.name for f in attrs.fields(ResourceInput)]
_BAD_INPUT = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _assert_field_errors(errors: Any) -> None:
    assert isinstance(errors, dict) and errors
    for key, messages in errors.items():
        assert isinstance(key, str) and key in {*_RESOURCE_FIELDS, "message"}, key
        assert isinstance(messages, list) and messages
        assert all(isinstance(m, str) for m in messages)


@given(changes=st.dictionaries(st.sampled_from(_RESOURCE_FIELDS), _WRONG, min_size=1, max_size=3))
@_BAD_INPUT
def test_bad_input_to_add_and_update_is_refused_cleanly(cast, dataset, changes):
    catalog = cast.catalog
    data = attrs.evolve(ResourceInput(url="http://example.org/x.csv"), **changes)
    target = catalog.datasets.get(dataset.id).resources[0].id
    for call in (
        lambda: catalog.as_user("bob").resources.add(dataset.id, data),
        lambda: catalog.as_user("bob").resources.update(target, data),
    ):
        before = stored_contents(catalog)
        try:
            res = call()
        except ValidationFailed as exc:
            event("refused")
            _assert_field_errors(exc.errors)
            assert stored_contents(catalog) == before
        else:
            event("accepted")
            assert catalog.resources.get(res.id) == res


@given(changes=st.dictionaries(st.sampled_from(_RESOURCE_FIELDS), _WRONG, min_size=1, max_size=3))
@_BAD_INPUT
def test_bad_resources_in_a_dataset_are_reported_by_position(cast, changes):
    catalog = cast.catalog
    bad = attrs.evolve(ResourceInput(url="http://example.org/x.csv"), **changes)
    name = f"ds-{catalog.datasets.count()}"
    resources = [ResourceInput(url="http://example.org/ok.csv"), bad]
    before = stored_contents(catalog)
    try:
        created = catalog.datasets.create(DatasetInput(name=name, resources=resources))
    except ValidationFailed as exc:
        event("refused")
        assert list(exc.errors) == ["resources"]
        first, second = exc.errors["resources"]
        assert first == {}
        _assert_field_errors(second)
        assert stored_contents(catalog) == before
    else:
        event("accepted")
        assert len(catalog.datasets.get(created.id).resources) == 2


@pytest.mark.parametrize("data", [None, "http://x", {"url": "x"}, 5])
def test_something_that_is_not_a_resource_input(cast, dataset, snapshot, data):
    before = snapshot(cast.catalog)
    with pytest.raises(ValidationFailed) as exc:
        cast.catalog.resources.add(dataset.id, data)
    assert exc.value.errors == {"message": ["Must be a resource"]}
    with pytest.raises(ValidationFailed):
        cast.catalog.resources.update(dataset.resources[0].id, data)
    assert snapshot(cast.catalog) == before


def test_patch_with_something_that_is_not_a_patch(cast, dataset):
    with pytest.raises(ValidationFailed):
        cast.catalog.resources.patch(dataset.resources[0].id, None)  # type: ignore[arg-type]
