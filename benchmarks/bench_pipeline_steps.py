"""Benchmark the pipeline's building blocks: detect + extract + preview.

Measures:

* throughput on 1 MB CSV files (files/s and MB/s, and the time per step), all in one process;
* peak resident memory (``resource.getrusage``) for the hostile cases, each in a fresh child
  process so one case's peak cannot hide another's: a ZIP bomb (1 GiB of zeros, about
  1 MB compressed) and a 1 GiB sparse file forced through every extractor, against a
  baseline child that only imports the modules.

Usage::

    python -m benchmarks.bench_pipeline_steps [--files 30] [--bomb-mib 1024] [--tmp DIR]

Prints a markdown table on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path

from opencatalog.pipeline.detect import HEAD_BYTES, Detection, detect
from opencatalog.pipeline.extract import extract_text
from opencatalog.pipeline.preview import make_preview, preview_to_json

_MB = 1_000_000


def _peak_rss_mib() -> float:
    """Peak resident set size of this process, in MiB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / (1024 if sys.platform == "darwin" else 1)


def make_csv(path: Path, *, size: int, seed: int) -> None:
    """A realistic-looking CSV of about ``size`` bytes: ids, names, cities, numbers, dates."""
    rng = random.Random(seed)
    cities = ["Paris", "Zürich", "São Paulo", "Kraków", "Montréal", "Berlin", "Osaka", "Lagos"]
    words = ["alpha", "bridge", "river", "budget", "school", "census", "road", "water"]
    lines = ["id,name,city,amount,ratio,date,comment\n"]
    total = len(lines[0])
    row = 0
    while total < size:
        row += 1
        comment = " ".join(rng.choice(words) for _ in range(rng.randint(2, 8)))
        line = (
            f"{row},{rng.choice(words).title()} {row},{rng.choice(cities)},"
            f"{rng.randint(0, 10**6)},{rng.random():.6f},"
            f'2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d},"{comment}"\n'
        )
        lines.append(line)
        total += len(line.encode())
    path.write_text("".join(lines), encoding="utf-8")


def make_zip_bomb(path: Path, *, mebibytes: int) -> None:
    chunk = b"\0" * (1 << 20)
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("zeros.bin", "w", force_zip64=True) as member,
    ):
        for _ in range(mebibytes):
            member.write(chunk)


def make_sparse(path: Path, *, size: int) -> None:
    with path.open("wb") as handle:
        handle.truncate(size)


def process(path: Path, *, forced: str | None = None) -> dict[str, float]:
    """Detect, extract and preview one file; seconds per step."""
    times: dict[str, float] = {}
    with path.open("rb") as handle:
        started = time.perf_counter()
        detection = detect(
            handle.read(HEAD_BYTES), filename=path.name, declared_type=None, declared_format=None
        )
        if forced is not None:
            detection = Detection(
                mimetype="application/octet-stream",
                format=forced,
                encoding="utf-8",
                is_text=forced in ("CSV", "TXT", "JSON", "XML", "HTML"),
            )
        times["detect"] = time.perf_counter() - started
        handle.seek(0)
        started = time.perf_counter()
        extract_text(handle, detection)
        times["extract"] = time.perf_counter() - started
        handle.seek(0)
        started = time.perf_counter()
        preview_to_json(make_preview(handle, detection))
        times["preview"] = time.perf_counter() - started
    return times


def throughput(folder: Path, *, files: int) -> dict[str, float]:
    paths = []
    for number in range(files):
        path = folder / f"table-{number}.csv"
        make_csv(path, size=_MB, seed=number)
        paths.append(path)
    total_bytes = sum(path.stat().st_size for path in paths)
    process(paths[0])  # warm-up: imports, caches
    steps = {"detect": 0.0, "extract": 0.0, "preview": 0.0}
    started = time.perf_counter()
    for index, path in enumerate(paths, 1):
        for step, seconds in process(path).items():
            steps[step] += seconds
        print(f"\r  csv {index}/{files}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    elapsed = time.perf_counter() - started
    return {
        "files": files,
        "seconds": elapsed,
        "files_per_s": files / elapsed,
        "mb_per_s": total_bytes / _MB / elapsed,
        **{f"{step}_ms": 1000 * seconds / files for step, seconds in steps.items()},
    }


def child(case: str, path: str) -> None:
    """Run one hostile case in this (fresh) process and print JSON with the peak RSS."""
    started = time.perf_counter()
    if case == "baseline":
        pass
    elif case == "zipbomb":
        process(Path(path))
    elif case == "sparse":
        for forced in (None, "CSV", "TXT", "JSON", "XML", "HTML", "PDF", "ZIP", "XLSX"):
            process(Path(path), forced=forced)
    else:
        raise SystemExit(f"unknown case {case}")
    print(json.dumps({"peak_rss_mib": _peak_rss_mib(), "seconds": time.perf_counter() - started}))


def run_child(case: str, path: Path) -> dict[str, float]:
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_pipeline_steps", "--child", case, str(path)],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    result: dict[str, float] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--files", type=int, default=30, help="number of 1 MB CSV files")
    parser.add_argument("--bomb-mib", type=int, default=1024, help="zip bomb payload in MiB")
    parser.add_argument("--tmp", type=Path, default=None, help="folder for the test files")
    parser.add_argument("--child", nargs=2, metavar=("CASE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0

    with tempfile.TemporaryDirectory(dir=args.tmp) as name:
        folder = Path(name)
        print("throughput on 1 MB CSV files ...", file=sys.stderr)
        csv_figures = throughput(folder, files=args.files)
        print(f"building a {args.bomb_mib} MiB zip bomb ...", file=sys.stderr)
        bomb = folder / "bomb.zip"
        make_zip_bomb(bomb, mebibytes=args.bomb_mib)
        sparse = folder / "sparse.bin"
        make_sparse(sparse, size=1 << 30)
        print("measuring peak RSS in child processes ...", file=sys.stderr)
        baseline = run_child("baseline", sparse)
        bomb_figures = run_child("zipbomb", bomb)
        sparse_figures = run_child("sparse", sparse)
        bomb_size = bomb.stat().st_size

    print("| measurement | value |")
    print("|---|---|")
    print(f"| 1 MB CSV files processed | {csv_figures['files']:.0f} |")
    print(f"| throughput, files/s | {csv_figures['files_per_s']:.1f} |")
    print(f"| throughput, MB/s | {csv_figures['mb_per_s']:.1f} |")
    for step in ("detect", "extract", "preview"):
        print(f"| {step}, ms per file | {csv_figures[f'{step}_ms']:.1f} |")
    print(f"| baseline peak RSS (imports only), MiB | {baseline['peak_rss_mib']:.1f} |")
    base = baseline["peak_rss_mib"]
    print(
        f"| zip bomb ({args.bomb_mib} MiB of zeros, {bomb_size / 1e6:.1f} MB file): peak RSS, "
        f"MiB | {bomb_figures['peak_rss_mib']:.1f} (+{bomb_figures['peak_rss_mib'] - base:.1f}) |"
    )
    print(f"| zip bomb: wall time, s | {bomb_figures['seconds']:.3f} |")
    print(
        "| 1 GiB sparse file through 9 detections/extractors + previews: peak RSS, MiB | "
        f"{sparse_figures['peak_rss_mib']:.1f} "
        f"(+{sparse_figures['peak_rss_mib'] - base:.1f}) |"
    )
    print(f"| 1 GiB sparse file: wall time, s | {sparse_figures['seconds']:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
