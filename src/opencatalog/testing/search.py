"""Conformance kit for ``SearchIndex`` implementations.

Subclass ``SearchIndexTests`` in a test module and override the ``index`` fixture to return a
new, empty index::

    class TestMyIndex(SearchIndexTests):
        @pytest.fixture
        def index(self, tmp_path):
            idx = MySearchIndex.from_url(f"my://{tmp_path}")
            yield idx
            idx.close()

The kit checks every query form against a fixed corpus with known answers (``CORPUS``), the
index life cycle (re-index, delete, clear, ids, bulk) and, with Hypothesis, random corpora and
random queries against ``MemorySearchIndex``, the reference implementation. Set
``hypothesis_examples`` on the subclass to size the random tests to the engine's speed.

The resources and contents indices are checked the same way: fixed documents with known
answers (``RESOURCES``, ``CONTENTS``), replacement per dataset and per resource, the
administration methods (``document_ids``, ``get_document``, ``browse``, per-index stats),
``rebuilding()`` (set ``rebuilds_beside = False`` for an index that keeps the port's in-place
default) and random documents, queries and write sequences compared with the reference.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opencatalog.adapters.memory_search import MemorySearchIndex
from opencatalog.domain.search import (
    INDEX_NAMES,
    And,
    ContentDocument,
    DatasetDocument,
    FacetRequest,
    MatchAll,
    Not,
    Or,
    Phrase,
    Prefix,
    Query,
    ResourceDocument,
    SearchPage,
    SearchQuery,
    SortKey,
    Term,
    TextPage,
    TextQuery,
    content_documents,
    parse_filter,
    parse_query,
)
from opencatalog.errors import SearchQueryError
from opencatalog.ports.search import SearchIndex
from opencatalog.testing.strategies import search_corpora, search_requests

__all__ = [
    "CONTENTS",
    "CORPUS",
    "PUBLIC",
    "RESOURCES",
    "SearchIndexTests",
    "content_corpora",
    "corpus",
    "resource_corpora",
    "text_queries",
]

PUBLIC = frozenset({"public"})
"""The labels of an anonymous visitor."""

_T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _doc(
    i: int,
    name: str,
    title: str,
    notes: str,
    *,
    tags: tuple[str, ...] = (),
    groups: tuple[str, ...] = (),
    org: str | None = None,
    formats: tuple[str, ...] = (),
    license_id: str | None = None,
    labels: tuple[str, ...] = ("public",),
    **extra: Any,
) -> DatasetDocument:
    fields: dict[str, Any] = {
        "res_name": tuple(f"{fmt} file" for fmt in formats),
        "res_url": tuple(f"https://data.example.org/{name}/{n}" for n in range(len(formats))),
        "metadata_created": _T0 - timedelta(days=40 - i),
        "metadata_modified": _T0 + timedelta(hours=i),
    }
    fields.update(extra)
    return DatasetDocument(
        id=f"ds-{i:02d}",
        name=name,
        title=title,
        notes=notes,
        tags=tags,
        groups=groups,
        organization=org,
        owner_org=None if org is None else f"org-id-{org}",
        res_format=formats,
        license_id=license_id,
        labels=labels,
        num_resources=len(formats),
        num_tags=len(tags),
        **fields,
    )


def corpus() -> list[DatasetDocument]:
    """The fixed corpus: 30 datasets, 26 of them public and active.

    ``ds-24`` is private to ``member-city``; ``ds-25`` is private to ``member-secret`` and the
    only document holding the word ``canary``; ``ds-26`` is a draft and ``ds-27`` deleted
    (both ``member-env``); ``ds-28`` and ``ds-29`` share ``metadata_modified``.
    """
    env, city, transit = "env-agency", "city-council", "transit"
    health, edu, stats, met = "health-dept", "education-board", "stats-office", "met-office"
    return [
        _doc(
            1,
            "water-quality-2020",
            "Water Quality 2020",
            "Measurements of river water quality in 2020.",
            tags=("water", "environment"),
            groups=("science",),
            org=env,
            formats=("CSV", "JSON", "CSV"),
            license_id="cc-by",
            author="Alice Smith",
        ),
        _doc(
            2,
            "water-quality-2021",
            "Water Quality 2021",
            "River water measurements, 2021 edition.",
            tags=("water", "environment"),
            groups=("science",),
            org=env,
            formats=("CSV",),
            license_id="cc-by",
        ),
        _doc(
            3,
            "air-quality",
            "Air Quality Index",
            "Daily air pollution index for major cities.",
            tags=("air", "environment", "health"),
            groups=("science", "health"),
            org=env,
            formats=("CSV", "XLS"),
            license_id="odc-by",
        ),
        _doc(
            4,
            "city-budget-2023",
            "City Budget 2023",
            "Annual budget of the city council.",
            tags=("economy", "finance"),
            groups=("government",),
            org=city,
            formats=("PDF", "CSV"),
            license_id="cc-zero",
        ),
        _doc(
            5,
            "city-budget-2024",
            "City Budget 2024",
            "Annual budget; includes water utility spending.",
            tags=("economy", "finance"),
            groups=("government",),
            org=city,
            formats=("XLS",),
            license_id="cc-zero",
        ),
        _doc(
            6,
            "bus-routes",
            "Bus Routes",
            "Public transport bus routes and stops.",
            tags=("transport",),
            groups=("mobility",),
            org=transit,
            formats=("GeoJSON", "CSV"),
            license_id="odc-odbl",
            res_name=("Route shapes", "Stop list"),
            res_description=("Shapes of every bus route", "All stops with coordinates"),
            res_url=(
                "https://transit.example.org/routes.geojson",
                "https://transit.example.org/stops.csv",
            ),
        ),
        _doc(
            7,
            "bike-lanes",
            "bike Lanes",
            "Cycling infrastructure: bike lanes and racks.",
            tags=("transport", "cycling"),
            groups=("mobility",),
            org=transit,
            formats=("GeoJSON",),
            license_id="odc-odbl",
        ),
        _doc(
            8,
            "traffic-counts",
            "Traffic Counts",
            "Hourly traffic counts at intersections.",
            tags=("transport",),
            org=transit,
            formats=("CSV",),
            license_id="cc-by",
        ),
        _doc(
            9,
            "hospital-beds",
            "Hospital Beds",
            "Available hospital beds by region.",
            tags=("health",),
            groups=("health",),
            org=health,
            formats=("CSV", "JSON"),
            license_id="cc-by",
        ),
        _doc(
            10,
            "vaccination-rates",
            "Vaccination Rates",
            "Vaccination coverage for children.",
            tags=("health", "children"),
            groups=("health",),
            org=health,
            formats=("JSON",),
            license_id="cc-by",
        ),
        _doc(
            11,
            "school-locations",
            "School Locations",
            "Addresses of primary and secondary schools.",
            tags=("education",),
            groups=("education",),
            org=edu,
            formats=("CSV", "GeoJSON"),
            license_id="cc-by-sa",
        ),
        _doc(
            12,
            "exam-results",
            "Exam Results",
            "Secondary school exam results by subject.",
            tags=("education", "statistics"),
            groups=("education",),
            org=edu,
            formats=("XLS",),
            license_id="cc-by-sa",
        ),
        _doc(
            13,
            "population-census",
            "Population Census 2021",
            "National census: population by age and sex.",
            tags=("statistics", "population"),
            groups=("government",),
            org=stats,
            formats=("CSV", "PDF"),
            license_id="ogl",
        ),
        _doc(
            14,
            "unemployment",
            "Unemployment Rate",
            "Monthly unemployment statistics.",
            tags=("economy", "statistics"),
            groups=("government",),
            org=stats,
            formats=("CSV",),
            license_id="ogl",
        ),
        _doc(
            15,
            "gdp-quarterly",
            "GDP Quarterly",
            "Gross domestic product, quarterly estimates.",
            tags=("economy",),
            org=stats,
            formats=("CSV", "XLS"),
            license_id="ogl",
        ),
        _doc(
            16,
            "weather-stations",
            "Weather Stations",
            "Locations of weather stations and water gauges.",
            tags=("climate", "weather"),
            groups=("science",),
            org=met,
            formats=("CSV",),
            license_id="cc-by",
            extras={"spatial": "North Sea coast", "frequency": "daily"},
        ),
        _doc(
            17,
            "rainfall",
            "Rainfall Daily",
            "Daily rainfall totals.",
            tags=("climate", "weather", "water"),
            groups=("science",),
            org=met,
            formats=("NetCDF",),
            license_id="cc-by",
            extras={"frequency": "daily"},
        ),
        _doc(
            18,
            "temperature-anomalies",
            "Temperature Anomalies",
            "Monthly temperature anomalies since 1880.",
            tags=("climate change", "climate"),
            groups=("science",),
            org=met,
            formats=("NetCDF", "CSV"),
            license_id="cc-by",
            extras={"frequency": "monthly"},
        ),
        _doc(
            19,
            "orphan-dataset",
            "Orphan Dataset",
            "A dataset without organization.",
            maintainer="Bob Jones",
        ),
        _doc(
            20,
            "trade-balance",
            "Trade Balance",
            "Imports and exports.",
            tags=("Economy",),
            org=stats,
            formats=("csv",),
            license_id="ogl",
        ),
        _doc(
            21,
            "library-loans",
            "Library Loans",
            "Books borrowed from public libraries.",
            tags=("culture",),
            groups=("education",),
            org=city,
            formats=("CSV",),
            license_id="cc-zero",
        ),
        _doc(
            22,
            "museum-visits",
            "Museum Visits",
            "Visitors to museums per month.",
            tags=("culture", "tourism"),
            org=city,
            formats=("JSON",),
            license_id="cc-zero",
        ),
        _doc(
            23,
            "hotel-occupancy",
            "Hotel Occupancy",
            "Hotel occupancy rates for tourism statistics.",
            tags=("tourism", "statistics"),
            org=stats,
            formats=("XLS", "CSV"),
            license_id="ogl",
        ),
        _doc(
            24,
            "budget-forecast",
            "Internal Budget Forecast",
            "Forecast of next year's budget.",
            tags=("economy", "finance"),
            org=city,
            formats=("XLS",),
            private=True,
            labels=("member-city",),
        ),
        _doc(
            25,
            "canary-dataset",
            "Canary Dataset",
            "The word canary must never leak to outsiders.",
            tags=("canary",),
            org="secret-org",
            formats=("CSV",),
            private=True,
            labels=("member-secret",),
        ),
        _doc(
            26,
            "draft-water-report",
            "Draft Water Report",
            "Unfinished water report.",
            tags=("water",),
            org=env,
            formats=("CSV",),
            state="draft",
            labels=("member-env",),
        ),
        _doc(
            27,
            "old-water-survey",
            "Old Water Survey",
            "Superseded water survey.",
            tags=("water",),
            org=env,
            formats=("CSV",),
            state="deleted",
            labels=("member-env",),
        ),
        _doc(
            28,
            "noise-levels",
            "Noise Levels",
            "Noise measurements near airports.",
            tags=("environment", "noise"),
            org=env,
            formats=("CSV",),
            metadata_modified=_T0 + timedelta(hours=100),
        ),
        _doc(
            29,
            "noise-complaints",
            "Noise Complaints",
            "Noise complaints from residents.",
            tags=("noise",),
            org=city,
            formats=("CSV",),
            metadata_modified=_T0 + timedelta(hours=100),
        ),
        _doc(
            30,
            "parking-meters",
            "Parking Meters",
            "Parking meter locations and tariffs; water-resistant meters.",
            tags=("transport", "parking"),
            org=transit,
            formats=("CSV", "JSON"),
            license_id="odc-odbl",
            type="showcase",
        ),
    ]


CORPUS: tuple[DatasetDocument, ...] = tuple(corpus())
_BY_ID = {doc.id: doc for doc in CORPUS}
_NAME = {doc.id: doc.name for doc in CORPUS}
_PUBLIC_ACTIVE = [doc for doc in CORPUS if not doc.private and doc.state == "active"]


def _n(*numbers: int) -> set[str]:
    """Names of corpus documents by number."""
    return {_BY_ID[f"ds-{i:02d}"].name for i in numbers}


_ALL_PUBLIC = {doc.name for doc in _PUBLIC_ACTIVE}
_WATER = _n(1, 2, 5, 16, 17, 30)
_CSV = _n(1, 2, 3, 4, 6, 8, 9, 11, 13, 14, 15, 16, 18, 21, 23, 28, 29, 30)

# (query text, names found by an anonymous visitor)
QUERY_CASES: list[tuple[str, set[str]]] = [
    ("water", _WATER),
    ("WATER", _WATER),
    ("text:water", _WATER),
    ("wat*", _WATER),
    ("water quality", _n(1, 2)),
    ("water AND quality", _n(1, 2)),
    ("+water +quality", _n(1, 2)),
    ('"water quality"', _n(1, 2)),
    ('"quality water"', set()),
    ('"water utility"', _n(5)),
    ("water-resistant", _n(30)),
    ("quality", _n(1, 2, 3)),
    ("title:quality", _n(1, 2, 3)),
    ("title:bud*", _n(4, 5)),
    ("notes:river", _n(1, 2)),
    ('notes:"river water"', _n(1, 2)),
    ("name:bus-routes", _n(6)),
    ("name:bus", set()),
    ("name:city-*", _n(4, 5)),
    ("id:ds-06", _n(6)),
    ("tags:economy", _n(4, 5, 14, 15)),
    ("tags:Economy", _n(20)),
    ('tags:"climate change"', _n(18)),
    ("tags:clim*", _n(16, 17, 18)),
    ("groups:health", _n(3, 9, 10)),
    ("organization:transit", _n(6, 7, 8, 30)),
    ("organization:city*", _n(4, 5, 21, 22, 29)),
    ("owner_org:org-id-transit", _n(6, 7, 8, 30)),
    ("res_format:CSV", _CSV),
    ("res_format:csv", _n(20)),
    ("res_name:shapes", _n(6)),
    ("res_name:geojson", _n(7, 11)),
    ("res_description:coordinates", _n(6)),
    ('res_url:"https://transit.example.org/routes.geojson"', _n(6)),
    ("license_id:ogl", _n(13, 14, 15, 20, 23)),
    ("author:alice", _n(1)),
    ("author:smith", _n(1)),
    ("maintainer:jones", _n(19)),
    ("extras_frequency:daily", _n(16, 17)),
    ('extras_spatial:"north sea"', _n(16)),
    ("extras_frequency:dai*", _n(16, 17)),
    ("dataset_type:showcase", _n(30)),
    ("capacity:public", _ALL_PUBLIC),
    ("tags:economy AND organization:stats-office", _n(14, 15)),
    ("tags:economy organization:stats-office", _n(14, 15)),
    ("tags:economy OR tags:finance", _n(4, 5, 14, 15)),
    ("tags:economy || tags:culture", _n(4, 5, 14, 15, 21, 22)),
    ("tags:(culture OR tourism)", _n(21, 22, 23)),
    ("tags:transport -tags:cycling", _n(6, 8, 30)),
    ("tags:transport NOT tags:cycling", _n(6, 8, 30)),
    ("tags:transport AND NOT tags:cycling", _n(6, 8, 30)),
    ("NOT tags:economy", _ALL_PUBLIC - _n(4, 5, 14, 15)),
    ("-tags:economy", _ALL_PUBLIC - _n(4, 5, 14, 15)),
    ("(tags:water OR tags:air) AND res_format:JSON", _n(1)),
    ("budget OR census", _n(4, 5, 13)),
    ("noise (airports OR residents)", _n(28, 29)),
    ("*:*", _ALL_PUBLIC),
    ("", _ALL_PUBLIC),
    ("canary", set()),
    ("tags:canary", set()),
]


def _names(page: SearchPage) -> set[str]:
    return {_NAME[hit.id] for hit in page.hits}


def _ordered(page: SearchPage) -> list[str]:
    return [_NAME[hit.id] for hit in page.hits]


def _counts(page: SearchPage, field: str) -> list[tuple[str, int]]:
    return [(fc.value, fc.count) for fc in page.facets[field]]


def _sorted_public(key: Any, reverse: bool = False) -> list[str]:
    docs = sorted(_PUBLIC_ACTIVE, key=lambda d: d.id)
    docs.sort(key=key, reverse=reverse)
    return [d.name for d in docs]


# ---------------------------------------------------------------------------------------------
# The resources and contents indices


def _res(
    rid: str, package_id: str, name: str, description: str, fmt: str, position: int = 0
) -> ResourceDocument:
    return ResourceDocument(
        id=rid,
        package_id=package_id,
        name=name,
        description=description,
        format=fmt,
        url=f"https://files.example.org/{rid}.{fmt.lower()}",
        position=position,
    )


RESOURCES: Mapping[str, tuple[ResourceDocument, ...]] = {
    "ds-01": (
        _res("r-01-1", "ds-01", "River gauges", "Hourly water levels at river gauges", "CSV"),
        _res("r-01-2", "ds-01", "Gauge map", "Locations of every gauge", "GeoJSON", 1),
    ),
    "ds-04": (
        _res("r-04-1", "ds-04", "Budget 2023", "Annual budget spreadsheet", "XLS"),
        _res("r-04-2", "ds-04", "Budget summary", "Summary of the budget in plain words", "PDF", 1),
    ),
    "ds-06": (_res("r-06-1", "ds-06", "Route shapes", "Shapes of every bus route", "GeoJSON"),),
    "ds-25": (_res("r-25-1", "ds-25", "Canary file", "The secret canary resource", "CSV"),),
}
"""The fixed resources documents by dataset id (six resources of four datasets). Resource
URLs hold the word ``example``, which must match nothing (URLs are not searched)."""

_ALL_RESOURCES = {doc.id for docs in RESOURCES.values() for doc in docs}


def _chunk(rid: str, package_id: str, chunk: int, text: str) -> ContentDocument:
    return ContentDocument(resource_id=rid, package_id=package_id, chunk=chunk, text=text)


CONTENTS: Mapping[str, tuple[ContentDocument, ...]] = {
    "r-01-1": (
        _chunk(
            "r-01-1",
            "ds-01",
            0,
            "station,level,note\nriver alpha,3.2,normal\nriver beta,4.1,flood warning\n",
        ),
    ),
    "r-04-1": (
        _chunk("r-04-1", "ds-04", 0, "Budget lines for schools and roads"),
        _chunk("r-04-1", "ds-04", 1, "Water utility spending rose sharply"),
        _chunk("r-04-1", "ds-04", 2, "Appendix: schools by district"),
    ),
    "r-06-1": (_chunk("r-06-1", "ds-06", 0, "Route 12 stops at the river bridge"),),
    "r-25-1": (_chunk("r-25-1", "ds-25", 0, "canary secret words only insiders know"),),
}
"""The fixed contents documents by resource id (six chunks of four resources)."""

_ALL_CHUNKS = {doc.id for docs in CONTENTS.values() for doc in docs}

# (query text, resource ids found)
RESOURCE_CASES: list[tuple[str, set[str]]] = [
    ("river", {"r-01-1"}),
    ("RIVER", {"r-01-1"}),
    ("text:river", {"r-01-1"}),
    ("gauges", {"r-01-1"}),
    ("gaug*", {"r-01-1", "r-01-2"}),
    ("budget", {"r-04-1", "r-04-2"}),
    ("budget summary", {"r-04-2"}),
    ("budget AND summary", {"r-04-2"}),
    ("river water", {"r-01-1"}),
    ('"water levels"', {"r-01-1"}),
    ('"levels water"', set()),
    ('"gauges hourly"', set()),
    ("csv", {"r-01-1", "r-25-1"}),
    ("geojson", {"r-01-2", "r-06-1"}),
    ("every", {"r-01-2", "r-06-1"}),
    ("2023", {"r-04-1"}),
    ("budget -summary", {"r-04-1"}),
    ("budget NOT summary", {"r-04-1"}),
    ("NOT budget", _ALL_RESOURCES - {"r-04-1", "r-04-2"}),
    ("shapes OR canary", {"r-06-1", "r-25-1"}),
    ("(shapes OR budget) -summary", {"r-06-1", "r-04-1"}),
    ("example", set()),
    ("files", set()),
    ("*:*", _ALL_RESOURCES),
    ("nothingmatchesthis", set()),
]

# (query text, chunk ids found)
CONTENT_CASES: list[tuple[str, set[str]]] = [
    ("river", {"r-01-1:0", "r-06-1:0"}),
    ("schools", {"r-04-1:0", "r-04-1:2"}),
    ("schools spending", set()),
    ("schools roads", {"r-04-1:0"}),
    ('"water utility"', {"r-04-1:1"}),
    ('"utility water"', set()),
    ("flo*", {"r-01-1:0"}),
    ("WATER", {"r-04-1:1"}),
    ("canary", {"r-25-1:0"}),
    ("schools -appendix", {"r-04-1:0"}),
    ("NOT schools", _ALL_CHUNKS - {"r-04-1:0", "r-04-1:2"}),
    ("12", {"r-06-1:0"}),
    ("3", {"r-01-1:0"}),
    ("bridge OR warning", {"r-06-1:0", "r-01-1:0"}),
    ("*:*", _ALL_CHUNKS),
]


def _text_ids(page: TextPage) -> set[str]:
    return {hit.id for hit in page.hits}


def _replace(doc: Any, **changes: Any) -> Any:
    return attrs.evolve(doc, **changes)


# Random documents for the comparisons with the reference index: a small vocabulary so that
# random queries often match, separators that exercise tokenisation, few ids so that writes
# replace each other.

_TEXT_WORDS = ("alpha", "Alpha", "beta", "gamma", "café", "x2", "river", "rivers", "data")
_TEXT_FORMATS = ("CSV", "csv", "JSON", "GeoJSON", "")
_TEXT_PACKAGES = ("p0", "p1", "p2", "p3")
_TEXT_RESOURCES = tuple(f"r{i}" for i in range(8))


def _package_of(resource_id: str) -> str:
    return _TEXT_PACKAGES[int(resource_id[1:]) % len(_TEXT_PACKAGES)]


def _words(min_words: int = 0, max_words: int = 6) -> st.SearchStrategy[str]:
    separators = st.sampled_from((" ", " ", "-", "_", ", ", "\n"))
    pieces = st.lists(
        st.tuples(st.sampled_from(_TEXT_WORDS), separators), min_size=min_words, max_size=max_words
    )
    return pieces.map(lambda items: "".join(word + sep for word, sep in items).strip())


@st.composite
def resource_corpora(draw: st.DrawFn) -> dict[str, list[ResourceDocument]]:
    """Random resources documents by dataset id; a resource always belongs to the same
    dataset (``_package_of``), as in storage."""
    out: dict[str, list[ResourceDocument]] = {}
    rids = draw(st.lists(st.sampled_from(_TEXT_RESOURCES), unique=True, max_size=8))
    for position, rid in enumerate(rids):
        package_id = _package_of(rid)
        out.setdefault(package_id, []).append(
            ResourceDocument(
                id=rid,
                package_id=package_id,
                name=draw(_words(0, 3)),
                description=draw(_words(0, 6)),
                format=draw(st.sampled_from(_TEXT_FORMATS)),
                url=f"https://example.org/{rid}",
                position=position,
            )
        )
    return out


@st.composite
def content_corpora(draw: st.DrawFn) -> dict[str, list[ContentDocument]]:
    """Random contents documents by resource id, cut into small chunks."""
    out: dict[str, list[ContentDocument]] = {}
    rids = draw(st.lists(st.sampled_from(_TEXT_RESOURCES), unique=True, max_size=6))
    for rid in rids:
        text = draw(_words(0, 16))
        chunk_chars = draw(st.integers(8, 60))
        out[rid] = content_documents(rid, _package_of(rid), text, chunk_chars=chunk_chars)
    return out


def _text_leaf() -> st.SearchStrategy[Query]:
    return st.one_of(
        st.builds(Term, st.just(None), st.sampled_from((*_TEXT_WORDS, "csv", "geojson"))),
        st.builds(Phrase, st.just(None), _words(1, 2)),
        st.builds(
            Prefix,
            st.just(None),
            st.sampled_from(_TEXT_WORDS).flatmap(
                lambda w: st.integers(2, len(w)).map(lambda k: w[:k])
            ),
        ),
        st.just(MatchAll()),
    )


def text_query_trees(max_leaves: int = 5) -> st.SearchStrategy[Query]:
    """Random query ASTs of words, phrases and prefixes (no field names)."""
    return st.recursive(
        _text_leaf(),
        lambda children: st.one_of(
            st.lists(children, min_size=1, max_size=3).map(And),
            st.lists(children, min_size=1, max_size=3).map(Or),
            children.map(Not),
        ),
        max_leaves=max_leaves,
    )


@st.composite
def text_queries(draw: st.DrawFn) -> TextQuery:
    """A random ``TextQuery`` (query, dataset restriction and page)."""
    return TextQuery(
        query=draw(text_query_trees()),
        package_ids=draw(st.none() | st.frozensets(st.sampled_from(_TEXT_PACKAGES), max_size=3)),
        offset=draw(st.integers(0, 4)),
        limit=draw(st.integers(0, 12)),
        highlight=draw(st.booleans()),
    )


_WRITES = st.one_of(
    st.tuples(st.just("index_resources"), resource_corpora()),
    st.tuples(st.just("delete_resources"), st.lists(st.sampled_from(_TEXT_PACKAGES), max_size=2)),
    st.tuples(st.just("index_contents"), content_corpora()),
    st.tuples(st.just("delete_contents"), st.lists(st.sampled_from(_TEXT_RESOURCES), max_size=3)),
    st.tuples(
        st.just("delete_contents_of_packages"),
        st.lists(st.sampled_from(_TEXT_PACKAGES), max_size=2),
    ),
    st.tuples(
        st.just("index_resources"),
        st.lists(st.sampled_from(_TEXT_PACKAGES), max_size=2).map(lambda ids: {i: [] for i in ids}),
    ),
)


def _apply(index: SearchIndex, writes: Sequence[tuple[str, Any]]) -> None:
    for method, argument in writes:
        getattr(index, method)(argument)


class SearchIndexTests:
    """The behaviour every ``SearchIndex`` must have. Override the ``index`` fixture."""

    hypothesis_examples: ClassVar[int] = 40
    """How many random corpora/queries the Hypothesis comparisons try."""

    @pytest.fixture
    def index(self) -> Iterator[SearchIndex]:
        """A new, empty index of the implementation under test (override this)."""
        raise NotImplementedError("override the `index` fixture in the subclass")

    @pytest.fixture
    def loaded(self, index: SearchIndex) -> SearchIndex:
        """The index holding the fixed corpus."""
        index.index(CORPUS)
        return index

    def search(self, index: SearchIndex, q: str | Query = "", **options: Any) -> SearchPage:
        """Run a query as an anonymous visitor unless ``labels`` is given; all hits."""
        options.setdefault("labels", PUBLIC)
        options.setdefault("limit", 100)
        query = parse_query(q) if isinstance(q, str) else q
        return index.query(SearchQuery(query=query, **options))

    # -- query forms ---------------------------------------------------------------------

    @pytest.mark.parametrize(("text", "expected"), QUERY_CASES, ids=[c[0] for c in QUERY_CASES])
    def test_query_forms(self, loaded: SearchIndex, text: str, expected: set[str]) -> None:
        page = self.search(loaded, text)
        assert _names(page) == expected
        assert page.total == len(expected)

    def test_filters_are_anded_and_combine_with_the_query(self, loaded: SearchIndex) -> None:
        page = self.search(loaded, "water", filters=[parse_filter("res_format:JSON")])
        assert _names(page) == _n(1, 30)
        fq = parse_filter('tags:economy +res_format:CSV organization:"city-council"')
        assert _names(self.search(loaded, filters=[fq])) == _n(4)
        two = [parse_filter("tags:economy"), parse_filter("res_format:CSV")]
        assert _names(self.search(loaded, filters=two)) == _n(4, 14, 15)

    def test_unknown_field_in_an_ast_is_refused(self, loaded: SearchIndex) -> None:
        with pytest.raises(SearchQueryError):
            self.search(loaded, Term("password", "x"))

    # -- visibility and states -----------------------------------------------------------

    def test_private_datasets_need_a_matching_label(self, loaded: SearchIndex) -> None:
        assert _names(self.search(loaded, "budget")) == _n(4, 5)
        member = PUBLIC | {"member-city"}
        assert _names(self.search(loaded, "budget", labels=member)) == _n(4, 5, 24)
        assert _names(self.search(loaded, "budget", labels=None)) == _n(4, 5, 24)
        assert _names(self.search(loaded, "budget", labels=frozenset())) == set()

    def test_the_canary_never_reaches_outsiders(self, loaded: SearchIndex) -> None:
        probes = [
            "canary",
            "canar*",
            "tags:canary",
            "organization:secret-org",
            "*:*",
            "capacity:private",
            "NOT water",
            "id:ds-25",
        ]
        for text in probes:
            page = self.search(
                loaded,
                text,
                facets=[FacetRequest("tags", limit=-1)],
                states=frozenset({"active", "draft", "deleted"}),
            )
            assert "canary-dataset" not in _names(page), text
            assert "canary" not in {fc.value for fc in page.facets["tags"]}, text
        insider = PUBLIC | {"member-secret"}
        assert _names(self.search(loaded, "canary", labels=insider)) == _n(25)
        assert _names(self.search(loaded, "canary", labels=None)) == _n(25)

    def test_states(self, loaded: SearchIndex) -> None:
        everyone = None
        assert _names(self.search(loaded, "water", labels=everyone)) == _WATER
        drafts = frozenset({"active", "draft"})
        assert _names(self.search(loaded, "water", labels=everyone, states=drafts)) == (
            _WATER | _n(26)
        )
        deleted = frozenset({"deleted"})
        assert _names(self.search(loaded, "water", labels=everyone, states=deleted)) == _n(27)
        member = PUBLIC | {"member-env"}
        assert _names(self.search(loaded, "water", labels=member)) == _WATER
        assert _names(self.search(loaded, "water", labels=member, states=drafts)) == (
            _WATER | _n(26)
        )
        assert _names(self.search(loaded, "capacity:private", labels=everyone)) == _n(24, 25)

    # -- facets --------------------------------------------------------------------------

    def test_facets_over_everything_visible(self, loaded: SearchIndex) -> None:
        facets = [
            FacetRequest(f) for f in ("organization", "groups", "res_format", "license_id", "tags")
        ]
        page = self.search(loaded, facets=facets, limit=0)
        assert page.hits == ()
        assert page.total == len(_ALL_PUBLIC)
        assert _counts(page, "organization") == [
            ("city-council", 5),
            ("stats-office", 5),
            ("env-agency", 4),
            ("transit", 4),
            ("met-office", 3),
            ("education-board", 2),
            ("health-dept", 2),
        ]
        assert _counts(page, "groups") == [
            ("science", 6),
            ("government", 4),
            ("education", 3),
            ("health", 3),
            ("mobility", 2),
        ]
        assert _counts(page, "res_format") == [
            ("CSV", 18),
            ("JSON", 5),
            ("XLS", 5),
            ("GeoJSON", 3),
            ("NetCDF", 2),
            ("PDF", 2),
            ("csv", 1),
        ]
        assert _counts(page, "license_id") == [
            ("cc-by", 8),
            ("ogl", 5),
            ("cc-zero", 4),
            ("odc-odbl", 3),
            ("cc-by-sa", 2),
            ("odc-by", 1),
        ]
        assert _counts(page, "tags")[:7] == [
            ("economy", 4),
            ("environment", 4),
            ("statistics", 4),
            ("transport", 4),
            ("climate", 3),
            ("health", 3),
            ("water", 3),
        ]
        assert len(page.facets["tags"]) == 20

    def test_facet_limit_and_mincount(self, loaded: SearchIndex) -> None:
        page = self.search(loaded, facets=[FacetRequest("organization", limit=3)])
        assert _counts(page, "organization") == [
            ("city-council", 5),
            ("stats-office", 5),
            ("env-agency", 4),
        ]
        page = self.search(loaded, facets=[FacetRequest("organization", mincount=4)])
        assert [v for v, _ in _counts(page, "organization")] == [
            "city-council",
            "stats-office",
            "env-agency",
            "transit",
        ]
        page = self.search(loaded, facets=[FacetRequest("license_id", limit=0)])
        assert _counts(page, "license_id") == []
        page = self.search(loaded, facets=[FacetRequest("tags", limit=-1, mincount=0)])
        assert len(page.facets["tags"]) == 20

    def test_facets_follow_the_query_and_filters(self, loaded: SearchIndex) -> None:
        page = self.search(loaded, "water", facets=[FacetRequest("tags", mincount=2)])
        assert _counts(page, "tags") == [
            ("water", 3),
            ("climate", 2),
            ("environment", 2),
            ("weather", 2),
        ]
        page = self.search(
            loaded,
            "water",
            filters=[parse_filter("organization:env-agency")],
            facets=[FacetRequest("res_format"), FacetRequest("dataset_type")],
        )
        assert _counts(page, "res_format") == [("CSV", 2), ("JSON", 1)]
        assert _counts(page, "dataset_type") == [("dataset", 2)]
        page = self.search(loaded, "nothingmatchesthis", facets=[FacetRequest("tags")])
        assert page.total == 0
        assert _counts(page, "tags") == []

    # -- sorting and paging --------------------------------------------------------------

    @pytest.mark.parametrize("descending", [False, True])
    def test_sort_by_name(self, loaded: SearchIndex, descending: bool) -> None:
        page = self.search(loaded, sort=[SortKey("name", descending)])
        assert _ordered(page) == _sorted_public(lambda d: d.name, descending)

    @pytest.mark.parametrize("descending", [False, True])
    def test_sort_by_title_ignores_case(self, loaded: SearchIndex, descending: bool) -> None:
        page = self.search(loaded, sort=[SortKey("title", descending)])
        assert _ordered(page) == _sorted_public(lambda d: d.title.lower(), descending)

    @pytest.mark.parametrize("field", ["metadata_modified", "metadata_created"])
    @pytest.mark.parametrize("descending", [False, True])
    def test_sort_by_dates(self, loaded: SearchIndex, field: str, descending: bool) -> None:
        page = self.search(loaded, sort=[SortKey(field, descending)])
        expected = _sorted_public(lambda d: getattr(d, field), descending)
        assert _ordered(page) == expected

    def test_ties_are_broken_by_id(self, loaded: SearchIndex) -> None:
        for descending in (False, True):
            page = self.search(loaded, "noise", sort=[SortKey("metadata_modified", descending)])
            assert _ordered(page) == ["noise-levels", "noise-complaints"]

    def test_default_order_of_match_all_is_newest_first(self, loaded: SearchIndex) -> None:
        page = self.search(loaded)
        expected = _sorted_public(lambda d: d.metadata_modified, True)
        assert _ordered(page) == expected
        assert expected[:2] == ["noise-levels", "noise-complaints"]

    def test_scored_query_finds_the_same_set_in_any_order(self, loaded: SearchIndex) -> None:
        page = self.search(loaded, "water", sort=[SortKey("score", True)])
        assert _names(page) == _WATER
        scores = [hit.score for hit in page.hits]
        assert scores == sorted(scores, reverse=True)

    def test_multiple_sort_keys(self, loaded: SearchIndex) -> None:
        page = self.search(
            loaded, "res_format:CSV", sort=[SortKey("metadata_modified", True), SortKey("name")]
        )
        docs = [d for d in _PUBLIC_ACTIVE if _NAME[d.id] in _CSV]
        docs.sort(key=lambda d: d.name)
        docs.sort(key=lambda d: d.metadata_modified, reverse=True)
        assert _ordered(page) == [d.name for d in docs]

    def test_paging(self, loaded: SearchIndex) -> None:
        names = _sorted_public(lambda d: d.name)
        for offset, limit in [(0, 5), (5, 5), (20, 10), (25, 3), (26, 5), (100, 5), (3, 0)]:
            page = self.search(loaded, sort=[SortKey("name")], offset=offset, limit=limit)
            assert page.total == len(names)
            assert _ordered(page) == names[offset : offset + limit]
        page = self.search(loaded, offset=10**12, limit=1000)
        assert page.total == len(names)
        assert page.hits == ()

    def test_highlights(self, loaded: SearchIndex) -> None:
        page = self.search(loaded, "water utility", highlight=True)
        (hit,) = page.hits
        assert hit.highlights["notes"] == (
            "Annual budget; includes <em>water</em> <em>utility</em> spending.",
        )
        assert "title" not in hit.highlights
        assert self.search(loaded, "water utility").hits[0].highlights == {}

    # -- life cycle ----------------------------------------------------------------------

    def test_empty_index(self, index: SearchIndex) -> None:
        assert index.count() == 0
        page = self.search(index, "water", facets=[FacetRequest("tags")])
        assert page.total == 0
        assert page.hits == ()
        assert _counts(page, "tags") == []
        assert list(index.ids()) == []

    def test_reindex_is_idempotent(self, index: SearchIndex) -> None:
        doc = CORPUS[0]
        for _ in range(5):
            index.index([doc])
        index.index([doc, doc, doc])
        assert index.count() == 1
        assert self.search(index, "water").total == 1
        assert index.stats().documents == 1

    def test_reindex_replaces_the_document(self, index: SearchIndex) -> None:
        doc = CORPUS[0]
        index.index([doc])
        changed = DatasetDocument(
            **{
                **_fields(doc),
                "name": "renamed-survey",
                "title": "Renamed Survey",
                "tags": ("renamed",),
                "notes": "",
            }
        )
        index.index([changed])
        assert self.search(index, "quality").total == 0
        assert _names(self.search(index, "renamed")) == {doc.name}
        page = self.search(index, facets=[FacetRequest("tags")])
        assert _counts(page, "tags") == [("renamed", 1)]

    def test_delete(self, loaded: SearchIndex) -> None:
        loaded.delete(["ds-01", "ds-02", "no-such-id"])
        loaded.delete([])
        assert loaded.count() == len(CORPUS) - 2
        assert _names(self.search(loaded, "water")) == _n(5, 16, 17, 30)
        loaded.delete(["ds-01"])
        assert loaded.count() == len(CORPUS) - 2

    def test_clear(self, loaded: SearchIndex) -> None:
        loaded.clear()
        assert loaded.count() == 0
        assert self.search(loaded).total == 0
        loaded.index(CORPUS[:3])
        assert loaded.count() == 3

    def test_ids(self, loaded: SearchIndex) -> None:
        assert sorted(loaded.ids()) == sorted((d.id, d.metadata_modified) for d in CORPUS)
        for _, modified in loaded.ids():
            assert modified.tzinfo is not None

    def test_stats(self, loaded: SearchIndex) -> None:
        stats = loaded.stats()
        assert stats.documents == len(CORPUS)
        assert stats.size_bytes >= 0

    def test_bulk(self, index: SearchIndex) -> None:
        with index.bulk() as bulk:
            bulk.index(CORPUS[:10])
            bulk.index(CORPUS[10:])
            bulk.delete(["ds-30"])
        assert index.count() == len(CORPUS) - 1
        assert _names(self.search(index, "tags:transport")) == _n(6, 7, 8)

    def test_close_twice(self, index: SearchIndex) -> None:
        index.close()
        index.close()

    # -- the resources and contents indices ---------------------------------------------

    rebuilds_beside: ClassVar[bool] = True
    """Whether ``rebuilding()`` builds a new index beside the current one (False for an
    index that keeps the port's in-place default)."""

    @pytest.fixture
    def loaded_text(self, index: SearchIndex) -> SearchIndex:
        """The index holding the fixed corpus, ``RESOURCES`` and ``CONTENTS``."""
        index.index(CORPUS)
        index.index_resources(RESOURCES)
        index.index_contents(CONTENTS)
        return index

    def resources(self, index: SearchIndex, q: str | Query = "", **options: Any) -> TextPage:
        """A resources query; all hits unless ``limit`` is given."""
        options.setdefault("limit", 100)
        query = parse_query(q) if isinstance(q, str) else q
        return index.query_resources(TextQuery(query=query, **options))

    def contents(self, index: SearchIndex, q: str | Query = "", **options: Any) -> TextPage:
        """A contents query; all hits unless ``limit`` is given."""
        options.setdefault("limit", 100)
        query = parse_query(q) if isinstance(q, str) else q
        return index.query_contents(TextQuery(query=query, **options))

    @pytest.mark.parametrize(
        ("text", "expected"), RESOURCE_CASES, ids=[c[0] for c in RESOURCE_CASES]
    )
    def test_resource_query_forms(
        self, loaded_text: SearchIndex, text: str, expected: set[str]
    ) -> None:
        page = self.resources(loaded_text, text)
        assert _text_ids(page) == expected
        assert page.total == len(expected)

    @pytest.mark.parametrize(("text", "expected"), CONTENT_CASES, ids=[c[0] for c in CONTENT_CASES])
    def test_content_query_forms(
        self, loaded_text: SearchIndex, text: str, expected: set[str]
    ) -> None:
        page = self.contents(loaded_text, text)
        assert _text_ids(page) == expected
        assert page.total == len(expected)

    def test_text_hits_name_their_resource_and_dataset(self, loaded_text: SearchIndex) -> None:
        packages = {doc.id: doc.package_id for docs in RESOURCES.values() for doc in docs}
        for hit in self.resources(loaded_text, "*:*").hits:
            assert hit.resource_id == hit.id
            assert hit.package_id == packages[hit.id]
            assert hit.highlights == {}
        chunks = {doc.id: doc for docs in CONTENTS.values() for doc in docs}
        for hit in self.contents(loaded_text, "*:*").hits:
            assert hit.resource_id == chunks[hit.id].resource_id
            assert hit.package_id == chunks[hit.id].package_id
            assert hit.highlights == {}

    def test_text_queries_refuse_field_names(self) -> None:
        with pytest.raises(SearchQueryError):
            TextQuery(query=Term("title", "water"))
        with pytest.raises(SearchQueryError):
            TextQuery(query=parse_query("tags:water"))
        with pytest.raises(SearchQueryError):
            TextQuery(query=MatchAll(), offset=-1)

    def test_text_queries_restricted_to_datasets(self, loaded_text: SearchIndex) -> None:
        page = self.resources(loaded_text, "geojson", package_ids={"ds-06"})
        assert _text_ids(page) == {"r-06-1"}
        assert page.total == 1
        page = self.resources(loaded_text, "*:*", package_ids={"ds-01", "ds-25", "no-such"})
        assert _text_ids(page) == {"r-01-1", "r-01-2", "r-25-1"}
        assert self.resources(loaded_text, "*:*", package_ids=set()).total == 0
        page = self.contents(loaded_text, "river OR schools", package_ids={"ds-04"})
        assert _text_ids(page) == {"r-04-1:0", "r-04-1:2"}
        assert self.contents(loaded_text, "river", package_ids=set()).hits == ()

    def test_text_paging_and_order(self, index: SearchIndex) -> None:
        same = {
            f"p{i % 3}": [
                _res(f"r-{j:02d}", f"p{i % 3}", "same words here", "", "") for j in range(i, 12, 3)
            ]
            for i in range(3)
        }
        index.index_resources(same)
        index.index_contents(
            {
                f"r-{j:02d}": [_chunk(f"r-{j:02d}", f"p{j % 3}", 0, "same words here")]
                for j in range(12)
            }
        )
        ids = [f"r-{j:02d}" for j in range(12)]
        for query in (self.resources, self.contents):
            suffix = "" if query == self.resources else ":0"
            whole = query(index, "same")
            assert [hit.id for hit in whole.hits] == [i + suffix for i in ids]
            for offset, limit in [(0, 5), (5, 5), (10, 5), (3, 0), (12, 3), (10**9, 3)]:
                page = query(index, "same", offset=offset, limit=limit)
                assert page.total == 12
                assert [hit.id for hit in page.hits] == [
                    i + suffix for i in ids[offset : offset + limit]
                ]
            assert [hit.id for hit in query(index, "*:*", limit=3).hits] == [
                i + suffix for i in ids[:3]
            ]

    def test_text_hits_by_score_then_id(self, loaded_text: SearchIndex) -> None:
        for page in (
            self.resources(loaded_text, "river OR gauges OR every OR budget"),
            self.contents(loaded_text, "river OR schools OR water"),
        ):
            assert page.total == len(page.hits) > 2
            keys = [(-hit.score, hit.id) for hit in page.hits]
            assert keys == sorted(keys)

    def test_text_highlights(self, loaded_text: SearchIndex) -> None:
        (hit,) = self.resources(loaded_text, "gauges", highlight=True).hits
        assert hit.highlights["name"] == ("River <em>gauges</em>",)
        assert hit.highlights["description"] == ("Hourly water levels at river <em>gauges</em>",)
        (hit,) = self.resources(loaded_text, "summary", highlight=True).hits
        assert hit.highlights["name"] == ("Budget <em>summary</em>",)
        (hit,) = self.resources(loaded_text, "spreadsheet", highlight=True).hits
        assert "name" not in hit.highlights
        (hit,) = self.contents(loaded_text, "water utility", highlight=True).hits
        assert hit.highlights == {
            "text": ("<em>Water</em> <em>utility</em> spending rose sharply",)
        }
        (hit,) = self.contents(loaded_text, "flo*", highlight=True).hits
        assert hit.highlights["text"] == (
            "station,level,note\nriver alpha,3.2,normal\nriver beta,4.1,<em>flood</em> warning\n",
        )

    def test_resources_are_replaced_per_dataset(self, loaded_text: SearchIndex) -> None:
        renamed = _replace(RESOURCES["ds-01"][0], name="Tide gauges", description="")
        loaded_text.index_resources({"ds-01": [renamed], "ds-04": []})
        assert _text_ids(self.resources(loaded_text, "*:*")) == {"r-01-1", "r-06-1", "r-25-1"}
        assert _text_ids(self.resources(loaded_text, "tide")) == {"r-01-1"}
        assert _text_ids(self.resources(loaded_text, "river")) == set()
        assert _text_ids(self.resources(loaded_text, "budget")) == set()
        loaded_text.index_resources({"ds-01": [renamed, renamed]})
        assert self.resources(loaded_text, "tide").total == 1
        loaded_text.index_resources({})
        assert self.resources(loaded_text, "*:*").total == 3
        # resources do not touch the other indices
        assert loaded_text.count() == len(CORPUS)
        assert self.contents(loaded_text, "*:*").total == len(_ALL_CHUNKS)

    def test_delete_resources(self, loaded_text: SearchIndex) -> None:
        loaded_text.delete_resources(["ds-01", "ds-25", "no-such-dataset"])
        loaded_text.delete_resources([])
        assert _text_ids(self.resources(loaded_text, "*:*")) == {"r-04-1", "r-04-2", "r-06-1"}
        assert self.contents(loaded_text, "*:*").total == len(_ALL_CHUNKS)
        assert loaded_text.count() == len(CORPUS)

    def test_contents_are_replaced_per_resource(self, loaded_text: SearchIndex) -> None:
        one = content_documents("r-04-1", "ds-04", "Revised budget text")
        loaded_text.index_contents({"r-04-1": one, "r-06-1": []})
        assert _text_ids(self.contents(loaded_text, "*:*")) == {"r-01-1:0", "r-04-1:0", "r-25-1:0"}
        assert _text_ids(self.contents(loaded_text, "schools")) == set()
        assert _text_ids(self.contents(loaded_text, "revised")) == {"r-04-1:0"}
        assert _text_ids(self.contents(loaded_text, "bridge")) == set()
        loaded_text.index_contents({"r-04-1": [*one, *one]})
        assert self.contents(loaded_text, "revised").total == 1
        assert self.resources(loaded_text, "*:*").total == len(_ALL_RESOURCES)

    def test_delete_contents(self, loaded_text: SearchIndex) -> None:
        loaded_text.delete_contents(["r-04-1", "no-such-resource"])
        loaded_text.delete_contents([])
        assert _text_ids(self.contents(loaded_text, "*:*")) == {"r-01-1:0", "r-06-1:0", "r-25-1:0"}
        loaded_text.delete_contents_of_packages(["ds-01", "ds-25", "no-such-dataset"])
        loaded_text.delete_contents_of_packages([])
        assert _text_ids(self.contents(loaded_text, "*:*")) == {"r-06-1:0"}
        assert self.resources(loaded_text, "*:*").total == len(_ALL_RESOURCES)
        assert loaded_text.count() == len(CORPUS)

    def test_clear_empties_all_three_indices(self, loaded_text: SearchIndex) -> None:
        loaded_text.clear()
        assert loaded_text.count() == 0
        assert self.resources(loaded_text, "*:*").total == 0
        assert self.contents(loaded_text, "*:*").total == 0
        for name in INDEX_NAMES:
            assert list(loaded_text.document_ids(name)) == []

    def test_bulk_covers_resources_and_contents(self, index: SearchIndex) -> None:
        with index.bulk() as bulk:
            bulk.index(CORPUS)
            bulk.index_resources(RESOURCES)
            bulk.index_contents(CONTENTS)
            bulk.delete_resources(["ds-25"])
            bulk.delete_contents(["r-25-1"])
            bulk.delete_contents_of_packages(["ds-06"])
        assert self.resources(index, "*:*").total == len(_ALL_RESOURCES) - 1
        assert _text_ids(self.contents(index, "*:*")) == _ALL_CHUNKS - {"r-25-1:0", "r-06-1:0"}
        assert index.count() == len(CORPUS)

    # -- administration ---------------------------------------------------------------

    def test_document_ids(self, loaded_text: SearchIndex) -> None:
        assert sorted(loaded_text.document_ids("packages")) == sorted(
            (doc.id, doc.id) for doc in CORPUS
        )
        assert sorted(loaded_text.document_ids("resources")) == sorted(
            (doc.id, doc.package_id) for docs in RESOURCES.values() for doc in docs
        )
        assert sorted(loaded_text.document_ids("contents")) == sorted(
            (doc.id, doc.package_id) for docs in CONTENTS.values() for doc in docs
        )
        with pytest.raises(SearchQueryError):
            list(loaded_text.document_ids("datasets"))

    def test_get_document(self, loaded_text: SearchIndex) -> None:
        original = _BY_ID["ds-16"]
        doc = loaded_text.get_document("packages", "ds-16")
        assert doc is not None
        assert json.loads(json.dumps(doc)) == doc
        assert doc["id"] == "ds-16"
        assert doc["name"] == original.name
        assert doc["title"] == original.title
        assert datetime.fromisoformat(doc["metadata_modified"]) == original.metadata_modified
        res = loaded_text.get_document("resources", "r-04-2")
        assert res is not None
        assert json.loads(json.dumps(res)) == res
        assert {k: res[k] for k in ("id", "package_id", "name", "description", "format")} == {
            "id": "r-04-2",
            "package_id": "ds-04",
            "name": "Budget summary",
            "description": "Summary of the budget in plain words",
            "format": "PDF",
        }
        chunk = loaded_text.get_document("contents", "r-04-1:1")
        assert chunk is not None
        assert json.loads(json.dumps(chunk)) == chunk
        assert {k: chunk[k] for k in ("id", "resource_id", "package_id", "chunk", "text")} == {
            "id": "r-04-1:1",
            "resource_id": "r-04-1",
            "package_id": "ds-04",
            "chunk": 1,
            "text": "Water utility spending rose sharply",
        }
        for name, missing in (
            ("packages", "no-such"),
            ("resources", "ds-01"),
            ("contents", "r-04-1:7"),
            ("contents", "r-04-1"),
        ):
            assert loaded_text.get_document(name, missing) is None
        with pytest.raises(SearchQueryError):
            loaded_text.get_document("datasets", "ds-16")

    def test_browse(self, loaded_text: SearchIndex) -> None:
        expected = {
            "packages": sorted(doc.id for doc in CORPUS),
            "resources": sorted(_ALL_RESOURCES),
            "contents": sorted(_ALL_CHUNKS),
        }
        for name, ids in expected.items():
            for offset, limit in [(0, 20), (0, 2), (2, 3), (len(ids) - 1, 5), (len(ids), 5)]:
                total, page = loaded_text.browse(name, offset=offset, limit=limit)
                assert total == len(ids)
                assert [doc["id"] for doc in page] == ids[offset : offset + limit]
                for doc in page:
                    assert doc == loaded_text.get_document(name, doc["id"])
        with pytest.raises(SearchQueryError):
            loaded_text.browse("datasets")

    def test_stats_per_index(self, loaded_text: SearchIndex) -> None:
        stats = loaded_text.stats()
        assert stats.documents == len(CORPUS)
        assert dict(stats.per_index) == {
            "packages": len(CORPUS),
            "resources": len(_ALL_RESOURCES),
            "contents": len(_ALL_CHUNKS),
        }

    # -- rebuilding ---------------------------------------------------------------------

    def _fill_new(self, target: SearchIndex) -> None:
        target.index(CORPUS[:3])
        target.index_resources({"ds-01": RESOURCES["ds-01"]})
        target.index_contents({"r-06-1": CONTENTS["r-06-1"]})

    def test_rebuilding_swaps_when_the_block_ends(self, loaded_text: SearchIndex) -> None:
        with loaded_text.rebuilding() as fresh:
            self._fill_new(fresh)
            if self.rebuilds_beside:
                assert fresh is not loaded_text
                # the current documents answer until the block ends
                assert loaded_text.count() == len(CORPUS)
                assert self.search(loaded_text, "budget").total == 2
                assert self.resources(loaded_text, "budget").total == 2
                assert self.contents(loaded_text, "schools").total == 2
                assert dict(loaded_text.stats().per_index) == {
                    "packages": len(CORPUS),
                    "resources": len(_ALL_RESOURCES),
                    "contents": len(_ALL_CHUNKS),
                }
        if not self.rebuilds_beside:
            assert self.resources(loaded_text, "gauges").total == 1
            return
        assert loaded_text.count() == 3
        assert sorted(i for i, _ in loaded_text.ids()) == ["ds-01", "ds-02", "ds-03"]
        assert self.search(loaded_text, "budget").total == 0
        assert _names(self.search(loaded_text, "quality")) == _n(1, 2, 3)
        assert _text_ids(self.resources(loaded_text, "*:*")) == {"r-01-1", "r-01-2"}
        assert _text_ids(self.contents(loaded_text, "*:*")) == {"r-06-1:0"}
        assert dict(loaded_text.stats().per_index) == {
            "packages": 3,
            "resources": 2,
            "contents": 1,
        }
        # the index keeps working as usual after the swap
        loaded_text.index(CORPUS[3:5])
        loaded_text.index_resources({"ds-04": RESOURCES["ds-04"]})
        assert self.search(loaded_text, "budget").total == 2
        assert self.resources(loaded_text, "budget").total == 2

    def test_rebuilding_with_bulk(self, loaded_text: SearchIndex) -> None:
        with loaded_text.rebuilding() as fresh, fresh.bulk() as bulk:
            self._fill_new(bulk)
        assert self.resources(loaded_text, "gauges").total == 1
        assert self.contents(loaded_text, "bridge").total == 1
        if self.rebuilds_beside:
            assert loaded_text.count() == 3
            assert self.contents(loaded_text, "schools").total == 0

    def test_failed_rebuild_leaves_the_index_unchanged(self, loaded_text: SearchIndex) -> None:
        if not self.rebuilds_beside:
            pytest.skip("this index rebuilds in place")
        with pytest.raises(RuntimeError), loaded_text.rebuilding() as fresh:
            self._fill_new(fresh)
            fresh.index_resources({"ds-99": [_res("r-99", "ds-99", "Intruder", "", "CSV")]})
            raise RuntimeError("the rebuild failed")
        assert loaded_text.count() == len(CORPUS)
        assert self.search(loaded_text, "budget").total == 2
        assert self.resources(loaded_text, "*:*").total == len(_ALL_RESOURCES)
        assert self.resources(loaded_text, "intruder").total == 0
        assert self.contents(loaded_text, "*:*").total == len(_ALL_CHUNKS)
        with loaded_text.rebuilding() as fresh:  # and it can be rebuilt afterwards
            self._fill_new(fresh)
        assert loaded_text.count() == 3

    # -- against the reference implementation -------------------------------------------

    def _compare(
        self, index: SearchIndex, docs: list[DatasetDocument], q: SearchQuery, *, ordered: bool
    ) -> None:
        oracle = MemorySearchIndex()
        oracle.index(docs)
        index.clear()
        index.index(docs)
        want = oracle.query(q)
        got = index.query(q)
        assert got.total == want.total
        assert dict(got.facets) == dict(want.facets)
        if ordered:
            assert got.ids == want.ids
        else:
            whole = SearchQuery(
                query=q.query,
                filters=q.filters,
                labels=q.labels,
                states=q.states,
                limit=len(docs) + 1,
            )
            assert set(index.query(whole).ids) == set(oracle.query(whole).ids)

    def test_matches_the_reference_on_random_queries(self, index: SearchIndex) -> None:
        @settings(
            max_examples=self.hypothesis_examples,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        @given(docs=search_corpora(), q=search_requests(scored=True))
        def check(docs: list[DatasetDocument], q: SearchQuery) -> None:
            self._compare(index, docs, q, ordered=False)

        check()

    def test_matches_the_reference_order(self, index: SearchIndex) -> None:
        @settings(
            max_examples=self.hypothesis_examples,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        @given(docs=search_corpora(), q=search_requests(scored=False))
        def check(docs: list[DatasetDocument], q: SearchQuery) -> None:
            self._compare(index, docs, q, ordered=True)

        check()

    # -- resources and contents against the reference implementation ----------------------

    def _compare_text(self, got: TextPage, want: TextPage, *, ordered: bool) -> None:
        assert got.total == want.total
        assert len(got.hits) == len(want.hits)
        if ordered:
            assert [(h.id, h.resource_id, h.package_id) for h in got.hits] == [
                (h.id, h.resource_id, h.package_id) for h in want.hits
            ]
            assert [dict(h.highlights) for h in got.hits] == [dict(h.highlights) for h in want.hits]

    def _compare_text_queries(self, index: SearchIndex, oracle: SearchIndex, q: TextQuery) -> None:
        ordered = isinstance(q.query, MatchAll)  # equal scores: ordered by id everywhere
        whole = attrs.evolve(q, offset=0, limit=100)
        for name in ("query_resources", "query_contents"):
            got, want = getattr(index, name)(q), getattr(oracle, name)(q)
            self._compare_text(got, want, ordered=ordered)
            got_all, want_all = getattr(index, name)(whole), getattr(oracle, name)(whole)
            assert _text_ids(got_all) == _text_ids(want_all)
            highlights = {h.id: dict(h.highlights) for h in want_all.hits}
            assert {h.id: dict(h.highlights) for h in got_all.hits} == highlights
            assert {(h.id, h.resource_id, h.package_id) for h in got_all.hits} == {
                (h.id, h.resource_id, h.package_id) for h in want_all.hits
            }

    def test_text_queries_match_the_reference(self, index: SearchIndex) -> None:
        @settings(
            max_examples=self.hypothesis_examples,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        @given(resources=resource_corpora(), contents=content_corpora(), q=text_queries())
        def check(
            resources: dict[str, list[ResourceDocument]],
            contents: dict[str, list[ContentDocument]],
            q: TextQuery,
        ) -> None:
            oracle = MemorySearchIndex()
            index.clear()
            for target in (oracle, index):
                target.index_resources(resources)
                target.index_contents(contents)
            self._compare_text_queries(index, oracle, q)

        check()

    def test_text_writes_match_the_reference(self, index: SearchIndex) -> None:
        @settings(
            max_examples=self.hypothesis_examples,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        @given(writes=st.lists(_WRITES, max_size=6), q=text_queries(), in_bulk=st.booleans())
        def check(writes: list[tuple[str, Any]], q: TextQuery, in_bulk: bool) -> None:
            oracle = MemorySearchIndex()
            index.clear()
            _apply(oracle, writes)
            if in_bulk:
                with index.bulk() as bulk:
                    _apply(bulk, writes)
            else:
                _apply(index, writes)
            for name in ("resources", "contents"):
                assert sorted(index.document_ids(name)) == sorted(oracle.document_ids(name))
                total, page = index.browse(name, limit=100)
                want_total, want_page = oracle.browse(name, limit=100)
                assert (total, [d["id"] for d in page]) == (
                    want_total,
                    [d["id"] for d in want_page],
                )
            per_index = dict(index.stats().per_index)
            assert per_index == {**dict(oracle.stats().per_index), "packages": 0}
            self._compare_text_queries(index, oracle, q)

        check()


def _fields(doc: DatasetDocument) -> dict[str, Any]:
    return attrs.asdict(doc, recurse=False)
