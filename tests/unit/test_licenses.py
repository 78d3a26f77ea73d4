"""Tests for opencatalog.domain.licenses."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from opencatalog.domain.licenses import (
    DEFAULT_LICENSES,
    LICENSES_BY_ID,
    License,
    license_by_id,
)

EXPECTED_IDS = [
    "notspecified",
    "odc-pddl",
    "odc-odbl",
    "odc-by",
    "cc-zero",
    "cc-by",
    "cc-by-sa",
    "gfdl",
    "other-open",
    "other-pd",
    "other-at",
    "uk-ogl",
    "cc-nc",
    "other-nc",
    "other-closed",
]
OPEN_IDS = {
    "odc-pddl",
    "odc-odbl",
    "odc-by",
    "cc-zero",
    "cc-by",
    "cc-by-sa",
    "gfdl",
    "other-open",
    "other-pd",
    "other-at",
    "uk-ogl",
}


def test_default_licenses_in_order() -> None:
    assert [entry.id for entry in DEFAULT_LICENSES] == EXPECTED_IDS


def test_open_licenses() -> None:
    assert {entry.id for entry in DEFAULT_LICENSES if entry.is_open} == OPEN_IDS


def test_generic_licenses_have_no_url_and_the_others_have_one() -> None:
    for entry in DEFAULT_LICENSES:
        generic = entry.id.startswith("other-") or entry.id == "notspecified"
        if generic:
            assert entry.url is None, entry.id
        else:
            assert entry.url is not None, entry.id
            assert entry.url.startswith(("http://", "https://")), entry.id


def test_titles_are_distinct_and_nonempty() -> None:
    titles = [entry.title for entry in DEFAULT_LICENSES]
    assert all(titles)
    assert len(set(titles)) == len(titles)


@pytest.mark.parametrize(
    ("license_id", "title", "url"),
    [
        ("cc-by", "Creative Commons Attribution", "http://www.opendefinition.org/licenses/cc-by"),
        (
            "odc-odbl",
            "Open Data Commons Open Database License (ODbL)",
            "http://www.opendefinition.org/licenses/odc-odbl",
        ),
        ("other-open", "Other (Open)", None),
        ("notspecified", "License not specified", None),
    ],
)
def test_known_entries(license_id: str, title: str, url: str | None) -> None:
    found = license_by_id(license_id)
    assert found is not None
    assert (found.id, found.title, found.url) == (license_id, title, url)


@pytest.mark.parametrize("license_id", EXPECTED_IDS)
def test_lookup_by_id(license_id: str) -> None:
    found = license_by_id(license_id)
    assert found is not None
    assert found.id == license_id
    assert LICENSES_BY_ID[license_id] is found


@pytest.mark.parametrize("license_id", [None, "", "CC-BY", "cc-by ", "mit", "unknown"])
def test_lookup_of_unknown_ids(license_id: str | None) -> None:
    assert license_by_id(license_id) is None


@given(st.text())
def test_lookup_returns_only_exact_matches(license_id: str) -> None:
    found = license_by_id(license_id)
    assert found is None or found.id == license_id
    assert (found is not None) == (license_id in EXPECTED_IDS)


def test_index_matches_the_list_and_is_read_only() -> None:
    assert list(LICENSES_BY_ID) == EXPECTED_IDS
    with pytest.raises(TypeError):
        LICENSES_BY_ID["mit"] = License(  # type: ignore[index]
            id="mit", title="MIT", url=None, is_open=True
        )


def test_license_is_frozen_and_keyword_only() -> None:
    entry = License(id="x", title="X", url=None, is_open=False)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        entry.title = "Y"  # type: ignore[misc]
    with pytest.raises(TypeError):
        License("x", "X", None, False)  # type: ignore[call-arg]
    assert entry == License(id="x", title="X", url=None, is_open=False)
