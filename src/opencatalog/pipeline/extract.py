"""Bounded text extraction from resource files, for the search index.

:func:`extract_text` turns a file into plain text according to a
:class:`~opencatalog.pipeline.detect.Detection`. Every path is bounded:

* **bytes read**: never more than ``max_bytes`` from the caller's stream (a
  :class:`BoundedReader` sits between every parser and the stream; the ZIP listing reads only
  the archive's directory from its end, so large archives cost a few kilobytes);
* **characters kept** (``max_chars``), **rows** (``max_rows``, CSV/TSV/XLSX), **pages**
  (``max_pages``, PDF), **sheets** (``max_sheets``), **archive entries** (``max_members``)
  and **wall time** (``max_seconds``, checked between units of work).

Formats: CSV and TSV (rows, cells joined by tabs, decoded with the detected charset), JSON and
NDJSON (string values), XML family (text content; parsed with ``defusedxml`` so entity
declarations - billion laughs, external entities, XXE - are refused rather than expanded),
HTML (text outside script/style, stdlib ``html.parser``: no entity expansion beyond the fixed
HTML table), plain text and Markdown, PDF (``pypdf``), XLSX (``openpyxl`` read-only, after a
size check of its parts), ZIP (member names and sizes only - nothing is ever decompressed;
suspected bombs are refused). Anything else gives empty text with a note.

A hostile or broken file never raises: the result carries what could be extracted, whether
it was ``truncated``, and a ``note`` saying why extraction stopped or was refused.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import logging
import re
import time
import warnings
import zipfile
from collections.abc import Callable
from html.parser import HTMLParser
from typing import Any, BinaryIO

from attrs import frozen

from opencatalog.pipeline.detect import TEXT_FORMATS, Detection

__all__ = [
    "ArchiveMember",
    "BoundedReader",
    "Extraction",
    "ReadLimitExceeded",
    "extract_text",
    "list_zip",
    "open_xlsx",
    "xlsx_cells",
]

logger = logging.getLogger(__name__)

_CHUNK = 64 * 1024
_XML_FORMATS = frozenset({"XML", "KML", "GML", "GPX", "RDF", "RSS", "Atom", "WMS", "SVG"})
_JSON_FORMATS = frozenset({"JSON", "GeoJSON", "JSON-LD"})
_MiB = 1024 * 1024


class ReadLimitExceeded(Exception):
    """Raised by a strict :class:`BoundedReader` when a parser wants more than the budget."""


class BoundedReader(io.RawIOBase):
    """A read-only view of a binary stream that hands out at most ``limit`` bytes.

    Only ``stream.read(n)`` (and ``seek``/``tell`` when the stream is seekable) is ever called
    on the wrapped stream, with ``n`` never beyond the remaining budget; ``consumed`` counts
    the bytes received. At the budget a lenient reader reports end of file (``hit_limit``
    becomes true); a ``strict`` one raises :class:`ReadLimitExceeded` (for formats where a
    cut-off file is meaningless). Bytes read again after a seek count again. Closing the
    reader does not close the wrapped stream.
    """

    def __init__(self, stream: BinaryIO, limit: int, *, strict: bool = False) -> None:
        super().__init__()
        self._stream = stream
        self.limit = max(limit, 0)
        self.strict = strict
        self.consumed = 0
        self.hit_limit = False
        self.total = self.remaining_size()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        try:
            return bool(self._stream.seekable())
        except (AttributeError, OSError, ValueError):
            return False

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return int(self._stream.seek(offset, whence))

    def tell(self) -> int:
        return int(self._stream.tell())

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        room = self.limit - self.consumed
        if room <= 0:
            if len(view) == 0:
                return 0
            self.hit_limit = True
            if self.strict:
                raise ReadLimitExceeded(f"read limit of {self.limit} bytes reached")
            return 0
        data = self._stream.read(min(len(view), room))
        if not data:
            return 0
        count = len(data)
        view[:count] = data
        self.consumed += count
        return count

    def remaining_size(self) -> int | None:
        """Bytes from the current position to the end of a seekable stream, else ``None``."""
        if not self.seekable():
            return None
        try:
            here = self._stream.tell()
            end = self._stream.seek(0, io.SEEK_END)
            self._stream.seek(here)
        except (OSError, ValueError):
            return None
        return max(int(end) - int(here), 0)

    @property
    def cut(self) -> bool:
        """True when the budget stopped reading before the end of the stream."""
        return self.hit_limit and (self.total is None or self.total > self.limit)

    def close(self) -> None:  # never closes the caller's stream
        super().close()


@frozen(kw_only=True)
class ArchiveMember:
    """One entry of an archive's directory, as declared (never verified by decompression)."""

    name: str
    size: int
    compressed_size: int
    is_dir: bool


@frozen(kw_only=True)
class Extraction:
    """What :func:`extract_text` got out of a file.

    ``text`` is at most ``max_chars`` characters; ``truncated`` says a limit cut it short;
    ``rows`` counts table rows (CSV/TSV/XLSX) and is ``None`` for other formats; ``note`` is a
    short human-readable reason for anything unusual (refused, empty, unsupported, stopped
    early). ``members`` lists a ZIP's entries. ``bytes_read`` is how much of the stream was read.
    """

    text: str
    truncated: bool
    rows: int | None = None
    note: str | None = None
    members: tuple[ArchiveMember, ...] = ()
    bytes_read: int = 0


@frozen(kw_only=True)
class _Limits:
    deadline: float
    max_bytes: int
    max_chars: int = 1_000_000
    max_rows: int = 10_000
    max_pages: int = 200
    max_sheets: int = 20
    max_members: int = 10_000
    max_zip_ratio: float = 100.0
    max_zip_uncompressed: int = 1 << 30

    def out_of_time(self) -> bool:
        return time.monotonic() > self.deadline


class _Text:
    """Accumulates text up to a character budget."""

    def __init__(self, max_chars: int) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.max_chars = max_chars
        self.full = False

    def add(self, piece: str) -> bool:
        """Append ``piece``; False (and ``full``) once the budget is used up."""
        if self.full:
            return False
        room = self.max_chars - self.size
        if len(piece) > room:
            self.parts.append(piece[:room])
            self.size = self.max_chars
            self.full = True
            return False
        self.parts.append(piece)
        self.size += len(piece)
        return True

    def value(self) -> str:
        return "".join(self.parts)


def _codec(detection: Detection) -> str:
    name = detection.encoding or "utf-8"
    try:
        return codecs.lookup(name).name
    except LookupError:
        return "utf-8"


def _text_stream(reader: BoundedReader, detection: Detection) -> io.TextIOWrapper:
    buffered = io.BufferedReader(reader, buffer_size=_CHUNK)
    return io.TextIOWrapper(buffered, encoding=_codec(detection), errors="replace", newline="")


# --------------------------------------------------------------------------- text formats


def _extract_plain(reader: BoundedReader, detection: Detection, limits: _Limits) -> _Partial:
    stream = _text_stream(reader, detection)
    text = _Text(limits.max_chars)
    while not text.full:
        piece = stream.read(_CHUNK)
        if not piece:
            break
        text.add(piece)
    return _Partial(text.value().lstrip("\ufeff"), text.full)


def _extract_delimited(reader: BoundedReader, detection: Detection, limits: _Limits) -> _Partial:
    delimiter = detection.delimiter or ("\t" if detection.format == "TSV" else ",")
    stream = _text_stream(reader, detection)
    text = _Text(limits.max_chars)
    rows = 0
    truncated = False
    note = None
    try:
        for row in csv.reader(stream, delimiter=delimiter):
            if rows >= limits.max_rows:
                truncated, note = True, f"stopped after {limits.max_rows} rows"
                break
            if rows % 1000 == 0 and limits.out_of_time():
                truncated, note = True, "stopped at the time limit"
                break
            rows += 1
            if not text.add("\t".join(row) + "\n"):
                truncated = True
                break
    except csv.Error as exc:
        truncated, note = True, f"stopped at row {rows + 1}: {exc}"
    return _Partial(text.value().lstrip("\ufeff"), truncated, rows=rows, note=note)


_JSON_STRING = re.compile(r'"((?:[^"\\\n]|\\.){0,100000})"(\s*:)?')


def _json_strings(value: Any, text: _Text) -> None:
    """Add every string value (not key) of a parsed JSON document, depth-first, iteratively."""
    stack = [value]
    while stack and not text.full:
        item = stack.pop()
        if isinstance(item, str):
            if item.strip():
                text.add(item + "\n")
        elif isinstance(item, dict):
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))


def _scan_json_strings(raw: str, text: _Text) -> None:
    """Tolerant fallback for cut-off or invalid JSON: string literals that are not keys."""
    for match in _JSON_STRING.finditer(raw):
        if match.group(2):  # followed by ':' -> a key
            continue
        try:
            value = json.loads(f'"{match.group(1)}"')
        except ValueError:
            value = match.group(1)
        if value.strip() and not text.add(value + "\n"):
            return


def _extract_json(reader: BoundedReader, detection: Detection, limits: _Limits) -> _Partial:
    raw = _text_stream(reader, detection).read().lstrip("\ufeff")
    text = _Text(limits.max_chars)
    note = None
    cut = reader.cut
    if detection.format == "NDJSON":
        lines = raw.splitlines()
        for index, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                _json_strings(json.loads(line), text)
            except (ValueError, RecursionError):
                if not (cut and index == len(lines) - 1):
                    note = "some lines are not valid JSON"
                _scan_json_strings(line, text)
            if text.full:
                break
        return _Partial(text.value(), text.full or cut, note=note)
    try:
        document = None if cut else json.loads(raw)
    except (ValueError, RecursionError):
        document, note = None, "not valid JSON; string literals extracted"
    if document is None and raw.strip() not in ("", "null"):
        _scan_json_strings(raw, text)
    else:
        _json_strings(document, text)
    return _Partial(text.value(), text.full or cut, note=note)


class _XmlText:
    """An XML parser target that keeps character data only, one element per line."""

    def __init__(self, text: _Text) -> None:
        self.text = text
        self.pending: list[str] = []

    def _flush(self) -> None:
        chunk = " ".join("".join(self.pending).split())
        self.pending.clear()
        if chunk:
            self.text.add(chunk + "\n")

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        self._flush()

    def end(self, tag: str) -> None:
        self._flush()

    def data(self, data: str) -> None:
        self.pending.append(data)

    def close(self) -> None:
        self._flush()


def _extract_xml(reader: BoundedReader, detection: Detection, limits: _Limits) -> _Partial:
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import DefusedXMLParser, ParseError

    text = _Text(limits.max_chars)
    target = _XmlText(text)
    parser = DefusedXMLParser(target=target, forbid_dtd=False)
    note = None
    truncated = False
    try:
        while True:
            chunk = reader.read(_CHUNK)
            if not chunk:
                if not reader.cut:
                    parser.close()  # reports a document that ends too early
                break
            parser.feed(chunk)
            if text.full:
                truncated = True
                break
            if limits.out_of_time():
                truncated, note = True, "stopped at the time limit"
                break
    except DefusedXmlException as exc:
        logger.info("XML refused: %r", exc)
        return _Partial(
            "",
            False,
            note=f"XML refused: {type(exc).__name__} (entity declarations and "
            "external references are not allowed)",
        )
    except ParseError as exc:
        note = f"XML is not well-formed ({exc}); text up to the error kept"
    target.close()
    return _Partial(text.value(), truncated or text.full or reader.cut, note=note)


class _HtmlText(HTMLParser):
    """Keeps the text a browser would show (not script, style, templates), a block per line."""

    _SKIP = frozenset({"script", "style", "noscript", "template", "svg", "math"})
    _BLOCK = frozenset(
        {"p", "div", "br", "li", "tr", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6", "title"}
    )

    def __init__(self, text: _Text) -> None:
        super().__init__(convert_charrefs=True)
        self.text = text
        self.skipping = 0
        self.pending: list[str] = []

    def flush(self) -> None:
        chunk = " ".join("".join(self.pending).split())
        self.pending.clear()
        if chunk:
            self.text.add(chunk + "\n")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self.skipping += 1
        elif tag in self._BLOCK:
            self.flush()

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self.skipping = max(self.skipping - 1, 0)
        elif tag in self._BLOCK:
            self.flush()

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.pending.append(data)


def _extract_html(reader: BoundedReader, detection: Detection, limits: _Limits) -> _Partial:
    stream = _text_stream(reader, detection)
    text = _Text(limits.max_chars)
    parser = _HtmlText(text)
    note = None
    truncated = False
    while not text.full:
        piece = stream.read(_CHUNK)
        if not piece:
            break
        parser.feed(piece)
        if limits.out_of_time():
            truncated, note = True, "stopped at the time limit"
            break
    parser.close()
    parser.flush()
    return _Partial(text.value(), truncated or text.full or reader.cut, note=note)


# --------------------------------------------------------------------------- documents


def _extract_pdf(reader: BoundedReader, detection: Detection, limits: _Limits) -> _Partial:
    try:
        from pypdf import PdfReader
        from pypdf.errors import PyPdfError
    except ImportError:  # pragma: no cover - a declared dependency
        return _Partial("", False, note="PDF text extraction needs pypdf")
    # pypdf seeks back and forth; read the file once (bounded) and let it work in memory.
    data = reader.read()
    cut = reader.cut
    text = _Text(limits.max_chars)
    note = "the file is larger than the read limit; pages in the part read" if cut else None
    truncated = cut
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pdf = PdfReader(io.BytesIO(data), strict=False)
            if pdf.is_encrypted:
                return _Partial("", False, note="PDF is encrypted")
            pages = pdf.pages
            count = len(pages)
            for number in range(min(count, limits.max_pages)):
                if limits.out_of_time():
                    truncated, note = True, "stopped at the time limit"
                    break
                page_text = pages[number].extract_text() or ""
                if page_text.strip() and not text.add(page_text.strip() + "\n"):
                    truncated = True
                    break
            else:
                if count > limits.max_pages:
                    truncated, note = True, f"stopped after {limits.max_pages} pages"
    except (PyPdfError, ValueError, KeyError, TypeError, OSError, RecursionError) as exc:
        logger.info("PDF extraction failed: %r", exc)
        return _Partial(text.value(), True, note=f"PDF could not be read: {type(exc).__name__}")
    return _Partial(text.value(), truncated or text.full, note=note)


def _zip_bomb(infos: list[zipfile.ZipInfo], limits: _Limits) -> str | None:
    """Why the declared sizes look like a decompression bomb, or ``None``."""
    total = sum(info.file_size for info in infos)
    compressed = sum(info.compress_size for info in infos)
    if total > limits.max_zip_uncompressed:
        return f"declared uncompressed size {total} bytes exceeds {limits.max_zip_uncompressed}"
    for info in infos:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size >= _MiB and ratio > limits.max_zip_ratio:
            return f"compression ratio {ratio:.0f}:1 exceeds {limits.max_zip_ratio:g}:1"
    if total >= _MiB and total / max(compressed, 1) > limits.max_zip_ratio:
        return f"compression ratio {total / max(compressed, 1):.0f}:1 exceeds the limit"
    return None


def _open_zip(reader: BoundedReader) -> zipfile.ZipFile:
    if not reader.seekable():
        raise zipfile.BadZipFile("the stream is not seekable")
    return zipfile.ZipFile(reader)


def list_zip(
    stream: BinaryIO,
    *,
    max_bytes: int = 5 * _MiB,
    max_members: int = 10_000,
    max_ratio: float = 100.0,
    max_uncompressed: int = 1 << 30,
) -> Extraction:
    """List a ZIP archive's entries from its central directory; never decompress anything.

    Member names are display data only (``../../etc/passwd`` is listed, never used as a
    path). Returns at most ``max_members`` entries (``truncated`` beyond). A declared total
    above ``max_uncompressed`` or a compression ratio above ``max_ratio`` (entries of 1 MiB
    or more, or the whole archive) gives ``note="zip bomb suspected: ..."`` and no entries.
    The stream must be seekable (the directory is at the end).
    """
    limits = _Limits(
        deadline=time.monotonic() + 30,
        max_bytes=max_bytes,
        max_members=max_members,
        max_zip_ratio=max_ratio,
        max_zip_uncompressed=max_uncompressed,
    )
    reader = BoundedReader(stream, max_bytes, strict=True)
    partial = _guard(_extract_zip, reader, None, limits)
    return partial.result(reader)


def _extract_zip(reader: BoundedReader, detection: Detection | None, limits: _Limits) -> _Partial:
    try:
        with _open_zip(reader) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        return _Partial("", False, note=f"not a readable ZIP archive: {exc}")
    bomb = _zip_bomb(infos, limits)
    if bomb is not None:
        logger.info("zip bomb suspected: %s", bomb)
        return _Partial("", False, note=f"zip bomb suspected: {bomb}")
    shown = infos[: limits.max_members]
    members = tuple(
        ArchiveMember(
            name=info.filename,
            size=info.file_size,
            compressed_size=info.compress_size,
            is_dir=info.is_dir(),
        )
        for info in shown
    )
    text = _Text(limits.max_chars)
    for member in members:
        if not text.add(member.name + "\n"):
            break
    truncated = len(infos) > len(shown) or text.full
    note = (
        f"listed the first {len(shown)} of {len(infos)} entries"
        if len(infos) > len(shown)
        else None
    )
    return _Partial(text.value(), truncated, note=note, members=members)


_XLSX_SHEET = re.compile(r"^xl/worksheets/[^/]+\.xml$")


def open_xlsx(reader: BoundedReader, *, max_bytes: int) -> tuple[Any | None, str | None]:
    """Open an XLSX workbook read-only after checking its parts' declared sizes.

    openpyxl loads every part except the worksheets whole (shared strings, styles), so a part
    declared larger than ``max(8 * max_bytes, 16 MiB)``, or packed more than 100:1, is refused.
    Returns ``(workbook, None)`` - the caller must ``close()`` it - or ``(None, note)``. The
    reader must be seekable; reading past its budget raises :class:`ReadLimitExceeded`.
    """
    try:
        import openpyxl
    except ImportError:  # pragma: no cover - a declared dependency
        return None, "XLSX reading needs openpyxl"
    start = reader.tell() if reader.seekable() else 0
    try:
        with _open_zip(reader) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        return None, f"not a readable XLSX file: {exc}"
    part_limit = max(max_bytes * 8, 16 * _MiB)
    for info in infos:
        if _XLSX_SHEET.match(info.filename):
            continue  # streamed row by row
        if info.file_size > part_limit or (
            info.file_size >= _MiB and info.file_size / max(info.compress_size, 1) > 100
        ):
            return None, f"XLSX refused: part {info.filename!r} is too large or too packed"
    reader.seek(start)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            workbook = openpyxl.load_workbook(reader, read_only=True, data_only=True)
        except (zipfile.BadZipFile, KeyError, ValueError, TypeError) as exc:
            return None, f"not a readable XLSX file: {type(exc).__name__}"
    return workbook, None


def xlsx_cells(row: tuple[Any, ...]) -> list[str]:
    """One worksheet row as strings, without trailing empty cells."""
    cells = ["" if value is None else str(value) for value in row]
    while cells and not cells[-1]:
        cells.pop()
    return cells


def _extract_xlsx(reader: BoundedReader, detection: Detection, limits: _Limits) -> _Partial:
    workbook, refusal = open_xlsx(reader, max_bytes=limits.max_bytes)
    if workbook is None:
        return _Partial("", False, note=refusal)
    text = _Text(limits.max_chars)
    rows = 0
    truncated = False
    note = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for index, sheet in enumerate(workbook.worksheets):
                if index >= limits.max_sheets:
                    truncated, note = True, f"stopped after {limits.max_sheets} sheets"
                    break
                text.add(f"# {sheet.title}\n")
                sheet.reset_dimensions()  # a lying <dimension> must not pad every row
                for row in sheet.iter_rows(values_only=True):
                    if rows >= limits.max_rows:
                        truncated, note = True, f"stopped after {limits.max_rows} rows"
                        break
                    if rows % 1000 == 0 and limits.out_of_time():
                        truncated, note = True, "stopped at the time limit"
                        break
                    rows += 1
                    if not text.add("\t".join(xlsx_cells(row)) + "\n"):
                        truncated = True
                        break
                if truncated:
                    break
    finally:
        workbook.close()
    return _Partial(text.value(), truncated or text.full, rows=rows, note=note)


# --------------------------------------------------------------------------- dispatch


@frozen
class _Partial:
    text: str
    truncated: bool
    rows: int | None = None
    note: str | None = None
    members: tuple[ArchiveMember, ...] = ()

    def result(self, reader: BoundedReader) -> Extraction:
        return Extraction(
            text=self.text,
            truncated=self.truncated,
            rows=self.rows,
            note=self.note,
            members=self.members,
            bytes_read=reader.consumed,
        )


_Extractor = Callable[[BoundedReader, Any, _Limits], _Partial]


def _extractor_for(detection: Detection) -> tuple[_Extractor, bool] | None:
    """The extractor for a format and whether its reader is strict (random access)."""
    name = detection.format
    if name in ("CSV", "TSV"):
        return _extract_delimited, False
    if name in _JSON_FORMATS or name == "NDJSON":
        return _extract_json, False
    if name in _XML_FORMATS:
        return _extract_xml, False
    if name == "HTML":
        return _extract_html, False
    if name == "PDF":
        return _extract_pdf, False
    if name == "ZIP":
        return _extract_zip, True
    if name == "XLSX":
        return _extract_xlsx, True
    if name in TEXT_FORMATS or (name is None and detection.is_text):
        return _extract_plain, False
    return None


def _guard(
    extractor: _Extractor, reader: BoundedReader, detection: Detection | None, limits: _Limits
) -> _Partial:
    try:
        return extractor(reader, detection, limits)
    except ReadLimitExceeded:
        return _Partial("", True, note=f"the file needs more than {limits.max_bytes} bytes read")
    except (MemoryError, RecursionError) as exc:
        logger.warning("extraction stopped: %r", exc)
        return _Partial("", True, note=f"extraction stopped: {type(exc).__name__}")
    except Exception as exc:  # a parser bug on hostile input must not kill the pipeline
        logger.exception("extraction failed")
        return _Partial("", True, note=f"extraction failed: {type(exc).__name__}")


def extract_text(
    stream: BinaryIO,
    detection: Detection,
    *,
    max_bytes: int = 5 * _MiB,
    max_chars: int = 1_000_000,
    max_rows: int = 10_000,
    max_pages: int = 200,
    max_sheets: int = 20,
    max_members: int = 10_000,
    max_zip_ratio: float = 100.0,
    max_zip_uncompressed: int = 1 << 30,
    max_seconds: float = 30.0,
) -> Extraction:
    """Extract plain text from ``stream`` (positioned at the file's start) as ``detection`` says.

    Reads at most ``max_bytes`` bytes from ``stream`` (only through ``read(n)``, plus
    ``seek``/``tell`` for ZIP and XLSX, which need a seekable stream); returns at most
    ``max_chars`` characters. Never raises for bad content: see :class:`Extraction`. The
    stream is not closed.
    """
    if detection.empty:
        return Extraction(text="", truncated=False, note="empty file")
    choice = _extractor_for(detection)
    if choice is None:
        what = detection.format or "unrecognised binary content"
        return Extraction(text="", truncated=False, note=f"no text extractor for {what}")
    extractor, strict = choice
    limits = _Limits(
        deadline=time.monotonic() + max_seconds,
        max_bytes=max_bytes,
        max_chars=max_chars,
        max_members=max_members,
        max_pages=max_pages,
        max_rows=max_rows,
        max_sheets=max_sheets,
        max_zip_ratio=max_zip_ratio,
        max_zip_uncompressed=max_zip_uncompressed,
    )
    reader = BoundedReader(stream, max_bytes, strict=strict)
    partial = _guard(extractor, reader, detection, limits)
    result = partial.result(reader)
    if not strict and reader.cut:
        note = result.note or f"stopped at the read limit of {max_bytes} bytes"
        return Extraction(
            text=result.text,
            truncated=True,
            rows=result.rows,
            note=note,
            members=result.members,
            bytes_read=result.bytes_read,
        )
    return result
