"""Detection, extraction and preview on files the tests make themselves (reliability.md 5.C).

Every fixture is built here: tiny CSV/TSV/JSON/XML/HTML files, a hand-written PDF, an XLSX
written by openpyxl, ZIP archives (a bomb made of zeros, path-traversal names), an XML
billion-laughs payload and a 1 GiB sparse file. Bounds are asserted by counting the bytes
that actually leave the stream, never by timing.
"""

from __future__ import annotations

import io
import json
import os
import sys
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from opencatalog.pipeline.detect import EMPTY_MIMETYPE, HEAD_BYTES, Detection, detect
from opencatalog.pipeline.extract import BoundedReader, Extraction, extract_text, list_zip
from opencatalog.pipeline.preview import Preview, make_preview, preview_to_json

# --------------------------------------------------------------------------- fixtures


class CountingReader:
    """A binary stream that counts every byte handed out. Only read/seek/tell exist on it."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self.bytes_read = 0
        self.calls = 0

    def read(self, size: int = -1) -> bytes:
        data: bytes = self._raw.read(size)
        self.bytes_read += len(data)
        self.calls += 1
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return int(self._raw.seek(offset, whence))

    def tell(self) -> int:
        return int(self._raw.tell())

    def seekable(self) -> bool:
        return True


def make_pdf(pages: list[str]) -> bytes:
    """A minimal valid PDF, one line of Helvetica text per page, offsets computed exactly."""
    objects: list[bytes] = [b"<< /Type /Catalog /Pages 2 0 R >>", b"", b""]
    objects[2] = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
    kids = []
    for text in pages:
        content = b"BT /F1 18 Tf 72 720 Td (%s) Tj ET" % text.encode("latin-1")
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content))
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
            b"/Resources << /Font << /F1 3 0 R >> >> >>" % len(objects)
        )
        kids.append(len(objects))
    refs = b" ".join(b"%d 0 R" % kid for kid in kids)
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (refs, len(kids))
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return out


def make_xlsx(sheets: dict[str, list[list[Any]]]) -> bytes:
    workbook = openpyxl.Workbook()
    first = True
    for title, rows in sheets.items():
        sheet = workbook.active if first else workbook.create_sheet()
        assert sheet is not None
        sheet.title = title
        first = False
        for row in rows:
            sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def make_zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name), data, compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def make_zip_bomb(path: Path, *, megabytes: int = 64) -> Path:
    """A single member of zeros: about 1000:1, streamed so the test never holds it."""
    chunk = b"\0" * (1 << 20)
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("zeros.bin", "w", force_zip64=True) as member,
    ):
        for _ in range(megabytes):
            member.write(chunk)
    return path


def detect_bytes(data: bytes, filename: str | None = None, **labels: str | None) -> Detection:
    return detect(
        data[:HEAD_BYTES],
        filename=filename,
        declared_type=labels.get("declared_type"),
        declared_format=labels.get("declared_format"),
    )


def run(data: bytes, filename: str | None = None, **options: Any) -> tuple[Detection, Extraction]:
    detection = detect_bytes(data, filename)
    return detection, extract_text(io.BytesIO(data), detection, **options)


CSV = b"id,name,city\n1,Alice,Paris\n2,Bob,Berlin\n3,Chlo\xc3\xa9,Z\xc3\xbcrich\n"
TSV = b"id\tname\tcity\n1\tAlice\tParis\n2\tBob\tBerlin\n"
JSON_DOC = json.dumps(
    {"title": "Budget 2024", "tags": ["finance", "open"], "meta": {"author": "Zoë", "n": 3}}
).encode()
XML_DOC = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<dataset><title>Rivers</title>'
    b'<item id="1">Loire &amp; Seine</item><item id="2">Rh\xc3\xb4ne</item></dataset>\n'
)
HTML_DOC = (
    b"<!DOCTYPE html><html><head><title>Report</title><style>p{color:red}</style>"
    b"<script>alert('no')</script></head><body><h1>Annual report</h1>"
    b"<p>Costs &amp; benefits &eacute;tude</p></body></html>"
)
MARKDOWN = b"# Notes\n\nThis dataset lists *bridges*.\n"

# --------------------------------------------------------------------------- detection


@pytest.mark.parametrize(
    ("data", "filename", "expected_format", "expected_mime"),
    [
        (CSV, "data.csv", "CSV", "text/csv"),
        (CSV, None, "CSV", "text/csv"),
        (TSV, "data.tsv", "TSV", "text/tab-separated-values"),
        (TSV, None, "TSV", "text/tab-separated-values"),
        (JSON_DOC, "data.json", "JSON", "application/json"),
        (JSON_DOC, None, "JSON", "application/json"),
        (b'{"a": 1}\n{"a": 2}\n{"a": 3}\n', None, "NDJSON", "application/x-ndjson"),
        (b'{"type": "FeatureCollection", "features": []}', None, "GeoJSON", None),
        (XML_DOC, None, "XML", "application/xml"),
        (b'<kml xmlns="http://www.opengis.net/kml/2.2"><Document/></kml>', None, "KML", None),
        (HTML_DOC, None, "HTML", "text/html"),
        (MARKDOWN, "README.md", "Markdown", "text/markdown"),
        (b"Just a sentence, with a comma.\nAnother line here.\n", None, "TXT", "text/plain"),
        (make_pdf(["Hello"]), None, "PDF", "application/pdf"),
        (make_xlsx({"S": [["a", "b"], [1, 2]]}), None, "XLSX", None),
        (make_zip({"a.txt": b"hello"}), None, "ZIP", "application/zip"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 32, None, "PNG", "image/png"),
    ],
)
def test_each_format_is_detected(
    data: bytes, filename: str | None, expected_format: str, expected_mime: str | None
) -> None:
    detection = detect_bytes(data, filename)
    assert detection.format == expected_format
    if expected_mime is not None:
        assert detection.mimetype == expected_mime
    assert detection.mismatch is None
    assert detection.source in ("content", "extension")


def test_delimiters_and_encodings() -> None:
    assert detect_bytes(CSV).delimiter == ","
    assert detect_bytes(TSV).delimiter == "\t"
    assert detect_bytes(b"a;b;c\n1;2;3\n4;5;6\n").delimiter == ";"
    assert detect_bytes(CSV).encoding == "utf-8"
    assert detect_bytes(b"\xef\xbb\xbf" + CSV).encoding == "utf-8-sig"
    assert detect_bytes("a,b\n1,2\n".encode("utf-16")).encoding == "utf-16"
    assert detect_bytes(make_pdf(["x"])).encoding is None


def test_a_mislabelled_file_is_detected_as_what_it_is() -> None:
    pdf = make_pdf(["Quarterly figures"])
    detection = detect_bytes(pdf, "figures.csv", declared_format="CSV", declared_type="text/csv")
    assert detection.format == "PDF"
    assert detection.mimetype == "application/pdf"
    assert detection.mismatch is not None
    assert "CSV" in detection.mismatch and "PDF" in detection.mismatch
    extraction = extract_text(io.BytesIO(pdf), detection)
    assert "Quarterly figures" in extraction.text


def test_declared_labels_are_checked_too() -> None:
    detection = detect_bytes(HTML_DOC, None, declared_format="CSV")
    assert detection.format == "HTML"
    assert detection.mismatch == "declared as CSV, content is HTML"
    assert detect_bytes(make_zip({"a": b"x"}), "a.csv").mismatch is not None
    assert detect_bytes(b"\0\1\2\3" * 100, "a.csv").mismatch == (
        "file extension says CSV, content is binary"
    )


def test_labels_refine_generic_content() -> None:
    archive = make_zip({"doc.kml": b"<kml/>"})
    assert detect_bytes(archive, "map.kmz").format == "KMZ"
    assert detect_bytes(make_zip({"x": b"y"}), "book.xlsx").format == "XLSX"
    assert detect_bytes(b"one line of text\n", None, declared_format="CSV").format == "CSV"
    assert detect_bytes(b'{"a": 1}', "x.geojson").format == "GeoJSON"
    unknown = detect_bytes(b"\0\1\2\3" * 100, "scene.las")
    assert unknown.format == "LAS" and unknown.source == "extension"


def test_an_empty_file_has_a_clear_outcome() -> None:
    detection = detect(b"", filename="empty.csv", declared_type="text/csv", declared_format="CSV")
    assert detection.empty and detection.format is None
    assert detection.mimetype == EMPTY_MIMETYPE
    extraction = extract_text(io.BytesIO(b""), detection)
    assert extraction.text == "" and extraction.note == "empty file" and not extraction.truncated
    preview = make_preview(io.BytesIO(b""), detection)
    assert preview.kind == "none" and preview.note == "empty file"


@pytest.mark.parametrize(
    "head",
    [
        b"\0" * 10,
        bytes(range(256)) * 300,
        b"PK\x03\x04",
        b"%PDF-",
        b"<",
        b"{",
        b"\xff\xfe",
        b'[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["' * 2000,
        b"a," * 40_000,
        b'"' * 100_000,
    ],
)
def test_detect_never_raises(head: bytes) -> None:
    detection = detect(head, filename="x", declared_type="nonsense/type", declared_format="??")
    assert detection.mimetype


# --------------------------------------------------------------------------- extraction


def test_csv_and_tsv_rows_are_joined() -> None:
    _, extraction = run(CSV, "data.csv")
    assert extraction.rows == 4
    assert extraction.text.splitlines()[3] == "3\tChloé\tZürich"
    assert not extraction.truncated and extraction.note is None
    _, tsv = run(TSV)
    assert tsv.rows == 3 and "Bob\tBerlin" in tsv.text


def test_a_cp1252_csv_is_decoded_with_the_detected_charset() -> None:
    text = "name;city;price\nCafé du Marché;Genève;12,50 €\nÉcole;Köln;3,00 €\nNaïve;Århus;4\n"
    data = text.encode("cp1252")
    detection, extraction = run(data, "prices.csv")
    assert detection.encoding == "cp1252"
    assert detection.delimiter == ";"
    assert "Café du Marché\tGenève\t12,50 €" in extraction.text
    preview = make_preview(io.BytesIO(data), detection)
    assert preview.kind == "table"
    assert preview.rows[0] == ("Café du Marché", "Genève", "12,50 €")


def test_a_latin1_csv_is_decoded_right() -> None:
    data = "name,city\nJosé,São Paulo\nMüller,Düsseldorf\n".encode("latin-1")
    detection, extraction = run(data)
    assert detection.encoding in ("cp1252", "iso8859-1", "iso8859-15")
    assert "José\tSão Paulo" in extraction.text and "Müller\tDüsseldorf" in extraction.text


def test_json_gives_string_values_only() -> None:
    _, extraction = run(JSON_DOC, "data.json")
    lines = extraction.text.splitlines()
    assert lines == ["Budget 2024", "finance", "open", "Zoë"]
    _, ndjson = run(b'{"a": "one"}\n{"a": "two"}\n')
    assert ndjson.text.splitlines() == ["one", "two"]


def test_cut_off_json_falls_back_to_string_literals() -> None:
    data = b'{"k": "first", "list": ["second", "thi' + b"s is long" * 10
    detection = Detection(
        mimetype="application/json", format="JSON", encoding="utf-8", is_text=True
    )
    extraction = extract_text(io.BytesIO(data), detection)
    assert extraction.text.splitlines()[:2] == ["first", "second"]
    deep = b"[" * 100_000 + b'"x"' + b"]" * 100_000
    assert extract_text(io.BytesIO(deep), detection).text.strip() == "x"


def test_xml_and_html_text_content() -> None:
    _, xml = run(XML_DOC)
    assert xml.text.splitlines() == ["Rivers", "Loire & Seine", "Rhône"]
    _, html = run(HTML_DOC)
    assert "Annual report" in html.text
    assert "Costs & benefits étude" in html.text
    assert "alert" not in html.text and "color" not in html.text


def test_plain_text_and_markdown() -> None:
    _, markdown = run(MARKDOWN, "notes.md")
    assert markdown.text == MARKDOWN.decode()


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<lolz>&lol9;</lolz>
"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<foo>&xxe;</foo>
"""


@pytest.mark.parametrize("payload", [BILLION_LAUGHS, XXE])
def test_xml_entity_attacks_are_refused(payload: bytes) -> None:
    detection, extraction = run(payload, "evil.xml")
    assert detection.format == "XML"
    assert extraction.text == ""
    assert extraction.note is not None and "refused" in extraction.note
    assert "root:" not in extraction.text


def test_pdf_text_and_page_cap() -> None:
    pdf = make_pdf([f"Page number {n}" for n in range(1, 6)])
    _, extraction = run(pdf)
    assert [line for line in extraction.text.splitlines()] == [
        f"Page number {n}" for n in range(1, 6)
    ]
    _, capped = run(pdf, max_pages=2)
    assert capped.text.splitlines() == ["Page number 1", "Page number 2"]
    assert capped.truncated and capped.note == "stopped after 2 pages"


def test_a_broken_pdf_gives_a_note() -> None:
    detection = detect_bytes(b"%PDF-1.4\n garbage without objects")
    extraction = extract_text(io.BytesIO(b"%PDF-1.4\n garbage without objects"), detection)
    assert extraction.text == ""
    assert extraction.note is not None


def test_xlsx_sheets_and_rows() -> None:
    data = make_xlsx(
        {"Budget": [["item", "amount"], ["roads", 120], ["parks", 30.5]], "Notes": [["ok"]]}
    )
    detection, extraction = run(data, "budget.xlsx")
    assert detection.format == "XLSX"
    assert extraction.rows == 4
    assert extraction.text.splitlines() == [
        "# Budget",
        "item\tamount",
        "roads\t120",
        "parks\t30.5",
        "# Notes",
        "ok",
    ]
    _, capped = run(data, max_rows=2)
    assert capped.rows == 2 and capped.truncated


def test_xlsx_with_a_huge_shared_strings_part_is_refused() -> None:
    base = make_xlsx({"S": [["a"]]})
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(base)) as source,
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            target.writestr(info.filename, source.read(info.filename))
        target.writestr("xl/sharedStrings.xml", b"<sst>" + b" " * (20 << 20) + b"</sst>")
    data = buffer.getvalue()
    detection = detect_bytes(data, "x.xlsx")
    extraction = extract_text(io.BytesIO(data), detection)
    assert extraction.text == ""
    assert extraction.note is not None and "sharedStrings" in extraction.note
    assert make_preview(io.BytesIO(data), detection).kind == "none"


def test_zip_members_are_listed_never_extracted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = ["../../etc/passwd", "/abs/path.txt", "..\\..\\windows.ini", "ok/data.csv", "dir/"]
    data = make_zip({name: b"content of " + name.encode() for name in names})
    before = sorted(os.listdir(tmp_path))
    monkeypatch.chdir(tmp_path)
    detection, extraction = run(data, "bundle.zip")
    assert detection.format == "ZIP"
    assert [member.name for member in extraction.members] == names
    assert extraction.text.splitlines() == names
    assert extraction.members[0].size == len(b"content of ../../etc/passwd")
    assert extraction.members[-1].is_dir
    assert sorted(os.listdir(tmp_path)) == before  # nothing written anywhere near us
    assert "content of" not in extraction.text


def test_a_zip_bomb_is_flagged_without_extraction(tmp_path: Path) -> None:
    path = make_zip_bomb(tmp_path / "bomb.zip")
    size = path.stat().st_size
    with path.open("rb") as raw:
        detection = detect(
            raw.read(HEAD_BYTES), filename="bomb.zip", declared_type=None, declared_format=None
        )
        raw.seek(0)
        counting = CountingReader(raw)
        extraction = extract_text(counting, detection)  # type: ignore[arg-type]
    assert extraction.note is not None and extraction.note.startswith("zip bomb suspected")
    assert extraction.text == "" and extraction.members == ()
    assert counting.bytes_read < size / 10  # the directory only: nothing was decompressed
    assert list_zip(path.open("rb")).note == extraction.note


def test_zip_entry_cap() -> None:
    data = make_zip({f"f{n}.txt": b"" for n in range(30)})
    extraction = extract_text(io.BytesIO(data), detect_bytes(data), max_members=10)
    assert len(extraction.members) == 10 and extraction.truncated
    assert extraction.note == "listed the first 10 of 30 entries"


def test_row_and_character_caps() -> None:
    data = b"a,b\n" + b"".join(b"%d,x\n" % n for n in range(100))
    _, rows = run(data, max_rows=10)
    assert rows.rows == 10 and rows.truncated
    _, chars = run(data, max_chars=20)
    assert len(chars.text) == 20 and chars.truncated


def test_a_huge_csv_field_stops_cleanly() -> None:
    data = b"a,b\n1," + b"x" * 300_000 + b"\n2,y\n"
    detection = Detection(
        mimetype="text/csv", format="CSV", encoding="utf-8", is_text=True, delimiter=","
    )
    extraction = extract_text(io.BytesIO(data), detection)
    assert extraction.truncated and extraction.note is not None
    assert extraction.rows == 1


def test_unsupported_formats_give_a_note() -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
    detection, extraction = run(png)
    assert extraction.text == "" and extraction.note == "no text extractor for PNG"
    assert make_preview(io.BytesIO(png), detection).kind == "none"


# --------------------------------------------------------------------------- bounded reading

FORCED = ["CSV", "TSV", "TXT", "JSON", "NDJSON", "XML", "HTML", "PDF", "ZIP", "XLSX", None]


@pytest.fixture(scope="module")
def sparse_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sparse") / "huge.csv"
    with path.open("wb") as handle:
        handle.truncate(1 << 30)
    return path


def test_a_sparse_gigabyte_is_detected_as_binary(sparse_file: Path) -> None:
    with sparse_file.open("rb") as raw:
        counting = CountingReader(raw)
        detection = detect(
            counting.read(HEAD_BYTES),
            filename=sparse_file.name,
            declared_type=None,
            declared_format="CSV",
        )
        assert detection.format is None and detection.mismatch is not None
        extraction = extract_text(counting, detection)  # type: ignore[arg-type]
    assert extraction.text == "" and extraction.note is not None
    assert counting.bytes_read == HEAD_BYTES


@pytest.mark.parametrize("forced", FORCED)
def test_a_sparse_gigabyte_is_read_only_up_to_max_bytes(
    sparse_file: Path, forced: str | None
) -> None:
    detection = Detection(
        mimetype="text/plain", format=forced, encoding="utf-8", is_text=forced is None
    )
    limit = 1 << 20
    with sparse_file.open("rb") as raw:
        counting = CountingReader(raw)
        extraction = extract_text(counting, detection, max_bytes=limit)  # type: ignore[arg-type]
    assert counting.bytes_read <= limit
    assert extraction.bytes_read == counting.bytes_read
    assert extraction.note is None or "failed" not in extraction.note
    assert extraction.truncated or extraction.note  # never a silent, complete-looking result


@pytest.mark.parametrize("forced", FORCED)
def test_previews_of_a_sparse_gigabyte_are_bounded(sparse_file: Path, forced: str | None) -> None:
    detection = Detection(
        mimetype="text/plain", format=forced, encoding="utf-8", is_text=forced is None
    )
    with sparse_file.open("rb") as raw:
        counting = CountingReader(raw)
        preview = make_preview(counting, detection, max_read_bytes=1 << 20)  # type: ignore[arg-type]
    assert counting.bytes_read <= (1 << 20 if forced == "XLSX" else 64 * 1024)
    assert len(preview_to_json(preview)) < 500 * 1024


def test_bounded_reader_contract() -> None:
    raw = io.BytesIO(b"abcdefghij")
    reader = BoundedReader(raw, 4)
    assert reader.read() == b"abcd"
    assert reader.cut and reader.consumed == 4
    exact = BoundedReader(io.BytesIO(b"abcd"), 4)
    assert exact.read() == b"abcd" and not exact.cut
    strict = BoundedReader(io.BytesIO(b"abcdefghij"), 4, strict=True)
    strict.read(4)
    with pytest.raises(Exception, match="read limit"):
        strict.read(1)
    reader.close()
    assert not raw.closed


# --------------------------------------------------------------------------- previews


def test_csv_preview_rows_and_cap() -> None:
    data = b"a,b\n" + b"".join(b"%d,%d\n" % (n, n * n) for n in range(500))
    detection = detect_bytes(data)
    preview = make_preview(io.BytesIO(data), detection, max_rows=5)
    assert preview.kind == "table"
    assert preview.columns == ("a", "b")
    assert preview.rows == tuple((str(n), str(n * n)) for n in range(5))
    assert preview.truncated
    small = make_preview(io.BytesIO(data), detection, max_bytes=40, max_rows=1000)
    assert small.truncated
    assert all(len(row) == 2 for row in small.rows)  # the row cut by the byte cap is dropped
    whole = make_preview(io.BytesIO(CSV), detect_bytes(CSV))
    assert not whole.truncated and len(whole.rows) == 3


def test_xlsx_preview() -> None:
    data = make_xlsx({"S": [["x", "y"], [1, None], [2, "two"]], "Other": [["ignored"]]})
    preview = make_preview(io.BytesIO(data), detect_bytes(data))
    assert preview.kind == "table"
    assert preview.columns == ("x", "y")
    assert preview.rows == (("1",), ("2", "two"))


def test_text_preview_is_valid_utf8_at_the_cut() -> None:
    data = ("é" * 100).encode()  # two bytes a character
    detection = detect_bytes(data, "notes.txt")
    preview = make_preview(io.BytesIO(data), detection, max_bytes=51)
    assert preview.kind == "text"
    assert preview.text == "é" * 25  # the half character at byte 51 is dropped
    assert preview.truncated
    encoded = preview_to_json(preview)
    encoded.decode("utf-8")


def test_html_preview_is_data_not_markup() -> None:
    preview = make_preview(io.BytesIO(HTML_DOC), detect_bytes(HTML_DOC))
    assert preview.kind == "text"
    encoded = preview_to_json(preview)
    assert b"<" not in encoded and b">" not in encoded and b"&" not in encoded
    assert json.loads(encoded)["text"] == HTML_DOC.decode()
    assert json.loads(encoded) == {
        "kind": "text",
        "columns": [],
        "rows": [],
        "text": HTML_DOC.decode(),
        "truncated": False,
        "note": None,
    }


def test_table_preview_caps_columns_and_cells() -> None:
    header = ",".join(f"c{n}" for n in range(800))
    data = (header + "\n" + ",".join("x" * 3000 for _ in range(3)) + "\n").encode()
    detection = Detection(
        mimetype="text/csv", format="CSV", encoding="utf-8", is_text=True, delimiter=","
    )
    preview: Preview = make_preview(
        io.BytesIO(data), detection, max_columns=500, max_cell_chars=100
    )
    assert len(preview.columns) == 500
    assert preview.rows[0] == ("x" * 100,) * 3
    assert preview.truncated


# --------------------------------------------------------------------------- layering


def test_the_pipeline_imports_no_service_edge_or_storage() -> None:
    """Building blocks only: stdlib, attrs, domain/errors and lazily imported parsers."""
    import ast

    import opencatalog.pipeline as package

    folder = Path(package.__file__).parent
    allowed_internal = ("opencatalog.domain", "opencatalog.errors", "opencatalog.pipeline")
    allowed_external = {
        "attrs",
        "puremagic",
        "charset_normalizer",
        "defusedxml",
        "pypdf",
        "openpyxl",
    }
    bad = []
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top == "opencatalog":
                    if not name.startswith(allowed_internal):
                        bad.append(f"{path.name}: {name}")
                elif top not in sys.stdlib_module_names and top not in allowed_external | {
                    "__future__"
                }:
                    bad.append(f"{path.name}: {name}")
    assert not bad


def test_importing_the_pipeline_loads_no_parser() -> None:
    import subprocess

    code = (
        "import sys\n"
        "import opencatalog.pipeline.fetch, opencatalog.pipeline.detect\n"
        "import opencatalog.pipeline.extract, opencatalog.pipeline.preview\n"
        "heavy = ('puremagic', 'charset_normalizer', 'defusedxml', 'pypdf', 'openpyxl')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert output.strip() == ""
