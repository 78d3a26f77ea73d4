"""Link health: checking that the external URLs of resources still answer.

A check sends ``HEAD`` (then a one-byte ranged ``GET`` when HEAD is refused) through the
catalog's SSRF-guarded fetcher and records a :class:`~opencatalog.domain.files.LinkHealth` on
the resource's :class:`~opencatalog.domain.files.ResourceFile`:

* ``ok``: a 2xx answer (after redirects), with its status code;
* ``error``: an HTTP error status, a timeout or a connection failure, with a short message;
* ``unknown``: the URL is one the catalog refuses to visit (an internal address, a port or
  scheme outside the policy) or no fetcher is configured.

When a check sees an ``ETag`` or ``Last-Modified`` that differs from the previous check's,
the file changed at its source: a pipeline job is enqueued (in the same transaction) to fetch
it again. Uploads are not checked: the catalog holds their bytes.

``check_due`` is the batch used by ``opencatalog health check`` and by the ``link_health``
job: the resources never checked or checked longest ago first, at most ``limit`` of them.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from datetime import datetime, timedelta

import attrs
from attrs import frozen

from opencatalog.domain.files import HealthStatus, LinkHealth, ResourceFile
from opencatalog.domain.jobs import Job, StepLog, StepStatus
from opencatalog.domain.model import Dataset, Resource
from opencatalog.domain.permissions import Action
from opencatalog.errors import NotFound, ValidationFailed
from opencatalog.pipeline.fetch import FetchError
from opencatalog.ports.storage import DatasetFilter

from ._base import Call, Principal, Service, ServiceContext, require_ref

__all__ = [
    "HEALTH_JOB",
    "HealthService",
    "HealthSummary",
    "is_checkable",
    "run_health_job",
]

HEALTH_JOB = "link_health"
"""The job kind that runs one ``check_due`` batch."""

_UNCHECKABLE = frozenset({"bad_url", "bad_scheme", "bad_port", "blocked_address"})
_PAGE = 500


def is_checkable(resource: Resource) -> bool:
    """True for a resource whose URL is an external ``http(s)`` link (not an upload)."""
    if resource.url_type == "upload":
        return False
    return resource.url.strip().lower().startswith(("http://", "https://"))


@frozen(kw_only=True)
class HealthSummary:
    """What one batch of link checks found: how many links were checked, how many were
    ``ok``/``error``/``unknown``, and how many re-fetches were enqueued."""

    checked: int = 0
    ok: int = 0
    error: int = 0
    unknown: int = 0
    refetch: int = 0

    def to_dict(self) -> dict[str, int]:
        return attrs.asdict(self)


class HealthService(Service):
    """Checks of resources' external links, and their results (``catalog.health``)."""

    def check(self, resource_id: str) -> LinkHealth:
        """Check one resource's link now and record the result. Needs the right to update
        the dataset (a check makes the server send a request). Raises NotFound for an
        unknown resource and ValidationFailed for an upload or a non-HTTP URL."""
        require_ref(resource_id)
        with self._call() as call:
            dataset = call.uow.datasets.find_by_resource(resource_id)
            if dataset is None or not self._policy.can_read_dataset(call.actor, dataset):
                raise NotFound("Resource not found")
            self._require(
                call, Action.DATASET_UPDATE, self._policy.role_for_dataset(call.actor, dataset)
            )
            resource = _resource(dataset, resource_id)
            if not is_checkable(resource):
                raise ValidationFailed({"url": ["Only external http(s) links are checked"]})
            url = resource.url
        health = self._probe(url)
        self._record(resource_id, url, health)
        return health

    def check_due(
        self, *, limit: int = 200, older_than: timedelta = timedelta(hours=24)
    ) -> HealthSummary:
        """Check up to ``limit`` links of active datasets that were never checked or were
        last checked more than ``older_than`` ago, oldest first. Sysadmins only."""
        if limit < 1:
            raise ValidationFailed({"limit": ["limit must be at least 1"]})
        with self._call() as call:
            self._require(call, Action.JOBS_ADMIN, self._policy.base_role(call.actor))
            cutoff = call.now - older_than
            now = call.now
            due: list[tuple[datetime | None, str, str]] = []
            for resources in _external_resources(call):
                records = {f.resource_id: f for f in call.uow.files.get_many(list(resources))}
                for rid, url in resources.items():
                    record = records.get(rid)
                    health = record.health if record is not None else None
                    if health is not None and health.checked > cutoff:
                        continue
                    due.append((health.checked if health else None, rid, url))
        due.sort(key=lambda item: (item[0] is not None, item[0] or now, item[1]))
        counts = {status: 0 for status in HealthStatus}
        refetch = 0
        for _, rid, url in due[:limit]:
            health = self._probe(url)
            counts[health.status] += 1
            if self._record(rid, url, health):
                refetch += 1
        return HealthSummary(
            checked=min(limit, len(due)),
            ok=counts[HealthStatus.OK],
            error=counts[HealthStatus.ERROR],
            unknown=counts[HealthStatus.UNKNOWN],
            refetch=refetch,
        )

    def stats(self) -> dict[str, int]:
        """How many resources have each link health status (``unchecked``: never checked,
        among records the catalog holds). Sysadmins only."""
        with self._call() as call:
            self._require(call, Action.JOBS_ADMIN, self._policy.base_role(call.actor))
            counts = call.uow.files.health_counts()
        return {
            (status.value if status is not None else "unchecked"): n for status, n in counts.items()
        }

    def list(
        self, *, status: str = "error", offset: int = 0, limit: int = 50
    ) -> builtins.list[ResourceFile]:
        """Resources whose last check had this status, most recently updated first
        (for an administrator's list of broken links). Sysadmins only."""
        try:
            wanted = HealthStatus(status)
        except ValueError:
            raise ValidationFailed({"status": ["Unknown link health status"]}) from None
        if offset < 0 or not 1 <= limit <= 1000:
            raise ValidationFailed({"limit": ["limit must be between 1 and 1000"]})
        with self._call() as call:
            self._require(call, Action.JOBS_ADMIN, self._policy.base_role(call.actor))
            return call.uow.files.list(health=wanted, offset=offset, limit=limit)

    # -- the check itself ------------------------------------------------------------------

    def _probe(self, url: str) -> LinkHealth:
        now = self._ctx.clock()
        fetcher = self._ctx.fetcher
        if fetcher is None:
            return LinkHealth(status=HealthStatus.UNKNOWN, checked=now, error="no fetcher")
        try:
            result = fetcher.probe(url)
        except FetchError as exc:
            status = HealthStatus.UNKNOWN if exc.code in _UNCHECKABLE else HealthStatus.ERROR
            return LinkHealth(
                status=status, checked=self._ctx.clock(), http_status=exc.status, error=str(exc)
            )
        return LinkHealth(
            status=HealthStatus.OK,
            checked=self._ctx.clock(),
            http_status=result.status,
            etag=result.etag,
            last_modified=result.last_modified,
        )

    def _record(self, resource_id: str, url: str, health: LinkHealth) -> bool:
        """Store ``health`` on the resource's record, in one unit of work; enqueue a
        re-fetch when the validators changed. Returns True when one was enqueued. A
        resource deleted or re-pointed meanwhile is left alone."""
        with self._call(write=True) as call:
            dataset = call.uow.datasets.find_by_resource(resource_id)
            if dataset is None:
                return False
            resource = next((r for r in dataset.resources if r.id == resource_id), None)
            if resource is None or resource.url != url:
                return False
            record = call.uow.files.get(resource_id) or ResourceFile(
                resource_id=resource_id, package_id=dataset.id, updated=call.now
            )
            changed = _validators_changed(record.health, health)
            call.uow.files.put(attrs.evolve(record, health=health, updated=call.now))
            if changed:
                call.enqueue(
                    "pipeline", {"resource_id": resource_id}, dedupe_key=f"pipeline:{resource_id}"
                )
            call.commit()
        return changed


def _validators_changed(before: LinkHealth | None, after: LinkHealth) -> bool:
    if before is None or after.status is not HealthStatus.OK:
        return False
    if before.etag and after.etag:
        return before.etag != after.etag
    if before.last_modified and after.last_modified:
        return before.last_modified != after.last_modified
    return False


def _resource(dataset: Dataset, resource_id: str) -> Resource:
    for resource in dataset.resources:
        if resource.id == resource_id:
            return resource
    raise NotFound("Resource not found")


def _external_resources(call: Call) -> Iterator[dict[str, str]]:
    """Pages of {resource id: url} of the checkable resources of active datasets."""
    flt = DatasetFilter()
    offset = 0
    while True:
        page = call.uow.datasets.list(flt, offset=offset, limit=_PAGE)
        if not page:
            return
        found = {r.id: r.url for ds in page for r in ds.resources if is_checkable(r)}
        if found:
            yield found
        offset += len(page)


def run_health_job(ctx: ServiceContext, job: Job) -> list[StepLog]:
    """The ``link_health`` job: one ``check_due`` batch as the system actor. The payload may
    give ``limit`` and ``older_than_hours``."""
    started = ctx.clock()
    limit = int(job.payload.get("limit", 200))
    older = timedelta(hours=float(job.payload.get("older_than_hours", 24)))
    summary = HealthService(ctx, Principal.system()).check_due(limit=limit, older_than=older)
    message = ", ".join(f"{k} {v}" for k, v in summary.to_dict().items())
    return [
        StepLog(
            name="link_health",
            status=StepStatus.OK,
            message=message,
            started=started,
            finished=ctx.clock(),
        )
    ]
