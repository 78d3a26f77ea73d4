"""Pure validation and normalisation rules for names, tags, emails, passwords and formats.

Every function here is pure: no I/O, no state, and the module does nothing at import time
beyond defining constants. Validators return a list of messages (empty means valid) using the
exact wording CKAN clients expect, so the HTTP edge can put them straight into an error body.
Each validator reports at most one message: the first failing check, in CKAN's order.

The three ``munge_*`` functions turn arbitrary text into a valid dataset name or tag. For any
input string their output passes the matching validator, and they are idempotent.
"""

from __future__ import annotations

import mimetypes
import posixpath
import re
import unicodedata
from collections.abc import Mapping
from types import MappingProxyType
from urllib.parse import unquote, urlsplit

__all__ = [
    "NAME_MAX_LENGTH",
    "NAME_MIN_LENGTH",
    "RESERVED_NAMES",
    "canonical_format",
    "email_errors",
    "guess_format",
    "is_uuid",
    "munge_name",
    "munge_tag",
    "munge_title_to_name",
    "name_errors",
    "normalize_tag_string",
    "password_errors",
    "tag_errors",
]

NAME_MIN_LENGTH = 2
NAME_MAX_LENGTH = 100
RESERVED_NAMES = frozenset({"new", "edit", "search"})

_TAG_MIN_LENGTH = 2
_TAG_MAX_LENGTH = 100
_PASSWORD_MIN_LENGTH = 8
# munge_title_to_name leaves a few characters spare so a caller can append "_2" etc. to
# resolve a clash without exceeding NAME_MAX_LENGTH.
_TITLE_NAME_MAX_LENGTH = NAME_MAX_LENGTH - 5

_NAME_RE = re.compile(r"[a-z0-9_-]+")
_TAG_RE = re.compile(r"[\w .-]+")
_UUID_RE = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
# The "valid e-mail address" production of the HTML standard: an ASCII local part, then one or
# more dot-separated host labels of 1-63 letters, digits and inner hyphens.
_EMAIL_RE = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)

_MSG_NAME_NOT_STRING = "Names must be strings"
_MSG_NAME_RESERVED = "That name cannot be used"
_MSG_NAME_TOO_SHORT = f"Must be at least {NAME_MIN_LENGTH} characters long"
_MSG_NAME_TOO_LONG = f"Name must be a maximum of {NAME_MAX_LENGTH} characters long"
_MSG_NAME_CHARSET = "Must be purely lowercase alphanumeric (ascii) characters and these symbols: -_"
_MSG_TAG_NOT_STRING = "Tags must be strings"
_MSG_PASSWORD_NOT_STRING = "Passwords must be strings"
_MSG_PASSWORD_TOO_SHORT = f"Your password must be {_PASSWORD_MIN_LENGTH} characters or longer"


# --------------------------------------------------------------------------------------------
# Validators
# --------------------------------------------------------------------------------------------


def name_errors(value: object) -> list[str]:
    """Check a dataset, group, organization or user name.

    A valid name is a string of 2 to 100 characters from ``[a-z0-9_-]`` that is not one of
    :data:`RESERVED_NAMES`. Returns ``[]`` when valid, otherwise a one-element list with the
    first failing check's message, checked in this order: not a string ("Names must be
    strings"), reserved, too short, too long, bad characters. Never raises.
    """
    if not isinstance(value, str):
        return [_MSG_NAME_NOT_STRING]
    if value in RESERVED_NAMES:
        return [_MSG_NAME_RESERVED]
    if len(value) < NAME_MIN_LENGTH:
        return [_MSG_NAME_TOO_SHORT]
    if len(value) > NAME_MAX_LENGTH:
        return [_MSG_NAME_TOO_LONG]
    if not _NAME_RE.fullmatch(value):
        return [_MSG_NAME_CHARSET]
    return []


def tag_errors(value: object) -> list[str]:
    """Check a tag name.

    A valid tag is a string of 2 to 100 characters, each a Unicode word character (letters of
    any script, digits, ``_``), a space, ``-`` or ``.``; uppercase is allowed. Returns ``[]``
    when valid, otherwise a one-element list: the length message first, then the character
    message, each with the tag substituted. A non-string gives "Tags must be strings".
    Never raises.
    """
    if not isinstance(value, str):
        return [_MSG_TAG_NOT_STRING]
    if len(value) < _TAG_MIN_LENGTH:
        return [f'Tag "{value}" length is less than minimum {_TAG_MIN_LENGTH}']
    if len(value) > _TAG_MAX_LENGTH:
        return [f'Tag "{value}" length is more than maximum {_TAG_MAX_LENGTH}']
    if not _TAG_RE.fullmatch(value):
        return [f'Tag "{value}" must be alphanumeric characters or symbols: -_.']
    return []


def email_errors(value: object) -> list[str]:
    """Check an optional email address.

    The field is optional: ``None``, ``""`` and whitespace-only strings are valid (callers that
    require an email must check presence themselves). A string is stripped, then must be an
    ASCII address ``local@host`` with dot-separated host labels. Any other value, including a
    non-string, gives ``"Email {value} is not a valid format"`` with the stripped value.
    Never raises.
    """
    if value is None:
        return []
    if not isinstance(value, str):
        return [f"Email {value} is not a valid format"]
    stripped = value.strip()
    if not stripped or _EMAIL_RE.fullmatch(stripped):
        return []
    return [f"Email {stripped} is not a valid format"]


def password_errors(value: object) -> list[str]:
    """Check a new password: a string of at least 8 characters.

    A non-string gives "Passwords must be strings"; a shorter string (including ``""``) gives
    "Your password must be 8 characters or longer". Callers that let a user leave the password
    unchanged must skip this check when no password was given. Never raises.
    """
    if not isinstance(value, str):
        return [_MSG_PASSWORD_NOT_STRING]
    if len(value) < _PASSWORD_MIN_LENGTH:
        return [_MSG_PASSWORD_TOO_SHORT]
    return []


def is_uuid(value: object) -> bool:
    """True if ``value`` is a UUID string in canonical 8-4-4-4-12 hex form (any version).

    Hex digits may be upper or lower case; braces, ``urn:uuid:`` prefixes and undashed forms
    are rejected. Non-strings are never UUIDs.
    """
    return isinstance(value, str) and _UUID_RE.fullmatch(value) is not None


# --------------------------------------------------------------------------------------------
# Munging
# --------------------------------------------------------------------------------------------

# Letters that Unicode compatibility decomposition leaves alone but that have a conventional
# ASCII spelling. Everything else non-ASCII is decomposed (NFKD) and whatever is still not
# ASCII afterwards is dropped.
_TRANSLITERATIONS = {
    ord("ß"): "ss",
    ord("ẞ"): "SS",
    ord("æ"): "ae",
    ord("Æ"): "AE",
    ord("œ"): "oe",
    ord("Œ"): "OE",
    ord("þ"): "th",
    ord("Þ"): "TH",
    ord("ð"): "d",
    ord("Ð"): "D",
    ord("đ"): "d",
    ord("Đ"): "D",
    ord("ø"): "o",
    ord("Ø"): "O",
    ord("ł"): "l",
    ord("Ł"): "L",
    0x0131: "i",  # dotless i
}

_NAME_SEPARATORS_RE = re.compile(r"[\s.:/]")
_NOT_NAME_CHAR_RE = re.compile(r"[^a-zA-Z0-9_-]")
_NOT_TAG_CHAR_RE = re.compile(r"[^a-zA-Z0-9 -]")
_WHITESPACE_RE = re.compile(r"\s")
_DASH_RUN_RE = re.compile(r"-{2,}")
# A trailing year-like token: "-2012", "_2011-12", "-2019-20" (from "2019/20").
_TRAILING_YEAR_RE = re.compile(r"[_-]((?:\d{2,4}-)?\d{2,4})\Z")


def _to_ascii(text: str) -> str:
    """Transliterate to ASCII: known letters spelled out, others decomposed, the rest dropped."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_TRANSLITERATIONS))
    return decomposed.encode("ascii", "ignore").decode("ascii")


def _fit_length(text: str, *, minimum: int, maximum: int) -> str:
    """Pad with ``_`` up to ``minimum`` characters, then cut to ``maximum``."""
    return text.ljust(minimum, "_")[:maximum]


def _avoid_reserved(name: str) -> str:
    """Append ``_`` to a reserved name so the result is always usable."""
    return name + "_" if name in RESERVED_NAMES else name


def _name_characters(text: str) -> str:
    """ASCII; whitespace, ``.``, ``:`` and ``/`` to ``-``; other symbols removed; lowercased."""
    text = _NAME_SEPARATORS_RE.sub("-", _to_ascii(text))
    return _NOT_NAME_CHAR_RE.sub("", text).lower()


def munge_name(text: str) -> str:
    """Turn any text into a valid name, keeping it recognisable.

    Steps: transliterate to ASCII (``"Straße"`` -> ``"strasse"``, other non-ASCII dropped);
    whitespace, ``.``, ``:`` and ``/`` become ``-``; any other character outside
    ``[a-zA-Z0-9_-]`` is removed; lowercase; pad with ``_`` to 2 characters; cut to 100.
    Dashes are neither collapsed nor stripped (``"police: spending"`` ->
    ``"police--spending"``). A result equal to a reserved name gets ``_`` appended
    (``"new"`` -> ``"new_"``).

    For every input string ``name_errors(munge_name(text)) == []``, and
    ``munge_name(munge_name(text)) == munge_name(text)``.
    """
    name = _fit_length(_name_characters(text), minimum=NAME_MIN_LENGTH, maximum=NAME_MAX_LENGTH)
    return _avoid_reserved(name)


def munge_title_to_name(text: str) -> str:
    """Suggest a readable name (URL slug) from a title.

    As :func:`munge_name`, then runs of ``-`` collapse to one and leading/trailing ``-`` are
    stripped. Results are kept to at most 95 characters, leaving room for a de-duplicating
    suffix: when a longer result ends in a year-like token (``-2009``, ``_2011-12``,
    ``2019/20``), the token is kept and the head is cut instead
    (``"<long title> 2009"`` -> ``"<head>-2009"``); otherwise the tail is cut. Dashes left
    at the cut are stripped. Short results are padded with ``_`` to 2 characters and a
    reserved result gets ``_`` appended.

    For every input string ``name_errors(munge_title_to_name(text)) == []``, and the function
    is idempotent.
    """
    name = _DASH_RUN_RE.sub("-", _name_characters(text)).strip("-")
    if len(name) > _TITLE_NAME_MAX_LENGTH:
        year = _TRAILING_YEAR_RE.search(name)
        if year is not None:
            token = year.group(1)
            head = name[: _TITLE_NAME_MAX_LENGTH - len(token) - 1].rstrip("-")
            name = f"{head}-{token}"
        else:
            name = name[:_TITLE_NAME_MAX_LENGTH].rstrip("-")
    name = _fit_length(name, minimum=NAME_MIN_LENGTH, maximum=NAME_MAX_LENGTH)
    return _avoid_reserved(name)


def munge_tag(text: str) -> str:
    """Turn any text into a valid tag.

    Steps: transliterate to ASCII, lowercase, strip surrounding whitespace, remove every
    character other than ASCII letters, digits, whitespace and ``-`` (so ``_``, ``.`` and other
    symbols disappear: ``"A/B.c:d"`` -> ``"abcd"``), turn each whitespace character into ``-``
    (runs are not collapsed), pad with ``_`` to 2 characters and cut to 100.

    For every input string ``tag_errors(munge_tag(text)) == []``, and the function is
    idempotent.
    """
    tag = _to_ascii(text).lower().strip()
    tag = _WHITESPACE_RE.sub(" ", tag)
    tag = _NOT_TAG_CHAR_RE.sub("", tag).replace(" ", "-")
    return _fit_length(tag, minimum=_TAG_MIN_LENGTH, maximum=_TAG_MAX_LENGTH)


def normalize_tag_string(value: str) -> list[str]:
    """Split a comma-separated tag string (``"a, b,c"``) into tag names.

    Each part is stripped; empty parts are dropped; exact duplicates are dropped keeping the
    first occurrence's position. Tags are not validated or munged here.
    """
    seen: dict[str, None] = {}
    for part in value.split(","):
        tag = part.strip()
        if tag:
            seen.setdefault(tag, None)
    return list(seen)


# --------------------------------------------------------------------------------------------
# Resource formats
# --------------------------------------------------------------------------------------------

# (canonical name, MIME type or None, alternative spellings incl. file extensions).
_FORMATS: tuple[tuple[str, str | None, tuple[str, ...]], ...] = (
    (
        "CSV",
        "text/csv",
        ("comma separated values", "text/comma-separated-values", "application/csv"),
    ),
    ("TSV", "text/tab-separated-values", ("tab separated values", "tab", "text/tsv")),
    ("JSON", "application/json", ("text/json",)),
    ("NDJSON", "application/x-ndjson", ("jsonl", "json lines", "application/jsonl")),
    ("GeoJSON", "application/geo+json", ("geo json", "application/vnd.geo+json")),
    ("JSON-LD", "application/ld+json", ("jsonld", "json ld")),
    ("XML", "application/xml", ("text/xml",)),
    ("XLS", "application/vnd.ms-excel", ("excel", "microsoft excel")),
    (
        "XLSX",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ("excel xlsx",),
    ),
    ("ODS", "application/vnd.oasis.opendocument.spreadsheet", ("opendocument spreadsheet",)),
    ("PDF", "application/pdf", ()),
    ("HTML", "text/html", ("htm", "web page", "webpage")),
    ("TXT", "text/plain", ("text", "plain text")),
    ("Markdown", "text/markdown", ("md", "text/x-markdown")),
    ("RTF", "application/rtf", ("text/rtf",)),
    ("DOC", "application/msword", ("word",)),
    (
        "DOCX",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        (),
    ),
    ("ODT", "application/vnd.oasis.opendocument.text", ("opendocument text",)),
    ("PPT", "application/vnd.ms-powerpoint", ("powerpoint",)),
    (
        "PPTX",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        (),
    ),
    ("ZIP", "application/zip", ("application/x-zip-compressed", "application/x-zip")),
    ("GZIP", "application/gzip", ("gz", "application/x-gzip")),
    ("BZ2", "application/x-bzip2", ("bzip2",)),
    ("XZ", "application/x-xz", ()),
    ("TAR", "application/x-tar", ()),
    ("7Z", "application/x-7z-compressed", ("7zip", "7-zip")),
    ("KML", "application/vnd.google-earth.kml+xml", ()),
    ("KMZ", "application/vnd.google-earth.kmz", ()),
    ("SHP", "application/x-shapefile", ("shapefile", "esri shapefile", "shape file")),
    ("GML", "application/gml+xml", ()),
    ("GPX", "application/gpx+xml", ()),
    ("GPKG", "application/geopackage+sqlite3", ("geopackage",)),
    ("GeoTIFF", "image/tiff; application=geotiff", ("geotif", "geo tiff")),
    ("WMS", "application/vnd.ogc.wms_xml", ("web map service", "ogc wms")),
    ("WFS", None, ("web feature service", "ogc wfs")),
    ("WCS", None, ("web coverage service", "ogc wcs")),
    ("WMTS", None, ("web map tile service", "ogc wmts")),
    ("API", None, ("rest", "rest api", "web api")),
    ("SPARQL", "application/sparql-query", ("sparql endpoint",)),
    ("RDF", "application/rdf+xml", ("rdf/xml", "rdf xml")),
    ("TTL", "text/turtle", ("turtle",)),
    ("N3", "text/n3", ("notation3",)),
    ("NT", "application/n-triples", ("n-triples", "ntriples")),
    ("RSS", "application/rss+xml", ()),
    ("Atom", "application/atom+xml", ("atom feed",)),
    ("ICS", "text/calendar", ("ical", "icalendar")),
    ("YAML", "application/yaml", ("yml", "text/yaml", "application/x-yaml")),
    ("SQL", "application/sql", ()),
    ("SQLite", "application/vnd.sqlite3", ("sqlite3", "application/x-sqlite3")),
    ("Parquet", "application/vnd.apache.parquet", ("apache parquet", "application/x-parquet")),
    ("Avro", "application/avro", ("apache avro", "application/vnd.apache.avro")),
    ("NetCDF", "application/x-netcdf", ("nc", "netcdf4", "netcdf-4")),
    ("HDF5", "application/x-hdf5", ("h5", "he5", "hdf 5")),
    ("DBF", "application/dbf", ("dbase", "application/x-dbf")),
    ("PNG", "image/png", ()),
    ("JPEG", "image/jpeg", ("jpg", "jpe")),
    ("GIF", "image/gif", ()),
    ("TIFF", "image/tiff", ("tif",)),
    ("SVG", "image/svg+xml", ()),
)


# Lower-cased name / MIME type / alternative -> canonical name, derived once from the table.
_FORMAT_BY_KEY: Mapping[str, str] = MappingProxyType(
    {
        key.lower(): name
        for name, mimetype, alternatives in _FORMATS
        for key in (name, mimetype, *alternatives)
        if key is not None
    }
)


def _lookup_format(value: str) -> str | None:
    key = value.strip().lower()
    found = _FORMAT_BY_KEY.get(key) or _FORMAT_BY_KEY.get(key.lstrip("."))
    if found is None and ";" in key:
        # A MIME type with parameters ("text/csv; charset=utf-8") matches its bare type.
        found = _FORMAT_BY_KEY.get(key.split(";", 1)[0].strip())
    return found


def canonical_format(value: str | None) -> str | None:
    """Normalise a resource format to its canonical name.

    A case-insensitive match on a known format's name, MIME type (parameters such as
    ``; charset=utf-8`` ignored) or alternative spelling, with an optional leading ``.``,
    gives the canonical name: ``"csv"``, ``"text/csv"`` and ``".csv"`` all give ``"CSV"``,
    ``"shapefile"`` gives ``"SHP"``. An unknown value is returned stripped but otherwise
    verbatim; ``None``, ``""`` and whitespace give ``None``.
    """
    if value is None:
        return None
    stripped = value.strip()
    if not stripped:
        return None
    return _lookup_format(stripped) or stripped


def guess_format(url: str) -> str | None:
    """Guess a resource's canonical format from the extension of its URL's path.

    The query string and fragment are ignored and the path is percent-decoded; a malformed URL
    never raises. Only the last
    extension decides: ``data.csv.gz`` gives ``"GZIP"``, not ``"CSV"``. The extension is looked
    up in the known formats; failing that, the standard library's MIME table (which may
    include the host's ``mime.types`` entries) maps it to a MIME type, giving the canonical
    format when that type is known and the upper-cased extension otherwise (``.mp3`` ->
    ``"MP3"``). No extension, or one nobody knows, gives ``None``.
    """
    url = url.strip()
    try:
        path = urlsplit(url).path
    except ValueError:  # e.g. an unbalanced "[" in the host: still look at the tail
        path = url.split("#", 1)[0].split("?", 1)[0]
    path = unquote(path)
    extension = posixpath.splitext(posixpath.basename(path))[1][1:].lower()
    if not extension:
        return None
    known = _FORMAT_BY_KEY.get(extension)
    if known is not None:
        return known
    mimetype, encoding = mimetypes.guess_type(f"file.{extension}", strict=False)
    if mimetype is None and encoding is None:
        return None
    # A compression suffix the table lacks comes back as an encoding, not a MIME type.
    return _FORMAT_BY_KEY.get((mimetype or encoding or "").lower()) or extension.upper()
