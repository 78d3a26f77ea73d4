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
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import attrs
import pytest
from hypothesis import HealthCheck, given, settings

from opencatalog.adapters.memory_search import MemorySearchIndex
from opencatalog.domain.search import (
    DatasetDocument,
    FacetRequest,
    Query,
    SearchPage,
    SearchQuery,
    SortKey,
    Term,
    parse_filter,
    parse_query,
)
from opencatalog.errors import SearchQueryError
from opencatalog.ports.search import SearchIndex
from opencatalog.testing.strategies import search_corpora, search_requests

__all__ = ["CORPUS", "PUBLIC", "SearchIndexTests", "corpus"]

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


def _fields(doc: DatasetDocument) -> dict[str, Any]:
    return attrs.asdict(doc, recurse=False)
