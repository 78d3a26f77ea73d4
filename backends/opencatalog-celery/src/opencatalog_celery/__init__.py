"""opencatalog-celery: run opencatalog's background jobs on Celery, with RabbitMQ or Redis.

Install it next to opencatalog; it registers itself in the ``opencatalog.queue`` entry-point
group under ``celery``. The URL is ``celery+`` followed by the Celery broker URL::

    celery+amqp://guest:guest@127.0.0.1:5672//     RabbitMQ (vhost "/")
    celery+redis://127.0.0.1:6379/0                Redis (database 0)

with optional query parameters that belong to the queue (the others stay on the broker URL):

``queue``
    the broker queue (and exchange) the wake-ups go through; default ``opencatalog``.
``sweep_interval``
    seconds between two sweeps run by Celery beat (``opencatalog.sweep``); default 60.
``sweep_grace``
    seconds a runnable job may wait before a sweep publishes a wake-up for it; default 30.

Job state never leaves storage: the queue is built on the catalog's SQL storage (option
``storage=``, like ``sql://``) and the broker carries only wake-ups (see
:mod:`opencatalog_celery.queue`). A worker process binds the job handlers and runs Celery::

    queue = CeleryTaskQueue.from_url("celery+redis://127.0.0.1:6379/0", storage=storage)
    app = queue.bind({"pipeline": run_pipeline}, lease=timedelta(minutes=5))
    app.Worker(pool="threads", concurrency=4, beat=True).start()

or ``opencatalog-celery worker --handlers mypackage.jobs:HANDLERS``.
"""

from opencatalog_celery.queue import (
    DEFAULT_QUEUE_NAME,
    TASK_RUN_JOB,
    TASK_SWEEP,
    CeleryTaskQueue,
    parse_url,
)
from opencatalog_celery.runner import JobRunner

__all__ = [
    "DEFAULT_QUEUE_NAME",
    "TASK_RUN_JOB",
    "TASK_SWEEP",
    "CeleryTaskQueue",
    "JobRunner",
    "parse_url",
]
