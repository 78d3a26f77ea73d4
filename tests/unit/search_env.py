"""A catalog on memory storage, a memory search index and a memory blob store, wired for the
contents index, and a stand-in for the pipeline step that stores extracted text."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import attrs

from opencatalog.adapters.memory_blobs import MemoryBlobStore
from opencatalog.adapters.memory_search import MemorySearchIndex
from opencatalog.bootstrap import open_catalog
from opencatalog.domain.files import PipelineStatus, ResourceFile
from opencatalog.domain.model import utcnow
from opencatalog.ports.search import SearchIndex
from opencatalog.services.catalog import Catalog
from opencatalog.services.indexing import CONTENTS_TOPIC, Indexer, blob_text_reader
from opencatalog.testing.stateful import CHEAP_PASSWORD_HASHING

log = logging.getLogger(__name__)


@attrs.define
class SearchEnv:
    catalog: Catalog
    index: SearchIndex
    blobs: MemoryBlobStore

    @property
    def indexer(self) -> Indexer:
        indexer = self.catalog._indexer
        assert indexer is not None
        return indexer

    def store_text(self, resource_id: str, text: str | None) -> None:
        """What the pipeline does after extracting text: the text blob, the file record
        naming it (None: a record without text) and a ``contents`` outbox entry, in one
        transaction; then the indexer is told."""
        key = None
        if text is not None:
            key = self.blobs.put(io.BytesIO(text.encode("utf-8"))).key
        storage = self.catalog._ctx.storage
        with storage.unit_of_work(write=True) as uow:
            holder = uow.datasets.find_by_resource(resource_id)
            assert holder is not None
            uow.files.put(
                ResourceFile(
                    resource_id=resource_id,
                    package_id=holder.id,
                    text_key=key,
                    status=PipelineStatus.COMPLETE,
                    updated=utcnow(),
                )
            )
            uow.outbox.add(CONTENTS_TOPIC, resource_id)
            uow.commit()
        try:
            self.indexer.notify()
        except Exception:  # as after-commit hooks do: logged, never raised
            log.exception("indexing after storing text failed")

    def pending(self) -> list[tuple[str, str]]:
        with self.catalog._ctx.storage.unit_of_work() as uow:
            return [(e.topic, e.object_id) for e in uow.outbox.pending()]


@contextmanager
def search_env(
    *, contents: bool = True, index: SearchIndex | None = None, **settings: object
) -> Iterator[SearchEnv]:
    """A new catalog acting as the system, writes indexed before they return
    (``index_delay=0``); ``contents`` wires the contents index as the catalog's composition
    root is meant to (a text reader over the blob store, the ``contents`` outbox topic).
    ``index``: another search index than a new memory one (closed with the catalog)."""
    if index is None:
        index = MemorySearchIndex()
    blobs = MemoryBlobStore()
    catalog = open_catalog(
        None,
        search=index,
        blobs=blobs,
        index_delay=0,
        password_hash_params=dict(CHEAP_PASSWORD_HASHING),
        **settings,
    )
    try:
        env = SearchEnv(catalog=catalog, index=index, blobs=blobs)
        if contents:
            if env.indexer.text_reader is None:
                env.indexer.text_reader = blob_text_reader(blobs)
            ctx = catalog._ctx
            ctx.outbox_topics = ctx.outbox_topics | {CONTENTS_TOPIC}
        else:
            env.indexer.text_reader = None
        yield env
    finally:
        catalog.close()
        index.close()
