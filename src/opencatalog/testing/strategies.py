"""Hypothesis strategies shared by the conformance kits and the unit tests.

Each port's strategies live in their own clearly marked section; add new sections rather than
changing existing strategies, which the shipped kits depend on.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

from opencatalog.domain.search import (
    And,
    DatasetDocument,
    FacetRequest,
    MatchAll,
    Not,
    Or,
    Phrase,
    Prefix,
    Query,
    SearchQuery,
    SortKey,
    Term,
)

__all__ = [
    "search_corpora",
    "search_documents",
    "search_query_trees",
    "search_requests",
]

# =============================================================================================
# Search (opencatalog.domain.search, opencatalog.ports.search)
# =============================================================================================
#
# Small vocabularies, so that random queries often hit random documents. Text mixes case,
# digits, accents and separators ("-", "_", ",") to exercise tokenisation; keyword values
# differ only by case or by spaces to exercise exact matching.

_WORDS = ("alpha", "Alpha", "beta", "gamma", "delta", "café", "x2", "river", "rivers", "data")
_TAGS = ("water", "Water", "climate change", "climate", "a-b", "eco")
_GROUPS = ("science", "health", "gov")
_ORGS = ("org-a", "org-b", "Org-A")
_FORMATS = ("CSV", "csv", "JSON", "GeoJSON")
_LICENSES = ("cc-by", "ogl", "cc-zero")
_LABELS = ("public", "member-a", "member-b")
_STATES = ("active", "draft", "deleted")
_EXTRA_KEYS = ("spatial", "freq")
_BASE = datetime(2024, 1, 1, tzinfo=UTC)

_TEXT_FIELDS = (None, "title", "notes", "res_name", "author", "extras_spatial")
_KEYWORD_VALUES = {
    "tags": _TAGS,
    "groups": _GROUPS,
    "organization": _ORGS,
    "res_format": _FORMATS,
    "license_id": _LICENSES,
    "dataset_type": ("dataset", "showcase"),
    "capacity": ("public", "private"),
}


def _text(min_words: int = 0, max_words: int = 6) -> st.SearchStrategy[str]:
    separators = st.sampled_from((" ", " ", " ", "-", "_", ", "))
    pieces = st.lists(
        st.tuples(st.sampled_from(_WORDS), separators), min_size=min_words, max_size=max_words
    )
    return pieces.map(lambda items: "".join(word + sep for word, sep in items).strip())


def _dates() -> st.SearchStrategy[datetime]:
    return st.integers(0, 5).map(lambda hours: _BASE + timedelta(hours=hours))


@st.composite
def search_documents(draw: st.DrawFn, doc_id: str | None = None) -> DatasetDocument:
    """A random ``DatasetDocument`` over small vocabularies (ties in dates and titles are
    likely, to exercise the sort tie-break)."""
    ident = doc_id if doc_id is not None else draw(st.uuids()).hex
    formats = draw(st.lists(st.sampled_from(_FORMATS), max_size=3))
    return DatasetDocument(
        id=ident,
        name=draw(st.sampled_from(("n-" + ident[:6], "alpha", "beta-set", "Gamma"))),
        title=draw(_text(0, 4)),
        notes=draw(_text(0, 8)),
        tags=draw(st.lists(st.sampled_from(_TAGS), max_size=3, unique=True)),
        groups=draw(st.lists(st.sampled_from(_GROUPS), max_size=2, unique=True)),
        organization=draw(st.none() | st.sampled_from(_ORGS)),
        owner_org=None,
        res_format=formats,
        res_name=[draw(_text(1, 3)) for _ in formats],
        res_description=[draw(_text(0, 4)) for _ in formats],
        res_url=[f"https://example.org/{ident}/{i}" for i in range(len(formats))],
        license_id=draw(st.none() | st.sampled_from(_LICENSES)),
        author=draw(st.none() | _text(1, 2)),
        maintainer=draw(st.none() | _text(1, 2)),
        extras=draw(st.dictionaries(st.sampled_from(_EXTRA_KEYS), _text(1, 3), max_size=2)),
        state=draw(st.sampled_from(_STATES)),
        private=draw(st.booleans()),
        type=draw(st.sampled_from(("dataset", "dataset", "showcase"))),
        metadata_created=draw(_dates()),
        metadata_modified=draw(_dates()),
        labels=draw(st.lists(st.sampled_from(_LABELS), min_size=1, max_size=2, unique=True)),
        num_resources=len(formats),
    )


def search_corpora(max_size: int = 12) -> st.SearchStrategy[list[DatasetDocument]]:
    """A list of documents with distinct ids ``d00``, ``d01``, ..."""
    return st.integers(0, max_size).flatmap(
        lambda n: st.tuples(*(search_documents(f"d{i:02d}") for i in range(n))).map(list)
    )


def _leaf() -> st.SearchStrategy[Query]:
    text_leaf = st.one_of(
        st.builds(Term, st.sampled_from(_TEXT_FIELDS), st.sampled_from(_WORDS)),
        st.builds(Phrase, st.sampled_from(_TEXT_FIELDS), _text(1, 2)),
        st.builds(
            Prefix,
            st.sampled_from(_TEXT_FIELDS),
            st.sampled_from(_WORDS).flatmap(lambda w: st.integers(2, len(w)).map(lambda k: w[:k])),
        ),
    )
    keyword_leaf = st.sampled_from(sorted(_KEYWORD_VALUES)).flatmap(
        lambda name: st.one_of(
            st.builds(Term, st.just(name), st.sampled_from(_KEYWORD_VALUES[name])),
            st.builds(Phrase, st.just(name), st.sampled_from(_KEYWORD_VALUES[name])),
            st.sampled_from(_KEYWORD_VALUES[name]).flatmap(
                lambda v: st.integers(1, len(v)).map(lambda k: Prefix(name, v[:k]))
            ),
        )
    )
    return st.one_of(text_leaf, keyword_leaf, st.just(MatchAll()))


def search_query_trees(max_leaves: int = 6) -> st.SearchStrategy[Query]:
    """Random query ASTs over the fields and values the corpus strategies use."""
    return st.recursive(
        _leaf(),
        lambda children: st.one_of(
            st.lists(children, min_size=1, max_size=3).map(And),
            st.lists(children, min_size=1, max_size=3).map(Or),
            children.map(Not),
        ),
        max_leaves=max_leaves,
    )


_ORDERED_SORTS = (
    (SortKey("name"),),
    (SortKey("name", True),),
    (SortKey("title"),),
    (SortKey("title", True), SortKey("metadata_created")),
    (SortKey("metadata_modified", True),),
    (SortKey("metadata_created"),),
)


@st.composite
def search_requests(draw: st.DrawFn, *, scored: bool = True) -> SearchQuery:
    """A random ``SearchQuery``. With ``scored=False`` the order is fully defined (no score
    sort, or a match-all query under the default sort), so results compare exactly."""
    query = draw(search_query_trees())
    sorts: tuple[tuple[SortKey, ...], ...] = _ORDERED_SORTS
    if scored:
        sorts = (*sorts, (), (SortKey("score", True),))
    sort = draw(st.sampled_from(sorts))
    if not scored and not sort:
        query = MatchAll()
    facets = draw(
        st.lists(
            st.builds(
                FacetRequest,
                st.sampled_from(("tags", "groups", "organization", "res_format", "license_id")),
                st.integers(-1, 4),
                st.integers(0, 3),
            ),
            max_size=3,
            unique_by=lambda f: f.field,
        )
    )
    return SearchQuery(
        query=query,
        filters=draw(st.lists(search_query_trees(3), max_size=2)),
        facets=facets,
        sort=sort,
        offset=draw(st.integers(0, 4)),
        limit=draw(st.integers(0, 15)),
        labels=draw(st.none() | st.frozensets(st.sampled_from(_LABELS), max_size=2)),
        states=draw(st.frozensets(st.sampled_from(_STATES), min_size=1)),
    )
