"""Micro-benchmark of the SQL storage adapter through its repositories (no services).

Measures, on SQLite (a temporary file) and PostgreSQL (a temporary database):

* ``add_many``: datasets/s for one bulk unit of work (domain objects built beforehand; the
  time covers mapping to rows, the inserts into every table and the commit);
* single add + commit: one write unit of work per dataset (what a create costs in storage);
* ``get_by_name``: median and p95 µs, one read unit of work per lookup (as per request) and
  many lookups in one unit of work; the JSON decode and domain construction alone too.

Datasets come from ``benchmarks/generate.py`` (``Generator(seed=42)``), mapped to domain
objects here::

    python benchmarks/bench_storage_sql.py --datasets 10000
    python benchmarks/bench_storage_sql.py --datasets 100000 --backends sqlite
    python benchmarks/bench_storage_sql.py --postgres-url postgresql://postgres@127.0.0.1/test

It prints a markdown table; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from opencatalog.adapters.sqlalchemy import SqlAlchemyStorage
from opencatalog.adapters.sqlalchemy.mapping import dataset_from_doc, dataset_to_row
from opencatalog.domain.model import Dataset, Resource, Tag

_NAMESPACE = uuid.UUID("6f70656e-6361-7461-6c6f-672d62656e63")
_T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _ref_id(kind: str, name: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{kind}:{name}"))


def to_dataset(raw: dict[str, Any], index: int) -> Dataset:
    """A domain dataset from a generator dict (organization and group names become ids)."""
    when = _T0 + timedelta(seconds=index)
    dataset_id = raw["id"]
    resources = tuple(
        Resource(
            id=r["id"],
            package_id=dataset_id,
            url=r["url"],
            name=r.get("name"),
            description=r.get("description"),
            format=r.get("format"),
            position=i,
            created=when,
            metadata_modified=when,
        )
        for i, r in enumerate(raw.get("resources", ()))
    )
    return Dataset(
        id=dataset_id,
        name=raw["name"],
        title=raw.get("title"),
        notes=raw.get("notes"),
        url=raw.get("url"),
        version=raw.get("version"),
        author=raw.get("author"),
        author_email=raw.get("author_email"),
        maintainer=raw.get("maintainer"),
        maintainer_email=raw.get("maintainer_email"),
        license_id=raw.get("license_id"),
        owner_org=_ref_id("org", raw["owner_org"]) if raw.get("owner_org") else None,
        tags=tuple(Tag(name=t["name"]) for t in raw.get("tags", ())),
        extras={e["key"]: e["value"] for e in raw.get("extras", ())},
        groups=tuple(_ref_id("group", g["name"]) for g in raw.get("groups", ())),
        resources=resources,
        metadata_created=when,
        metadata_modified=when,
    )


def synthetic_datasets(n: int) -> Iterator[dict[str, Any]]:
    """Simple generator-like dicts, used when benchmarks/generate.py is not available."""
    rng = random.Random(42)
    for i in range(n):
        yield {
            "id": str(uuid.UUID(int=rng.getrandbits(128))),
            "name": f"dataset-{i}",
            "title": f"Dataset {i}",
            "notes": " ".join(f"word{rng.randint(0, 5000)}" for _ in range(80)),
            "owner_org": f"org-{rng.randint(0, 199)}",
            "tags": [{"name": f"tag{rng.randint(0, 1999)}"} for _ in range(5)],
            "groups": [{"name": f"group-{rng.randint(0, 49)}"}],
            "extras": [{"key": "language", "value": "en"}],
            "resources": [
                {
                    "id": str(uuid.UUID(int=rng.getrandbits(128))),
                    "url": f"https://example.org/{i}/{j}.csv",
                    "name": f"File {j}",
                    "format": "CSV",
                    "description": "A file " * 15,
                }
                for j in range(3)
            ],
        }


def load_raw(n: int) -> list[dict[str, Any]]:
    try:
        from benchmarks.generate import Generator
    except ImportError:
        print("benchmarks/generate.py not found: synthetic datasets", file=sys.stderr)
        return list(synthetic_datasets(n))
    return list(Generator(seed=42).datasets(n))


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _timed(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


@contextmanager
def sqlite_url(synchronous: str) -> Iterator[tuple[str, dict[str, Any]]]:
    with tempfile.TemporaryDirectory(prefix="oc-bench-sql-") as folder:
        yield f"sqlite:///{folder}/catalog.db", {"synchronous": synchronous}


@contextmanager
def postgres_url(server_url: str) -> Iterator[tuple[str, dict[str, Any]]]:
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"oc_bench_{secrets.token_hex(4)}"
    admin = make_url(server_url).set(drivername="postgresql")
    dsn = admin.render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False), {}
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(
    label: str,
    url: str,
    options: dict[str, Any],
    args: argparse.Namespace,
    bulk: list[Dataset],
    singles: list[Dataset],
) -> list[tuple[str, str]]:
    results: list[tuple[str, str]] = []
    storage = SqlAlchemyStorage.from_url(url, **options)
    try:
        storage.initialize()
        print(f"[{label}] add_many of {len(bulk):,} datasets...", file=sys.stderr)
        gc.collect()
        gc.freeze()
        start = time.perf_counter()
        with storage.unit_of_work(write=True) as uow:
            uow.datasets.add_many(bulk)
            uow.commit()
        elapsed = time.perf_counter() - start
        gc.unfreeze()
        results.append((f"{label}: add_many, datasets/s", f"{len(bulk) / elapsed:,.0f}"))

        print(f"[{label}] {len(singles):,} single add + commit...", file=sys.stderr)
        times = []
        for ds in singles:
            start = time.perf_counter()
            with storage.unit_of_work(write=True) as uow:
                uow.datasets.add(ds)
                uow.commit()
            times.append(time.perf_counter() - start)
        results.append((f"{label}: single add + commit, /s", f"{len(times) / sum(times):,.0f}"))
        results.append(
            (
                f"{label}: single add + commit, p50 / p95 µs",
                f"{statistics.median(times) * 1e6:,.0f} / {_pct(times, 0.95) * 1e6:,.0f}",
            )
        )

        print(f"[{label}] get_by_name x {args.lookups:,}...", file=sys.stderr)
        rng = random.Random(7)
        names = [rng.choice(bulk).name for _ in range(args.lookups)]
        for _pass in ("warm-up", "measured"):
            per_uow = []
            for name in names:
                start = time.perf_counter()
                with storage.unit_of_work() as uow:
                    found = uow.datasets.get_by_name(name)
                per_uow.append(time.perf_counter() - start)
                assert found is not None
        results.append(
            (
                f"{label}: get_by_name, new unit of work each, p50 / p95 µs",
                f"{statistics.median(per_uow) * 1e6:,.0f} / {_pct(per_uow, 0.95) * 1e6:,.0f}",
            )
        )
        in_one = []
        with storage.unit_of_work() as uow:
            for name in names:
                start = time.perf_counter()
                uow.datasets.get_by_name(name)
                in_one.append(time.perf_counter() - start)
        results.append(
            (
                f"{label}: get_by_name, one unit of work, p50 / p95 µs",
                f"{statistics.median(in_one) * 1e6:,.0f} / {_pct(in_one, 0.95) * 1e6:,.0f}",
            )
        )
        if label.startswith("sqlite"):
            sample = bulk[len(bulk) // 2]
            doc = dataset_to_row(sample)["doc"]
            decode = _timed(lambda: dataset_from_doc(doc), 5000)
            results.append(
                (
                    "decode one document to domain objects (JSON + attrs), p50 µs "
                    f"({len(sample.resources)} resources, {len(sample.tags)} tags)",
                    f"{statistics.median(decode) * 1e6:,.1f}",
                )
            )
            encode = _timed(lambda: dataset_to_row(sample), 5000)
            results.append(
                ("encode one dataset to its row, p50 µs", f"{statistics.median(encode) * 1e6:,.1f}")
            )
    finally:
        storage.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=10_000)
    parser.add_argument("--singles", type=int, default=500, help="single add+commit to time")
    parser.add_argument("--lookups", type=int, default=2000, help="get_by_name calls to time")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--synchronous", default="full", choices=["full", "normal"])
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "OPENCATALOG_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
        help="server to create a temporary database on",
    )
    args = parser.parse_args()

    print(f"generating {args.datasets + args.singles:,} datasets...", file=sys.stderr)
    raw = load_raw(args.datasets + args.singles)
    datasets = [to_dataset(d, i) for i, d in enumerate(raw)]
    bulk, singles = datasets[: args.datasets], datasets[args.datasets :]
    n_res = sum(len(d.resources) for d in bulk)
    n_tags = sum(len(d.tags) for d in bulk)
    n_groups = sum(len(d.groups) for d in bulk)

    results: list[tuple[str, str]] = []
    for backend in args.backends.split(","):
        if backend == "sqlite":
            with sqlite_url(args.synchronous) as (url, options):
                label = f"sqlite (synchronous={args.synchronous})"
                results += run(label, url, options, args, bulk, singles)
        elif backend == "postgresql":
            try:
                with postgres_url(args.postgres_url) as (url, options):
                    results += run("postgresql", url, options, args, bulk, singles)
            except Exception as exc:  # no server: report and go on
                print(f"PostgreSQL skipped: {exc}", file=sys.stderr)
        else:
            parser.error(f"unknown backend {backend!r}")

    print(
        f"\n| measure ({len(bulk):,} datasets: {n_res:,} resources, {n_tags:,} tag links, "
        f"{n_groups:,} group links) | value |"
    )
    print("|---|---:|")
    for name, value in results:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
