"""The resource pipeline: what the catalog learns from a resource's bytes.

One ``pipeline`` job processes one resource, as the system actor, in these steps (each is
idempotent: blobs are content-addressed, so a step run twice writes nothing new):

1. **fetch**: an external URL is downloaded through the catalog's SSRF-guarded fetcher into
   the blob store (size and time capped, one request per host per interval); an upload's
   bytes are already stored, so the step is skipped. A failed fetch fails the job: the
   error is recorded on the resource and the queue retries the job after its backoff, then
   dead-letters it after ``max_attempts``; the bytes fetched before (if any) are kept.
2. **hash**: the SHA-256 (the blob's content address) and the size.
3. **detect**: the real format, MIME type and text encoding, from the first bytes, the
   name and the declared labels (a mislabelled file is reported, content wins).
4. **extract**: bounded plain text for the contents search index, stored as a UTF-8 blob.
5. **preview**: a small JSON preview (first rows of a table, first bytes of a text).

Steps 3-5 fail soft: an error is written in the step log and the run still completes. Every
blob is written before the one unit of work that commits the results: the
:class:`~opencatalog.domain.files.ResourceFile` record (status, steps, blob keys), the
resource's ``hash``/``size``/``mimetype`` (and ``format`` when it had none) as a change of
its dataset (new revision, an activity), and a ``contents`` outbox entry for the indexer.

A resource changed while its job ran is re-read at the commit: if it is gone, or its URL (or
its upload) is no longer the one processed, the results are dropped (the change that made
them stale enqueued the next job). What triggers a job: creating or changing an external
URL (see :mod:`opencatalog.services.datasets`), an upload, a link check that sees the file
changed, :meth:`PipelineService.run` and :meth:`PipelineService.enqueue_all`.
"""

from __future__ import annotations

import io
import logging
import tempfile
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, BinaryIO, cast

import attrs
from attrs import frozen

from opencatalog.domain.files import PipelineStatus, ResourceFile
from opencatalog.domain.jobs import Job, JobFailed, StepLog, StepStatus
from opencatalog.domain.model import Dataset, Resource
from opencatalog.domain.permissions import Action
from opencatalog.errors import ConfigurationError, NotFound, OpenCatalogError, ValidationFailed
from opencatalog.pipeline.detect import HEAD_BYTES, Detection, detect
from opencatalog.pipeline.extract import extract_text
from opencatalog.pipeline.preview import make_preview, preview_to_json
from opencatalog.ports.blobs import BlobStore, is_blob_key
from opencatalog.ports.storage import DatasetFilter

from ._base import Call, Principal, Service, ServiceContext, require_ref

__all__ = [
    "CONTENTS_TOPIC",
    "JOB_KIND",
    "PipelineLimits",
    "PipelineReport",
    "PipelineRunner",
    "PipelineService",
    "is_external",
    "job_key",
    "request_processing",
]

log = logging.getLogger("opencatalog.pipeline")

JOB_KIND = "pipeline"
"""The job kind of a pipeline run; its payload is ``{"resource_id": ...}``."""

CONTENTS_TOPIC = "contents"
"""The outbox topic telling the indexer that a resource's extracted text changed or went."""

_SPOOL_IN_MEMORY = 8 * 1024 * 1024


def job_key(resource_id: str) -> str:
    """The dedupe key of a resource's pipeline jobs: one pending job per resource."""
    return f"pipeline:{resource_id}"


def is_external(resource: Resource) -> bool:
    """Whether the resource points at an external http(s) URL the pipeline fetches."""
    if resource.url_type == "upload":
        return False
    url = resource.url.strip().lower()
    return url.startswith(("http://", "https://"))


def _uploaded(resource: Resource, record: ResourceFile | None) -> bool:
    return (
        resource.url_type == "upload"
        and record is not None
        and record.uploaded
        and record.blob_key is not None
    )


def request_processing(
    call: Call, dataset_id: str, resource_id: str, *, new: bool = False
) -> Job | None:
    """Enqueue a pipeline job for a resource in ``call``'s transaction (deduplicated per
    resource) and mark its record ``pending``. ``new`` skips reading a record that cannot
    exist yet. Returns the job when the queue enqueued it inside the transaction."""
    job = call.enqueue(JOB_KIND, {"resource_id": resource_id}, dedupe_key=job_key(resource_id))
    files = call.uow.files
    record = None if new else files.get(resource_id)
    if record is None:
        record = ResourceFile(resource_id=resource_id, package_id=dataset_id, updated=call.now)
    files.put(
        attrs.evolve(
            record,
            package_id=dataset_id,
            status=PipelineStatus.PENDING,
            error=None,
            job_id=job.id if job is not None else record.job_id,
            updated=call.now,
        )
    )
    return job


@frozen(kw_only=True)
class PipelineLimits:
    """Bounds of one pipeline run. ``max_bytes`` caps a stored file (the fetcher has its own
    cap, normally the same); the extraction reads at most ``extract_max_bytes`` of it, keeps
    ``text_max_chars`` characters and stops after ``extract_seconds``."""

    max_bytes: int = 100 * 1024 * 1024
    extract_max_bytes: int = 10 * 1024 * 1024
    text_max_chars: int = 1_000_000
    extract_seconds: float = 30.0


@frozen(kw_only=True)
class PipelineReport:
    """What the pipeline knows about one resource (CKAN-style ``pipeline-status``).

    ``status`` is ``pending``, ``processing``, ``complete``, ``error``, or None when the
    resource was never processed. ``steps`` is the last run's step log; ``error`` the last
    failure. ``sha256``, ``size``, ``mimetype``, ``format`` and ``encoding`` describe the
    stored bytes; ``has_text``/``has_preview`` say whether extracted text and a preview exist.
    """

    resource_id: str
    package_id: str
    status: str | None
    job_id: str | None = None
    error: str | None = None
    steps: tuple[StepLog, ...] = ()
    sha256: str | None = None
    size: int | None = None
    mimetype: str | None = None
    format: str | None = None
    encoding: str | None = None
    uploaded: bool = False
    has_text: bool = False
    text_truncated: bool = False
    has_preview: bool = False
    source_url: str | None = None
    updated: datetime | None = None

    @classmethod
    def of(cls, resource_id: str, package_id: str, record: ResourceFile | None) -> PipelineReport:
        if record is None:
            return cls(resource_id=resource_id, package_id=package_id, status=None)
        return cls(
            resource_id=resource_id,
            package_id=package_id,
            status=record.status.value,
            job_id=record.job_id,
            error=record.error,
            steps=record.steps,
            sha256=record.sha256,
            size=record.size,
            mimetype=record.mimetype,
            format=record.format,
            encoding=record.encoding,
            uploaded=record.uploaded,
            has_text=record.text_key is not None,
            text_truncated=record.text_truncated,
            has_preview=record.preview_key is not None,
            source_url=record.source_url,
            updated=record.updated,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "resource_id": self.resource_id,
            "package_id": self.package_id,
            "status": self.status,
            "job_id": self.job_id,
            "error": self.error,
            "steps": [step.to_dict() for step in self.steps],
            "sha256": self.sha256,
            "size": self.size,
            "mimetype": self.mimetype,
            "format": self.format,
            "encoding": self.encoding,
            "uploaded": self.uploaded,
            "has_text": self.has_text,
            "text_truncated": self.text_truncated,
            "has_preview": self.has_preview,
            "source_url": self.source_url,
            "updated": self.updated.isoformat() if self.updated else None,
        }


class PipelineService(Service):
    """Running the resource pipeline and reading its outcome (``catalog.pipeline``)."""

    def _holder(self, call: Call, resource_id: str, action: Action | None) -> Dataset:
        """The dataset holding the resource, if the actor may read it (NotFound otherwise),
        then checked for ``action``."""
        require_ref(resource_id)
        found = call.uow.datasets.find_by_resource(resource_id)
        if found is None or not self._policy.can_read_dataset(call.actor, found):
            raise NotFound("Resource not found")
        if action is None:
            return found
        dataset = call.uow.datasets.get(found.id, for_update=True) or found
        self._require(call, action, self._policy.role_for_dataset(call.actor, dataset))
        return dataset

    def run(self, resource_id: str) -> Job:
        """Queue a pipeline run for one resource and return its job (the pending one already
        queued for the resource, if any). Needs the right to update the resource's dataset;
        the resource must have an external URL or an uploaded file (else ValidationFailed)."""
        queue = self._ctx.task_queue
        if queue is None:
            raise ConfigurationError("This catalog has no job queue (setting 'queue')")
        with self._call(write=True) as call:
            dataset = self._holder(call, resource_id, Action.DATASET_UPDATE)
            resource = dataset.resource(resource_id)
            assert resource is not None
            record = call.uow.files.get(resource_id)
            uploaded = _uploaded(resource, record)
            if not (uploaded or is_external(resource)):
                raise ValidationFailed(
                    {"url": ["The resource has neither an external http(s) URL nor an upload"]}
                )
            job = request_processing(call, dataset.id, resource_id)
            call.commit()
        if job is None:  # enqueued after the commit: the dedupe key finds that job
            job = queue.enqueue(
                JOB_KIND, {"resource_id": resource_id}, dedupe_key=job_key(resource_id)
            )
        return job

    def enqueue_all(
        self, *, batch_size: int = 500, progress: Callable[[int], None] | None = None
    ) -> int:
        """Queue a run for every resource of every active dataset that has an external URL
        or an upload (sysadmins). Datasets are handled ``batch_size`` at a time, one
        transaction each; ``progress`` gets the number of jobs queued so far after each
        batch. Returns how many resources were queued (pending jobs are reused)."""
        if batch_size < 1:
            raise ValidationFailed({"batch_size": ["Must be at least 1"]})
        with self._call() as call:
            self._require(call, Action.JOBS_ADMIN, self._policy.base_role(call.actor))
        queued = 0
        offset = 0
        while True:
            with self._call(write=True) as call:
                page = call.uow.datasets.list(DatasetFilter(), offset=offset, limit=batch_size)
                if not page:
                    break
                ids = [r.id for ds in page for r in ds.resources]
                records = {f.resource_id: f for f in call.uow.files.get_many(ids)}
                for ds in page:
                    for res in ds.resources:
                        if _uploaded(res, records.get(res.id)) or is_external(res):
                            request_processing(call, ds.id, res.id)
                            queued += 1
                call.commit()
            offset += len(page)
            if progress is not None:
                progress(queued)
        return queued

    def status(self, resource_id: str) -> PipelineReport:
        """What the pipeline knows about a resource; readable by whoever may read its
        dataset (NotFound otherwise)."""
        with self._call() as call:
            dataset = self._holder(call, resource_id, None)
            return PipelineReport.of(resource_id, dataset.id, call.uow.files.get(resource_id))

    def stats(self) -> dict[str, int]:
        """How many resources are in each pipeline status (sysadmins)."""
        with self._call() as call:
            self._require(call, Action.JOBS_ADMIN, self._policy.base_role(call.actor))
            counts = call.uow.files.status_counts()
        return {status.value: counts.get(status, 0) for status in PipelineStatus}


# -- the job handler ----------------------------------------------------------------------


class _Stale(Exception):
    """The resource changed while the job ran; the results are dropped."""


@frozen(kw_only=True)
class _Source:
    """What a run processes: the resource as read at the start and where its bytes are."""

    dataset_id: str
    resource: Resource
    url: str | None  # the external URL fetched (None for an upload)
    upload_key: str | None  # the uploaded blob (None for an external URL)


class _StepLog:
    """The step log of one run, with timing from the catalog's clock."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self.steps: list[StepLog] = []
        self._started: datetime | None = None

    def start(self) -> None:
        self._started = self._clock()

    def add(self, name: str, status: StepStatus, message: str | None = None) -> None:
        started = self._started or self._clock()
        self.steps.append(
            StepLog(
                name=name,
                status=status,
                message=message,
                started=started,
                finished=self._clock(),
            )
        )
        self._started = None


class PipelineRunner(Service):
    """The ``pipeline`` job handler: ``runner(job)`` processes ``job.payload["resource_id"]``
    as the system actor and returns the step log (see the module docstring).

    Built from the catalog's :class:`ServiceContext`: it needs ``blobs`` and, for external
    URLs, ``fetcher``.
    """

    def __init__(self, ctx: ServiceContext, *, limits: PipelineLimits | None = None) -> None:
        super().__init__(ctx, Principal.system())
        self.limits = limits or PipelineLimits()

    def __call__(self, job: Job) -> Sequence[StepLog]:
        resource_id = job.payload.get("resource_id")
        log_ = _StepLog(self._ctx.clock)
        if not isinstance(resource_id, str) or not resource_id:
            log_.add("fetch", StepStatus.SKIPPED, "the job names no resource")
            return log_.steps
        blobs = self._ctx.blobs
        if blobs is None:
            raise JobFailed("this catalog has no blob store (setting 'blobs')")
        source = self._begin(job, resource_id)
        if source is None:
            log_.add("fetch", StepStatus.SKIPPED, "the resource no longer exists")
            return log_.steps
        if source.url is None and source.upload_key is None:
            log_.add("fetch", StepStatus.SKIPPED, "no external URL and no uploaded file")
            self._finish_without_content(job, source, log_)
            return log_.steps
        key = self._fetch(job, source, blobs, log_)
        digest = key.rsplit("/", 1)[1]
        log_.start()
        size = blobs.size(key)
        log_.add("hash", StepStatus.OK, f"sha256 {digest}, {size} bytes")
        detection = self._detect(source, blobs, key, log_)
        text_key, text_truncated = self._extract(blobs, key, detection, log_)
        preview_key = self._preview(blobs, key, detection, log_)
        result = attrs.evolve(
            ResourceFile(
                resource_id=resource_id, package_id=source.dataset_id, updated=self._ctx.clock()
            ),
            blob_key=key,
            uploaded=source.upload_key is not None,
            size=size,
            sha256=digest,
            mimetype=detection.mimetype if detection else None,
            format=detection.format if detection else None,
            encoding=detection.encoding if detection else None,
            text_key=text_key,
            text_truncated=text_truncated,
            preview_key=preview_key,
            source_url=source.url,
        )
        try:
            self._commit(job, source, result, log_)
        except _Stale as exc:
            log_.add("commit", StepStatus.SKIPPED, str(exc))
        return log_.steps

    # -- the steps ------------------------------------------------------------------------

    def _begin(self, job: Job, resource_id: str) -> _Source | None:
        """Read the resource and mark its record ``processing`` (one unit of work)."""
        with self._call(write=True) as call:
            dataset = call.uow.datasets.find_by_resource(resource_id)
            resource = dataset.resource(resource_id) if dataset is not None else None
            if dataset is None or resource is None:
                return None
            record = call.uow.files.get(resource_id) or ResourceFile(
                resource_id=resource_id, package_id=dataset.id, updated=call.now
            )
            upload_key = url = None
            if resource.url_type == "upload":
                upload_key = record.blob_key if record.uploaded else None
            elif is_external(resource):
                url = resource.url.strip()
            call.uow.files.put(
                attrs.evolve(
                    record,
                    package_id=dataset.id,
                    status=PipelineStatus.PROCESSING,
                    job_id=job.id,
                    updated=call.now,
                )
            )
            call.commit()
        return _Source(dataset_id=dataset.id, resource=resource, url=url, upload_key=upload_key)

    def _fetch(self, job: Job, source: _Source, blobs: BlobStore, log_: _StepLog) -> str:
        """The blob key of the bytes to process; records the failure and raises JobFailed
        when there are none."""
        log_.start()
        if source.upload_key is not None:
            key = source.upload_key
            if not is_blob_key(key) or not blobs.exists(key):
                message = "the uploaded file is missing from the blob store"
                log_.add("fetch", StepStatus.ERROR, message)
                self._fail(job, source, message, log_)
            log_.add("fetch", StepStatus.SKIPPED, "uploaded file, already stored")
            return key
        assert source.url is not None
        fetcher = self._ctx.fetcher
        if fetcher is None:
            message = "fetch: this catalog does not fetch external URLs (no fetcher)"
            log_.add("fetch", StepStatus.ERROR, message)
            self._fail(job, source, message, log_)
        assert fetcher is not None
        try:
            with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY) as spooled:
                spool = cast(BinaryIO, spooled)
                fetched = fetcher.fetch(source.url, spool)
                spool.seek(0)
                info = blobs.put(spool, max_size=self.limits.max_bytes)
        except OpenCatalogError as exc:  # FetchError, BlobTooLarge, BackendError
            message = f"fetch failed: {exc}"
            log_.add("fetch", StepStatus.ERROR, message)
            self._fail(job, source, message, log_)
            raise  # pragma: no cover - _fail raises
        except Exception:
            log.exception("fetch of resource %s failed", source.resource.id)
            message = "fetch failed: the file could not be downloaded and stored"
            log_.add("fetch", StepStatus.ERROR, message)
            self._fail(job, source, message, log_)
            raise  # pragma: no cover - _fail raises
        redirected = f" after {len(fetched.redirects)} redirect(s)" if fetched.redirects else ""
        log_.add("fetch", StepStatus.OK, f"HTTP {fetched.status}, {info.size} bytes{redirected}")
        return info.key

    def _detect(
        self, source: _Source, blobs: BlobStore, key: str, log_: _StepLog
    ) -> Detection | None:
        log_.start()
        try:
            head = blobs.read_range(key, 0, HEAD_BYTES)
            resource = source.resource
            detection = detect(
                head,
                filename=resource.url or resource.name,
                declared_type=resource.mimetype,
                declared_format=resource.format,
            )
        except Exception as exc:
            log.exception("detection failed for resource %s", source.resource.id)
            log_.add("detect", StepStatus.ERROR, f"detection failed: {type(exc).__name__}")
            return None
        if detection.empty:
            log_.add("detect", StepStatus.OK, "empty file")
            return detection
        parts = [f"{detection.format or 'unknown format'} ({detection.mimetype})"]
        if detection.encoding:
            parts.append(f"encoding {detection.encoding}")
        if detection.mismatch:
            parts.append(f"mislabelled: {detection.mismatch}")
        log_.add("detect", StepStatus.OK, ", ".join(parts))
        return detection

    def _extract(
        self, blobs: BlobStore, key: str, detection: Detection | None, log_: _StepLog
    ) -> tuple[str | None, bool]:
        log_.start()
        if detection is None:
            log_.add("extract", StepStatus.SKIPPED, "the format is unknown")
            return None, False
        if detection.empty:
            log_.add("extract", StepStatus.SKIPPED, "empty file")
            return None, False
        limits = self.limits
        try:
            with blobs.open(key) as stream:
                extraction = extract_text(
                    stream,
                    detection,
                    max_bytes=limits.extract_max_bytes,
                    max_chars=limits.text_max_chars,
                    max_seconds=limits.extract_seconds,
                )
            if not extraction.text:
                log_.add("extract", StepStatus.SKIPPED, extraction.note or "no text")
                return None, False
            text = extraction.text.encode("utf-8", "replace")
            info = blobs.put(io.BytesIO(text))
        except Exception as exc:
            log.exception("text extraction failed")
            log_.add("extract", StepStatus.ERROR, f"extraction failed: {type(exc).__name__}")
            return None, False
        message = f"{len(extraction.text)} characters"
        if extraction.rows is not None:
            message += f", {extraction.rows} rows"
        if extraction.truncated:
            message += ", truncated"
        if extraction.note:
            message += f" ({extraction.note})"
        log_.add("extract", StepStatus.OK, message)
        return info.key, extraction.truncated

    def _preview(
        self, blobs: BlobStore, key: str, detection: Detection | None, log_: _StepLog
    ) -> str | None:
        log_.start()
        if detection is None or detection.empty:
            reason = "empty file" if detection is not None else "the format is unknown"
            log_.add("preview", StepStatus.SKIPPED, reason)
            return None
        try:
            with blobs.open(key) as stream:
                preview = make_preview(stream, detection)
            if preview.kind == "none":
                log_.add("preview", StepStatus.SKIPPED, preview.note or "no preview")
                return None
            info = blobs.put(io.BytesIO(preview_to_json(preview)))
        except Exception as exc:
            log.exception("preview failed")
            log_.add("preview", StepStatus.ERROR, f"preview failed: {type(exc).__name__}")
            return None
        what = f"{len(preview.rows)} rows" if preview.kind == "table" else "text"
        truncated = ", truncated" if preview.truncated else ""
        log_.add("preview", StepStatus.OK, f"{preview.kind} preview: {what}{truncated}")
        return info.key

    # -- recording -----------------------------------------------------------------------

    def _current(self, call: Call, source: _Source) -> tuple[Dataset, Resource, ResourceFile]:
        """The dataset, resource and record as they are now; _Stale if the resource is
        gone or no longer points at what this run processed."""
        dataset = call.uow.datasets.find_by_resource(source.resource.id)
        resource = dataset.resource(source.resource.id) if dataset is not None else None
        if dataset is None or resource is None:
            raise _Stale("the resource was deleted while it was processed")
        dataset = call.uow.datasets.get(dataset.id, for_update=True) or dataset
        resource = dataset.resource(source.resource.id)
        assert resource is not None
        record = call.uow.files.get(resource.id) or ResourceFile(
            resource_id=resource.id, package_id=dataset.id, updated=call.now
        )
        if source.url is not None:
            if not is_external(resource) or resource.url.strip() != source.url:
                raise _Stale("the URL changed while it was processed; the next run handles it")
        elif (
            resource.url_type != "upload"
            or not record.uploaded
            or record.blob_key != source.upload_key
        ):
            raise _Stale("another file was uploaded while this one was processed")
        return dataset, resource, record

    def _commit(self, job: Job, source: _Source, result: ResourceFile, log_: _StepLog) -> None:
        """Store the results in one unit of work: the record, the resource's facts (a
        dataset change), the contents outbox entry."""
        with self._call(write=True) as call:
            dataset, resource, record = self._current(call, source)
            call.uow.files.put(
                attrs.evolve(
                    record,
                    package_id=dataset.id,
                    blob_key=result.blob_key,
                    uploaded=result.uploaded,
                    size=result.size,
                    sha256=result.sha256,
                    mimetype=result.mimetype,
                    format=result.format,
                    encoding=result.encoding,
                    text_key=result.text_key,
                    text_truncated=result.text_truncated,
                    preview_key=result.preview_key,
                    source_url=result.source_url if source.url is not None else record.source_url,
                    status=PipelineStatus.COMPLETE,
                    job_id=job.id,
                    error=None,
                    steps=tuple(log_.steps),
                    updated=call.now,
                )
            )
            changed = attrs.evolve(
                resource,
                hash=f"sha256:{result.sha256}",
                size=result.size,
                mimetype=result.mimetype or resource.mimetype,
                format=resource.format or result.format,
            )
            if changed != resource:
                changed = attrs.evolve(changed, metadata_modified=call.now)
                new = attrs.evolve(
                    dataset,
                    resources=tuple(
                        changed if r.id == resource.id else r for r in dataset.resources
                    ),
                    metadata_modified=call.now,
                    revision=dataset.revision + 1,
                )
                call.uow.datasets.save(new)
                call.changed("dataset", new.id)
                call.dataset_activity("updated", new)
            call.changed(CONTENTS_TOPIC, resource.id)
            call.commit()

    def _finish_without_content(self, job: Job, source: _Source, log_: _StepLog) -> None:
        with self._call(write=True) as call:
            record = call.uow.files.get(source.resource.id)
            if record is not None and call.uow.datasets.find_by_resource(record.resource_id):
                call.uow.files.put(
                    attrs.evolve(
                        record,
                        status=PipelineStatus.COMPLETE,
                        job_id=job.id,
                        error=None,
                        steps=tuple(log_.steps),
                        updated=call.now,
                    )
                )
                call.commit()

    def _fail(self, job: Job, source: _Source, message: str, log_: _StepLog) -> None:
        """Record a failed run on the resource (``error`` on the last attempt, else
        ``pending`` for the retry) and raise JobFailed so the queue retries the job."""
        last = job.attempts >= job.max_attempts
        if not last:
            message_shown = f"{message} (attempt {job.attempts} of {job.max_attempts})"
        else:
            message_shown = message
        try:
            with self._call(write=True) as call:
                if call.uow.datasets.find_by_resource(source.resource.id) is not None:
                    record = call.uow.files.get(source.resource.id) or ResourceFile(
                        resource_id=source.resource.id,
                        package_id=source.dataset_id,
                        updated=call.now,
                    )
                    call.uow.files.put(
                        attrs.evolve(
                            record,
                            status=PipelineStatus.ERROR if last else PipelineStatus.PENDING,
                            job_id=job.id,
                            error=message_shown,
                            steps=tuple(log_.steps),
                            updated=call.now,
                        )
                    )
                    call.commit()
        except OpenCatalogError:
            log.exception("could not record the failure of resource %s", source.resource.id)
        raise JobFailed(message, log_.steps)
