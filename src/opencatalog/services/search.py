"""Searching datasets: CKAN package_search semantics over the search index port."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from attrs import field, frozen

from opencatalog.domain.licenses import LICENSES_BY_ID
from opencatalog.domain.model import Dataset, State
from opencatalog.domain.permissions import Action
from opencatalog.domain.search import (
    FacetCount,
    FacetRequest,
    Or,
    Prefix,
    Query,
    QueryLimits,
    SearchPage,
    SearchQuery,
    Term,
    parse_filter,
    parse_query,
    parse_sort,
)
from opencatalog.errors import SearchQueryError
from opencatalog.ports.search import SearchIndex

from ._base import Call, Principal, Service, ServiceContext
from .indexing import DriftReport, Indexer

__all__ = ["DEFAULT_FACETS", "FacetItem", "SearchResult", "SearchService"]

#: Facets a portal's dataset page shows.
DEFAULT_FACETS = ("organization", "groups", "tags", "res_format", "license_id")


@frozen
class FacetItem:
    """One facet value: ``name`` as indexed, ``display_name`` for people, ``count``."""

    name: str
    display_name: str
    count: int


@frozen(kw_only=True)
class SearchResult:
    """A page of datasets found, with the total and the facet counts.

    ``facets`` maps each requested facet field to its items, most frequent first;
    ``highlights`` maps dataset ids to highlighted fragments per field when asked for.
    """

    count: int
    results: tuple[Dataset, ...]
    facets: Mapping[str, tuple[FacetItem, ...]] = field(factory=dict)
    highlights: Mapping[str, Mapping[str, tuple[str, ...]]] = field(factory=dict)


class SearchService(Service):
    """Dataset search with facets, visibility and paging (needs a search index)."""

    def __init__(
        self,
        ctx: ServiceContext,
        principal: Principal,
        *,
        index: SearchIndex,
        indexer: Indexer,
        limits: QueryLimits | None = None,
    ) -> None:
        super().__init__(ctx, principal)
        self._index = index
        self._indexer = indexer
        self._limits = limits or QueryLimits()

    def datasets(
        self,
        q: str = "",
        *,
        fq: str | Sequence[str] = (),
        facets: Sequence[str] = (),
        facet_limit: int = 50,
        facet_mincount: int = 1,
        sort: str | None = None,
        offset: int = 0,
        limit: int = 20,
        include_private: bool = False,
        include_drafts: bool = False,
        include_deleted: bool = False,
        highlight: bool = False,
    ) -> SearchResult:
        """Find datasets (CKAN package_search).

        ``q`` and ``fq`` use the documented subset of CKAN's query syntax (see
        :mod:`opencatalog.domain.search`); anything else raises SearchQueryError, as do
        paging beyond the limits. Private datasets appear only with ``include_private`` and
        only where the actor is a member; drafts and deleted datasets likewise with
        ``include_drafts``/``include_deleted``. Results are read from storage, so they are
        never staler than the database.
        """
        if not isinstance(q, str):
            raise SearchQueryError("Search Query is invalid: q must be a string")
        if not isinstance(fq, str) and not (
            isinstance(fq, Sequence) and all(isinstance(f, str) for f in fq)
        ):
            raise SearchQueryError("Search Query is invalid: fq must be a string or strings")
        if sort is not None and not isinstance(sort, str):
            raise SearchQueryError("Search Query is invalid: sort must be a string")
        if isinstance(facets, str) or not all(isinstance(f, str) for f in facets):
            raise SearchQueryError("Search Query is invalid: facets must be a list of fields")
        query = parse_query(q, limits=self._limits) if q.strip() else None
        filters: list[Query] = []
        for text in [fq] if isinstance(fq, str) else list(fq):
            if text and text.strip():
                filters.append(parse_filter(text, limits=self._limits))
        if not include_private:
            filters.append(Term("capacity", "public"))
        for name, value in (("offset", offset), ("limit", limit), ("facet_limit", facet_limit)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise SearchQueryError(f"Search Query is invalid: {name} must be an integer")
        if limit < 0 or limit > self._limits.max_limit:
            raise SearchQueryError(
                f"Search Query is invalid: limit must be between 0 and {self._limits.max_limit}"
            )
        states = {State.ACTIVE.value}
        if include_drafts:
            states.add(State.DRAFT.value)
        if include_deleted:
            states.add(State.DELETED.value)
        self._indexer.drain()  # never answer from an index behind storage
        with self._call() as call:
            search = SearchQuery(
                query=query if query is not None else SearchQuery().query,
                filters=tuple(filters),
                facets=tuple(
                    FacetRequest(name, limit=facet_limit, mincount=facet_mincount)
                    for name in facets
                ),
                sort=parse_sort(sort) if sort else (),
                offset=offset,
                limit=limit,
                labels=call.actor.labels(),
                states=frozenset(states),
                highlight=highlight,
            )
            self._limits.check(search)
            page = self._index.query(search)
            results = self._readable(call, page)
            facet_items = self._facet_items(call, page.facets)
        return SearchResult(
            count=page.total,
            results=results,
            facets=facet_items,
            highlights={h.id: h.highlights for h in page.hits if h.highlights},
        )

    def _facet_items(
        self, call: Call, facets: Mapping[str, tuple[FacetCount, ...]]
    ) -> dict[str, tuple[FacetItem, ...]]:
        names: dict[str, str] = {}
        wanted = [c.value for f in ("organization", "groups") for c in facets.get(f, ())]
        for value in wanted:
            group = call.uow.groups.get_by_name(value)
            if group is not None:
                names[value] = group.display_name
        out: dict[str, tuple[FacetItem, ...]] = {}
        for fld, counts in facets.items():
            items = []
            for c in counts:
                display = c.value
                if fld in ("organization", "groups"):
                    display = names.get(c.value, c.value)
                elif fld == "license_id" and c.value in LICENSES_BY_ID:
                    display = LICENSES_BY_ID[c.value].title
                items.append(FacetItem(c.value, display, c.count))
            out[fld] = tuple(items)
        return out

    def _readable(self, call: Call, page: SearchPage) -> tuple[Dataset, ...]:
        """The page's datasets read from storage, in hit order, checked once more."""
        found = {ds.id: ds for ds in call.uow.datasets.get_many(page.ids)}
        return tuple(
            found[i]
            for i in page.ids
            if i in found and self._policy.can_read_dataset(call.actor, found[i])
        )

    def suggest_datasets(self, prefix: str, *, limit: int = 10) -> list[Dataset]:
        """Datasets whose name or a title word starts with ``prefix`` (autocomplete)."""
        if not isinstance(prefix, str):
            raise SearchQueryError("Search Query is invalid: the prefix must be a string")
        prefix = prefix.strip()
        if len(prefix) < 2:
            return []
        query: Query = Or((Prefix("name", prefix), Prefix("title", prefix.lower())))
        return list(self._search(query, limit=limit))

    def suggest_formats(self, text: str, *, limit: int = 10) -> list[str]:
        """Resource formats in use containing ``text`` (case-insensitive), most used first."""
        if not isinstance(text, str):
            raise SearchQueryError("Search Query is invalid: the text must be a string")
        return self._facet_values("res_format", text, limit)

    def formats(self) -> list[str]:
        """Every resource format in use in datasets the actor may read, most used first."""
        return self._facet_values("res_format", "", None)

    def _facet_values(self, fld: str, text: str, limit: int | None) -> list[str]:
        self._indexer.drain()
        with self._call() as call:
            labels = call.actor.labels()
        page = self._index.query(
            SearchQuery(facets=(FacetRequest(fld, limit=-1),), limit=0, labels=labels)
        )
        needle = text.casefold()
        values = [c.value for c in page.facets.get(fld, ()) if needle in c.value.casefold()]
        return values[:limit] if limit is not None else values

    def _search(self, query: Query, *, limit: int) -> tuple[Dataset, ...]:
        self._indexer.drain()
        with self._call() as call:
            page = self._index.query(
                SearchQuery(query=query, limit=limit, labels=call.actor.labels())
            )
            return self._readable(call, page)

    # -- administration ---------------------------------------------------------------

    def check(self) -> DriftReport:
        """Compare the index with storage (sysadmins)."""
        self._sysadmin_only()
        self._indexer.drain()
        return self._indexer.check()

    def repair(self) -> DriftReport:
        """Fix what :meth:`check` finds; returns the drift that was repaired (sysadmins)."""
        self._sysadmin_only()
        self._indexer.drain()
        report = self._indexer.check()
        if not report.clean:
            self._indexer.repair(report)
        return report

    def reindex(self, *, progress: Callable[[int, int], None] | None = None) -> int:
        """Rebuild the index from storage without an empty moment (sysadmins)."""
        self._sysadmin_only()
        return self._indexer.reindex(progress=progress)

    def stats(self) -> dict[str, int]:
        """Documents and bytes in the index, pending outbox entries (sysadmins)."""
        self._sysadmin_only()
        st = self._index.stats()
        with self._call() as call:
            pending = len(call.uow.outbox.pending(limit=1_000_000))
        return {"documents": st.documents, "size_bytes": st.size_bytes, "pending": pending}

    def _sysadmin_only(self) -> None:
        with self._call() as call:
            self._require(call, Action.SEARCH_ADMIN, self._policy.base_role(call.actor))
