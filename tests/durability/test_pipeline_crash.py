"""A crash between a resource's commit and anything after it loses no pipeline job.

A child process creates a dataset whose resource has an external URL in a folder catalog
(SQLite, job table in the same database) and is SIGKILLed as soon as the transaction has
committed, before the after-commit hooks and before any worker could run. Reopened, the
catalog has the dataset, its resource's ``pending`` file record and exactly one pending
``pipeline`` job, which then runs to completion.
"""

from __future__ import annotations

import http.server
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from opencatalog import open_catalog

HERE = Path(__file__).parent
CSV = b"site,finding\nSvalbard,walrusine\n"
CHEAP = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/csv")
        self.send_header("Content-Length", str(len(CSV)))
        self.end_headers()
        self.wfile.write(CSV)

    def log_message(self, *args: Any) -> None:
        pass


def test_a_job_enqueued_with_a_change_survives_a_kill_right_after_the_commit(
    tmp_path: Path,
) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    folder = tmp_path / "cat"
    settings = {
        "password_hash_params": CHEAP,
        "create_unowned_dataset": True,
        "fetch_allowed_networks": ["127.0.0.1/32"],
        "fetch_allowed_ports": [port],
        "fetch_host_interval": 0,
    }
    (folder).mkdir()
    (folder / "opencatalog.toml").write_text(
        "[opencatalog]\n"
        "password_hash_params = { time_cost = 1, memory_cost = 8, parallelism = 1 }\n"
        "create_unowned_dataset = true\n",
        encoding="utf-8",
    )
    open_catalog(folder).close()
    try:
        child = subprocess.run(
            [
                sys.executable,
                str(HERE / "_pipeline_writer.py"),
                str(folder),
                f"http://127.0.0.1:{port}/x.csv",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert child.returncode == -signal.SIGKILL, child.stderr
        assert child.stdout == "committed\n"

        with open_catalog(folder, run_jobs_in_process=False, **settings) as catalog:
            ds = catalog.datasets.get("crash")
            rid = ds.resources[0].id
            assert catalog.pipeline.status(rid).status == "pending"
            jobs = catalog.jobs.list(kind="pipeline")
            assert len(jobs) == 1 and jobs[0].payload == {"resource_id": rid}
            assert jobs[0].status.value == "pending"
            assert catalog.jobs.run_pending() == 1
            report = catalog.pipeline.status(rid)
            assert report.status == "complete" and report.format == "CSV"
            assert catalog.search.everything("walrusine").count == 1
    finally:
        server.shutdown()
        server.server_close()
