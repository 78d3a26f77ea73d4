"""The search index port.

A search index holds ``DatasetDocument``s, the derived, denormalised form of datasets, and
answers ``SearchQuery``s with ``SearchPage``s. It is derived data: storage is the truth, an
outbox feeds the index, and ``reindex`` rebuilds it, so an index may be cleared and refilled at
any time. The matching, facet and sort rules every implementation follows are stated in
:mod:`opencatalog.domain.search`; the shipped kit :mod:`opencatalog.testing.search` checks them.

Implementations are found by URL scheme through the entry-point group ``opencatalog.search``;
each exposes ``from_url(url, **options)`` as a classmethod.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from attrs import frozen

from opencatalog.domain.search import DatasetDocument, SearchPage, SearchQuery

__all__ = ["IndexStats", "SearchIndex"]


@frozen
class IndexStats:
    """Size of an index: live ``documents`` and bytes used (0 when unknown or in memory)."""

    documents: int
    size_bytes: int


class SearchIndex(abc.ABC):
    """A full-text index of datasets with facets, visibility and paging.

    Implementations are safe to call from several threads of one process. Errors of the
    underlying engine surface as ``BackendError``; queries outside the supported syntax or
    fields as ``SearchQueryError``.
    """

    @classmethod
    def from_url(cls, url: str, **options: Any) -> SearchIndex:
        """Open (creating if needed) the index that ``url`` names; ``options`` are
        implementation-specific keyword settings. Raises ``ConfigurationError`` for a URL
        the implementation cannot use."""
        raise NotImplementedError(f"{cls.__name__} cannot be opened from a URL")

    @abc.abstractmethod
    def index(self, documents: Iterable[DatasetDocument]) -> None:
        """Add or replace documents by ``id``.

        Idempotent: indexing the same document again leaves one copy. When this returns
        (outside ``bulk()``), every document is visible to ``query``. Documents that appear
        twice in one call: the last one wins.
        """

    @abc.abstractmethod
    def delete(self, ids: Iterable[str]) -> None:
        """Remove the documents with these ids; ids not in the index are ignored. Visible to
        ``query`` when this returns (outside ``bulk()``)."""

    @abc.abstractmethod
    def query(self, q: SearchQuery) -> SearchPage:
        """Answer ``q``: the total number of visible matching documents, the hits of the
        requested page in the requested order, and the requested facet counts, following
        the rules of :mod:`opencatalog.domain.search`."""

    @abc.abstractmethod
    def ids(self) -> Iterator[tuple[str, datetime]]:
        """Every indexed id with its ``metadata_modified`` (in no particular order), for
        comparing the index with storage."""

    @abc.abstractmethod
    def count(self) -> int:
        """How many documents the index holds (regardless of state or visibility)."""

    @abc.abstractmethod
    def clear(self) -> None:
        """Remove every document."""

    @abc.abstractmethod
    def stats(self) -> IndexStats:
        """Document count and size of the index."""

    def close(self) -> None:  # noqa: B027 - a concrete no-op default, not an abstract hook
        """Release files, writers and locks. The index must not be used afterwards.
        Calling it twice is harmless."""

    @contextmanager
    def bulk(self) -> Iterator[SearchIndex]:
        """A context in which ``index`` and ``delete`` may defer their commit to the end of
        the block, for bulk loads and rebuilds (one commit for many documents).

        Inside the block, changes need not be visible to queries; when the block exits
        normally everything is committed and visible. If the block raises, implementations
        may discard the uncommitted changes. The default commits on every call.
        """
        yield self

    def __enter__(self) -> SearchIndex:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
