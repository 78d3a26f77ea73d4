"""Benchmark of the PostgreSQL resources and contents indices: indexing rate, query latency and
a rebuild with its swap.

Usage (from the repository root, with opencatalog-postgres installed)::

    python backends/opencatalog-postgres/benchmarks/bench_postgres_text.py
    python backends/opencatalog-postgres/benchmarks/bench_postgres_text.py \\
        --datasets 10000 --files 5000 --file-chars 20000

It creates a scratch database on the server (dropped afterwards unless ``--keep``). The
resources documents are those of the repository's deterministic generator
(``benchmarks/generate.py``, seed 42: 1-5 resources per dataset, names of 2-4 words,
descriptions of 15). ``--files`` of those resources get extracted text, cut into chunks of
``CONTENT_CHUNK_CHARS`` with the domain's ``content_documents``: half of them CSV-like rows
(words and numbers), half prose, in the generator's Zipf vocabulary; lengths are log-normal
around ``--file-chars`` (median), capped at 1,000,000 characters. Everything is indexed in
one ``bulk()`` block, then, single-threaded, top 20 with the total of:

* words (1-2 words of the generator's query ranks, all must match), on resources and contents;
* two-word phrases taken from the texts, on contents;
* prefixes (the first three letters of a query word, ``wor*``), on contents;
* words restricted to 20 datasets (the files of a search result), on contents;
* words again, with highlights (fragments made in Python by ``domain.search.highlight`` from
  the whole text of every chunk on the page).

Last, ``rebuilding()`` refills every table beside the live ones (timed), and the swap (the
block's exit: statistics, then the renames) is timed on its own. Prints a markdown report on
stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import logging
import math
import random
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from _common import (  # puts the repository root on sys.path, for ``benchmarks``
    DEFAULT_SERVER,
    database_name,
    frozen_gc,
    latency,
    progress,
    scratch_database,
)
from benchmarks.generate import Generator, zipf_cum_weights
from opencatalog.domain.search import (
    ContentDocument,
    Phrase,
    Prefix,
    ResourceDocument,
    TextQuery,
    content_documents,
    parse_query,
    tokenize,
)

from opencatalog_postgres import PostgresSearchIndex

log = logging.getLogger("bench_postgres_text")

BATCH = 500
"""Datasets per ``index_resources``/``index_contents`` call."""

MAX_FILE_CHARS = 1_000_000


class Corpus:
    """The resources documents by dataset and the contents documents by resource."""

    def __init__(self, datasets: int, files: int, file_chars: int, seed: int = 42) -> None:
        generator = Generator(seed=seed)
        self.generator = generator
        self.resources: dict[str, list[ResourceDocument]] = {}
        for raw in generator.datasets(datasets):
            self.resources[raw["id"]] = [
                ResourceDocument(
                    id=r["id"],
                    package_id=raw["id"],
                    name=r["name"],
                    description=r["description"],
                    format=r["format"],
                    url=r["url"],
                    position=position,
                )
                for position, r in enumerate(raw["resources"])
            ]
        everything = [doc for docs in self.resources.values() for doc in docs]
        rng = random.Random(f"bench_postgres_text:{seed}")
        chosen = rng.sample(everything, min(files, len(everything)))
        cum_weights = zipf_cum_weights(len(generator.words), 1.0, 2.7)
        sigma = 1.0
        self.contents: dict[str, list[ContentDocument]] = {}
        self.texts: list[str] = []
        for n, doc in enumerate(chosen):
            size = min(MAX_FILE_CHARS, int(file_chars * math.exp(rng.gauss(0, sigma))))
            text = _text(rng, generator.words, cum_weights, size, csv=n % 2 == 0)
            self.contents[doc.id] = content_documents(doc.id, doc.package_id, text)
            if len(self.texts) < 400:
                self.texts.append(text[:2000])
        self.chunks = sum(len(chunks) for chunks in self.contents.values())
        self.chars = sum(len(c.text) for chunks in self.contents.values() for c in chunks)

    def load(self, index: Any) -> None:
        """Everything, in batches of ``BATCH`` datasets (one transaction when ``index`` is in
        ``bulk()``)."""
        packages = list(self.resources)
        by_package: dict[str, list[str]] = {}
        for rid, chunks in self.contents.items():
            by_package.setdefault(chunks[0].package_id, []).append(rid)
        for start in range(0, len(packages), BATCH):
            batch = packages[start : start + BATCH]
            index.index_resources({p: self.resources[p] for p in batch})
            rids = [rid for p in batch for rid in by_package.get(p, ())]
            if rids:
                index.index_contents({rid: self.contents[rid] for rid in rids})
            if (start // BATCH) % 10 == 9:
                progress(f"  {start + len(batch):,} / {len(packages):,} datasets")


def _text(
    rng: random.Random, words: list[str], cum_weights: list[float], size: int, *, csv: bool
) -> str:
    parts: list[str] = []
    length = 0
    while length < size:
        if csv:
            cells = rng.choices(words, cum_weights=cum_weights, k=3)
            line = f"{cells[0]},{cells[1]} {cells[2]},{rng.randint(0, 99999)},{rng.random():.3f}\n"
        else:
            sentence = rng.choices(words, cum_weights=cum_weights, k=rng.randint(6, 18))
            line = " ".join([sentence[0].capitalize(), *sentence[1:]]) + ". "
        parts.append(line)
        length += len(line)
    return "".join(parts)[:size]


def phrases(texts: Sequence[str], count: int, seed: int = 7) -> list[str]:
    """Two consecutive words of the sampled texts."""
    rng = random.Random(seed)
    found: list[str] = []
    for text in texts:
        tokens = [t for t in tokenize(text) if not t.isdigit()]
        if len(tokens) > 2:
            i = rng.randrange(len(tokens) - 1)
            found.append(f"{tokens[i]} {tokens[i + 1]}")
        if len(found) == count:
            break
    return found


def run(server: str, args: argparse.Namespace) -> list[str]:
    progress(f"generating {args.datasets:,} datasets and {args.files:,} files ...")
    corpus = Corpus(args.datasets, args.files, args.file_chars)
    resources = sum(len(docs) for docs in corpus.resources.values())
    progress(f"{resources:,} resources, {corpus.chunks:,} chunks, {corpus.chars / 1e6:.0f} M chars")
    words = corpus.generator.queries(args.queries)
    lines: list[str] = []
    with frozen_gc(), scratch_database(server, keep=args.keep) as url:
        index = PostgresSearchIndex.from_url(url, cache_size=0)
        progress(f"indexing into {database_name(url)} ...")
        start = time.perf_counter()
        with index.bulk() as bulk:
            corpus.load(bulk)
        elapsed = time.perf_counter() - start
        stats = index.stats()
        progress(f"indexed in {elapsed:.1f} s, {stats.size_bytes / 1e6:,.0f} MB")

        parsed = [parse_query(w) for w in words]
        packages = list(corpus.resources)
        rng = random.Random(11)
        within = [frozenset(rng.sample(packages, 20)) for _ in parsed]

        def text(**options: Any) -> list[TextQuery]:
            return [TextQuery(query=p, **options) for p in parsed]

        cases: list[tuple[str, Callable[[TextQuery], Any], list[TextQuery]]] = [
            ("resources: words", index.query_resources, text()),
            ("contents: words", index.query_contents, text()),
            (
                "contents: two-word phrases",
                index.query_contents,
                [TextQuery(query=Phrase(None, p)) for p in phrases(corpus.texts, args.queries)],
            ),
            (
                "contents: prefixes (3 letters)",
                index.query_contents,
                [TextQuery(query=Prefix(None, w.split()[0][:3])) for w in words],
            ),
            (
                "contents: words in 20 datasets",
                index.query_contents,
                [
                    TextQuery(query=p, package_ids=ids)
                    for p, ids in zip(parsed, within, strict=True)
                ],
            ),
            ("resources: words, highlights", index.query_resources, text(highlight=True)),
            ("contents: words, highlights", index.query_contents, text(highlight=True)),
        ]
        rows = []
        for name, call, queries in cases:
            progress(f"{name} ...")
            rows.append((name, *latency(call, queries)))

        progress("rebuilding ...")
        start = time.perf_counter()
        with index.rebuilding() as fresh:
            with fresh.bulk() as bulk:
                corpus.load(bulk)
            filled = time.perf_counter()
        swapped = time.perf_counter()
        rebuilt = index.stats()
        index.close()

        lines.append(f"### PostgreSQL resources and contents indices, {args.datasets:,} datasets\n")
        lines.append(
            f"{resources:,} resources; {args.files:,} files of extracted text (median "
            f"{args.file_chars:,} characters): {corpus.chunks:,} chunks, "
            f"{corpus.chars / 1e6:,.0f} M characters.\n"
        )
        lines.append(
            f"Bulk indexing: {elapsed:.1f} s ({corpus.chars / 1e6 / elapsed:.1f} M chars/s); "
            f"tables and indexes {stats.size_bytes / 1e6:,.0f} MB. Rebuild beside the live "
            f"tables: filled in {filled - start:.1f} s, swapped in {swapped - filled:.2f} s "
            f"(statistics and renames); per index after it: {dict(rebuilt.per_index)}.\n"
        )
        lines.append("| query (top 20 and the total) | median ms | p95 ms | mean hits |")
        lines.append("|---|---:|---:|---:|")
        for name, median, p95, hits in rows:
            lines.append(f"| {name} | {median:.2f} | {p95:.2f} | {hits:,.0f} |")
        lines.append("")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--server", default=DEFAULT_SERVER, help="admin URL of the server")
    parser.add_argument("--datasets", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=5_000, help="resources with text")
    parser.add_argument("--file-chars", type=int, default=20_000, help="median text length")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    server = args.server.replace("postgresql+psycopg://", "postgresql://")
    sys.stdout.write("\n".join(run(server, args)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
