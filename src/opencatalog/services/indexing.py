"""Keeping the search index in step with storage.

Storage is the truth; the index is derived. Every change to a dataset writes an outbox entry in
the same transaction (see ``Call.changed``); :meth:`Indexer.drain` applies pending entries to
the index after commit and only then deletes them, so a crash between commit and indexing
loses nothing: the entries are still there and the next drain (at the latest when the catalog
is opened again) applies them. Applying an entry is idempotent: it indexes the dataset as it is
*now* (or removes it when it is gone), whatever the entry said.

One lock per indexer makes it the single writer of its index within the process.

When entries are applied: a search drains first (so it never answers from a stale index),
and a background thread drains ``delay`` seconds after a write, batching the writes of that
interval into one index commit (an embedded index commit costs tens of milliseconds; a write
should not). With ``delay=0`` every write drains before it returns.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from attrs import frozen

from opencatalog.domain.model import Dataset, State
from opencatalog.domain.permissions import dataset_labels
from opencatalog.domain.search import DatasetDocument, dataset_document
from opencatalog.ports.search import SearchIndex
from opencatalog.ports.storage import DatasetFilter, Storage, UnitOfWork

__all__ = ["DriftReport", "Indexer", "documents_for"]

log = logging.getLogger("opencatalog.indexing")

TOPIC = "dataset"


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
    """How the index differs from storage: ids missing from the index, ids the index has
    but storage does not, ids whose indexed version is stale, and ids the index holds more
    than one document for."""

    missing: tuple[str, ...]
    extra: tuple[str, ...]
    stale: tuple[str, ...]
    duplicated: tuple[str, ...] = ()

    @property
    def clean(self) -> bool:
        return not (self.missing or self.extra or self.stale or self.duplicated)


class Indexer:
    """Applies the outbox to one search index; the index's only writer in this process."""

    def __init__(
        self,
        storage: Storage,
        index: SearchIndex,
        *,
        batch_size: int = 1000,
        delay: float = 0.5,
    ) -> None:
        self.storage = storage
        self.index = index
        self.batch_size = batch_size
        self.delay = delay
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._thread_guard = threading.Lock()

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

    def drain(self) -> int:
        """Apply every pending outbox entry; returns how many entries were applied."""
        applied = 0
        with self._lock:
            while True:
                with self.storage.unit_of_work() as uow:
                    entries = [
                        e for e in uow.outbox.pending(limit=self.batch_size) if e.topic == TOPIC
                    ]
                    if not entries:
                        return applied
                    ids = list(dict.fromkeys(e.object_id for e in entries))
                    found = uow.datasets.get_many(ids)
                    documents = documents_for(uow, found)
                gone = set(ids) - {ds.id for ds in found}
                with self.index.bulk() as index:
                    if documents:
                        index.index(documents)
                    if gone:
                        index.delete(gone)
                with self.storage.unit_of_work(write=True) as uow:
                    uow.outbox.remove(e.id for e in entries)
                    uow.commit()
                applied += len(entries)
                if len(entries) < self.batch_size:
                    return applied

    def fill_if_empty(self) -> int:
        """Rebuild an empty index over a storage that has datasets (an in-memory index over a
        database, a deleted index folder); returns how many datasets were indexed."""
        if self.index.count():
            return 0
        with self.storage.unit_of_work() as uow:
            stored = uow.datasets.count(DatasetFilter(states=frozenset(State)))
        if not stored:
            return 0
        log.info("search index is empty; indexing %d datasets from storage", stored)
        return self.reindex()

    def check(self) -> DriftReport:
        """Compare the index with storage (ids and ``metadata_modified``)."""
        with self.storage.unit_of_work() as uow:
            stored: dict[str, datetime] = dict(uow.datasets.ids())
        indexed: dict[str, datetime] = {}
        seen_twice: set[str] = set()
        for doc_id, modified in self.index.ids():
            if doc_id in indexed:
                seen_twice.add(doc_id)
            indexed[doc_id] = modified
        missing = sorted(set(stored) - set(indexed))
        extra = sorted(set(indexed) - set(stored))
        stale = sorted(i for i in set(stored) & set(indexed) if stored[i] != indexed[i])
        return DriftReport(
            missing=tuple(missing),
            extra=tuple(extra),
            stale=tuple(stale),
            duplicated=tuple(sorted(seen_twice)),
        )

    def repair(self, report: DriftReport) -> int:
        """Re-index the missing and stale datasets and drop the extra ones; returns how many
        documents changed."""
        with self._lock:
            if report.duplicated:
                self.index.delete(report.duplicated)  # every copy; stored ones come back below
            again = [i for i in report.duplicated if i not in report.extra]
            self._reindex_ids([*report.missing, *report.stale, *again])
            if report.extra:
                self.index.delete(report.extra)
        return len(report.missing) + len(report.stale) + len(report.extra) + len(report.duplicated)

    def reindex(self, *, progress: Callable[[int, int], None] | None = None) -> int:
        """Rebuild the index from storage without ever showing an empty one: every dataset
        is (re)indexed in batches over the existing documents, then documents of datasets no
        longer stored are removed. Returns how many datasets were indexed."""
        with self._lock:
            with self.storage.unit_of_work() as uow:
                ids = [i for i, _ in uow.datasets.ids()]
            done = self._reindex_ids(ids, progress=progress)
            indexed = {i for i, _ in self.index.ids()}
            extra = indexed - set(ids)
            if extra:
                self.index.delete(extra)
        return done

    def _reindex_ids(
        self, ids: Iterable[str], *, progress: Callable[[int, int], None] | None = None
    ) -> int:
        ids = list(ids)
        done = 0
        with self.index.bulk() as index:
            for start in range(0, len(ids), self.batch_size):
                chunk = ids[start : start + self.batch_size]
                with self.storage.unit_of_work() as uow:
                    documents = documents_for(uow, uow.datasets.get_many(chunk))
                index.index(documents)
                done += len(documents)
                if progress is not None:
                    progress(done, len(ids))
        return done
