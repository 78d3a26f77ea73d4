"""Keeping the search index in step with storage.

Storage is the truth; the index is derived. Every change to a dataset writes an outbox entry in
the same transaction (see ``Call.changed``); :meth:`Indexer.drain` applies pending entries to
the index after commit and only then deletes them, so a crash between commit and indexing
loses nothing: the entries are still there and the next drain (at the latest when the catalog
is opened again) applies them. Applying an entry is idempotent: it indexes the object as it is
*now* (or removes it when it is gone), whatever the entry said.

Two topics are applied:

* ``dataset`` (object id: a dataset id): the dataset's document in the packages index and its
  resource documents in the resources index are replaced in the same batch; the contents of
  resources no longer in the dataset are removed. A dataset no longer stored loses its
  document, its resource documents and the contents of its resources.
* ``contents`` (object id: a resource id), written by the pipeline after it stored the text
  extracted from the resource's file: when the resource's file record names a text blob and
  the resource is still in a stored dataset, the text (read with the indexer's
  ``text_reader``) replaces the resource's chunks in the contents index; otherwise its chunks
  are removed. Without a ``text_reader`` contents entries are consumed and nothing is indexed.

One lock per indexer makes it the single writer of its index within the process.

When entries are applied: a search drains first (so it never answers from a stale index),
and a background thread drains ``delay`` seconds after a write, batching the writes of that
interval into one index commit (an embedded index commit costs tens of milliseconds; a write
should not). With ``delay=0`` every write drains before it returns.

While :meth:`Indexer.reindex` rebuilds the index (which holds the writer lock for the whole
build), :meth:`Indexer.drain` does not wait for the lock: it returns at once and the caller
answers from the current index, which keeps serving the documents it had until the rebuilt
one replaces it. Writes made meanwhile stay in the outbox, and the rebuild applies them right
after the swap, before it lets go of the lock.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime

from attrs import frozen

from opencatalog.domain.model import Dataset, State
from opencatalog.domain.permissions import dataset_labels
from opencatalog.domain.search import (
    ContentDocument,
    DatasetDocument,
    MatchAll,
    ResourceDocument,
    TextQuery,
    content_documents,
    dataset_document,
    resource_documents,
)
from opencatalog.errors import NotFound
from opencatalog.ports.blobs import BlobStore
from opencatalog.ports.search import SearchIndex
from opencatalog.ports.storage import DatasetFilter, Storage, UnitOfWork

__all__ = [
    "CONTENTS_TOPIC",
    "TOPIC",
    "TOPICS",
    "DriftReport",
    "Indexer",
    "TextReader",
    "blob_text_reader",
    "documents_for",
]

log = logging.getLogger("opencatalog.indexing")

TOPIC = "dataset"
"""Outbox topic of a changed dataset (object id: the dataset id)."""

CONTENTS_TOPIC = "contents"
"""Outbox topic of a resource whose extracted text changed (object id: the resource id)."""

TOPICS: frozenset[str] = frozenset({TOPIC, CONTENTS_TOPIC})
"""The outbox topics the indexer applies."""

TextReader = Callable[[str], str | None]
"""Reads the text blob with this key (None when it is gone)."""

_PAGE = 1000  # hits per page when listing what the index holds for some datasets
_LOCK_POLL = 0.05  # seconds between looks at the rebuild flag while waiting for the lock


def blob_text_reader(blobs: BlobStore) -> TextReader:
    """A ``text_reader`` over a blob store: the blob decoded as UTF-8 (undecodable bytes
    replaced), or None when the blob does not exist."""

    def read(key: str) -> str | None:
        try:
            with blobs.open(key) as stream:
                data = stream.read()
        except NotFound:
            return None
        return data.decode("utf-8", errors="replace")

    return read


def documents_for(uow: UnitOfWork, datasets: Sequence[Dataset]) -> list[DatasetDocument]:
    """The index documents of these datasets, with their organization and group names."""
    group_ids: set[str] = set()
    for ds in datasets:
        group_ids.update(ds.groups)
        if ds.owner_org is not None:
            group_ids.add(ds.owner_org)
    names = {g.id: g.name for g in uow.groups.get_many(sorted(group_ids))}
    return [
        dataset_document(
            ds,
            organization_name=names.get(ds.owner_org) if ds.owner_org else None,
            group_names=[names[g] for g in ds.groups if g in names],
            labels=sorted(dataset_labels(ds)),
        )
        for ds in datasets
    ]


@frozen(kw_only=True)
class DriftReport:
    """How the index differs from storage.

    Packages index: dataset ids missing from the index, ids the index has but storage does
    not, ids whose indexed version is stale, and ids the index holds more than one document
    for. Resources index: resource ids stored (the resources of every stored dataset) but not
    indexed, and resource ids indexed but not stored (or indexed twice or under another
    dataset); ``resource_datasets`` are the datasets whose resource documents need replacing.
    Contents index (only checked when the indexer has a ``text_reader``): resource ids with
    extracted text but no chunk, and resource ids with chunks but no text to index (or under
    another dataset).
    """

    missing: tuple[str, ...]
    extra: tuple[str, ...]
    stale: tuple[str, ...]
    duplicated: tuple[str, ...] = ()
    resources_missing: tuple[str, ...] = ()
    resources_extra: tuple[str, ...] = ()
    resource_datasets: tuple[str, ...] = ()
    contents_missing: tuple[str, ...] = ()
    contents_extra: tuple[str, ...] = ()

    @property
    def clean(self) -> bool:
        return not (
            self.missing
            or self.extra
            or self.stale
            or self.duplicated
            or self.resources_missing
            or self.resources_extra
            or self.contents_missing
            or self.contents_extra
        )


@frozen
class _Batch:
    """What one drain batch writes to the index."""

    documents: list[DatasetDocument]
    gone: set[str]
    resources: dict[str, list[ResourceDocument]]
    contents: dict[str, list[ContentDocument]]
    no_contents: set[str]


class Indexer:
    """Applies the outbox to one search index; the index's only writer in this process.

    ``text_reader`` reads the extracted-text blob of a resource (see
    :func:`blob_text_reader`); without one the contents index is left empty.
    """

    def __init__(
        self,
        storage: Storage,
        index: SearchIndex,
        *,
        batch_size: int = 1000,
        delay: float = 0.5,
        text_reader: TextReader | None = None,
    ) -> None:
        self.storage = storage
        self.index = index
        self.batch_size = batch_size
        self.delay = delay
        self.text_reader = text_reader
        self._lock = threading.Lock()
        self._rebuilding = threading.Event()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._thread_guard = threading.Lock()

    @property
    def rebuilding(self) -> bool:
        """True while :meth:`reindex` builds a new index."""
        return self._rebuilding.is_set()

    def notify(self) -> None:
        """A write committed: apply it now (``delay=0``) or soon, in the background."""
        if self.delay <= 0:
            self.drain()
            return
        with self._thread_guard:
            if self._stopping:
                return
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="opencatalog-indexer", daemon=True
                )
                self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            if self._stopping:
                return
            self._stopped.wait(self.delay)  # let the writes of this interval gather
            self._wake.clear()
            try:
                self.drain()
            except Exception:  # the entries stay pending; the next drain retries them
                log.exception("background indexing failed")
            if self._stopping:  # close() may have woken us while we were clearing
                return

    def close(self) -> None:
        """Stop the background thread and apply what is pending (best effort: what cannot be
        applied stays in the outbox for the next start)."""
        with self._thread_guard:
            self._stopping = True
            thread, self._thread = self._thread, None
        self._stopped.set()
        self._wake.set()
        if thread is not None:
            thread.join()
        try:
            self.drain()
        except Exception:
            log.exception("indexing at close failed; pending changes stay in the outbox")

    def _acquire(self) -> bool:
        """Take the writer lock, waiting for a drain in progress but not for a rebuild:
        False (lock not taken) while a rebuild runs."""
        while not self._lock.acquire(timeout=_LOCK_POLL):
            if self._rebuilding.is_set():
                return False
        return True

    def drain(self) -> int:
        """Apply every pending outbox entry; returns how many entries were applied.

        While a rebuild runs this returns 0 at once (the rebuild applies the entries when it
        swaps the new index in)."""
        if self._rebuilding.is_set() or not self._acquire():
            return 0
        try:
            return self._drain_locked()
        finally:
            self._lock.release()

    def _drain_locked(self) -> int:
        applied = 0
        while True:
            with self.storage.unit_of_work() as uow:
                pending = uow.outbox.pending(limit=self.batch_size)
                entries = [e for e in pending if e.topic in TOPICS]
                if not entries:
                    return applied
                batch = self._read_batch(
                    uow,
                    list(dict.fromkeys(e.object_id for e in entries if e.topic == TOPIC)),
                    list(dict.fromkeys(e.object_id for e in entries if e.topic != TOPIC)),
                )
            self._write_batch(batch)
            with self.storage.unit_of_work(write=True) as uow:
                uow.outbox.remove(e.id for e in entries)
                uow.commit()
            applied += len(entries)
            if len(pending) < self.batch_size:
                return applied

    def _read_batch(
        self, uow: UnitOfWork, dataset_ids: Sequence[str], resource_ids: Sequence[str]
    ) -> _Batch:
        found = uow.datasets.get_many(dataset_ids)
        gone = set(dataset_ids) - {ds.id for ds in found}
        contents: dict[str, list[ContentDocument]] = {}
        no_contents: set[str] = set()
        if resource_ids and self.text_reader is not None:
            texts = self._texts(uow, resource_ids)
            for rid in resource_ids:
                if rid in texts:
                    package_id, text = texts[rid]
                    contents[rid] = content_documents(rid, package_id, text)
                else:
                    no_contents.add(rid)
        return _Batch(
            documents=documents_for(uow, found),
            gone=gone,
            resources={ds.id: resource_documents(ds) for ds in found},
            contents=contents,
            no_contents=no_contents,
        )

    def _texts(self, uow: UnitOfWork, resource_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
        """Resource id to (dataset id, extracted text) for those of ``resource_ids`` whose
        file record names a readable text blob and that are still in a stored dataset."""
        reader = self.text_reader
        if reader is None:
            return {}
        keys = {f.resource_id: (f.package_id, f.text_key) for f in uow.files.get_many(resource_ids)}
        holders = {
            ds.id: {r.id for r in ds.resources}
            for ds in uow.datasets.get_many(sorted({pkg for pkg, key in keys.values() if key}))
        }
        out: dict[str, tuple[str, str]] = {}
        for rid, (package_id, key) in keys.items():
            if not key or rid not in holders.get(package_id, ()):
                continue
            text = reader(key)
            if text is not None:
                out[rid] = (package_id, text)
        return out

    def _write_batch(self, batch: _Batch) -> None:
        with self.index.bulk() as index:
            if batch.documents:
                index.index(batch.documents)
            if batch.gone:
                index.delete(batch.gone)
                index.delete_resources(batch.gone)
                index.delete_contents_of_packages(batch.gone)
            if batch.resources:
                # contents of resources no longer in their dataset go with them
                dropped = self._indexed_contents(batch.resources) - {
                    doc.id for docs in batch.resources.values() for doc in docs
                }
                index.index_resources(batch.resources)
                if dropped:
                    index.delete_contents(dropped)
            if batch.contents:
                index.index_contents(batch.contents)
            if batch.no_contents:
                index.delete_contents(batch.no_contents)

    def _indexed_contents(self, package_ids: Iterable[str]) -> set[str]:
        """The resource ids the contents index holds chunks of for these datasets."""
        wanted = frozenset(package_ids)
        found: set[str] = set()
        offset = 0
        while True:
            page = self.index.query_contents(
                TextQuery(query=MatchAll(), package_ids=wanted, offset=offset, limit=_PAGE)
            )
            found.update(hit.resource_id for hit in page.hits)
            offset += _PAGE
            if offset >= page.total or not page.hits:
                return found

    # -- checks and rebuilds ------------------------------------------------------------

    def fill_if_empty(self) -> int:
        """Rebuild an empty index over a storage that has datasets (an in-memory index over a
        database, a deleted index folder), or an index from before the resources index;
        returns how many datasets were indexed."""
        if self.index.count():
            if self._resources_missing():
                log.info("search index has no resources index yet; rebuilding it from storage")
                return self.reindex()
            return 0
        with self.storage.unit_of_work() as uow:
            stored = uow.datasets.count(DatasetFilter(states=frozenset(State)))
        if not stored:
            return 0
        log.info("search index is empty; indexing %d datasets from storage", stored)
        return self.reindex()

    def recover(self) -> DriftReport | None:
        """After an unclean stop of the index's last writer (``index.unclean_shutdown``),
        compare the index with storage and repair what differs; returns the drift found, or
        None when there was nothing to recover from."""
        if not self.index.unclean_shutdown:
            return None
        report = self.check()
        if not report.clean:
            log.warning(
                "search index left by a writer that died: repairing %d missing, %d extra, "
                "%d stale and %d duplicated documents",
                len(report.missing),
                len(report.extra),
                len(report.stale),
                len(report.duplicated),
            )
            self.repair(report)
        return report

    def _resources_missing(self) -> bool:
        """True for an index written before it had a resources index (its datasets are there,
        their resources are not): the resources index is empty although some of the first
        datasets in storage have resources."""
        if self.index.stats().per_index.get("resources", 0):
            return False
        with self.storage.unit_of_work() as uow:
            sample = uow.datasets.list(DatasetFilter(states=frozenset(State)), limit=100)
        return any(ds.resources for ds in sample)

    def _stored(self) -> tuple[dict[str, datetime], dict[str, str], dict[str, str]]:
        """Stored dataset ids with ``metadata_modified``, the resource ids of every stored
        dataset with their dataset, and (with a ``text_reader``) the resource ids whose file
        record names a text blob, with their dataset."""
        resources: dict[str, str] = {}
        with self.storage.unit_of_work() as uow:
            stored: dict[str, datetime] = dict(uow.datasets.ids())
            ids = list(stored)
            for start in range(0, len(ids), self.batch_size):
                for ds in uow.datasets.get_many(ids[start : start + self.batch_size]):
                    resources.update((r.id, ds.id) for r in ds.resources)
            with_text: dict[str, str] = {}
            if self.text_reader is not None:
                for record in uow.files.list():
                    rid = record.resource_id
                    if record.text_key and resources.get(rid) == record.package_id:
                        with_text[rid] = record.package_id
        return stored, resources, with_text

    def check(self) -> DriftReport:
        """Compare the index with storage: dataset ids and ``metadata_modified``, resource ids,
        and the resources whose extracted text is indexed."""
        stored, stored_resources, with_text = self._stored()
        indexed: dict[str, datetime] = {}
        seen_twice: set[str] = set()
        for doc_id, modified in self.index.ids():
            if doc_id in indexed:
                seen_twice.add(doc_id)
            indexed[doc_id] = modified
        missing = sorted(set(stored) - set(indexed))
        extra = sorted(set(indexed) - set(stored))
        stale = sorted(i for i in set(stored) & set(indexed) if stored[i] != indexed[i])

        indexed_resources: dict[str, str] = {}
        resources_extra: set[str] = set()
        datasets: set[str] = set()
        for rid, package_id in self.index.document_ids("resources"):
            if rid in indexed_resources or stored_resources.get(rid) != package_id:
                resources_extra.add(rid)
                datasets.add(package_id)
            indexed_resources[rid] = package_id
        resources_missing = set(stored_resources) - set(indexed_resources)
        datasets.update(stored_resources[rid] for rid in resources_missing)
        datasets.update(stored_resources[rid] for rid in resources_extra if rid in stored_resources)

        contents_missing: list[str] = []
        contents_extra: set[str] = set()
        if self.text_reader is not None:
            chunked: dict[str, str] = {}
            for chunk_id, package_id in self.index.document_ids("contents"):
                rid = chunk_id.rpartition(":")[0]
                if with_text.get(rid) != package_id:
                    contents_extra.add(rid)
                chunked[rid] = package_id
            candidates = sorted(set(with_text) - set(chunked))
            if candidates:  # text that is blank gives no chunk: not missing
                texts = self._read_texts(candidates)
                contents_missing = [rid for rid in candidates if rid in texts]
        return DriftReport(
            missing=tuple(missing),
            extra=tuple(extra),
            stale=tuple(stale),
            duplicated=tuple(sorted(seen_twice)),
            resources_missing=tuple(sorted(resources_missing)),
            resources_extra=tuple(sorted(resources_extra)),
            resource_datasets=tuple(sorted(datasets)),
            contents_missing=tuple(contents_missing),
            contents_extra=tuple(sorted(contents_extra)),
        )

    def _read_texts(self, resource_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
        """Resource id to (dataset id, text) for those with non-blank extracted text."""
        out: dict[str, tuple[str, str]] = {}
        for start in range(0, len(resource_ids), self.batch_size):
            with self.storage.unit_of_work() as uow:
                texts = self._texts(uow, resource_ids[start : start + self.batch_size])
            out.update((rid, pt) for rid, pt in texts.items() if pt[1].strip())
        return out

    def repair(self, report: DriftReport) -> int:
        """Re-index the missing and stale datasets and drop the extra ones, replace the
        resource documents of the datasets concerned and the contents of the resources
        concerned; returns how many documents changed."""
        if not self._acquire():
            return 0
        try:
            if report.duplicated:
                self.index.delete(report.duplicated)  # every copy; stored ones come back below
            again = [i for i in report.duplicated if i not in report.extra]
            self._reindex_ids(self.index, [*report.missing, *report.stale, *again])
            if report.extra:
                self.index.delete(report.extra)
            self._repair_resources(report)
            self._repair_contents(report)
        finally:
            self._lock.release()
        return (
            len(report.missing)
            + len(report.stale)
            + len(report.extra)
            + len(report.duplicated)
            + len(report.resources_missing)
            + len(report.resources_extra)
            + len(report.contents_missing)
            + len(report.contents_extra)
        )

    def _repair_resources(self, report: DriftReport) -> None:
        datasets = list(report.resource_datasets)  # every dataset holding a reported id
        for start in range(0, len(datasets), self.batch_size):
            chunk = datasets[start : start + self.batch_size]
            with self.storage.unit_of_work() as uow:
                found = uow.datasets.get_many(chunk)
            gone = set(chunk) - {ds.id for ds in found}
            if gone:
                self.index.delete_resources(gone)
            self.index.index_resources({ds.id: resource_documents(ds) for ds in found})

    def _repair_contents(self, report: DriftReport) -> None:
        if self.text_reader is None:
            return
        if report.contents_extra:
            self.index.delete_contents(report.contents_extra)
        again = sorted({*report.contents_missing, *report.contents_extra})
        texts = self._read_texts(again)
        if texts:
            self.index.index_contents(
                {rid: content_documents(rid, pkg, text) for rid, (pkg, text) in texts.items()}
            )

    def reindex(self, *, progress: Callable[[int, int], None] | None = None) -> int:
        """Rebuild the index from storage (datasets, their resources and the extracted text
        of their resources) into a new index that replaces the current one when it is
        complete (``SearchIndex.rebuilding``), so searches never see an empty or half-built
        index. ``progress(done, total)`` is called after each batch of datasets. Returns how
        many datasets were indexed.

        Holds the writer lock throughout; drains during the rebuild return at once and the
        entries they leave are applied to the new index right after the swap.
        """
        if not self._acquire():
            return 0  # another rebuild is running
        try:
            with self.storage.unit_of_work() as uow:
                ids = [i for i, _ in uow.datasets.ids()]
            self._rebuilding.set()
            try:
                with self.index.rebuilding() as target:
                    done = self._reindex_ids(target, ids, progress=progress, contents=True)
                    if target is self.index:  # rebuilt in place: drop what storage lost
                        self._drop_extra(set(ids))
            finally:
                self._rebuilding.clear()
            self._drain_locked()
        finally:
            self._lock.release()
        return done

    def _drop_extra(self, stored: set[str]) -> None:
        extra = {i for i, _ in self.index.ids()} - stored
        if extra:
            self.index.delete(extra)
        gone = {pkg for _, pkg in self.index.document_ids("resources")} - stored
        if gone:
            self.index.delete_resources(gone)
        gone = {pkg for _, pkg in self.index.document_ids("contents")} - stored
        if gone:
            self.index.delete_contents_of_packages(gone)

    def _reindex_ids(
        self,
        target: SearchIndex,
        ids: Iterable[str],
        *,
        progress: Callable[[int, int], None] | None = None,
        contents: bool = False,
    ) -> int:
        ids = list(ids)
        done = 0
        with target.bulk() as index:
            for start in range(0, len(ids), self.batch_size):
                chunk = ids[start : start + self.batch_size]
                with self.storage.unit_of_work() as uow:
                    found = uow.datasets.get_many(chunk)
                    documents = documents_for(uow, found)
                    texts: Mapping[str, tuple[str, str]] = {}
                    if contents:
                        rids = [r.id for ds in found for r in ds.resources]
                        texts = self._texts(uow, rids)
                index.index(documents)
                index.index_resources({ds.id: resource_documents(ds) for ds in found})
                if texts:
                    index.index_contents(
                        {rid: content_documents(rid, p, text) for rid, (p, text) in texts.items()}
                    )
                done += len(documents)
                if progress is not None:
                    progress(done, len(ids))
        return done
