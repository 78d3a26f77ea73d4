"""A search index on Whoosh (the maintained ``whoosh-reloaded`` distribution), pure Python.

URLs: ``whoosh:///abs/path`` (or a plain path) keeps the index in that folder, creating it if
needed; ``whoosh://`` keeps it in memory; ``whoosh://relative/path`` is relative to the
working directory.

Fields: text fields use ``SeparatedWordsTokenizer`` (the domain tokeniser, with a position gap
between the values of a multi-valued field) and a lowercase filter; keyword fields use
``ValuesTokenizer`` (each value one term, case kept). Faceted keyword fields also keep their
values in a list column (``ListKeyword``), which makes facet counting many times faster than
reading postings. The schema is pickled into the index, so these classes live here, in an
importable module, and must keep their names.

Folder layout: ``CURRENT`` names the live generation (``gen-000001``, ...), a sub-folder that
holds the three logical indices as Whoosh indices named ``packages``, ``resources`` and
``contents``. ``rebuilding()`` fills a new generation beside the live one, flushes its files
to disk, replaces ``CURRENT`` with ``os.replace`` and deletes the old generation. Every open
index, in this process or another, reads ``CURRENT`` before each call and reopens at the new
generation when it changed, so readers switch from the whole old index to the whole new one.
A builder holds a lock file (``BUILDING``) in its generation while it works; generations that
are not current and whose lock nobody holds (left by a rebuild that crashed) are deleted at
the next open.

A folder written before generations existed (the packages index named ``MAIN`` in the folder
itself, no ``CURRENT``) opens as it is; its resources and contents indices start empty and are
created beside it on first write. Its first rebuild moves it to a generation and deletes the
old files.

Whoosh commits are slow (about 0.1 s each at 100k documents); use ``bulk()`` for loads, which
buffers the changes and writes them with one writer and one commit per logical index.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import attrs
from whoosh import columns, fields, index, query, sorting
from whoosh.analysis import LowercaseFilter, Token, Tokenizer
from whoosh.filedb.filestore import FileStorage, RamStorage
from whoosh.util.filelock import FileLock
from whoosh.writing import CLEAR

from opencatalog.domain.search import (
    _TOKEN_RE,
    DEFAULT_FIELD,
    EXTRAS_PREFIX,
    FACET_FIELDS,
    INDEX_NAMES,
    And,
    ContentDocument,
    DatasetDocument,
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
    Term,
    TextHit,
    TextPage,
    TextQuery,
    facet_values,
    field_values,
    highlight,
    is_text_field,
    tokenize,
    top_facet_counts,
)
from opencatalog.errors import BackendError, ConfigurationError, SearchQueryError
from opencatalog.ports.search import IndexStats, SearchIndex

__all__ = ["ListKeyword", "SeparatedWordsTokenizer", "ValuesTokenizer", "WhooshSearchIndex"]

log = logging.getLogger(__name__)

SEPARATOR = "\x1e"
"""Joins the values of a multi-valued field into the one string Whoosh takes per field."""

POINTER = "CURRENT"
"""The file in an index folder that names the live generation."""

_GENERATION_RE = re.compile(r"gen-[0-9]{6,}\Z")
_BUILD_LOCK = "BUILDING"
_FOLDER_LOCK = "opencatalog.lock"
_LEGACY = ""
"""The generation name of the layout before generations: the index folder itself."""
_WHOOSH_NAMES = {"packages": "packages", "resources": "resources", "contents": "contents"}
_LEGACY_NAMES = {"packages": "MAIN", "resources": "resources", "contents": "contents"}
_LEGACY_FILE_RE = re.compile(r"_?(MAIN|resources|contents)_")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TEXT = ("text", "title", "notes", "res_name", "res_description", "author", "maintainer")
_KEYWORD = (
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
_SORT_FIELDS = {
    "name": "name",
    "title": "title_sort",
    "metadata_modified": "modified",
    "metadata_created": "created",
}
_HIGHLIGHTED = {
    "packages": ("title", "notes"),
    "resources": ("name", "description"),
    "contents": ("text",),
}


class SeparatedWordsTokenizer(Tokenizer):
    """Runs of letters and digits in each ``SEPARATOR``-joined value, with a one-position
    gap between values so that phrases never span two values."""

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self)

    def __hash__(self) -> int:
        return hash(type(self).__name__)

    def __call__(
        self,
        value: str,
        positions: bool = False,
        chars: bool = False,
        keeporiginal: bool = False,
        removestops: bool = True,
        start_pos: int = 0,
        start_char: int = 0,
        tokenize: bool = True,
        mode: str = "",
        **kwargs: Any,
    ) -> Iterator[Token]:
        token = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        if not tokenize:
            token.original = token.text = value
            token.boost = 1.0
            if positions:
                token.pos = start_pos
            if chars:
                token.startchar, token.endchar = start_char, start_char + len(value)
            yield token
            return
        pos = start_pos
        offset = 0
        for part in value.split(SEPARATOR):
            for match in _TOKEN_RE.finditer(part):
                token.text = match.group()
                token.boost = 1.0
                token.stopped = False
                if keeporiginal:
                    token.original = token.text
                if positions:
                    token.pos = pos
                if chars:
                    token.startchar = start_char + offset + match.start()
                    token.endchar = start_char + offset + match.end()
                pos += 1
                yield token
            pos += 1
            offset += len(part) + 1


class ValuesTokenizer(Tokenizer):
    """Each ``SEPARATOR``-joined value is one token, unchanged."""

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self)

    def __hash__(self) -> int:
        return hash(type(self).__name__)

    def __call__(
        self,
        value: str,
        positions: bool = False,
        chars: bool = False,
        keeporiginal: bool = False,
        removestops: bool = True,
        start_pos: int = 0,
        start_char: int = 0,
        tokenize: bool = True,
        mode: str = "",
        **kwargs: Any,
    ) -> Iterator[Token]:
        token = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        parts = value.split(SEPARATOR) if tokenize else [value]
        offset = 0
        for index_, part in enumerate(parts):
            if part:
                token.text = part
                token.boost = 1.0
                token.stopped = False
                if keeporiginal:
                    token.original = part
                if positions:
                    token.pos = start_pos + index_
                if chars:
                    token.startchar = start_char + offset
                    token.endchar = start_char + offset + len(part)
                yield token
            offset += len(part) + 1


class _ValuesColumn(columns.VarBytesListColumn):
    """Whoosh's list-of-bytes column with the default a segment without the column needs
    (whoosh's own class has none: faceting on a segment where no document holds the field
    raised AttributeError)."""

    _default: list[bytes] = []  # never mutated: readers hand it out as "no values"


class ListKeyword(fields.KEYWORD):
    """A keyword field of ``SEPARATOR``-joined values, optionally with a list column (one
    list of values per document) for fast facet counts."""

    def __init__(self, *, stored: bool = False, column: bool = False) -> None:
        super().__init__(stored=stored, scorable=True, analyzer=ValuesTokenizer())
        self.column_type = _ValuesColumn() if column else None

    def to_column_value(self, value: str) -> list[bytes]:
        return [part.encode("utf-8") for part in dict.fromkeys(value.split(SEPARATOR)) if part]

    def from_column_value(self, value: list[bytes]) -> list[str]:
        return [part.decode("utf-8") for part in value]


def _micros(value: datetime) -> int:
    if value.tzinfo is None:
        raise ValueError("search documents need timezone-aware datetimes")
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _analyzer() -> Any:
    return SeparatedWordsTokenizer() | LowercaseFilter()


def _schema() -> fields.Schema:
    """The packages index. ``document`` holds the whole ``DatasetDocument`` as JSON (for
    ``get_document`` and highlights); folders written before it existed store ``title`` and
    ``notes`` instead."""
    schema = fields.Schema(
        id=fields.ID(stored=True, unique=True, sortable=True),
        name=fields.ID(stored=True, sortable=True),
        title_sort=fields.ID(sortable=True),
        modified=fields.NUMERIC(numtype=int, bits=64, signed=True, stored=True, sortable=True),
        created=fields.NUMERIC(numtype=int, bits=64, signed=True, stored=True, sortable=True),
        document=fields.STORED(),
    )
    for name in _TEXT:
        schema.add(name, fields.TEXT(analyzer=_analyzer()))
    for name in _KEYWORD:
        schema.add(name, ListKeyword(column=name in FACET_FIELDS))
    schema.add(EXTRAS_PREFIX + "*", fields.TEXT(analyzer=_analyzer()), glob=True)
    return schema


def _resource_schema() -> fields.Schema:
    """The resources index: words match ``text`` (name, description and format, one value
    each); the rest is stored."""
    return fields.Schema(
        id=fields.ID(stored=True, unique=True, sortable=True),
        package_id=fields.ID(stored=True, sortable=True),
        text=fields.TEXT(analyzer=_analyzer()),
        name=fields.STORED(),
        description=fields.STORED(),
        format=fields.STORED(),
        url=fields.STORED(),
        position=fields.STORED(),
    )


def _content_schema() -> fields.Schema:
    """The contents index: words match ``text``; ``body`` stores the chunk unchanged."""
    return fields.Schema(
        id=fields.ID(stored=True, unique=True, sortable=True),
        resource_id=fields.ID(stored=True),
        package_id=fields.ID(stored=True, sortable=True),
        chunk=fields.STORED(),
        content_type=fields.STORED(),
        text=fields.TEXT(analyzer=_analyzer()),
        body=fields.STORED(),
    )


_SCHEMAS: dict[str, Callable[[], fields.Schema]] = {
    "packages": _schema,
    "resources": _resource_schema,
    "contents": _content_schema,
}

_NULL = query.NullQuery


def _joined(values: Iterable[str]) -> str:
    """Text values as one field value; a ``SEPARATOR`` inside a value (a separator for the
    tokeniser anyway) becomes a space so it adds no position gap."""
    return SEPARATOR.join(value.replace(SEPARATOR, " ") for value in values)


def _json_ready(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_ready(v) for v in value]
    return value


def _iso(micros: int) -> str:
    return (_EPOCH + timedelta(microseconds=micros)).isoformat()


def _check_index_name(name: str) -> str:
    if name not in INDEX_NAMES:
        raise SearchQueryError(
            f'Search Query is invalid: no index "{name}" (indices: {", ".join(INDEX_NAMES)})'
        )
    return name


def _stored_document(logical: str, stored: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON-ready form of a document from its stored fields."""
    if logical == "packages":
        if "document" in stored:
            result: dict[str, Any] = json.loads(stored["document"])
            return result
        return {  # written before whole documents were stored
            "id": stored["id"],
            "name": stored.get("name", ""),
            "title": stored.get("title", ""),
            "notes": stored.get("notes", ""),
            "metadata_created": _iso(stored["created"]),
            "metadata_modified": _iso(stored["modified"]),
        }
    if logical == "resources":
        return {
            "id": stored["id"],
            "package_id": stored["package_id"],
            "name": stored.get("name", ""),
            "description": stored.get("description", ""),
            "format": stored.get("format", ""),
            "url": stored.get("url", ""),
            "position": stored.get("position", 0),
        }
    return {
        "id": stored["id"],
        "resource_id": stored["resource_id"],
        "package_id": stored["package_id"],
        "chunk": stored.get("chunk", 0),
        "text": stored.get("body", ""),
        "content_type": stored.get("content_type", "text"),
    }


def _highlight_fields(logical: str, stored: Mapping[str, Any]) -> dict[str, str]:
    document = _stored_document(logical, stored)
    return {name: document.get(name) or "" for name in _HIGHLIGHTED[logical]}


def _score(hit: Any, by_score: bool) -> float:
    """The relevance score of a hit found with ``sortedby`` (whose ``score`` is the sort key
    tuple; a ``ScoreFacet`` key is the negated score)."""
    key = hit.score
    if isinstance(key, tuple):
        return float(-key[0]) if by_score and key else 0.0
    return float(key or 0.0)


def _sync_folder(folder: Path, *, files: bool = True) -> None:
    """Flush the files of ``folder`` (when ``files``) and then its entries to disk (the
    entries only where the platform can open a folder, not on Windows)."""
    if files:
        for path in folder.iterdir():
            if path.is_file():
                with open(path, "rb") as stream:
                    os.fsync(stream.fileno())
    if os.name != "nt":
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


class _Generation:
    """The three Whoosh indices of one generation (in a folder or in memory) and their open
    searchers. ``name`` is what ``CURRENT`` holds for it (``_LEGACY`` for the folder itself,
    None in memory). Not thread-safe: the owning index serialises calls."""

    def __init__(self, storage: Any, name: str | None, *, legacy: bool = False) -> None:
        self.storage = storage
        self.name = name
        self._names = _LEGACY_NAMES if legacy else _WHOOSH_NAMES
        self._indexes: dict[str, Any] = {}
        self._searchers: dict[str, Any] = {}

    @classmethod
    def in_memory(cls) -> _Generation:
        generation = cls(RamStorage(), None)
        generation.create_missing()
        return generation

    def create_missing(self) -> None:
        for logical in INDEX_NAMES:
            self.index(logical, create=True)

    def index(self, logical: str, *, create: bool) -> Any | None:
        """The Whoosh index of ``logical``; a missing one is created when ``create``, else
        None (the legacy layout's resources and contents before their first write)."""
        ix = self._indexes.get(logical)
        if ix is None:
            name = self._names[logical]
            if self.storage.index_exists(name):
                ix = self.storage.open_index(name)
            elif create:
                ix = self.storage.create_index(_SCHEMAS[logical](), name)
            else:
                return None
            self._indexes[logical] = ix
        return ix

    def searcher(self, logical: str) -> Any | None:
        """An up-to-date searcher of ``logical`` (None when that index does not exist)."""
        searcher = self._searchers.get(logical)
        if searcher is None:
            ix = self.index(logical, create=False)
            if ix is None:
                return None
            searcher = self._searchers[logical] = ix.searcher()
        elif not searcher.up_to_date():
            if searcher.doc_count_all() == 0:  # refresh() fails on an empty reader
                searcher.close()
                searcher = self._searchers[logical] = self._indexes[logical].searcher()
            else:
                searcher = self._searchers[logical] = searcher.refresh()
        return searcher

    def changed(self, logical: str) -> None:
        """Drop the searcher of ``logical`` after a write (the next read opens a new one)."""
        searcher = self._searchers.pop(logical, None)
        if searcher is not None:
            searcher.close()

    def close(self) -> None:
        for searcher in self._searchers.values():
            searcher.close()
        self._searchers.clear()
        for ix in self._indexes.values():
            ix.close()
        self._indexes.clear()


class _Pending:
    """Changes buffered by ``bulk()``, coalesced to their final state per key."""

    def __init__(self) -> None:
        self.packages: dict[str, DatasetDocument | None] = {}
        self.resources: dict[str, list[ResourceDocument]] = {}
        self.contents: dict[str, list[ContentDocument]] = {}
        self.contents_of_packages: set[str] = set()

    def __bool__(self) -> bool:
        return bool(self.packages or self.resources or self.contents or self.contents_of_packages)

    def set_packages(self, changes: Mapping[str, DatasetDocument | None]) -> None:
        for doc_id, doc in changes.items():
            self.packages.pop(doc_id, None)  # keep the order of the last change
            self.packages[doc_id] = doc

    def set_resources(self, by_package: Mapping[str, Sequence[ResourceDocument]]) -> None:
        for package_id, docs in by_package.items():
            self.resources.pop(package_id, None)
            self.resources[package_id] = list(docs)

    def set_contents(self, by_resource: Mapping[str, Sequence[ContentDocument]]) -> None:
        for resource_id, docs in by_resource.items():
            self.contents.pop(resource_id, None)
            self.contents[resource_id] = list(docs)

    def drop_contents_of_packages(self, package_ids: Iterable[str]) -> None:
        dropped = set(package_ids)
        self.contents_of_packages |= dropped
        for resource_id, docs in self.contents.items():
            if any(doc.package_id in dropped for doc in docs):
                self.contents[resource_id] = []


class WhooshSearchIndex(SearchIndex):
    """A ``SearchIndex`` on Whoosh (``path`` None: in memory).

    ``writer_limit_mb`` is the writer's memory budget for bulk loads. Calls are serialised
    by a lock (Whoosh searchers are not meant to be shared between threads); a rebuild fills
    its new generation without holding it, so queries go on meanwhile.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        writer_limit_mb: int = 256,
        limits: QueryLimits = QueryLimits(),
    ) -> None:
        self._setup(writer_limit_mb, limits)
        self._root = None if path is None else Path(path)
        try:
            self._gen = _Generation.in_memory() if self._root is None else self._open_folder()
        except (OSError, index.IndexError) as exc:
            raise ConfigurationError(
                f"cannot open the Whoosh index at {self._root}: {exc}"
            ) from exc

    def _setup(self, writer_limit_mb: int, limits: QueryLimits) -> None:
        self._limit_mb = writer_limit_mb
        self._limits = limits
        self._lock = threading.RLock()
        self._rebuild_lock = threading.RLock()
        self._pending: _Pending | None = None
        self._closed = False
        self._building = False

    @classmethod
    def _builder(cls, generation: _Generation, like: WhooshSearchIndex) -> WhooshSearchIndex:
        """The index ``rebuilding()`` yields: writes go to ``generation`` only."""
        builder = cls.__new__(cls)
        builder._setup(like._limit_mb, like._limits)
        builder._root = None
        builder._gen = generation
        builder._building = True
        return builder

    @classmethod
    def from_url(cls, url: str, **options: Any) -> WhooshSearchIndex:
        """``whoosh://`` (in memory), ``whoosh:///abs/path``, ``whoosh://rel/path`` or a plain
        path; ``options`` are the constructor's keyword arguments."""
        if "://" not in url:
            return cls(url, **options)
        parts = urlsplit(url)
        if parts.scheme != "whoosh":
            raise ConfigurationError(f"not a Whoosh search index URL: {url!r}")
        path = unquote(parts.netloc + parts.path)
        return cls(path or None, **options)

    # -- the folder: generations, pointer, leftovers -------------------------------------

    @property
    def _folder(self) -> Path:
        assert self._root is not None
        return self._root

    @contextmanager
    def _folder_lock(self) -> Iterator[None]:
        """Serialises opening, swapping and cleaning across processes (briefly held)."""
        lock = FileLock(str(self._folder / _FOLDER_LOCK))
        if not lock.acquire(blocking=True):
            raise BackendError(f"cannot lock the Whoosh index folder {self._folder}")
        try:
            yield
        finally:
            lock.release()

    def _read_pointer(self) -> str | None:
        try:
            name = (self._folder / POINTER).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        if not _GENERATION_RE.match(name):
            log.warning("ignoring %s: not a generation name: %r", self._folder / POINTER, name)
            return None
        return name

    def _write_pointer(self, name: str) -> None:
        """Make ``name`` the live generation: its files are flushed to disk first, then
        ``CURRENT`` is replaced in one step."""
        _sync_folder(self._folder / name)
        temp = self._folder / f"{POINTER}.{os.getpid()}.tmp"
        with open(temp, "w", encoding="utf-8") as stream:
            stream.write(name + "\n")
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, self._folder / POINTER)
        _sync_folder(self._folder, files=False)

    def _generation(self, name: str, *, create: bool) -> _Generation:
        if name == _LEGACY:
            return _Generation(FileStorage(str(self._folder)), _LEGACY, legacy=True)
        folder = self._folder / name
        generation = _Generation(FileStorage(str(folder)), name)
        if create:
            folder.mkdir(exist_ok=True)
            generation.create_missing()
        return generation

    def _next_generation_name(self) -> str:
        numbers = [0]
        current = self._read_pointer()
        for name in [current or "", *(p.name for p in self._folder.iterdir())]:
            if _GENERATION_RE.match(name):
                numbers.append(int(name[len("gen-") :]))
        return f"gen-{max(numbers) + 1:06d}"

    def _open_folder(self) -> _Generation:
        self._folder.mkdir(parents=True, exist_ok=True)
        with self._folder_lock():
            name = self._read_pointer()
            if name is None:
                if FileStorage(str(self._folder)).index_exists(_LEGACY_NAMES["packages"]):
                    name = _LEGACY
                else:
                    name = self._next_generation_name()
                    self._generation(name, create=True).close()
                    self._write_pointer(name)
            generation = self._generation(name, create=name != _LEGACY)
            self._remove_leftovers(name)
        return generation

    def _remove_leftovers(self, current: str) -> None:
        """Delete generations other than ``current`` that no builder is filling, pointer
        files that were never renamed and, once a generation is live, the legacy files.
        Call with the folder lock held."""
        for path in self._folder.iterdir():
            name = path.name
            try:
                if path.is_dir() and _GENERATION_RE.match(name) and name != current:
                    lock = FileLock(str(path / _BUILD_LOCK))
                    if lock.acquire(blocking=False):  # else a live rebuild owns it
                        lock.release()
                        log.info("removing search index generation %s", path)
                        shutil.rmtree(path, ignore_errors=True)
                elif self._is_leftover_file(path, current):
                    path.unlink()
            except OSError as exc:
                log.warning("cannot remove %s from the search index folder: %s", path, exc)

    @staticmethod
    def _is_leftover_file(path: Path, current: str) -> bool:
        name = path.name
        if name.startswith(POINTER + ".") and name.endswith(".tmp"):
            return True  # a pointer that was never renamed into place
        return current != _LEGACY and path.is_file() and bool(_LEGACY_FILE_RE.match(name))

    def _follow(self) -> bool:
        """Reopen at the generation ``CURRENT`` names when another index swapped it; True
        when it did."""
        if self._root is None:
            return False
        try:
            name = self._read_pointer()
        except OSError as exc:
            raise BackendError(f"cannot read {self._folder / POINTER}: {exc}") from exc
        if name is None or name == self._gen.name:
            return False
        old, self._gen = self._gen, self._generation(name, create=False)
        old.close()
        return True

    # -- writing -------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise BackendError("the search index is closed")

    @staticmethod
    def _fields(doc: DatasetDocument, *, whole: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": doc.id,
            "name": doc.name,
            "title_sort": doc.title.lower(),
            "modified": _micros(doc.metadata_modified),
            "created": _micros(doc.metadata_created),
        }
        if whole:
            document = _json_ready(attrs.asdict(doc, recurse=False))
            out["document"] = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
        else:
            out["title"], out["notes"] = doc.title, doc.notes
        for name in _TEXT:
            values = field_values(doc, name)
            if values:
                out[name] = _joined(values)
        for name in _KEYWORD:
            values = doc.labels if name == "labels" else facet_values(doc, name)
            if values:
                out[name] = SEPARATOR.join(values)
        for key, value in doc.extras.items():
            if value and key.replace("_", "a").isalnum() and key.isascii():
                out[EXTRAS_PREFIX + key] = _joined((value,))
        return out

    @staticmethod
    def _resource_fields(doc: ResourceDocument) -> dict[str, Any]:
        return {
            "id": doc.id,
            "package_id": doc.package_id,
            "text": _joined((doc.name, doc.description, doc.format)),
            "name": doc.name,
            "description": doc.description,
            "format": doc.format,
            "url": doc.url,
            "position": doc.position,
        }

    @staticmethod
    def _content_fields(doc: ContentDocument) -> dict[str, Any]:
        return {
            "id": doc.id,
            "resource_id": doc.resource_id,
            "package_id": doc.package_id,
            "chunk": doc.chunk,
            "content_type": doc.content_type,
            "text": _joined((doc.text,)),
            "body": doc.text,
        }

    def _commit(self, logical: str, fill: Callable[[Any], None], *, clear: bool = False) -> None:
        """One writer and one commit on ``logical`` (``clear``: drop every document)."""
        generation = self._gen
        try:
            ix = generation.index(logical, create=not clear)
            if ix is None:
                return
            writer = ix.writer(limitmb=self._limit_mb)
            try:
                fill(writer)
            except BaseException:
                writer.cancel()
                raise
            writer.commit(mergetype=CLEAR) if clear else writer.commit()
        except (OSError, index.LockError) as exc:
            raise BackendError(f"cannot write to the Whoosh index: {exc}") from exc
        finally:
            generation.changed(logical)

    def _write(self, pending: _Pending) -> None:
        self._check_open()
        self._follow()
        if pending.packages:
            changes = pending.packages

            def fill_packages(writer: Any) -> None:
                whole = "document" in writer.schema
                for doc_id, doc in changes.items():
                    if doc is None:
                        writer.delete_by_term("id", doc_id)
                    else:
                        writer.update_document(**self._fields(doc, whole=whole))

            self._commit("packages", fill_packages)
        if pending.resources:
            by_package = pending.resources

            def fill_resources(writer: Any) -> None:
                latest = {doc.id: doc for docs in by_package.values() for doc in docs}
                for package_id in by_package:
                    writer.delete_by_term("package_id", package_id)
                for doc in latest.values():
                    writer.update_document(**self._resource_fields(doc))

            self._commit("resources", fill_resources)
        if pending.contents or pending.contents_of_packages:
            by_resource, of_packages = pending.contents, pending.contents_of_packages

            def fill_contents(writer: Any) -> None:
                latest = {doc.id: doc for docs in by_resource.values() for doc in docs}
                for package_id in sorted(of_packages):
                    writer.delete_by_term("package_id", package_id)
                for resource_id in by_resource:
                    writer.delete_by_term("resource_id", resource_id)
                for doc in latest.values():
                    writer.update_document(**self._content_fields(doc))

            self._commit("contents", fill_contents)

    def _change(self, record: Callable[[_Pending], None]) -> None:
        """Record a change in the ``bulk()`` buffer, or write it now outside one."""
        with self._lock:
            if self._pending is not None:
                record(self._pending)
                return
            pending = _Pending()
            record(pending)
            if pending:
                self._write(pending)

    def index(self, documents: Iterable[DatasetDocument]) -> None:
        changes: dict[str, DatasetDocument | None] = {doc.id: doc for doc in documents}
        self._change(lambda pending: pending.set_packages(changes))

    def delete(self, ids: Iterable[str]) -> None:
        changes: dict[str, DatasetDocument | None] = dict.fromkeys(ids)
        self._change(lambda pending: pending.set_packages(changes))

    def index_resources(self, by_package: Mapping[str, Sequence[ResourceDocument]]) -> None:
        changes = {package_id: list(docs) for package_id, docs in by_package.items()}
        self._change(lambda pending: pending.set_resources(changes))

    def delete_resources(self, package_ids: Iterable[str]) -> None:
        changes: dict[str, list[ResourceDocument]] = {p: [] for p in package_ids}
        self._change(lambda pending: pending.set_resources(changes))

    def index_contents(self, by_resource: Mapping[str, Sequence[ContentDocument]]) -> None:
        changes = {resource_id: list(docs) for resource_id, docs in by_resource.items()}
        self._change(lambda pending: pending.set_contents(changes))

    def delete_contents(self, resource_ids: Iterable[str]) -> None:
        changes: dict[str, list[ContentDocument]] = {r: [] for r in resource_ids}
        self._change(lambda pending: pending.set_contents(changes))

    def delete_contents_of_packages(self, package_ids: Iterable[str]) -> None:
        ids = list(package_ids)
        self._change(lambda pending: pending.drop_contents_of_packages(ids))

    def clear(self) -> None:
        """Remove every document of the three logical indices."""
        with self._lock:
            if self._pending is not None:
                self._pending = _Pending()
            self._check_open()
            self._follow()
            for logical in INDEX_NAMES:
                self._commit(logical, lambda writer: None, clear=True)

    @contextmanager
    def bulk(self) -> Iterator[SearchIndex]:
        """Buffer changes and write them with one writer and one commit per logical index at
        the end (dropped if the block raises)."""
        with self._lock:
            outer = self._pending is None
            if outer:
                self._pending = _Pending()
            try:
                yield self
            except BaseException:
                if outer:
                    self._pending = None
                raise
            if outer:
                pending, self._pending = self._pending, None
                if pending:
                    self._write(pending)

    @contextmanager
    def rebuilding(self) -> Iterator[SearchIndex]:
        """Fill a new generation (a sibling folder, or new memory) and make it the live one
        when the block exits normally; discard it if the block raises.

        Queries and writes on this index keep using the old generation during the block;
        changes written to it meanwhile are not carried over (the caller rebuilds from
        storage with its own indexing paused). Other processes switch at their next call.
        """
        if self._building:  # a builder rebuilds in place
            yield self
            return
        with self._rebuild_lock:
            with self._lock:
                self._check_open()
                generation, build_lock = self._new_generation()
            builder = WhooshSearchIndex._builder(generation, self)
            try:
                yield builder
                with builder._lock:
                    if builder._pending:  # pragma: no cover - a bulk() block always flushes
                        builder._write(builder._pending)
                    builder._closed = True
                self._swap(generation, build_lock)
            except BaseException:
                builder._closed = True
                self._discard(generation, build_lock)
                raise

    def _new_generation(self) -> tuple[_Generation, FileLock | None]:
        if self._root is None:
            return _Generation.in_memory(), None
        try:
            with self._folder_lock():
                name = self._next_generation_name()
                (self._folder / name).mkdir()
                build_lock = FileLock(str(self._folder / name / _BUILD_LOCK))
                if not build_lock.acquire(blocking=False):  # pragma: no cover - a new folder
                    raise BackendError(f"cannot lock the new search index generation {name}")
                try:
                    generation = self._generation(name, create=True)
                except BaseException:
                    build_lock.release()
                    raise
        except OSError as exc:
            raise BackendError(f"cannot create a Whoosh index generation: {exc}") from exc
        return generation, build_lock

    def _swap(self, generation: _Generation, build_lock: FileLock | None) -> None:
        with self._lock:
            old = self._gen
            if self._root is None or build_lock is None:
                self._gen = generation
                old.close()
                return
            assert generation.name is not None
            try:
                with self._folder_lock():
                    self._write_pointer(generation.name)
                    build_lock.release()
                    self._gen = generation
                    old.close()
                    self._remove_leftovers(generation.name)
            except OSError as exc:
                raise BackendError(f"cannot switch the Whoosh index generation: {exc}") from exc
        log.info("search index rebuilt into %s", self._folder / generation.name)

    def _discard(self, generation: _Generation, build_lock: FileLock | None) -> None:
        generation.close()
        if build_lock is None or generation.name is None:
            return
        if build_lock.fd is not None:
            build_lock.release()
        shutil.rmtree(self._folder / generation.name, ignore_errors=True)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._gen.close()
            self._closed = True

    # -- reading -------------------------------------------------------------------------

    def _searcher(self, logical: str) -> Any | None:
        """An up-to-date searcher of ``logical`` in the live generation, or None when that
        index does not exist yet. Call with the lock held."""
        self._check_open()
        self._follow()
        try:
            return self._gen.searcher(logical)
        except (OSError, index.IndexError) as exc:
            # another index may have swapped generations and removed this one since the
            # pointer was read: follow it and try once more
            if self._follow():
                with suppress(OSError, index.IndexError):
                    return self._gen.searcher(logical)
            raise BackendError(f"cannot read the Whoosh index: {exc}") from exc

    def count(self) -> int:
        with self._lock:
            searcher = self._searcher("packages")
            return 0 if searcher is None else int(searcher.doc_count())

    @staticmethod
    def _column_pairs(searcher: Any, first: str, second: str) -> list[tuple[Any, Any]]:
        if searcher is None or searcher.doc_count() == 0:
            return []
        reader = searcher.reader()
        a, b = reader.column_reader(first), reader.column_reader(second)
        return [(a[docnum], b[docnum]) for docnum in reader.all_doc_ids()]

    def ids(self) -> Iterator[tuple[str, datetime]]:
        with self._lock:
            pairs = self._column_pairs(self._searcher("packages"), "id", "modified")
        return iter([(doc_id, _EPOCH + timedelta(microseconds=m)) for doc_id, m in pairs])

    def stats(self) -> IndexStats:
        with self._lock:
            per_index = {}
            for logical in INDEX_NAMES:
                searcher = self._searcher(logical)
                per_index[logical] = 0 if searcher is None else int(searcher.doc_count())
            size = 0
            if self._root is not None and self._gen.name is not None:
                folder = self._folder / self._gen.name if self._gen.name else self._folder
                for path in folder.iterdir():
                    with suppress(OSError):  # removed by a commit meanwhile
                        size += path.stat().st_size if path.is_file() else 0
        return IndexStats(documents=per_index["packages"], size_bytes=size, per_index=per_index)

    # -- administration --------------------------------------------------------------------

    def document_ids(self, index: str) -> Iterator[tuple[str, str]]:
        logical = _check_index_name(index)
        with self._lock:
            second = "id" if logical == "packages" else "package_id"
            pairs = self._column_pairs(self._searcher(logical), "id", second)
        return iter(pairs)

    def get_document(self, index: str, doc_id: str) -> dict[str, Any] | None:
        logical = _check_index_name(index)
        with self._lock:
            searcher = self._searcher(logical)
            stored = None if searcher is None else searcher.document(id=doc_id)
        return None if stored is None else _stored_document(logical, stored)

    def browse(
        self, index: str, *, offset: int = 0, limit: int = 20
    ) -> tuple[int, list[dict[str, Any]]]:
        logical = _check_index_name(index)
        if offset < 0 or limit < 0:
            raise SearchQueryError("Search Query is invalid: offset and limit must not be negative")
        with self._lock:
            searcher = self._searcher(logical)
            if searcher is None:
                return 0, []
            total = int(searcher.doc_count())
            if not limit or offset >= total:
                return total, []
            results = searcher.search(query.Every(), limit=offset + limit, sortedby="id")
            page = [_stored_document(logical, hit.fields()) for hit in results[offset:]]
        return total, page

    # -- queries -------------------------------------------------------------------------

    def _leaf(self, node: Term | Phrase | Prefix, reader: Any) -> Any:
        name = DEFAULT_FIELD if node.field is None else node.field
        if isinstance(node, Prefix):
            prefix = node.prefix
            if is_text_field(name):
                prefix = prefix.lower()
                if tokenize(node.prefix) != [prefix]:
                    return _NULL
            expansions = islice(
                reader.expand_prefix(name, prefix), self._limits.max_prefix_expansion + 1
            )
            if sum(1 for _ in expansions) > self._limits.max_prefix_expansion:
                raise SearchQueryError(
                    f'Search Query is invalid: "{prefix}*" matches more than '
                    f"{self._limits.max_prefix_expansion} terms; use a longer prefix"
                )
            return query.Prefix(name, prefix)
        if not is_text_field(name):
            return query.Term(name, node.text)
        words = tokenize(node.text)
        if not words:
            return _NULL
        if len(words) == 1:
            return query.Term(name, words[0])
        return query.Phrase(name, words)

    def _convert(self, node: Query, reader: Any) -> Any:
        if isinstance(node, MatchAll):
            return query.Every()
        if isinstance(node, Term | Phrase | Prefix):
            return self._leaf(node, reader)
        if isinstance(node, Not):
            child = self._convert(node.child, reader)
            if child is _NULL:
                return query.Every()
            return query.And([query.Every(), query.Not(child)])
        if isinstance(node, And):
            parts = [self._convert(child, reader) for child in node.children]
            if any(part is _NULL for part in parts):
                return _NULL
            return parts[0] if len(parts) == 1 else query.And(parts)
        if isinstance(node, Or):
            parts = [
                p for child in node.children if (p := self._convert(child, reader)) is not _NULL
            ]
            if not parts:
                return _NULL
            return parts[0] if len(parts) == 1 else query.Or(parts)
        raise SearchQueryError(f"Search Query is invalid: not a query node: {node!r}")

    def query(self, q: SearchQuery) -> SearchPage:
        empty = SearchPage(total=0, facets={f.field: () for f in q.facets})
        if not q.states or (q.labels is not None and not q.labels):
            return empty
        with self._lock:
            searcher = self._searcher("packages")
            if searcher is None:  # pragma: no cover - the packages index always exists
                return empty
            reader = searcher.reader()
            main = self._convert(q.query, reader)
            filters = [self._convert(f, reader) for f in q.filters]
            if main is _NULL or any(f is _NULL for f in filters) or searcher.doc_count() == 0:
                return empty
            filters.append(query.Or([query.Term("state", s) for s in sorted(q.states)]))
            if q.labels is not None:
                filters.append(query.Or([query.Term("labels", lb) for lb in sorted(q.labels)]))
            sort = list(q.effective_sort)
            if isinstance(q.query, MatchAll):
                sort = [key for key in sort if key.field != "score"]
            facets: list[Any] = []
            for key in sort:
                if key.field == "score":
                    facets.append(sorting.ScoreFacet())
                else:
                    facets.append(
                        sorting.FieldFacet(_SORT_FIELDS[key.field], reverse=key.descending)
                    )
            facets.append(sorting.FieldFacet("id"))
            groupedby = {
                request.field: sorting.FieldFacet(
                    request.field, allow_overlap=True, maptype=sorting.Count
                )
                for request in q.facets
            }
            wanted = max(1, min(q.offset + q.limit, searcher.doc_count()))
            try:
                results = searcher.search(
                    main,
                    limit=wanted,
                    filter=query.And(filters),
                    sortedby=sorting.MultiFacet(facets),
                    groupedby=groupedby or None,
                    optimize=False,
                )
                total = len(results)
                by_score = bool(sort) and sort[0].field == "score"
                page = results[q.offset : q.offset + q.limit] if q.limit else []
                hits = []
                for hit in page:
                    marks = {}
                    if q.highlight:
                        marks = highlight(q.query, _highlight_fields("packages", hit.fields()))
                    hits.append(
                        SearchHit(id=hit["id"], score=_score(hit, by_score), highlights=marks)
                    )
                counts = {}
                for request in q.facets:
                    raw = results.groups(request.field)
                    values = {
                        (k.decode("utf-8") if isinstance(k, bytes) else str(k)): int(n)
                        for k, n in raw.items()
                        if k is not None
                    }
                    counts[request.field] = top_facet_counts(values, request)
            except (OSError, ValueError) as exc:
                raise BackendError(f"Whoosh query failed: {exc}") from exc
        return SearchPage(total=total, hits=tuple(hits), facets=counts)

    def query_resources(self, q: TextQuery) -> TextPage:
        return self._query_text("resources", q)

    def query_contents(self, q: TextQuery) -> TextPage:
        return self._query_text("contents", q)

    def _query_text(self, logical: str, q: TextQuery) -> TextPage:
        if q.package_ids is not None and not q.package_ids:
            return TextPage(total=0)
        with self._lock:
            searcher = self._searcher(logical)
            if searcher is None or searcher.doc_count() == 0:
                return TextPage(total=0)
            main = self._convert(q.query, searcher.reader())
            if main is _NULL:
                return TextPage(total=0)
            restrict = None
            if q.package_ids is not None:
                restrict = query.Or([query.Term("package_id", p) for p in sorted(q.package_ids)])
            try:
                results = searcher.search(
                    main,
                    limit=max(1, min(q.offset + q.limit, searcher.doc_count())),
                    filter=restrict,
                    sortedby=sorting.MultiFacet([sorting.ScoreFacet(), sorting.FieldFacet("id")]),
                    optimize=False,
                )
                total = len(results)
                hits = []
                for hit in results[q.offset : q.offset + q.limit] if q.limit else []:
                    stored = hit.fields()
                    marks = {}
                    if q.highlight:
                        marks = highlight(q.query, _highlight_fields(logical, stored))
                    hits.append(
                        TextHit(
                            id=stored["id"],
                            resource_id=stored.get("resource_id", stored["id"]),
                            package_id=stored["package_id"],
                            score=_score(hit, True),
                            highlights=marks,
                        )
                    )
            except (OSError, ValueError) as exc:
                raise BackendError(f"Whoosh query failed: {exc}") from exc
        return TextPage(total=total, hits=tuple(hits))
