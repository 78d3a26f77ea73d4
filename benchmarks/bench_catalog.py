"""Catalog benchmark through the services: bulk load, single creates, get by name.

Measures what a user of the library gets (validation, authorization, activities, the outbox and
the search index included), on the embedded defaults or on PostgreSQL:

    python benchmarks/bench_catalog.py --datasets 10000                  # SQLite, no search
    python benchmarks/bench_catalog.py --datasets 100000 --search tantivy
    python benchmarks/bench_catalog.py --datasets 10000 --storage postgresql://postgres@127.0.0.1/bench

It prints a markdown table; the figures go to docs/performance.md. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import opencatalog as oc
from benchmarks.generate import Generator
from opencatalog.serialization import dataset_input_from_dict

FAST_HASH = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}


def _open(args: argparse.Namespace, folder: Path) -> oc.Catalog:
    search = "none" if args.search == "none" else f"{args.search}://{folder / 'index'}"
    if args.search == "memory":
        search = "memory://"
    storage = args.storage or f"sqlite:///{folder / 'catalog.db'}"
    return oc.open_catalog(storage=storage, search=search, password_hash_params=FAST_HASH)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=10_000)
    parser.add_argument("--storage", default=None, help="storage URL (default: SQLite, temp dir)")
    parser.add_argument("--search", default="none", choices=["none", "memory", "tantivy", "whoosh"])
    parser.add_argument("--creates", type=int, default=1000, help="single creates to time")
    parser.add_argument("--lookups", type=int, default=2000, help="get-by-name calls to time")
    args = parser.parse_args()

    gen = Generator(seed=42)
    folder = Path(tempfile.mkdtemp(prefix="oc-bench-"))
    cat = _open(args, folder)
    for org in gen.organizations():
        cat.organizations.create(oc.GroupInput(name=org["name"], title=org["title"]))
    for group in gen.groups():
        cat.groups.create(oc.GroupInput(name=group["name"], title=group["title"]))

    print(f"building {args.datasets} inputs...", file=sys.stderr)
    inputs = [dataset_input_from_dict(d) for d in gen.datasets(args.datasets + args.creates)]
    bulk, singles = inputs[: args.datasets], inputs[args.datasets :]
    gc.collect()
    gc.freeze()

    print("bulk load...", file=sys.stderr)
    t0 = time.perf_counter()
    result = cat.datasets.create_many(
        bulk, progress=lambda n: print(f"  {n}", file=sys.stderr) if n % 20_000 == 0 else None
    )
    bulk_s = time.perf_counter() - t0
    assert result.created == len(bulk), result.errors and list(result.errors.items())[:3]
    indexed_s = None
    if args.search != "none":
        cat.search.stats()  # drains the outbox: the index has caught up when this returns
        indexed_s = time.perf_counter() - t0

    print("single creates...", file=sys.stderr)
    times = []
    for item in singles:
        t = time.perf_counter()
        cat.datasets.create(item)
        times.append(time.perf_counter() - t)
    create_median = statistics.median(times)

    print("get by name...", file=sys.stderr)
    names = [d.name for d in random.Random(1).sample(bulk, min(args.lookups, len(bulk)))]
    for name in names:  # warm-up pass
        cat.datasets.get(name)
    lookups = []
    for name in names:
        t = time.perf_counter()
        cat.datasets.get(name)
        lookups.append(time.perf_counter() - t)
    lookups.sort()

    storage = cat.describe()["storage"]
    kind = storage.get("dialect", storage.get("backend"))
    print(f"\n| measure ({args.datasets:,} datasets, {kind}, search {args.search}) | value |")
    print("|---|---:|")
    print(f"| bulk load (create_many) | {len(bulk) / bulk_s:,.0f} datasets/s ({bulk_s:.1f} s) |")
    if indexed_s is not None:
        rate_i = len(bulk) / indexed_s
        print(f"| bulk load until searchable | {rate_i:,.0f} datasets/s ({indexed_s:.1f} s) |")
    rate, ms = 1 / create_median, create_median * 1e3
    print(f"| single create, sequential | {rate:,.0f}/s (median {ms:.2f} ms) |")
    print(f"| get by name, median | {statistics.median(lookups) * 1e6:,.0f} µs |")
    print(f"| get by name, p95 | {lookups[int(len(lookups) * 0.95)] * 1e6:,.0f} µs |")
    cat.close()


if __name__ == "__main__":
    main()
