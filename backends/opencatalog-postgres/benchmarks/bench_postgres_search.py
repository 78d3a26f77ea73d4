"""Benchmark of the PostgreSQL search index: bulk indexing rate and query latency.

Usage (from the repository root, with opencatalog-postgres installed)::

    python backends/opencatalog-postgres/benchmarks/bench_postgres_search.py
    python backends/opencatalog-postgres/benchmarks/bench_postgres_search.py --datasets 10000
    python backends/opencatalog-postgres/benchmarks/bench_postgres_search.py \\
        --server postgresql://postgres@127.0.0.1:5432/postgres --datasets 10000 100000

For each size it creates a scratch database on the server (dropped afterwards unless
``--keep``), builds ``DatasetDocument``s from the repository's deterministic generator
(``benchmarks/generate.py``, seed 42, with the document builder of
``benchmarks/bench_search.py``: 5% private), indexes them in one ``bulk()`` block (chunks of
5,000) and times, single-threaded, top 20 with the total, as an anonymous visitor:

* word queries (1-2 words, all must match) with five facets (organization, groups, tags,
  res_format, license_id);
* the same word queries without facets, and sorted by name;
* quoted two-word phrases taken from the generated titles;
* match-all with the five facets (the ``/dataset`` landing page), with the page cache off,
  and repeated with the cache on;
* match-all without facets, newest first (an API listing).

Queries run with the page cache off unless stated. Prints a markdown table per size on stdout;
progress goes to stderr.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from typing import Any

from _common import (  # puts the repository root on sys.path, for ``benchmarks``
    DEFAULT_SERVER,
    database_name,
    frozen_gc,
    latency,
    progress,
    repeated,
    scratch_database,
)
from benchmarks.bench_search import FACETS, PUBLIC, document
from benchmarks.generate import Generator
from opencatalog.domain.search import (
    MatchAll,
    Phrase,
    SearchQuery,
    SortKey,
    parse_query,
)

from opencatalog_postgres import PostgresSearchIndex

log = logging.getLogger("bench_postgres_search")

CHUNK = 5_000


def phrases(docs: Sequence[Any], count: int) -> list[str]:
    """Two consecutive title words of evenly spread documents."""
    found = []
    step = max(1, len(docs) // count)
    for doc in docs[::step]:
        words = doc.title.split()
        if len(words) >= 2:
            found.append(f"{words[0]} {words[1]}")
        if len(found) == count:
            break
    return found


def run_size(server: str, size: int, query_count: int, keep: bool) -> list[str]:
    """Index ``size`` documents into a scratch database and time the queries; returns the
    report lines."""
    generator = Generator(seed=42)
    progress(f"generating {size:,} datasets ...")
    docs = [document(raw, i) for i, raw in enumerate(generator.datasets(size))]
    words = generator.queries(query_count)
    lines: list[str] = []
    with frozen_gc(), scratch_database(server, keep=keep) as url:
        index = PostgresSearchIndex.from_url(url, cache_size=0)
        progress(f"indexing into {database_name(url)} ...")
        start = time.perf_counter()
        with index.bulk():
            for offset in range(0, len(docs), CHUNK):
                index.index(docs[offset : offset + CHUNK])
                progress(f"  {min(offset + CHUNK, len(docs)):,} / {len(docs):,}")
        elapsed = time.perf_counter() - start
        rate = len(docs) / elapsed
        stats = index.stats()
        progress(f"indexed in {elapsed:.1f} s ({rate:,.0f} docs/s), {stats.size_bytes:,} bytes")

        parsed = [parse_query(w) for w in words]
        rows: list[tuple[str, float, float, float]] = []
        cases: list[tuple[str, list[SearchQuery]]] = [
            (
                "words + 5 facets",
                [SearchQuery(query=p, facets=FACETS, labels=PUBLIC) for p in parsed],
            ),
            ("words", [SearchQuery(query=p, labels=PUBLIC) for p in parsed]),
            (
                "words, sort by name",
                [SearchQuery(query=p, labels=PUBLIC, sort=[SortKey("name")]) for p in parsed],
            ),
            (
                "title phrases + 5 facets",
                [
                    SearchQuery(query=Phrase(None, text), facets=FACETS, labels=PUBLIC)
                    for text in phrases(docs, query_count)
                ],
            ),
        ]
        for name, queries in cases:
            progress(f"{name} ...")
            rows.append((name, *latency(index.query, queries)))
        landing = SearchQuery(query=MatchAll(), facets=FACETS, labels=PUBLIC)
        progress("match-all + 5 facets ...")
        median, p95, page = repeated(lambda: index.query(landing), 20)
        rows.append(("match-all + 5 facets", median, p95, float(page.total)))
        listing = SearchQuery(query=MatchAll(), labels=PUBLIC)
        median, p95, page = repeated(lambda: index.query(listing), 50)
        rows.append(("match-all, newest first, no facets", median, p95, float(page.total)))
        index.close()

        cached = PostgresSearchIndex.from_url(url)
        cached.query(landing)
        median, p95, page = repeated(lambda: cached.query(landing), 50)
        rows.append(("match-all + 5 facets, page cache on", median, p95, float(page.total)))
        cached.close()

        lines.append(f"### PostgreSQL search index, {size:,} datasets\n")
        lines.append(
            f"Bulk indexing: {elapsed:.1f} s, **{rate:,.0f} docs/s**; "
            f"tables and indexes {stats.size_bytes / 1e6:.1f} MB\n"
        )
        lines.append("| query | median ms | p95 ms | mean hits |")
        lines.append("|---|---:|---:|---:|")
        for name, median, p95, hits in rows:
            lines.append(f"| {name} | {median:.2f} | {p95:.2f} | {hits:,.0f} |")
        lines.append("")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--server", default=DEFAULT_SERVER, help="admin URL of the server")
    parser.add_argument("--datasets", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="keep the scratch databases")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    server = args.server.replace("postgresql+psycopg://", "postgresql://")
    report: list[str] = []
    for size in args.datasets:
        report.extend(run_size(server, size, args.queries, args.keep))
    sys.stdout.write("\n".join(report) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
