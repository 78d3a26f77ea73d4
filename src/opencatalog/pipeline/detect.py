"""What a file really is: format, MIME type, text encoding, CSV dialect, and label mismatches.

:func:`detect` looks at the first bytes of a file (at most :data:`HEAD_BYTES` are used), its
name and what its uploader declared, in this order of trust:

1. **Content.** Magic bytes through ``puremagic`` (pure Python, no libmagic) plus explicit
   handling of the containers it cannot tell apart (ZIP vs XLSX/DOCX/ODS/KMZ, OLE2 vs XLS/DOC).
   Text is recognised by a byte-order mark, strict UTF-8, or ``charset-normalizer`` on a
   bounded sample, and then classified: JSON (and NDJSON, GeoJSON), XML (and KML, GPX, RSS,
   Atom, RDF, SVG), HTML, CSV/TSV (``csv.Sniffer`` on a bounded sample, checked for a
   consistent column count), else plain text.
2. **File extension** (:func:`opencatalog.domain.rules.guess_format`): refines a generic
   content result (a ZIP named ``.xlsx``, plain text named ``.md``) or names an unrecognised
   binary.
3. **Declared format or MIME type** (:func:`opencatalog.domain.rules.canonical_format`): the
   last resort, and the reference for the mismatch report.

Content always wins over labels it contradicts: a PDF uploaded as CSV is detected as PDF and
``mismatch`` says so. Detection never raises on any input and never reads beyond ``head``.
"""

from __future__ import annotations

import codecs
import csv
import json
import logging
import mimetypes
import re
from typing import Any

from attrs import frozen

from opencatalog.domain.rules import canonical_format, guess_format

__all__ = ["EMPTY_MIMETYPE", "HEAD_BYTES", "TEXT_FORMATS", "Detection", "detect"]

logger = logging.getLogger(__name__)

#: How much of the file's head :func:`detect` looks at; pass at least this much if you can.
HEAD_BYTES = 64 * 1024
#: The MIME type reported for a zero-byte file.
EMPTY_MIMETYPE = "application/x-empty"

_CHARSET_SAMPLE = 32 * 1024
_SNIFF_SAMPLE = 16 * 1024
_SNIFF_LINES = 50
_CSV_DELIMITERS = ",;\t|"

#: Formats whose content is text (canonical names).
TEXT_FORMATS: frozenset[str] = frozenset(
    {
        "CSV",
        "TSV",
        "JSON",
        "NDJSON",
        "GeoJSON",
        "JSON-LD",
        "XML",
        "KML",
        "GML",
        "GPX",
        "RDF",
        "RSS",
        "Atom",
        "WMS",
        "SVG",
        "HTML",
        "TXT",
        "Markdown",
        "TTL",
        "N3",
        "NT",
        "ICS",
        "YAML",
        "SQL",
        "RTF",
    }
)

# A content result (key) may be refined by a label naming one of these formats.
_REFINEMENTS: dict[str, frozenset[str]] = {
    "ZIP": frozenset({"XLSX", "DOCX", "PPTX", "ODS", "ODT", "KMZ", "SHP", "JAR", "EPUB"}),
    "OLE": frozenset({"XLS", "DOC", "PPT", "MSG"}),
    "XML": frozenset({"KML", "GML", "GPX", "RDF", "RSS", "Atom", "WMS", "SVG"}),
    "JSON": frozenset({"GeoJSON", "JSON-LD", "NDJSON"}),
    "NDJSON": frozenset({"JSON"}),
    "TXT": TEXT_FORMATS,
    "CSV": frozenset({"TSV", "TXT", "Markdown"}),
    "TSV": frozenset({"CSV", "TXT", "Markdown"}),
    "GZIP": frozenset({"TAR"}),
}

_MIMETYPES: dict[str, str] = {
    "CSV": "text/csv",
    "TSV": "text/tab-separated-values",
    "JSON": "application/json",
    "NDJSON": "application/x-ndjson",
    "GeoJSON": "application/geo+json",
    "JSON-LD": "application/ld+json",
    "XML": "application/xml",
    "KML": "application/vnd.google-earth.kml+xml",
    "GML": "application/gml+xml",
    "GPX": "application/gpx+xml",
    "RDF": "application/rdf+xml",
    "RSS": "application/rss+xml",
    "Atom": "application/atom+xml",
    "SVG": "image/svg+xml",
    "HTML": "text/html",
    "TXT": "text/plain",
    "Markdown": "text/markdown",
    "YAML": "application/yaml",
    "TTL": "text/turtle",
    "RTF": "application/rtf",
    "PDF": "application/pdf",
    "ZIP": "application/zip",
    "XLSX": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "DOCX": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "PPTX": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "ODS": "application/vnd.oasis.opendocument.spreadsheet",
    "ODT": "application/vnd.oasis.opendocument.text",
    "KMZ": "application/vnd.google-earth.kmz",
    "XLS": "application/vnd.ms-excel",
    "DOC": "application/msword",
    "PPT": "application/vnd.ms-powerpoint",
    "OLE": "application/x-ole-storage",
    "GZIP": "application/gzip",
    "Parquet": "application/vnd.apache.parquet",
}


@frozen(kw_only=True)
class Detection:
    """The outcome of :func:`detect`.

    ``format`` is a canonical format name (``"CSV"``, ``"PDF"``, ...) or ``None`` when nothing
    is known; ``mimetype`` is always set (``application/octet-stream`` for unknown binary,
    :data:`EMPTY_MIMETYPE` for an empty file). ``encoding`` is a Python codec name for text
    (``"utf-8"``, ``"cp1252"``, ``"utf-8-sig"`` ...) and ``None`` for binary. ``delimiter`` is
    the CSV/TSV field separator. ``mismatch`` describes a label the content contradicts.
    ``source`` tells what decided the format: ``"content"``, ``"extension"``, ``"declared"``
    or ``"none"``.
    """

    mimetype: str
    format: str | None
    encoding: str | None
    is_text: bool
    mismatch: str | None = None
    delimiter: str | None = None
    source: str = "none"
    empty: bool = False


@frozen
class _Content:
    format: str | None  # None: unrecognised binary
    mimetype: str | None
    is_text: bool
    encoding: str | None = None
    delimiter: str | None = None
    generic: bool = False  # a family result a label may refine (ZIP, OLE, XML, JSON, TXT)


# --------------------------------------------------------------------------- text


_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f\x7f]")
_LATIN_PREFERENCE = ("utf_8", "ascii", "cp1252", "latin_1", "iso8859_15")


def _trim_to_line(sample: bytes, *, keep: int = 4096) -> bytes:
    """Cut a truncated sample after its last newline, so no character is cut in half."""
    cut = sample.rfind(b"\n", len(sample) - keep)
    return sample[: cut + 1] if cut > 0 else sample


def _is_utf8(sample: bytes) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    try:
        decoder.decode(sample, final=False)  # a character cut at the end is fine
    except UnicodeDecodeError:
        return False
    return True


def _misfit_score(text: str) -> int:
    """How implausible a decoding looks: C1 controls and symbols glued to letters."""
    score = 0
    for index, char in enumerate(text):
        code = ord(char)
        if code < 0x80:
            continue
        if 0x80 <= code <= 0x9F or char == "\ufffd":
            score += 5
        elif not char.isalpha():
            before = text[index - 1] if index else " "
            after = text[index + 1] if index + 1 < len(text) else " "
            if before.isalpha() or after.isalpha():
                score += 1
    return score


def _charset(sample: bytes) -> str | None:
    """A legacy (non-UTF-8) encoding for ``sample``, or ``None`` if it does not look like text.

    charset-normalizer ranks candidates; on short samples several single-byte code pages tie,
    so the tied ones are re-ranked by :func:`_misfit_score` and then by a preference for the
    most common western code page (a French "è" must not come out as a Czech "č").
    """
    try:
        from charset_normalizer import from_bytes
    except ImportError:  # pragma: no cover - a declared dependency
        logger.warning("charset-normalizer is not installed; assuming cp1252")
        return "cp1252"
    sample = _trim_to_line(sample[:_CHARSET_SAMPLE])
    try:
        matches = list(from_bytes(sample))
    except Exception:  # a detector bug must not fail the pipeline
        logger.exception("charset detection failed")
        return None
    if not matches:
        return None
    best = matches[0]
    tied = [
        m
        for m in matches[:8]
        if m.chaos <= best.chaos + 0.01 and m.coherence >= best.coherence - 0.05
    ]

    def rank(item: tuple[int, Any]) -> tuple[int, int, int]:
        position, match = item
        encoding = str(match.encoding)
        preference = (
            _LATIN_PREFERENCE.index(encoding)
            if encoding in _LATIN_PREFERENCE
            else len(_LATIN_PREFERENCE)
        )
        return (_misfit_score(sample.decode(encoding, "replace")), preference, position)

    chosen = min(enumerate(tied), key=rank)[1]
    return codecs.lookup(str(chosen.encoding)).name


def _text_encoding(head: bytes) -> str | None:
    """The encoding of ``head`` if it is text, else ``None``."""
    for bom, name in _BOMS:
        if head.startswith(bom):
            return name
    sample = head[:HEAD_BYTES]
    if b"\x00" in sample:
        return None
    if len(_CONTROL.findall(sample[:_CHARSET_SAMPLE])) > max(
        2, len(sample[:_CHARSET_SAMPLE]) // 100
    ):
        return None
    if _is_utf8(sample):
        return "utf-8"
    return _charset(sample)


def _decode_sample(head: bytes, encoding: str) -> str:
    sample = head[:HEAD_BYTES]
    decoder = codecs.getincrementaldecoder(encoding)("replace")
    return decoder.decode(sample, final=False)


_LEADING_COMMENTS = re.compile(r"^(?:\s*<!--.*?-->)*\s*", re.S)
_HTML_START = re.compile(
    r"<(?:!doctype\s+html|html|head|body|meta|title|div|p|table|script|style|link|h[1-6])[\s>/]",
    re.I,
)
_XML_ROOT = re.compile(r"<([A-Za-z_][\w.-]*:)?([A-Za-z_][\w.-]*)")
_XML_KINDS = {
    "kml": "KML",
    "gpx": "GPX",
    "rss": "RSS",
    "rdf": "RDF",
    "svg": "SVG",
    "featurecollection": "GML",
    "html": "HTML",
}
_GEOJSON = re.compile(r'"type"\s*:\s*"(FeatureCollection|Feature)"')
_JSON_START = re.compile(r'[\[{]\s*(["{\[\]}\-0-9]|true|false|null)')


def _looks_like_json(text: str) -> bool:
    if not _JSON_START.match(text):
        return False
    try:
        json.loads(text)
    except ValueError as exc:
        # A truncated sample fails at its very end; anything earlier is not JSON.
        return isinstance(exc, json.JSONDecodeError) and exc.pos >= len(text.rstrip()) - 1
    except RecursionError:
        return True
    return True


def _is_ndjson(lines: list[str]) -> bool:
    records = [line for line in lines if line.strip()]
    if len(records) < 2 or not all(line.lstrip().startswith("{") for line in records[:-1]):
        return False
    try:
        for line in records[:-1]:  # the last line may be cut short
            json.loads(line)
    except (ValueError, RecursionError):
        return False
    return True


def _xml_kind(text: str) -> str:
    body = re.sub(r"<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>]*>", "", text[:4096], flags=re.S | re.I)
    match = _XML_ROOT.search(body)
    if match is None:
        return "XML"
    root = match.group(2).lower()
    if root == "feed" and "http://www.w3.org/2005/Atom" in text[:4096]:
        return "Atom"
    return _XML_KINDS.get(root, "XML")


def _sniff_table(text: str) -> str | None:
    """The delimiter if ``text`` is a consistent delimited table (>= 2 rows, >= 2 columns)."""
    sample = text[:_SNIFF_SAMPLE]
    lines = sample.splitlines(keepends=True)
    if len(sample) == _SNIFF_SAMPLE and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut short
    lines = [line for line in lines[:_SNIFF_LINES] if line.strip()]
    if len(lines) < 2:
        return None
    joined = "".join(lines)
    delimiter: str | None
    try:
        delimiter = csv.Sniffer().sniff(joined, delimiters=_CSV_DELIMITERS).delimiter
    except csv.Error:
        delimiter = _count_delimiter(lines)
    if delimiter is None:
        return None
    try:
        widths = [len(row) for row in csv.reader(lines, delimiter=delimiter)]
    except csv.Error:
        return None
    if not widths or max(widths) < 2:
        return None
    common = max(set(widths), key=widths.count)
    if common < 2 or widths.count(common) < 0.8 * len(widths):
        return None
    return delimiter


def _count_delimiter(lines: list[str]) -> str | None:
    """Fallback when the sniffer gives up: a delimiter with the same non-zero count per line."""
    for delimiter in _CSV_DELIMITERS:
        counts = [line.count(delimiter) for line in lines]
        if counts[0] and counts.count(counts[0]) >= 0.8 * len(counts):
            return delimiter
    return None


def _classify_text(head: bytes, encoding: str) -> _Content:
    text = _decode_sample(head, encoding).lstrip("\ufeff")
    stripped = text.lstrip()
    lower = stripped[:1024].lower()
    if stripped.startswith(("{", "[")):
        lines = stripped[:_SNIFF_SAMPLE].splitlines()
        if _is_ndjson(lines):
            return _Content("NDJSON", None, True, encoding)
        if _looks_like_json(stripped):
            if _GEOJSON.search(stripped[:4096]):
                return _Content("GeoJSON", None, True, encoding)
            return _Content("JSON", None, True, encoding, generic=True)
    if stripped.startswith("<"):
        comments = _LEADING_COMMENTS.match(stripped[:4096])
        body = stripped[comments.end() :] if comments else stripped
        if _HTML_START.match(body):
            return _Content("HTML", None, True, encoding)
        if lower.startswith("<?xml") or _XML_ROOT.match(body) or body.startswith("<!"):
            kind = _xml_kind(stripped)
            if kind == "HTML":  # XHTML
                return _Content("HTML", None, True, encoding)
            return _Content(kind, None, True, encoding, generic=kind == "XML")
    if stripped.startswith("{\\rtf"):
        return _Content("RTF", None, True, encoding)
    delimiter = _sniff_table(text)
    if delimiter is not None:
        return _Content("TSV" if delimiter == "\t" else "CSV", None, True, encoding, delimiter)
    return _Content("TXT", None, True, encoding, generic=True)


# --------------------------------------------------------------------------- binary


_ZIP_MARKERS = (
    (b"xl/workbook", "XLSX"),
    (b"xl/worksheets/", "XLSX"),
    (b"word/document", "DOCX"),
    (b"ppt/presentation", "PPTX"),
    (b"mimetypeapplication/vnd.oasis.opendocument.spreadsheet", "ODS"),
    (b"mimetypeapplication/vnd.oasis.opendocument.text", "ODT"),
    (b"doc.kml", "KMZ"),
)


def _known(value: str | None) -> str | None:
    """``value``'s canonical format if the format table knows it, else ``None``."""
    if not value:
        return None
    found = canonical_format(value)
    return found if found and found != value.strip() else None


def _magic(head: bytes, *, text: bool) -> _Content | None:
    """A binary format from magic bytes; for text content only long, specific signatures."""
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        for marker, member_kind in _ZIP_MARKERS:
            if marker in head:
                return _Content(member_kind, _MIMETYPES[member_kind], False)
        return _Content("ZIP", _MIMETYPES["ZIP"], False, generic=True)
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return _Content("OLE", _MIMETYPES["OLE"], False, generic=True)
    if head.startswith(b"%PDF-"):
        return _Content("PDF", _MIMETYPES["PDF"], False)
    if head.startswith(b"PAR1"):
        return _Content("Parquet", _MIMETYPES["Parquet"], False)
    try:
        import puremagic
    except ImportError:  # pragma: no cover - a declared dependency
        logger.warning("puremagic is not installed; magic-byte detection is limited")
        return None
    try:
        matches = puremagic.magic_string(head[:HEAD_BYTES])
    except Exception:  # PureError when nothing matches; anything else is a detector bug
        return None
    for match in matches:
        signature = bytes(match.byte_match)
        if text and (len(signature) < 4 or signature.isascii() or match.confidence < 0.4):
            continue  # in text, a short or printable "signature" is just text ("BM,", "<?xml")
        mime = match.mime_type or ""
        if mime.startswith("text/") or mime.endswith(("+xml", "/xml", "/json")):
            continue  # textual signatures are left to the text classifier
        extension = match.extension
        name: str | None = _known(mime) or (guess_format("x" + extension) if extension else None)
        if name is None:
            continue
        return _Content(name, mime or _MIMETYPES.get(name), False)
    return None


# --------------------------------------------------------------------------- decision


def _compatible(content: str, label: str) -> bool:
    if content == label:
        return True
    if label in _REFINEMENTS.get(content, ()):
        return True
    return content in _REFINEMENTS.get(label, ())


def _mimetype_for(name: str | None, *, is_text: bool) -> str:
    if name is None:
        return "text/plain" if is_text else "application/octet-stream"
    if name in _MIMETYPES:
        return _MIMETYPES[name]
    guessed, _ = mimetypes.guess_type(f"file.{name.lower()}", strict=False)
    return guessed or ("text/plain" if is_text else "application/octet-stream")


def detect(
    head: bytes,
    *,
    filename: str | None = None,
    declared_type: str | None = None,
    declared_format: str | None = None,
) -> Detection:
    """Detect a file's format from its first bytes, its name and its declared format/type.

    ``head`` is the start of the file (only the first :data:`HEAD_BYTES` are looked at;
    passing the whole of a small file is best). ``filename`` may also be a URL. The result's
    ``mismatch`` is set when the content contradicts the extension or the declared label.
    An empty ``head`` gives ``Detection(format=None, mimetype=EMPTY_MIMETYPE, empty=True)``.
    Never raises for any input.
    """
    by_extension = guess_format(filename) if filename else None
    declared = _known(declared_format) or _known(declared_type)
    if declared is None and declared_format and declared_format.strip():
        declared = declared_format.strip()
    if not head:
        return Detection(
            mimetype=EMPTY_MIMETYPE, format=None, encoding=None, is_text=False, empty=True
        )
    head = head[:HEAD_BYTES]
    encoding = _text_encoding(head)
    content = _magic(head, text=encoding is not None)
    if content is None and encoding is not None:
        content = _classify_text(head, encoding)

    labels = [(by_extension, "extension"), (declared, "declared")]
    mismatch = None
    for label, kind in labels:
        if label is None or content is None:
            continue
        if content.format is not None and not _compatible(content.format, label):
            what = "file extension says" if kind == "extension" else "declared as"
            mismatch = f"{what} {label}, content is {content.format}"
            break
    if content is None or content.format is None:
        # Unrecognised binary: the labels are all we have; text labels are contradicted.
        for label, kind in labels:
            if label is None:
                continue
            if label in TEXT_FORMATS:
                what = "file extension says" if kind == "extension" else "declared as"
                mismatch = f"{what} {label}, content is binary"
                continue
            return Detection(
                mimetype=_mimetype_for(label, is_text=False),
                format=label,
                encoding=None,
                is_text=False,
                mismatch=mismatch,
                source=kind,
            )
        return Detection(
            mimetype="application/octet-stream",
            format=None,
            encoding=None,
            is_text=False,
            mismatch=mismatch,
        )

    name: str | None = content.format
    source = "content"
    for label, kind in labels:
        if label is None or label not in _REFINEMENTS.get(content.format, ()):
            continue
        # A generic result takes the label's more specific name; a sniffed table keeps its
        # name (a table named .txt or .tsv is what the sniffer says) unless it is Markdown.
        if content.generic or label == "Markdown":
            name, source = label, kind
            break
    mimetype = (
        content.mimetype
        if content.mimetype and name == content.format
        else _mimetype_for(name, is_text=content.is_text)
    )
    if name == "OLE":
        name = None  # an OLE2 container nobody named: we only know it is a compound file
    delimiter = content.delimiter
    if name in ("CSV", "TSV") and delimiter is None:
        delimiter = "\t" if name == "TSV" else ","
    if name not in ("CSV", "TSV"):
        delimiter = None
    return Detection(
        mimetype=mimetype,
        format=name,
        encoding=content.encoding if content.is_text else None,
        is_text=content.is_text,
        mismatch=mismatch,
        delimiter=delimiter,
        source=source,
    )
