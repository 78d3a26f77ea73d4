"""A safe HTTP(S) fetcher for external resource URLs (server-side request forgery defences).

A catalog fetches URLs that its users typed, so every fetch is treated as hostile:

1. **URL form.** Only ``http`` and ``https``; no userinfo (``http://a@b/``); no backslashes,
   control characters, and no spaces in the host; the port must be in an allow-list. The host is
   canonicalised the way browsers do it (WHATWG URL): percent-decoding, IDNA (so full-width
   digits become ASCII), lower case, one trailing dot dropped. A host that "ends in a number"
   is an IPv4 literal and is parsed with the browsers' rules, so ``2130706433``, ``0x7f.1``,
   ``0177.0.0.1`` and ``127.1`` are all 127.0.0.1; any IPv4 literal not spelled as a plain
   dotted quad is refused outright, and so is an IPv6 zone id (``[fe80::1%25eth0]``).
2. **Addresses.** A name is resolved ONCE per hop with the injectable ``resolver`` and EVERY
   address it gives is checked by :func:`blocked_reason`; if any is not a public unicast
   address the fetch is refused (``blocked_address``) before any connection is made.
3. **Pinning.** The connection goes to a validated address (the ``connector`` gets an IP,
   never a name), with the original name in the ``Host`` header and, for HTTPS, as the TLS
   server name for SNI and certificate checking. Certificate verification is always on. No
   second resolution happens, so DNS rebinding cannot swap the address after the check.
4. **Redirects** are followed by hand (at most ``max_redirects``); each hop goes through steps
   1-3 again. An ``https`` to ``http`` downgrade is refused.
5. **Bounds.** The body is streamed to the caller's sink in chunks; more than ``max_bytes``
   stops the fetch with ``too_large`` (at most ``max_bytes`` reach the sink). The request asks
   for ``identity`` encoding and the cap counts the bytes as received. A total deadline covers
   connecting, sending, waiting and reading, enforced by per-read socket timeouts plus a
   watchdog that shuts the socket down at the deadline (so a server trickling one byte a
   second cannot hold a fetch open). A per-host minimum interval between requests limits
   amplification (in-process, thread-safe, shareable between fetchers).

Error messages are generic: they never contain a response body, a banner or a resolved
address (those go to the log), so they are safe to show in a pipeline status.

Not covered here: an egress proxy, and a deadline on name resolution itself (the system
resolver has its own timeouts).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.client
import ipaddress
import logging
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any, BinaryIO, Protocol
from urllib.parse import quote, unquote, urljoin, urlsplit

from attrs import frozen

from opencatalog.errors import ConfigurationError, OpenCatalogError

__all__ = [
    "DEFAULT_ALLOWED_PORTS",
    "FETCH_ERROR_CODES",
    "Connector",
    "FetchError",
    "FetchResult",
    "Fetcher",
    "HostRateLimiter",
    "ProbeResult",
    "Resolver",
    "blocked_reason",
]

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_ALLOWED_PORTS: frozenset[int] = frozenset({80, 443, 8080, 8443})

#: Every ``FetchError.code``: short, stable, machine-readable.
FETCH_ERROR_CODES: frozenset[str] = frozenset(
    {
        "bad_url",  # malformed URL, userinfo, characters a URL may not hold
        "bad_scheme",  # not http/https, or an https -> http downgrade
        "bad_port",  # port outside the allow-list
        "blocked_address",  # the host is, or resolves to, a non-public address
        "too_large",  # the body is longer than max_bytes
        "timeout",  # the total deadline (or the connect timeout) passed
        "too_many_redirects",  # more than max_redirects redirects
        "http_error",  # a status other than 2xx or a followable redirect
        "connection_error",  # resolution, connection, TLS or protocol failure
    }
)

_CHUNK = 64 * 1024
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_USER_AGENT = "opencatalog-fetch/0.1"
_MAX_URL_LENGTH = 8192
_PROBE_READ = 1024


class FetchError(OpenCatalogError):
    """A fetch that was refused or failed.

    ``code`` is one of :data:`FETCH_ERROR_CODES`; ``message`` is short, generic and safe to
    show to the user who registered the URL; ``status`` is the HTTP status for ``http_error``.
    """

    def __init__(self, code: str, message: str, *, status: int | None = None) -> None:
        if code not in FETCH_ERROR_CODES:  # pragma: no cover - a programming error
            raise ValueError(f"unknown fetch error code {code!r}")
        super().__init__(message)
        self.code = code
        self.status = status

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@frozen(kw_only=True)
class FetchResult:
    """What a successful fetch delivered to the sink.

    ``final_url`` is the URL of the last hop; ``redirects`` the URLs redirected to, in order
    (so ``len(redirects)`` is the number of redirects followed); ``size`` the number of bytes
    written to the sink and ``sha256`` their hex digest. ``content_type``, ``etag``,
    ``last_modified`` and ``content_encoding`` are the final response's headers, verbatim.
    """

    final_url: str
    status: int
    content_type: str | None
    size: int
    etag: str | None
    last_modified: str | None
    redirects: tuple[str, ...] = ()
    sha256: str = ""
    content_encoding: str | None = None


@frozen(kw_only=True)
class ProbeResult:
    """What a link check (:meth:`Fetcher.probe`) found: the final URL and 2xx status, the
    method that got it (``HEAD``, or ``GET`` with a one-byte range when HEAD was refused),
    and the final response's type, declared length and validators."""

    final_url: str
    status: int
    method: str
    content_type: str | None
    content_length: int | None
    etag: str | None
    last_modified: str | None
    redirects: tuple[str, ...] = ()


def _content_length(resp: http.client.HTTPResponse) -> int | None:
    value = resp.getheader("Content-Length")
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


class Resolver(Protocol):
    """Name resolution with :func:`socket.getaddrinfo`'s signature and result shape."""

    def __call__(
        self, host: str, port: int | None, family: int = ..., type: int = ...
    ) -> Sequence[tuple[Any, ...]]: ...


#: Opens a TCP connection to ``(ip, port)`` within ``timeout`` seconds (the shape of
#: :func:`socket.create_connection`). It only ever receives validated IP addresses.
Connector = Callable[[tuple[str, int], float], socket.socket]


@functools.lru_cache(maxsize=1)
def _default_ssl_context() -> ssl.SSLContext:
    """The system's trust store with verification on; built once (loading CAs is slow)."""
    return ssl.create_default_context()


def _default_connector(address: tuple[str, int], timeout: float) -> socket.socket:
    return socket.create_connection(address, timeout=timeout)


# --------------------------------------------------------------------------- address policy


def _nets(*rows: tuple[str, str]) -> tuple[tuple[IPNetwork, str], ...]:
    return tuple((ipaddress.ip_network(net), reason) for net, reason in rows)


# Checked in order: the first match gives the reason. Python's ``is_global`` is checked as
# well, but its tables differ between patch releases and miss several classes (multicast,
# site-local, 6to4 and NAT64 embeddings), so this table is the authority.
_BLOCKED_V4 = _nets(
    ("169.254.169.254/32", "cloud metadata address"),
    ("255.255.255.255/32", "broadcast address"),
    ("0.0.0.0/8", "'this network' / unspecified address"),
    ("10.0.0.0/8", "private address"),
    ("100.64.0.0/10", "shared address space (carrier-grade NAT)"),
    ("127.0.0.0/8", "loopback address"),
    ("169.254.0.0/16", "link-local address"),
    ("172.16.0.0/12", "private address"),
    ("192.0.0.0/24", "IETF protocol assignment"),
    ("192.0.2.0/24", "documentation address"),
    ("192.88.99.0/24", "6to4 relay anycast address"),
    ("192.168.0.0/16", "private address"),
    ("198.18.0.0/15", "benchmarking address"),
    ("198.51.100.0/24", "documentation address"),
    ("203.0.113.0/24", "documentation address"),
    ("224.0.0.0/4", "multicast address"),
    ("240.0.0.0/4", "reserved address"),
)
_BLOCKED_V6 = _nets(
    ("::/128", "unspecified address"),
    ("::1/128", "loopback address"),
    ("fd00:ec2::254/128", "cloud metadata address"),
    ("::/96", "IPv4-compatible IPv6 address"),
    ("::ffff:0:0/96", "IPv4-mapped IPv6 address"),
    ("64:ff9b:1::/48", "local-use NAT64 address"),
    ("100::/64", "discard-only address"),
    ("2001::/32", "Teredo address"),
    ("2001:db8::/32", "documentation address"),
    ("3fff::/20", "documentation address"),
    ("5f00::/16", "segment routing address"),
    ("fc00::/7", "unique-local address"),
    ("fe80::/10", "link-local address"),
    ("fec0::/10", "site-local address"),
    ("ff00::/8", "multicast address"),
)
# Still refused with allow_private=True: nothing that can be a TCP peer.
_NEVER_V4 = _nets(
    ("0.0.0.0/8", "unspecified address"),
    ("224.0.0.0/4", "multicast address"),
    ("255.255.255.255/32", "broadcast address"),
)
_NEVER_V6 = _nets(("::/128", "unspecified address"), ("ff00::/8", "multicast address"))
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _embedded_v4(ip: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address an IPv6 transition form carries, with the form's name."""
    if ip.ipv4_mapped is not None:
        return "IPv4-mapped", ip.ipv4_mapped
    if ip in _NAT64:
        return "NAT64", ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return "6to4", ip.sixtofour
    if ip.teredo is not None:
        return "Teredo", ip.teredo[1]
    if int(ip) >> 32 == 0 and int(ip) > 1:
        return "IPv4-compatible", ipaddress.IPv4Address(int(ip))
    return None


def blocked_reason(address: IPAddress | str, *, allow_private: bool = False) -> str | None:
    """Why a fetch may not connect to ``address``, or ``None`` if it is a public unicast address.

    Refused: loopback, private (10/8, 172.16/12, 192.168/16), shared (100.64/10), link-local
    (including the 169.254.169.254 metadata address), multicast, broadcast, reserved,
    documentation and benchmarking ranges, unspecified (0.0.0.0/8, ``::``), IPv6 unique-local
    (fc00::/7, including fd00:ec2::254), site-local (fec0::/10), link-local (fe80::/10), every
    IPv4-mapped or IPv4-compatible IPv6 form, Teredo, and 6to4 / NAT64 addresses whose
    embedded IPv4 address is refused; and anything else Python does not call global.

    With ``allow_private=True`` only addresses that can never be a TCP peer (unspecified,
    multicast, broadcast) are refused. An unparsable string is refused.
    """
    try:
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
        return "IPv6 address with a zone identifier"
    is_v4 = isinstance(ip, ipaddress.IPv4Address)
    if allow_private:
        for net, reason in _NEVER_V4 if is_v4 else _NEVER_V6:
            if ip in net:
                return reason
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_v4(ip)
        if embedded is not None:
            form, inner = embedded
            inner_reason = blocked_reason(inner)
            if inner_reason is not None:
                return f"{form} form of a {inner_reason}"
    for net, reason in _BLOCKED_V4 if is_v4 else _BLOCKED_V6:
        if ip in net:
            return reason
    if not ip.is_global:
        return "not a global address"
    return None


# --------------------------------------------------------------------------- URL parsing


_BAD_URL_CHARS = re.compile(r"[\x00-\x1f\x7f\\]")
_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")


@frozen
class _Target:
    url: str  # the URL as requested (normalised host, no fragment)
    scheme: str
    host: str  # ASCII name, or the IP's canonical text (no brackets)
    ip: IPAddress | None  # set when the host is an IP literal
    port: int
    request_target: str  # path and query, percent-encoded ASCII

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def _ipv4_number(part: str) -> int | None:
    """One part of an IPv4 literal by the WHATWG rules: 0x.. hex, 0.. octal, else decimal."""
    if not part:
        return None
    digits, base = part, 10
    if part[:2] in ("0x", "0X"):
        digits, base = part[2:], 16
    elif len(part) > 1 and part[0] == "0":
        digits, base = part[1:], 8
    if not digits:
        return 0
    allowed = {10: "0123456789", 16: "0123456789abcdefABCDEF", 8: "01234567"}[base]
    if any(char not in allowed for char in digits):
        return None
    return int(digits, base)


def _ends_in_number(host: str) -> bool:
    parts = host.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()
    last = parts[-1]
    return bool(last) and ((last.isascii() and last.isdigit()) or _ipv4_number(last) is not None)


def _parse_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """An IPv4 literal in any notation browsers accept (``127.1``, ``0x7f.1``, ``2130706433``)."""
    parts = host.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()
    if len(parts) > 4:
        return None
    numbers = [_ipv4_number(part) for part in parts]
    if any(number is None for number in numbers):
        return None
    values = [number for number in numbers if number is not None]
    if any(value > 255 for value in values[:-1]) or values[-1] >= 256 ** (5 - len(values)):
        return None
    total = values[-1] + sum(value * 256 ** (3 - i) for i, value in enumerate(values[:-1]))
    return ipaddress.IPv4Address(total)


def _refuse_literal(ip: IPAddress, allow: Callable[[IPAddress], str | None]) -> None:
    reason = allow(ip)
    if reason is not None:
        logger.info("fetch refused: literal address %s is a %s", ip, reason)
        raise FetchError("blocked_address", f"the URL points at a {reason}")


def _parse_url(
    url: str, *, allowed_ports: Collection[int], check: Callable[[IPAddress], str | None]
) -> _Target:
    """Parse, canonicalise and check a URL (no network). Raises :class:`FetchError`."""
    if not isinstance(url, str) or not url or len(url) > _MAX_URL_LENGTH:
        raise FetchError("bad_url", "the URL is empty or too long")
    url = url.strip(" ")
    if _BAD_URL_CHARS.search(url):
        raise FetchError("bad_url", "the URL contains control characters or '\\'")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise FetchError("bad_url", "the URL cannot be parsed") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchError("bad_scheme", "only http and https URLs can be fetched")
    netloc = parts.netloc
    if "@" in netloc:
        raise FetchError("bad_url", "URLs with a user name or password are not fetched")
    if not netloc:
        raise FetchError("bad_url", "the URL has no host")
    if " " in netloc:
        raise FetchError("bad_url", "the host contains a space")

    # Split host and port by hand: the bracket rules are simple and explicit this way.
    if netloc.startswith("["):
        end = netloc.find("]")
        if end < 0:
            raise FetchError("bad_url", "unbalanced '[' in the host")
        raw_host, rest = netloc[1:end], netloc[end + 1 :]
        if rest and not rest.startswith(":"):
            raise FetchError("bad_url", "unexpected text after the IPv6 address")
        port_text = rest[1:]
        bracketed = True
    else:
        raw_host, _sep, port_text = netloc.partition(":")
        if ":" in port_text:
            raise FetchError("bad_url", "an IPv6 address must be written in brackets")
        bracketed = False
    if not port_text:
        port = 443 if scheme == "https" else 80
    elif port_text.isascii() and port_text.isdigit() and len(port_text) <= 5:
        port = int(port_text)
    else:
        raise FetchError("bad_url", "the port is not a number")
    if not 0 < port < 65536:
        raise FetchError("bad_url", "the port is out of range")

    ip: IPAddress | None
    if bracketed:
        if "%" in raw_host:
            logger.info("fetch refused: IPv6 zone identifier in %r", raw_host)
            raise FetchError("blocked_address", "IPv6 zone identifiers are not allowed")
        try:
            ip = ipaddress.IPv6Address(raw_host)
        except ValueError as exc:
            raise FetchError("bad_url", "the bracketed host is not an IPv6 address") from exc
        _refuse_literal(ip, check)
        host = str(ip)
    else:
        host, ip = _canonical_host(raw_host, check)
    # The port is checked after the host, so an internal address is reported as such.
    if port not in allowed_ports:
        raise FetchError("bad_port", f"port {port} is not allowed")

    # Re-encode only what must be encoded (non-ASCII); existing escapes are kept as they are.
    path = quote(parts.path, safe="/:@!$&'()*+,;=-._~%") or "/"
    if not path.startswith("/"):
        path = "/" + path
    query = quote(parts.query, safe="/:@!$&'()*+,;=-._~?%")
    request_target = f"{path}?{query}" if query else path
    display_host = f"[{host}]" if ip is not None and ip.version == 6 else host
    default_port = 443 if scheme == "https" else 80
    authority = display_host if port == default_port else f"{display_host}:{port}"
    return _Target(
        url=f"{scheme}://{authority}{request_target}",
        scheme=scheme,
        host=host,
        ip=ip,
        port=port,
        request_target=request_target,
    )


def _canonical_host(
    raw_host: str, check: Callable[[IPAddress], str | None]
) -> tuple[str, IPAddress | None]:
    """Canonicalise an unbracketed host as browsers do and refuse the dangerous ones."""
    host = raw_host
    obfuscated = False
    if "%" in host:
        try:
            host = unquote(host, errors="strict")
        except UnicodeDecodeError as exc:
            raise FetchError("bad_url", "the host has invalid percent-encoding") from exc
        obfuscated = True
        if _BAD_URL_CHARS.search(host) or any(char in host for char in "% @:/?#[]"):
            raise FetchError("bad_url", "the host has characters a host may not hold")
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise FetchError("bad_url", "the host is not a valid internationalised name") from exc
    host = host.lower()
    if not host:
        raise FetchError("bad_url", "the URL has no host")

    if _ends_in_number(host):
        ip4 = _parse_ipv4(host)
        if ip4 is None:
            raise FetchError("bad_url", "the host is an invalid IPv4 address")
        _refuse_literal(ip4, check)
        if obfuscated or host != str(ip4):
            logger.info("fetch refused: non-standard IPv4 literal %r", raw_host)
            raise FetchError(
                "blocked_address", "IP address literals must be written as a plain dotted quad"
            )
        return host, ip4

    if host.endswith("."):
        host = host[:-1]
    labels = host.split(".")
    if len(host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise FetchError("bad_url", "the host is not a valid host name")
    if host in _LOCAL_NAMES or host.endswith(".localhost"):
        logger.info("fetch refused: local host name %r", host)
        raise FetchError("blocked_address", "the URL points at this machine")
    return host, None


# --------------------------------------------------------------------------- rate limiting


class HostRateLimiter:
    """A minimum interval between requests to one host, in-process and thread-safe.

    :meth:`reserve` books the next free slot for a host and returns when it starts; callers
    sleep until then. Bookings are atomic, so concurrent fetchers to one host are spaced by
    ``interval`` seconds. Share one limiter between fetchers to share the budget.
    """

    def __init__(
        self,
        interval: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_hosts: int = 10_000,
    ) -> None:
        if interval < 0:
            raise ConfigurationError("per-host interval must be >= 0")
        self.interval = interval
        self._clock = clock
        self._max_hosts = max_hosts
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def reserve(self, host: str, *, not_after: float | None = None) -> float | None:
        """Book a request to ``host``: when it may start, or ``None`` if after ``not_after``."""
        key = host.lower()
        with self._lock:
            now = self._clock()
            start = max(now, self._next.get(key, now))
            if not_after is not None and start > not_after:
                return None
            if len(self._next) >= self._max_hosts:
                self._next = {k: t for k, t in self._next.items() if t > now}
            self._next[key] = start + self.interval
            return start


# --------------------------------------------------------------------------- the fetcher


class _Exchange:
    """One request/response on a pinned connection, with the watchdog guarding it."""

    __slots__ = ("conn", "fired", "response", "sock", "watchdog")

    def __init__(self, sock: socket.socket, host: str, port: int, seconds: float) -> None:
        self.sock = sock
        self.fired = threading.Event()
        self.watchdog = threading.Timer(max(seconds, 0.0), self._abort)
        self.watchdog.daemon = True
        # The socket is already connected to the pinned address: http.client never resolves.
        self.conn = http.client.HTTPConnection(host, port)
        self.conn.sock = sock
        self.response: http.client.HTTPResponse | None = None

    def _abort(self) -> None:
        """At the deadline: shut the socket so a blocked read returns at once."""
        self.fired.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.watchdog.cancel()
        self.conn.close()


class Fetcher:
    """Fetch external ``http``/``https`` URLs safely; see the module docstring for the rules.

    Every option is keyword-only. ``allowed_ports`` defaults to 80, 443, 8080 and 8443.
    ``resolver`` (``socket.getaddrinfo``'s shape) and ``connector`` (``socket.create_connection``'s
    shape, called with a validated IP only) are injectable for tests and instrumentation.

    ``allow_private=True`` lets private, loopback and link-local addresses through (an intranet
    catalog); it is never the default. ``extra_allowed_networks`` lets exactly the given
    networks through and nothing else (a test server on 127.0.0.1, one known internal host).
    ``ssl_context`` must verify certificates and host names (the default context does);
    ``rate_limiter`` shares a per-host budget between fetchers.
    """

    def __init__(
        self,
        *,
        max_bytes: int = 100 * 1024 * 1024,
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
        max_redirects: int = 5,
        per_host_interval: float = 1.0,
        allowed_ports: Iterable[int] = DEFAULT_ALLOWED_PORTS,
        resolver: Resolver = socket.getaddrinfo,
        connector: Connector = _default_connector,
        allow_private: bool = False,
        extra_allowed_networks: Iterable[str | IPNetwork] = (),
        ssl_context: ssl.SSLContext | None = None,
        rate_limiter: HostRateLimiter | None = None,
        user_agent: str = _USER_AGENT,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_bytes < 0 or timeout <= 0 or connect_timeout <= 0 or max_redirects < 0:
            raise ConfigurationError("fetch limits must be positive")
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.max_redirects = max_redirects
        self.allowed_ports = frozenset(allowed_ports)
        self.allow_private = allow_private
        self.extra_allowed_networks: tuple[IPNetwork, ...] = tuple(
            ipaddress.ip_network(net) if isinstance(net, str) else net
            for net in extra_allowed_networks
        )
        self._resolver = resolver
        self._connector = connector
        if ssl_context is None:
            ssl_context = _default_ssl_context()
        if ssl_context.verify_mode != ssl.CERT_REQUIRED or not ssl_context.check_hostname:
            raise ConfigurationError("the fetcher's TLS context must verify certificates")
        self._ssl_context = ssl_context
        self.rate_limiter = rate_limiter or HostRateLimiter(per_host_interval, clock=clock)
        self._user_agent = user_agent
        self._clock = clock
        self._sleep = sleep
        if allow_private:
            logger.warning("fetcher created with allow_private=True: internal addresses allowed")

    # -- policy

    def _check(self, ip: IPAddress) -> str | None:
        """Why ``ip`` is refused under this fetcher's policy, or ``None``."""
        if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
            return "IPv6 address with a zone identifier"
        if any(ip.version == net.version and ip in net for net in self.extra_allowed_networks):
            return None
        return blocked_reason(ip, allow_private=self.allow_private)

    def check_url(self, url: str) -> str:
        """Check a URL's form, scheme, port and any literal address, without network access.

        Returns the normalised URL; raises :class:`FetchError` as :meth:`fetch` would. Names
        are not resolved, so passing this check does not mean a fetch will be allowed.
        """
        return _parse_url(url, allowed_ports=self.allowed_ports, check=self._check).url

    # -- fetching

    def fetch(self, url: str, sink: BinaryIO) -> FetchResult:
        """Fetch ``url`` and stream its body into ``sink``.

        Returns a :class:`FetchResult` for a 2xx final response. Raises :class:`FetchError`
        (see :data:`FETCH_ERROR_CODES`) otherwise; the sink may then hold a partial body,
        which the caller must discard (write to a temporary, keep the previous content).
        The sink never receives more than ``max_bytes`` bytes. Waiting for the first
        request's per-host slot is not counted in ``timeout``; everything after it is.
        """
        target, exchange, redirects, deadline = self._follow(url, "GET", ())
        try:
            return self._read_body(target, exchange, sink, deadline, redirects)
        finally:
            exchange.close()

    def probe(self, url: str) -> ProbeResult:
        """Check that ``url`` answers, without downloading it (a link health check).

        Sends ``HEAD``; when the server refuses HEAD (405, 501, or another 4xx/5xx that a
        GET may not give), asks again with ``GET`` and ``Range: bytes=0-0`` and reads at most
        a few bytes. Redirects are followed and every hop is checked exactly as in
        :meth:`fetch`. Returns the final 2xx answer's status and validators; raises
        :class:`FetchError` like :meth:`fetch` (``http_error`` carries the status).
        """
        try:
            target, exchange, redirects, _ = self._follow(url, "HEAD", ())
            method = "HEAD"
        except FetchError as exc:
            if exc.code != "http_error" or exc.status is None or exc.status < 400:
                raise
            target, exchange, redirects, _ = self._follow(url, "GET", (("Range", "bytes=0-0"),))
            method = "GET"
        try:
            resp = exchange.response
            assert resp is not None
            if method == "GET":
                with contextlib.suppress(Exception):
                    resp.read1(_PROBE_READ)
            return ProbeResult(
                final_url=target.url,
                status=resp.status,
                method=method,
                content_type=resp.getheader("Content-Type"),
                content_length=_content_length(resp),
                etag=resp.getheader("ETag"),
                last_modified=resp.getheader("Last-Modified"),
                redirects=tuple(redirects),
            )
        finally:
            exchange.close()

    def _follow(
        self, url: str, method: str, headers: Sequence[tuple[str, str]]
    ) -> tuple[_Target, _Exchange, list[str], float]:
        """Send ``method`` to ``url`` and follow redirects (each hop checked); returns the
        final target, its open exchange with a 2xx response (the caller closes it), the
        redirect chain and the deadline. Raises FetchError for anything else."""
        target = _parse_url(url, allowed_ports=self.allowed_ports, check=self._check)
        self._wait_for_slot(target.host, deadline=None)
        deadline = self._clock() + self.timeout
        redirects: list[str] = []
        while True:
            exchange = self._request(target, deadline, method=method, headers=headers)
            done = False
            try:
                resp = exchange.response
                assert resp is not None
                status = resp.status
                if 200 <= status < 300:
                    done = True
                    return target, exchange, redirects, deadline
                if status not in _REDIRECT_STATUSES:
                    raise FetchError("http_error", f"the server answered {status}", status=status)
                location = resp.getheader("Location")
                if not location:
                    raise FetchError("http_error", "redirect without a Location", status=status)
                if len(redirects) >= self.max_redirects:
                    raise FetchError(
                        "too_many_redirects", f"more than {self.max_redirects} redirects"
                    )
                next_target = _parse_url(
                    urljoin(target.url, location.strip()),
                    allowed_ports=self.allowed_ports,
                    check=self._check,
                )
                if target.scheme == "https" and next_target.scheme == "http":
                    raise FetchError("bad_scheme", "redirect from https to http refused")
                logger.debug("fetch redirect %s -> %s", target.url, next_target.url)
                redirects.append(next_target.url)
                target = next_target
            finally:
                if not done:
                    exchange.close()
            self._wait_for_slot(target.host, deadline=deadline)

    def _wait_for_slot(self, host: str, *, deadline: float | None) -> None:
        start = self.rate_limiter.reserve(host, not_after=deadline)
        if start is None:
            raise FetchError("timeout", "the per-host rate limit would pass the deadline")
        delay = start - self._clock()
        if delay > 0:
            logger.debug("fetch rate limit: waiting %.3f s for %s", delay, host)
            self._sleep(delay)

    def _resolve(self, target: _Target, deadline: float) -> list[IPAddress]:
        """The target's addresses, every one checked: resolved once, refused if ANY is bad."""
        if target.ip is not None:
            return [target.ip]
        try:
            infos = self._resolver(target.host, target.port, 0, socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            logger.info("fetch: cannot resolve %s: %s", target.host, exc)
            raise FetchError("connection_error", "the host name could not be resolved") from exc
        addresses: list[IPAddress] = []
        for info in infos:
            text = str(info[4][0])
            try:
                ip = ipaddress.ip_address(text)
            except ValueError as exc:  # e.g. a scoped IPv6 address "fe80::1%eth0"
                logger.info("fetch refused: %s resolves to %r", target.host, text)
                raise FetchError(
                    "blocked_address", "the host resolves to a non-public address"
                ) from exc
            reason = self._check(ip)
            if reason is not None:
                logger.info("fetch refused: %s resolves to %s (%s)", target.host, ip, reason)
                raise FetchError("blocked_address", "the host resolves to a non-public address")
            if ip not in addresses:
                addresses.append(ip)
        if not addresses:
            raise FetchError("connection_error", "the host name could not be resolved")
        if self._clock() >= deadline:
            raise FetchError("timeout", f"no response within {self.timeout:g} s")
        return addresses

    def _connect(
        self, target: _Target, addresses: list[IPAddress], deadline: float
    ) -> socket.socket:
        last: BaseException | None = None
        for ip in addresses:
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise FetchError("timeout", f"no response within {self.timeout:g} s")
            try:
                sock = self._connector((str(ip), target.port), min(self.connect_timeout, remaining))
            except TimeoutError as exc:
                last = exc
                continue
            except OSError as exc:
                logger.info("fetch: connecting to %s (%s) failed: %s", target.host, ip, exc)
                last = exc
                continue
            if target.scheme != "https":
                return sock
            try:
                sock.settimeout(max(deadline - self._clock(), 0.001))
                return self._ssl_context.wrap_socket(sock, server_hostname=target.host)
            except ssl.SSLCertVerificationError as exc:
                sock.close()
                logger.info("fetch: TLS verification failed for %s: %s", target.host, exc)
                raise FetchError(
                    "connection_error", "the server's TLS certificate could not be verified"
                ) from exc
            except TimeoutError as exc:
                sock.close()
                raise FetchError("timeout", f"no response within {self.timeout:g} s") from exc
            except (OSError, ssl.SSLError) as exc:
                sock.close()
                logger.info("fetch: TLS handshake with %s failed: %s", target.host, exc)
                raise FetchError("connection_error", "the TLS handshake failed") from exc
        if isinstance(last, TimeoutError):
            raise FetchError("timeout", "the connection timed out") from last
        raise FetchError("connection_error", "the server could not be reached") from last

    def _request(
        self,
        target: _Target,
        deadline: float,
        *,
        method: str = "GET",
        headers: Sequence[tuple[str, str]] = (),
    ) -> _Exchange:
        addresses = self._resolve(target, deadline)
        sock = self._connect(target, addresses, deadline)
        exchange = _Exchange(sock, target.host, target.port, deadline - self._clock())
        exchange.watchdog.start()
        conn = exchange.conn
        try:
            sock.settimeout(max(deadline - self._clock(), 0.001))
            conn.putrequest(
                method, target.request_target, skip_host=True, skip_accept_encoding=True
            )
            conn.putheader("Host", target.host_header)
            conn.putheader("User-Agent", self._user_agent)
            conn.putheader("Accept", "*/*")
            conn.putheader("Accept-Encoding", "identity")
            conn.putheader("Connection", "close")
            for name, value in headers:
                conn.putheader(name, value)
            conn.endheaders()
            exchange.response = conn.getresponse()
        except BaseException as exc:
            exchange.close()
            raise self._translate(exc, exchange) from exc
        return exchange

    def _translate(self, exc: BaseException, exchange: _Exchange) -> BaseException:
        """Map a low-level failure to a FetchError (anything unexpected passes through)."""
        if isinstance(exc, FetchError):
            return exc
        if exchange.fired.is_set() or isinstance(exc, TimeoutError):
            return FetchError("timeout", f"no response within {self.timeout:g} s")
        if isinstance(exc, http.client.HTTPException | OSError | ValueError):
            logger.info("fetch: protocol or connection failure: %r", exc)
            return FetchError(
                "connection_error", "the connection failed or the response was invalid"
            )
        return exc

    def _read_body(
        self,
        target: _Target,
        exchange: _Exchange,
        sink: BinaryIO,
        deadline: float,
        redirects: list[str],
    ) -> FetchResult:
        resp = exchange.response
        assert resp is not None
        declared = resp.getheader("Content-Length")
        if declared is not None and declared.strip().isdigit() and int(declared) > self.max_bytes:
            raise FetchError("too_large", f"the file is larger than {self.max_bytes} bytes")
        digest = hashlib.sha256()
        size = 0
        while True:
            try:
                remaining = deadline - self._clock()
                if remaining <= 0:
                    raise TimeoutError
                exchange.sock.settimeout(remaining)
                # read1: at most one socket read, so a trickling server cannot hold us past
                # the deadline; ask for one byte more than the cap allows to detect overflow.
                chunk = resp.read1(min(_CHUNK, self.max_bytes - size + 1))
            except BaseException as exc:
                raise self._translate(exc, exchange) from exc
            if not chunk:
                break
            if size + len(chunk) > self.max_bytes:
                raise FetchError("too_large", f"the file is larger than {self.max_bytes} bytes")
            sink.write(chunk)  # the caller's own errors (disk full ...) propagate unchanged
            digest.update(chunk)
            size += len(chunk)
        if exchange.fired.is_set():
            raise FetchError("timeout", f"no response within {self.timeout:g} s")
        if resp.length:  # Content-Length promised more than arrived
            raise FetchError("connection_error", "the connection closed before the end")
        return FetchResult(
            final_url=target.url,
            status=resp.status,
            content_type=resp.getheader("Content-Type"),
            size=size,
            etag=resp.getheader("ETag"),
            last_modified=resp.getheader("Last-Modified"),
            redirects=tuple(redirects),
            sha256=digest.hexdigest(),
            content_encoding=resp.getheader("Content-Encoding"),
        )
