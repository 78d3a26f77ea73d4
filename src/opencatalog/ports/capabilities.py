"""Optional features of backends, as runtime-checkable protocols.

A port states what every backend must do; a capability is something only some backends can
do. Services ask with ``isinstance(backend, SupportsX)`` and fall back when the answer is no
(for example, a download streams through the application when the blob store cannot sign
URLs). A backend has a capability only if it can really use it: an fsspec blob store is
``SupportsSignedUrls`` on S3 but not on a local folder.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Protocol, runtime_checkable

from opencatalog.domain.jobs import Job

__all__ = ["MAX_SIGNED_URL_LIFETIME", "SupportsSignedUrls", "SupportsTransactionalEnqueue"]

MAX_SIGNED_URL_LIFETIME = timedelta(days=7)
"""The longest ``expires_in`` a signed URL may have (the S3 signature version 4 limit)."""


@runtime_checkable
class SupportsSignedUrls(Protocol):
    """A blob store that can hand out time-limited URLs to its blobs."""

    def signed_url(self, key: str, *, expires_in: timedelta, method: str = "GET") -> str:
        """A URL through which anyone holding it may ``method`` the blob ``key`` until
        ``expires_in`` from now.

        ``key`` is validated like every blob key (``InvalidBlobKey``); a key that is not
        stored raises ``NotFound``. ``expires_in`` must be positive and at most
        ``MAX_SIGNED_URL_LIFETIME`` (``ValueError`` otherwise). ``method`` is an HTTP method;
        a store raises ``ValueError`` for a method it cannot sign. Content-addressed keys
        are only known once the bytes have been hashed, so stores sign ``GET`` only: uploads
        go through ``BlobStore.put``.
        """
        ...


@runtime_checkable
class SupportsTransactionalEnqueue(Protocol):
    """A task queue that can add a job inside the caller's open write unit of work, so the job
    exists if and only if that transaction commits (the job table is the outbox of jobs: a
    crash between a change and its job cannot lose the job).

    Services enqueue through this when the queue offers it and the unit of work belongs to the
    queue's storage (``accepts``); otherwise they enqueue right after the commit.
    """

    def accepts(self, uow: object) -> bool:
        """True when ``uow`` is a unit of work of the storage this queue keeps its jobs in."""
        ...

    def enqueue_in(
        self,
        uow: Any,
        kind: str,
        payload: Mapping[str, Any],
        *,
        dedupe_key: str | None = None,
        max_attempts: int = 3,
    ) -> Job:
        """Like ``TaskQueue.enqueue``, inside ``uow`` (which ``accepts`` approved)."""
        ...
