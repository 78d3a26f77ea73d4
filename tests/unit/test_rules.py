"""Tests for opencatalog.domain.rules: validators, munging, tag strings, formats, UUIDs."""

from __future__ import annotations

import re
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opencatalog.domain import rules
from opencatalog.domain.rules import (
    NAME_MAX_LENGTH,
    NAME_MIN_LENGTH,
    RESERVED_NAMES,
    canonical_format,
    email_errors,
    guess_format,
    is_uuid,
    munge_name,
    munge_tag,
    munge_title_to_name,
    name_errors,
    normalize_tag_string,
    password_errors,
    tag_errors,
)

MSG_SHORT = "Must be at least 2 characters long"
MSG_LONG = "Name must be a maximum of 100 characters long"
MSG_CHARSET = "Must be purely lowercase alphanumeric (ascii) characters and these symbols: -_"
MSG_RESERVED = "That name cannot be used"
MSG_NOT_STRING = "Names must be strings"

valid_names = st.from_regex(r"[a-z0-9_-]{2,100}", fullmatch=True).filter(
    lambda name: name not in RESERVED_NAMES
)

# Arbitrary values of many types, for "never raises" properties.
anything = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary() | st.uuids(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=5,
)

# Text biased towards the characters the munge rules treat specially, and long enough to hit
# the truncation paths, mixed with fully arbitrary Unicode text.
munge_input = st.one_of(
    st.text(),
    st.text(alphabet=st.sampled_from("aZ09 -_.:/!%ßÆéア\t\n"), max_size=300),
    st.builds(
        lambda head, year: head + year,
        st.text(alphabet=st.sampled_from("ab -:"), min_size=80, max_size=200),
        st.sampled_from([" 2009", " 2011-12", " 2019/20", "_2010", "-12", " 12345"]),
    ),
)


# --------------------------------------------------------------------------------------------
# name_errors
# --------------------------------------------------------------------------------------------


def test_constants() -> None:
    assert (NAME_MIN_LENGTH, NAME_MAX_LENGTH) == (2, 100)
    assert frozenset({"new", "edit", "search"}) == RESERVED_NAMES


@given(valid_names)
def test_valid_names_are_accepted(name: str) -> None:
    assert name_errors(name) == []


@given(valid_names, st.data())
def test_names_with_an_uppercase_ascii_letter_are_rejected(name: str, data: st.DataObject) -> None:
    position = data.draw(st.integers(min_value=0, max_value=len(name) - 1))
    letter = data.draw(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    candidate = name[:position] + letter + name[position + 1 :]
    assert name_errors(candidate) == [MSG_CHARSET]


@given(valid_names, st.data())
def test_names_with_any_other_character_are_rejected(name: str, data: st.DataObject) -> None:
    bad = data.draw(st.characters().filter(lambda c: re.fullmatch(r"[a-z0-9_-]", c) is None))
    position = data.draw(st.integers(min_value=0, max_value=len(name) - 1))
    candidate = name[:position] + bad + name[position + 1 :]
    assert name_errors(candidate) == [MSG_CHARSET]


@given(anything)
def test_name_errors_never_raises_and_reports_at_most_one_message(value: object) -> None:
    errors = name_errors(value)
    assert isinstance(errors, list)
    assert len(errors) <= 1
    assert all(isinstance(message, str) for message in errors)
    if not isinstance(value, str):
        assert errors == [MSG_NOT_STRING]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ab", []),
        ("a" * 100, []),
        ("my_dataset-2024", []),
        ("--", []),
        ("", [MSG_SHORT]),
        ("a", [MSG_SHORT]),
        ("a" * 101, [MSG_LONG]),
        ("My-Dataset", [MSG_CHARSET]),
        ("my dataset", [MSG_CHARSET]),
        ("café", [MSG_CHARSET]),
        ("name\n", [MSG_CHARSET]),
        ("new", [MSG_RESERVED]),
        ("edit", [MSG_RESERVED]),
        ("search", [MSG_RESERVED]),
        ("New", [MSG_CHARSET]),
        (None, [MSG_NOT_STRING]),
        (42, [MSG_NOT_STRING]),
        (b"bytes", [MSG_NOT_STRING]),
        # Only the first failing check is reported, in a fixed order.
        ("A", [MSG_SHORT]),
        ("A" * 101, [MSG_LONG]),
    ],
)
def test_name_errors_examples(value: object, expected: list[str]) -> None:
    assert name_errors(value) == expected


# --------------------------------------------------------------------------------------------
# tag_errors
# --------------------------------------------------------------------------------------------

tag_characters = st.characters(categories=("L", "N")) | st.sampled_from(" -_.")
valid_tags = st.text(alphabet=tag_characters, min_size=2, max_size=100)


@given(valid_tags)
def test_valid_tags_are_accepted(tag: str) -> None:
    assert tag_errors(tag) == []


@given(valid_tags, st.sampled_from(",/:;!?#\n\t'\"&"), st.data())
def test_tags_with_a_symbol_are_rejected(tag: str, symbol: str, data: st.DataObject) -> None:
    position = data.draw(st.integers(min_value=0, max_value=len(tag) - 1))
    candidate = tag[:position] + symbol + tag[position + 1 :]
    assert tag_errors(candidate) == [
        f'Tag "{candidate}" must be alphanumeric characters or symbols: -_.'
    ]


@given(anything)
def test_tag_errors_never_raises(value: object) -> None:
    errors = tag_errors(value)
    assert len(errors) <= 1
    if not isinstance(value, str):
        assert errors == ["Tags must be strings"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("rivers ア", []),
        ("Climate Change", []),
        ("v1.0_final-draft", []),
        ("a" * 100, []),
        ("a", ['Tag "a" length is less than minimum 2']),
        ("", ['Tag "" length is less than minimum 2']),
        ("b" * 101, [f'Tag "{"b" * 101}" length is more than maximum 100']),
        ("a,b", ['Tag "a,b" must be alphanumeric characters or symbols: -_.']),
        ("tag\n", ['Tag "tag\n" must be alphanumeric characters or symbols: -_.']),
        ("x", ['Tag "x" length is less than minimum 2']),
        (7, ["Tags must be strings"]),
    ],
)
def test_tag_errors_examples(value: object, expected: list[str]) -> None:
    assert tag_errors(value) == expected


# --------------------------------------------------------------------------------------------
# email_errors
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "   ",
        "user@example.com",
        "  user@example.com \n",
        "first.last+tag@sub.example.org",
        "x@localhost",
        "o'brien@example.ie",
    ],
)
def test_valid_or_absent_emails(value: object) -> None:
    assert email_errors(value) == []


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("not-an-email", "not-an-email"),
        ("a@", "a@"),
        ("@example.com", "@example.com"),
        ("a@b..com", "a@b..com"),
        ("a@-b.com", "a@-b.com"),
        ("a b@example.com", "a b@example.com"),
        ("two@at@example.com", "two@at@example.com"),
        ("  padded@  ", "padded@"),
        ("ü@example.com", "ü@example.com"),
        (5, "5"),
    ],
)
def test_invalid_emails(value: object, shown: str) -> None:
    assert email_errors(value) == [f"Email {shown} is not a valid format"]


@given(st.text())
def test_email_errors_never_raises(value: str) -> None:
    assert len(email_errors(value)) <= 1


# --------------------------------------------------------------------------------------------
# password_errors
# --------------------------------------------------------------------------------------------


@given(st.text(min_size=8))
def test_long_enough_passwords_are_accepted(value: str) -> None:
    assert password_errors(value) == []


@given(st.text(max_size=7))
def test_short_passwords_are_rejected(value: str) -> None:
    assert password_errors(value) == ["Your password must be 8 characters or longer"]


@pytest.mark.parametrize("value", [None, 12345678, b"longenough", ["p" * 8]])
def test_non_string_passwords_are_rejected(value: object) -> None:
    assert password_errors(value) == ["Passwords must be strings"]


def test_password_length_boundary() -> None:
    assert password_errors("1234567") == ["Your password must be 8 characters or longer"]
    assert password_errors("12345678") == []


# --------------------------------------------------------------------------------------------
# munging
# --------------------------------------------------------------------------------------------


@given(munge_input)
def test_munge_name_output_is_always_a_valid_name(text: str) -> None:
    assert name_errors(munge_name(text)) == []


@given(munge_input)
def test_munge_title_to_name_output_is_always_a_valid_name(text: str) -> None:
    result = munge_title_to_name(text)
    assert name_errors(result) == []
    assert len(result) <= NAME_MAX_LENGTH - 5
    assert "--" not in result
    assert not result.startswith("-")
    assert not result.endswith("-")


@given(munge_input)
def test_munge_tag_output_is_always_a_valid_tag(text: str) -> None:
    assert tag_errors(munge_tag(text)) == []


@given(munge_input)
def test_munge_name_is_idempotent(text: str) -> None:
    once = munge_name(text)
    assert munge_name(once) == once


@given(munge_input)
def test_munge_title_to_name_is_idempotent(text: str) -> None:
    once = munge_title_to_name(text)
    assert munge_title_to_name(once) == once


@given(munge_input)
def test_munge_tag_is_idempotent(text: str) -> None:
    once = munge_tag(text)
    assert munge_tag(once) == once


@given(valid_names.filter(lambda name: len(name) <= NAME_MAX_LENGTH - 5))
def test_munging_leaves_a_valid_name_alone(name: str) -> None:
    assert munge_name(name) == name


# (input, munge_name, munge_title_to_name, munge_tag)
MUNGE_EXAMPLES = [
    (
        "police spending figures 2009",
        "police-spending-figures-2009",
        "police-spending-figures-2009",
        "police-spending-figures-2009",
    ),
    (
        "police: spending figures 2009",
        "police--spending-figures-2009",
        "police-spending-figures-2009",
        "police-spending-figures-2009",
    ),
    ("water quality", "water-quality", "water-quality", "water-quality"),
    ("Water Quality", "water-quality", "water-quality", "water-quality"),
    ("  Café del Mar!! ", "--cafe-del-mar-", "cafe-del-mar", "cafe-del-mar"),
    ("a", "a_", "a_", "a_"),
    ("", "__", "__", "__"),
    ("A/B.c:d", "a-b-c-d", "a-b-c-d", "abcd"),
    ("x_y-z", "x_y-z", "x_y-z", "xy-z"),
    ("Über Straße 2019/20", "uber-strasse-2019-20", "uber-strasse-2019-20", "uber-strasse-201920"),
    ("---abc---", "---abc---", "abc", "---abc---"),
    (
        "random:other%character&",
        "random-othercharacter",
        "random-othercharacter",
        "randomothercharacter",
    ),
    ("some spaces  here", "some-spaces--here", "some-spaces-here", "some-spaces--here"),
    ("tab\tseparated", "tab-separated", "tab-separated", "tab-separated"),
    ("Ærø þing", "aero-thing", "aero-thing", "aero-thing"),
    ("日本語", "__", "__", "__"),
]


@pytest.mark.parametrize(("text", "name", "title", "tag"), MUNGE_EXAMPLES)
def test_munge_examples(text: str, name: str, title: str, tag: str) -> None:
    assert munge_name(text) == name
    assert munge_title_to_name(text) == title
    assert munge_tag(text) == tag


@pytest.mark.parametrize("reserved", sorted(RESERVED_NAMES))
def test_munging_never_produces_a_reserved_name(reserved: str) -> None:
    assert munge_name(reserved.upper()) == reserved + "_"
    assert munge_title_to_name(f" {reserved} ") == reserved + "_"


def test_munge_name_cuts_to_the_maximum_length() -> None:
    text = "reallylong" * 12 + " - 2012"
    assert munge_name(text) == "reallylong" * 10


def test_munge_title_keeps_a_trailing_year_when_shortening() -> None:
    text = "reallylong" * 12 + " - 2012"
    assert munge_title_to_name(text) == "reallylong" * 9 + "-2012"


def test_munge_title_of_a_200_character_title_ending_in_a_year() -> None:
    title = ("spending on roads " * 12)[: 200 - len(" 2009")] + " 2009"
    assert len(title) == 200
    result = munge_title_to_name(title)
    assert len(result) <= NAME_MAX_LENGTH
    assert result.endswith("-2009")
    assert result.startswith("spending-on-roads-")
    assert "--" not in result


@pytest.mark.parametrize(
    ("suffix", "kept"),
    [(" 2011-12", "-2011-12"), (" 2019/20", "-2019-20"), ("_2010", "-2010")],
)
def test_munge_title_keeps_year_ranges(suffix: str, kept: str) -> None:
    result = munge_title_to_name("x" * 120 + suffix)
    assert result == "x" * (95 - len(kept)) + kept


def test_munge_title_without_a_year_cuts_the_tail_and_trailing_dash() -> None:
    text = "a" * 94 + " bcd efg"
    assert munge_title_to_name(text) == "a" * 94


# --------------------------------------------------------------------------------------------
# normalize_tag_string
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a, b,c", ["a", "b", "c"]),
        ("  economy ,, health,  ", ["economy", "health"]),
        ("b, a, b, A", ["b", "a", "A"]),
        ("", []),
        (" , , ", []),
        ("climate change", ["climate change"]),
    ],
)
def test_normalize_tag_string_examples(value: str, expected: list[str]) -> None:
    assert normalize_tag_string(value) == expected


@given(st.lists(st.text(alphabet=st.sampled_from("ab ,\t"), max_size=6), max_size=8))
def test_normalize_tag_string_properties(parts: list[str]) -> None:
    value = ",".join(parts)
    tags = normalize_tag_string(value)
    expected: list[str] = []
    for part in value.split(","):
        if part.strip() and part.strip() not in expected:
            expected.append(part.strip())
    assert tags == expected
    assert all(tag and tag == tag.strip() and "," not in tag for tag in tags)
    assert len(set(tags)) == len(tags)


# --------------------------------------------------------------------------------------------
# canonical_format / guess_format
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("csv", "CSV"),
        ("CSV", "CSV"),
        (" text/csv ", "CSV"),
        (".csv", "CSV"),
        ("text/csv; charset=utf-8", "CSV"),
        ("xlsx", "XLSX"),
        ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "XLSX"),
        ("application/json", "JSON"),
        ("geojson", "GeoJSON"),
        ("application/geo+json", "GeoJSON"),
        ("shp", "SHP"),
        ("Shapefile", "SHP"),
        ("jpg", "JPEG"),
        ("tif", "TIFF"),
        ("geotiff", "GeoTIFF"),
        ("json-ld", "JSON-LD"),
        ("turtle", "TTL"),
        ("parquet", "Parquet"),
        ("md", "Markdown"),
        ("h5", "HDF5"),
        ("gpkg", "GPKG"),
        ("sparql", "SPARQL"),
        ("wms", "WMS"),
        ("api", "API"),
        ("  Some Custom Thing ", "Some Custom Thing"),
        ("text/x-unknown", "text/x-unknown"),
        (None, None),
        ("", None),
        ("   ", None),
    ],
)
def test_canonical_format_examples(value: str | None, expected: str | None) -> None:
    assert canonical_format(value) == expected


def test_format_table_covers_common_formats_without_ambiguity() -> None:
    names = [name for name, _, _ in rules._FORMATS]
    assert len(names) >= 30
    assert len({name.lower() for name in names}) == len(names)
    for name, mimetype, alternatives in rules._FORMATS:
        for key in (name, mimetype, *alternatives):
            if key is not None:
                assert canonical_format(key) == name, key


@given(st.sampled_from(rules._FORMATS), st.data())
def test_canonical_format_ignores_case(
    entry: tuple[str, str | None, tuple[str, ...]], data: st.DataObject
) -> None:
    name = entry[0]
    flipped = "".join(c.upper() if data.draw(st.booleans()) else c.lower() for c in name)
    assert canonical_format(flipped) == name


@given(st.text())
def test_canonical_format_is_idempotent(value: str) -> None:
    once = canonical_format(value)
    assert canonical_format(once) == once


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://example.com/data/file.csv", "CSV"),
        ("https://example.com/FILE.CSV?download=1#top", "CSV"),
        ("https://example.com/export.xlsx", "XLSX"),
        ("https://example.com/a/b/map.geojson", "GeoJSON"),
        ("https://example.com/photo.jpg", "JPEG"),
        ("https://example.com/data.csv.gz", "GZIP"),
        ("https://example.com/archive.tar.bz2", "BZ2"),
        ("https://example.com/report%2Epdf", "PDF"),
        ("data.json", "JSON"),
        ("https://example.com/song.mp3", "MP3"),
        ("https://example.com/dir/", None),
        ("https://example.com/download?format=csv", None),
        ("https://example.com/file.csv/", None),
        ("https://example.com/.csv", None),
        ("https://example.com/file.notaformatxyz", None),
        ("http://[bad-host/file.csv?x#y", "CSV"),
        ("", None),
    ],
)
def test_guess_format_examples(url: str, expected: str | None) -> None:
    assert guess_format(url) == expected


url_like = st.text() | st.builds(
    "".join, st.lists(st.sampled_from(["http://", "[", "]", "/", ".", "csv", "?", "#", "%", ":"]))
)


@given(url_like)
def test_guess_format_never_raises(url: str) -> None:
    result = guess_format(url)
    assert result is None or result.strip() == result != ""


# --------------------------------------------------------------------------------------------
# is_uuid
# --------------------------------------------------------------------------------------------


@given(st.uuids(), st.booleans())
def test_uuid_strings_are_recognised(value: uuid.UUID, upper: bool) -> None:
    text = str(value).upper() if upper else str(value)
    assert is_uuid(text)


@pytest.mark.parametrize(
    "value",
    [
        "00000000-0000-0000-0000-000000000000",
        "6F9619FF-8B86-D011-B42D-00C04FC964FF",
    ],
)
def test_uuid_examples(value: str) -> None:
    assert is_uuid(value)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "not-a-uuid",
        "6f9619ff8b86d011b42d00c04fc964ff",
        "{6f9619ff-8b86-d011-b42d-00c04fc964ff}",
        "urn:uuid:6f9619ff-8b86-d011-b42d-00c04fc964ff",
        "6f9619ff-8b86-d011-b42d-00c04fc964fg",
        "6f9619ff-8b86-d011-b42d-00c04fc964ff\n",
        " 6f9619ff-8b86-d011-b42d-00c04fc964ff",
        uuid.UUID("6f9619ff-8b86-d011-b42d-00c04fc964ff"),
        None,
        42,
    ],
)
def test_non_uuids(value: object) -> None:
    assert not is_uuid(value)
