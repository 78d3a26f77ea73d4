"""The safe fetcher: SSRF corpus (reliability.md 5.D), pinning, redirects, size and time caps.

No test sends a packet to anything but 127.0.0.1: names are answered by a fake resolver (an
unknown name is an error, never a real DNS query) and connections go through a spy connector
that records every attempt and refuses to open anything but a loopback 127.0.0.1 socket. Every
refusal asserts that the spy saw no connection for the refused address.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.server
import io
import ipaddress
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from opencatalog.errors import ConfigurationError, OpenCatalogError
from opencatalog.pipeline.fetch import (
    FETCH_ERROR_CODES,
    Fetcher,
    FetchError,
    HostRateLimiter,
    blocked_reason,
)

PUBLIC_V4 = "93.184.216.34"
PUBLIC_V6 = "2606:2800:220:1:248:1893:25c8:1946"

# --------------------------------------------------------------------------- fakes


class FakeResolver:
    """``getaddrinfo`` from a table; unknown names fail like NXDOMAIN. Records every call."""

    def __init__(self, table: dict[str, Any]) -> None:
        # name -> successive answers; a plain list of addresses is one answer, always given
        self.answers: dict[str, list[list[str]]] = {
            name: entry if entry and isinstance(entry[0], list) else [entry]
            for name, entry in table.items()
        }
        self.calls: list[str] = []
        self._served: dict[str, int] = {}

    def __call__(
        self, host: str, port: int | None, family: int = 0, type: int = 0
    ) -> list[tuple[Any, ...]]:
        self.calls.append(host)
        answers = self.answers.get(host)
        if answers is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        index = self._served.get(host, 0)
        self._served[host] = index + 1
        addresses = answers[min(index, len(answers) - 1)]
        infos: list[tuple[Any, ...]] = []
        for address in addresses:
            if ":" in address:
                infos.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0)))
            else:
                infos.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)))
        return infos


class SpyConnector:
    """Records every connection attempt; opens only 127.0.0.1, refuses everything else."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def __call__(self, address: tuple[str, int], timeout: float) -> socket.socket:
        self.calls.append(address)
        if address[0] != "127.0.0.1":
            raise ConnectionRefusedError(f"test spy: no traffic to {address[0]}")
        return socket.create_connection(address, timeout=timeout)


RESOLVER_TABLE: dict[str, Any] = {
    "public.example": [PUBLIC_V4],
    "localtest.me": ["127.0.0.1"],
    "loopback2.example": ["127.0.0.2"],
    "internal.example": ["10.0.0.5"],
    "mixed.example": [PUBLIC_V4, "10.0.0.1"],
    "mixed-late.example": [PUBLIC_V4, PUBLIC_V4, "192.168.0.7"],
    "mixed6.example": [PUBLIC_V6, "::1"],
    "metadata.example": ["169.254.169.254"],
    "metadata6.example": ["fd00:ec2::254"],
    "mapped.example": ["::ffff:127.0.0.1"],
    "ula.example": ["fd00::1"],
    "zone.example": ["fe80::1%eth0"],
    "shared.example": ["100.64.0.1"],
    "multicast.example": ["224.0.0.251"],
    "zero.example": ["0.0.0.0"],
    "sitelocal.example": ["fec0::1"],
    "nat64.example": ["64:ff9b::a9fe:a9fe"],
    "sixtofour.example": ["2002:0a00:0001::1"],
    "benchmark.example": ["198.18.0.1"],
    "xn--bcher-kva.example": ["172.16.5.5"],  # bücher.example
    # test-server names (the test server's 127.0.0.1 is allow-listed where it is used)
    "server.example": ["127.0.0.1"],
    "rebind.example": [["127.0.0.1"], ["10.0.0.1"], ["127.0.0.2"]],
    "tls.example": ["127.0.0.1"],
    "other.example": ["127.0.0.1"],
}


# --------------------------------------------------------------------------- test server


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    requests_seen: list[tuple[str, str | None]]


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    FILE = bytes(range(256)) * 64  # 16 KiB

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        if "Content_Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.server.requests_seen.append((self.path, self.headers.get("Host")))
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        path = parts.path
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._route(path, query)

    def _route(self, path: str, query: dict[str, list[str]]) -> None:
        if path == "/file.bin":
            self._send(
                200,
                self.FILE,
                Content_Type="application/octet-stream",
                ETag='"v1"',
                Last_Modified="Wed, 01 Jan 2025 00:00:00 GMT",
            )
        elif path == "/host":
            self._send(200, (self.headers.get("Host") or "").encode())
        elif path == "/accept-encoding":
            self._send(200, (self.headers.get("Accept-Encoding") or "").encode())
        elif path == "/gzip":  # a compressed body sent although identity was asked for
            self._send(200, gzip.compress(b"\0" * 1_000_000), Content_Encoding="gzip")
        elif path.startswith("/bytes/"):
            self._send(200, b"x" * int(path.rsplit("/", 1)[1]))
        elif path == "/redirect":
            self._send(302, Location=query["to"][0])
        elif path.startswith("/chain/"):
            left = int(path.rsplit("/", 1)[1])
            if left == 0:
                self._send(200, b"end of chain")
            else:
                self._send(302, Location=f"/chain/{left - 1}")
        elif path == "/loop":
            self._send(301, Location="/loop")
        elif path.startswith("/status/"):
            self._send(int(path.rsplit("/", 1)[1]), b"internal details must not leak")
        elif path == "/stream":  # no Content-Length: 64 KiB chunks until the client goes away
            self.send_response(200)
            self.end_headers()
            for _ in range(10_000):
                self.wfile.write(b"z" * 65536)
        elif path == "/declared-huge":
            self.send_response(200)
            self.send_header("Content-Length", str(10**12))
            self.end_headers()
            self.wfile.write(b"z" * 1000)
        elif path == "/short":  # promises 100 bytes, sends 10
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b"0123456789")
        elif path == "/trickle":  # headers at once, then one byte every 50 ms, forever
            self.send_response(200)
            self.end_headers()
            for _ in range(2000):
                self.wfile.write(b".")
                self.wfile.flush()
                time.sleep(0.05)
        elif path == "/trickle-headers":  # the status line and headers one byte at a time
            head = b"HTTP/1.0 200 OK\r\n" + b"X-Padding: " + b"a" * 5000 + b"\r\n\r\nbody"
            for byte in head:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.02)
        elif path == "/stall":  # nothing at all for a long time
            time.sleep(5)
            self._send(200, b"late")
        else:
            self._send(404)


@pytest.fixture(scope="module")
def server() -> Iterator[_Server]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.requests_seen = []
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _port(srv: http.server.HTTPServer) -> int:
    return int(srv.server_address[1])


@pytest.fixture
def resolver() -> FakeResolver:
    return FakeResolver(RESOLVER_TABLE)


@pytest.fixture
def spy() -> SpyConnector:
    return SpyConnector()


def default_fetcher(resolver: FakeResolver, spy: SpyConnector, **options: Any) -> Fetcher:
    """The production policy (no allow-list), with the fake resolver and the spy."""
    options.setdefault("per_host_interval", 0)
    return Fetcher(resolver=resolver, connector=spy, **options)


def server_fetcher(
    srv: http.server.HTTPServer, resolver: FakeResolver, spy: SpyConnector, **options: Any
) -> Fetcher:
    """Like production, except that the test server's own 127.0.0.1 counts as public."""
    options.setdefault("per_host_interval", 0)
    options.setdefault("allowed_ports", {80, 443, 8080, 8443, _port(srv)})
    return Fetcher(
        resolver=resolver,
        connector=spy,
        extra_allowed_networks=["127.0.0.1/32"],
        **options,
    )


# --------------------------------------------------------------------------- the corpus

# Internal addresses, spelled every way we know. All must end in blocked_address.
BLOCKED_URLS = [
    # loopback, IPv4 and its encodings
    "http://127.0.0.1/",
    "http://127.0.0.1:8080/admin",
    "https://127.0.0.1/",
    "http://127.1/",
    "http://127.0.1/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0x7F000001/",
    "http://0x7f.1/",
    "http://0x7f.0.0.1/",
    "http://0177.0.0.1/",
    "http://0177.1/",
    "http://017700000001/",
    "http://127.000.000.001/",
    "http://127.0.0.1./",
    "http://%31%32%37.0.0.1/",
    "http://%31%32%37%2e%30%2e%30%2e%31/",
    "http://\uff11\uff12\uff17\uff0e\uff10\uff0e\uff10\uff0e\uff11/",  # full-width digits
    "http://127\u30020\u30020\u30021/",  # ideographic full stops
    "http://127.255.255.254/",
    # unspecified
    "http://0/",
    "http://0.0.0.0/",
    "http://0x0/",
    "http://0.0.0.0:8443/",
    # local names (never resolved)
    "http://localhost/",
    "http://LOCALHOST/",
    "http://localhost./",
    "http://LocalHost:8080/",
    "http://api.localhost/",
    # private, shared, link-local, metadata
    "http://10.0.0.1/",
    "http://10.255.255.255/",
    "http://012.0.0.1/",
    "http://167772161/",
    "http://172.16.0.1/",
    "http://172.31.255.254/",
    "http://0xac.16.0.1/",
    "http://192.168.0.1/",
    "http://192.168.1.1:8443/",
    "http://3232235777/",
    "http://100.64.0.1/",
    "http://100.127.255.254/",
    "http://169.254.169.254/",
    "http://169.254.169.254/latest/meta-data/iam/",
    "http://0xa9fea9fe/",
    "http://0251.0376.0251.0376/",
    "http://169.254.0.1/",
    # multicast, broadcast, reserved, benchmarking, documentation
    "http://224.0.0.1/",
    "http://239.255.255.250/",
    "http://255.255.255.255/",
    "http://240.0.0.1/",
    "http://198.18.0.1/",
    "http://198.19.255.254/",
    "http://192.0.0.1/",
    "http://192.0.2.1/",
    # a public address in a non-standard spelling is refused too
    "http://0x5db8d822/",
    "http://1572395042/",
    # IPv6
    "http://[::1]/",
    "http://[0:0:0:0:0:0:0:1]/",
    "http://[::]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[0:0:0:0:0:ffff:127.0.0.1]/",
    "http://[::ffff:10.0.0.1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[::ffff:93.184.216.34]/",
    "http://[::127.0.0.1]/",
    "http://[fe80::1]/",
    "http://[fe80::1%25eth0]/",
    "http://[fe80::1%eth0]/",
    "http://[fc00::1]/",
    "http://[fd00:ec2::254]/",
    "http://[fd12:3456:789a::1]/",
    "http://[fec0::1]/",
    "http://[ff02::1]/",
    "http://[64:ff9b::7f00:1]/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://[2002:7f00:1::]/",
    "http://[2002:c0a8:101::1]/",
    "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
    "http://[100::1]/",
    "http://[2001:db8::1]/",
    "http://[::1]:8080/",
    # names that resolve (through the fake resolver) to internal addresses
    "http://localtest.me/",
    "http://loopback2.example/",
    "http://internal.example/",
    "http://mixed.example/",
    "http://mixed-late.example/",
    "http://mixed6.example/",
    "http://metadata.example/",
    "http://metadata6.example/",
    "http://mapped.example/",
    "http://ula.example/",
    "http://zone.example/",
    "http://shared.example/",
    "http://multicast.example/",
    "http://zero.example/",
    "http://sitelocal.example/",
    "http://nat64.example/",
    "http://sixtofour.example/",
    "http://benchmark.example/",
    "http://LOCALTEST.ME./",
    "http://b\u00fccher.example/",  # IDNA name resolving to 172.16.5.5
    "http://b%C3%BCcher.example/",  # the same, percent-encoded
]

# Userinfo tricks and malformed hosts: refused as bad URLs before anything else.
BAD_URLS = [
    "http://example.com@127.0.0.1/",
    "http://user:pw@10.0.0.1/",
    "http://public.example@localtest.me/",
    "http://127.0.0.1%2f@public.example/",
    "http://public.example\\@127.0.0.1/",
    "http://127.0.0.1 /",
    "http://127.0.0.1\tx/",
    "http://[::1/",
    "http://[::1]x/",
    "http://::1/",
    "http://1.2.3.4.5/",
    "http://256.0.0.1/",
    "http://0x100000000/",
    "http://09.0.0.1/",
    "http://exa mple.com/",
    "http:///path",
    "http://%zz/",
    "http://public.example:99999/",
    "http://public.example:8o/",
]


def test_the_corpus_is_big_enough() -> None:
    assert len(BLOCKED_URLS) + len(BAD_URLS) >= 60
    assert len(set(BLOCKED_URLS)) == len(BLOCKED_URLS)


@pytest.mark.parametrize("url", BLOCKED_URLS)
def test_internal_addresses_are_refused(
    url: str, resolver: FakeResolver, spy: SpyConnector
) -> None:
    fetcher = default_fetcher(resolver, spy)
    sink = io.BytesIO()
    with pytest.raises(FetchError) as caught:
        fetcher.fetch(url, sink)
    assert caught.value.code == "blocked_address", caught.value
    assert spy.calls == []
    assert sink.getvalue() == b""
    # The message is generic: it never echoes a resolved address.
    for address in ("10.0.0", "169.254", "127.0.0", "::1", "fd00", "192.168"):
        if address not in url:
            assert address not in caught.value.message


@pytest.mark.parametrize("url", BAD_URLS)
def test_malformed_and_userinfo_urls_are_refused(
    url: str, resolver: FakeResolver, spy: SpyConnector
) -> None:
    with pytest.raises(FetchError) as caught:
        default_fetcher(resolver, spy).fetch(url, io.BytesIO())
    assert caught.value.code == "bad_url", caught.value
    assert spy.calls == []
    assert resolver.calls == []


def test_literal_addresses_are_never_resolved(resolver: FakeResolver, spy: SpyConnector) -> None:
    fetcher = default_fetcher(resolver, spy)
    literals = BLOCKED_URLS[: BLOCKED_URLS.index("http://localtest.me/")]
    assert len(literals) > 60
    for url in literals:
        with pytest.raises(FetchError):
            fetcher.fetch(url, io.BytesIO())
    assert resolver.calls == []


def test_every_resolved_address_is_checked_and_resolution_happens_once(
    resolver: FakeResolver, spy: SpyConnector
) -> None:
    with pytest.raises(FetchError) as caught:
        default_fetcher(resolver, spy).fetch("http://mixed-late.example/", io.BytesIO())
    assert caught.value.code == "blocked_address"
    assert resolver.calls == ["mixed-late.example"]
    assert spy.calls == []


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://public.example/x",
        "gopher://public.example:70/_x",
        "dict://public.example:2628/",
        "ldap://public.example/",
        "javascript:alert(1)",
        "data:text/plain,hello",
        "//public.example/x",
        "public.example/x",
        "jar:http://public.example/x!/",
    ],
)
def test_only_http_and_https(url: str, resolver: FakeResolver, spy: SpyConnector) -> None:
    with pytest.raises(FetchError) as caught:
        default_fetcher(resolver, spy).fetch(url, io.BytesIO())
    assert caught.value.code == "bad_scheme"
    assert spy.calls == [] and resolver.calls == []


@pytest.mark.parametrize("port", [22, 25, 6379, 11211, 9200, 1])
def test_ports_outside_the_allow_list(port: int, resolver: FakeResolver, spy: SpyConnector) -> None:
    with pytest.raises(FetchError) as caught:
        default_fetcher(resolver, spy).fetch(f"http://public.example:{port}/", io.BytesIO())
    assert caught.value.code == "bad_port"
    assert spy.calls == [] and resolver.calls == []


def test_allowed_ports_are_configurable(resolver: FakeResolver, spy: SpyConnector) -> None:
    fetcher = default_fetcher(resolver, spy, allowed_ports={8000})
    assert fetcher.check_url("http://public.example:8000/a") == "http://public.example:8000/a"
    with pytest.raises(FetchError, match="bad_port"):
        fetcher.check_url("http://public.example/")


def test_unknown_names_are_connection_errors(resolver: FakeResolver, spy: SpyConnector) -> None:
    with pytest.raises(FetchError) as caught:
        default_fetcher(resolver, spy).fetch("http://nowhere.example/", io.BytesIO())
    assert caught.value.code == "connection_error"
    assert spy.calls == []


@pytest.mark.parametrize(
    ("address", "blocked"),
    [
        ("8.8.8.8", False),
        (PUBLIC_V6, False),
        ("2002:5db8:d822::1", False),  # 6to4 of a public address
        ("64:ff9b::5db8:d822", False),  # NAT64 of a public address
        ("1.1.1.1", False),
        ("100.63.255.255", False),
        ("100.128.0.0", False),
        ("172.15.255.255", False),
        ("172.32.0.0", False),
        ("127.0.0.1", True),
        ("::ffff:8.8.8.8", True),  # mapped forms are refused whatever they embed
        ("not an address", True),
    ],
)
def test_blocked_reason_table(address: str, blocked: bool) -> None:
    assert (blocked_reason(address) is not None) is blocked


def test_allow_private_is_explicit_and_still_refuses_non_peers() -> None:
    assert blocked_reason("10.0.0.1", allow_private=True) is None
    assert blocked_reason("127.0.0.1", allow_private=True) is None
    for address in ("0.0.0.0", "224.0.0.1", "255.255.255.255", "::", "ff02::1"):
        assert blocked_reason(address, allow_private=True) is not None
    assert Fetcher().allow_private is False


def test_fetch_error_codes_are_documented() -> None:
    assert {
        "blocked_address",
        "bad_scheme",
        "bad_port",
        "too_large",
        "timeout",
        "too_many_redirects",
        "http_error",
        "connection_error",
    } <= FETCH_ERROR_CODES
    assert issubclass(FetchError, OpenCatalogError)


# --------------------------------------------------------------------------- the test server


def test_fetches_a_file(server: _Server, resolver: FakeResolver, spy: SpyConnector) -> None:
    url = f"http://127.0.0.1:{_port(server)}/file.bin"
    sink = io.BytesIO()
    result = server_fetcher(server, resolver, spy).fetch(url, sink)
    assert sink.getvalue() == _Handler.FILE
    assert result.size == len(_Handler.FILE)
    assert result.status == 200
    assert result.final_url == url
    assert result.content_type == "application/octet-stream"
    assert result.etag == '"v1"'
    assert result.last_modified == "Wed, 01 Jan 2025 00:00:00 GMT"
    assert result.redirects == ()
    assert result.sha256 == hashlib.sha256(_Handler.FILE).hexdigest()
    assert spy.calls == [("127.0.0.1", _port(server))]


def test_connects_to_the_pinned_address_with_the_name_in_host(
    server: _Server, resolver: FakeResolver, spy: SpyConnector
) -> None:
    port = _port(server)
    sink = io.BytesIO()
    server_fetcher(server, resolver, spy).fetch(f"http://server.example:{port}/host", sink)
    assert sink.getvalue() == f"server.example:{port}".encode()
    assert spy.calls == [("127.0.0.1", port)]


def test_dns_rebinding_cannot_swap_the_address(
    server: _Server, resolver: FakeResolver, spy: SpyConnector
) -> None:
    """The resolver answers the server first and an internal address afterwards (SS-03)."""
    port = _port(server)
    sink = io.BytesIO()
    result = server_fetcher(server, resolver, spy).fetch(f"http://rebind.example:{port}/host", sink)
    assert result.status == 200
    assert resolver.calls == ["rebind.example"]  # resolved once
    assert spy.calls == [("127.0.0.1", port)]  # connected to what was checked


def test_a_second_fetch_after_rebinding_is_refused(
    server: _Server, resolver: FakeResolver, spy: SpyConnector
) -> None:
    port = _port(server)
    fetcher = server_fetcher(server, resolver, spy)
    fetcher.fetch(f"http://rebind.example:{port}/host", io.BytesIO())
    with pytest.raises(FetchError, match="blocked_address"):
        fetcher.fetch(f"http://rebind.example:{port}/host", io.BytesIO())
    assert spy.calls == [("127.0.0.1", port)]


def _redirect_targets(port: int) -> list[tuple[str, str]]:
    return [
        (f"http://127.0.0.2:{port}/", "blocked_address"),
        ("http://10.0.0.1/", "blocked_address"),
        ("http://169.254.169.254/latest/meta-data/", "blocked_address"),
        (f"http://[::1]:{port}/", "blocked_address"),
        (f"http://[::ffff:127.0.0.2]:{port}/", "blocked_address"),
        (f"http://localhost:{port}/", "blocked_address"),
        (f"http://loopback2.example:{port}/", "blocked_address"),
        ("http://internal.example/", "blocked_address"),
        ("http://mixed.example/", "blocked_address"),
        (f"http://0x7f000002:{port}/", "blocked_address"),
        (f"http://2130706433:{port}/", "blocked_address"),  # 127.0.0.1 in a disguise
        ("//10.0.0.1/", "blocked_address"),
        ("http://[fd00:ec2::254]/", "blocked_address"),
        ("http://0.0.0.0/", "blocked_address"),
        ("file:///etc/passwd", "bad_scheme"),
        ("gopher://127.0.0.1:6379/_FLUSHALL", "bad_scheme"),
        ("http://public.example:22/", "bad_port"),
        ("http://user@public.example/", "bad_url"),
    ]


def test_redirects_to_internal_addresses_are_refused(
    server: _Server, resolver: FakeResolver, spy: SpyConnector
) -> None:
    port = _port(server)
    for target, code in _redirect_targets(port):
        spy.calls.clear()
        url = f"http://127.0.0.1:{port}/redirect?to={quote(target, safe='')}"
        sink = io.BytesIO()
        with pytest.raises(FetchError) as caught:
            server_fetcher(server, resolver, spy).fetch(url, sink)
        assert caught.value.code == code, (target, caught.value)
        assert spy.calls == [("127.0.0.1", port)], target  # the first hop only
        assert sink.getvalue() == b""


def test_redirects_are_followed_and_reported(
    server: _Server, resolver: FakeResolver, spy: SpyConnector
) -> None:
    port = _port(server)
    sink = io.BytesIO()
    result = server_fetcher(server, resolver, spy).fetch(
        f"http://server.example:{port}/chain/5", sink
    )
    assert sink.getvalue() == b"end of chain"
    assert len(result.redirects) == 5
    assert result.final_url == f"http://server.example:{port}/chain/0"
    assert len(spy.calls) == 6
    assert resolver.calls == ["server.example"] * 6  # once per hop


def test_too_many_redirects(server: _Server, resolver: FakeResolver, spy: SpyConnector) -> None:
    port = _port(server)
    fetcher = server_fetcher(server, resolver, spy)
    with pytest.raises(FetchError) as caught:
        fetcher.fetch(f"http://127.0.0.1:{port}/chain/6", io.BytesIO())
    assert caught.value.code == "too_many_redirects"
    assert len(spy.calls) == 6
    spy.calls.clear()
    with pytest.raises(FetchError) as caught:
        fetcher.fetch(f"http://127.0.0.1:{port}/loop", io.BytesIO())
    assert caught.value.code == "too_many_redirects"
    assert len(spy.calls) == 6
    with pytest.raises(FetchError, match="too_many_redirects"):
        server_fetcher(server, resolver, spy, max_redirects=0).fetch(
            f"http://127.0.0.1:{port}/chain/1", io.BytesIO()
        )


def test_size_cap_on_a_streamed_body(
    server: _Server, resolver: FakeResolver, spy: SpyConnector
) -> None:
    cap = 300_000
    sink = io.BytesIO()
    with pytest.raises(FetchError) as caught:
        server_fetcher(server, resolver, spy, max_bytes=cap).fetch(
            f"http://127.0.0.1:{_port(server)}/stream", sink
        )
    assert caught.value.code == "too_large"
    assert len(sink.getvalue()) <= cap


def test_size_cap_on_a_declared_length(
    server: _Server, resolver: FakeResolver, spy: SpyConnector
) -> None:
    sink = io.BytesIO()
    with pytest.raises(FetchError, match="too_large"):
        server_fetcher(server, resolver, spy, max_bytes=1000).fetch(
            f"http://127.0.0.1:{_port(server)}/declared-huge", sink
        )
    assert sink.getvalue() == b""


def test_a_body_of_exactly_the_cap_is_fine(
    server: _Server, resolver: FakeResolver, spy: SpyConnector
) -> None:
    fetcher = server_fetcher(server, resolver, spy, max_bytes=5000)
    sink = io.BytesIO()
    assert fetcher.fetch(f"http://127.0.0.1:{_port(server)}/bytes/5000", sink).size == 5000
    with pytest.raises(FetchError, match="too_large"):
        fetcher.fetch(f"http://127.0.0.1:{_port(server)}/bytes/5001", io.BytesIO())


@pytest.mark.parametrize("path", ["/trickle", "/trickle-headers", "/stall"])
def test_slow_servers_time_out_within_the_deadline(
    path: str, server: _Server, resolver: FakeResolver, spy: SpyConnector
) -> None:
    timeout = 1.0
    fetcher = server_fetcher(server, resolver, spy, timeout=timeout)
    started = time.monotonic()
    with pytest.raises(FetchError) as caught:
        fetcher.fetch(f"http://127.0.0.1:{_port(server)}{path}", io.BytesIO())
    elapsed = time.monotonic() - started
    assert caught.value.code == "timeout"
    assert elapsed < timeout + 1.0


def test_connect_timeout(resolver: FakeResolver) -> None:
    def slow_connector(address: tuple[str, int], timeout: float) -> socket.socket:
        raise TimeoutError("timed out")

    fetcher = Fetcher(
        resolver=resolver,
        connector=slow_connector,
        extra_allowed_networks=["127.0.0.1/32"],
        per_host_interval=0,
    )
    with pytest.raises(FetchError, match="timeout"):
        fetcher.fetch("http://server.example/", io.BytesIO())


def test_http_errors_do_not_leak_the_body(
    server: _Server, resolver: FakeResolver, spy: SpyConnector
) -> None:
    with pytest.raises(FetchError) as caught:
        server_fetcher(server, resolver, spy).fetch(
            f"http://127.0.0.1:{_port(server)}/status/500", io.BytesIO()
        )
    assert caught.value.code == "http_error"
    assert caught.value.status == 500
    assert "internal details" not in str(caught.value)


def test_a_short_body_is_a_connection_error(
    server: _Server, resolver: FakeResolver, spy: SpyConnector
) -> None:
    with pytest.raises(FetchError, match="connection_error"):
        server_fetcher(server, resolver, spy).fetch(
            f"http://127.0.0.1:{_port(server)}/short", io.BytesIO()
        )


def test_an_allow_list_entry_allows_only_itself(
    server: _Server, resolver: FakeResolver, spy: SpyConnector
) -> None:
    fetcher = server_fetcher(server, resolver, spy)
    with pytest.raises(FetchError, match="blocked_address"):
        fetcher.fetch(f"http://127.0.0.2:{_port(server)}/file.bin", io.BytesIO())
    assert spy.calls == []


def test_bodies_are_never_decompressed(
    server: _Server, resolver: FakeResolver, spy: SpyConnector
) -> None:
    """identity is requested; a gzip body sent anyway is stored as is and capped as received."""
    fetcher = server_fetcher(server, resolver, spy)
    sink = io.BytesIO()
    fetcher.fetch(f"http://127.0.0.1:{_port(server)}/accept-encoding", sink)
    assert sink.getvalue() == b"identity"
    sink = io.BytesIO()
    result = fetcher.fetch(f"http://127.0.0.1:{_port(server)}/gzip", sink)
    assert result.content_encoding == "gzip"
    assert sink.getvalue()[:2] == b"\x1f\x8b" and result.size < 10_000


def test_sink_errors_propagate_unchanged(
    server: _Server, resolver: FakeResolver, spy: SpyConnector
) -> None:
    class FullDisk(io.BytesIO):
        def write(self, data: Any) -> int:
            raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left") as caught:
        server_fetcher(server, resolver, spy).fetch(
            f"http://127.0.0.1:{_port(server)}/file.bin", FullDisk()
        )
    assert not isinstance(caught.value, FetchError)


# --------------------------------------------------------------------------- rate limiting


def test_rate_limiter_spaces_requests_per_host() -> None:
    now = [100.0]
    limiter = HostRateLimiter(1.0, clock=lambda: now[0])
    assert limiter.reserve("a.example") == 100.0
    assert limiter.reserve("A.EXAMPLE") == 101.0
    assert limiter.reserve("a.example") == 102.0
    assert limiter.reserve("b.example") == 100.0
    assert limiter.reserve("a.example", not_after=102.5) is None
    now[0] = 200.0
    assert limiter.reserve("a.example") == 200.0


def test_fetcher_waits_between_requests_to_one_host(
    server: _Server, resolver: FakeResolver, spy: SpyConnector
) -> None:
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)

    fetcher = server_fetcher(server, resolver, spy, per_host_interval=0.3, sleep=sleep)
    port = _port(server)
    started = time.monotonic()
    for _ in range(3):
        fetcher.fetch(f"http://server.example:{port}/bytes/10", io.BytesIO())
    elapsed = time.monotonic() - started
    assert len(slept) == 2 and all(0 < s <= 0.3 for s in slept)
    assert elapsed >= 0.55
    fetcher.fetch(f"http://localtest.me:{port}/bytes/10", io.BytesIO())  # another host
    assert len(slept) == 2


# --------------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[_Server, Path]]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=tls.example",
            "-addext",
            "subjectAltName=DNS:tls.example",
        ],
        check=True,
        capture_output=True,
    )
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.requests_seen = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    srv.socket = context.wrap_socket(srv.socket, server_side=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv, cert
    srv.shutdown()
    srv.server_close()


def test_tls_is_verified_by_default(
    tls_server: tuple[_Server, Path], resolver: FakeResolver, spy: SpyConnector
) -> None:
    srv, _cert = tls_server
    with pytest.raises(FetchError) as caught:
        server_fetcher(srv, resolver, spy).fetch(
            f"https://tls.example:{_port(srv)}/file.bin", io.BytesIO()
        )
    assert caught.value.code == "connection_error"
    assert "certificate" in caught.value.message


def test_tls_uses_the_name_for_sni_and_certificate_checks(
    tls_server: tuple[_Server, Path], resolver: FakeResolver, spy: SpyConnector
) -> None:
    srv, cert = tls_server
    context = ssl.create_default_context(cafile=str(cert))
    fetcher = server_fetcher(srv, resolver, spy, ssl_context=context)
    sink = io.BytesIO()
    result = fetcher.fetch(f"https://tls.example:{_port(srv)}/host", sink)
    assert sink.getvalue() == f"tls.example:{_port(srv)}".encode()
    assert result.final_url.startswith("https://tls.example:")
    assert spy.calls == [("127.0.0.1", _port(srv))]  # pinned IP, name only in SNI and Host
    with pytest.raises(FetchError, match="connection_error"):  # certificate for another name
        fetcher.fetch(f"https://other.example:{_port(srv)}/host", io.BytesIO())


def test_https_to_http_downgrade_is_refused(
    tls_server: tuple[_Server, Path],
    server: _Server,
    resolver: FakeResolver,
    spy: SpyConnector,
) -> None:
    srv, cert = tls_server
    context = ssl.create_default_context(cafile=str(cert))
    target = f"http://127.0.0.1:{_port(server)}/file.bin"
    fetcher = server_fetcher(
        srv, resolver, spy, ssl_context=context, allowed_ports={_port(srv), _port(server)}
    )
    with pytest.raises(FetchError, match="bad_scheme"):
        fetcher.fetch(
            f"https://tls.example:{_port(srv)}/redirect?to={quote(target, safe='')}",
            io.BytesIO(),
        )
    assert spy.calls == [("127.0.0.1", _port(srv))]


def test_a_context_that_does_not_verify_is_rejected() -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with pytest.raises(ConfigurationError):
        Fetcher(ssl_context=context)


def test_ipaddress_literals_in_results_are_canonical(
    resolver: FakeResolver, spy: SpyConnector
) -> None:
    fetcher = default_fetcher(resolver, spy)
    assert fetcher.check_url("HTTP://Public.Example/a b?q=ü") == (
        "http://public.example/a%20b?q=%C3%BC"
    )
    assert fetcher.check_url(f"http://[{PUBLIC_V6.upper()}]/") == (
        f"http://[{ipaddress.IPv6Address(PUBLIC_V6)}]/"
    )
