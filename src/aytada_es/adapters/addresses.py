"""Where a webhook may be sent: http(s) URLs without credentials, to public addresses only,
unless their network is allowed (AYTADA_WEBHOOK_ALLOWED_NETWORKS): a guard against SSRF."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from ..domain.errors import BadInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# (host, port) -> the addresses the name resolves to, as text.
Resolver = Callable[[str, int], list[str]]
MAX_URL = 2048


def resolve(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to (blocking: the system's resolver)."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return [str(info[4][0]).split("%")[0] for info in found]


@dataclass(frozen=True)
class Target:
    """A checked webhook URL and the addresses it may be sent to, in the resolver's order."""

    url: SplitResult
    host: str
    port: int
    addresses: tuple[IPAddress, ...]


def checked_url(url: str) -> SplitResult:
    """The URL split, if it is one a webhook may have; BadInput naming `url` otherwise."""

    def refuse(problem: str) -> BadInput:
        return BadInput("the webhook URL is refused", {"url": problem})

    if not url or len(url) > MAX_URL:
        raise refuse(f"give an http or https URL of at most {MAX_URL} characters")
    if not url.isprintable() or any(c.isspace() for c in url):
        raise refuse("a URL has no spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        raise refuse("not a URL") from None
    if parts.scheme not in ("http", "https"):
        raise refuse("only http and https URLs are allowed")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise refuse("a URL may not carry credentials; use the signing secret")
    if not parts.hostname:
        raise refuse("the URL names no host")
    if parts.fragment:
        raise refuse("a URL with a #fragment is not sent to a server")
    return parts


class AddressGuard:
    """Refuses a URL whose host is, or resolves to, an address that is not public (loopback,
    private, link-local, unspecified, multicast, reserved, shared), unless an allowed network
    holds it. Every resolved address must pass: a name with one private address is refused."""

    def __init__(self, allowed: Iterable[Network] = (), resolver: Resolver = resolve) -> None:
        self.allowed = tuple(allowed)
        self.resolver = resolver

    def permits(self, address: IPAddress) -> bool:
        """Whether a webhook may be sent to this address."""
        if any(address in network for network in self.allowed):
            return True
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            return self.permits(address.ipv4_mapped)
        return address.is_global and not address.is_multicast

    def target(self, url: str) -> Target:
        """The URL checked and resolved now (blocking); BadInput naming `url` when refused."""
        parts = checked_url(url)
        host = str(parts.hostname)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            found = [ipaddress.ip_address(host)]
        except ValueError:
            try:
                found = [ipaddress.ip_address(a) for a in self.resolver(host, port)]
            except ValueError:
                found = []
        if not found:
            raise BadInput("the webhook URL is refused", {"url": f"{host} does not resolve"})
        refused = [a for a in found if not self.permits(a)]
        if refused:
            raise BadInput(
                "the webhook URL is refused",
                {
                    "url": f"{host} resolves to {refused[0]}, which is not a public address"
                    " (AYTADA_WEBHOOK_ALLOWED_NETWORKS can allow its network)"
                },
            )
        return Target(parts, host, port, tuple(dict.fromkeys(found)))
