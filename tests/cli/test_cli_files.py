"""``opencatalog resource upload`` and ``opencatalog gc`` on a folder catalog."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from opencatalog.bootstrap import open_catalog
from opencatalog.cli import main
from opencatalog.cli.files import parse_duration

FAST_HASHING = (
    "[opencatalog]\npassword_hash_params = { time_cost = 1, memory_cost = 8, parallelism = 1 }\n"
)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "cat"
    path.mkdir()
    (path / "opencatalog.toml").write_text(FAST_HASHING, encoding="utf-8")
    return path


@pytest.fixture
def run(folder: Path):
    runner = CliRunner(
        env={"OPENCATALOG_CATALOG": None, "OPENCATALOG_CONFIG": None, "OPENCATALOG_STORAGE": None}
    )

    def run(*args: str, code: int = 0):
        result = runner.invoke(main, ["--catalog", str(folder), *args])
        assert "Traceback" not in result.output
        assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
        return result

    run("init")
    run("org", "create", "org-a")
    run("dataset", "create", "water", "--org", "org-a")
    return run


def downloaded(folder: Path, rid: str) -> bytes:
    with open_catalog(folder) as catalog, catalog.files.download(rid) as found:
        assert found.content is not None
        return found.content.read_all()


def test_resource_upload_round_trip(run, folder, tmp_path):
    data = b"station,ph\nA,7.1\n"
    source = tmp_path / "../readings 2024.csv"
    source.write_bytes(data)
    result = run("resource", "upload", "water", str(source))
    out = json.loads(result.stdout)
    resource = out["resource"]
    assert resource["url_type"] == "upload" and resource["size"] == len(data)
    assert resource["name"] == "readings 2024.csv"
    assert resource["url"].endswith("/download/readings-2024.csv")
    assert "Uploaded readings 2024.csv" in result.stderr
    assert downloaded(folder, resource["id"]) == data
    # replace the file of the same resource
    other = tmp_path / "v2.csv"
    other.write_bytes(b"station,ph\nB,6.0\n")
    again = json.loads(
        run("resource", "upload", "water", str(other), "--resource", resource["id"]).stdout
    )
    assert again["resource"]["id"] == resource["id"]
    assert downloaded(folder, resource["id"]) == b"station,ph\nB,6.0\n"


def test_resource_upload_errors_leave_no_empty_resource(run, folder, tmp_path):
    source = tmp_path / "a.csv"
    source.write_bytes(b"x" * 100)
    (folder / "opencatalog.toml").write_text(
        FAST_HASHING + "upload_max_bytes = 10\n", encoding="utf-8"
    )
    result = run("resource", "upload", "water", str(source), code=1)
    assert "larger than 10 bytes" in result.stderr
    shown = json.loads(run("dataset", "show", "water").stdout)
    assert shown["resources"] == []
    run("resource", "upload", "nope", str(source), code=1)


def test_gc(run, folder, tmp_path):
    first = tmp_path / "a.csv"
    first.write_bytes(b"first version\n")
    rid = json.loads(run("resource", "upload", "water", str(first)).stdout)["resource"]["id"]
    second = tmp_path / "b.csv"
    second.write_bytes(b"second version\n")
    run("resource", "upload", "water", str(second), "--resource", rid)
    young = json.loads(run("gc").stdout)  # the default grace keeps the fresh orphan
    assert young["orphans"] == 0 and young["referenced"] >= 1
    dry = json.loads(run("gc", "--grace", "0", "--dry-run").stdout)
    assert dry["dry_run"] is True and dry["orphans"] >= 1 and dry["temporaries"] is None
    assert json.loads(run("gc", "--grace", "0", "--dry-run").stdout) == dry  # nothing removed
    done = json.loads(run("gc", "--grace", "0").stdout)
    assert done["orphans"] == dry["orphans"] and done["temporaries"] == 0
    assert json.loads(run("gc", "--grace", "0", "--dry-run").stdout)["orphans"] == 0
    assert downloaded(folder, rid) == b"second version\n"
    run("gc", "--grace", "soon", code=2)


def test_parse_duration():
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("30m") == timedelta(minutes=30)
    assert parse_duration("1h") == timedelta(hours=1)
    assert parse_duration("2D") == timedelta(days=2)
    assert parse_duration("0") == timedelta(0)
    with pytest.raises(click.BadParameter):
        parse_duration("-1h")
