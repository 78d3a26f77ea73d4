"""``opencatalog search`` and ``reindex`` on a folder catalog (tantivy index)."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner

from opencatalog import open_catalog
from opencatalog.cli import main

FAST = "[opencatalog]\npassword_hash_params = {time_cost = 1, memory_cost = 8, parallelism = 1}\n"


def _run(runner: CliRunner, folder: Path, *args: str, code: int = 0) -> str:
    result = runner.invoke(main, ["--catalog", str(folder), *args], catch_exceptions=False)
    assert result.exit_code == code, (args, result.output, result.stderr)
    return result.stdout


def test_search_check_repair_and_reindex(tmp_path: Path) -> None:
    runner = CliRunner()
    folder = tmp_path / "cat"
    _run(runner, folder, "init")
    (folder / "opencatalog.toml").write_text(FAST)
    _run(runner, folder, "org", "create", "health", "--title", "Health")
    for name, tag in (("water-quality", "water"), ("air-quality", "air"), ("soil", "water")):
        _run(runner, folder, "dataset", "create", name, "--org", "health", "--tag", tag)

    found = json.loads(_run(runner, folder, "search", "query", "quality", "--facet", "tags"))
    assert found["count"] == 2
    assert {d["name"] for d in found["results"]} == {"water-quality", "air-quality"}
    assert found["facets"]["tags"] == [
        {"name": "air", "display_name": "air", "count": 1},
        {"name": "water", "display_name": "water", "count": 1},
    ]
    names = _run(runner, folder, "search", "query", "--fq", "tags:water", "--names").split()
    assert sorted(names) == ["soil", "water-quality"]

    assert json.loads(_run(runner, folder, "search", "check"))["missing"] == []

    # drift: a document lost from the index is reported, then repaired
    with open_catalog(folder) as cat:
        lost = cat.datasets.get("soil").id
        cat._ctx.search_index.delete([lost])  # type: ignore[union-attr]
    report = json.loads(_run(runner, folder, "search", "check", code=1))
    assert report["missing"] == [lost]
    assert json.loads(_run(runner, folder, "search", "check", "--repair"))["repaired"] is True
    assert json.loads(_run(runner, folder, "search", "check"))["missing"] == []

    # a deleted index folder is rebuilt from the database when the catalog opens
    shutil.rmtree(folder / "index")
    assert json.loads(_run(runner, folder, "search", "stats"))["documents"] == 3

    _run(runner, folder, "reindex")
    assert json.loads(_run(runner, folder, "search", "stats"))["documents"] == 3


def test_search_refuses_queries_outside_the_syntax(tmp_path: Path) -> None:
    runner = CliRunner()
    folder = tmp_path / "cat"
    _run(runner, folder, "init")
    result = runner.invoke(main, ["--catalog", str(folder), "search", "query", "title:[a TO b]"])
    assert result.exit_code == 1
    assert "range queries are not supported" in result.stderr


def test_jobs_stats_list_and_retry(tmp_path: Path) -> None:
    runner = CliRunner()
    folder = tmp_path / "cat"
    _run(runner, folder, "init")
    assert json.loads(_run(runner, folder, "jobs", "stats")) == {
        "pending": 0,
        "processing": 0,
        "complete": 0,
        "error": 0,
    }
    with open_catalog(folder) as cat:  # a job that failed for good
        queue = cat._ctx.task_queue
        assert queue is not None
        job = queue.enqueue("pipeline", {"resource_id": "r1"}, max_attempts=1)
        claimed = queue.claim("w1", lease=timedelta(minutes=1))
        assert claimed is not None and claimed.id == job.id
        assert queue.fail(job.id, "w1", "boom")
    listed = json.loads(_run(runner, folder, "jobs", "list", "--status", "error"))
    assert [(j["id"], j["error"]) for j in listed] == [(job.id, "boom")]
    assert json.loads(_run(runner, folder, "jobs", "retry", job.id))["status"] == "pending"
    assert json.loads(_run(runner, folder, "jobs", "stats"))["pending"] == 1
