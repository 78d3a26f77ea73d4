"""``opencatalog search doc|browse|stats`` and ``reindex`` over the three logical indices of a
folder catalog."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from opencatalog import open_catalog
from opencatalog.cli import main
from opencatalog.domain.commands import DatasetInput, ResourceInput

FAST = "[opencatalog]\npassword_hash_params = {time_cost = 1, memory_cost = 8, parallelism = 1}\n"


def _run(runner: CliRunner, folder: Path, *args: str, code: int = 0) -> tuple[str, str]:
    result = runner.invoke(main, ["--catalog", str(folder), *args], catch_exceptions=False)
    assert result.exit_code == code, (args, result.output, result.stderr)
    return result.stdout, result.stderr


def test_documents_browse_stats_and_reindex(tmp_path: Path) -> None:
    runner = CliRunner()
    folder = tmp_path / "cat"
    _run(runner, folder, "init")
    (folder / "opencatalog.toml").write_text(FAST)
    with open_catalog(folder) as cat:
        ds = cat.datasets.create(
            DatasetInput(
                name="rivers",
                resources=(
                    ResourceInput(url="https://example.org/a.csv", name="Gauges"),
                    ResourceInput(url="https://example.org/b.csv", name="Stations"),
                ),
            )
        )
    rids = sorted(r.id for r in ds.resources)

    out, err = _run(runner, folder, "search", "stats")
    stats = json.loads(out)
    assert stats["documents"] == 1
    assert stats["per_index"]["packages"] == 1
    assert stats["per_index"]["resources"] == 2
    assert "resources: 2" in err

    out, _ = _run(runner, folder, "search", "doc", "resources", rids[0])
    doc = json.loads(out)
    assert doc["id"] == rids[0]
    assert doc["package_id"] == ds.id
    out, _ = _run(runner, folder, "search", "doc", "packages", ds.id)
    assert json.loads(out)["name"] == "rivers"
    _, err = _run(runner, folder, "search", "doc", "resources", "no-such-id", code=1)
    assert "not found" in err.lower()
    result = runner.invoke(main, ["--catalog", str(folder), "search", "doc", "nope", "x"])
    assert result.exit_code == 2  # not one of the three indices

    out, err = _run(runner, folder, "search", "browse", "resources", "--limit", "1")
    page = json.loads(out)
    assert (page["index"], page["total"], page["offset"], page["limit"]) == ("resources", 2, 0, 1)
    assert [item["id"] for item in page["items"]] == rids[:1]
    assert "1-1 of 2" in err
    out, _ = _run(runner, folder, "search", "browse", "resources", "--offset", "1", "--jsonl")
    assert [json.loads(line)["id"] for line in out.splitlines()] == rids[1:]

    out, _ = _run(runner, folder, "search", "check")
    report = json.loads(out)
    assert report["resources_missing"] == report["resources_extra"] == []

    _, err = _run(runner, folder, "reindex")
    assert "indexed 1/1" in err
    assert "resources: 2" in err
    assert json.loads(_run(runner, folder, "search", "stats")[0])["per_index"]["resources"] == 2
