"""The stored form of a ``DatasetDocument``: one row of the document table.

Tokenisation never happens in PostgreSQL. Every text value is split here with
:func:`opencatalog.domain.search.tokenize` (the domain's rule: maximal runs of Unicode letters and
digits, lowercased), and the ``tsvector`` values are written as literals with explicit lexemes
and positions, so the ``simple`` parser's own idea of a word (hyphens, e-mails, URLs, ...) never
applies and matching is exactly the domain's.

Two ``tsvector`` columns:

``text_tsv``
    the default field ``text``: bare lexemes, weighted for ranking (A: name and title, B: tags,
    groups and organization, C: notes, D: everything else).
``fields_tsv``
    every other text field, each lexeme qualified by its field tag: ``title:water``,
    ``notes:river``, ``x.spatial:north`` (the extra ``spatial``); see :func:`field_tag`.

Positions restart at 1 for every field and leave a gap of one position between two values of
the field, so ``<->`` (phrase) never joins the end of one value to the start of the next.

PostgreSQL bounds what a ``tsvector`` holds: positions stop at 16,383, a lexeme keeps at most 256
positions and 2,046 bytes, and all lexemes together must stay under 1 MB. A field that does not
fit (a very long field, a word repeated more than 256 times, a token longer than
``MAX_TOKEN_CHARS`` characters) is *exact-checked*: its lexemes are stored without positions
(long tokens cut to ``MAX_TOKEN_CHARS`` characters followed by ``CUT_MARK``), and its tokens are
kept in the ``exact`` JSON column as ``" tok tok | tok tok "`` (values separated by ``|``), where
phrases, long words and long prefixes are checked exactly (see ``querying``). Distinct lexemes
beyond ``MAX_LEXEME_BYTES`` in one document are not indexed (logged as a warning).

Strings PostgreSQL cannot store (NUL characters, lone surrogates) are replaced by U+FFFD, on
the way in and in queries alike (:func:`clean`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from opencatalog.domain.search import (
    DEFAULT_FIELD,
    EXTRAS_PREFIX,
    DatasetDocument,
    facet_values,
    field_values,
    tokenize,
)

__all__ = [
    "COLUMNS",
    "CUT_MARK",
    "FIELD_TEXT_FIELDS",
    "MAX_TOKEN_CHARS",
    "clean",
    "document_row",
    "field_tag",
    "lexeme",
    "quote_lexeme",
]

log = logging.getLogger(__name__)

MAX_POSITION = 16_383
"""The largest position a ``tsvector`` stores (larger ones are silently clamped)."""

MAX_POSITIONS_PER_LEXEME = 256
"""How many positions a ``tsvector`` keeps per lexeme (more are silently dropped)."""

MAX_TOKEN_CHARS = 256
"""Tokens longer than this are stored cut, with ``CUT_MARK``, and checked exactly."""

CUT_MARK = "\u2026"
"""Ends a cut lexeme; never part of a token (tokens are letters and digits only)."""

MAX_LEXEME_BYTES = 900_000
"""Budget of distinct lexeme bytes per ``tsvector`` (PostgreSQL's hard limit is 1 MB)."""

FIELD_TEXT_FIELDS = ("title", "notes", "res_name", "res_description", "author", "maintainer")
"""Text fields other than ``text`` and the extras, in ``fields_tsv``."""

COLUMNS = (
    "id",
    "name",
    "title",
    "title_sort",
    "notes",
    "organization",
    "owner_org",
    "license_id",
    "dataset_type",
    "capacity",
    "state",
    "tags",
    "groups",
    "res_format",
    "res_url",
    "labels",
    "metadata_created",
    "metadata_modified",
    "text_tsv",
    "fields_tsv",
    "exact",
)
"""The document table's columns, in the order of :func:`document_row`."""

_MAX_TAG_KEY = 64
_WEIGHT_A = "A"
_WEIGHT_B = "B"
_WEIGHT_C = "C"
_WEIGHT_D = ""


def clean(value: str) -> str:
    """``value`` with the characters PostgreSQL text cannot hold (NUL, lone surrogates)
    replaced by U+FFFD; the same string when there are none (the common case)."""
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in value)
    return value


def field_tag(name: str) -> str:
    """The tag that qualifies the lexemes of text field ``name`` in ``fields_tsv`` and keys its
    entry in ``exact``: the field name, ``x.<key>`` for ``extras_<key>`` (a hash for keys
    longer than 64 characters, so lexemes stay short). ``text`` is its own tag."""
    if name.startswith(EXTRAS_PREFIX):
        key = name[len(EXTRAS_PREFIX) :]
        if len(key) <= _MAX_TAG_KEY:
            return f"x.{key}"
        return "x#" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return name


def lexeme(token: str) -> str:
    """The lexeme stored for a token: the token, or its first ``MAX_TOKEN_CHARS`` characters
    followed by ``CUT_MARK`` when it is longer."""
    if len(token) <= MAX_TOKEN_CHARS:
        return token
    return token[:MAX_TOKEN_CHARS] + CUT_MARK


def quote_lexeme(text: str) -> str:
    """``text`` quoted as one lexeme of ``tsvector``/``tsquery`` input syntax."""
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def exact_text(values: Iterable[Sequence[str]]) -> str:
    """The exact-check form of a field: tokens separated by spaces, values by ``|``, with a
    space at both ends, so ``" w1 w2 "`` finds a phrase within one value and ``" w"`` a
    token starting with ``w``."""
    return " " + " | ".join(" ".join(tokens) for tokens in values if tokens) + " "


class _Vector:
    """Builds one ``tsvector`` literal, field by field, within the lexeme byte budget."""

    def __init__(self, doc_id: str) -> None:
        self._doc_id = doc_id
        self._parts: list[str] = []
        self._bytes = 0
        self._warned = False
        self.exact: dict[str, str] = {}

    def _admit(self, text: str) -> bool:
        size = len(text.encode("utf-8"))
        if self._bytes + size > MAX_LEXEME_BYTES:
            if not self._warned:
                log.warning(
                    "search document %r has more than %d bytes of distinct words; "
                    "the rest of its words are not indexed",
                    self._doc_id,
                    MAX_LEXEME_BYTES,
                )
                self._warned = True
            return False
        self._bytes += size
        return True

    def add(self, tag: str, head: str, values: Sequence[tuple[Sequence[str], str]]) -> None:
        """Add a field: ``values`` are (tokens, weight letter) per value; ``head`` prefixes
        every lexeme (``""`` for ``text_tsv``)."""
        positions: dict[str, list[str]] = {}
        position = 1
        exact = False
        for tokens, weight in values:
            if not tokens:
                continue
            for token in tokens:
                if len(token) > MAX_TOKEN_CHARS:
                    exact = True
                key = lexeme(token)
                entry = positions.get(key)
                if entry is None:
                    positions[key] = entry = []
                entry.append(f"{position}{weight}")
                position += 1
            position += 1  # the gap between two values
        if not positions:
            return
        if position - 2 > MAX_POSITION or any(
            len(p) > MAX_POSITIONS_PER_LEXEME for p in positions.values()
        ):
            exact = True
        if exact:
            self.exact[tag] = exact_text(tokens for tokens, _ in values)
        for key, where in positions.items():
            text = head + key
            if not self._admit(text):
                continue
            if exact:
                self._parts.append(quote_lexeme(text))
            else:
                self._parts.append(f"{quote_lexeme(text)}:{','.join(where)}")

    def literal(self) -> str:
        return " ".join(self._parts)


def _text_values(doc: DatasetDocument) -> list[tuple[Sequence[str], str]]:
    """The values of the default field with their ranking weight."""
    weights: dict[str, str] = {}
    for value in (*doc.res_format, doc.license_id, doc.author, doc.maintainer):
        if value:
            weights.setdefault(value, _WEIGHT_D)
    if doc.notes:
        weights[doc.notes] = _WEIGHT_C
    for value in (*doc.tags, *doc.groups, doc.organization):
        if value:
            weights[value] = _WEIGHT_B
    for value in (doc.name, doc.title):
        if value:
            weights[value] = _WEIGHT_A
    return [
        (tokenize(value), weights.get(value, _WEIGHT_D))
        for value in field_values(doc, DEFAULT_FIELD)
    ]


def _keywords(doc: DatasetDocument, name: str) -> list[str]:
    return [clean(v) for v in facet_values(doc, name)]


def _single(value: str | None) -> str | None:
    return clean(value) if value else None


def document_row(doc: DatasetDocument) -> tuple[Any, ...]:
    """The row stored for ``doc``, in ``COLUMNS`` order.

    Keyword fields hold the values the domain's ``facet_values`` gives (present values, each
    once); ``None`` stands for an absent single value. Dates must be timezone-aware.
    """
    for moment in (doc.metadata_created, doc.metadata_modified):
        if moment.tzinfo is None:
            raise ValueError("search documents need timezone-aware datetimes")
    text = _Vector(doc.id)
    text.add(DEFAULT_FIELD, "", _text_values(doc))
    fields = _Vector(doc.id)
    for name in FIELD_TEXT_FIELDS:
        tag = field_tag(name)
        fields.add(tag, tag + ":", [(tokenize(v), "") for v in field_values(doc, name)])
    for key, value in doc.extras.items():
        name = EXTRAS_PREFIX + key
        if not _searchable_extra(key) or not value:
            continue
        tag = field_tag(name)
        fields.add(tag, tag + ":", [(tokenize(value), "")])
    exact = {**text.exact, **fields.exact}
    return (
        clean(doc.id),
        clean(doc.name),
        clean(doc.title),
        clean(doc.title.lower()),
        clean(doc.notes),
        _single(doc.organization),
        _single(doc.owner_org),
        _single(doc.license_id),
        clean(doc.type),
        "private" if doc.private else "public",
        clean(doc.state),
        _keywords(doc, "tags"),
        _keywords(doc, "groups"),
        _keywords(doc, "res_format"),
        _keywords(doc, "res_url"),
        [clean(label) for label in dict.fromkeys(doc.labels)],
        doc.metadata_created,
        doc.metadata_modified,
        text.literal(),
        fields.literal(),
        json.dumps(exact, ensure_ascii=False) if exact else None,
    )


def _searchable_extra(key: str) -> bool:
    """Keys made of ``[A-Za-z0-9_]`` can be searched as ``extras_<key>``."""
    return bool(key) and all(c.isascii() and (c.isalnum() or c == "_") for c in key)

