"""The stored forms of the documents: a ``DatasetDocument`` is one row of the document table,
a ``ResourceDocument`` one row of the resource table, a ``ContentDocument`` one row of the
content table.

Tokenisation never happens in PostgreSQL. Every text value is split here with
:func:`opencatalog.domain.search.tokenize` (the domain's rule: maximal runs of Unicode letters and
digits, lowercased); PostgreSQL receives the tokens, so the ``simple`` parser's own idea of a
word (hyphens, e-mails, URLs, ...) never applies and matching is exactly the domain's.

The default field ``text`` is the ``tsvector`` column ``text_tsv`` (GIN-indexed), written as a
literal with explicit lexemes and positions. Positions leave a gap of one between two values of
the field, so ``<->`` (phrase) never joins the end of one value to the start of the next.
Scores come from ``rank_tsv``, a small ``tsvector`` kept in the row (no TOAST fetch per hit)
holding the name and title (weight A) and the tags, groups and organization (weight B): hits on
those rank first, the others tie (and fall back to the newest first).

Every other text field (``title``, ``notes``, ``res_name``, ``res_description``, ``author``,
``maintainer``, ``extras_<key>``) is stored as its *token string*: the tokens separated by
spaces, the values by ``" | "``, with a space at both ends (:func:`token_string`). In a token
string, ``" w "`` finds the token ``w``, ``" w1 w2 "`` a phrase within one value and ``" w"`` a
token starting with ``w``, exactly, with ``strpos``. Those fields need no index of their own:
each of their tokens is also in ``text``, whose GIN index selects the candidate rows first.

PostgreSQL bounds what a ``tsvector`` holds: positions stop at 16,383, a lexeme keeps at most 256
positions and 2,046 bytes, and all lexemes together must stay under 1 MB. When ``text`` does not
fit (a very long document, a word repeated more than 256 times, a token longer than
``MAX_TOKEN_CHARS`` characters), its lexemes are stored without positions (long tokens cut to
``MAX_TOKEN_CHARS`` characters followed by ``CUT_MARK``) and its token string goes to
``text_exact``, where phrases, long words and long prefixes are checked exactly. Distinct
lexemes beyond ``MAX_LEXEME_BYTES`` in one document are left out of ``text_tsv`` (logged as a
warning): such words cannot be found.

Resources and content chunks are searched on their default field only, stored the same way:
``text_tsv`` (the values ``name``, ``description`` and ``format`` of a resource, the ``text`` of
a chunk) with ``text_exact`` when the vector cannot decide. A content chunk of
``CONTENT_CHUNK_CHARS`` (100,000) characters holds at most 100,000 code points, under 400 kB of
distinct lexemes, so its vector always fits; its positions usually pass 16,383, so phrases in
long chunks are checked on ``text_exact``.

Strings PostgreSQL cannot store (NUL characters, lone surrogates) are replaced by U+FFFD, on
the way in and in queries alike (:func:`clean`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs
from opencatalog.domain.search import (
    DEFAULT_FIELD,
    EXTRAS_PREFIX,
    ContentDocument,
    DatasetDocument,
    ResourceDocument,
    facet_values,
    field_values,
    tokenize,
)

__all__ = [
    "COLUMNS",
    "CONTENT_COLUMNS",
    "CUT_MARK",
    "FIELD_COLUMNS",
    "MAX_TOKEN_CHARS",
    "RESOURCE_COLUMNS",
    "clean",
    "content_row",
    "document_row",
    "lexeme",
    "quote_lexeme",
    "rank_literal",
    "resource_row",
    "searchable_extra",
    "source_json",
    "token_string",
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

FIELD_COLUMNS = {
    "title": "title_tokens",
    "notes": "notes_tokens",
    "res_name": "res_name_tokens",
    "res_description": "res_description_tokens",
    "author": "author_tokens",
    "maintainer": "maintainer_tokens",
}
"""Text fields other than ``text`` and the extras, and the columns of their token strings."""

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
    "text_exact",
    "rank_tsv",
    *FIELD_COLUMNS.values(),
    "extras_tokens",
    "source",
)
"""The document table's columns, in the order of :func:`document_row`."""

RESOURCE_COLUMNS = (
    "id",
    "package_id",
    "name",
    "description",
    "format",
    "url",
    "position",
    "text_tsv",
    "text_exact",
)
"""The resource table's columns, in the order of :func:`resource_row`."""

CONTENT_COLUMNS = (
    "id",
    "resource_id",
    "chunk",
    "package_id",
    "content_type",
    "text",
    "text_tsv",
    "text_exact",
)
"""The content table's columns, in the order of :func:`content_row`."""

MAX_RANK_TOKENS = 2_000
"""Tokens of the ranked fields kept in ``rank_tsv`` (it only orders hits)."""


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


def lexeme(token: str) -> str:
    """The lexeme stored for a token: the token, or its first ``MAX_TOKEN_CHARS`` characters
    followed by ``CUT_MARK`` when it is longer."""
    if len(token) <= MAX_TOKEN_CHARS:
        return token
    return token[:MAX_TOKEN_CHARS] + CUT_MARK


def quote_lexeme(text: str) -> str:
    """``text`` quoted as one lexeme of ``tsvector``/``tsquery`` input syntax."""
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def token_string(values: Iterable[Sequence[str]]) -> str:
    """The token string of a field whose values have these tokens: ``" a b | c d "``, or
    ``""`` when there is no token at all."""
    joined = " | ".join(" ".join(tokens) for tokens in values if tokens)
    return f" {joined} " if joined else ""


def searchable_extra(key: str) -> bool:
    """Whether ``extras_<key>`` can be searched (keys made of ``[A-Za-z0-9_]``)."""
    return bool(key) and key.isascii() and key.replace("_", "a").isalnum()


class _Vector:
    """Builds the ``tsvector`` literal of one field within the lexeme byte budget."""

    def __init__(self, doc_id: str) -> None:
        self._doc_id = doc_id
        self._bytes = 0
        self._warned = False

    def _fit(self, keys: list[str]) -> list[str]:
        """The keys that still fit in the byte budget (the others are dropped, once warned)."""
        kept = []
        for key in keys:
            size = len(key.encode("utf-8"))
            if self._bytes + size > MAX_LEXEME_BYTES:
                if not self._warned:
                    log.warning(
                        "search document %r has more than %d bytes of distinct words; "
                        "the rest of its words are not indexed",
                        self._doc_id,
                        MAX_LEXEME_BYTES,
                    )
                    self._warned = True
                continue
            self._bytes += size
            kept.append(key)
        return kept

    def build(self, values: Sequence[Sequence[str]]) -> tuple[str, str | None]:
        """The literal of a field whose values have these tokens, and its token string when
        the ``tsvector`` cannot hold it exactly (else None)."""
        positions: dict[str, list[str]] = {}
        position = 1
        exact = False
        for tokens in values:
            if not tokens:
                continue
            if max(map(len, tokens)) > MAX_TOKEN_CHARS:
                exact = True
                tokens = [lexeme(token) for token in tokens]
            end = position + len(tokens)
            for token, label in zip(tokens, map(str, range(position, end)), strict=True):
                entry = positions.get(token)
                if entry is None:
                    positions[token] = [label]
                else:
                    entry.append(label)
            position = end + 1  # the gap between two values
        if not positions:
            return "", None
        last = position - 2
        if last > MAX_POSITION or (
            last > MAX_POSITIONS_PER_LEXEME
            and max(map(len, positions.values())) > MAX_POSITIONS_PER_LEXEME
        ):
            exact = True
        keys = list(positions)
        size = len("".join(keys).encode("utf-8"))
        if self._bytes + size > MAX_LEXEME_BYTES:
            keys = self._fit(keys)
        else:
            self._bytes += size
        # Tokens are letters and digits (cut ones end with CUT_MARK): nothing to escape.
        if exact:
            literal = " ".join(f"'{key}'" for key in keys)
            return literal, token_string(values)
        return " ".join(f"'{key}':{','.join(positions[key])}" for key in keys), None


def rank_literal(weighted: Iterable[tuple[Sequence[str], str]]) -> str:
    """The ``rank_tsv`` literal of (tokens, weight letter) values: at most
    ``MAX_RANK_TOKENS`` tokens, long ones cut (it only orders hits, so nothing must be
    exact)."""
    positions: dict[str, list[str]] = {}
    position = 1
    for tokens, weight in weighted:
        for token in tokens:
            if position > MAX_RANK_TOKENS:
                break
            positions.setdefault(lexeme(token), []).append(f"{position}{weight}")
            position += 1
        position += 1
    return " ".join(
        f"'{key}':{','.join(where[:MAX_POSITIONS_PER_LEXEME])}" for key, where in positions.items()
    )


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
    seen: dict[str, list[str]] = {}

    def tokens_of(value: str) -> list[str]:
        tokens = seen.get(value)
        if tokens is None:
            seen[value] = tokens = tokenize(value)
        return tokens

    text_tsv, text_exact = _Vector(doc.id).build(
        [tokens_of(value) for value in field_values(doc, DEFAULT_FIELD)]
    )
    ranked = [(tokens_of(doc.name), "A"), (tokens_of(doc.title), "A")]
    ranked.extend((tokens_of(v), "B") for v in (*doc.tags, *doc.groups, doc.organization) if v)
    fields = [token_string(tokens_of(v) for v in field_values(doc, name)) for name in FIELD_COLUMNS]
    extras = {
        key: tokens
        for key, value in doc.extras.items()
        if searchable_extra(key) and (tokens := token_string([tokens_of(value)]))
    }
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
        text_tsv,
        text_exact,
        rank_literal(ranked),
        *fields,
        json.dumps(extras, ensure_ascii=False) if extras else None,
        source_json(doc),
    )


def _json_ready(value: Any) -> Any:
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {clean(str(k)): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_ready(v) for v in value]
    return value


def source_json(doc: DatasetDocument) -> str:
    """Every field of ``doc`` as JSON (datetimes as ISO 8601 strings), for ``get_document``;
    kept out of line, never read by queries."""
    return json.dumps(_json_ready(attrs.asdict(doc, recurse=False)), ensure_ascii=False)


def extras_key(field: str) -> str:
    """The key of ``extras_tokens`` that the field ``extras_<key>`` searches."""
    return field[len(EXTRAS_PREFIX) :]


def resource_row(doc: ResourceDocument) -> tuple[Any, ...]:
    """The row stored for ``doc``, in ``RESOURCE_COLUMNS`` order: its words are those of its
    name, description and format (three values: a phrase never spans two of them)."""
    name, description, fmt = clean(doc.name), clean(doc.description), clean(doc.format)
    text_tsv, text_exact = _Vector(doc.id).build(
        [tokenize(value) for value in (name, description, fmt) if value]
    )
    return (
        clean(doc.id),
        clean(doc.package_id),
        name,
        description,
        fmt,
        clean(doc.url),
        doc.position,
        text_tsv,
        text_exact,
    )


def content_row(doc: ContentDocument) -> tuple[Any, ...]:
    """The row stored for ``doc``, in ``CONTENT_COLUMNS`` order (``id`` is
    ``<resource_id>:<chunk>``)."""
    text = clean(doc.text)
    text_tsv, text_exact = _Vector(doc.id).build([tokenize(text)])
    return (
        clean(doc.id),
        clean(doc.resource_id),
        doc.chunk,
        clean(doc.package_id),
        clean(doc.content_type),
        text,
        text_tsv,
        text_exact,
    )
