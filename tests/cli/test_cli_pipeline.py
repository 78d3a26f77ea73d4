"""``opencatalog pipeline`` and ``opencatalog worker``: queue, run, report; a worker process
stopped with SIGTERM finishes the job it is running."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from opencatalog import open_catalog
from opencatalog.cli import main
from opencatalog.domain.commands import DatasetInput, ResourceInput

CSV = b"town,bird\nTromso,ptarmiganesque\n"


class _Server:
    """Serves CSV at /data.csv; /slow.csv waits for ``gate`` (set by the test)."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/slow.csv":
                    outer.entered.set()
                    outer.gate.wait(60)
                elif self.path != "/data.csv":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/csv")
                self.send_header("Content-Length", str(len(CSV)))
                self.end_headers()
                self.wfile.write(CSV)

            def log_message(self, *args: Any) -> None:
                pass

        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        self.port = self.http.server_address[1]
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server()
    yield srv
    srv.gate.set()
    srv.http.shutdown()
    srv.http.server_close()


@pytest.fixture
def folder(tmp_path: Path, server: _Server) -> Path:
    """A catalog folder whose settings let the fetcher reach the test server only."""
    path = tmp_path / "cat"
    path.mkdir()
    (path / "opencatalog.toml").write_text(
        "[opencatalog]\n"
        "password_hash_params = { time_cost = 1, memory_cost = 8, parallelism = 1 }\n"
        "create_unowned_dataset = true\n"
        "run_jobs_in_process = false\n"
        'fetch_allowed_networks = ["127.0.0.1/32"]\n'
        f"fetch_allowed_ports = [{server.port}]\n"
        "fetch_host_interval = 0\n",
        encoding="utf-8",
    )
    open_catalog(path).close()
    return path


def add(folder: Path, url: str) -> str:
    with open_catalog(folder) as catalog:
        ds = catalog.datasets.create(
            DatasetInput(name="birds", resources=(ResourceInput(url=url),))
        )
        return ds.resources[0].id


def cli(folder: Path, *args: str, code: int = 0) -> Result:
    runner = CliRunner(env={"OPENCATALOG_CATALOG": None, "OPENCATALOG_CONFIG": None})
    result = runner.invoke(main, ["--catalog", str(folder), *args])
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    assert "Traceback" not in result.output
    return result


def test_run_status_stats_and_worker_once(folder: Path, server: _Server) -> None:
    rid = add(folder, server.url("/data.csv"))
    status = json.loads(cli(folder, "pipeline", "status", rid).stdout)
    assert status["status"] == "pending" and status["steps"] == []
    queued = json.loads(cli(folder, "pipeline", "run", rid).stdout)
    assert queued["status"] == "pending"
    result = cli(folder, "worker", "--once")
    assert "Ran 1 job(s): 1 complete" in result.stderr
    status = json.loads(cli(folder, "pipeline", "status", rid).stdout)
    assert status["status"] == "complete" and status["format"] == "CSV"
    assert [s["name"] for s in status["steps"]] == ["fetch", "hash", "detect", "extract", "preview"]
    stats = json.loads(cli(folder, "pipeline", "stats").stdout)
    assert stats["complete"] == 1
    jobs = json.loads(cli(folder, "jobs", "stats").stdout)
    assert jobs["complete"] == 1 and jobs["pending"] == 0


def test_run_with_wait_and_enqueue_all(folder: Path, server: _Server) -> None:
    rid = add(folder, server.url("/data.csv"))
    cli(folder, "worker", "--once")
    done = json.loads(cli(folder, "pipeline", "run", rid, "--wait").stdout)
    assert done["status"] == "complete"
    assert json.loads(cli(folder, "pipeline", "enqueue-all").stdout) == {"queued": 1}
    assert json.loads(cli(folder, "jobs", "stats").stdout)["pending"] == 1


def test_unknown_resource_is_a_clean_error(folder: Path) -> None:
    result = cli(folder, "pipeline", "status", "no-such-resource", code=1)
    assert "Resource not found" in result.stderr


def test_worker_stops_on_sigterm_after_finishing_its_job(folder: Path, server: _Server) -> None:
    rid = add(folder, server.url("/slow.csv"))
    env = {**os.environ, "OPENCATALOG_CATALOG": str(folder)}
    env.pop("OPENCATALOG_CONFIG", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from opencatalog.cli import main; main()",
            "worker",
            "--poll",
            "0.1",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.entered.wait(60), "the worker never fetched"
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)  # the signal is handled while the job is still running
        assert proc.poll() is None
        server.gate.set()
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    assert "Worker stopped: 1 complete" in stderr
    with open_catalog(folder) as catalog:
        assert catalog.pipeline.status(rid).status == "complete"
        assert catalog.jobs.stats() == {"pending": 0, "processing": 0, "complete": 1, "error": 0}
