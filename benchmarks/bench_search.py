"""Search index benchmark: bulk indexing rate and query latency per adapter.

Usage::

    python benchmarks/bench_search.py --adapter tantivy --datasets 100000
    python benchmarks/bench_search.py --adapter whoosh --datasets 10000 --path /tmp/ix

Builds ``DatasetDocument``s from the deterministic generator in ``benchmarks/generate.py``
(seed 42; 5% of the datasets private), indexes them in one ``bulk()`` block, then times
(median and p95, single-threaded, top 20 with the total):

* word queries (1-2 words, all must match) with five facets (organization, groups, tags,
  res_format, license_id), as an anonymous visitor;
* word queries without facets;
* the same word queries sorted by name;
* match-all with the five facets (the ``/dataset`` landing page): computed (the index opened
  with its page cache off where it has one: ``--repeat`` runs), right after a commit each time
  and repeated with the cache on (adapters may cache faceted pages until the next commit);
* unless ``--no-text``: the resources index (every generated resource) and the contents index
  (``--chunks`` chunks of about 600 words each), their bulk indexing rate and word queries on
  each (top 20 with the total).

Prints a markdown table on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from benchmarks.generate import Generator
from opencatalog.domain.search import (
    ContentDocument,
    DatasetDocument,
    FacetRequest,
    MatchAll,
    ResourceDocument,
    SearchQuery,
    SortKey,
    TextQuery,
    parse_query,
)
from opencatalog.ports.search import SearchIndex

FACETS = tuple(
    FacetRequest(name) for name in ("organization", "groups", "tags", "res_format", "license_id")
)
PUBLIC = frozenset({"public"})
_BASE = datetime(2024, 1, 1, tzinfo=UTC)


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def document(raw: dict[str, Any], position: int) -> DatasetDocument:
    """The indexed form of one generated dataset dict."""
    private = position % 20 == 7
    resources = raw.get("resources", [])
    org = raw.get("owner_org")
    return DatasetDocument(
        id=raw["id"],
        name=raw["name"],
        title=raw.get("title") or "",
        notes=raw.get("notes") or "",
        tags=[t["name"] for t in raw.get("tags", [])],
        groups=[g["name"] for g in raw.get("groups", [])],
        organization=org,
        owner_org=f"id-{org}" if org else None,
        res_format=[r["format"] for r in resources if r.get("format")],
        res_name=[r["name"] for r in resources if r.get("name")],
        res_description=[r["description"] for r in resources if r.get("description")],
        res_url=[r["url"] for r in resources if r.get("url")],
        license_id=raw.get("license_id"),
        author=raw.get("author"),
        maintainer=raw.get("maintainer"),
        extras={e["key"]: e["value"] for e in raw.get("extras", [])},
        private=private,
        metadata_created=_BASE + timedelta(seconds=position),
        metadata_modified=_BASE + timedelta(seconds=position, microseconds=position % 997),
        labels=[f"member-id-{org}"] if private else ["public"],
        num_resources=len(resources),
        num_tags=len(raw.get("tags", [])),
    )


def resource_documents(raw: dict[str, Any]) -> list[ResourceDocument]:
    """The resources-index documents of one generated dataset dict."""
    return [
        ResourceDocument(
            id=r["id"],
            package_id=raw["id"],
            name=r.get("name") or "",
            description=r.get("description") or "",
            format=r.get("format") or "",
            url=r.get("url") or "",
            position=position,
        )
        for position, r in enumerate(raw.get("resources", []))
    ]


def content_chunks(
    generator: Generator, resources: list[ResourceDocument], chunks: int
) -> dict[str, list[ContentDocument]]:
    """About 600 words of extracted text for each of the first ``chunks`` resources (one
    chunk each), drawn from the generator's vocabulary."""
    rng = random.Random(7)
    out: dict[str, list[ContentDocument]] = {}
    for res in resources[:chunks]:
        words = generator._zipf_words(rng, 600)
        lines = [" ".join(words[i : i + 12]) for i in range(0, len(words), 12)]
        out[res.id] = [
            ContentDocument(
                resource_id=res.id, package_id=res.package_id, chunk=0, text="\n".join(lines)
            )
        ]
    return out


def open_index(adapter: str, path: str | None, **options: Any) -> SearchIndex:
    if adapter == "memory":
        from opencatalog.adapters.memory_search import MemorySearchIndex

        return MemorySearchIndex()
    if adapter == "tantivy":
        from opencatalog.adapters.tantivy_search import TantivySearchIndex

        return TantivySearchIndex(path, **options)
    if adapter == "whoosh":
        from opencatalog.adapters.whoosh_search import WhooshSearchIndex

        return WhooshSearchIndex(path)
    raise SystemExit(f"unknown adapter {adapter!r}")


def timed(run: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """Median and p95 in milliseconds over ``repeat`` calls, and the last result."""
    samples = []
    result = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    p95 = samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
    return statistics.median(samples), p95, result


def latency(index: SearchIndex, queries: list[SearchQuery]) -> tuple[float, float, float]:
    """Median and p95 latency over ``queries`` (after one warm-up pass over the first 20),
    and the mean total."""
    for q in queries[:20]:
        index.query(q)
    samples = []
    totals = []
    for q in queries:
        start = time.perf_counter()
        page = index.query(q)
        samples.append((time.perf_counter() - start) * 1000)
        totals.append(page.total)
    samples.sort()
    p95 = samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
    return statistics.median(samples), p95, statistics.fmean(totals)


def text_latency(query: Callable[[TextQuery], Any], queries: list[TextQuery]) -> Row:
    """Median and p95 latency of resources/contents queries, and the mean total."""
    for q in queries[:20]:
        query(q)
    samples = []
    totals = []
    for q in queries:
        start = time.perf_counter()
        page = query(q)
        samples.append((time.perf_counter() - start) * 1000)
        totals.append(page.total)
    samples.sort()
    p95 = samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
    return statistics.median(samples), p95, statistics.fmean(totals)


Row = tuple[float, float, float]


def bulk_rate(
    index: SearchIndex,
    what: str,
    write: Callable[[SearchIndex, int, int], None],
    size: int,
    chunk: int,
) -> float:
    """Documents per second for ``write(bulk, start, stop)`` over ``size`` items in one
    ``bulk()`` block."""
    progress(f"indexing {what} ...")
    start = time.perf_counter()
    with index.bulk() as bulk:
        for offset in range(0, size, chunk):
            write(bulk, offset, min(size, offset + chunk))
            progress(f"  {what}: {min(offset + chunk, size):,} / {size:,}")
    elapsed = time.perf_counter() - start
    return size / elapsed if elapsed else float("inf")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", choices=("tantivy", "whoosh", "memory"), default="tantivy")
    parser.add_argument("--datasets", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=100, help="landing page runs")
    parser.add_argument("--chunks", type=int, default=20_000, help="contents chunks")
    parser.add_argument("--no-text", action="store_true", help="skip resources and contents")
    parser.add_argument("--path", help="index folder (default: a temporary folder)")
    parser.add_argument("--memory", action="store_true", help="keep the index in RAM")
    args = parser.parse_args(argv)

    progress(f"generating {args.datasets:,} datasets ...")
    generator = Generator(seed=42)
    raws = list(generator.datasets(args.datasets))
    docs = [document(raw, i) for i, raw in enumerate(raws)]
    by_package = {raw["id"]: resource_documents(raw) for raw in raws}
    del raws
    words = generator.queries(args.queries)
    gc.collect()
    gc.freeze()

    rows: list[tuple[str, float, float, float]] = []
    rates: list[tuple[str, int, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = None if args.memory or args.adapter == "memory" else (args.path or tmp)
        uncached = {"cache_size": 0} if args.adapter == "tantivy" else {}
        index = open_index(args.adapter, path, **uncached)
        progress(f"indexing into {args.adapter} ({path or 'RAM'}) ...")

        def write_packages(bulk: SearchIndex, start: int, stop: int) -> None:
            bulk.index(docs[start:stop])

        rate = bulk_rate(index, "datasets", write_packages, len(docs), 5_000)
        rates.append(("datasets", len(docs), rate))
        progress(f"indexed at {rate:,.0f} docs/s")

        parsed = [parse_query(w) for w in words]
        progress("word queries + 5 facets ...")
        rows.append(
            (
                "words + 5 facets",
                *latency(
                    index, [SearchQuery(query=p, facets=FACETS, labels=PUBLIC) for p in parsed]
                ),
            )
        )
        progress("word queries ...")
        rows.append(
            ("words", *latency(index, [SearchQuery(query=p, labels=PUBLIC) for p in parsed]))
        )
        progress("word queries sorted by name ...")
        rows.append(
            (
                "words, sort by name",
                *latency(
                    index,
                    [SearchQuery(query=p, labels=PUBLIC, sort=[SortKey("name")]) for p in parsed],
                ),
            )
        )
        progress("match-all + 5 facets ...")
        landing = SearchQuery(query=MatchAll(), facets=FACETS, labels=PUBLIC)
        median, p95, page = timed(lambda: index.query(landing), args.repeat)
        rows.append(("match-all + 5 facets, computed", median, p95, float(page.total)))

        def after_commit() -> float:
            index.delete([])  # a commit: drops any cached page
            start = time.perf_counter()
            index.query(landing)
            return (time.perf_counter() - start) * 1000

        samples = sorted(after_commit() for _ in range(20))
        p95 = samples[round(0.95 * (len(samples) - 1))]
        rows.append(
            ("match-all + 5 facets, after a commit", statistics.median(samples), p95, page.total)
        )

        if not args.no_text:
            resources = [r for docs_of in by_package.values() for r in docs_of]
            package_ids = list(by_package)

            def write_resources(bulk: SearchIndex, start: int, stop: int) -> None:
                bulk.index_resources({i: by_package[i] for i in package_ids[start:stop]})

            rate = bulk_rate(index, "resources", write_resources, len(package_ids), 10_000)
            rates.append(("resources", len(resources), rate * len(resources) / len(package_ids)))
            contents = content_chunks(generator, resources, args.chunks)
            rids = list(contents)

            def write_contents(bulk: SearchIndex, start: int, stop: int) -> None:
                bulk.index_contents({i: contents[i] for i in rids[start:stop]})

            rate = bulk_rate(index, "contents", write_contents, len(rids), 2_000)
            rates.append(("contents (600 words)", len(rids), rate))
            text_queries = [TextQuery(query=p) for p in parsed]
            progress("resources and contents queries ...")
            rows.append(("resources: words", *text_latency(index.query_resources, text_queries)))
            rows.append(("contents: words", *text_latency(index.query_contents, text_queries)))
            lit = [TextQuery(query=p, highlight=True) for p in parsed]
            rows.append(("contents: words, highlighted", *text_latency(index.query_contents, lit)))

        stats = index.stats()
        index.close()
        if args.adapter == "tantivy":
            progress("match-all + 5 facets with the page cache ...")
            cached = open_index(args.adapter, path)
            median, p95, page = timed(lambda: cached.query(landing), 20)
            rows.append(("match-all + 5 facets, cached", median, p95, float(page.total)))
            cached.close()

    print(f"\n### {args.adapter}, {args.datasets:,} datasets\n")
    print(f"Index size {stats.size_bytes / 1e6:.1f} MB ({dict(stats.per_index)})\n")
    print("| bulk indexing | documents | docs/s |")
    print("|---|---:|---:|")
    for name, count, rate in rates:
        print(f"| {name} | {count:,} | **{rate:,.0f}** |")
    print()
    print("| query | median ms | p95 ms | mean hits |")
    print("|---|---:|---:|---:|")
    for name, median, p95, hits in rows:
        print(f"| {name} | {median:.2f} | {p95:.2f} | {hits:,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
