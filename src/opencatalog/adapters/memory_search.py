"""An in-memory search index that evaluates queries by brute force.

``MemorySearchIndex`` is the reference implementation of the matching, facet and sort rules in
:mod:`opencatalog.domain.search`: it checks every stored document against the query AST. It is
the fake for service tests and the oracle the conformance kit compares other adapters with.
It is fine for a few thousand documents; use an engine-backed index beyond that.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import attrs

from opencatalog.domain.search import (
    DEFAULT_FIELD,
    INDEX_NAMES,
    And,
    ContentDocument,
    DatasetDocument,
    MatchAll,
    Not,
    Or,
    Phrase,
    Prefix,
    Query,
    ResourceDocument,
    SearchHit,
    SearchPage,
    SearchQuery,
    Term,
    TextHit,
    TextPage,
    TextQuery,
    facet_values,
    field_values,
    highlight,
    is_text_field,
    tokenize,
    top_facet_counts,
)
from opencatalog.errors import ConfigurationError, SearchQueryError
from opencatalog.ports.search import IndexStats, SearchIndex

__all__ = ["MemorySearchIndex"]


class _Entry:
    """A stored document with its analysed fields, computed on first use."""

    __slots__ = ("_tokens", "doc")

    def __init__(self, doc: DatasetDocument) -> None:
        self.doc = doc
        self._tokens: dict[str, tuple[tuple[str, ...], ...]] = {}

    def tokens(self, name: str) -> tuple[tuple[str, ...], ...]:
        """The token lists of each value of a text field."""
        cached = self._tokens.get(name)
        if cached is None:
            cached = tuple(tuple(tokenize(v)) for v in field_values(self.doc, name))
            self._tokens[name] = cached
        return cached


class _TextEntry:
    """A resources or contents document with the token lists of its searchable values."""

    __slots__ = ("_tokens", "doc", "values")

    def __init__(self, doc: ResourceDocument | ContentDocument) -> None:
        self.doc = doc
        if isinstance(doc, ResourceDocument):
            self.values: dict[str, str] = {
                "name": doc.name,
                "description": doc.description,
                "format": doc.format,
            }
        else:
            self.values = {"text": doc.text}
        self._tokens: tuple[tuple[str, ...], ...] | None = None

    @property
    def id(self) -> str:
        return self.doc.id

    @property
    def resource_id(self) -> str:
        doc = self.doc
        return doc.id if isinstance(doc, ResourceDocument) else doc.resource_id

    def tokens(self) -> tuple[tuple[str, ...], ...]:
        """The token lists of each searchable value (a phrase never spans two values)."""
        if self._tokens is None:
            self._tokens = tuple(tuple(tokenize(v)) for v in self.values.values() if v)
        return self._tokens

    def highlight_fields(self) -> dict[str, str]:
        if isinstance(self.doc, ResourceDocument):
            return {"name": self.doc.name, "description": self.doc.description}
        return {"text": self.doc.text}


def _json_ready(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_ready(v) for v in value]
    return value


def _document_dict(doc: DatasetDocument | ResourceDocument | ContentDocument) -> dict[str, Any]:
    fields = attrs.asdict(doc, recurse=False)
    if isinstance(doc, ContentDocument):
        fields = {"id": doc.id, **fields}
    result: dict[str, Any] = _json_ready(fields)
    return result


def _check_index_name(index: str) -> None:
    if index not in INDEX_NAMES:
        raise SearchQueryError(
            f'Search Query is invalid: no index "{index}" (indices: {", ".join(INDEX_NAMES)})'
        )


def _contains(values: tuple[tuple[str, ...], ...], phrase: list[str]) -> bool:
    size = len(phrase)
    for tokens in values:
        for start in range(len(tokens) - size + 1):
            if list(tokens[start : start + size]) == phrase:
                return True
    return False


def _leaf_score(entry: _Entry, node: Term | Phrase | Prefix) -> float:
    """0 when the leaf does not match; otherwise a positive term-frequency score."""
    name = DEFAULT_FIELD if node.field is None else node.field
    if not is_text_field(name):
        values = field_values(entry.doc, name)
        if isinstance(node, Prefix):
            return float(sum(1 for v in values if v.startswith(node.prefix)))
        return float(sum(1 for v in values if v == node.text))
    return _token_leaf_score(entry.tokens(name), node)


def _token_leaf_score(
    token_values: tuple[tuple[str, ...], ...], node: Term | Phrase | Prefix
) -> float:
    """The text-field rules of a leaf over the token lists of a field's values."""
    if isinstance(node, Prefix):
        prefix = node.prefix.lower()
        if tokenize(node.prefix) != [prefix]:
            return 0.0
        return float(sum(1 for toks in token_values for t in toks if t.startswith(prefix)))
    words = tokenize(node.text)
    if not words:
        return 0.0
    if len(words) == 1:
        return float(sum(toks.count(words[0]) for toks in token_values))
    return 1.0 if _contains(token_values, words) else 0.0


def _score(entry: _Entry | _TextEntry, node: Query) -> float | None:
    """The document's score for ``node``, or None when it does not match."""
    if isinstance(node, MatchAll):
        return 1.0
    if isinstance(node, Term | Phrase | Prefix):
        score = (
            _leaf_score(entry, node)
            if isinstance(entry, _Entry)
            else _token_leaf_score(entry.tokens(), node)
        )
        return score if score > 0 else None
    if isinstance(node, Not):
        return None if _score(entry, node.child) is not None else 1.0
    if isinstance(node, And):
        total = 0.0
        for child in node.children:
            part = _score(entry, child)
            if part is None:
                return None
            total += part
        return total
    if isinstance(node, Or):
        found = [s for child in node.children if (s := _score(entry, child)) is not None]
        return sum(found) if found else None
    raise TypeError(f"not a query node: {node!r}")


def _sort_value(doc: DatasetDocument, name: str) -> Any:
    if name == "name":
        return doc.name
    if name == "title":
        return doc.title.lower()
    if name == "metadata_modified":
        return doc.metadata_modified
    if name == "metadata_created":
        return doc.metadata_created
    raise ValueError(name)


class MemorySearchIndex(SearchIndex):
    """A search index held in a dict; every query scans every document.

    ``memory://`` opens a new, empty index. ``rebuilding()`` fills a fresh index beside
    this one and swaps the three logical indices in at once when the block ends.
    """

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._resources: dict[str, _TextEntry] = {}  # by resource id
        self._contents: dict[str, list[_TextEntry]] = {}  # chunks by resource id
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, **options: Any) -> MemorySearchIndex:
        """``memory://`` (nothing after the scheme); takes no options."""
        parts = urlsplit(url)
        if parts.scheme != "memory" or parts.netloc or parts.path not in ("", "/"):
            raise ConfigurationError(f"not a memory search index URL: {url!r}")
        if options:
            raise ConfigurationError(f"unknown memory search options: {sorted(options)}")
        return cls()

    def index(self, documents: Iterable[DatasetDocument]) -> None:
        entries = [_Entry(doc) for doc in documents]
        with self._lock:
            for entry in entries:
                self._entries[entry.doc.id] = entry

    def delete(self, ids: Iterable[str]) -> None:
        with self._lock:
            for doc_id in ids:
                self._entries.pop(doc_id, None)

    def count(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._resources.clear()
            self._contents.clear()

    def ids(self) -> Iterator[tuple[str, datetime]]:
        with self._lock:
            pairs = [(e.doc.id, e.doc.metadata_modified) for e in self._entries.values()]
        return iter(pairs)

    def stats(self) -> IndexStats:
        with self._lock:
            per_index = {
                "packages": len(self._entries),
                "resources": len(self._resources),
                "contents": sum(len(chunks) for chunks in self._contents.values()),
            }
        return IndexStats(documents=per_index["packages"], size_bytes=0, per_index=per_index)

    def query(self, q: SearchQuery) -> SearchPage:
        with self._lock:
            entries = list(self._entries.values())
        found: list[tuple[_Entry, float]] = []
        for entry in entries:
            doc = entry.doc
            if doc.state not in q.states:
                continue
            if q.labels is not None and q.labels.isdisjoint(doc.labels):
                continue
            if any(_score(entry, f) is None for f in q.filters):
                continue
            score = _score(entry, q.query)
            if score is not None:
                found.append((entry, 1.0 if isinstance(q.query, MatchAll) else score))

        facets = {}
        for request in q.facets:
            counts: Counter[str] = Counter()
            for entry, _ in found:
                counts.update(facet_values(entry.doc, request.field))
            facets[request.field] = top_facet_counts(counts, request)

        found.sort(key=lambda item: item[0].doc.id)
        for key in reversed(q.effective_sort):
            if key.field == "score":
                found.sort(key=lambda item: item[1], reverse=key.descending)
            else:
                name = key.field
                found.sort(key=lambda item: _sort_value(item[0].doc, name), reverse=key.descending)
        page = found[q.offset : q.offset + q.limit]
        hits = tuple(
            SearchHit(
                id=entry.doc.id,
                score=score,
                highlights=(
                    highlight(q.query, {"title": entry.doc.title, "notes": entry.doc.notes})
                    if q.highlight
                    else {}
                ),
            )
            for entry, score in page
        )
        return SearchPage(total=len(found), hits=hits, facets=facets)

    # -- resources and contents ---------------------------------------------------------

    def index_resources(self, by_package: Mapping[str, Sequence[ResourceDocument]]) -> None:
        replacing = {pkg: [_TextEntry(doc) for doc in docs] for pkg, docs in by_package.items()}
        with self._lock:
            if replacing:
                for rid in [
                    rid for rid, e in self._resources.items() if e.doc.package_id in replacing
                ]:
                    del self._resources[rid]
            for entries in replacing.values():
                for entry in entries:
                    self._resources[entry.id] = entry

    def delete_resources(self, package_ids: Iterable[str]) -> None:
        gone = set(package_ids)
        if not gone:
            return
        with self._lock:
            for rid in [rid for rid, e in self._resources.items() if e.doc.package_id in gone]:
                del self._resources[rid]

    def query_resources(self, q: TextQuery) -> TextPage:
        with self._lock:
            entries = list(self._resources.values())
        return _text_page(entries, q)

    def index_contents(self, by_resource: Mapping[str, Sequence[ContentDocument]]) -> None:
        replacing: dict[str, list[_TextEntry]] = {}
        for rid, docs in by_resource.items():
            chunks: dict[str, _TextEntry] = {}
            for doc in docs:
                chunks[doc.id] = _TextEntry(doc)  # the last copy of a chunk wins
            replacing[rid] = list(chunks.values())
        with self._lock:
            for rid, entries in replacing.items():
                if entries:
                    self._contents[rid] = entries
                else:
                    self._contents.pop(rid, None)

    def delete_contents(self, resource_ids: Iterable[str]) -> None:
        with self._lock:
            for rid in resource_ids:
                self._contents.pop(rid, None)

    def delete_contents_of_packages(self, package_ids: Iterable[str]) -> None:
        gone = set(package_ids)
        if not gone:
            return
        with self._lock:
            for rid in [
                rid
                for rid, chunks in self._contents.items()
                if any(e.doc.package_id in gone for e in chunks)
            ]:
                del self._contents[rid]

    def query_contents(self, q: TextQuery) -> TextPage:
        with self._lock:
            entries = [e for chunks in self._contents.values() for e in chunks]
        return _text_page(entries, q)

    # -- administration ---------------------------------------------------------------

    def _documents(self, index: str) -> list[DatasetDocument | ResourceDocument | ContentDocument]:
        _check_index_name(index)
        with self._lock:
            if index == "packages":
                return [e.doc for e in self._entries.values()]
            if index == "resources":
                return [e.doc for e in self._resources.values()]
            return [e.doc for chunks in self._contents.values() for e in chunks]

    def document_ids(self, index: str) -> Iterator[tuple[str, str]]:
        pairs = []
        for doc in self._documents(index):
            package_id = doc.id if isinstance(doc, DatasetDocument) else doc.package_id
            pairs.append((doc.id, package_id))
        return iter(pairs)

    def get_document(self, index: str, doc_id: str) -> dict[str, Any] | None:
        _check_index_name(index)
        doc: DatasetDocument | ResourceDocument | ContentDocument | None = None
        with self._lock:
            if index == "packages":
                entry = self._entries.get(doc_id)
                doc = None if entry is None else entry.doc
            elif index == "resources":
                res = self._resources.get(doc_id)
                doc = None if res is None else res.doc
            else:
                rid, _, _ = doc_id.rpartition(":")
                for chunk in self._contents.get(rid, ()):
                    if chunk.id == doc_id:
                        doc = chunk.doc
        return None if doc is None else _document_dict(doc)

    def browse(
        self, index: str, *, offset: int = 0, limit: int = 20
    ) -> tuple[int, list[dict[str, Any]]]:
        if offset < 0 or limit < 0:
            raise SearchQueryError("Search Query is invalid: offset and limit must not be negative")
        docs = sorted(self._documents(index), key=lambda d: d.id)
        return len(docs), [_document_dict(d) for d in docs[offset : offset + limit]]

    @contextmanager
    def rebuilding(self) -> Iterator[SearchIndex]:
        fresh = MemorySearchIndex()
        yield fresh
        with fresh._lock:
            entries, resources, contents = fresh._entries, fresh._resources, fresh._contents
            fresh._entries, fresh._resources, fresh._contents = {}, {}, {}
        with self._lock:
            self._entries, self._resources, self._contents = entries, resources, contents


def _text_page(entries: list[_TextEntry], q: TextQuery) -> TextPage:
    """Answer a ``TextQuery`` over ``entries`` by brute force (score desc, then id)."""
    found: list[tuple[_TextEntry, float]] = []
    for entry in entries:
        if q.package_ids is not None and entry.doc.package_id not in q.package_ids:
            continue
        score = _score(entry, q.query)
        if score is not None:
            found.append((entry, 1.0 if isinstance(q.query, MatchAll) else score))
    found.sort(key=lambda item: (-item[1], item[0].id))
    hits = tuple(
        TextHit(
            id=entry.id,
            resource_id=entry.resource_id,
            package_id=entry.doc.package_id,
            score=score,
            highlights=highlight(q.query, entry.highlight_fields()) if q.highlight else {},
        )
        for entry, score in found[q.offset : q.offset + q.limit]
    )
    return TextPage(total=len(found), hits=hits)
