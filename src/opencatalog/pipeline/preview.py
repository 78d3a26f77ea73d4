"""A small, safe preview of a resource file, returned as JSON data (never as HTML).

:func:`make_preview` gives the first rows of a table (CSV, TSV, XLSX) or the first bytes of a
text file, decoded to valid Unicode; anything else has no preview. :func:`preview_to_json`
serialises it as UTF-8 JSON in which ``<``, ``>`` and ``&`` are escaped, so even an HTML file's
preview cannot be interpreted as markup if a client mislabels the response.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import logging
import warnings
from typing import Any, BinaryIO, Literal

from attrs import frozen

from opencatalog.pipeline.detect import TEXT_FORMATS, Detection
from opencatalog.pipeline.extract import (
    BoundedReader,
    ReadLimitExceeded,
    open_xlsx,
    xlsx_cells,
)

__all__ = ["Preview", "make_preview", "preview_to_json"]

logger = logging.getLogger(__name__)

PreviewKind = Literal["table", "text", "none"]

_JSON_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


@frozen(kw_only=True)
class Preview:
    """A preview: ``kind`` is ``"table"`` (``columns`` + ``rows`` of strings), ``"text"``
    (``text``) or ``"none"``. ``truncated`` says a limit cut it short; ``note`` explains an
    empty or missing preview.
    """

    kind: PreviewKind
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    text: str | None = None
    truncated: bool = False
    note: str | None = None


class _Cells:
    """Caps on a table preview: columns per row, characters per cell, characters in total."""

    def __init__(self, *, max_columns: int, max_cell_chars: int, max_chars: int) -> None:
        self.max_columns = max_columns
        self.max_cell_chars = max_cell_chars
        self.budget = max_chars
        self.truncated = False

    def row(self, cells: list[str]) -> tuple[str, ...] | None:
        """The capped row, or ``None`` once the total budget is spent."""
        if len(cells) > self.max_columns:
            cells, self.truncated = cells[: self.max_columns], True
        capped = []
        for cell in cells:
            if len(cell) > self.max_cell_chars:
                cell, self.truncated = cell[: self.max_cell_chars], True
            capped.append(cell)
        cost = sum(len(cell) for cell in capped) + len(capped)
        if cost > self.budget:
            self.truncated = True
            return None
        self.budget -= cost
        return tuple(capped)


def _codec(detection: Detection) -> str:
    try:
        return codecs.lookup(detection.encoding or "utf-8").name
    except LookupError:
        return "utf-8"


def _table_from_rows(rows: list[list[str]], cells: _Cells, *, truncated: bool) -> Preview:
    if not rows:
        return Preview(kind="none", note="no rows", truncated=truncated)
    columns = cells.row(rows[0]) or ()
    body: list[tuple[str, ...]] = []
    for row in rows[1:]:
        capped = cells.row(row)
        if capped is None:
            break
        body.append(capped)
    return Preview(
        kind="table",
        columns=columns,
        rows=tuple(body),
        truncated=truncated or cells.truncated,
    )


def _csv_preview(
    stream: BinaryIO, detection: Detection, *, max_rows: int, max_bytes: int, cells: _Cells
) -> Preview:
    reader = BoundedReader(stream, max_bytes)
    text = io.TextIOWrapper(
        io.BufferedReader(reader), encoding=_codec(detection), errors="replace", newline=""
    )
    delimiter = detection.delimiter or ("\t" if detection.format == "TSV" else ",")
    rows: list[list[str]] = []
    note = None
    truncated = False
    try:
        for row in csv.reader(text, delimiter=delimiter):
            if len(rows) > max_rows:  # header + max_rows data rows kept
                truncated = True
                break
            rows.append(row)
    except csv.Error as exc:
        truncated, note = True, f"stopped at row {len(rows) + 1}: {exc}"
    if reader.cut and not truncated and len(rows) > 1:
        rows.pop()  # the byte cap may have cut the last row in half
        truncated = True
    if rows and rows[0] and rows[0][0].startswith("\ufeff"):
        rows[0][0] = rows[0][0][1:]
    preview = _table_from_rows(rows, cells, truncated=truncated or reader.cut)
    return preview if note is None else _with_note(preview, note)


def _with_note(preview: Preview, note: str) -> Preview:
    return Preview(
        kind=preview.kind,
        columns=preview.columns,
        rows=preview.rows,
        text=preview.text,
        truncated=preview.truncated,
        note=note,
    )


def _xlsx_preview(
    stream: BinaryIO, *, max_rows: int, max_read_bytes: int, cells: _Cells
) -> Preview:
    reader = BoundedReader(stream, max_read_bytes, strict=True)
    try:
        workbook, refusal = open_xlsx(reader, max_bytes=max_read_bytes)
        if workbook is None:
            return Preview(kind="none", note=refusal)
        rows: list[list[str]] = []
        truncated = False
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sheets = workbook.worksheets
                if not sheets:
                    return Preview(kind="none", note="the workbook has no worksheet")
                sheet = sheets[0]
                sheet.reset_dimensions()
                for row in sheet.iter_rows(values_only=True):
                    if len(rows) > max_rows:
                        truncated = True
                        break
                    rows.append(xlsx_cells(row))
        finally:
            workbook.close()
    except ReadLimitExceeded:
        return Preview(kind="none", note=f"the file needs more than {max_read_bytes} bytes read")
    except Exception as exc:  # a parser bug on hostile input must not kill the pipeline
        logger.exception("XLSX preview failed")
        return Preview(kind="none", note=f"preview failed: {type(exc).__name__}")
    return _table_from_rows(rows[: max_rows + 1], cells, truncated=truncated)


def _text_preview(stream: BinaryIO, detection: Detection, *, max_bytes: int) -> Preview:
    reader = BoundedReader(stream, max_bytes)
    data = reader.read()
    cut = reader.cut
    decoder = codecs.getincrementaldecoder(_codec(detection))("replace")
    # A character cut in half at the byte cap is dropped, not replaced.
    text = decoder.decode(data, final=not cut)
    return Preview(kind="text", text=text.lstrip("\ufeff"), truncated=cut)


def make_preview(
    stream: BinaryIO,
    detection: Detection,
    *,
    max_rows: int = 100,
    max_bytes: int = 64 * 1024,
    max_columns: int = 500,
    max_cell_chars: int = 1000,
    max_read_bytes: int = 5 * 1024 * 1024,
) -> Preview:
    """Preview ``stream`` (positioned at the file's start) as ``detection`` says.

    CSV/TSV: a header and up to ``max_rows`` rows from at most ``max_bytes`` bytes (a row cut
    by the cap is dropped). XLSX: the first worksheet, same row cap, reading at most
    ``max_read_bytes`` (a workbook needs its directory and parts, so it cannot be previewed
    from its first bytes). Tables are also capped at ``max_columns`` columns,
    ``max_cell_chars`` characters per cell and ``max_bytes`` characters in all. Text formats
    (including HTML, XML and JSON, as plain text): the first ``max_bytes`` bytes decoded with
    the detected encoding, invalid bytes replaced. Anything else: ``kind="none"``. Never raises
    for bad content; the stream is not closed.
    """
    if detection.empty:
        return Preview(kind="none", note="empty file")
    cells = _Cells(max_columns=max_columns, max_cell_chars=max_cell_chars, max_chars=max_bytes)
    name = detection.format
    if name in ("CSV", "TSV"):
        return _csv_preview(stream, detection, max_rows=max_rows, max_bytes=max_bytes, cells=cells)
    if name == "XLSX":
        return _xlsx_preview(stream, max_rows=max_rows, max_read_bytes=max_read_bytes, cells=cells)
    if name in TEXT_FORMATS or (name is None and detection.is_text):
        return _text_preview(stream, detection, max_bytes=max_bytes)
    return Preview(kind="none", note=f"no preview for {name or 'unrecognised binary content'}")


def preview_to_json(preview: Preview) -> bytes:
    """The preview as compact UTF-8 JSON, with ``<``, ``>``, ``&``, U+2028 and U+2029 escaped.

    Shape: ``{"kind", "columns", "rows", "text", "truncated", "note"}``. The output is valid
    UTF-8 whatever the preview holds and contains no raw markup characters.
    """
    document: dict[str, Any] = {
        "kind": preview.kind,
        "columns": list(preview.columns),
        "rows": [list(row) for row in preview.rows],
        "text": preview.text,
        "truncated": preview.truncated,
        "note": preview.note,
    }
    encoded = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    for char, escape in _JSON_ESCAPES.items():
        encoded = encoded.replace(char, escape)
    return encoded.encode("utf-8", "replace")
