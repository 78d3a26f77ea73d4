"""Backend-neutral search: the query model, the indexed form of a dataset, and the q/fq parser.

Every search index adapter (memory, tantivy, Whoosh, and any third-party one) implements the
same matching rules, written down here. The memory adapter applies them by brute force and is
the oracle the conformance kit compares the other adapters against, so the rules are kept
simple enough to hold exactly in every engine.

Fields
------
*Keyword fields* hold whole values and match exactly and case-sensitively, as CKAN's Solr
``string`` fields do (``tags:Economy`` does not find the tag ``economy``):
``id``, ``name``, ``tags``, ``groups``, ``organization`` (the organization's name),
``owner_org`` (its id), ``res_format``, ``res_url``, ``license_id``, ``state``,
``dataset_type`` and ``capacity`` (``public`` or ``private``).

*Text fields* are tokenised: a token is a maximal run of Unicode letters and digits (the
underscore and every other character separate tokens), lowercased. There is no stemming, no
stop-word list and no accent folding, so every engine indexes exactly the same tokens:
``title``, ``notes``, ``res_name``, ``res_description``, ``author``, ``maintainer``,
``extras_<key>`` (the value of the dataset extra ``<key>``; keys made of ``[A-Za-z0-9_]``
can be searched) and ``text``, the default field, which holds the values of ``name``,
``title``, ``notes``, ``tags``, ``groups``, ``organization``, ``res_format``, ``res_name``,
``res_description``, ``license_id``, ``author``, ``maintainer`` and every extra value.
Resource URLs are left out of ``text`` (search them with ``res_url``).

A field may hold several values (one per tag, per resource, per text source of ``text``).
Tokens of different values are never adjacent, so a phrase cannot span two values.

Matching
--------
``Term(field, text)``
    keyword field: one of the field's values equals ``text``. Text field: ``text`` is
    tokenised; with one token, a document matches when the field holds that token; with
    several tokens the term behaves as a ``Phrase``; with none it matches nothing.
    ``field=None`` means the default field ``text``.
``Phrase(field, text)``
    keyword field: as ``Term``. Text field: the tokens of ``text`` occur consecutively in one
    value of the field; no token matches nothing.
``Prefix(field, prefix)``
    keyword field: one of the values starts with ``prefix`` (case-sensitive). Text field: one
    of the tokens starts with ``prefix`` lowercased; a prefix that is not exactly one token
    (it holds a separator) matches nothing.
``MatchAll``, ``And``, ``Or``, ``Not``
    as expected; ``Not(x)`` on its own matches every document that does not match ``x``.

A ``SearchQuery`` finds the documents that match its ``query`` and all of its ``filters``,
whose ``state`` is in ``states`` and, unless ``labels`` is None, whose permission labels
intersect ``labels``. Filters and visibility never change scores.

Facets count the documents found (before paging), each value once per document, sorted by
count descending then value ascending (code-point order), dropping counts below
``mincount`` (values with no document are never listed) and cut to ``limit`` (a negative
limit means no cut).

Sorting: ``name`` by code point, ``title`` by its lowercased form, dates by value; every sort
ends with ``id`` ascending so the order is total. ``score`` is engine-specific (each engine
ranks differently; only the memory adapter's simple term-frequency score is defined here), so
tests compare sets for scored queries. With the default sort (no keys: ``score desc,
metadata_modified desc`` as in CKAN) a ``MatchAll`` query is listed by ``metadata_modified``
descending then ``id`` in every adapter.

Query syntax (``parse_query``/``parse_filter``)
-----------------------------------------------
A documented subset of the Lucene syntax CKAN passes to Solr: words (all must match),
``"quoted phrases"``, ``field:value``, ``field:"phrase"``, ``field:(a OR b)``,
``AND``/``&&``, ``OR``/``||``, ``NOT``/``!``, leading ``-`` (must not) and ``+`` (must; the
default anyway), parentheses, trailing-``*`` prefixes (``wat*``, at least two characters
before the star), ``*:*`` (everything) and backslash escapes. ``AND`` binds tighter than
``OR``. Differences from CKAN: CKAN sends a ``q`` without a colon to Solr's DisMax parser over
``name^4 title^4 tags^2 groups^2 text``, where more than two words need only most of them to
match; here every word must match the ``text`` field, whatever the query, and no stemming
applies. Words that hold no token (``-`` or ``&`` alone) are dropped, as Solr drops stop words.
Everything else (``?``/infix/leading wildcards, fuzzy ``~``, boosts ``^``, ranges ``[a TO b]``,
regular expressions ``/.../``, local parameters ``{!...}``, unknown fields, unbalanced
parentheses or quotes) raises ``SearchQueryError``. Length, depth and term limits
(``QueryLimits``) are checked before and while parsing, never by unbounded recursion.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeAlias

import attrs
from attrs import field, frozen

from opencatalog.errors import SearchQueryError

if TYPE_CHECKING:
    from opencatalog.domain.model import Dataset

__all__ = [
    "CONTENT_CHUNK_CHARS",
    "DEFAULT_FIELD",
    "FACET_FIELDS",
    "INDEX_NAMES",
    "KEYWORD_FIELDS",
    "SORT_FIELDS",
    "TEXT_FIELDS",
    "And",
    "ContentDocument",
    "DatasetDocument",
    "FacetCount",
    "FacetRequest",
    "MatchAll",
    "Not",
    "Or",
    "Phrase",
    "Prefix",
    "Query",
    "QueryLimits",
    "ResourceDocument",
    "SearchHit",
    "SearchPage",
    "SearchQuery",
    "SortKey",
    "Term",
    "TextHit",
    "TextPage",
    "TextQuery",
    "content_documents",
    "dataset_document",
    "facet_values",
    "field_values",
    "highlight",
    "is_text_field",
    "iter_nodes",
    "parse_filter",
    "parse_query",
    "parse_sort",
    "render_query",
    "resource_documents",
    "tokenize",
    "validate_field",
]

# ---------------------------------------------------------------------------------------------
# Fields and tokens

DEFAULT_FIELD = "text"
"""The field searched by words without a field name."""

KEYWORD_FIELDS: frozenset[str] = frozenset(
    {
        "id",
        "name",
        "tags",
        "groups",
        "organization",
        "owner_org",
        "res_format",
        "res_url",
        "license_id",
        "state",
        "dataset_type",
        "capacity",
    }
)
"""Fields whose values match whole and case-sensitively."""

TEXT_FIELDS: frozenset[str] = frozenset(
    {"text", "title", "notes", "res_name", "res_description", "author", "maintainer"}
)
"""Tokenised fields (plus every ``extras_<key>``)."""

EXTRAS_PREFIX = "extras_"

FACET_FIELDS: frozenset[str] = frozenset(
    {"organization", "groups", "tags", "res_format", "license_id", "owner_org", "dataset_type"}
)
"""Fields that can be faceted."""

SORT_FIELDS: frozenset[str] = frozenset(
    {"score", "name", "title", "metadata_modified", "metadata_created"}
)
"""Fields a search can be sorted by."""

_EXTRAS_KEY_RE = re.compile(r"[A-Za-z0-9_]+\Z")
_TOKEN_RE = re.compile(r"[^\W_]+")


def tokenize(text: str) -> list[str]:
    """The tokens of ``text``: maximal runs of Unicode letters and digits, lowercased."""
    return [token.lower() for token in _TOKEN_RE.findall(text)]


def is_text_field(name: str | None) -> bool:
    """True for tokenised fields (``None`` is the default text field)."""
    return name is None or name in TEXT_FIELDS or name.startswith(EXTRAS_PREFIX)


def validate_field(name: str) -> str:
    """Return ``name`` if it is a searchable field, else raise ``SearchQueryError``."""
    if name in KEYWORD_FIELDS or name in TEXT_FIELDS:
        return name
    if name.startswith(EXTRAS_PREFIX) and _EXTRAS_KEY_RE.match(name[len(EXTRAS_PREFIX) :]):
        return name
    raise SearchQueryError(f'Search Query is invalid: unknown field "{_clip(name)}"')


def _clip(text: str, size: int = 60) -> str:
    return text if len(text) <= size else text[:size] + "..."


# ---------------------------------------------------------------------------------------------
# Query AST


@frozen
class MatchAll:
    """Every document."""


@frozen
class Term:
    """A word (text fields) or a whole value (keyword fields); ``field=None`` is ``text``."""

    field: str | None
    text: str


@frozen
class Phrase:
    """Consecutive tokens in one value (text fields) or a whole value (keyword fields)."""

    field: str | None
    text: str


@frozen
class Prefix:
    """A token (text fields) or a value (keyword fields) starting with ``prefix``."""

    field: str | None
    prefix: str


def _children(value: Iterable[Query]) -> tuple[Query, ...]:
    return tuple(value)


def _non_empty(instance: Any, attribute: attrs.Attribute[Any], value: tuple[Query, ...]) -> None:
    if not value:
        raise ValueError(f"{type(instance).__name__} needs at least one child")


@frozen
class And:
    """Every child matches (at least one child)."""

    children: tuple[Query, ...] = field(converter=_children, validator=_non_empty)


@frozen
class Or:
    """At least one child matches (at least one child)."""

    children: tuple[Query, ...] = field(converter=_children, validator=_non_empty)


@frozen
class Not:
    """The child does not match."""

    child: Query


Query: TypeAlias = MatchAll | Term | Phrase | Prefix | And | Or | Not
"""A node of the query AST."""

_LEAVES = (Term, Phrase, Prefix)


def iter_nodes(query: Query) -> Iterator[Query]:
    """Every node of ``query``, depth first, without recursion."""
    stack: list[Query] = [query]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, And | Or):
            stack.extend(reversed(node.children))
        elif isinstance(node, Not):
            stack.append(node.child)


def _validate_tree(query: Query) -> None:
    for node in iter_nodes(query):
        if isinstance(node, _LEAVES):
            if node.field is not None:
                validate_field(node.field)
        elif not isinstance(node, MatchAll | And | Or | Not):
            raise SearchQueryError(f"Search Query is invalid: not a query node: {node!r}")


# ---------------------------------------------------------------------------------------------
# Requests and results


def _check_facet_field(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if value not in FACET_FIELDS:
        raise SearchQueryError(
            f'Search Query is invalid: cannot facet on "{_clip(value)}" '
            f"(facet fields: {', '.join(sorted(FACET_FIELDS))})"
        )


@frozen
class FacetRequest:
    """Count the values of ``field``: the top ``limit`` (negative: all) with at least
    ``mincount`` documents (values below 1 act as 1)."""

    field: str = attrs.field(validator=_check_facet_field)
    limit: int = 50
    mincount: int = 1


def _check_sort_field(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if value not in SORT_FIELDS:
        raise SearchQueryError(f'Search Query is invalid: cannot sort by "{_clip(value)}"')


@frozen
class SortKey:
    """One sort key; see the module docstring for the order of each field."""

    field: str = attrs.field(validator=_check_sort_field)
    descending: bool = False


def _tuple(value: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(value)


def _frozenset(value: Iterable[str]) -> frozenset[str]:
    return frozenset(value)


def _opt_frozenset(value: Iterable[str] | None) -> frozenset[str] | None:
    return None if value is None else frozenset(value)


@frozen(kw_only=True)
class SearchQuery:
    """One search request, as every adapter receives it.

    ``query`` is scored; ``filters`` must all hold and are not scored. A document is
    visible when its ``state`` is in ``states`` and, unless ``labels`` is None (system and
    sysadmin searches only), its permission labels intersect ``labels``. ``sort`` empty means
    ``score desc, metadata_modified desc``. Fields are checked on construction
    (``SearchQueryError``).
    """

    query: Query = field(factory=MatchAll)
    filters: tuple[Query, ...] = field(default=(), converter=_tuple)
    facets: tuple[FacetRequest, ...] = field(default=(), converter=_tuple)
    sort: tuple[SortKey, ...] = field(default=(), converter=_tuple)
    offset: int = 0
    limit: int = 20
    labels: frozenset[str] | None = field(default=None, converter=_opt_frozenset)
    states: frozenset[str] = field(default=frozenset({"active"}), converter=_frozenset)
    highlight: bool = False

    def __attrs_post_init__(self) -> None:
        if self.offset < 0:
            raise SearchQueryError("Search Query is invalid: offset must not be negative")
        if self.limit < 0:
            raise SearchQueryError("Search Query is invalid: limit must not be negative")
        _validate_tree(self.query)
        for node in self.filters:
            _validate_tree(node)

    @property
    def effective_sort(self) -> tuple[SortKey, ...]:
        """The sort keys to apply (the default when ``sort`` is empty), without the final
        ``id`` tie-break."""
        return self.sort or (SortKey("score", True), SortKey("metadata_modified", True))


@frozen
class SearchHit:
    """One result: the dataset id, the engine's score and, when asked, highlighted
    fragments per field (HTML-escaped text with matches in ``<em>``)."""

    id: str
    score: float = 0.0
    highlights: Mapping[str, tuple[str, ...]] = field(factory=dict)


@frozen
class FacetCount:
    """How many found documents hold ``value``."""

    value: str
    count: int


@frozen
class SearchPage:
    """The answer to a ``SearchQuery``: the total number of documents found, the requested
    page of hits and the counts for every requested facet field."""

    total: int
    hits: tuple[SearchHit, ...] = field(default=(), converter=_tuple)
    facets: Mapping[str, tuple[FacetCount, ...]] = field(factory=dict)

    @property
    def ids(self) -> list[str]:
        return [hit.id for hit in self.hits]


def top_facet_counts(counts: Mapping[str, int], request: FacetRequest) -> tuple[FacetCount, ...]:
    """Apply the facet rules (order, ``mincount``, ``limit``) to raw value counts."""
    mincount = max(request.mincount, 1)
    items = sorted(
        ((value, n) for value, n in counts.items() if n >= mincount),
        key=lambda item: (-item[1], item[0]),
    )
    if request.limit >= 0:
        items = items[: request.limit]
    return tuple(FacetCount(value, n) for value, n in items)


# ---------------------------------------------------------------------------------------------
# Indexed documents


def _str_tuple(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _str_mapping(value: Mapping[str, str] | None) -> Mapping[str, str]:
    return dict(value or {})


@frozen(kw_only=True)
class DatasetDocument:
    """The indexed form of a dataset (see ``dataset_document``).

    Multi-valued fields keep their order; ``res_*`` hold one entry per resource that has the
    value. Dates are timezone-aware UTC datetimes.
    """

    id: str
    name: str
    title: str = ""
    notes: str = ""
    tags: tuple[str, ...] = field(default=(), converter=_str_tuple)
    groups: tuple[str, ...] = field(default=(), converter=_str_tuple)
    organization: str | None = None
    owner_org: str | None = None
    res_format: tuple[str, ...] = field(default=(), converter=_str_tuple)
    res_name: tuple[str, ...] = field(default=(), converter=_str_tuple)
    res_description: tuple[str, ...] = field(default=(), converter=_str_tuple)
    res_url: tuple[str, ...] = field(default=(), converter=_str_tuple)
    license_id: str | None = None
    author: str | None = None
    maintainer: str | None = None
    extras: Mapping[str, str] = field(factory=dict, converter=_str_mapping)
    state: str = "active"
    private: bool = False
    type: str = "dataset"
    metadata_created: datetime
    metadata_modified: datetime
    labels: tuple[str, ...] = field(default=(), converter=_str_tuple)
    num_resources: int = 0
    num_tags: int = 0


def _present(values: Iterable[str | None]) -> tuple[str, ...]:
    return tuple(v for v in values if v)


def dataset_document(
    dataset: Dataset,
    *,
    organization_name: str | None,
    group_names: Sequence[str],
    labels: Iterable[str],
) -> DatasetDocument:
    """Build the indexed form of ``dataset``.

    ``organization_name`` is the name of ``dataset.owner_org``, ``group_names`` the names of
    its groups and ``labels`` its permission labels (the caller computes them with the
    permission policy). Only free tags are indexed; empty resource values are left out.
    """
    resources = dataset.resources
    free_tags = [tag.name for tag in dataset.tags if tag.vocabulary_id is None]
    return DatasetDocument(
        id=dataset.id,
        name=dataset.name,
        title=dataset.title or "",
        notes=dataset.notes or "",
        tags=_present(free_tags),
        groups=_present(group_names),
        organization=organization_name or None,
        owner_org=dataset.owner_org,
        res_format=_present(r.format for r in resources),
        res_name=_present(r.name for r in resources),
        res_description=_present(r.description for r in resources),
        res_url=_present(r.url for r in resources),
        license_id=dataset.license_id or None,
        author=dataset.author or None,
        maintainer=dataset.maintainer or None,
        extras={k: v for k, v in dataset.extras.items() if isinstance(v, str)},
        state=str(dataset.state.value),
        private=dataset.private,
        type=dataset.type,
        metadata_created=dataset.metadata_created,
        metadata_modified=dataset.metadata_modified,
        labels=tuple(dict.fromkeys(labels)),
        num_resources=len(resources),
        num_tags=len(dataset.tags),
    )


def field_values(doc: DatasetDocument, name: str | None) -> tuple[str, ...]:
    """The values a document holds in a searchable field (the raw text for text fields)."""
    if name is None or name == DEFAULT_FIELD:
        return _present(
            (
                doc.name,
                doc.title,
                doc.notes,
                *doc.tags,
                *doc.groups,
                doc.organization,
                *doc.res_format,
                *doc.res_name,
                *doc.res_description,
                doc.license_id,
                doc.author,
                doc.maintainer,
                *doc.extras.values(),
            )
        )
    if name.startswith(EXTRAS_PREFIX):
        return _present((doc.extras.get(name[len(EXTRAS_PREFIX) :]),))
    if name == "dataset_type":
        return (doc.type,)
    if name == "capacity":
        return ("private" if doc.private else "public",)
    if name in ("id", "name", "state", "organization", "owner_org", "license_id"):
        return _present((getattr(doc, name),))
    if name in ("title", "notes", "author", "maintainer"):
        return _present((getattr(doc, name),))
    if name in ("tags", "groups", "res_format", "res_name", "res_description", "res_url"):
        return _present(getattr(doc, name))
    raise SearchQueryError(f'Search Query is invalid: unknown field "{_clip(name)}"')


def facet_values(doc: DatasetDocument, name: str) -> tuple[str, ...]:
    """The distinct values a document contributes to the facet ``name``, in first-seen order."""
    return tuple(dict.fromkeys(field_values(doc, name)))


# ---------------------------------------------------------------------------------------------
# The resources and contents indices

INDEX_NAMES: tuple[str, ...] = ("packages", "resources", "contents")
"""The three logical indices of a search index: datasets, their resources, and the text
extracted from resource files."""

CONTENT_CHUNK_CHARS = 100_000
"""The most characters of extracted text one contents document holds."""


@frozen(kw_only=True)
class ResourceDocument:
    """The indexed form of one resource (the resources index), built by
    ``resource_documents``. Words match ``name``, ``description`` and ``format``."""

    id: str
    package_id: str
    name: str = ""
    description: str = ""
    format: str = ""
    url: str = ""
    position: int = 0


def resource_documents(dataset: Dataset) -> list[ResourceDocument]:
    """The resources-index documents of ``dataset`` (one per active resource)."""
    return [
        ResourceDocument(
            id=r.id,
            package_id=dataset.id,
            name=r.name or "",
            description=r.description or "",
            format=r.format or "",
            url=r.url or "",
            position=r.position,
        )
        for r in dataset.resources
    ]


@frozen(kw_only=True)
class ContentDocument:
    """One chunk of the text extracted from a resource's file (the contents index), built by
    ``content_documents``. Words match ``text``. Its ``id`` is ``<resource_id>:<chunk>``."""

    resource_id: str
    package_id: str
    chunk: int = 0
    text: str = ""
    content_type: str = "text"

    @property
    def id(self) -> str:
        return f"{self.resource_id}:{self.chunk}"


def content_documents(
    resource_id: str,
    package_id: str,
    text: str,
    *,
    content_type: str = "text",
    chunk_chars: int = CONTENT_CHUNK_CHARS,
) -> list[ContentDocument]:
    """Split ``text`` into chunks of at most ``chunk_chars`` characters, cut at a line break
    when there is one in the second half of the chunk; empty text gives no document."""
    docs: list[ContentDocument] = []
    start = 0
    while start < len(text):
        end = min(len(text), start + chunk_chars)
        if end < len(text):
            cut = text.rfind("\n", start + chunk_chars // 2, end)
            if cut > start:
                end = cut + 1
        piece = text[start:end]
        if piece.strip():
            docs.append(
                ContentDocument(
                    resource_id=resource_id,
                    package_id=package_id,
                    chunk=len(docs),
                    text=piece,
                    content_type=content_type,
                )
            )
        start = end
    return docs


def _check_text_query(instance: Any, attribute: attrs.Attribute[Any], value: Query) -> None:
    _validate_tree(value)
    for node in iter_nodes(value):
        if isinstance(node, _LEAVES) and node.field not in (None, DEFAULT_FIELD):
            raise SearchQueryError(
                "Search Query is invalid: the resources and contents indices take words, "
                "phrases and prefixes without field names"
            )


@frozen(kw_only=True)
class TextQuery:
    """A query on the resources or contents index: ``query`` built from words, phrases and
    prefixes on the default field (``And``/``Or``/``Not`` allowed; field names are refused
    with ``SearchQueryError``), optionally restricted to the documents of ``package_ids``.
    Hits are ordered by score (descending), then id; ``highlight`` asks for fragments of
    the matched text (``name``/``description`` for resources, ``text`` for contents) made
    with :func:`highlight`."""

    query: Query = field(validator=_check_text_query)
    package_ids: frozenset[str] | None = field(default=None, converter=_opt_frozenset)
    offset: int = 0
    limit: int = 20
    highlight: bool = False

    def __attrs_post_init__(self) -> None:
        if self.offset < 0 or self.limit < 0:
            raise SearchQueryError("Search Query is invalid: offset and limit must not be negative")


@frozen
class TextHit:
    """One hit of a ``TextQuery``: the document id, the resource and dataset it belongs to,
    the score and, when asked, highlighted fragments per field."""

    id: str
    resource_id: str
    package_id: str
    score: float = 0.0
    highlights: Mapping[str, tuple[str, ...]] = field(factory=dict)


@frozen
class TextPage:
    """The answer to a ``TextQuery``: how many documents match and the requested page."""

    total: int
    hits: tuple[TextHit, ...] = field(default=(), converter=_tuple)


# ---------------------------------------------------------------------------------------------
# Limits and parsing


@frozen(kw_only=True)
class QueryLimits:
    """Bounds on what a query may cost, checked before and during parsing.

    ``max_prefix_expansion`` bounds how many index terms one prefix may expand to in
    engines that expand prefixes into term lists (over it: ``SearchQueryError``);
    ``max_limit`` and ``max_offset`` bound paging (see ``check``).
    """

    max_query_length: int = 2000
    max_terms: int = 100
    max_depth: int = 20
    min_prefix_length: int = 2
    max_prefix_expansion: int = 1000
    max_limit: int = 1000
    max_offset: int = 1_000_000

    def check(self, query: SearchQuery) -> None:
        """Raise ``SearchQueryError`` when paging is out of bounds."""
        if query.limit > self.max_limit:
            raise SearchQueryError(
                f"Search Query is invalid: at most {self.max_limit} results per page"
            )
        if query.offset > self.max_offset:
            raise SearchQueryError(
                f"Search Query is invalid: offset must not exceed {self.max_offset}"
            )


_OPERATOR_WORDS = {"AND": "AND", "OR": "OR", "NOT": "NOT"}
_WORD_END = frozenset(' \t\r\n\f\v()"')
_SPECIALS = frozenset('\\+-!():^[]"{}~*?|&/')
_REJECTED = {
    "?": "single-character wildcards (?) are not supported",
    "~": "fuzzy and proximity searches (~) are not supported",
    "^": "boosts (^) are not supported",
    "[": "range queries are not supported",
    "]": "range queries are not supported",
    "{": "range queries and local parameters are not supported",
    "}": "range queries and local parameters are not supported",
}


@frozen
class _Tok:
    kind: str  # WORD PHRASE LPAREN RPAREN AND OR NOT PLUS COLON MATCHALL
    text: str = ""
    prefix: bool = False
    pos: int = 0


def _error(message: str, pos: int | None = None) -> SearchQueryError:
    where = "" if pos is None else f" (at character {pos + 1})"
    return SearchQueryError(f"Search Query is invalid: {message}{where}")


def _lex(text: str) -> list[_Tok]:
    """Split ``text`` into tokens in one linear pass."""
    tokens: list[_Tok] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch == "(":
            tokens.append(_Tok("LPAREN", pos=i))
            i += 1
        elif ch == ")":
            tokens.append(_Tok("RPAREN", pos=i))
            i += 1
        elif ch == ":":
            tokens.append(_Tok("COLON", pos=i))
            i += 1
        elif ch == '"':
            start, i = i, i + 1
            chars: list[str] = []
            while i < n and text[i] != '"':
                if text[i] == "\\":
                    if i + 1 >= n:
                        raise _error("a backslash must escape a character", i)
                    i += 1
                chars.append(text[i])
                i += 1
            if i >= n:
                raise _error("unbalanced quotes", start)
            i += 1
            tokens.append(_Tok("PHRASE", "".join(chars), pos=start))
        elif text.startswith("&&", i):
            tokens.append(_Tok("AND", pos=i))
            i += 2
        elif text.startswith("||", i):
            tokens.append(_Tok("OR", pos=i))
            i += 2
        elif ch in "+-!":
            tokens.append(_Tok("PLUS" if ch == "+" else "NOT", pos=i))
            i += 1
        elif text.startswith("*:*", i) and (i + 3 >= n or text[i + 3] in _WORD_END):
            tokens.append(_Tok("MATCHALL", pos=i))
            i += 3
        elif ch == "{" and text.startswith("{!", i):
            raise _error("local parameters ({!...}) are not supported", i)
        elif ch == "/":
            raise _error("regular expressions (/.../) are not supported; escape / with \\", i)
        else:
            start = i
            chars = []
            escaped = prefix = False
            while i < n:
                ch = text[i]
                if ch == "\\":
                    if i + 1 >= n:
                        raise _error("a backslash must escape a character", i)
                    chars.append(text[i + 1])
                    escaped = True
                    i += 2
                    continue
                if ch in _WORD_END or ch == ":":
                    break
                if ch in _REJECTED:
                    raise _error(_REJECTED[ch], i)
                if ch == "*":
                    if not chars:
                        raise _error("leading wildcards are not supported", i)
                    if i + 1 < n and text[i + 1] not in _WORD_END and text[i + 1] != ":":
                        raise _error("wildcards (*) are only supported at the end of a word", i)
                    prefix = True
                    i += 1
                    break
                chars.append(ch)
                i += 1
            word = "".join(chars)
            if not escaped and not prefix and word in _OPERATOR_WORDS:
                tokens.append(_Tok(_OPERATOR_WORDS[word], pos=start))
            else:
                tokens.append(_Tok("WORD", word, prefix=prefix, pos=start))
    return tokens


_CLAUSE_START = frozenset({"WORD", "PHRASE", "LPAREN", "NOT", "PLUS", "MATCHALL"})


class _Parser:
    """Recursive descent over the token list; recursion is bounded by ``max_depth``."""

    def __init__(self, tokens: list[_Tok], limits: QueryLimits) -> None:
        self.tokens = tokens
        self.limits = limits
        self.i = 0
        self.terms = 0

    def peek(self) -> _Tok | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> _Tok:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def parse(self) -> Query | None:
        node = self.parse_or(None, 0)
        tok = self.peek()
        if tok is not None:
            if tok.kind == "RPAREN":
                raise _error("unbalanced parentheses", tok.pos)
            raise _error(f"unexpected {tok.kind}", tok.pos)
        return node

    def enter(self, depth: int, pos: int) -> int:
        if depth + 1 > self.limits.max_depth:
            raise _error(f"nesting deeper than {self.limits.max_depth} levels", pos)
        return depth + 1

    def parse_or(self, fld: str | None, depth: int) -> Query | None:
        parts = [self.parse_and(fld, depth)]
        while (tok := self.peek()) is not None and tok.kind == "OR":
            self.take()
            parts.append(self.parse_and(fld, depth))
        kept = [p for p in parts if p is not None]
        if not kept:
            return None
        return kept[0] if len(kept) == 1 else Or(kept)

    def parse_and(self, fld: str | None, depth: int) -> Query | None:
        parts = [self.parse_unary(fld, depth)]
        while (tok := self.peek()) is not None:
            if tok.kind == "AND":
                self.take()
            elif tok.kind not in _CLAUSE_START:
                break
            parts.append(self.parse_unary(fld, depth))
        kept = [p for p in parts if p is not None]
        if not kept:
            return None
        return kept[0] if len(kept) == 1 else And(kept)

    def parse_unary(self, fld: str | None, depth: int) -> Query | None:
        tok = self.peek()
        if tok is None:
            raise _error("the query ends where a search term was expected")
        if tok.kind in ("NOT", "PLUS"):
            self.take()
            inner_depth = self.enter(depth, tok.pos)
            child = self.parse_unary(fld, inner_depth)
            if tok.kind == "PLUS" or child is None:
                return child
            return Not(child)
        return self.parse_primary(fld, depth)

    def parse_primary(self, fld: str | None, depth: int) -> Query | None:
        tok = self.take()
        if tok.kind == "LPAREN":
            inner = self.parse_or(fld, self.enter(depth, tok.pos))
            close = self.peek()
            if close is None or close.kind != "RPAREN":
                raise _error("unbalanced parentheses", tok.pos)
            self.take()
            return inner
        if tok.kind == "MATCHALL":
            return MatchAll()
        if tok.kind == "PHRASE":
            return self.leaf(fld, tok, phrase=True)
        if tok.kind == "WORD":
            nxt = self.peek()
            if nxt is not None and nxt.kind == "COLON":
                self.take()
                if fld is not None:
                    raise _error("a field name inside a field group", tok.pos)
                if tok.prefix:
                    raise _error("wildcards are not allowed in field names", tok.pos)
                name = validate_field(tok.text)
                value = self.peek()
                if value is None:
                    raise _error(f'no value after "{_clip(name)}:"', tok.pos)
                if value.kind == "LPAREN":
                    self.take()
                    inner = self.parse_or(name, self.enter(depth, value.pos))
                    close = self.peek()
                    if close is None or close.kind != "RPAREN":
                        raise _error("unbalanced parentheses", value.pos)
                    self.take()
                    return inner
                if value.kind in ("WORD", "PHRASE"):
                    self.take()
                    if value.kind == "WORD" and self.peek_is("COLON"):
                        raise _error("unexpected ':' (escape it with \\)", value.pos)
                    return self.leaf(name, value, phrase=value.kind == "PHRASE")
                if value.kind == "MATCHALL":
                    raise _error("field:* is not supported", value.pos)
                raise _error(f'no value after "{_clip(name)}:"', tok.pos)
            return self.leaf(fld, tok, phrase=False)
        if tok.kind == "RPAREN":
            raise _error("unbalanced parentheses", tok.pos)
        if tok.kind == "COLON":
            raise _error("a ':' must follow a field name (escape it with \\)", tok.pos)
        raise _error(f"{tok.kind} where a search term was expected", tok.pos)

    def peek_is(self, kind: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == kind

    def leaf(self, fld: str | None, tok: _Tok, *, phrase: bool) -> Query | None:
        self.terms += 1
        if self.terms > self.limits.max_terms:
            raise _error(f"more than {self.limits.max_terms} search terms")
        text = tok.text
        field_name = None if fld == DEFAULT_FIELD else fld
        if tok.prefix:
            if len(text) < self.limits.min_prefix_length:
                raise _error(
                    f"a wildcard needs at least {self.limits.min_prefix_length} characters "
                    "before the *",
                    tok.pos,
                )
            if is_text_field(field_name) and tokenize(text) != [text.lower()]:
                raise _error("a wildcard term must be a single word of letters and digits")
            return Prefix(field_name, text)
        if is_text_field(field_name):
            tokens = tokenize(text)
            self.terms += max(0, len(tokens) - 1)  # each word of a phrase counts
            if self.terms > self.limits.max_terms:
                raise _error(f"more than {self.limits.max_terms} search terms")
            if not tokens:
                return None
            if phrase or len(tokens) > 1:
                return Phrase(field_name, text)
            return Term(field_name, text)
        if phrase:
            return Phrase(field_name, text)
        return Term(field_name, text)


def parse_query(text: str, *, limits: QueryLimits = QueryLimits()) -> Query:
    """Parse a CKAN ``q`` (the subset described in the module docstring) into a query.

    An empty query (also ``""`` or ``''``) or one with no searchable word matches every
    document. Raises ``SearchQueryError`` for anything outside the syntax or the limits.
    """
    if not isinstance(text, str):
        raise SearchQueryError("Search Query is invalid: the query must be a string")
    if len(text) > limits.max_query_length:
        raise _error(f"longer than {limits.max_query_length} characters")
    stripped = text.strip()
    if stripped in ("", '""', "''"):
        return MatchAll()
    tokens = _lex(stripped)
    if len(tokens) > 3 * limits.max_terms + 2 * limits.max_depth + 8:
        raise _error("too many search terms and operators")
    try:
        node = _Parser(tokens, limits).parse()
    except RecursionError:  # pragma: no cover - depth is bounded well below the stack limit
        raise _error("nesting too deep") from None
    return MatchAll() if node is None else node


def parse_filter(fq: str, *, limits: QueryLimits = QueryLimits()) -> Query:
    """Parse a CKAN ``fq`` (same grammar as ``parse_query``; clauses are ANDed), e.g.
    ``tags:economy +res_format:CSV organization:"my-org"``."""
    return parse_query(fq, limits=limits)


_SORT_ALIASES = {
    "score": "score",
    "rank": "score",
    "name": "name",
    "title": "title",
    "title_string": "title",
    "metadata_modified": "metadata_modified",
    "metadata_created": "metadata_created",
}
_MAX_SORT_KEYS = 4


def parse_sort(text: str) -> tuple[SortKey, ...]:
    """Parse a CKAN ``sort`` such as ``"score desc, metadata_modified desc"``.

    Accepts ``score``, ``name``, ``title``/``title_string``, ``metadata_modified`` and
    ``metadata_created``, each with ``asc`` or ``desc``, at most four keys. An empty value
    or ``rank`` means the default order and returns ``()``.
    """
    if not isinstance(text, str) or len(text) > 200:
        raise SearchQueryError('Search Query is invalid: "sort" parameter')
    stripped = text.strip()
    if stripped in ("", "rank"):
        return ()
    keys: list[SortKey] = []
    for part in stripped.split(","):
        words = part.split()
        if len(words) != 2:
            raise SearchQueryError(
                f'Search Query is invalid: "sort" needs "<field> asc|desc", got "{_clip(part)}"'
            )
        name, direction = words[0], words[1].lower()
        if name not in _SORT_ALIASES:
            raise SearchQueryError(f'Search Query is invalid: cannot sort by "{_clip(name)}"')
        if direction not in ("asc", "desc"):
            raise SearchQueryError(
                "Search Query is invalid: sort direction must be asc or desc, "
                f'got "{_clip(words[1])}"'
            )
        keys.append(SortKey(_SORT_ALIASES[name], direction == "desc"))
    if len(keys) > _MAX_SORT_KEYS:
        raise SearchQueryError(f"Search Query is invalid: at most {_MAX_SORT_KEYS} sort keys")
    return tuple(keys)


# ---------------------------------------------------------------------------------------------
# Rendering (AST -> query text) and highlighting


def _escape(text: str) -> str:
    out = []
    for ch in text:
        if ch in _SPECIALS or ch.isspace():
            out.append("\\")
        out.append(ch)
    escaped = "".join(out)
    return "\\" + escaped if escaped in _OPERATOR_WORDS else escaped


def _escape_phrase(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def render_query(query: Query) -> str:
    """Query text that ``parse_query`` reads back into ``query`` (for nodes the parser can
    produce: non-empty terms; multi-token text terms come back as phrases). Iterative, so
    deep trees cannot exhaust the stack."""
    out: list[str] = []
    stack: list[Query | str] = [query]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, MatchAll):
            out.append("*:*")
        elif isinstance(item, Term | Phrase | Prefix):
            head = "" if item.field is None else f"{item.field}:"
            if isinstance(item, Term):
                out.append(head + _escape(item.text))
            elif isinstance(item, Phrase):
                out.append(f'{head}"{_escape_phrase(item.text)}"')
            else:
                out.append(head + _escape(item.prefix) + "*")
        elif isinstance(item, Not):
            out.append("NOT ")
            stack.append(item.child)
        else:
            joiner = " AND " if isinstance(item, And) else " OR "
            parts: list[Query | str] = ["("]
            for index, child in enumerate(item.children):
                if index:
                    parts.append(joiner)
                parts.append(child)
            parts.append(")")
            stack.extend(reversed(parts))
    return "".join(out)


def _positive_leaves(query: Query) -> list[Term | Phrase | Prefix]:
    leaves: list[Term | Phrase | Prefix] = []
    stack: list[tuple[Query, bool]] = [(query, False)]
    while stack:
        node, negated = stack.pop()
        if isinstance(node, Not):
            stack.append((node.child, not negated))
        elif isinstance(node, And | Or):
            stack.extend((child, negated) for child in node.children)
        elif isinstance(node, _LEAVES) and not negated:
            leaves.append(node)
    return leaves


def _cut(text: str, s: int, e: int, start: int, end: int) -> bool:
    """True when the token at ``text[s:e]``, found in ``text[start:end]``, is part of a longer
    token cut by the window's edge (such a piece is not a word of the text)."""
    before = s == start and start > 0 and _TOKEN_RE.match(text, start - 1) is not None
    after = e == end and end < len(text) and _TOKEN_RE.match(text, end) is not None
    return before or after


def highlight(
    query: Query, fields: Mapping[str, str], *, fragment_chars: int = 200
) -> dict[str, tuple[str, ...]]:
    """Highlighted fragments of ``fields`` (field name to text, e.g. title and notes) for the
    words of ``query`` that search them or the default field.

    The text is HTML-escaped and each matching token wrapped in ``<em>...</em>``; a field
    longer than ``fragment_chars`` gives one fragment around its first match. Fields with no
    match are left out. Every adapter calls this, so highlights agree across engines.
    """
    words: set[str] = set()
    prefixes: list[str] = []
    for leaf in _positive_leaves(query):
        if not is_text_field(leaf.field):
            continue
        if isinstance(leaf, Prefix):
            prefixes.append(leaf.prefix.lower())
        else:
            words.update(tokenize(leaf.text))
    result: dict[str, tuple[str, ...]] = {}
    if not words and not prefixes:
        return result

    def matches(tok: str) -> bool:
        tok = tok.lower()
        return tok in words or any(tok.startswith(p) for p in prefixes)

    for name, text in fields.items():
        if not text:
            continue
        # find the first match only, then scan just the fragment around it (a field may be a
        # 100,000-character chunk of file text)
        first = next((m for m in _TOKEN_RE.finditer(text) if matches(m.group())), None)
        if first is None:
            continue
        start, end = 0, len(text)
        if end > fragment_chars:
            start = max(0, first.start() - fragment_chars // 4)
            end = min(len(text), start + fragment_chars)
        spans = [
            m.span()
            for m in _TOKEN_RE.finditer(text, start, end)
            if matches(m.group()) and not _cut(text, *m.span(), start, end)
        ]
        pieces, cursor = [], start
        for s, e in spans:
            pieces.append(html.escape(text[cursor:s]))
            pieces.append(f"<em>{html.escape(text[s:e])}</em>")
            cursor = e
        pieces.append(html.escape(text[cursor:end]))
        prefix = "..." if start > 0 else ""
        suffix = "..." if end < len(text) else ""
        result[name] = (prefix + "".join(pieces) + suffix,)
    return result
