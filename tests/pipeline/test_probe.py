"""Fetcher.probe: the link check's HEAD-then-ranged-GET, with every hop checked."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest

from opencatalog.pipeline.fetch import Fetcher, FetchError


class _Handler(http.server.BaseHTTPRequestHandler):
    seen: list[tuple[str, str, str | None]] = []

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self, body: bool) -> None:
        self.seen.append((self.command, self.path, self.headers.get("Range")))
        if self.path == "/ok":
            self.send_response(200)
            self.send_header("ETag", '"v1"')
            self.send_header("Last-Modified", "Wed, 21 Oct 2026 07:28:00 GMT")
            self.send_header("Content-Type", "text/csv")
            self.send_header("Content-Length", "5")
            self.end_headers()
            if body:
                self.wfile.write(b"a,b\n1")
        elif self.path == "/no-head":
            if self.command == "HEAD":
                self.send_response(405)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", "bytes 0-0/100000")
            self.send_header("Content-Length", "1")
            self.send_header("ETag", '"big"')
            self.end_headers()
            self.wfile.write(b"x")
        elif self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/ok")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/to-metadata":
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def do_GET(self) -> None:
        self._answer(body=True)


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _fetcher(base_url: str) -> Fetcher:
    port = int(base_url.rsplit(":", 1)[1])
    return Fetcher(
        allowed_ports={80, 443, port},
        extra_allowed_networks=["127.0.0.1/32"],
        per_host_interval=0,
        timeout=5,
    )


def test_head_answer_gives_status_and_validators(base_url: str) -> None:
    _Handler.seen.clear()
    result = _fetcher(base_url).probe(f"{base_url}/ok")
    assert (result.status, result.method) == (200, "HEAD")
    assert result.etag == '"v1"'
    assert result.last_modified == "Wed, 21 Oct 2026 07:28:00 GMT"
    assert result.content_type == "text/csv"
    assert result.content_length == 5
    assert _Handler.seen == [("HEAD", "/ok", None)]


def test_refused_head_falls_back_to_a_one_byte_ranged_get(base_url: str) -> None:
    _Handler.seen.clear()
    result = _fetcher(base_url).probe(f"{base_url}/no-head")
    assert (result.status, result.method, result.etag) == (206, "GET", '"big"')
    assert _Handler.seen == [("HEAD", "/no-head", None), ("GET", "/no-head", "bytes=0-0")]


def test_redirects_are_followed(base_url: str) -> None:
    result = _fetcher(base_url).probe(f"{base_url}/moved")
    assert result.status == 200
    assert result.final_url == f"{base_url}/ok"
    assert result.redirects == (f"{base_url}/ok",)


def test_a_redirect_to_an_internal_address_is_refused(base_url: str) -> None:
    with pytest.raises(FetchError) as caught:
        _fetcher(base_url).probe(f"{base_url}/to-metadata")
    assert caught.value.code == "blocked_address"


def test_a_missing_page_is_an_http_error_with_its_status(base_url: str) -> None:
    with pytest.raises(FetchError) as caught:
        _fetcher(base_url).probe(f"{base_url}/gone")
    assert (caught.value.code, caught.value.status) == ("http_error", 404)


def test_internal_addresses_are_refused_before_any_request() -> None:
    with pytest.raises(FetchError) as caught:
        Fetcher().probe("http://127.0.0.1/")
    assert caught.value.code == "blocked_address"
