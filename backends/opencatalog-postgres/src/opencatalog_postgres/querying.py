"""Translation of a ``SearchQuery`` into one SQL statement with bound parameters.

User text only ever travels as parameters: keyword values as ``text``/``text[]``, LIKE patterns
with ``%``/``_``/``\\`` escaped, and ``tsquery`` values written here from lexemes quoted by
:func:`~opencatalog_postgres.documents.quote_lexeme` (``tsquery`` input syntax, never
``to_tsquery`` parsing, so PostgreSQL neither splits nor normalises anything). SQL text is
assembled from fixed fragments and column names from fixed tables only.

Leaves (see :mod:`opencatalog.domain.search` for the rules):

* keyword fields: ``col = $1`` / ``col @> ARRAY[$1]``; prefixes ``col LIKE '$1%'`` or ``EXISTS``
  over ``unnest(col)``;
* the default field ``text``: ``text_tsv @@ 'word'``, phrases ``'a' <-> 'b'`` guarded by the
  GIN-friendly ``'a' & 'b'``, prefixes ``'wat':*``; where a document's ``tsvector`` cannot
  decide (see ``documents``) the token string in ``text_exact`` does, instead of the vector;
  plain ``tsquery`` tests under one ``And``/``Or`` are merged into one;
* other text fields: the same ``tsquery`` on ``text_tsv`` selects candidates through the GIN
  index (every token of a field is also in ``text``), then ``strpos`` on the field's token
  string decides exactly: ``' water '``, ``' water quality '``, ``' wat'``.

``Not(x)`` is ``(x) IS NOT TRUE`` (so absent values, NULL in SQL, behave as "no match"), or,
when ``x`` tests a ``tsvector``, ``id NOT IN (SELECT id ... WHERE x)``: one index scan and a
hash instead of reading every document's vector.

The statement returns rows ``(kind, facet, value, n, score)``: kind 0 is a hit (``value`` the
id, ``n`` its rank on the page), kind 1 the total (``n``), kind 2 a facet count. When the query
tests a ``tsvector``, ranks, or asks for facets, the matching rows are computed once in a
``MATERIALIZED`` CTE (this also keeps the planner from walking the ``name`` index and testing
each row's vector for ``ORDER BY name LIMIT n``); otherwise the page and the count read the
table directly, so a sorted match-all page walks a B-tree index.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from attrs import frozen
from opencatalog.domain.search import (
    DEFAULT_FIELD,
    And,
    FacetRequest,
    MatchAll,
    Not,
    Or,
    Phrase,
    Prefix,
    Query,
    SearchQuery,
    Term,
    TextQuery,
    is_text_field,
    tokenize,
)
from opencatalog.errors import SearchQueryError

from opencatalog_postgres.documents import (
    FIELD_COLUMNS,
    MAX_TOKEN_CHARS,
    clean,
    extras_key,
    lexeme,
    quote_lexeme,
)

__all__ = [
    "KIND_FACET",
    "KIND_HIT",
    "KIND_TOTAL",
    "Statement",
    "compile_search",
    "compile_text",
]

KIND_HIT = 0
KIND_TOTAL = 1
KIND_FACET = 2

MAX_NESTING = 200
"""Deeper query trees are refused (the parser already stops at ``QueryLimits.max_depth``)."""

# keyword field -> (column, is an array column, empty values are absent)
_KEYWORDS: dict[str, tuple[str, bool, bool]] = {
    "id": ("id", False, True),
    "name": ("name", False, True),
    "organization": ("organization", False, True),
    "owner_org": ("owner_org", False, True),
    "license_id": ("license_id", False, True),
    "state": ("state", False, True),
    "dataset_type": ("dataset_type", False, False),
    "capacity": ("capacity", False, False),
    "tags": ("tags", True, True),
    "groups": ("groups", True, True),
    "res_format": ("res_format", True, True),
    "res_url": ("res_url", True, True),
}
_SORT_COLUMNS = {
    "name": "name",
    "title": "title_sort",
    "metadata_modified": "metadata_modified",
    "metadata_created": "metadata_created",
}


@frozen
class _Const:
    value: bool


@frozen
class _Ts:
    """``column @@ query``: mergeable with other tests of the same column."""

    column: str
    query: str


@frozen
class _Sql:
    text: str
    params: tuple[Any, ...]
    heavy: bool
    """True when evaluating it reads ``tsvector`` values (a full-text test)."""


_Part = _Const | _Ts | _Sql


def _render(part: _Ts | _Sql) -> _Sql:
    if isinstance(part, _Ts):
        return _Sql(f"{part.column} @@ %s::tsquery", (part.query,), True)
    return part


def _like_prefix(prefix: str) -> str:
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


class _Compiler:
    """Compiles query trees against one table; aliases subqueries ``n1``, ``n2``, ..."""

    def __init__(self, table: str) -> None:
        self.table = table
        self._aliases = 0
        self.full_text = False
        """Whether a compiled condition tests ``tsvector`` values (anywhere)."""

    # -- leaves --------------------------------------------------------------------------

    def keyword(self, node: Term | Phrase | Prefix, name: str, alias: str) -> _Part:
        column, is_array, skip_empty = _KEYWORDS[name]
        ref = f"{alias}.{column}"
        if isinstance(node, Prefix):
            prefix = clean(node.prefix)
            if not prefix:
                if is_array:
                    return _Sql(f"cardinality({ref}) > 0", (), False)
                return _Sql(f"{ref} <> ''", (), False) if skip_empty else _Const(True)
            if is_array:
                return _Sql(
                    f"EXISTS (SELECT FROM unnest({ref}) AS kw(v) WHERE kw.v LIKE %s)",
                    (_like_prefix(prefix),),
                    False,
                )
            return _Sql(f"{ref} LIKE %s", (_like_prefix(prefix),), False)
        value = clean(node.text)
        if not value and skip_empty:
            return _Const(False)
        if is_array:
            return _Sql(f"{ref} @> %s::text[]", ([value],), False)
        return _Sql(f"{ref} = %s", (value,), False)

    def text(self, node: Term | Phrase | Prefix, name: str, alias: str) -> _Part:
        self.full_text = True
        column = f"{alias}.text_tsv"
        if isinstance(node, Prefix):
            prefix = node.prefix.lower()
            if tokenize(node.prefix) != [prefix]:
                return _Const(False)
            if len(prefix) <= MAX_TOKEN_CHARS:
                candidates = quote_lexeme(prefix) + ":*"
            else:
                candidates = quote_lexeme(lexeme(prefix))
            return self._checked(column, candidates, None, " " + prefix, name, alias)
        words = tokenize(node.text)
        if not words:
            return _Const(False)
        quoted = [quote_lexeme(lexeme(w)) for w in words]
        candidates = " & ".join(quoted)
        phrase = " <-> ".join(quoted) if len(words) > 1 else None
        return self._checked(column, candidates, phrase, f" {' '.join(words)} ", name, alias)

    def _checked(
        self,
        column: str,
        candidates: str,
        phrase: str | None,
        needle: str,
        name: str,
        alias: str,
    ) -> _Part:
        """``candidates`` (a ``tsquery`` over ``text``, GIN-indexed) narrowed to the exact
        match: ``needle`` in the field's token string, or, for ``text`` itself, the
        ``phrase`` (``<->``) or, when the tsvector cannot decide, ``needle`` in
        ``text_exact``."""
        if name == DEFAULT_FIELD:
            exact_needed = phrase is not None or len(needle.strip()) > MAX_TOKEN_CHARS
            if not exact_needed:
                return _Ts(column, candidates)
            fallback = f"coalesce(strpos({alias}.text_exact, %s), 0) > 0"
            if phrase is None:
                return _Sql(f"({column} @@ %s::tsquery AND {fallback})", (candidates, needle), True)
            # a row with a token string has a vector without positions (a phrase never
            # matches it): test one or the other, so each row reads one of the two values
            return _Sql(
                f"({column} @@ %s::tsquery AND CASE WHEN {alias}.text_exact IS NULL "
                f"THEN {column} @@ %s::tsquery ELSE {fallback} END)",
                (candidates, phrase, needle),
                True,
            )
        if name in FIELD_COLUMNS:
            check = f"strpos({alias}.{FIELD_COLUMNS[name]}, %s) > 0"
            params: tuple[Any, ...] = (candidates, needle)
        else:
            check = f"coalesce(strpos({alias}.extras_tokens ->> %s, %s), 0) > 0"
            params = (candidates, extras_key(name), needle)
        return _Sql(f"({column} @@ %s::tsquery AND {check})", params, True)

    # -- tree ----------------------------------------------------------------------------

    def compile(self, node: Query, alias: str, depth: int = 0) -> _Part:
        """The condition ``node`` puts on the row ``alias``."""
        if depth > MAX_NESTING:
            raise SearchQueryError(f"Search Query is invalid: nested deeper than {MAX_NESTING}")
        if isinstance(node, MatchAll):
            return _Const(True)
        if isinstance(node, Term | Phrase | Prefix):
            name = DEFAULT_FIELD if node.field is None else node.field
            if is_text_field(name):
                return self.text(node, name, alias)
            if name not in _KEYWORDS:
                raise SearchQueryError(f'Search Query is invalid: unknown field "{name[:60]}"')
            return self.keyword(node, name, alias)
        if isinstance(node, Not):
            if _heavy(node.child):
                self._aliases += 1
                inner = f"n{self._aliases}"
                child = self.compile(node.child, inner, depth + 1)
                if isinstance(child, _Const):
                    return _Const(not child.value)
                sql = _render(child)
                return _Sql(
                    f"{alias}.id NOT IN (SELECT {inner}.id FROM {self.table} AS {inner} "
                    f"WHERE {sql.text})",
                    sql.params,
                    False,
                )
            child = self.compile(node.child, alias, depth + 1)
            if isinstance(child, _Const):
                return _Const(not child.value)
            sql = _render(child)
            return _Sql(f"({sql.text}) IS NOT TRUE", sql.params, sql.heavy)
        if isinstance(node, And | Or):
            parts = [self.compile(child, alias, depth + 1) for child in node.children]
            return _combine(parts, conjunction=isinstance(node, And))
        raise SearchQueryError(f"Search Query is invalid: not a query node: {node!r}")


def _heavy(node: Query) -> bool:
    """Whether the condition of ``node`` (outside nested ``Not``s) tests a ``tsvector``."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, Term | Phrase | Prefix):
            if is_text_field(item.field):
                return True
        elif isinstance(item, And | Or):
            stack.extend(item.children)
    return False


def _combine(parts: Sequence[_Part], *, conjunction: bool) -> _Part:
    """AND (``conjunction``) or OR the parts, folding constants and merging ``tsquery`` tests
    of the same column."""
    absorbing = not conjunction  # FALSE absorbs an AND, TRUE an OR
    merged: dict[str, list[str]] = {}
    others: list[_Sql] = []
    for part in parts:
        if isinstance(part, _Const):
            if part.value is absorbing:
                return part
            continue
        if isinstance(part, _Ts):
            merged.setdefault(part.column, []).append(part.query)
        else:
            others.append(part)
    operator = " & " if conjunction else " | "
    combined: list[_Ts | _Sql] = [
        _Ts(column, queries[0] if len(queries) == 1 else operator.join(f"({q})" for q in queries))
        for column, queries in merged.items()
    ]
    combined.extend(others)
    if not combined:
        return _Const(not absorbing)
    if len(combined) == 1:
        return combined[0]
    rendered = [_render(p) for p in combined]
    joiner = " AND " if conjunction else " OR "
    return _Sql(
        "(" + joiner.join(f"({p.text})" for p in rendered) + ")",
        tuple(param for p in rendered for param in p.params),
        any(p.heavy for p in rendered),
    )


def _rank_query(query: Query) -> str | None:
    """A ``tsquery`` over ``rank_tsv`` ORing the words and prefixes of the query's positive
    text leaves (those under an even number of ``Not``), or None when there are none."""
    terms: dict[str, None] = {}
    stack: list[tuple[Query, bool]] = [(query, False)]
    while stack:
        node, negated = stack.pop()
        if isinstance(node, Not):
            stack.append((node.child, not negated))
        elif isinstance(node, And | Or):
            stack.extend((child, negated) for child in node.children)
        elif isinstance(node, Term | Phrase | Prefix) and not negated:
            if not is_text_field(node.field):
                continue
            if isinstance(node, Prefix):
                prefix = node.prefix.lower()
                if tokenize(node.prefix) == [prefix]:
                    if len(prefix) <= MAX_TOKEN_CHARS:
                        terms[quote_lexeme(prefix) + ":*"] = None
                    else:
                        terms[quote_lexeme(lexeme(prefix))] = None
            else:
                for word in tokenize(node.text):
                    terms[quote_lexeme(lexeme(word))] = None
    return " | ".join(terms) if terms else None


@frozen
class Statement:
    """A compiled search: ``sql`` with ``params``; ``empty`` when nothing can match (no
    statement needs to run). ``full_text`` statements test ``tsvector`` values: they must be
    planned without sequential scans (the planner does not count the TOAST fetch of every
    row's vector and otherwise scans the whole table for frequent words)."""

    sql: str
    params: tuple[Any, ...]
    empty: bool = False
    full_text: bool = False


_EMPTY = Statement("", (), empty=True)


def _facet_branch(request: FacetRequest, source: str) -> tuple[str, tuple[Any, ...]] | None:
    if request.limit == 0:
        return None
    limit = None if request.limit < 0 else request.limit
    mincount = max(request.mincount, 1)
    column, is_array, _ = _KEYWORDS[request.field]
    if is_array:
        sql = (  # unnest in the select list (ProjectSet) is cheaper than a LATERAL join
            f"(SELECT {KIND_FACET}, %s::text, f.v, count(*), NULL::real "
            f"FROM (SELECT unnest({column}) AS v FROM {source}) AS f "
            f'GROUP BY f.v HAVING count(*) >= %s ORDER BY count(*) DESC, f.v COLLATE "C" '
            "LIMIT %s)"
        )
    else:
        sql = (
            f"(SELECT {KIND_FACET}, %s::text, {column}, count(*), NULL::real "
            f"FROM {source} WHERE {column} IS NOT NULL "
            f'GROUP BY {column} HAVING count(*) >= %s ORDER BY count(*) DESC, {column} COLLATE "C" '
            "LIMIT %s)"
        )
    return sql, (request.field, mincount, limit)


def compile_search(q: SearchQuery, *, table: str) -> Statement:
    """The statement answering ``q`` against ``table`` (a quoted identifier)."""
    if not q.states or (q.labels is not None and not q.labels):
        return _EMPTY
    compiler = _Compiler(table)
    conditions: list[_Part] = [
        _Sql("d.state = ANY(%s::text[])", (sorted(clean(s) for s in q.states),), False)
    ]
    if q.labels is not None:
        conditions.append(
            _Sql("d.labels && %s::text[]", (sorted(clean(label) for label in q.labels),), False)
        )
    conditions.append(compiler.compile(q.query, "d"))
    conditions.extend(compiler.compile(f, "d") for f in q.filters)
    where = _combine(conditions, conjunction=True)
    if isinstance(where, _Const):
        if not where.value:
            return _EMPTY
        where = _Sql("TRUE", (), False)
    condition = _render(where)

    rank = None if isinstance(q.query, MatchAll) else _rank_query(q.query)
    keys = [k for k in q.effective_sort if k.field != "score" or rank is not None]
    sort_columns = [_SORT_COLUMNS[k.field] for k in keys if k.field != "score"]

    def order(prefix: str) -> str:
        terms = [
            ("score" if k.field == "score" else prefix + _SORT_COLUMNS[k.field])
            + (" DESC" if k.descending else "")
            for k in keys
        ]
        return ", ".join([*terms, prefix + "id"])

    score = "ts_rank(d.rank_tsv, %s::tsquery, 1)" if rank is not None else "1.0::real"
    score_params: tuple[Any, ...] = (rank,) if rank is not None else ()
    page_columns = "".join(f", {c}" for c in dict.fromkeys(sort_columns))
    paging = (q.limit, q.offset)

    materialize = bool(q.facets) or condition.heavy or rank is not None
    if materialize:
        facet_columns = {_KEYWORDS[f.field][0] for f in q.facets}
        found_columns = "".join(
            f", d.{c}" for c in sorted({*sort_columns, *facet_columns} - {"id"})
        )
        sql = [
            f"WITH found AS MATERIALIZED (SELECT d.id, {score} AS score{found_columns} "
            f"FROM {table} AS d WHERE {condition.text}) "
            f"SELECT {KIND_HIT}, NULL::text, page.id, row_number() OVER (ORDER BY "
            f"{order('page.')}), page.score FROM (SELECT id, score{page_columns} FROM found "
            f"ORDER BY {order('')} LIMIT %s OFFSET %s) AS page "
            f"UNION ALL SELECT {KIND_TOTAL}, NULL, NULL, count(*), NULL FROM found"
        ]
        params: list[Any] = [*score_params, *condition.params, *paging]
        for request in {f.field: f for f in q.facets}.values():  # the last of a field wins
            branch = _facet_branch(request, "found")
            if branch is not None:
                sql.append(" UNION ALL " + branch[0])
                params.extend(branch[1])
        return Statement("".join(sql), tuple(params), full_text=compiler.full_text)
    page_select = "".join(f", d.{c}" for c in dict.fromkeys(sort_columns))
    sql_text = (
        f"SELECT {KIND_HIT}, NULL::text, page.id, row_number() OVER (ORDER BY "
        f"{order('page.')}), page.score FROM (SELECT d.id, {score} AS score{page_select} "
        f"FROM {table} AS d WHERE {condition.text} ORDER BY {order('d.')} LIMIT %s OFFSET %s) "
        f"AS page UNION ALL SELECT {KIND_TOTAL}, NULL, NULL, count(*), NULL "
        f"FROM {table} AS d WHERE {condition.text}"
    )
    params = [*score_params, *condition.params, *paging, *condition.params]
    return Statement(sql_text, tuple(params), full_text=compiler.full_text)


def compile_text(q: TextQuery, *, table: str, resource_id: str) -> Statement:
    """The statement answering ``q`` against the resource or content ``table`` (a quoted
    identifier); ``resource_id`` is the column or expression giving a row's resource id.

    Rows are ``(kind, id, resource_id, package_id, n, score)``: kind 0 a hit (``n`` its rank
    on the page), kind 1 the total (``n``). Hits are ordered by score descending, then id.
    The matching rows are computed once (``MATERIALIZED``), ranked with ``ts_rank`` over the
    positive words and prefixes of the query.
    """
    if q.package_ids is not None and not q.package_ids:
        return _EMPTY
    compiler = _Compiler(table)
    conditions: list[_Part] = [compiler.compile(q.query, "d")]
    if q.package_ids is not None:
        ids = sorted(clean(i) for i in q.package_ids)
        conditions.append(_Sql("d.package_id = ANY(%s::text[])", (ids,), False))
    where = _combine(conditions, conjunction=True)
    if isinstance(where, _Const):
        if not where.value:
            return _EMPTY
        where = _Sql("TRUE", (), False)
    condition = _render(where)
    rank = _rank_query(q.query)
    score = "ts_rank(d.text_tsv, %s::tsquery, 1)" if rank is not None else "1.0::real"
    score_params: tuple[Any, ...] = (rank,) if rank is not None else ()
    sql = (
        f"WITH found AS MATERIALIZED (SELECT d.id, {resource_id} AS resource_id, d.package_id, "
        f"{score} AS score FROM {table} AS d WHERE {condition.text}) "
        f"SELECT {KIND_HIT}, page.id, page.resource_id, page.package_id, row_number() OVER "
        "(ORDER BY page.score DESC, page.id), page.score FROM (SELECT * FROM found "
        "ORDER BY score DESC, id LIMIT %s OFFSET %s) AS page "
        f"UNION ALL SELECT {KIND_TOTAL}, NULL, NULL, NULL, count(*), NULL FROM found"
    )
    params = (*score_params, *condition.params, q.limit, q.offset)
    return Statement(sql, params, full_text=compiler.full_text)
