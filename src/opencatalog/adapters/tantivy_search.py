"""A search index on tantivy (the ``tantivy`` package): embedded, fast, in one folder.

URLs: ``tantivy:///abs/path`` (or a plain path) keeps the index in that folder, creating it if
needed; ``tantivy://`` keeps it in memory. ``tantivy://relative/path`` is relative to the
working directory.

Folder layout: ``CURRENT`` names the live generation (``gen-000001``, ...), a sub-folder holding
one tantivy index per logical index: ``packages``, ``resources`` and ``contents``.
``rebuilding()`` fills a new generation beside the live one, commits it, replaces ``CURRENT``
with ``os.replace`` (after an fsync) and deletes the old generation. Every open index, in this
process or another, looks at ``CURRENT`` before each call and reopens at the new generation
when it changed, so readers go from the whole old index to the whole new one. Generations that
are not current (left by a rebuild that crashed) are deleted at the next open by whoever can
take the writer lock. A folder in the layout before generations (one tantivy index in the
folder itself) is replaced at open by an empty generation and its files are deleted: the
catalog sees an empty index and refills it from storage.

Packages: text fields use a registered analyser equal to the domain tokeniser (runs of letters
and digits, lowercased); keyword fields are raw terms without positions, the faceted ones also
fast fields. The default field ``text`` is not indexed on its own: it is searched as the text
fields plus ``other_text`` (the tokenised names, tags, groups, organization, formats, licence
and extras values), which spares indexing every title and notes token twice.
Extras go into one pre-tokenised field whose terms are ``<key>\\x1f<token>``, so
``extras_<key>`` searches need no schema change. Visibility is one term per permission label,
``<state>\\x1f<label>``, so the visibility filter of a search is a single term set. Dates are
stored as integer microseconds so sorting is exact. The whole document is stored as JSON (for
highlights and ``get_document``).

Facets: for a small result set they are terms aggregations over the fast columns (cost grows
with the hits); for a large one (the ``/dataset`` landing page) each facet value's postings are
counted against the result set (``Searcher.terms_with_prefix``, tantivy 0.27; older releases
aggregate), which costs about the same whatever the hits and is two to three times faster than
aggregating 100k documents.

Writes go through one long-lived writer per logical index, guarded by a lock; each write call
commits (about 10 ms) unless inside ``bulk()``, which commits once at the end. A replaced
document is deleted by its key only when one can exist (committed, or added since the last
commit), so a bulk load into an empty index issues no deletes. ``clear()`` deletes by query:
tantivy's ``delete_all_documents`` rewinds the writer's operation stamps, after which documents
added later could vanish at commit. Only one process may write to a folder at a time
(``WRITER.lock``, held from the first write until ``close``); readers never block.
"""

from __future__ import annotations

import heapq
import json
import logging
import os
import re
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import attrs
import tantivy

from opencatalog.domain.search import (
    DEFAULT_FIELD,
    EXTRAS_PREFIX,
    FACET_FIELDS,
    INDEX_NAMES,
    And,
    ContentDocument,
    DatasetDocument,
    FacetCount,
    FacetRequest,
    MatchAll,
    Not,
    Or,
    Phrase,
    Prefix,
    Query,
    QueryLimits,
    ResourceDocument,
    SearchHit,
    SearchPage,
    SearchQuery,
    SortKey,
    Term,
    TextHit,
    TextPage,
    TextQuery,
    highlight,
    is_text_field,
    tokenize,
)
from opencatalog.errors import BackendError, ConfigurationError, SearchQueryError
from opencatalog.ports.search import IndexStats, SearchIndex

try:  # POSIX; elsewhere the writer lock is tantivy's own per-index lock only
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["TantivySearchIndex"]

log = logging.getLogger(__name__)

POINTER = "CURRENT"
WRITER_LOCK = "WRITER.lock"
#: Present while a process holds the writer; found at open with no live writer, it means the
#: last writer died (its writes may be partly applied: the catalog checks and repairs).
WRITER_DIRTY = "WRITER.dirty"
_GENERATION_RE = re.compile(r"gen-([0-9]{6,})\Z")
# files of the layout before generations: one tantivy index in the folder itself
_LEGACY_FILE_RE = re.compile(
    r"(meta\.json|\.managed\.json|\.tantivy-(meta|writer)\.lock"
    r"|[0-9a-f]{32}(\.[0-9]+)?\.(idx|pos|term|store|fast|fieldnorm|del))\Z"
)

_ANALYZER = "oc_text"
_SEP = "\x1f"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TEXT = ("title", "notes", "res_name", "res_description", "author", "maintainer")
# the default field is searched as these fields together: the text fields plus "other_text",
# the tokenised values of the keyword fields and extras that ``text`` also holds (indexing
# ``text`` as a field of its own would index every title and notes token twice)
_OTHER_TEXT = "other_text"
_DEFAULT_SOURCES = (*_TEXT, _OTHER_TEXT)
_KEYWORD = (
    "name",
    "tags",
    "groups",
    "organization",
    "owner_org",
    "res_format",
    "res_url",
    "license_id",
    "state",
    "dataset_type",
    "capacity",
    "labels",
)
# sort field -> fast column
_SORT_COLUMNS = {
    "name": "name",
    "title": "title_sort",
    "metadata_modified": "modified",
    "metadata_created": "created",
}
_ALL_VALUES = 1 << 24  # terms aggregation size meaning "every value"
# above this share of the index, facets count postings against the hits instead of
# aggregating the hits' columns (measured crossover at 100k documents: about a third)
_POSTINGS_FACETS_SHARE = 0.25
_POSTINGS_FACETS_MIN_DOCS = 20_000
_MAX_TIE_CANDIDATES = 10_000  # hits fetched to order equal scores by id
_STORED_ID_READS = 512  # most stored ids read to order equal scores


def _micros(value: datetime) -> int:
    if value.tzinfo is None:
        raise ValueError("search documents need timezone-aware datetimes")
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _from_micros(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def _regex_literal(text: str) -> str:
    return "".join(c if c.isascii() and c.isalnum() else f"\\x{{{ord(c):X}}}" for c in text)


def _check_index_name(name: str) -> str:
    if name not in INDEX_NAMES:
        raise SearchQueryError(
            f'Search Query is invalid: no index "{name}" (indices: {", ".join(INDEX_NAMES)})'
        )
    return name


# ---------------------------------------------------------------------------------------------
# Schemas and documents


def _packages_schema() -> Any:
    """Keyword fields keep no positions or frequencies (phrases on them are whole-value
    terms); text fields keep positions for phrases."""
    builder = tantivy.SchemaBuilder()
    raw: dict[str, Any] = {"tokenizer_name": "raw", "index_option": "basic"}
    builder.add_text_field("id", stored=True, fast=True, **raw)
    for name in _DEFAULT_SOURCES:
        builder.add_text_field(name, tokenizer_name=_ANALYZER)
    for name in _KEYWORD:
        fast = name in FACET_FIELDS or name == "name"
        builder.add_text_field(name, stored=name == "name", fast=fast, **raw)
    builder.add_text_field("extras", tokenizer_name="raw")  # pre-tokenised, with positions
    builder.add_text_field("visibility", **raw)
    builder.add_text_field("title_sort", stored=True, fast=True, **raw)
    builder.add_integer_field("modified", stored=True, indexed=True, fast=True)
    builder.add_integer_field("created", stored=True, indexed=True, fast=True)
    builder.add_bytes_field("doc", stored=True)  # stored only
    return builder.build()


def _text_schema(*keys: str) -> Any:
    """The resources and contents schema: ``id`` plus the raw ``keys`` it is replaced and
    filtered by, the searched ``text`` and the stored document."""
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("id", stored=True, tokenizer_name="raw", fast=True, index_option="basic")
    for key in keys:
        builder.add_text_field(key, stored=True, tokenizer_name="raw", index_option="basic")
    builder.add_text_field("text", tokenizer_name=_ANALYZER)
    builder.add_bytes_field("doc", stored=True)  # stored only
    return builder.build()


_SCHEMAS: dict[str, Callable[[], Any]] = {
    "packages": _packages_schema,
    "resources": lambda: _text_schema("package_id"),
    "contents": lambda: _text_schema("resource_id", "package_id"),
}


def _analyzer() -> Any:
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.lowercase())
        .build()
    )


def _stored_json(doc: DatasetDocument | ResourceDocument | ContentDocument) -> bytes:
    """The document as ``get_document`` gives it: its fields (a chunk's ``id`` first),
    datetimes as ISO 8601 strings (tuples become lists, mappings objects)."""
    fields = attrs.asdict(doc, recurse=False)
    if isinstance(doc, ContentDocument):
        fields = {"id": doc.id, **fields}
    for key, value in fields.items():
        if isinstance(value, datetime):
            fields[key] = value.isoformat()
        elif isinstance(value, Mapping) and not isinstance(value, dict):
            fields[key] = dict(value)
    return json.dumps(fields, ensure_ascii=False).encode()


def _package_document(doc: DatasetDocument) -> Any:
    """The tantivy document of a dataset: the values :func:`field_values` gives each field
    (written out here field by field: a bulk load builds 100k of these), the visibility
    terms, the sort columns and the stored JSON."""
    out = tantivy.Document()
    add = out.add_text
    add("id", doc.id)
    for value in (
        doc.name,
        *doc.tags,
        *doc.groups,
        doc.organization,
        *doc.res_format,
        doc.license_id,
        *doc.extras.values(),
    ):
        if value:
            add(_OTHER_TEXT, value)
    single: tuple[tuple[str, str | None], ...] = (
        ("title", doc.title),
        ("notes", doc.notes),
        ("author", doc.author),
        ("maintainer", doc.maintainer),
        ("name", doc.name),
        ("organization", doc.organization),
        ("owner_org", doc.owner_org),
        ("license_id", doc.license_id),
        ("state", doc.state),
    )
    for name, text in single:
        if text:
            add(name, text)
    for name, values, distinct in (
        ("res_name", doc.res_name, False),
        ("res_description", doc.res_description, False),
        ("tags", doc.tags, True),
        ("groups", doc.groups, True),
        ("res_format", doc.res_format, True),
        ("res_url", doc.res_url, True),
    ):
        for item in dict.fromkeys(values) if distinct else values:
            if item:
                add(name, item)
    add("dataset_type", doc.type)
    add("capacity", "private" if doc.private else "public")
    for label in dict.fromkeys(doc.labels):
        add("labels", label)
        add("visibility", f"{doc.state}{_SEP}{label}")
    if doc.extras:
        tokens = []
        position = 0
        for key, value in doc.extras.items():
            for token in tokenize(value):
                tokens.append(tantivy.Token(f"{key}{_SEP}{token}", position, 0, 0))
                position += 1
            position += 1
        if tokens:
            out.add_pre_tokenized_text("extras", tantivy.PreTokenizedString("", tokens))
    add("title_sort", doc.title.lower())
    out.add_integer("modified", _micros(doc.metadata_modified))
    out.add_integer("created", _micros(doc.metadata_created))
    out.add_bytes("doc", _stored_json(doc))
    return out


def _resource_document(doc: ResourceDocument) -> Any:
    out = tantivy.Document()
    out.add_text("id", doc.id)
    out.add_text("package_id", doc.package_id)
    for value in (doc.name, doc.description, doc.format):
        if value:
            out.add_text("text", value)
    out.add_bytes("doc", _stored_json(doc))
    return out


def _content_document(doc: ContentDocument) -> Any:
    out = tantivy.Document()
    out.add_text("id", doc.id)
    out.add_text("resource_id", doc.resource_id)
    out.add_text("package_id", doc.package_id)
    if doc.text:
        out.add_text("text", doc.text)
    out.add_bytes("doc", _stored_json(doc))
    return out


# ---------------------------------------------------------------------------------------------
# Generations


def _skip_committed_stamp(writer: Any) -> None:
    """Spend the operation stamp of the last commit on an operation that changes nothing.

    A new tantivy writer (and one just rolled back) stamps its first operation with the
    opstamp of the last commit. A merge of committed segments that starts before this
    writer's first commit applies deletes "up to" that same opstamp, and skips every segment
    whose deletes were last written at it, as if already up to date; the merged segment then
    carries on from a cursor past the first operation. When that first operation is a delete
    (replacing a document always starts with one), the document it deleted in such a segment
    is alive again in the merged one, beside its replacement. The merge needs enough
    committed segments to start at once, which is what a process killed before its merges
    finished leaves behind. A delete of a key no document has takes that stamp instead.
    """
    writer.delete_documents_by_term("id", "")


class _Part:
    """One logical index of a generation: a tantivy index and its writer, opened on first
    write. Callers serialise writes."""

    def __init__(self, name: str, path: Path | None, heap: int, threads: int) -> None:
        self.name = name
        self.path = path
        self.schema = _SCHEMAS[name]()
        self._heap = heap
        self._threads = threads
        if path is None:
            self.index = tantivy.Index(self.schema)
        else:
            path.mkdir(parents=True, exist_ok=True)
            self.index = tantivy.Index(self.schema, path=str(path), reuse=True)
        self.index.register_tokenizer(_ANALYZER, _analyzer())
        self.writer: Any = None
        self.dirty = False
        self.added: set[str] = set()  # replacement keys added since the last commit
        self.commits = 0  # commits made through this object (after the reader reloaded)
        self.seen_meta: tuple[int, int, int] | None = None  # the commit file last read

    def get_writer(self) -> Any:
        if self.writer is None:
            try:
                self.writer = self.index.writer(heap_size=self._heap, num_threads=self._threads)
            except ValueError as exc:
                raise BackendError(
                    f"cannot write to the tantivy index (another process writing?): {exc}"
                ) from exc
            _skip_committed_stamp(self.writer)
        self.dirty = True
        return self.writer

    def replace(self, key_field: str, batches: Iterable[tuple[str, Sequence[Any]]]) -> None:
        """For each ``(key, documents)``: remove the documents whose ``key_field`` is ``key``
        and add ``documents``.

        The delete is only issued when a document with that key can exist: one committed (the
        reader is at the last commit, this being the only writer) or added since. Deletes
        cost more than adds at commit, and a bulk load into an empty index needs none.
        """
        writer = self.get_writer()
        searcher = self.index.searcher()
        added = self.added
        for key, documents in batches:
            if key in added or searcher.doc_freq(key_field, key):
                writer.delete_documents_by_term(key_field, key)
            for document in documents:
                writer.add_document(document)
            added.add(key)

    def commit(self) -> bool:
        """Commit pending changes; True when there were some."""
        if not self.dirty:
            return False
        self.writer.commit()
        self.dirty = False
        self.added.clear()
        self.index.reload()
        self.commits += 1
        return True

    def rollback(self) -> None:
        if self.dirty:
            self.writer.rollback()  # a fresh writer inside, stamping from the last commit again
            _skip_committed_stamp(self.writer)
            self.dirty = False
            self.added.clear()
            self.index.reload()

    def release(self, *, commit: bool) -> None:
        """Drop the writer (committing first when asked), waiting for its merges."""
        writer, self.writer = self.writer, None
        if writer is None:
            return
        if commit and self.dirty:
            writer.commit()
        self.dirty = False
        self.added.clear()
        writer.wait_merging_threads()


class _Generation:
    """The three logical indices of one generation, in ``path`` or in memory."""

    def __init__(self, name: str | None, path: Path | None, heap: int, threads: int) -> None:
        self.name = name
        self.path = path
        self.parts = {
            logical: _Part(logical, None if path is None else path / logical, heap, threads)
            for logical in INDEX_NAMES
        }

    def __getitem__(self, logical: str) -> _Part:
        return self.parts[logical]

    def commit(self) -> bool:
        changed = False
        for part in self.parts.values():
            changed = part.commit() or changed
        return changed

    def rollback(self) -> None:
        for part in self.parts.values():
            part.rollback()

    def release(self, *, commit: bool) -> None:
        for part in self.parts.values():
            part.release(commit=commit)

    def size_bytes(self) -> int:
        if self.path is None:
            return 0
        total = 0
        for part in self.parts.values():
            assert part.path is not None
            with suppress(OSError):
                total += sum(p.stat().st_size for p in part.path.iterdir() if p.is_file())
        return total


def _pointer_signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _fsync_dir(path: Path) -> None:
    with suppress(OSError):  # not every platform can open a directory
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# ---------------------------------------------------------------------------------------------
# The index


class TantivySearchIndex(SearchIndex):
    """A ``SearchIndex`` on embedded tantivy indices (``path`` None: in memory).

    ``writer_heap_mb`` is the indexing memory budget of each logical index's writer, shared by
    ``writer_threads`` threads (0: tantivy picks, one per core up to a limit); larger budgets
    mean fewer, larger segments on bulk loads. ``cache_size`` pages of faceted queries are
    kept until the next commit (popular facet pages are asked for over and over); the key
    includes the generation and the packages index's commit file, so commits by another
    process are noticed too. 0 disables the cache.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        writer_heap_mb: int = 256,
        writer_threads: int = 0,
        limits: QueryLimits = QueryLimits(),
        cache_size: int = 64,
    ) -> None:
        self._root = None if path is None else Path(path)
        self._heap = max(writer_heap_mb, 16) * 1_000_000
        self._threads = writer_threads
        self._limits = limits
        self._lock = threading.RLock()  # writes
        self._switch = threading.Lock()  # generation changes
        self._cache_lock = threading.Lock()
        self._bulk_depth = 0
        self._closed = False
        self._builder = False
        self._lock_fd: int | None = None
        self._unclean = False
        self._pointer_sig: tuple[int, int, int] | None = None
        self._cache: OrderedDict[Any, SearchPage] = OrderedDict()
        self._cache_size = cache_size
        if self._root is None:
            self._gen = _Generation(None, None, self._heap, self._threads)
        else:
            self._gen = self._open_folder()

    @classmethod
    def from_url(cls, url: str, **options: Any) -> TantivySearchIndex:
        """``tantivy://`` (in memory), ``tantivy:///abs/path``, ``tantivy://rel/path`` or a
        plain path; ``options`` are the constructor's keyword arguments."""
        if "://" not in url:
            return cls(url, **options)
        parts = urlsplit(url)
        if parts.scheme != "tantivy":
            raise ConfigurationError(f"not a tantivy search index URL: {url!r}")
        path = unquote(parts.netloc + parts.path)
        return cls(path or None, **options)

    # -- the folder: generations, pointer, writer lock ------------------------------------

    def _try_lock(self) -> bool:
        """Take the folder's writer lock (not blocking); True when this index holds it."""
        if self._lock_fd is not None:
            return True
        assert self._root is not None
        try:
            fd = os.open(self._root / WRITER_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:  # a read-only folder: readers only
            return False
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                return False
        self._lock_fd = fd
        return True

    def _mark_dirty(self) -> None:
        """Record that this process writes (removed by a clean ``close``)."""
        assert self._root is not None
        marker = self._root / WRITER_DIRTY
        if not marker.exists():
            marker.write_bytes(b"")

    @property
    def unclean_shutdown(self) -> bool:
        """True when the last process that wrote this index died before closing it."""
        return self._unclean

    def _unlock(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor releases the flock

    def _read_pointer(self) -> str | None:
        assert self._root is not None
        try:
            name = (self._root / POINTER).read_text(encoding="utf-8").strip()
        except (FileNotFoundError, UnicodeDecodeError):
            return None
        return name if _GENERATION_RE.match(name) else None

    def _write_pointer(self, name: str) -> None:
        assert self._root is not None
        tmp = self._root / f"{POINTER}.tmp"
        with tmp.open("w", encoding="utf-8") as out:
            out.write(name + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self._root / POINTER)
        _fsync_dir(self._root)

    def _generation_names(self) -> list[str]:
        assert self._root is not None
        names = []
        for entry in self._root.iterdir():
            if entry.is_dir() and _GENERATION_RE.match(entry.name):
                names.append(entry.name)
        return sorted(names, key=lambda n: int(n[4:]))

    def _next_generation_name(self) -> str:
        numbers = [int(n[4:]) for n in self._generation_names()]
        current = self._read_pointer()
        if current is not None:
            numbers.append(int(current[4:]))
        return f"gen-{max(numbers, default=0) + 1:06d}"

    def _open_generation(self, name: str) -> _Generation:
        assert self._root is not None
        return _Generation(name, self._root / name, self._heap, self._threads)

    def _open_folder(self) -> _Generation:
        """Open the generation ``CURRENT`` names; create an empty one when there is none
        (a new folder, the layout before generations, a deleted or unreadable generation)
        and delete what is left of crashed rebuilds."""
        root = self._root
        assert root is not None
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot create the tantivy index folder {root}: {exc}"
            ) from exc
        deadline = time.monotonic() + 10.0
        while True:
            self._pointer_sig = _pointer_signature(root / POINTER)
            name = self._read_pointer()
            generation = None
            if name is not None and (root / name).is_dir():
                try:
                    generation = self._open_generation(name)
                except ValueError as exc:  # another schema: start again, storage refills it
                    log.warning("tantivy index %s cannot be opened (%s); replacing it", name, exc)
            if self._try_lock():
                try:
                    if (root / WRITER_DIRTY).exists():  # its writer died holding the lock
                        self._unclean = True
                    if generation is None:
                        generation = self._create_current()
                    self._remove_leftovers(generation.name)
                finally:
                    self._unlock()
                return generation
            if generation is not None:
                return generation  # another process writes; it cleans up
            if time.monotonic() > deadline:
                raise ConfigurationError(
                    f"the tantivy index at {root} has no readable generation and another "
                    "process holds its writer lock"
                )
            time.sleep(0.05)

    def _create_current(self) -> _Generation:
        """Create an empty generation and point ``CURRENT`` at it (writer lock held)."""
        name = self._next_generation_name()
        if (self._root / POINTER).exists() or any(  # type: ignore[operator]
            _LEGACY_FILE_RE.match(p.name)
            for p in self._root.iterdir()  # type: ignore[union-attr]
        ):
            log.warning(
                "tantivy index at %s is empty or from an older layout; starting %s "
                "(the catalog refills it from storage)",
                self._root,
                name,
            )
        generation = self._open_generation(name)
        self._write_pointer(name)
        self._pointer_sig = _pointer_signature(self._root / POINTER)  # type: ignore[operator]
        return generation

    def _remove_leftovers(self, current: str | None) -> None:
        """Delete generations other than ``current`` and files of the old layout (writer
        lock held)."""
        assert self._root is not None
        for entry in self._root.iterdir():
            if entry.name in (current, POINTER, WRITER_LOCK):
                continue
            if entry.is_dir() and _GENERATION_RE.match(entry.name):
                log.info("removing tantivy index generation %s (not current)", entry.name)
                shutil.rmtree(entry, ignore_errors=True)
            elif entry.is_file() and (
                _LEGACY_FILE_RE.match(entry.name) or entry.name == f"{POINTER}.tmp"
            ):
                with suppress(OSError):
                    entry.unlink()

    def _current(self) -> _Generation:
        """The live generation, following ``CURRENT`` when another index replaced it."""
        if self._closed:
            raise BackendError("the search index is closed")
        if self._root is None or self._builder:
            return self._gen
        sig = _pointer_signature(self._root / POINTER)
        if sig == self._pointer_sig:
            return self._gen
        with self._switch:
            sig = _pointer_signature(self._root / POINTER)
            if sig == self._pointer_sig:
                return self._gen
            name = self._read_pointer()
            old = self._gen
            if name is not None and name != old.name:
                try:
                    self._gen = self._open_generation(name)
                except (ValueError, OSError) as exc:
                    raise BackendError(f"cannot open tantivy index {name}: {exc}") from exc
                old.release(commit=False)
                self._clear_cache()
            self._pointer_sig = sig
            return self._gen

    def _writable(self) -> _Generation:
        """The live generation, with this index holding the folder's writer lock (write lock
        held by the caller)."""
        if self._closed:
            raise BackendError("the search index is closed")
        if self._root is not None and not self._builder and self._lock_fd is None:
            if not self._try_lock():
                raise BackendError(
                    f"cannot write to the tantivy index at {self._root}: another process "
                    "holds its writer lock"
                )
            self._mark_dirty()
            self._pointer_sig = None  # look again now that nobody else can switch
        return self._current()

    # -- writing -------------------------------------------------------------------------

    @contextmanager
    def _writing(self) -> Iterator[_Generation]:
        """One write call: committed when it ends outside ``bulk()``, rolled back when it
        fails there (a half-applied call is never committed by the next one)."""
        with self._lock:
            generation = self._writable()
            try:
                yield generation
                if self._bulk_depth == 0 and generation.commit():
                    self._clear_cache()
            except BaseException as exc:
                if self._bulk_depth == 0:
                    with suppress(ValueError, OSError):
                        generation.rollback()
                if isinstance(exc, ValueError | OSError):
                    raise BackendError(f"tantivy write failed: {exc}") from exc
                raise

    def _clear_cache(self) -> None:
        with self._cache_lock:
            self._cache.clear()

    def index(self, documents: Iterable[DatasetDocument]) -> None:
        latest = {doc.id: doc for doc in documents}
        built = [(doc_id, (_package_document(doc),)) for doc_id, doc in latest.items()]
        with self._writing() as generation:
            generation["packages"].replace("id", built)

    def delete(self, ids: Iterable[str]) -> None:
        with self._writing() as generation:
            writer = generation["packages"].get_writer()
            for doc_id in ids:
                writer.delete_documents_by_term("id", doc_id)

    def clear(self) -> None:
        # a delete by query, not tantivy's delete_all_documents: that one rewinds the writer's
        # operation stamps, and documents added after it can then vanish at the next commit
        everything = tantivy.Query.all_query()
        with self._writing() as generation:
            for logical in INDEX_NAMES:
                generation[logical].get_writer().delete_documents_by_query(everything)

    def index_resources(self, by_package: Mapping[str, Sequence[ResourceDocument]]) -> None:
        replaced = [
            (package_id, [_resource_document(d) for d in {d.id: d for d in docs}.values()])
            for package_id, docs in by_package.items()
        ]
        if not replaced:
            return
        with self._writing() as generation:
            generation["resources"].replace("package_id", replaced)

    def delete_resources(self, package_ids: Iterable[str]) -> None:
        self._delete_by("resources", "package_id", package_ids)

    def index_contents(self, by_resource: Mapping[str, Sequence[ContentDocument]]) -> None:
        replaced = [
            (resource_id, [_content_document(d) for d in {d.id: d for d in docs}.values()])
            for resource_id, docs in by_resource.items()
        ]
        if not replaced:
            return
        with self._writing() as generation:
            generation["contents"].replace("resource_id", replaced)

    def delete_contents(self, resource_ids: Iterable[str]) -> None:
        self._delete_by("contents", "resource_id", resource_ids)

    def delete_contents_of_packages(self, package_ids: Iterable[str]) -> None:
        self._delete_by("contents", "package_id", package_ids)

    def _delete_by(self, logical: str, key: str, values: Iterable[str]) -> None:
        values = list(dict.fromkeys(values))
        if not values:
            return
        with self._writing() as generation:
            writer = generation[logical].get_writer()
            for value in values:
                writer.delete_documents_by_term(key, value)

    @contextmanager
    def bulk(self) -> Iterator[SearchIndex]:
        """Write with one commit per logical index at the end (rolled back if the block
        raises)."""
        with self._lock:
            generation = self._writable()
            self._bulk_depth += 1
            try:
                yield self
            except BaseException:
                self._bulk_depth -= 1
                if self._bulk_depth == 0:
                    with suppress(ValueError, OSError):
                        generation.rollback()
                raise
            self._bulk_depth -= 1
            if self._bulk_depth == 0:
                try:
                    changed = generation.commit()
                except (ValueError, OSError) as exc:
                    with suppress(ValueError, OSError):
                        generation.rollback()
                    raise BackendError(f"tantivy commit failed: {exc}") from exc
                if changed:
                    self._clear_cache()

    @contextmanager
    def rebuilding(self) -> Iterator[SearchIndex]:
        """Fill a new generation beside the live one; on normal exit it is committed, made
        current (``CURRENT`` replaced atomically) and the old generation deleted. Writes to
        this index wait until the block ends (they would be lost with the old generation)."""
        if self._builder:
            raise BackendError("a rebuild cannot rebuild again")
        with self._lock:
            if self._bulk_depth:
                raise BackendError("cannot rebuild inside bulk()")
            self._writable()
            if self._root is None:
                fresh = _Generation(None, None, self._heap, self._threads)
            else:
                fresh = self._open_generation(self._next_generation_name())
            builder = self._new_builder(fresh)
            try:
                yield builder
                try:
                    fresh.commit()
                    if fresh.name is not None:
                        self._write_pointer(fresh.name)  # the switch, for every process
                except (ValueError, OSError) as exc:
                    raise BackendError(f"tantivy rebuild failed: {exc}") from exc
            except BaseException:
                builder._closed = True
                self._discard(fresh)
                raise
            builder._closed = True
            self._swap(fresh)

    def _new_builder(self, generation: _Generation) -> TantivySearchIndex:
        builder = object.__new__(type(self))
        builder.__dict__.update(self.__dict__)
        builder._lock = threading.RLock()
        builder._switch = threading.Lock()
        builder._cache_lock = threading.Lock()
        builder._cache = OrderedDict()
        builder._bulk_depth = 0
        builder._builder = True
        builder._lock_fd = None
        builder._gen = generation
        return builder

    def _discard(self, generation: _Generation) -> None:
        generation.release(commit=False)
        if generation.path is not None:
            shutil.rmtree(generation.path, ignore_errors=True)

    def _swap(self, generation: _Generation) -> None:
        """Answer from ``generation`` (which ``CURRENT`` names already) and delete the old."""
        with self._switch:
            old, self._gen = self._gen, generation
            if self._root is not None:
                self._pointer_sig = _pointer_signature(self._root / POINTER)
        self._clear_cache()
        self._discard(old)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._builder:
                return
            try:
                self._gen.release(commit=True)
                if self._lock_fd is not None and self._root is not None:
                    (self._root / WRITER_DIRTY).unlink(missing_ok=True)  # a clean stop
            finally:
                self._unlock()

    # -- reading: counts and administration ------------------------------------------------

    def count(self) -> int:
        return int(self._current()["packages"].index.searcher().num_docs)

    def ids(self) -> Iterator[tuple[str, datetime]]:
        searcher = self._current()["packages"].index.searcher()
        total = searcher.num_docs
        if total == 0:
            return
        for _, address in searcher.search(tantivy.Query.all_query(), total, count=False).hits:
            stored = searcher.doc(address)
            yield str(stored.get_first("id")), _from_micros(stored.get_first("modified") or 0)

    def stats(self) -> IndexStats:
        generation = self._current()
        per_index = {
            logical: int(generation[logical].index.searcher().num_docs) for logical in INDEX_NAMES
        }
        return IndexStats(
            documents=per_index["packages"],
            size_bytes=generation.size_bytes(),
            per_index=per_index,
        )

    def document_ids(self, index: str) -> Iterator[tuple[str, str]]:
        _check_index_name(index)
        searcher = self._current()[index].index.searcher()
        total = searcher.num_docs
        if total == 0:
            return
        key = "id" if index == "packages" else "package_id"
        for _, address in searcher.search(tantivy.Query.all_query(), total).hits:
            stored = searcher.doc(address)
            yield str(stored.get_first("id")), str(stored.get_first(key))

    def get_document(self, index: str, doc_id: str) -> dict[str, Any] | None:
        _check_index_name(index)
        part = self._current()[index]
        searcher = part.index.searcher()
        result = searcher.search(tantivy.Query.term_query(part.schema, "id", doc_id), 1)
        if not result.hits:
            return None
        return self._stored(searcher, result.hits[0][1])

    def browse(
        self, index: str, *, offset: int = 0, limit: int = 20
    ) -> tuple[int, list[dict[str, Any]]]:
        _check_index_name(index)
        searcher = self._current()[index].index.searcher()
        total = int(searcher.num_docs)
        if limit <= 0 or offset >= total:
            return total, []
        result = searcher.search(
            tantivy.Query.all_query(),
            limit,
            count=False,
            order_by_field="id",
            offset=offset,
            order=tantivy.Order.Asc,
        )
        return total, [self._stored(searcher, address) for _, address in result.hits]

    @staticmethod
    def _stored(searcher: Any, address: Any) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(searcher.doc(address).get_first("doc"))
        return document

    # -- package queries -------------------------------------------------------------------

    def _leaf(self, schema: Any, node: Term | Phrase | Prefix) -> Any:
        name = DEFAULT_FIELD if node.field is None else node.field
        extras_key = name[len(EXTRAS_PREFIX) :] if name.startswith(EXTRAS_PREFIX) else None
        if not is_text_field(name):
            if name == "id":
                if isinstance(node, Prefix):
                    pattern = _regex_literal(node.prefix) + "(?s:.*)"
                    return tantivy.Query.regex_query(schema, "id", pattern)
                return tantivy.Query.term_query(schema, "id", node.text)
            if isinstance(node, Prefix):
                pattern = _regex_literal(node.prefix) + "(?s:.*)"
                return tantivy.Query.regex_query(schema, name, pattern)
            return tantivy.Query.term_query(schema, name, node.text)
        if extras_key is not None:
            return self._text_leaf(schema, "extras", extras_key + _SEP, node)
        if name != DEFAULT_FIELD:
            return self._text_leaf(schema, name, "", node)
        return tantivy.Query.boolean_query(
            [
                (tantivy.Occur.Should, self._text_leaf(schema, source, "", node))
                for source in _DEFAULT_SOURCES
            ]
        )

    @staticmethod
    def _text_leaf(schema: Any, target: str, head: str, node: Term | Phrase | Prefix) -> Any:
        if isinstance(node, Prefix):
            prefix = node.prefix.lower()
            if tokenize(node.prefix) != [prefix]:
                return tantivy.Query.empty_query()
            return tantivy.Query.regex_query(
                schema, target, _regex_literal(head + prefix) + "(?s:.*)"
            )
        words = tokenize(node.text)
        if not words:
            return tantivy.Query.empty_query()
        if len(words) == 1:
            return tantivy.Query.term_query(schema, target, head + words[0])
        return tantivy.Query.phrase_query(schema, target, [head + w for w in words])

    def _convert(self, node: Query, leaf: Callable[[Term | Phrase | Prefix], Any]) -> Any:
        if isinstance(node, MatchAll):
            return tantivy.Query.all_query()
        if isinstance(node, Term | Phrase | Prefix):
            return leaf(node)
        if isinstance(node, Not):
            return tantivy.Query.boolean_query(
                [
                    (tantivy.Occur.Must, tantivy.Query.all_query()),
                    (tantivy.Occur.MustNot, self._convert(node.child, leaf)),
                ]
            )
        if isinstance(node, And):
            clauses = []
            for child in node.children:
                if isinstance(child, Not):
                    clauses.append((tantivy.Occur.MustNot, self._convert(child.child, leaf)))
                else:
                    clauses.append((tantivy.Occur.Must, self._convert(child, leaf)))
            if all(occur == tantivy.Occur.MustNot for occur, _ in clauses):
                clauses.append((tantivy.Occur.Must, tantivy.Query.all_query()))
            return tantivy.Query.boolean_query(clauses)
        if isinstance(node, Or):
            return tantivy.Query.boolean_query(
                [(tantivy.Occur.Should, self._convert(child, leaf)) for child in node.children]
            )
        raise SearchQueryError(f"Search Query is invalid: not a query node: {node!r}")

    @staticmethod
    def _visibility(schema: Any, q: SearchQuery) -> Any:
        if q.labels is None:
            states = sorted(q.states)
            if len(states) == 1:
                return tantivy.Query.term_query(schema, "state", states[0])
            return tantivy.Query.term_set_query(schema, "state", states)
        terms = sorted(f"{state}{_SEP}{label}" for state in q.states for label in q.labels)
        if len(terms) == 1:
            return tantivy.Query.term_query(schema, "visibility", terms[0])
        return tantivy.Query.term_set_query(schema, "visibility", terms)

    def _full_query(self, schema: Any, q: SearchQuery) -> Any:
        """The query, the filters and visibility; filters and visibility are not scored."""

        def leaf(node: Term | Phrase | Prefix) -> Any:
            return self._leaf(schema, node)

        unscored = [self._convert(f, leaf) for f in q.filters]
        unscored.append(self._visibility(schema, q))
        if isinstance(q.query, MatchAll) and len(unscored) == 1:
            return unscored[0]  # every visible document; scores do not matter
        clauses = [(tantivy.Occur.Must, self._convert(q.query, leaf))]
        for query in unscored:
            clauses.append((tantivy.Occur.Must, tantivy.Query.const_score_query(query, 0.0)))
        return tantivy.Query.boolean_query(clauses)

    def query(self, q: SearchQuery) -> SearchPage:
        if not q.states or (q.labels is not None and not q.labels):
            return SearchPage(total=0, facets={f.field: () for f in q.facets})
        generation = self._current()
        part = generation["packages"]
        key = None
        if self._cache_size and q.facets:
            key = (generation.name, self._commit_mark(part), q)  # before the searcher
            with self._cache_lock:
                cached = self._cache.get(key)
            if cached is not None:
                return cached
        searcher = part.index.searcher()
        try:
            page = self._run(part.schema, searcher, q)
        except (ValueError, OSError) as exc:
            raise BackendError(f"tantivy query failed: {exc}") from exc
        if key is not None:
            with self._cache_lock:
                self._cache[key] = page
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return page

    @staticmethod
    def _commit_mark(part: _Part) -> Any:
        """What changes with every commit of ``part``: the count of this index's commits and,
        on disk, the commit file (another process's commits; the reader is brought up to it
        first, so a page cached under this mark was computed from it or a later commit)."""
        if part.path is None:
            return part.commits
        meta = _pointer_signature(part.path / "meta.json")
        if meta != part.seen_meta:
            part.index.reload()
            part.seen_meta = meta
        return (part.commits, meta)

    def _run(self, schema: Any, searcher: Any, q: SearchQuery) -> SearchPage:
        full = self._full_query(schema, q)
        sort = list(q.effective_sort)
        if isinstance(q.query, MatchAll):
            sort = [key for key in sort if key.field != "score"]
        if not sort or sort[0].field != "score":
            total, hits = self._sorted_page(schema, searcher, full, q, sort)
        else:
            total, hits = self._scored_page(searcher, full, q)
        facets = self._facets(searcher, full, q, total) if q.facets else {}
        return SearchPage(total=total, hits=hits, facets=facets)

    def _hit(self, stored: Any, score: float, q: SearchQuery) -> SearchHit:
        marks = {}
        if q.highlight:
            doc = json.loads(stored.get_first("doc"))
            marks = highlight(q.query, {"title": doc["title"], "notes": doc["notes"]})
        return SearchHit(id=stored.get_first("id"), score=score, highlights=marks)

    def _scored_page(
        self, searcher: Any, full: Any, q: SearchQuery
    ) -> tuple[int, tuple[SearchHit, ...]]:
        wanted = max(1, min(q.offset + q.limit, searcher.num_docs))
        result = searcher.search(full, wanted)
        if q.limit == 0 or q.offset >= result.count:
            return result.count, ()
        rows = [(float(s), searcher.doc(a)) for s, a in result.hits]
        rows.sort(key=lambda row: row[1].get_first("id"))
        rows.sort(key=lambda row: row[0], reverse=True)
        page = rows[q.offset : q.offset + q.limit]
        return result.count, tuple(self._hit(stored, score, q) for score, stored in page)

    def _sorted_page(
        self, schema: Any, searcher: Any, full: Any, q: SearchQuery, sort: list[SortKey]
    ) -> tuple[int, tuple[SearchHit, ...]]:
        """Order by fast columns: tantivy ranks by the first key; documents that tie with the
        last one fetched are all fetched too, and the candidates are sorted exactly."""
        wanted = max(1, min(q.offset + q.limit, searcher.num_docs))
        if sort:
            column = _SORT_COLUMNS[sort[0].field]
            order = tantivy.Order.Desc if sort[0].descending else tantivy.Order.Asc
        else:  # only ties left: the final tie-break alone
            column, order = "id", tantivy.Order.Asc
        result = searcher.search(full, wanted, order_by_field=column, order=order)
        total = result.count
        if q.limit == 0 or q.offset >= total:
            return total, ()
        candidates = {self._address_key(a): a for _, a in result.hits}
        if len(result.hits) == wanted and total > wanted:
            boundary = result.hits[-1][0]
            tie = tantivy.Query.boolean_query(
                [
                    (tantivy.Occur.Must, full),
                    (tantivy.Occur.Must, tantivy.Query.term_query(schema, column, boundary)),
                ]
            )
            count = searcher.search(tie, 1).count
            if count > 1:
                for _, address in searcher.search(tie, count, count=False).hits:
                    candidates[self._address_key(address)] = address
        rows = [searcher.doc(address) for address in candidates.values()]
        rows.sort(key=lambda stored: stored.get_first("id"))
        for key in reversed(sort):
            if key.field == "score":
                continue
            name = _SORT_COLUMNS[key.field]
            rows.sort(key=lambda stored: stored.get_first(name), reverse=key.descending)
        page = rows[q.offset : q.offset + q.limit]
        return total, tuple(self._hit(stored, 0.0, q) for stored in page)

    @staticmethod
    def _address_key(address: Any) -> tuple[int, int]:
        return (address.segment_ord, address.doc)

    def _facets(
        self, searcher: Any, full: Any, q: SearchQuery, total: int
    ) -> dict[str, tuple[Any, ...]]:
        if total == 0:
            return {request.field: () for request in q.facets}
        by_postings = total >= _POSTINGS_FACETS_MIN_DOCS and (
            total >= _POSTINGS_FACETS_SHARE * searcher.num_docs
        )
        counts: dict[str, list[tuple[str, int]]] = {}
        if by_postings and hasattr(searcher, "terms_with_prefix"):
            for request in q.facets:
                if request.field not in counts:
                    pairs = searcher.terms_with_prefix(request.field, "", filter_query=full)
                    counts[request.field] = pairs
        else:
            aggs = {}
            for request in q.facets:
                aggs[request.field] = {
                    "terms": {
                        "field": request.field,
                        "size": _ALL_VALUES,
                        "segment_size": _ALL_VALUES,
                    }
                }
            result = searcher.aggregate(full, aggs)
            for name in aggs:
                buckets = result.get(name, {}).get("buckets", [])
                counts[name] = [(b["key"], b["doc_count"]) for b in buckets]
        return {request.field: _top(counts[request.field], request) for request in q.facets}

    # -- resources and contents queries ------------------------------------------------------

    def query_resources(self, q: TextQuery) -> TextPage:
        return self._text_query("resources", q)

    def query_contents(self, q: TextQuery) -> TextPage:
        return self._text_query("contents", q)

    def _text_query(self, logical: str, q: TextQuery) -> TextPage:
        if q.package_ids is not None and not q.package_ids:
            return TextPage(total=0)
        part = self._current()[logical]
        schema = part.schema
        searcher = part.index.searcher()

        def leaf(node: Term | Phrase | Prefix) -> Any:
            return self._text_leaf(schema, "text", "", node)

        query = self._convert(q.query, leaf)
        if q.package_ids is not None:
            restrict = tantivy.Query.term_set_query(schema, "package_id", sorted(q.package_ids))
            query = tantivy.Query.boolean_query(
                [
                    (tantivy.Occur.Must, query),
                    (tantivy.Occur.Must, tantivy.Query.const_score_query(restrict, 0.0)),
                ]
            )
        try:
            total, rows = self._text_rows(searcher, query, q)
        except (ValueError, OSError) as exc:
            raise BackendError(f"tantivy query failed: {exc}") from exc
        hits = []
        resource_key = "id" if logical == "resources" else "resource_id"
        for score, address in rows:
            stored = searcher.doc(address)
            marks = {}
            if q.highlight:
                doc = json.loads(stored.get_first("doc") or b"{}")
                if logical == "resources":
                    fields = {"name": doc["name"], "description": doc["description"]}
                else:
                    fields = {"text": doc["text"]}
                marks = highlight(q.query, fields)
            hits.append(
                TextHit(
                    id=str(stored.get_first("id")),
                    resource_id=str(stored.get_first(resource_key)),
                    package_id=str(stored.get_first("package_id")),
                    score=score,
                    highlights=marks,
                )
            )
        return TextPage(total=total, hits=tuple(hits))

    def _text_rows(self, searcher: Any, query: Any, q: TextQuery) -> tuple[int, list[Any]]:
        """The page of (score, address) ordered by score descending then id.

        Every document scoring the same as one on the page is fetched (up to
        ``_MAX_TIE_CANDIDATES``) and ties are ordered by id, read from the stored documents.
        Equal scores are common (tantivy quantises field lengths); when more than
        ``_STORED_ID_READS`` documents share the page's scores, they stay in index order
        instead (stable for a given commit), which bounds the cost of a page."""
        wanted = q.offset + q.limit
        if not _has_scoring_leaf(q.query):  # every score the same: by id alone
            result = searcher.search(
                query, max(1, wanted), order_by_field="id", order=tantivy.Order.Asc
            )
            if q.limit == 0 or q.offset >= result.count:
                return result.count, []
            rows = [(1.0, address) for _, address in result.hits]
            return result.count, rows[q.offset : wanted]
        size = max(1, wanted)
        while True:
            result = searcher.search(query, size)
            total, hits = result.count, result.hits
            if q.limit == 0 or q.offset >= total:
                return total, []
            if len(hits) < size or hits[-1][0] < hits[wanted - 1][0]:
                break
            if size >= _MAX_TIE_CANDIDATES:
                break
            size = min(size * 4, _MAX_TIE_CANDIDATES)
        ranked = sorted(((float(score), address) for score, address in hits), key=_by_score)
        window = {score for score, _ in ranked[q.offset : wanted]}
        above = sum(1 for score, _ in ranked if score > max(window))
        group = [(score, address) for score, address in ranked if score in window]
        if len(group) <= _STORED_ID_READS:
            keyed = [(score, searcher.doc(a).get_first("id"), a) for score, a in group]
        else:  # reading thousands of stored documents costs more than exact ties are worth
            keyed = [(score, self._address_key(a), a) for score, a in group]
        keyed.sort(key=lambda row: (-row[0], row[1]))
        page = keyed[q.offset - above : wanted - above]
        return total, [(score, address) for score, _, address in page]


def _top(pairs: list[tuple[str, int]], request: FacetRequest) -> tuple[FacetCount, ...]:
    """``top_facet_counts`` for (value, count) pairs, without sorting every value when only
    the top ``limit`` are wanted."""
    mincount = max(request.mincount, 1)
    kept = [(-n, value) for value, n in pairs if n >= mincount]
    if 0 <= request.limit < len(kept):
        kept = heapq.nsmallest(request.limit, kept)
    else:
        kept.sort()
    return tuple(FacetCount(value, -n) for n, value in kept)


def _by_score(row: tuple[float, Any]) -> float:
    return -row[0]


def _has_scoring_leaf(query: Query) -> bool:
    """Whether some word or phrase of ``query`` scores (outside a ``Not``); otherwise
    tantivy gives every hit the same score (prefixes score a constant)."""
    stack: list[tuple[Query, bool]] = [(query, False)]
    while stack:
        node, negated = stack.pop()
        if isinstance(node, Not):
            stack.append((node.child, not negated))
        elif isinstance(node, And | Or):
            stack.extend((child, negated) for child in node.children)
        elif isinstance(node, Term | Phrase) and not negated and tokenize(node.text):
            return True
    return False
