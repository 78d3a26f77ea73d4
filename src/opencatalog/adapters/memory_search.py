"""An in-memory search index that evaluates queries by brute force.

``MemorySearchIndex`` is the reference implementation of the matching, facet and sort rules in
:mod:`opencatalog.domain.search`: it checks every stored document against the query AST. It is
the fake for service tests and the oracle the conformance kit compares other adapters with.
It is fine for a few thousand documents; use an engine-backed index beyond that.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from opencatalog.domain.search import (
    DEFAULT_FIELD,
    And,
    DatasetDocument,
    MatchAll,
    Not,
    Or,
    Phrase,
    Prefix,
    Query,
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
from opencatalog.errors import ConfigurationError
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
    token_values = entry.tokens(name)
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


def _score(entry: _Entry, node: Query) -> float | None:
    """The document's score for ``node``, or None when it does not match."""
    if isinstance(node, MatchAll):
        return 1.0
    if isinstance(node, Term | Phrase | Prefix):
        score = _leaf_score(entry, node)
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

    ``memory://`` opens a new, empty index.
    """

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
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

    def ids(self) -> Iterator[tuple[str, datetime]]:
        with self._lock:
            pairs = [(e.doc.id, e.doc.metadata_modified) for e in self._entries.values()]
        return iter(pairs)

    def stats(self) -> IndexStats:
        return IndexStats(documents=len(self._entries), size_bytes=0)

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
