"""The q/fq/sort parser: the supported syntax, refusals, limits and round trips."""

from __future__ import annotations

import contextlib
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opencatalog.domain.search import (
    And,
    FacetRequest,
    MatchAll,
    Not,
    Or,
    Phrase,
    Prefix,
    Query,
    QueryLimits,
    SearchQuery,
    SortKey,
    Term,
    iter_nodes,
    parse_filter,
    parse_query,
    parse_sort,
    render_query,
    tokenize,
)
from opencatalog.errors import SearchQueryError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", MatchAll()),
        ('""', MatchAll()),
        ("  ", MatchAll()),
        ("*:*", MatchAll()),
        ("water", Term(None, "water")),
        ("water quality", And([Term(None, "water"), Term(None, "quality")])),
        ("water AND quality", And([Term(None, "water"), Term(None, "quality")])),
        ("water && quality", And([Term(None, "water"), Term(None, "quality")])),
        ("water OR air", Or([Term(None, "water"), Term(None, "air")])),
        ("water || air", Or([Term(None, "water"), Term(None, "air")])),
        ("a OR b c", Or([Term(None, "a"), And([Term(None, "b"), Term(None, "c")])])),
        ('"water quality"', Phrase(None, "water quality")),
        ("water-quality", Phrase(None, "water-quality")),
        ("text:water", Term(None, "water")),
        ("title:water", Term("title", "water")),
        ('title:"river water"', Phrase("title", "river water")),
        ("tags:economy", Term("tags", "economy")),
        ("tags:Economy", Term("tags", "Economy")),
        ('tags:"climate change"', Phrase("tags", "climate change")),
        ("res_format:CSV", Term("res_format", "CSV")),
        ("extras_spatial:north", Term("extras_spatial", "north")),
        ("wat*", Prefix(None, "wat")),
        ("tags:eco*", Prefix("tags", "eco")),
        ("name:city-*", Prefix("name", "city-")),
        ("-tags:x", Not(Term("tags", "x"))),
        ("!tags:x", Not(Term("tags", "x"))),
        ("NOT tags:x", Not(Term("tags", "x"))),
        ("+tags:x", Term("tags", "x")),
        ("a -b", And([Term(None, "a"), Not(Term(None, "b"))])),
        ("a AND NOT b", And([Term(None, "a"), Not(Term(None, "b"))])),
        ("(a OR b) c", And([Or([Term(None, "a"), Term(None, "b")]), Term(None, "c")])),
        ("tags:(a OR b)", Or([Term("tags", "a"), Term("tags", "b")])),
        ("title:(a bc*)", And([Term("title", "a"), Prefix("title", "bc")])),
        ("and or not", And([Term(None, "and"), Term(None, "or"), Term(None, "not")])),
        (r"\AND", Term(None, "AND")),
        (r"tags:a\:b", Term("tags", "a:b")),
        (r"tags:a\ b", Term("tags", "a b")),
        (r'"say \"hi\""', Phrase(None, 'say "hi"')),
        (r"c\*", Term(None, "c*")),
        ("water , &", Term(None, "water")),
        (", &", MatchAll()),
        ("- ,", MatchAll()),
        (
            'tags:economy +res_format:CSV organization:"my-org"',
            And(
                [
                    Term("tags", "economy"),
                    Term("res_format", "CSV"),
                    Phrase("organization", "my-org"),
                ]
            ),
        ),
    ],
)
def test_parses(text: str, expected: Query) -> None:
    assert parse_query(text) == expected


def test_filter_uses_the_same_grammar() -> None:
    assert parse_filter("tags:economy res_format:CSV") == And(
        [Term("tags", "economy"), Term("res_format", "CSV")]
    )


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("wa*er", "end of a word"),
        ("*ater", "leading wildcards"),
        ("*", "leading wildcards"),
        ("w*", "at least 2 characters"),
        ("wat?r", "single-character"),
        ("water~2", "fuzzy"),
        ('"a b"~2', "fuzzy"),
        ("title:water^2", "boosts"),
        ("metadata_modified:[2020 TO *]", "range"),
        ("title:{a TO b}", "range"),
        ("{!lucene}water", "local parameters"),
        ("{!func}x", "local parameters"),
        ("/wat.r/", "regular expressions"),
        ("foo:bar", 'unknown field "foo"'),
        ("password:x", 'unknown field "password"'),
        ("http://example.org", "regular expressions"),
        ("http:x", 'unknown field "http"'),
        ("extras_:x", "unknown field"),
        ("extras_a-b:x", "unknown field"),
        ("(water", "unbalanced parentheses"),
        ("water)", "unbalanced parentheses"),
        ("()", "unbalanced parentheses"),
        ('"water', "unbalanced quotes"),
        ("water AND", "ends where"),
        ("AND water", "AND where"),
        ("water OR", "ends where"),
        ("NOT", "ends where"),
        ("title:", "no value"),
        ("title:*", "leading wildcards"),
        ("tags:(title:x)", "field name inside a field group"),
        ("a:b:c", "unknown field"),
        ("title:a:b", "unexpected ':'"),
        (":x", "must follow a field name"),
        ("water\\", "backslash"),
        ("title:wa-t*", "single word"),
    ],
)
def test_refuses(text: str, fragment: str) -> None:
    with pytest.raises(SearchQueryError) as info:
        parse_query(text)
    assert fragment in str(info.value)
    assert str(info.value).startswith("Search Query is invalid: ")


@pytest.mark.parametrize(
    "text",
    [
        "a" * 100_000,
        "water " * 20_000,
        "(" * 2_000 + "a" + ")" * 2_000,
        "(" * 900 + "a" + ")" * 900,
        "NOT " * 400 + "a",
        "-" * 1_999 + "a",
        "a " * 999,
        " OR ".join(["ab*"] * 300),
        "a" * 2_001 + "*",
        '"' + "a " * 990 + '"',
    ],
)
def test_abusive_queries_are_refused_fast(text: str) -> None:
    start = time.perf_counter()
    with pytest.raises(SearchQueryError):
        parse_query(text)
    assert time.perf_counter() - start < 0.1


def test_limits_are_configurable() -> None:
    limits = QueryLimits(max_terms=3, max_depth=2, max_query_length=50, min_prefix_length=4)
    assert parse_query("a b c", limits=limits)
    with pytest.raises(SearchQueryError, match="more than 3"):
        parse_query("a b c d", limits=limits)
    assert parse_query("((a))", limits=limits)
    with pytest.raises(SearchQueryError, match="deeper than 2"):
        parse_query("(((a)))", limits=limits)
    with pytest.raises(SearchQueryError, match="longer than 50"):
        parse_query("a" * 51, limits=limits)
    with pytest.raises(SearchQueryError, match="at least 4"):
        parse_query("wat*", limits=limits)
    assert parse_query("wate*", limits=limits) == Prefix(None, "wate")


def test_paging_limits() -> None:
    limits = QueryLimits()
    limits.check(SearchQuery(limit=1000, offset=1_000_000))
    with pytest.raises(SearchQueryError):
        limits.check(SearchQuery(limit=1001))
    with pytest.raises(SearchQueryError):
        limits.check(SearchQuery(offset=1_000_001))


def test_search_query_checks_fields() -> None:
    with pytest.raises(SearchQueryError):
        SearchQuery(query=Term("secret", "x"))
    with pytest.raises(SearchQueryError):
        SearchQuery(filters=[Not(Prefix("nope", "x"))])
    with pytest.raises(SearchQueryError):
        FacetRequest("notes")
    with pytest.raises(SearchQueryError):
        SortKey("password")
    with pytest.raises(SearchQueryError):
        SearchQuery(limit=-1)
    with pytest.raises(SearchQueryError):
        SearchQuery(offset=-1)
    assert SearchQuery().effective_sort == (
        SortKey("score", True),
        SortKey("metadata_modified", True),
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ()),
        ("rank", ()),
        (
            "score desc, metadata_modified desc",
            (SortKey("score", True), SortKey("metadata_modified", True)),
        ),
        ("name asc", (SortKey("name"),)),
        ("title_string asc", (SortKey("title"),)),
        ("title desc", (SortKey("title", True),)),
        ("metadata_created desc", (SortKey("metadata_created", True),)),
        ("name ASC", (SortKey("name"),)),
    ],
)
def test_parse_sort(text: str, expected: tuple[SortKey, ...]) -> None:
    assert parse_sort(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "metadata_modified",
        "name sideways",
        "password asc",
        "name; DROP TABLE package",
        "name asc, (SELECT 1)",
        "name asc,",
        ", ".join(["name asc"] * 5),
        ", ".join(["name asc"] * 100),
        "x" * 1000,
    ],
)
def test_parse_sort_refuses(text: str) -> None:
    with pytest.raises(SearchQueryError, match=r"^Search Query is invalid: "):
        parse_sort(text)


def test_tokenize() -> None:
    assert tokenize("Water-Quality_2020, ÉTÉ café x2") == [
        "water",
        "quality",
        "2020",
        "été",
        "café",
        "x2",
    ]
    assert tokenize(" - ,") == []


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_parse_never_raises_anything_else(text: str) -> None:
    try:
        node = parse_query(text)
    except SearchQueryError:
        return
    SearchQuery(query=node)


_SPECIAL = st.sampled_from([*list('+-!():^[]"{}~*?|&/\\ \t'), "AND", "OR", "NOT", "&&", "||"])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(_SPECIAL, st.sampled_from(["a", "tags:", "title:", "ab", "*:*"])), max_size=30
    )
)
def test_operator_soup_never_raises_anything_else(parts: list[str]) -> None:
    with contextlib.suppress(SearchQueryError):
        parse_query("".join(parts))


# -- round trips -----------------------------------------------------------------------------

_WORDS = st.sampled_from(["water", "Quality", "café", "x2", "AND", "or", "a:b", "x y", 'q"t'])
_KEYWORDS = st.sampled_from(
    ["Economy", "climate change", "a-b", "x:y", "AND", "(p)", 'q"t', "back\\slash", "*star"]
)
_TEXT_FIELD = st.sampled_from([None, "title", "notes", "extras_spatial"])
_KEY_FIELD = st.sampled_from(["tags", "res_format", "organization", "name"])


def _text_term(field: str | None, word: str) -> Query:
    return Phrase(field, word) if len(tokenize(word)) > 1 else Term(field, word)


_LEAVES = st.one_of(
    st.builds(_text_term, _TEXT_FIELD, _WORDS.filter(lambda w: tokenize(w) != [])),
    st.builds(Phrase, _TEXT_FIELD, st.sampled_from(["water quality", "a b c", 'say "x"'])),
    st.builds(Prefix, _TEXT_FIELD, st.sampled_from(["wat", "Qu", "x2"])),
    st.builds(Term, _KEY_FIELD, _KEYWORDS),
    st.builds(Phrase, _KEY_FIELD, _KEYWORDS),
    st.builds(Prefix, _KEY_FIELD, st.sampled_from(["ec", "a-", "x:", "(p"])),
    st.just(MatchAll()),
)
_TREES = st.recursive(
    _LEAVES,
    lambda children: st.one_of(
        st.lists(children, min_size=2, max_size=3).map(And),
        st.lists(children, min_size=2, max_size=3).map(Or),
        children.map(Not),
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(_TREES)
def test_render_round_trips(tree: Query) -> None:
    assert parse_query(render_query(tree)) == tree


def test_render_handles_deep_trees_without_recursion() -> None:
    node: Query = Term(None, "a")
    for _ in range(5000):
        node = Not(node)
    text = render_query(node)
    assert text.startswith("NOT NOT")
    assert sum(1 for _ in iter_nodes(node)) == 5001
