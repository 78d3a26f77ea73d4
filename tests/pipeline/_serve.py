"""A local HTTP file server for pipeline tests, and builders of small files of each format.

The server listens on 127.0.0.1 on a free port; catalogs under test allow exactly that address
and port (``fetch_allowed_networks``, ``fetch_allowed_ports``), as an intranet catalog would.
"""

from __future__ import annotations

import http.server
import io
import threading
import zipfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import attrs


@attrs.define
class Route:
    body: bytes = b""
    status: int = 200
    content_type: str = "application/octet-stream"
    gate: threading.Event | None = None  # the response waits for it (a slow server)
    entered: threading.Event = attrs.field(factory=threading.Event)


class FileServer:
    """Serves ``routes`` (path -> Route); counts requests per path."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path
                server.hits[path] += 1
                route = server.routes.get(path)
                if route is None:
                    self.send_error(404)
                    return
                route.entered.set()
                if route.gate is not None:
                    route.gate.wait(30)
                self.send_response(route.status)
                self.send_header("Content-Type", route.content_type)
                self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                self.wfile.write(route.body)

            def log_message(self, *args: Any) -> None:
                pass

        self._http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        self.port = self._http.server_address[1]
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        self._thread.start()

    def add(
        self, path: str, body: bytes, content_type: str = "application/octet-stream", **kw: Any
    ) -> str:
        """Serve ``body`` at ``path``; returns its URL."""
        self.routes[path] = Route(body=body, content_type=content_type, **kw)
        return self.url(path)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def settings(self) -> dict[str, Any]:
        """Catalog settings that let the fetcher reach this server (and only it)."""
        return {
            "fetch_allowed_networks": ["127.0.0.1/32"],
            "fetch_allowed_ports": [self.port],
            "fetch_host_interval": 0,
        }

    def close(self) -> None:
        for route in self.routes.values():
            if route.gate is not None:
                route.gate.set()
        self._http.shutdown()
        self._http.server_close()


@contextmanager
def serving() -> Iterator[FileServer]:
    server = FileServer()
    try:
        yield server
    finally:
        server.close()


# -- files --------------------------------------------------------------------------------------


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


def make_xlsx(rows: list[list[Any]]) -> bytes:
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def make_zip_bomb(megabytes: int = 32) -> bytes:
    """One member of zeros, about 1000:1."""
    buffer = io.BytesIO()
    chunk = b"\0" * (1 << 20)
    with (
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("zeros.bin", "w", force_zip64=True) as member,
    ):
        for _ in range(megabytes):
            member.write(chunk)
    return buffer.getvalue()
