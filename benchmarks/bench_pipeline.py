"""Benchmark the whole resource pipeline on the embedded default (a folder catalog: SQLite,
tantivy, files), and what the pipeline's triggers cost dataset writes.

Measures:

* **pipeline throughput**: ``--files`` datasets, each with one external URL to a 1 MB CSV
  served by a local HTTP server, are created (each create enqueues a job in its
  transaction); then the jobs run (fetch into the blob store, hash, detect, extract, preview,
  one commit each, contents indexed) with ``--threads`` worker threads. Reports files/s and
  MB/s, and the process's peak RSS;
* **writes** (``--writes``): bulk load (``create_many``, which enqueues nothing) and single
  creates of datasets with external URLs (each enqueues a job and writes a ``pending`` file
  record), in datasets/s. Run this part against an older tree with ``--writes-only`` (it
  uses no newer API) to compare.

Usage::

    python -m benchmarks.bench_pipeline [--files 50] [--threads 1] [--writes 5000] [--tmp DIR]
    python -m benchmarks.bench_pipeline --writes-only --writes 5000

Prints a markdown table on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import http.server
import os
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import opencatalog as oc
from opencatalog.domain.commands import DatasetInput, ResourceInput

_MB = 1_000_000
CHEAP = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}


def _peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / (1024 if sys.platform == "darwin" else 1)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@contextmanager
def _serve(folder: Path) -> Iterator[int]:
    """Serve the files of ``folder`` on 127.0.0.1; yields the port."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(folder), **kwargs)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _csv(size: int, seed: int) -> bytes:
    from benchmarks.bench_pipeline_steps import make_csv

    with tempfile.NamedTemporaryFile(suffix=".csv") as tmp:
        make_csv(Path(tmp.name), size=size, seed=seed)
        return Path(tmp.name).read_bytes()


def bench_pipeline(args: argparse.Namespace, tmp: Path) -> list[tuple[str, str]]:
    files = tmp / "files"
    files.mkdir()
    _say(f"writing {args.files} CSV files of 1 MB")
    template = _csv(_MB, seed=1)
    for n in range(args.files):
        # distinct bytes per file (no deduplication by content address), same shape
        header, _, rest = template.partition(b"\n")
        marker = f"0,unique{n},x,0,0,2024-01-01,z\n".encode()
        (files / f"f{n}.csv").write_bytes(header + b"\n" + marker + rest)
    with _serve(files) as port:
        catalog = oc.open_catalog(
            tmp / "catalog",
            run_jobs_in_process=False,
            create_unowned_dataset=True,
            password_hash_params=CHEAP,
            fetch_allowed_networks=["127.0.0.1/32"],
            fetch_allowed_ports=[port],
            fetch_host_interval=0,
        )
        try:
            for n in range(args.files):
                catalog.datasets.create(
                    DatasetInput(
                        name=f"file-{n}",
                        resources=(ResourceInput(url=f"http://127.0.0.1:{port}/f{n}.csv"),),
                    )
                )
            _say(f"running {args.files} pipeline jobs with {args.threads} thread(s)")
            from opencatalog.worker import Worker

            worker = Worker(
                catalog.jobs.queue, catalog.jobs.handlers, threads=args.threads, poll_interval=0.05
            )
            started = time.perf_counter()
            if args.threads == 1:
                worker.run_until_idle()
            else:
                worker.start()
                while catalog.jobs.stats()["complete"] + catalog.jobs.stats()["error"] < args.files:
                    time.sleep(0.05)
                worker.stop()
            elapsed = time.perf_counter() - started
            stats = catalog.pipeline.stats()
            assert stats["complete"] == args.files, stats
            if args.files > 7 and os.environ.get("OPENCATALOG_SEARCH", "") != "none":
                assert catalog.search.everything("unique7").count == 1
        finally:
            catalog.close()
    size_mb = sum(p.stat().st_size for p in files.iterdir()) / _MB
    return [
        ("files", f"{args.files} CSV of ~1 MB"),
        ("worker threads", str(args.threads)),
        ("pipeline wall time", f"{elapsed:.2f} s"),
        ("throughput", f"{args.files / elapsed:.1f} files/s ({size_mb / elapsed:.1f} MB/s)"),
        ("peak RSS (whole process)", f"{_peak_rss_mib():.0f} MiB"),
    ]


def _inputs(count: int, prefix: str) -> list[DatasetInput]:
    return [
        DatasetInput(
            name=f"{prefix}-{n}",
            resources=tuple(
                ResourceInput(url=f"https://data.example.org/{prefix}/{n}/{k}.csv")
                for k in range(3)
            ),
        )
        for n in range(count)
    ]


def bench_writes(args: argparse.Namespace, tmp: Path) -> list[tuple[str, str]]:
    os.environ["OPENCATALOG_RUN_JOBS_IN_PROCESS"] = "false"  # an older tree ignores it
    rows = []
    catalog = oc.open_catalog(
        tmp / "writes", create_unowned_dataset=True, password_hash_params=CHEAP, search="none"
    )
    try:
        bulk = _inputs(args.writes, "bulk")
        started = time.perf_counter()
        result = catalog.datasets.create_many(bulk)
        bulk_s = time.perf_counter() - started
        assert result.created == len(bulk), result.errors
        rows.append(
            (
                "bulk load, 3 external URLs each",
                f"{len(bulk) / bulk_s:,.0f} datasets/s ({bulk_s:.2f} s)",
            )
        )
        singles = _inputs(max(args.writes // 10, 1), "single")
        started = time.perf_counter()
        for item in singles:
            catalog.datasets.create(item)
        single_s = time.perf_counter() - started
        rows.append(
            (
                "single creates, 3 external URLs each",
                f"{len(singles) / single_s:,.0f} datasets/s ({single_s:.2f} s)",
            )
        )
        stats = catalog._ctx.task_queue.stats() if catalog._ctx.task_queue else {}
        rows.append(("jobs queued by those writes", str(sum(stats.values()))))
    finally:
        catalog.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--writes", type=int, default=5000)
    parser.add_argument("--writes-only", action="store_true")
    parser.add_argument("--tmp", default=None, help="work folder (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp_name:
        tmp = Path(tmp_name)
        rows: list[tuple[str, str]] = []
        if not args.writes_only:
            rows += bench_pipeline(args, tmp)
        if args.writes:
            rows += bench_writes(args, tmp)
    print("| measure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
