"""The README's first command runs examples/quickstart.py: it must work on a fresh folder
and again on the same folder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "quickstart.py"


def test_the_quickstart_runs_twice_on_one_folder(tmp_path: Path) -> None:
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, str(SCRIPT), str(tmp_path / "catalog")],
            capture_output=True,
            text=True,
            timeout=300,
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        )
        assert done.returncode == 0, done.stderr
        out = done.stdout
        assert "pipeline complete" in out
        assert "file: CSV, 68 bytes, sha256:" in out
        assert "search 'glasswater' (file contents): ['river-levels-2025']" in out
