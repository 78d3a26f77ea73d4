"""The ``opencatalog`` command, run in-process with click's CliRunner on folder catalogs."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from opencatalog.cli import main

FAST_HASHING = (
    "[opencatalog]\npassword_hash_params = { time_cost = 1, memory_cost = 8, parallelism = 1 }\n"
)

Run = Callable[..., Result]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner(
        env={"OPENCATALOG_CATALOG": None, "OPENCATALOG_CONFIG": None, "OPENCATALOG_STORAGE": None}
    )


def _make_run(runner: CliRunner, folder: Path) -> Run:
    def run(*args: str, input: str | bytes | None = None, code: int | None = 0) -> Result:
        result = runner.invoke(main, ["--catalog", str(folder), *args], input=input)
        assert "Traceback" not in result.output
        if code is not None:
            assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
        return result

    return run


def _new_catalog(runner: CliRunner, folder: Path) -> Run:
    folder.mkdir(parents=True)
    (folder / "opencatalog.toml").write_text(FAST_HASHING, encoding="utf-8")
    run = _make_run(runner, folder)
    result = run("init")
    assert "Created catalog" in result.stderr
    return run


@pytest.fixture
def run(runner: CliRunner, tmp_path: Path) -> Run:
    """Run the command on a fresh folder catalog."""
    return _new_catalog(runner, tmp_path / "cat")


def _json(result: Result) -> Any:
    return json.loads(result.stdout)


def _lines(result: Result) -> list[Any]:
    return [json.loads(line) for line in result.stdout.splitlines()]


# ---------------------------------------------------------------------------------------------
# The group, help and life cycle
# ---------------------------------------------------------------------------------------------


def _all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found.extend(_all_commands(command, (*prefix, name)))
        else:
            found.append((*prefix, name))
    return found


def test_version(runner: CliRunner) -> None:
    result = runner.invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.startswith("opencatalog, version ")


@pytest.mark.parametrize("path", _all_commands(main), ids=lambda p: " ".join(p) or "main")
def test_every_command_has_help(runner: CliRunner, path: tuple[str, ...]) -> None:
    result = runner.invoke(main, [*path, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.stdout
    command: click.Command = main
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    assert command.help


def test_commands_refuse_a_folder_without_a_catalog(runner: CliRunner, tmp_path: Path) -> None:
    missing = tmp_path / "nothing-here"
    result = runner.invoke(main, ["--catalog", str(missing), "info"])
    assert result.exit_code == 1
    assert "No catalog in" in result.stderr and "init" in result.stderr
    assert not missing.exists()
    assert result.stdout == ""


def test_usage_errors_exit_with_2(run: Run) -> None:
    run("dataset", "list", "--limit", "-1", code=2)
    run("no-such-command", code=2)
    run("user", "create", "ann", code=2)  # --email is required


def test_init_again_and_upgrade_are_harmless(run: Run) -> None:
    assert "is ready" in run("init").stderr
    result = run("upgrade")
    assert "already at the newest revision" in result.stderr


def test_info_shows_backends_schema_and_counts(run: Run) -> None:
    run("org", "create", "org-a")
    run("dataset", "create", "ds-a", "--org", "org-a")
    data = _json(run("info"))
    assert data["counts"] == {"datasets": 1, "organizations": 1, "groups": 0, "users": 0}
    assert data["schema"]["revision"] == data["schema"]["head"]
    assert data["schema"]["revision"] is not None
    assert data["backends"]["storage"]["dialect"] == "sqlite"


def test_config_file_and_environment(runner: CliRunner, tmp_path: Path) -> None:
    folder = tmp_path / "cat"
    _new_catalog(runner, folder)
    config = tmp_path / "settings.toml"
    config.write_text("[opencatalog]\nno_such_setting = 1\n", encoding="utf-8")
    result = runner.invoke(main, ["-c", str(config), "--catalog", str(folder), "info"])
    assert result.exit_code == 1
    assert "Unknown settings: no_such_setting" in result.stderr
    result = runner.invoke(main, ["info"], env={"OPENCATALOG_CATALOG": str(folder)})
    assert result.exit_code == 0
    assert _json(result)["catalog"] == str(folder)


# ---------------------------------------------------------------------------------------------
# Users and tokens
# ---------------------------------------------------------------------------------------------


def test_user_create_list_show_delete(run: Run) -> None:
    created = _json(
        run(
            "user",
            "create",
            "ann",
            "--email",
            "ann@example.org",
            "--password",
            "secret123",
            "--fullname",
            "Ann A",
            "--sysadmin",
        )
    )
    assert created["name"] == "ann" and created["sysadmin"] is True
    assert created["email"] == "ann@example.org"
    assert "password_hash" not in created and "secret123" not in json.dumps(created)

    result = run(
        "user",
        "create",
        "bob",
        "--email",
        "bob@example.org",
        "--password-stdin",
        input="stdin-pass\n",
    )
    assert "Created user bob" in result.stderr
    result = run(
        "user", "create", "cid", "--email", "cid@example.org", input="prompted1\nprompted1\n"
    )
    assert "Password" in result.stderr  # the prompt is not data
    assert _json(result)["name"] == "cid"

    users = _json(run("user", "list"))
    assert [u["name"] for u in users] == ["ann", "bob", "cid"]
    shown = _json(run("user", "show", "bob"))
    assert shown["email"] == "bob@example.org"

    run("user", "delete", "bob")
    assert [u["name"] for u in _lines(run("user", "list", "--jsonl"))] == ["ann", "cid"]
    listed = _json(run("user", "list", "--include-deleted"))
    assert {u["name"]: u["state"] for u in listed}["bob"] == "deleted"


def test_user_create_errors(run: Run) -> None:
    run("user", "create", "ann", "--email", "ann@example.org", "--password", "secret123")
    result = run(
        "user", "create", "ann", "--email", "ann@example.org", "--password", "secret123", code=1
    )
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("Error: Validation failed: {")
    errors = json.loads(line.split(": ", 2)[2])
    assert "name" in errors and "email" in errors
    result = run("user", "create", "bo", "--email", "bo@example.org", "--password", "short", code=1)
    assert "8 characters or longer" in result.stderr
    run(
        "user",
        "create",
        "x2",
        "--email",
        "x@example.org",
        "--password",
        "a12345678",
        "--password-stdin",
        code=2,
    )
    assert "User not found" in run("user", "show", "nobody", code=1).stderr


def test_tokens(run: Run) -> None:
    run("user", "create", "ann", "--email", "ann@example.org", "--password", "secret123")
    result = run("token", "create", "ann", "laptop", "--expires-in-days", "30")
    secret = result.stdout.strip()
    assert secret.startswith("oc_") and "\n" not in secret
    assert secret not in result.stderr and "not shown again" in result.stderr

    [token] = _json(run("token", "list", "ann"))
    assert token["name"] == "laptop" and token["expires_at"] is not None
    assert "token_hash" not in token and secret not in json.dumps(token)

    run("token", "create", "ann", "ci")
    assert [t["name"] for t in _lines(run("token", "list", "ann", "--jsonl"))] == ["laptop", "ci"]
    run("token", "revoke", token["id"])
    run("token", "revoke", secret, code=1)  # already gone
    assert [t["name"] for t in _json(run("token", "list", "ann"))] == ["ci"]
    run("token", "create", "ann", "x", "--expires-in-days", "0", code=2)
    assert "User not found" in run("token", "create", "nobody", "x", code=1).stderr


# ---------------------------------------------------------------------------------------------
# Organizations and groups
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("command", "kind"), [("org", "organization"), ("group", "group")])
def test_organizations_and_groups(run: Run, command: str, kind: str) -> None:
    run("user", "create", "ann", "--email", "ann@example.org", "--password", "secret123")
    created = _json(run(command, "create", "team", "--title", "The Team", "--description", "d"))
    assert created["name"] == "team" and created["is_organization"] is (kind == "organization")
    assert created["display_name"] == "The Team"

    membership = _json(run(command, "member-add", "team", "ann", "--role", "editor"))
    assert membership["capacity"] == "editor"
    shown = _json(run(command, "show", "team"))
    assert shown["users"] == [{"id": membership["user_id"], "name": "ann", "capacity": "editor"}]
    assert shown["package_count"] == 0

    run(command, "member-add", "team", "ann", "--role", "chief", code=2)
    run(command, "member-remove", "team", "ann")
    assert _json(run(command, "show", "team"))["users"] == []

    run(command, "create", "alpha")
    assert [g["name"] for g in _json(run(command, "list"))] == ["alpha", "team"]
    assert [g["name"] for g in _lines(run(command, "list", "--jsonl"))] == ["alpha", "team"]
    result = run(command, "create", "team", code=1)
    assert "Group name already exists" in result.stderr
    assert f"{kind.capitalize()} not found" in run(command, "show", "nope", code=1).stderr


# ---------------------------------------------------------------------------------------------
# Datasets
# ---------------------------------------------------------------------------------------------


def test_dataset_create_show_list(run: Run, tmp_path: Path) -> None:
    run("org", "create", "org-a")
    run("org", "create", "org-b")
    created = _json(
        run(
            *["dataset", "create", "water", "--org", "org-a", "--title", "Water"],
            *["--notes", "n", "--tag", "rivers", "--tag", "lakes", "--private"],
        )
    )
    assert created["name"] == "water" and created["private"] is True
    assert created["organization"]["name"] == "org-a"
    assert [t["name"] for t in created["tags"]] == ["rivers", "lakes"]

    body = {
        "name": "air",
        "owner_org": "org-b",
        "extras": [{"key": "spatial", "value": {"type": "Point"}}],
        "resources": [{"url": "http://example.org/air.csv", "station": "x1"}],
    }
    path = tmp_path / "air.json"
    path.write_text(json.dumps(body), encoding="utf-8")
    air = _json(run("dataset", "create", "--json", str(path), "--title", "Air"))
    assert air["title"] == "Air"
    assert air["extras"] == [{"key": "spatial", "value": '{"type": "Point"}'}]
    assert air["resources"][0]["format"] == "CSV" and air["resources"][0]["station"] == "x1"
    soil = _json(run("dataset", "create", "soil", "--json", "-", input=json.dumps({"name": "x"})))
    assert soil["name"] == "soil"  # NAME wins over the file's name

    shown = _json(run("dataset", "show", "air"))
    assert shown == air
    assert len(run("dataset", "show", "air").stdout.splitlines()) == 1  # compact off a terminal

    assert [d["name"] for d in _json(run("dataset", "list"))] == ["air", "soil", "water"]
    assert run("dataset", "list", "--names").stdout.split() == ["air", "soil", "water"]
    assert [d["name"] for d in _json(run("dataset", "list", "--org", "org-a"))] == ["water"]
    page = run("dataset", "list", "--names", "--limit", "1", "--offset", "1").stdout.split()
    assert page == ["soil"]
    assert [d["name"] for d in _lines(run("dataset", "list", "--jsonl"))] == [
        "air",
        "soil",
        "water",
    ]


def test_dataset_create_errors(run: Run, tmp_path: Path) -> None:
    run("org", "create", "org-a")
    result = run("dataset", "create", "Bad Name", "--org", "org-a", code=1)
    assert result.stdout == ""
    assert result.stderr.startswith('Error: Validation failed: {"name": [')
    assert len(result.stderr.splitlines()) == 1
    result = run("dataset", "create", "fine", "--org", "no-such-org", code=1)
    assert "Organization does not exist" in result.stderr
    run("dataset", "create", code=2)  # neither NAME nor --json
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    assert "not valid JSON" in run("dataset", "create", "--json", str(bad), code=1).stderr
    bad.write_text('{"name": "x1", "resources": "r"}', encoding="utf-8")
    result = run("dataset", "create", "--json", str(bad), code=1)
    assert '"resources": ["Must be a list of resources"]' in result.stderr
    assert "Dataset not found" in run("dataset", "show", "nothing", code=1).stderr


def test_dataset_delete_and_purge(run: Run) -> None:
    run("org", "create", "org-a")
    run("dataset", "create", "water", "--org", "org-a")
    run("dataset", "delete", "water")
    assert run("dataset", "list", "--names").stdout == ""
    assert run("dataset", "list", "--names", "--include-deleted").stdout.split() == ["water"]
    assert _json(run("dataset", "show", "water"))["state"] == "deleted"
    run("dataset", "purge", "water", input="n\n", code=1)  # not confirmed: aborted
    run("dataset", "purge", "water", "--yes")
    run("dataset", "show", "water", code=1)
    run("dataset", "purge", "water", "--yes", code=1)


# ---------------------------------------------------------------------------------------------
# load and dump
# ---------------------------------------------------------------------------------------------


def _jsonl(*items: Any) -> str:
    return "".join((item if isinstance(item, str) else json.dumps(item)) + "\n" for item in items)


MIXED = _jsonl(
    {"name": "good-1", "owner_org": "org-a", "resources": [{"url": "http://x/a.csv"}]},  # 1
    "{this is not json",  # 2
    {"name": "Bad Name!", "owner_org": "org-a"},  # 3
    "",  # 4: blank lines are skipped
    {"name": "good-2", "owner_org": "org-a", "tags": [{"name": "rivers"}]},  # 5
    {"name": "good-1", "owner_org": "org-a"},  # 6: the name is taken by line 1
    {"name": "good-3", "owner_org": "org-a", "resources": [{"size": "huge"}]},  # 7
    {"name": "good-4", "owner_org": "org-a", "tags": "not-a-list"},  # 8
    {"name": "good-5", "owner_org": "org-a", "private": True},  # 9
)


def test_load_takes_the_good_lines_and_reports_the_bad_ones(run: Run, tmp_path: Path) -> None:
    run("org", "create", "org-a")
    run("dataset", "create", "existing", "--org", "org-a")
    source = tmp_path / "mixed.jsonl"
    source.write_text(MIXED + _jsonl({"name": "existing", "owner_org": "org-a"}), "utf-8")
    errors_file = tmp_path / "errors.jsonl"

    result = run("load", str(source), "--batch-size", "2", "--errors", str(errors_file), code=1)
    assert result.stdout == ""
    reported = {
        int(line.split(":", 1)[0].removeprefix("line ")): json.loads(line.split(": ", 1)[1])
        for line in result.stderr.splitlines()
        if line.startswith("line ")
    }
    assert sorted(reported) == [2, 3, 6, 7, 8, 10]
    assert "Invalid JSON" in reported[2]["message"][0]
    assert "name" in reported[3]
    assert reported[6] == {"name": ["That URL is already in use."]}
    assert reported[7] == {"resources": [{"size": ["Invalid integer"]}]}
    assert reported[8] == {"tags": ["Must be a list of tags"]}
    assert reported[10] == {"name": ["That URL is already in use."]}
    assert "Loaded 3 of 9 datasets; 6 refused" in result.stderr

    written = [json.loads(line) for line in errors_file.read_text("utf-8").splitlines()]
    assert {e["line"]: e["errors"] for e in written} == reported

    names = run("dataset", "list", "--names").stdout.split()
    assert names == ["existing", "good-1", "good-2", "good-5"]
    assert _json(run("dataset", "show", "good-5"))["private"] is True


def test_load_all_good_from_stdin_and_gzip(run: Run, tmp_path: Path) -> None:
    run("org", "create", "org-a")
    lines = _jsonl(*({"name": f"ds-{n}", "owner_org": "org-a"} for n in range(5)))
    result = run("load", "-", input=lines)
    assert "Loaded 5 of 5 datasets" in result.stderr and "refused" not in result.stderr
    packed = tmp_path / "more.jsonl.gz"
    packed.write_bytes(gzip.compress(_jsonl({"name": "zipped", "owner_org": "org-a"}).encode()))
    run("load", str(packed))
    run(
        "load",
        "-",
        input=gzip.compress(_jsonl({"name": "zipped-2", "owner_org": "org-a"}).encode()),
    )
    names = run("dataset", "list", "--names").stdout.split()
    assert names == [f"ds-{n}" for n in range(5)] + ["zipped", "zipped-2"]
    assert "Cannot read" in run("load", str(tmp_path / "missing.jsonl"), code=1).stderr


def test_load_creates_missing_organizations_only_when_asked(run: Run) -> None:
    line = _jsonl(
        {
            "name": "ds-1",
            "owner_org": "new-org",
            "organization": {"name": "new-org", "title": "New"},
        }
    )
    result = run("load", "-", input=line, code=1)
    assert "Organization does not exist" in result.stderr
    result = run("load", "-", "--create-orgs", input=line)
    assert "Created organization new-org" in result.stderr
    assert _json(run("org", "show", "new-org"))["title"] == "New"
    assert _json(run("dataset", "show", "ds-1"))["organization"]["name"] == "new-org"


def _comparable(dataset: dict[str, Any]) -> dict[str, Any]:
    """A dataset dict without what a load sets afresh."""
    out = {k: v for k, v in dataset.items() if k not in {"metadata_created", "metadata_modified"}}
    out["organization"] = {k: v for k, v in out["organization"].items() if k != "created"}
    out["resources"] = [
        {k: v for k, v in r.items() if k not in {"created", "metadata_modified"}}
        for r in out["resources"]
    ]
    return out


def test_dump_loads_into_an_empty_catalog(runner: CliRunner, run: Run, tmp_path: Path) -> None:
    run("org", "create", "org-a", "--title", "Org A")
    run("group", "create", "grp", "--title", "Group")
    body = {
        "name": "full",
        "owner_org": "org-a",
        "title": "Full",
        "private": True,
        "license_id": "cc-by",
        "tags": ["rivers", {"name": "lakes"}],
        "extras": {"spatial": "point"},
        "groups": [{"name": "grp"}],
        "resources": [
            {"url": "http://example.org/a.csv", "name": "A", "size": 10, "layer": [1, 2]},
            {"url": "http://example.org/b", "format": "JSON"},
        ],
    }
    run("dataset", "create", "--json", "-", input=json.dumps(body))
    run("dataset", "create", "plain", "--org", "org-a")
    run("dataset", "create", "gone", "--org", "org-a")
    run("dataset", "delete", "gone")

    dump_file = tmp_path / "dump.jsonl.gz"
    result = run("dump", str(dump_file))
    assert "Dumped 2 datasets" in result.stderr
    dumped = [json.loads(line) for line in gzip.decompress(dump_file.read_bytes()).splitlines()]
    assert [d["name"] for d in dumped] == ["full", "plain"]
    assert _lines(run("dump")) == dumped  # stdout gives the same lines

    fresh = _new_catalog(runner, tmp_path / "fresh")
    result = fresh("load", str(dump_file), "--create-orgs", "--create-groups")
    assert "Loaded 2 of 2 datasets" in result.stderr
    reloaded = [json.loads(line) for line in fresh("dump").stdout.splitlines()]
    assert [_comparable(d) for d in reloaded] == [_comparable(d) for d in dumped]

    again = fresh("load", str(dump_file), code=1)  # the names are taken now
    assert "Loaded 0 of 2 datasets; 2 refused" in again.stderr
