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
* match-all with the five facets (the ``/dataset`` landing page), once right after a commit
  each time (nothing cached) and repeated (adapters may cache faceted pages until the next
  commit).

Prints a markdown table on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import gc
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
    DatasetDocument,
    FacetRequest,
    MatchAll,
    SearchQuery,
    SortKey,
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


def open_index(adapter: str, path: str | None) -> SearchIndex:
    if adapter == "memory":
        from opencatalog.adapters.memory_search import MemorySearchIndex

        return MemorySearchIndex()
    if adapter == "tantivy":
        from opencatalog.adapters.tantivy_search import TantivySearchIndex

        return TantivySearchIndex(path)
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", choices=("tantivy", "whoosh", "memory"), default="tantivy")
    parser.add_argument("--datasets", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--path", help="index folder (default: a temporary folder)")
    parser.add_argument("--memory", action="store_true", help="keep the index in RAM")
    args = parser.parse_args(argv)

    progress(f"generating {args.datasets:,} datasets ...")
    generator = Generator(seed=42)
    docs = [document(raw, i) for i, raw in enumerate(generator.datasets(args.datasets))]
    words = generator.queries(args.queries)
    gc.collect()
    gc.freeze()

    with tempfile.TemporaryDirectory() as tmp:
        path = None if args.memory or args.adapter == "memory" else (args.path or tmp)
        index = open_index(args.adapter, path)
        progress(f"indexing into {args.adapter} ({path or 'RAM'}) ...")
        start = time.perf_counter()
        with index.bulk():
            chunk = 5_000
            for offset in range(0, len(docs), chunk):
                index.index(docs[offset : offset + chunk])
                progress(f"  {min(offset + chunk, len(docs)):,} / {len(docs):,}")
        elapsed = time.perf_counter() - start
        rate = len(docs) / elapsed if elapsed else float("inf")
        stats = index.stats()
        progress(f"indexed in {elapsed:.1f} s ({rate:,.0f} docs/s), {stats.size_bytes:,} bytes")

        parsed = [parse_query(w) for w in words]
        rows = []
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

        def after_commit() -> Any:
            index.delete([])  # a commit: drops any cached page
            start = time.perf_counter()
            page = index.query(landing)
            return (time.perf_counter() - start) * 1000, page

        samples = sorted(after_commit()[0] for _ in range(20))
        page = index.query(landing)
        p95 = samples[round(0.95 * (len(samples) - 1))]
        rows.append(
            ("match-all + 5 facets, uncached", statistics.median(samples), p95, float(page.total))
        )
        median, p95, page = timed(lambda: index.query(landing), 20)
        rows.append(("match-all + 5 facets, repeated", median, p95, float(page.total)))
        index.close()

    print(f"\n### {args.adapter}, {args.datasets:,} datasets\n")
    print(
        f"Bulk indexing: {elapsed:.1f} s, **{rate:,.0f} docs/s**; "
        f"index size {stats.size_bytes / 1e6:.1f} MB\n"
    )
    print("| query | median ms | p95 ms | mean hits |")
    print("|---|---:|---:|---:|")
    for name, median, p95, hits in rows:
        print(f"| {name} | {median:.2f} | {p95:.2f} | {hits:,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
