"""One webhook request, sent only where it is allowed to go (docs/webhooks.md, "SSRF").

The host is resolved once; every address it resolves to must be public (unless
WEBHOOKS_ALLOW_PRIVATE), and the connection goes to that vetted address, so a second
DNS answer cannot point the request at the inside (DNS rebinding). Redirects are never
followed: a 3xx is an answer like any other, and counts as a failure.
"""

import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings


class Refused(Exception):
    """The URL may not be called: its scheme, or an address it resolves to."""


@dataclass(frozen=True)
class Answer:
    status: int


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def vetted_address(host: str, port: int) -> str:
    """The address to connect to for `host`; Refused when any it resolves to is not allowed."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        raise Refused(f"The host {host!r} does not resolve.") from e
    addresses = [info[4][0] for info in found]
    if not addresses:
        raise Refused(f"The host {host!r} does not resolve.")
    if not settings.WEBHOOKS_ALLOW_PRIVATE:
        for address in addresses:
            if not is_public(address):
                raise Refused(
                    f"The host {host!r} resolves to {address}, which is not a public address."
                )
    return addresses[0]


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self.address = address

    def connect(self) -> None:
        # The certificate is checked against the URL's host name, not the address.
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def post(url: str, body: bytes, headers: dict[str, str]) -> Answer:
    """POST `body` to `url`; Refused before any connection when the URL is not allowed.

    Network errors (OSError, http.client.HTTPException) reach the caller.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused("Only http and https URLs are called.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as e:
        raise Refused("The URL's port is not a port number.") from e
    address = vetted_address(parts.hostname, port)
    kind = _PinnedHTTPS if parts.scheme == "https" else _PinnedHTTP
    connection = kind(parts.hostname, port, address, settings.WEBHOOKS_TIMEOUT_SECONDS)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("POST", path, body=body, headers=headers)
        # Only the status counts; the body is not read, so a receiver cannot hold the
        # worker by trickling one.
        return Answer(status=connection.getresponse().status)
    finally:
        connection.close()
