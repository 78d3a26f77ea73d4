"""A search index on tantivy (the ``tantivy`` package): embedded, fast, in one folder.

URLs: ``tantivy:///abs/path`` (or a plain path) keeps the index in that folder, creating it if
needed; ``tantivy://`` keeps it in memory. ``tantivy://relative/path`` is relative to the
working directory.

Layout: text fields use a registered analyser equal to the domain tokeniser (runs of letters
and digits, lowercased); keyword fields are raw terms, the faceted ones also fast fields, so
facets are terms aggregations over columns. Extras go into one pre-tokenised field whose terms
are ``<key>\\x1f<token>``, so ``extras_<key>`` searches need no schema change. Dates are stored
as integer microseconds so sorting is exact.

Writes go through one long-lived writer guarded by a lock; each ``index``/``delete`` call
commits (about 10 ms) unless inside ``bulk()``, which commits once at the end. Only one
process may write to a folder at a time (tantivy holds a lock file); readers never block.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import tantivy

from opencatalog.domain.search import (
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
    SortKey,
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

__all__ = ["TantivySearchIndex"]

log = logging.getLogger(__name__)

_ANALYZER = "oc_text"
_SEP = "\x1f"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TEXT = ("text", "title", "notes", "res_name", "res_description", "author", "maintainer")
_KEYWORD = (
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
    "labels",
)
_STORED_TEXT = ("title", "notes")
# sort field -> (fast field, kind)
_SORT_COLUMNS = {
    "name": "name",
    "title": "title_sort",
    "metadata_modified": "modified",
    "metadata_created": "created",
}
_ALL_VALUES = 1 << 24  # terms aggregation size meaning "every value"


def _micros(value: datetime) -> int:
    if value.tzinfo is None:
        raise ValueError("search documents need timezone-aware datetimes")
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _from_micros(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def _stored(column: str) -> Callable[[tuple[Any, Any]], Any]:
    def value(row: tuple[Any, Any]) -> Any:
        return row[0].get_first(column)

    return value


def _regex_literal(text: str) -> str:
    return "".join(c if c.isascii() and c.isalnum() else f"\\x{{{ord(c):X}}}" for c in text)


def _schema() -> Any:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("id", stored=True, tokenizer_name="raw", fast=True)
    for name in _TEXT:
        builder.add_text_field(name, stored=name in _STORED_TEXT, tokenizer_name=_ANALYZER)
    for name in _KEYWORD:
        fast = name in FACET_FIELDS or name == "name"
        builder.add_text_field(name, stored=name == "name", tokenizer_name="raw", fast=fast)
    builder.add_text_field("extras", tokenizer_name="raw")
    builder.add_text_field("title_sort", stored=True, tokenizer_name="raw", fast=True)
    builder.add_integer_field("modified", stored=True, indexed=True, fast=True)
    builder.add_integer_field("created", stored=True, indexed=True, fast=True)
    return builder.build()


def _analyzer() -> Any:
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.lowercase())
        .build()
    )


class TantivySearchIndex(SearchIndex):
    """A ``SearchIndex`` on an embedded tantivy index (``path`` None: in memory).

    ``writer_heap_mb`` is the indexing memory budget shared by ``writer_threads`` threads
    (0: tantivy picks, one per core up to a limit); larger budgets mean fewer, larger
    segments on bulk loads. ``cache_size`` pages of faceted queries are kept until the next
    commit (the ``/dataset`` landing page and popular facet pages are asked for over and
    over); the key includes the reader's document and segment counts, so commits by another
    process are noticed too. 0 disables the cache.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        writer_heap_mb: int = 256,
        writer_threads: int = 0,
        limits: QueryLimits = QueryLimits(),
        cache_size: int = 64,
    ) -> None:
        self._path = None if path is None else Path(path)
        self._heap = max(writer_heap_mb, 16) * 1_000_000
        self._threads = writer_threads
        self._limits = limits
        self._schema = _schema()
        try:
            if self._path is None:
                self._index = tantivy.Index(self._schema)
            else:
                self._path.mkdir(parents=True, exist_ok=True)
                self._index = tantivy.Index(self._schema, path=str(self._path), reuse=True)
        except ValueError as exc:
            raise ConfigurationError(
                f"cannot open the tantivy index at {self._path}: {exc} "
                "(an index from another version? rebuild it with `opencatalog reindex`)"
            ) from exc
        self._index.register_tokenizer(_ANALYZER, _analyzer())
        self._lock = threading.RLock()
        self._writer: Any = None
        self._bulk_depth = 0
        self._closed = False
        self._cache: OrderedDict[Any, SearchPage] = OrderedDict()
        self._cache_size = cache_size

    @classmethod
    def from_url(cls, url: str, **options: Any) -> TantivySearchIndex:
        """``tantivy://`` (in memory), ``tantivy:///abs/path``, ``tantivy://rel/path`` or a
        plain path; ``options`` are the constructor's keyword arguments."""
        if "://" not in url:
            return cls(url, **options)
        parts = urlsplit(url)
        if parts.scheme != "tantivy":
            raise ConfigurationError(f"not a tantivy search index URL: {url!r}")
        path = unquote(parts.netloc + parts.path)
        return cls(path or None, **options)

    # -- writing -------------------------------------------------------------------------

    def _get_writer(self) -> Any:
        if self._closed:
            raise BackendError("the search index is closed")
        if self._writer is None:
            try:
                self._writer = self._index.writer(heap_size=self._heap, num_threads=self._threads)
            except ValueError as exc:
                raise BackendError(
                    f"cannot write to the tantivy index (another process writing?): {exc}"
                ) from exc
        return self._writer

    def _commit(self) -> None:
        if self._bulk_depth == 0 and self._writer is not None:
            self._writer.commit()
            self._index.reload()
            self._cache.clear()

    def _document(self, doc: DatasetDocument) -> Any:
        out = tantivy.Document()
        out.add_text("id", doc.id)
        for name in _TEXT:
            for value in field_values(doc, name):
                out.add_text(name, value)
        for name in _KEYWORD:
            values = doc.labels if name == "labels" else facet_values(doc, name)
            for value in values:
                out.add_text(name, value)
        tokens = []
        position = 0
        for key, value in doc.extras.items():
            for token in tokenize(value):
                tokens.append(tantivy.Token(f"{key}{_SEP}{token}", position, 0, 0))
                position += 1
            position += 1
        if tokens:
            out.add_pre_tokenized_text("extras", tantivy.PreTokenizedString("", tokens))
        out.add_text("title_sort", doc.title.lower())
        out.add_integer("modified", _micros(doc.metadata_modified))
        out.add_integer("created", _micros(doc.metadata_created))
        return out

    def index(self, documents: Iterable[DatasetDocument]) -> None:
        with self._lock:
            writer = self._get_writer()
            for doc in documents:
                writer.delete_documents_by_term("id", doc.id)
                writer.add_document(self._document(doc))
            self._commit()

    def delete(self, ids: Iterable[str]) -> None:
        with self._lock:
            writer = self._get_writer()
            for doc_id in ids:
                writer.delete_documents_by_term("id", doc_id)
            self._commit()

    def clear(self) -> None:
        with self._lock:
            self._get_writer().delete_all_documents()
            self._commit()

    @contextmanager
    def bulk(self) -> Iterator[SearchIndex]:
        """Index many documents with one commit at the end (rolled back if the block raises)."""
        with self._lock:
            self._get_writer()
            self._bulk_depth += 1
            try:
                yield self
            except BaseException:
                self._bulk_depth -= 1
                if self._bulk_depth == 0:
                    self._writer.rollback()
                raise
            self._bulk_depth -= 1
            self._commit()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._writer is not None:
                self._writer.commit()
                self._writer.wait_merging_threads()
                self._writer = None

    # -- reading -------------------------------------------------------------------------

    def count(self) -> int:
        return int(self._index.searcher().num_docs)

    def ids(self) -> Iterator[tuple[str, datetime]]:
        searcher = self._index.searcher()
        total = searcher.num_docs
        if total == 0:
            return
        for _, address in searcher.search(tantivy.Query.all_query(), total).hits:
            stored = searcher.doc(address)
            yield stored["id"][0], _from_micros(stored["modified"][0])

    def stats(self) -> IndexStats:
        size = 0
        if self._path is not None:
            size = sum(p.stat().st_size for p in self._path.iterdir() if p.is_file())
        return IndexStats(documents=self.count(), size_bytes=size)

    # -- queries -------------------------------------------------------------------------

    def _leaf(self, node: Term | Phrase | Prefix) -> Any:
        schema = self._schema
        name = DEFAULT_FIELD if node.field is None else node.field
        extras_key = name[len(EXTRAS_PREFIX) :] if name.startswith(EXTRAS_PREFIX) else None
        if not is_text_field(name):
            if isinstance(node, Prefix):
                pattern = _regex_literal(node.prefix) + "(?s:.*)"
                return tantivy.Query.regex_query(schema, name, pattern)
            return tantivy.Query.term_query(schema, name, node.text)
        target = "extras" if extras_key is not None else name
        head = "" if extras_key is None else extras_key + _SEP
        if isinstance(node, Prefix):
            prefix = node.prefix.lower()
            if tokenize(node.prefix) != [prefix]:
                return tantivy.Query.empty_query()
            return tantivy.Query.regex_query(
                schema, target, _regex_literal(head + prefix) + "(?s:.*)"
            )
        words = tokenize(node.text)
        if not words:
            return tantivy.Query.empty_query()
        if len(words) == 1:
            return tantivy.Query.term_query(schema, target, head + words[0])
        return tantivy.Query.phrase_query(schema, target, [head + w for w in words])

    def _convert(self, node: Query) -> Any:
        if isinstance(node, MatchAll):
            return tantivy.Query.all_query()
        if isinstance(node, Term | Phrase | Prefix):
            return self._leaf(node)
        if isinstance(node, Not):
            return tantivy.Query.boolean_query(
                [
                    (tantivy.Occur.Must, tantivy.Query.all_query()),
                    (tantivy.Occur.MustNot, self._convert(node.child)),
                ]
            )
        if isinstance(node, And):
            clauses = []
            for child in node.children:
                if isinstance(child, Not):
                    clauses.append((tantivy.Occur.MustNot, self._convert(child.child)))
                else:
                    clauses.append((tantivy.Occur.Must, self._convert(child)))
            if all(occur == tantivy.Occur.MustNot for occur, _ in clauses):
                clauses.append((tantivy.Occur.Must, tantivy.Query.all_query()))
            return tantivy.Query.boolean_query(clauses)
        if isinstance(node, Or):
            return tantivy.Query.boolean_query(
                [(tantivy.Occur.Should, self._convert(child)) for child in node.children]
            )
        raise SearchQueryError(f"Search Query is invalid: not a query node: {node!r}")

    def _full_query(self, q: SearchQuery) -> Any:
        schema = self._schema
        clauses = [(tantivy.Occur.Must, self._convert(q.query))]
        unscored = [self._convert(f) for f in q.filters]
        unscored.append(tantivy.Query.term_set_query(schema, "state", sorted(q.states)))
        if q.labels is not None:
            unscored.append(tantivy.Query.term_set_query(schema, "labels", sorted(q.labels)))
        for query in unscored:
            clauses.append((tantivy.Occur.Must, tantivy.Query.const_score_query(query, 0.0)))
        return tantivy.Query.boolean_query(clauses)

    def query(self, q: SearchQuery) -> SearchPage:
        if not q.states or (q.labels is not None and not q.labels):
            return SearchPage(total=0, facets={f.field: () for f in q.facets})
        searcher = self._index.searcher()
        key = (q, searcher.num_docs, searcher.num_segments)
        cached = self._cache.get(key) if self._cache_size else None
        if cached is not None:
            return cached
        page = self._run(searcher, q)
        if self._cache_size and q.facets:
            with self._lock:
                self._cache[key] = page
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return page

    def _run(self, searcher: Any, q: SearchQuery) -> SearchPage:
        try:
            full = self._full_query(q)
            sort = list(q.effective_sort)
            if isinstance(q.query, MatchAll):
                sort = [key for key in sort if key.field != "score"]
            if not sort or sort[0].field != "score":
                total, hits = self._sorted_page(searcher, full, q, sort)
            else:
                total, hits = self._scored_page(searcher, full, q)
            facets = self._facets(searcher, full, q) if q.facets else {}
        except (ValueError, OSError) as exc:
            raise BackendError(f"tantivy query failed: {exc}") from exc
        return SearchPage(total=total, hits=hits, facets=facets)

    def _hit(self, searcher: Any, address: Any, score: float, q: SearchQuery) -> SearchHit:
        stored = searcher.doc(address)
        marks = {}
        if q.highlight:
            fields = {name: (stored.get_first(name) or "") for name in _STORED_TEXT}
            marks = highlight(q.query, fields)
        return SearchHit(id=stored.get_first("id"), score=score, highlights=marks)

    def _scored_page(
        self, searcher: Any, full: Any, q: SearchQuery
    ) -> tuple[int, tuple[SearchHit, ...]]:
        wanted = max(1, min(q.offset + q.limit, searcher.num_docs))
        result = searcher.search(full, wanted)
        hits = [self._hit(searcher, a, float(s), q) for s, a in result.hits]
        hits.sort(key=lambda h: h.id)
        hits.sort(key=lambda h: h.score, reverse=True)
        return result.count, tuple(hits[q.offset : q.offset + q.limit])

    def _sorted_page(
        self, searcher: Any, full: Any, q: SearchQuery, sort: list[SortKey]
    ) -> tuple[int, tuple[SearchHit, ...]]:
        """Order by fast columns: tantivy ranks by the first key; documents that tie with the
        last one fetched are all fetched too, and the candidates are sorted exactly."""
        wanted = max(1, min(q.offset + q.limit, searcher.num_docs))
        if sort:
            column = _SORT_COLUMNS[sort[0].field]
            order = tantivy.Order.Desc if sort[0].descending else tantivy.Order.Asc
        else:  # only ties left: the final tie-break alone
            column, order = "id", tantivy.Order.Asc
        result = searcher.search(full, wanted, order_by_field=column, order=order)
        total = result.count
        if q.limit == 0 or q.offset >= total:
            return total, ()
        candidates = {self._address_key(a): a for _, a in result.hits}
        if len(result.hits) == wanted and total > wanted:
            boundary = result.hits[-1][0]
            tie = tantivy.Query.boolean_query(
                [
                    (tantivy.Occur.Must, full),
                    (tantivy.Occur.Must, tantivy.Query.term_query(self._schema, column, boundary)),
                ]
            )
            count = searcher.search(tie, 1).count
            for _, address in searcher.search(tie, max(1, count)).hits:
                candidates[self._address_key(address)] = address
        rows = []
        for address in candidates.values():
            stored = searcher.doc(address)
            rows.append((stored, address))
        rows.sort(key=lambda row: row[0].get_first("id"))
        for key in reversed(sort):
            if key.field == "score":
                continue
            rows.sort(key=_stored(_SORT_COLUMNS[key.field]), reverse=key.descending)
        page = rows[q.offset : q.offset + q.limit]
        return total, tuple(self._hit(searcher, address, 0.0, q) for _, address in page)

    @staticmethod
    def _address_key(address: Any) -> tuple[int, int]:
        return (address.segment_ord, address.doc)

    def _facets(self, searcher: Any, full: Any, q: SearchQuery) -> dict[str, tuple[Any, ...]]:
        aggs = {}
        for request in q.facets:
            aggs[request.field] = {
                "terms": {
                    "field": request.field,
                    "size": _ALL_VALUES,
                    "segment_size": _ALL_VALUES,
                    "min_doc_count": max(1, request.mincount),
                }
            }
        result = searcher.aggregate(full, aggs)
        facets = {}
        for request in q.facets:
            buckets = result.get(request.field, {}).get("buckets", [])
            counts = {str(b["key"]): int(b["doc_count"]) for b in buckets}
            facets[request.field] = top_facet_counts(counts, request)
        return facets
