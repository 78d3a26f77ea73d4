"""The composition root: :func:`open_catalog` builds a Catalog from settings or a location."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from opencatalog import registry
from opencatalog.config import Settings, load_settings
from opencatalog.domain.permissions import Policy
from opencatalog.errors import BackendError, ConfigurationError
from opencatalog.pipeline.fetch import DEFAULT_ALLOWED_PORTS, Fetcher
from opencatalog.ports.blobs import BlobStore
from opencatalog.ports.queue import TaskQueue
from opencatalog.ports.search import SearchIndex
from opencatalog.ports.security import PasswordHasher
from opencatalog.ports.storage import Storage
from opencatalog.services._base import ServiceContext
from opencatalog.services.catalog import Catalog
from opencatalog.services.files import SECRET_KEY_FILE, read_or_create_secret_key
from opencatalog.services.health import HEALTH_JOB, run_health_job
from opencatalog.services.indexing import Indexer, blob_text_reader
from opencatalog.services.jobs import JobHandler
from opencatalog.services.pipeline import CONTENTS_TOPIC, JOB_KIND, PipelineLimits, PipelineRunner
from opencatalog.worker import InProcessJobs, WakingQueue

__all__ = ["CATALOG_DB", "CONFIG_FILE", "open_catalog"]

log = logging.getLogger("opencatalog")

#: File names inside a catalog folder.
CATALOG_DB = "catalog.db"
CONFIG_FILE = "opencatalog.toml"
INDEX_DIR = "index"
BLOBS_DIR = "blobs"
#: How long a job claimed by the catalog's own worker stays leased without a heartbeat.
IN_PROCESS_LEASE = timedelta(minutes=5)
#: The in-process worker's poll interval: it is woken at once after a commit that enqueued a
#: job; the poll finds jobs due after a retry backoff and jobs enqueued by other processes.
IN_PROCESS_POLL = 5.0
#: The embedded search index of folder catalogs, chosen by measurement (docs/performance.md).
DEFAULT_EMBEDDED_SEARCH = "tantivy"


def _folder_settings(folder: Path, overrides: dict[str, Any]) -> Settings:
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / CONFIG_FILE
    values: dict[str, Any] = {
        "storage": f"sqlite:///{(folder / CATALOG_DB).resolve()}",
        "search": f"{DEFAULT_EMBEDDED_SEARCH}://{(folder / INDEX_DIR).resolve()}",
        "blobs": f"file://{(folder / BLOBS_DIR).resolve()}",
    }
    if config.exists():
        values.update(Settings.file_values(config))
    values.update(Settings.env_values())
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings.from_mapping(values)


def _upload_secret(settings: Settings, location: str | Path | None) -> bytes | None:
    """The key signing upload URLs: the ``secret_key`` setting, else a folder catalog's key
    file (made on first open), else None (a random key per process)."""
    if settings.secret_key:
        return settings.secret_key.encode("utf-8")
    if location is not None and "://" not in str(location):
        return read_or_create_secret_key(Path(location) / SECRET_KEY_FILE)
    return None


def open_catalog(
    location: str | Path | None = None,
    *,
    settings: Settings | None = None,
    storage: Storage | str | None = None,
    search: SearchIndex | str | None = None,
    blobs: BlobStore | str | None = None,
    queue: TaskQueue | str | None = None,
    password_hasher: PasswordHasher | None = None,
    initialize: bool = True,
    **overrides: Any,
) -> Catalog:
    """Open a catalog.

    * ``open_catalog()``: in memory (gone when the process ends);
    * ``open_catalog("./my-catalog")``: the embedded catalog in that folder (SQLite database
      ``catalog.db``, search index in ``index/``, files in ``blobs/``; settings from
      ``opencatalog.toml`` there if present), created if needed;
    * ``open_catalog("postgresql+psycopg://user@host/db")`` or any storage URL;
    * ``settings=Settings(...)`` or keyword overrides (``storage="sqlite:///x.db"``,
      ``search="tantivy:///idx"``, ``create_unowned_dataset=True``...); ``storage``,
      ``search``, ``blobs`` and ``queue`` also take ready-made port objects (fakes in tests).

    ``initialize`` creates or upgrades the storage schema. The returned catalog acts as the
    system actor; use ``catalog.as_user(name)`` to act for a user.

    Background jobs (the resource pipeline, link checks) run on a worker thread of the
    catalog itself unless ``run_jobs_in_process=False`` (then ``opencatalog worker``
    processes run them); ``catalog.jobs.run_pending()`` runs what is pending before it
    returns. Close the catalog (or use it as a context manager) to stop that thread.
    """
    # a URL given for a port is a setting; an object is a ready-made port
    if isinstance(storage, str):
        overrides["storage"], storage = storage, None
    if isinstance(search, str):
        overrides["search"], search = search, None
    if isinstance(blobs, str):
        overrides["blobs"], blobs = blobs, None
    if isinstance(queue, str):
        overrides["queue"], queue = queue, None
    if settings is not None and (location is not None or overrides):
        raise ConfigurationError("Give either settings or a location/overrides, not both")
    if settings is None:
        if location is None:
            settings = load_settings(**overrides)
        elif "://" in str(location):
            settings = load_settings(**{**overrides, "storage": str(location)})
        else:
            settings = _folder_settings(Path(location), overrides)
    closers: list[Callable[[], None]] = []
    store: Storage
    if isinstance(storage, Storage):
        store = storage
    else:
        options: dict[str, Any] = {}
        if registry.scheme_of(settings.storage) == "sqlite":
            options["synchronous"] = settings.sqlite_synchronous
        store = registry.create("storage", settings.storage, **options)
        closers.append(store.close)
    if initialize:
        store.initialize()
    queue_url = settings.queue
    task_queue: TaskQueue
    if isinstance(queue, TaskQueue):
        task_queue, queue_url = queue, type(queue).__name__
    else:
        if registry.scheme_of(queue_url) == "sql" and registry.scheme_of(settings.storage) not in (
            "sqlite",
            "postgresql",
        ):
            queue_url = "memory://"  # jobs live with the storage: in-memory storage, in-memory jobs
        # queues that keep their jobs in the catalog's storage (the SQL job table, Celery's
        # job state) are given it
        scheme = registry.scheme_of(queue_url)
        keeps_state_in_storage = scheme in ("sql", "celery")
        queue_options: dict[str, Any] = {"storage": store} if keeps_state_in_storage else {}
        task_queue = registry.create("queue", queue_url, **queue_options)
        closers.append(task_queue.close)  # closed before the storage (closers run last first)
    blob_store: BlobStore
    if isinstance(blobs, BlobStore):
        blob_store = blobs
    else:
        blob_store = registry.create("blobs", settings.blobs)
        closers.append(blob_store.close)
    search_index = None
    if search is not None:
        search_index = search
    elif settings.search and settings.search.lower() != "none":
        search_index = registry.create("search", settings.search)
        closers.append(search_index.close)
    if password_hasher is None:
        from opencatalog.adapters.argon2_hasher import Argon2PasswordHasher

        password_hasher = Argon2PasswordHasher(**dict(settings.password_hash_params))
    ctx = ServiceContext(
        storage=store,
        policy=Policy(
            create_unowned_dataset=settings.create_unowned_dataset,
            user_create_organizations=settings.user_create_organizations,
            user_create_groups=settings.user_create_groups,
        ),
        hasher=password_hasher,
        search_index=search_index,
        upload_secret=_upload_secret(settings, location),
        upload_max_bytes=settings.upload_max_bytes,
        blobs=blob_store,
        fetcher=_fetcher(settings),
    )
    jobs: InProcessJobs | None = None

    def wake() -> None:
        if jobs is not None:
            jobs.wake()

    waking = WakingQueue(task_queue, wake)
    ctx.task_queue = waking
    ctx.after_commit.append(waking.after_commit)
    notify = getattr(task_queue, "notify", None)
    if callable(notify):  # a queue that announces jobs enqueued inside a transaction
        ctx.after_commit.append(notify)
    handlers: dict[str, JobHandler] = {
        JOB_KIND: PipelineRunner(ctx, limits=PipelineLimits(max_bytes=settings.fetch_max_bytes)),
        HEALTH_JOB: functools.partial(run_health_job, ctx),
    }
    indexer = None
    if search_index is not None:
        indexer = Indexer(
            store,
            search_index,
            delay=settings.index_delay,
            text_reader=blob_text_reader(blob_store),
        )
        ctx.outbox_topics = frozenset({"dataset", CONTENTS_TOPIC})
        ctx.after_commit.append(indexer.notify)
        closers.append(indexer.close)  # runs before the index and storage close
        try:
            indexer.fill_if_empty()  # an index deleted or kept in memory: rebuild it whole
            indexer.drain()  # then apply what a crash left pending
            indexer.recover()  # and repair what a writer that died left half-applied
        except BackendError as exc:  # no schema yet (initialize=False on a new database)
            log.warning("search index not brought up to date at open: %s", exc)
    jobs = InProcessJobs(
        waking,
        handlers,
        background=settings.run_jobs_in_process,
        lease=IN_PROCESS_LEASE,
        poll_interval=IN_PROCESS_POLL,
        deadline=settings.job_deadline,
    )
    # stopped first on close (closers run last first): the running job finishes while the
    # indexer, the index, the blobs, the queue and the storage are still open
    closers.append(functools.partial(jobs.close, timeout=settings.job_deadline))
    jobs.start()
    info = {
        "settings": {
            "storage": settings.storage,
            "search": settings.search,
            "queue": queue_url,
            "blobs": settings.blobs if not isinstance(blobs, BlobStore) else type(blobs).__name__,
            "run_jobs_in_process": settings.run_jobs_in_process,
            "job_deadline": settings.job_deadline,
        }
    }
    return Catalog(
        ctx,
        on_close=closers,
        info=info,
        indexer=indexer,
        job_handlers=handlers,
        job_runner=jobs,
    )


def _fetcher(settings: Settings) -> Fetcher:
    """The SSRF-guarded fetcher the pipeline and the link checker share (one per-host rate
    budget per catalog)."""
    return Fetcher(
        max_bytes=settings.fetch_max_bytes,
        timeout=settings.fetch_timeout,
        per_host_interval=settings.fetch_host_interval,
        allowed_ports=settings.fetch_allowed_ports or DEFAULT_ALLOWED_PORTS,
        extra_allowed_networks=settings.fetch_allowed_networks,
    )
