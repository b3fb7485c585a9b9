"""The one guard for every outbound request whose URL a user or a client can aim (Web Push
endpoints, rollout hooks, chat webhooks): https only, an optional host allow-list, every
resolved address global, the connection pinned to the address that was checked (so a DNS
answer cannot change between the check and the connect), no redirects, a bounded time and a
bounded, sanitized answer.

    response = outbound.post(url, json={...}, timeout=10.0)   # OutboundResponse
    response.ok, response.status, response.reason             # reason: <= 200 printable chars

`OutboundRefused` (the URL itself is not allowed: retrying cannot help) is a kind of
`OutboundError` (no answer: timeout, connection refused, TLS; may pass).

Settings: `OUTBOUND_PRIVATE_HOSTS` names hosts an operator allows on private addresses (an
in-cluster load tester); `OUTBOUND_ALLOW_LOOPBACK` lets the tests' loopback servers answer over
http and is never set outside the tests.
"""

import ipaddress
import re
import socket
from dataclasses import dataclass
from fnmatch import fnmatchcase
from urllib.parse import SplitResult, urlsplit, urlunsplit

import httpx
from django.conf import settings

MAX_URL_LENGTH = 2048
MAX_BODY_BYTES = 64 * 1024
MAX_REASON_CHARS = 200
MAX_TIMEOUT_SECONDS = 30.0


class OutboundError(Exception):
    """No usable answer (timeout, connection, TLS): it may pass."""


class OutboundRefused(OutboundError):
    """The guard refused the URL (scheme, host, address): retrying cannot help."""


@dataclass(frozen=True)
class OutboundResponse:
    status: int
    reason: str  # sanitized: printable, one line, at most MAX_REASON_CHARS
    headers: dict[str, str]
    body: bytes  # at most the caller's max_body bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def sanitize(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """One printable line: control characters and runs of blanks become one space."""
    clean = re.sub(r"[^\x20-\x7e\u00a0-\uffff]+", " ", text)
    clean = re.sub(r"\s+", " ", clean).strip()
    return clean[: limit - 1] + "…" if len(clean) > limit else clean


def _loopback_allowed(host: str) -> bool:
    return bool(getattr(settings, "OUTBOUND_ALLOW_LOOPBACK", False)) and host in (
        "127.0.0.1",
        "localhost",
        "::1",
    )


def check_url(url: str, *, allowed_hosts: list[str] | None = None) -> SplitResult:
    """The URL's parts when its form is allowed; OutboundRefused naming the problem otherwise.

    `allowed_hosts` holds exact names or `*.suffix` patterns; None allows any host (the
    address check at send time still applies).
    """
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise OutboundRefused(f"a URL of 1 to {MAX_URL_LENGTH} characters is needed")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise OutboundRefused(f"not a URL: {exc}") from None
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        raise OutboundRefused("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise OutboundRefused("credentials in the URL are not allowed")
    if parts.scheme != "https" and not (parts.scheme == "http" and _loopback_allowed(host)):
        raise OutboundRefused(f"only https URLs are allowed, not {parts.scheme or 'none'}")
    if port is not None and not 1 <= port <= 65535:
        raise OutboundRefused("the port is out of range")
    if (
        allowed_hosts is not None
        and not _loopback_allowed(host)
        and not any(fnmatchcase(host, pattern.lower()) for pattern in allowed_hosts)
    ):
        raise OutboundRefused(f"host {host} is not one of the allowed hosts")
    return parts


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def resolve(host: str, port: int) -> str:
    """The address to connect to: every address the name resolves to must be global (a name
    with one private answer among public ones could be steered to it), unless an operator
    listed the host in OUTBOUND_PRIVATE_HOSTS."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise OutboundError(f"{host} does not resolve ({exc})") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise OutboundError(f"{host} does not resolve")
    private_ok = _loopback_allowed(host) or any(
        fnmatchcase(host, pattern.lower())
        for pattern in getattr(settings, "OUTBOUND_PRIVATE_HOSTS", [])
    )
    if not private_ok:
        blocked = [a for a in addresses if not _is_public(a)]
        if blocked:
            raise OutboundRefused(f"{host} resolves to a non-public address ({blocked[0]})")
    return addresses[0]


def request(
    method: str,
    url: str,
    *,
    json=None,
    content: bytes | None = None,
    headers: dict | None = None,
    timeout: float = 10.0,
    allowed_hosts: list[str] | None = None,
    max_body: int = MAX_BODY_BYTES,
) -> OutboundResponse:
    """One guarded request; never follows a redirect (a 3xx is returned as it is)."""
    parts = check_url(url, allowed_hosts=allowed_hosts)
    host = parts.hostname.lower().rstrip(".")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = resolve(host, port)
    netloc = f"[{address}]" if ":" in address else address
    if parts.port:
        netloc += f":{parts.port}"
    pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    host_header = host if not parts.port else f"{host}:{parts.port}"
    timeout = max(0.05, min(float(timeout), MAX_TIMEOUT_SECONDS))
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client,
            client.stream(
                method,
                pinned,
                json=json,
                content=content,
                headers={**(headers or {}), "Host": host_header},
                # TLS is checked against the name, not the pinned address.
                extensions={"sni_hostname": host},
            ) as response,
        ):
            body = b""
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) >= max_body:
                    body = body[:max_body]
                    break
    except httpx.TimeoutException:
        raise OutboundError(f"no answer within {timeout:g} s from {host}") from None
    except httpx.HTTPError as exc:
        raise OutboundError(f"{host}: {sanitize(type(exc).__name__ + ' ' + str(exc))}") from None
    text = body.decode("utf-8", errors="replace")
    return OutboundResponse(
        status=response.status_code,
        reason=sanitize(text or response.reason_phrase),
        headers={k.lower(): sanitize(v, 500) for k, v in response.headers.items()},
        body=body,
    )


def post(url: str, **kwargs) -> OutboundResponse:
    return request("POST", url, **kwargs)
