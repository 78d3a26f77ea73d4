"""Searching: CKAN package_search and resource_search semantics, the three-index search of
``/api/v1`` (datasets found by their metadata, their resources or the text of their files),
user autocomplete, and the administration of the search index.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
from attrs import field, frozen

from opencatalog.domain.licenses import LICENSES_BY_ID
from opencatalog.domain.model import Dataset, Resource, State
from opencatalog.domain.permissions import Action
from opencatalog.domain.search import (
    INDEX_NAMES,
    And,
    FacetCount,
    FacetRequest,
    MatchAll,
    Not,
    Or,
    Phrase,
    Prefix,
    Query,
    QueryLimits,
    SearchPage,
    SearchQuery,
    Term,
    TextHit,
    TextQuery,
    iter_nodes,
    parse_filter,
    parse_query,
    parse_sort,
)
from opencatalog.errors import NotAuthorized, NotFound, SearchQueryError, ValidationFailed
from opencatalog.ports.search import SearchIndex
from opencatalog.ports.storage import ResourceCriterion

from ._base import Call, Principal, Service, ServiceContext
from .indexing import DriftReport, Indexer
from .validation import Errors

__all__ = [
    "DEFAULT_FACETS",
    "RESOURCE_SEARCH_FIELDS",
    "TEXT_LEG_CAP",
    "ContentMatch",
    "DatasetMatches",
    "DocumentPage",
    "EverythingResult",
    "FacetItem",
    "ResourceMatch",
    "ResourceSearchResult",
    "SearchResult",
    "SearchService",
    "UserSuggestion",
]

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


#: The fields CKAN's resource_search accepts (its core resource columns). Those the model does
#: not carry as attributes are looked up in the resource's extras.
RESOURCE_SEARCH_FIELDS: frozenset[str] = frozenset(
    {
        "url",
        "format",
        "description",
        "hash",
        "name",
        "resource_type",
        "mimetype",
        "mimetype_inner",
        "size",
        "created",
        "last_modified",
        "metadata_modified",
        "cache_url",
        "cache_last_updated",
        "url_type",
    }
)

#: Fields resource_search results can be ordered by.
_RESOURCE_ORDER_FIELDS = frozenset(
    {
        "url",
        "format",
        "description",
        "hash",
        "name",
        "mimetype",
        "size",
        "created",
        "last_modified",
        "metadata_modified",
        "url_type",
    }
)

#: The most hits the resources and contents legs of :meth:`SearchService.everything` each
#: contribute (their datasets join the packages query; matches beyond are not considered).
TEXT_LEG_CAP = 1000

_MAX_ADMIN_PAGE = 100
_MAX_SUGGESTIONS = 100


@frozen(kw_only=True)
class ResourceSearchResult:
    """Resources found by CKAN resource_search: the total and the requested page."""

    count: int
    results: tuple[Resource, ...]


@frozen(kw_only=True)
class ResourceMatch:
    """A resource of a found dataset whose name, description or format matched, with
    highlighted fragments of its ``name``/``description`` (HTML-escaped, matches in
    ``<em>``)."""

    resource_id: str
    highlights: Mapping[str, tuple[str, ...]] = field(factory=dict)


@frozen(kw_only=True)
class ContentMatch:
    """A chunk of the text extracted from a found dataset's resource that matched, with
    highlighted fragments of the text."""

    resource_id: str
    chunk: int
    highlights: Mapping[str, tuple[str, ...]] = field(factory=dict)


@frozen(kw_only=True)
class DatasetMatches:
    """Why a dataset was found besides its own metadata: matching resources and file text."""

    resources: tuple[ResourceMatch, ...] = ()
    contents: tuple[ContentMatch, ...] = ()


@frozen(kw_only=True)
class EverythingResult:
    """A page of datasets found by their metadata, their resources or their files' text.

    ``count``, ``facets`` and the page come from one query on the datasets the actor may see;
    ``highlights`` are the datasets' own highlighted fragments and ``matches`` the resources
    and text chunks of each listed dataset that matched (datasets without any are left out).
    """

    count: int
    results: tuple[Dataset, ...]
    facets: Mapping[str, tuple[FacetItem, ...]] = field(factory=dict)
    highlights: Mapping[str, Mapping[str, tuple[str, ...]]] = field(factory=dict)
    matches: Mapping[str, DatasetMatches] = field(factory=dict)


@frozen(kw_only=True)
class DocumentPage:
    """One page of the documents of a logical index, ordered by id (administration)."""

    index: str
    total: int
    offset: int
    limit: int
    items: tuple[Mapping[str, Any], ...]


@frozen(kw_only=True)
class UserSuggestion:
    """A user offered by autocomplete: only what CKAN's user_autocomplete shows."""

    id: str
    name: str
    fullname: str | None = None


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

        Pending index changes are applied first (waiting for a drain already under way), so
        the answer reflects every committed write; while ``reindex`` rebuilds the index the
        search does not wait for it and answers from the current index (see
        :mod:`opencatalog.services.indexing`).
        """
        if not isinstance(q, str):
            raise SearchQueryError("Search Query is invalid: q must be a string")
        query = parse_query(q, limits=self._limits) if q.strip() else MatchAll()
        template = self._template(
            query,
            fq=fq,
            facets=facets,
            facet_limit=facet_limit,
            facet_mincount=facet_mincount,
            sort=sort,
            offset=offset,
            limit=limit,
            include_private=include_private,
            include_drafts=include_drafts,
            include_deleted=include_deleted,
            highlight=highlight,
        )
        self._indexer.drain()  # never answer from an index behind storage (see Indexer)
        with self._call() as call:
            page = self._index.query(attrs.evolve(template, labels=call.actor.labels()))
            results = self._readable(call, page)
            facet_items = self._facet_items(call, page.facets)
        return SearchResult(
            count=page.total,
            results=results,
            facets=facet_items,
            highlights={h.id: h.highlights for h in page.hits if h.highlights},
        )

    def _template(
        self,
        query: Query,
        *,
        fq: str | Sequence[str],
        facets: Sequence[str],
        facet_limit: int,
        facet_mincount: int,
        sort: str | None,
        offset: int,
        limit: int,
        include_private: bool,
        include_drafts: bool,
        include_deleted: bool,
        highlight: bool,
    ) -> SearchQuery:
        """The checked packages query for these parameters, still without the actor's
        labels (the caller sets them: None would mean *everything*)."""
        if not isinstance(fq, str) and not (
            isinstance(fq, Sequence) and all(isinstance(f, str) for f in fq)
        ):
            raise SearchQueryError("Search Query is invalid: fq must be a string or strings")
        if sort is not None and not isinstance(sort, str):
            raise SearchQueryError("Search Query is invalid: sort must be a string")
        if isinstance(facets, str) or not all(isinstance(f, str) for f in facets):
            raise SearchQueryError("Search Query is invalid: facets must be a list of fields")
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
        template = SearchQuery(
            query=query,
            filters=tuple(filters),
            facets=tuple(
                FacetRequest(name, limit=facet_limit, mincount=facet_mincount) for name in facets
            ),
            sort=parse_sort(sort) if sort else (),
            offset=offset,
            limit=limit,
            labels=frozenset(),
            states=frozenset(states),
            highlight=highlight,
        )
        self._limits.check(template)
        return template

    def everything(
        self,
        q: str,
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
    ) -> EverythingResult:
        """Find datasets by their metadata, their resources (name, description, format) or
        the text extracted from their files: the ``/api/v1`` search.

        ``q`` is required (ValidationFailed when blank) and uses the syntax of
        :meth:`datasets`. Its words are also looked up in the resources and contents indices
        (when ``q`` names no field and has a word to look for), at most ``TEXT_LEG_CAP`` hits
        each; the datasets they belong to join one packages query, ``q OR id:<those>``, with
        the actor's visibility, ``fq``, facets, sort and paging. So ``count``, ``facets`` and
        the page hold only datasets the actor may see, however they were found, and a word
        found in the resource or file of a dataset the actor may not see changes nothing.
        Each listed dataset carries the resources and chunks that matched, highlighted.
        """
        if not isinstance(q, str) or not q.strip():
            raise ValidationFailed({"q": ["Missing value"]})
        query = parse_query(q, limits=self._limits)
        template = self._template(
            query,
            fq=fq,
            facets=facets,
            facet_limit=facet_limit,
            facet_mincount=facet_mincount,
            sort=sort,
            offset=offset,
            limit=limit,
            include_private=include_private,
            include_drafts=include_drafts,
            include_deleted=include_deleted,
            highlight=True,
        )
        self._indexer.drain()
        resource_hits: tuple[TextHit, ...] = ()
        content_hits: tuple[TextHit, ...] = ()
        text_query = _text_query(query)
        if text_query is not None:
            resource_hits = self._index.query_resources(text_query).hits
            content_hits = self._index.query_contents(text_query).hits
        found_ids = sorted({h.package_id for h in (*resource_hits, *content_hits)})
        if found_ids:
            ids: list[Query] = [Term("id", i) for i in found_ids]
            template = attrs.evolve(template, query=Or((query, *ids)))
        with self._call() as call:
            page = self._index.query(attrs.evolve(template, labels=call.actor.labels()))
            results = self._readable(call, page)
            facet_items = self._facet_items(call, page.facets)
        return EverythingResult(
            count=page.total,
            results=results,
            facets=facet_items,
            highlights={h.id: h.highlights for h in page.hits if h.highlights},
            matches=_matches(results, resource_hits, content_hits),
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

    # -- resources (CKAN resource_search) -----------------------------------------------

    def resources(
        self,
        query: str | Sequence[str] | None,
        *,
        order_by: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> ResourceSearchResult:
        """Resources of active public datasets meeting every ``field:term`` of ``query``
        (CKAN resource_search; read from storage, see ``ResourceCriterion`` for how each
        field matches). ``query`` is one string or several (ANDed). Raises ValidationFailed
        for a missing query, a term without a colon, an unknown field or ``order_by``, or a
        bad ``offset``/``limit``."""
        terms = [query] if isinstance(query, str) else query
        errors = Errors()
        if (
            terms is None
            or isinstance(terms, bytes)
            or not isinstance(terms, Sequence)
            or not all(isinstance(t, str) for t in terms)
            or not any(t.strip() for t in terms)
        ):
            raise ValidationFailed({"query": ["Missing value"]})
        criteria: list[ResourceCriterion] = []
        for term in terms:
            if not term.strip():
                continue
            if ":" not in term:
                raise ValidationFailed({"query": ["Must be <field>:<value> pair(s)"]})
            name, value = term.split(":", 1)
            name = name.strip()
            if name not in RESOURCE_SEARCH_FIELDS:
                errors.add("query", f'Field "{name[:60]}" not recognised in resource_search.')
            criteria.append(ResourceCriterion(name, value))
        if order_by is not None and (
            not isinstance(order_by, str) or order_by not in _RESOURCE_ORDER_FIELDS
        ):
            errors.add("order_by", f'Cannot order by "{str(order_by)[:60]}"')
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            errors.add("offset", "Must be a natural number")
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 0
        ):
            errors.add("limit", "Must be a natural number")
        errors.raise_if_any()
        with self._call() as call:
            count, found = call.uow.datasets.search_resources(
                criteria, order_by=order_by, offset=offset, limit=limit
            )
        return ResourceSearchResult(count=count, results=tuple(found))

    # -- users --------------------------------------------------------------------------

    def suggest_users(self, q: str, *, limit: int = 20) -> list[UserSuggestion]:
        """Active users whose name or full name contains ``q`` (CKAN user_autocomplete):
        id, name and full name only. Signed-in users only (NotAuthorized otherwise)."""
        errors = Errors()
        if not isinstance(q, str) or not q.strip():
            errors.add("q", "Missing value")
        if (
            isinstance(limit, bool)
            or not isinstance(limit, int)
            or not 0 < limit <= _MAX_SUGGESTIONS
        ):
            errors.add("limit", f"Must be between 1 and {_MAX_SUGGESTIONS}")
        with self._call() as call:
            if call.actor.is_anonymous:
                raise NotAuthorized("Access denied: sign in to look up users")
            errors.raise_if_any()
            users = call.uow.users.search(q.strip(), limit=limit)
        return [UserSuggestion(id=u.id, name=u.name, fullname=u.fullname) for u in users]

    # -- administration ---------------------------------------------------------------

    def document(self, index: str, doc_id: str) -> dict[str, Any]:
        """One stored document of a logical index (``packages``, ``resources`` or
        ``contents``) as the index holds it (sysadmins). NotFound when it is not there."""
        self._sysadmin_only()
        _check_index(index)
        if not isinstance(doc_id, str) or not doc_id:
            raise ValidationFailed({"id": ["Missing value"]})
        self._indexer.drain()
        doc = self._index.get_document(index, doc_id)
        if doc is None:
            raise NotFound("Document not found")
        return doc

    def browse(self, index: str, *, offset: int = 0, limit: int = 20) -> DocumentPage:
        """A page of the documents of a logical index, ordered by id (sysadmins; ``limit``
        at most 100)."""
        self._sysadmin_only()
        _check_index(index)
        errors = Errors()
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            errors.add("offset", "Must be a natural number")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= 100:
            errors.add("limit", f"Must be between 0 and {_MAX_ADMIN_PAGE}")
        errors.raise_if_any()
        self._indexer.drain()
        total, items = self._index.browse(index, offset=offset, limit=limit)
        return DocumentPage(
            index=index, total=total, offset=offset, limit=limit, items=tuple(items)
        )

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
        """Rebuild the index (datasets, resources, file text) from storage into a new index
        that replaces the current one when complete; searches meanwhile answer from the
        current one without waiting (sysadmins). ``progress(done, total)`` counts datasets."""
        self._sysadmin_only()
        return self._indexer.reindex(progress=progress)

    def stats(self) -> dict[str, Any]:
        """Documents (packages index) and bytes in the index, the document count of each
        logical index (``per_index``), pending outbox entries and whether a rebuild is
        running (sysadmins)."""
        self._sysadmin_only()
        st = self._index.stats()
        with self._call() as call:
            pending = len(call.uow.outbox.pending(limit=1_000_000))
        per_index = {name: int(st.per_index.get(name, 0)) for name in INDEX_NAMES}
        per_index["packages"] = st.documents
        return {
            "documents": st.documents,
            "size_bytes": st.size_bytes,
            "pending": pending,
            "per_index": per_index,
            "rebuilding": self._indexer.rebuilding,
        }

    def _sysadmin_only(self) -> None:
        with self._call() as call:
            self._require(call, Action.SEARCH_ADMIN, self._policy.base_role(call.actor))


def _check_index(index: object) -> None:
    if index not in INDEX_NAMES:
        raise ValidationFailed({"index": [f"Must be one of: {', '.join(INDEX_NAMES)}"]})


def _has_positive_word(query: Query) -> bool:
    """True when a word, phrase or prefix of ``query`` must (not must not) match."""
    stack: list[tuple[Query, bool]] = [(query, False)]
    while stack:
        node, negated = stack.pop()
        if isinstance(node, Not):
            stack.append((node.child, not negated))
        elif isinstance(node, And | Or):
            stack.extend((child, negated) for child in node.children)
        elif isinstance(node, Term | Phrase | Prefix) and not negated:
            return True
    return False


def _text_query(query: Query) -> TextQuery | None:
    """``query`` for the resources and contents indices, or None when it cannot go there
    (it names a field) or would only list everything (no word that must match)."""
    if not _has_positive_word(query):
        return None
    for node in iter_nodes(query):
        if isinstance(node, Term | Phrase | Prefix) and node.field not in (None, "text"):
            return None
    return TextQuery(query=query, limit=TEXT_LEG_CAP, highlight=True)


def _matches(
    results: Sequence[Dataset],
    resource_hits: Sequence[TextHit],
    content_hits: Sequence[TextHit],
) -> dict[str, DatasetMatches]:
    """The matching resources and chunks of each listed dataset (only its current
    resources: nothing is said about datasets that are not listed)."""
    out: dict[str, DatasetMatches] = {}
    for ds in results:
        current = {r.id for r in ds.resources}
        resources = tuple(
            ResourceMatch(resource_id=h.resource_id, highlights=h.highlights)
            for h in resource_hits
            if h.package_id == ds.id and h.resource_id in current
        )
        contents = tuple(
            ContentMatch(
                resource_id=h.resource_id,
                chunk=int(h.id.rpartition(":")[2] or 0),
                highlights=h.highlights,
            )
            for h in content_hits
            if h.package_id == ds.id and h.resource_id in current
        )
        if resources or contents:
            out[ds.id] = DatasetMatches(resources=resources, contents=contents)
    return out
