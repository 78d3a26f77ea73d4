"""The search index port.

A search index holds three logical indices (:data:`~opencatalog.domain.search.INDEX_NAMES`):

* **packages**: ``DatasetDocument``s, the derived, denormalised form of datasets, answering
  ``SearchQuery``s with ``SearchPage``s (facets, sorting, visibility);
* **resources**: ``ResourceDocument``s, one per resource, replaced per dataset;
* **contents**: ``ContentDocument``s, chunks of the text the pipeline extracted from resource
  files, replaced per resource.

The resources and contents indices answer word queries (``TextQuery``) with ``TextPage``s.
Their documents carry no permission labels: callers map hits to dataset ids and let the
packages index (which does) decide what the actor may see.

The index is derived data: storage is the truth, an outbox feeds the index, and ``reindex``
rebuilds it, so an index may be cleared and refilled at any time. The matching, facet and
sort rules every implementation follows are stated in :mod:`opencatalog.domain.search`; the
shipped kit :mod:`opencatalog.testing.search` checks them.

Implementations are found by URL scheme through the entry-point group ``opencatalog.search``;
each exposes ``from_url(url, **options)`` as a classmethod.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from attrs import field, frozen

from opencatalog.domain.search import (
    ContentDocument,
    DatasetDocument,
    ResourceDocument,
    SearchPage,
    SearchQuery,
    TextPage,
    TextQuery,
)

__all__ = ["IndexStats", "SearchIndex"]


@frozen
class IndexStats:
    """Size of an index: live ``documents`` in the packages index, bytes used by all three
    (0 when unknown or in memory), and the document count of each logical index by name
    (``packages``, ``resources``, ``contents``)."""

    documents: int
    size_bytes: int
    per_index: Mapping[str, int] = field(factory=dict)


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

    # -- resources and contents ---------------------------------------------------------

    @abc.abstractmethod
    def index_resources(self, by_package: Mapping[str, Sequence[ResourceDocument]]) -> None:
        """For each dataset id in ``by_package``, replace every resource document of that
        dataset with the given ones (an empty sequence removes them all). Visible to
        ``query_resources`` when this returns (outside ``bulk()``)."""

    @abc.abstractmethod
    def delete_resources(self, package_ids: Iterable[str]) -> None:
        """Remove every resource document of these datasets."""

    @abc.abstractmethod
    def query_resources(self, q: TextQuery) -> TextPage:
        """Resource documents matching ``q`` on ``name``, ``description`` and ``format``
        (see :class:`~opencatalog.domain.search.TextQuery`); hit ids are resource ids."""

    @abc.abstractmethod
    def index_contents(self, by_resource: Mapping[str, Sequence[ContentDocument]]) -> None:
        """For each resource id in ``by_resource``, replace every content chunk of that
        resource with the given ones (an empty sequence removes them)."""

    @abc.abstractmethod
    def delete_contents(self, resource_ids: Iterable[str]) -> None:
        """Remove every content chunk of these resources."""

    @abc.abstractmethod
    def delete_contents_of_packages(self, package_ids: Iterable[str]) -> None:
        """Remove every content chunk of the resources of these datasets."""

    @abc.abstractmethod
    def query_contents(self, q: TextQuery) -> TextPage:
        """Content chunks matching ``q`` on ``text``; hit ids are ``<resource_id>:<chunk>``."""

    # -- administration ---------------------------------------------------------------

    @abc.abstractmethod
    def document_ids(self, index: str) -> Iterator[tuple[str, str]]:
        """Every document of the logical ``index`` as ``(id, package_id)``, in no particular
        order (for comparing with storage). ``index`` is one of ``INDEX_NAMES``
        (``SearchQueryError`` otherwise); for ``packages`` both items are the dataset id."""

    @abc.abstractmethod
    def get_document(self, index: str, doc_id: str) -> dict[str, Any] | None:
        """The stored fields of one document of ``index`` as a JSON-ready dict (datetimes as
        ISO 8601 strings), or None; for administrators inspecting the index."""

    @abc.abstractmethod
    def browse(
        self, index: str, *, offset: int = 0, limit: int = 20
    ) -> tuple[int, list[dict[str, Any]]]:
        """The number of documents in ``index`` and one page of them (as ``get_document``
        gives them), ordered by id."""

    @property
    def unclean_shutdown(self) -> bool:
        """True when the index was found, at open, as left by a process that died while
        writing it (its last writes may be partly applied). The catalog then compares it with
        storage and repairs the drift before it is used. Default: False (indices that cannot
        tell, or whose writes are transactional)."""
        return False

    @contextmanager
    def rebuilding(self) -> Iterator[SearchIndex]:
        """A new, empty index of the same kind, filled inside the block, that replaces this
        one's contents when the block exits normally.

        Until then queries keep answering from the current documents, and afterwards from the
        new ones: users never see an empty or half-built index. If the block raises, the new
        index is discarded and this one is unchanged. The yielded object is only valid inside
        the block. The default (for indices that cannot build beside themselves) clears
        nothing and yields ``self``, so the block re-indexes in place.
        """
        yield self

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
