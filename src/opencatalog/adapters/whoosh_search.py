"""A search index on Whoosh (the maintained ``whoosh-reloaded`` distribution), pure Python.

URLs: ``whoosh:///abs/path`` (or a plain path) keeps the index in that folder, creating it if
needed; ``whoosh://`` keeps it in memory; ``whoosh://relative/path`` is relative to the
working directory.

Layout: text fields use ``SeparatedWordsTokenizer`` (the domain tokeniser, with a position gap
between the values of a multi-valued field) and a lowercase filter; keyword fields use
``ValuesTokenizer`` (each value one term, case kept). Faceted keyword fields also keep their
values in a list column (``ListKeyword``), which makes facet counting many times faster than
reading postings. The schema is pickled into the index, so these classes live here, in an
importable module, and must keep their names.

Whoosh commits are slow (about 0.1 s each at 100k documents); use ``bulk()`` for loads, which
buffers the changes and writes them with one writer and one commit.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from whoosh import columns, fields, index, query, sorting
from whoosh.analysis import LowercaseFilter, Token, Tokenizer
from whoosh.filedb.filestore import RamStorage
from whoosh.writing import CLEAR

from opencatalog.domain.search import (
    _TOKEN_RE,
    DEFAULT_FIELD,
    EXTRAS_PREFIX,
    FACET_FIELDS,
    And,
    DatasetDocument,
    MatchAll,
    Not,
    Or,
    Phrase,
    Prefix,
    Query,
    QueryLimits,
    SearchHit,
    SearchPage,
    SearchQuery,
    Term,
    facet_values,
    field_values,
    highlight,
    is_text_field,
    tokenize,
    top_facet_counts,
)
from opencatalog.errors import BackendError, ConfigurationError, SearchQueryError
from opencatalog.ports.search import IndexStats, SearchIndex

__all__ = ["ListKeyword", "SeparatedWordsTokenizer", "ValuesTokenizer", "WhooshSearchIndex"]

log = logging.getLogger(__name__)

SEPARATOR = "\x1e"
"""Joins the values of a multi-valued field into the one string Whoosh takes per field."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TEXT = ("text", "title", "notes", "res_name", "res_description", "author", "maintainer")
_STORED_TEXT = ("title", "notes")
_KEYWORD = (
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
    "labels",
)
_SORT_FIELDS = {
    "name": "name",
    "title": "title_sort",
    "metadata_modified": "modified",
    "metadata_created": "created",
}


class SeparatedWordsTokenizer(Tokenizer):
    """Runs of letters and digits in each ``SEPARATOR``-joined value, with a one-position
    gap between values so that phrases never span two values."""

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self)

    def __hash__(self) -> int:
        return hash(type(self).__name__)

    def __call__(
        self,
        value: str,
        positions: bool = False,
        chars: bool = False,
        keeporiginal: bool = False,
        removestops: bool = True,
        start_pos: int = 0,
        start_char: int = 0,
        tokenize: bool = True,
        mode: str = "",
        **kwargs: Any,
    ) -> Iterator[Token]:
        token = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        if not tokenize:
            token.original = token.text = value
            token.boost = 1.0
            if positions:
                token.pos = start_pos
            if chars:
                token.startchar, token.endchar = start_char, start_char + len(value)
            yield token
            return
        pos = start_pos
        offset = 0
        for part in value.split(SEPARATOR):
            for match in _TOKEN_RE.finditer(part):
                token.text = match.group()
                token.boost = 1.0
                token.stopped = False
                if keeporiginal:
                    token.original = token.text
                if positions:
                    token.pos = pos
                if chars:
                    token.startchar = start_char + offset + match.start()
                    token.endchar = start_char + offset + match.end()
                pos += 1
                yield token
            pos += 1
            offset += len(part) + 1


class ValuesTokenizer(Tokenizer):
    """Each ``SEPARATOR``-joined value is one token, unchanged."""

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self)

    def __hash__(self) -> int:
        return hash(type(self).__name__)

    def __call__(
        self,
        value: str,
        positions: bool = False,
        chars: bool = False,
        keeporiginal: bool = False,
        removestops: bool = True,
        start_pos: int = 0,
        start_char: int = 0,
        tokenize: bool = True,
        mode: str = "",
        **kwargs: Any,
    ) -> Iterator[Token]:
        token = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        parts = value.split(SEPARATOR) if tokenize else [value]
        offset = 0
        for index_, part in enumerate(parts):
            if part:
                token.text = part
                token.boost = 1.0
                token.stopped = False
                if keeporiginal:
                    token.original = part
                if positions:
                    token.pos = start_pos + index_
                if chars:
                    token.startchar = start_char + offset
                    token.endchar = start_char + offset + len(part)
                yield token
            offset += len(part) + 1


class ListKeyword(fields.KEYWORD):
    """A keyword field of ``SEPARATOR``-joined values, optionally with a list column (one
    list of values per document) for fast facet counts."""

    def __init__(self, *, stored: bool = False, column: bool = False) -> None:
        super().__init__(stored=stored, scorable=True, analyzer=ValuesTokenizer())
        self.column_type = columns.VarBytesListColumn() if column else None

    def to_column_value(self, value: str) -> list[bytes]:
        return [part.encode("utf-8") for part in dict.fromkeys(value.split(SEPARATOR)) if part]

    def from_column_value(self, value: list[bytes]) -> list[str]:
        return [part.decode("utf-8") for part in value]


def _micros(value: datetime) -> int:
    if value.tzinfo is None:
        raise ValueError("search documents need timezone-aware datetimes")
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _schema() -> fields.Schema:
    analyzer = SeparatedWordsTokenizer() | LowercaseFilter()
    schema = fields.Schema(
        id=fields.ID(stored=True, unique=True, sortable=True),
        name=fields.ID(stored=True, sortable=True),
        title_sort=fields.ID(sortable=True),
        modified=fields.NUMERIC(numtype=int, bits=64, signed=True, stored=True, sortable=True),
        created=fields.NUMERIC(numtype=int, bits=64, signed=True, stored=True, sortable=True),
    )
    for name in _TEXT:
        schema.add(name, fields.TEXT(analyzer=analyzer, stored=name in _STORED_TEXT))
    for name in _KEYWORD:
        schema.add(name, ListKeyword(column=name in FACET_FIELDS))
    schema.add(EXTRAS_PREFIX + "*", fields.TEXT(analyzer=analyzer), glob=True)
    return schema


_NULL = query.NullQuery


def _score(hit: Any, by_score: bool) -> float:
    """The relevance score of a hit found with ``sortedby`` (whose ``score`` is the sort key
    tuple; a ``ScoreFacet`` key is the negated score)."""
    key = hit.score
    if isinstance(key, tuple):
        return float(-key[0]) if by_score and key else 0.0
    return float(key or 0.0)


class WhooshSearchIndex(SearchIndex):
    """A ``SearchIndex`` on Whoosh (``path`` None: in memory).

    ``writer_limit_mb`` is the writer's memory budget for bulk loads. Queries are serialised
    by a lock (Whoosh searchers are not meant to be shared between threads).
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        writer_limit_mb: int = 256,
        limits: QueryLimits = QueryLimits(),
    ) -> None:
        self._path = None if path is None else Path(path)
        self._limit_mb = writer_limit_mb
        self._limits = limits
        self._lock = threading.RLock()
        self._searcher: Any = None
        self._pending: dict[str, DatasetDocument | None] | None = None
        self._bulk_depth = 0
        self._closed = False
        try:
            if self._path is None:
                self._index = RamStorage().create_index(_schema())
            else:
                self._path.mkdir(parents=True, exist_ok=True)
                if index.exists_in(str(self._path)):
                    self._index = index.open_dir(str(self._path))
                else:
                    self._index = index.create_in(str(self._path), _schema())
        except (OSError, index.IndexError) as exc:
            raise ConfigurationError(
                f"cannot open the Whoosh index at {self._path}: {exc}"
            ) from exc

    @classmethod
    def from_url(cls, url: str, **options: Any) -> WhooshSearchIndex:
        """``whoosh://`` (in memory), ``whoosh:///abs/path``, ``whoosh://rel/path`` or a plain
        path; ``options`` are the constructor's keyword arguments."""
        if "://" not in url:
            return cls(url, **options)
        parts = urlsplit(url)
        if parts.scheme != "whoosh":
            raise ConfigurationError(f"not a Whoosh search index URL: {url!r}")
        path = unquote(parts.netloc + parts.path)
        return cls(path or None, **options)

    # -- writing -------------------------------------------------------------------------

    @staticmethod
    def _fields(doc: DatasetDocument) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": doc.id,
            "name": doc.name,
            "title_sort": doc.title.lower(),
            "modified": _micros(doc.metadata_modified),
            "created": _micros(doc.metadata_created),
        }
        for name in _TEXT:
            values = field_values(doc, name)
            if values:
                out[name] = SEPARATOR.join(values)
        for name in _KEYWORD:
            values = doc.labels if name == "labels" else facet_values(doc, name)
            if values:
                out[name] = SEPARATOR.join(values)
        for key, value in doc.extras.items():
            if value and key.replace("_", "a").isalnum() and key.isascii():
                out[EXTRAS_PREFIX + key] = value
        return out

    def _write(self, changes: dict[str, DatasetDocument | None], *, clear: bool = False) -> None:
        if self._closed:
            raise BackendError("the search index is closed")
        try:
            writer = self._index.writer(limitmb=self._limit_mb)
            try:
                for doc_id, doc in changes.items():
                    if doc is None:
                        writer.delete_by_term("id", doc_id)
                    else:
                        writer.update_document(**self._fields(doc))
            except BaseException:
                writer.cancel()
                raise
            writer.commit(mergetype=CLEAR) if clear else writer.commit()
        except (OSError, index.LockError) as exc:
            raise BackendError(f"cannot write to the Whoosh index: {exc}") from exc
        self._searcher = None

    def index(self, documents: Iterable[DatasetDocument]) -> None:
        changes: dict[str, DatasetDocument | None] = {doc.id: doc for doc in documents}
        with self._lock:
            if self._pending is not None:
                for doc_id, doc in changes.items():
                    self._pending.pop(doc_id, None)
                    self._pending[doc_id] = doc
            elif changes:
                self._write(changes)

    def delete(self, ids: Iterable[str]) -> None:
        changes: dict[str, DatasetDocument | None] = dict.fromkeys(ids)
        with self._lock:
            if self._pending is not None:
                self._pending.update(changes)
            elif changes:
                self._write(changes)

    def clear(self) -> None:
        with self._lock:
            if self._pending is not None:
                self._pending.clear()
            self._write({}, clear=True)

    @contextmanager
    def bulk(self) -> Iterator[SearchIndex]:
        """Buffer changes and write them with one writer and one commit at the end (dropped
        if the block raises)."""
        with self._lock:
            outer = self._pending is None
            if outer:
                self._pending = {}
            try:
                yield self
            except BaseException:
                if outer:
                    self._pending = None
                raise
            if outer:
                pending, self._pending = self._pending, None
                if pending:
                    self._write(pending)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            if self._searcher is not None:
                self._searcher.close()
                self._searcher = None
            self._index.close()
            self._closed = True

    # -- reading -------------------------------------------------------------------------

    def _get_searcher(self) -> Any:
        if self._closed:
            raise BackendError("the search index is closed")
        if self._searcher is None:
            self._searcher = self._index.searcher()
        elif not self._searcher.up_to_date():
            if self._searcher.doc_count_all() == 0:  # refresh() fails on an empty reader
                self._searcher.close()
                self._searcher = self._index.searcher()
            else:
                self._searcher = self._searcher.refresh()
        return self._searcher

    def count(self) -> int:
        with self._lock:
            return int(self._get_searcher().doc_count())

    def ids(self) -> Iterator[tuple[str, datetime]]:
        with self._lock:
            reader = self._get_searcher().reader()
            pairs = [
                (stored["id"], _EPOCH + timedelta(microseconds=stored["modified"]))
                for stored in reader.all_stored_fields()
            ]
        return iter(pairs)

    def stats(self) -> IndexStats:
        size = 0
        if self._path is not None:
            size = sum(p.stat().st_size for p in self._path.iterdir() if p.is_file())
        return IndexStats(documents=self.count(), size_bytes=size)

    # -- queries -------------------------------------------------------------------------

    def _leaf(self, node: Term | Phrase | Prefix, reader: Any) -> Any:
        name = DEFAULT_FIELD if node.field is None else node.field
        if isinstance(node, Prefix):
            prefix = node.prefix
            if is_text_field(name):
                prefix = prefix.lower()
                if tokenize(node.prefix) != [prefix]:
                    return _NULL
            expansions = islice(
                reader.expand_prefix(name, prefix), self._limits.max_prefix_expansion + 1
            )
            if sum(1 for _ in expansions) > self._limits.max_prefix_expansion:
                raise SearchQueryError(
                    f'Search Query is invalid: "{prefix}*" matches more than '
                    f"{self._limits.max_prefix_expansion} terms; use a longer prefix"
                )
            return query.Prefix(name, prefix)
        if not is_text_field(name):
            return query.Term(name, node.text)
        words = tokenize(node.text)
        if not words:
            return _NULL
        if len(words) == 1:
            return query.Term(name, words[0])
        return query.Phrase(name, words)

    def _convert(self, node: Query, reader: Any) -> Any:
        if isinstance(node, MatchAll):
            return query.Every()
        if isinstance(node, Term | Phrase | Prefix):
            return self._leaf(node, reader)
        if isinstance(node, Not):
            child = self._convert(node.child, reader)
            if child is _NULL:
                return query.Every()
            return query.And([query.Every(), query.Not(child)])
        if isinstance(node, And):
            parts = [self._convert(child, reader) for child in node.children]
            if any(part is _NULL for part in parts):
                return _NULL
            return parts[0] if len(parts) == 1 else query.And(parts)
        if isinstance(node, Or):
            parts = [
                p for child in node.children if (p := self._convert(child, reader)) is not _NULL
            ]
            if not parts:
                return _NULL
            return parts[0] if len(parts) == 1 else query.Or(parts)
        raise SearchQueryError(f"Search Query is invalid: not a query node: {node!r}")

    def query(self, q: SearchQuery) -> SearchPage:
        empty = SearchPage(total=0, facets={f.field: () for f in q.facets})
        if not q.states or (q.labels is not None and not q.labels):
            return empty
        with self._lock:
            searcher = self._get_searcher()
            reader = searcher.reader()
            main = self._convert(q.query, reader)
            filters = [self._convert(f, reader) for f in q.filters]
            if main is _NULL or any(f is _NULL for f in filters) or searcher.doc_count() == 0:
                return empty
            filters.append(query.Or([query.Term("state", s) for s in sorted(q.states)]))
            if q.labels is not None:
                filters.append(query.Or([query.Term("labels", lb) for lb in sorted(q.labels)]))
            sort = list(q.effective_sort)
            if isinstance(q.query, MatchAll):
                sort = [key for key in sort if key.field != "score"]
            facets: list[Any] = []
            for key in sort:
                if key.field == "score":
                    facets.append(sorting.ScoreFacet())
                else:
                    facets.append(
                        sorting.FieldFacet(_SORT_FIELDS[key.field], reverse=key.descending)
                    )
            facets.append(sorting.FieldFacet("id"))
            groupedby = {
                request.field: sorting.FieldFacet(
                    request.field, allow_overlap=True, maptype=sorting.Count
                )
                for request in q.facets
            }
            wanted = max(1, min(q.offset + q.limit, searcher.doc_count()))
            try:
                results = searcher.search(
                    main,
                    limit=wanted,
                    filter=query.And(filters),
                    sortedby=sorting.MultiFacet(facets),
                    groupedby=groupedby or None,
                    optimize=False,
                )
                total = len(results)
                by_score = bool(sort) and sort[0].field == "score"
                page = results[q.offset : q.offset + q.limit] if q.limit else []
                hits = []
                for hit in page:
                    marks = {}
                    if q.highlight:
                        stored = hit.fields()
                        marks = highlight(q.query, {n: stored.get(n, "") for n in _STORED_TEXT})
                    hits.append(
                        SearchHit(id=hit["id"], score=_score(hit, by_score), highlights=marks)
                    )
                counts = {}
                for request in q.facets:
                    raw = results.groups(request.field)
                    values = {
                        (k.decode("utf-8") if isinstance(k, bytes) else str(k)): int(n)
                        for k, n in raw.items()
                        if k is not None
                    }
                    counts[request.field] = top_facet_counts(values, request)
            except (OSError, ValueError) as exc:
                raise BackendError(f"Whoosh query failed: {exc}") from exc
        return SearchPage(total=total, hits=tuple(hits), facets=counts)
