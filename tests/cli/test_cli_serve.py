"""``opencatalog serve``: a real server process answers CKAN's Action API, stops cleanly on
SIGTERM (the catalog closed, the folder usable again), and fails cleanly without the server
extra or without a catalog."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from opencatalog import open_catalog
from opencatalog.cli import main
from opencatalog.domain.commands import DatasetInput, ResourceInput, UserInput
from opencatalog.testing.stateful import CHEAP_PASSWORD_HASHING


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _upload(url: str, token: str, data: bytes, filename: str) -> dict[str, Any]:
    """POST ``data`` as the multipart field ``file``."""
    boundary = "opencatalog-test-boundary"
    body = (
        (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Authorization": token,
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        answer: dict[str, Any] = json.loads(response.read())
        return answer


@pytest.fixture
def folder(tmp_path: Path) -> tuple[Path, str, str]:
    """A folder catalog with a sysadmin's token and a dataset with one linked resource."""
    path = tmp_path / "cat"
    with open_catalog(
        path, initialize=True, password_hash_params=dict(CHEAP_PASSWORD_HASHING)
    ) as catalog:
        catalog.users.create(
            UserInput(name="admin", email="a@example.org", password="pw-long-1", sysadmin=True)
        )
        token = catalog.tokens.create("admin", "serve-test").secret
        dataset = catalog.datasets.create(
            DatasetInput(
                name="rivers",
                title="Rivers",
                resources=[ResourceInput(url="https://example.org/r.csv", name="flows")],
            )
        )
    return path, token, dataset.resources[0].id


def test_serve_answers_the_action_api_and_stops_cleanly_on_sigterm(
    folder: tuple[Path, str, str],
) -> None:
    path, token, rid = folder
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "OPENCATALOG_RUN_JOBS_IN_PROCESS": "false"}
    env.pop("OPENCATALOG_CONFIG", None)
    env.pop("OPENCATALOG_CATALOG", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from opencatalog.cli import main; main()",
            "--catalog",
            str(path),
            "serve",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            try:
                status, body = _get(f"{base}/api/3/action/status_show")
                break
            except (ConnectionError, urllib.error.URLError):
                assert time.monotonic() < deadline, "the server never answered"
                time.sleep(0.05)
        assert status == 200
        assert body["success"] is True
        assert body["help"] == f"{base}/api/3/action/help_show?name=status_show"
        assert body["result"]["ckan_version"].startswith("2.")
        # the server writes to the folder (blob store, database, search index)
        uploaded = _upload(f"{base}/api/v1/resources/{rid}/upload", token, b"a,b\n1,2\n", "f.csv")
        assert uploaded["resource"]["url_type"] == "upload"
        status, body = _get(f"{base}/api/3/action/package_show?id=rivers")
        assert status == 200
        assert body["result"]["resources"][0]["url_type"] == "upload"

        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr  # not killed by the signal: a graceful shutdown
    assert "Traceback" not in stderr
    assert "Server stopped" in stderr
    # the folder is free again: another process writes and searches it
    with open_catalog(path) as catalog:
        assert catalog.resources.get(rid).url_type == "upload"
        catalog.datasets.create(DatasetInput(name="lakes", title="Lakes"))
        names = {d.name for d in catalog.search.datasets().results}
        assert names == {"rivers", "lakes"}


def test_serve_without_the_server_extra_names_the_extra(
    folder: tuple[Path, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(sys.modules, "opencatalog.api.serve", raising=False)
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn raises
    result = CliRunner().invoke(main, ["--catalog", str(folder[0]), "serve"])
    assert result.exit_code == 1, result.output
    assert "pip install 'opencatalog[server]'" in result.stderr
    assert "uvicorn is missing" in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_serve_refuses_a_folder_without_a_catalog(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--catalog", str(tmp_path / "none"), "serve"])
    assert result.exit_code == 1
    assert "No catalog in" in result.stderr
