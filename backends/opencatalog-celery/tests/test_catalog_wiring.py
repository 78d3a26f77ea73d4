"""A catalog opened with a Celery queue: job state in the catalog's own database, a
wake-up published once the change that enqueued the job commits."""

from __future__ import annotations

from pathlib import Path

from opencatalog import open_catalog
from opencatalog.domain.commands import DatasetInput, ResourceInput

from opencatalog_celery.queue import CeleryTaskQueue


def test_a_folder_catalog_keeps_celery_jobs_in_its_database(tmp_path: Path) -> None:
    catalog = open_catalog(
        tmp_path / "cat",
        queue="celery+memory://localhost/?queue=octest_wiring",
        run_jobs_in_process=False,
        create_unowned_dataset=True,
    )
    try:
        queue = catalog._ctx.task_queue.inner  # type: ignore[union-attr]
        assert isinstance(queue, CeleryTaskQueue)
        queue.app.control.purge()
        assert queue.waiting() == 0
        ds = catalog.datasets.create(
            DatasetInput(
                name="rivers", resources=[ResourceInput(url="https://example.org/rivers.csv")]
            )
        )
        # the job row was written in the dataset's transaction, into the catalog's database
        jobs = catalog.jobs.list(kind="pipeline")
        assert [j.payload["resource_id"] for j in jobs] == [ds.resources[0].id]
        # and announced to the broker by the after-commit hook, not left for the sweep
        assert queue.waiting() == 1
    finally:
        catalog.close()
