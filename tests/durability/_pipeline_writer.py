"""Child process of test_pipeline_crash: create a dataset whose resource has an external URL
in a folder catalog, then die by SIGKILL the moment the write has committed, before any
after-commit hook (indexing, waking a worker) or any worker runs.

Usage: python _pipeline_writer.py FOLDER URL
"""

from __future__ import annotations

import os
import signal
import sys

from opencatalog import open_catalog
from opencatalog.domain.commands import DatasetInput, ResourceInput


def main() -> None:
    folder, url = sys.argv[1], sys.argv[2]
    catalog = open_catalog(folder, run_jobs_in_process=False)

    def die() -> None:
        sys.stdout.write("committed\n")
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    catalog._ctx.after_commit.insert(0, die)  # the first thing after the commit
    catalog.datasets.create(DatasetInput(name="crash", resources=(ResourceInput(url=url),)))
    sys.stdout.write("survived\n")  # never reached


if __name__ == "__main__":
    main()
