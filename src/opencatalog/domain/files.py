"""What the catalog knows about a resource's bytes: the stored copy, what the pipeline found
in it, and the health of its link.

A :class:`ResourceFile` exists for every resource whose content the catalog has handled: an
upload, or an external URL the pipeline fetched or the link checker visited. It is kept
apart from :class:`~opencatalog.domain.model.Resource` on purpose: a resource is what the
publisher wrote (CKAN's resource dict), a resource file is what the system derived, written
only by uploads, the pipeline and the link checker, never by a ``resource_update``. Purging
a resource removes its record; the blobs it named are then unreferenced and the orphan sweep
(``opencatalog gc``) removes them.

Blob keys are content addresses (``sha256/ab/cd/<hex>``, see :mod:`opencatalog.ports.blobs`),
so two resources with the same bytes share one blob and a re-run of a step writes nothing new.

Pipeline status follows the job that processes the resource::

    pending ──▶ processing ──▶ complete
                     │
                     └──────▶ error      (a failed fetch; optional steps fail soft)

Everything here is stdlib + attrs.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from attrs import field, frozen

from opencatalog.domain.jobs import StepLog

__all__ = ["HealthStatus", "LinkHealth", "PipelineStatus", "ResourceFile"]


class PipelineStatus(enum.StrEnum):
    """Where the processing of a resource stands."""

    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETE = "complete"
    ERROR = "error"


class HealthStatus(enum.StrEnum):
    """The outcome of the last link check of an external resource URL."""

    OK = "ok"
    ERROR = "error"
    UNKNOWN = "unknown"


def _utc(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is not UTC:
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    return value


def _steps(value: Sequence[StepLog] | None) -> tuple[StepLog, ...]:
    return tuple(value or ())


@frozen(kw_only=True)
class LinkHealth:
    """The last check of a resource's external URL: ``status`` with the time it was made,
    the HTTP status code when one was received, an error text when it failed, and the
    validators the server sent (a changed ``etag`` or ``last_modified`` makes the pipeline
    fetch the file again)."""

    status: HealthStatus = field(converter=HealthStatus)
    checked: datetime = field(converter=_utc)
    http_status: int | None = None
    error: str | None = None
    etag: str | None = None
    last_modified: str | None = None


@frozen(kw_only=True)
class ResourceFile:
    """The derived state of one resource's content.

    * ``blob_key``: the stored bytes (the upload itself when ``uploaded``, else the copy the
      pipeline fetched from ``resource.url``); ``size``, ``sha256``, ``mimetype``,
      ``format`` and ``encoding`` describe them (None until known).
    * ``text_key`` / ``preview_key``: blobs holding the extracted text (UTF-8, bounded) and the
      preview (JSON, see :mod:`opencatalog.pipeline.preview`); ``text_truncated`` says the
      text stopped at a limit.
    * ``status``, ``job_id``, ``error``, ``steps``: the pipeline run that last processed the
      resource, with its per-step log.
    * ``source_url``: the URL the fetched copy came from (a changed ``resource.url`` makes the
      copy stale); ``health``: the last link check, if any.
    """

    resource_id: str
    package_id: str
    blob_key: str | None = None
    uploaded: bool = False
    size: int | None = None
    sha256: str | None = None
    mimetype: str | None = None
    format: str | None = None
    encoding: str | None = None
    text_key: str | None = None
    text_truncated: bool = False
    preview_key: str | None = None
    status: PipelineStatus = field(default=PipelineStatus.PENDING, converter=PipelineStatus)
    job_id: str | None = None
    error: str | None = None
    steps: tuple[StepLog, ...] = field(default=(), converter=_steps)
    source_url: str | None = None
    health: LinkHealth | None = None
    updated: datetime = field(converter=_utc)

    def blob_keys(self) -> tuple[str, ...]:
        """Every blob this record keeps alive (for the orphan sweep)."""
        return tuple(k for k in (self.blob_key, self.text_key, self.preview_key) if k)
