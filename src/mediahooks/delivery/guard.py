"""The SSRF guard: which addresses a webhook may reach, and host resolution that checks them.

The pure part (`refusal`) judges one address. `resolve` looks a host up and returns only
addresses it checked; the sender connects to exactly those, so a DNS answer that changes
between the check and the connection cannot slip a private address through.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit

from mediahooks.config import Network
from mediahooks.errors import Refused

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)

# IPv6 forms whose last 32 bits are an IPv4 address that a translator on the path (or the host's
# own stack) may end up connecting to. Python calls them all global, so each is judged by the
# IPv4 address it carries instead (IPv4-mapped and 6to4 have their own properties).
_EMBEDDING = (
    (ipaddress.IPv6Network("64:ff9b::/96"), "NAT64"),  # RFC 6052, the well-known prefix
    (ipaddress.IPv6Network("::ffff:0:0:0/96"), "SIIT"),  # IPv4-translated, RFC 2765
    # IPv4-compatible (deprecated, RFC 4291); :: and ::1 keep their own meaning.
    (ipaddress.IPv6Network("::/96"), "IPv4-compatible"),
)
# Ranges Python calls global that no webhook should reach, whatever they might carry.
_REFUSED: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = (
    # RFC 8215: each network picks where the IPv4 address sits, so it cannot be judged.
    (ipaddress.IPv6Network("64:ff9b:1::/48"), "local-use NAT64"),
    (ipaddress.IPv6Network("fec0::/10"), "site-local"),  # deprecated, still routed inside sites
    (ipaddress.IPv4Network("192.88.99.0/24"), "6to4 relay anycast"),  # deprecated, RFC 7526
)


class TargetRefused(Refused):
    """The URL may not be called. `kind` is `blocked` or `dns`."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def refusal(address: IPAddress, allowed: Sequence[Network] = ()) -> str | None:
    """Why ``address`` may not be called, or None when it may."""
    if isinstance(address, ipaddress.IPv6Address):
        carried = embedded_ipv4(address)
        if carried is not None:
            embedded, form = carried
            reason = refusal(embedded, allowed)
            return f"{address} ({form}) embeds {embedded}: {reason}" if reason else None
    if any(address in net for net in allowed):
        return None
    if address in METADATA_ADDRESSES:
        return f"{address} is a cloud metadata address"
    for network, label in _REFUSED:
        if address in network:
            return f"{address} is a {label} address"
    if address.is_global and not address.is_multicast:
        return None
    for label, flag in (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("unspecified", address.is_unspecified),
        ("private", address.is_private),
    ):
        if flag:
            return f"{address} is a {label} address"
    return f"{address} is not a global address"


def embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, str] | None:
    """The IPv4 address that ``address`` carries and may lead to, and the form's name."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped, "IPv4-mapped"
    if address.sixtofour is not None:
        return address.sixtofour, "6to4"
    if address.is_loopback or address.is_unspecified:
        return None
    for network, form in _EMBEDDING:
        if address in network:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), form
    return None


def check_url(url: str) -> tuple[str, int]:
    """The host and port of an http(s) URL, or ValueError with a reason a person can act on."""
    if url != url.strip() or any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise ValueError("url must not contain spaces or control characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError("url must start with http:// or https://")
    if not parts.hostname:
        raise ValueError("url has no host")
    if parts.username or parts.password:
        raise ValueError("url must not carry credentials")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"url has an invalid port: {exc}") from exc
    if port == 0:
        raise ValueError("url has an invalid port: 0")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


async def resolve(host: str, port: int, allowed: Sequence[Network] = ()) -> list[IPAddress]:
    """Every address of ``host``, each checked; refuses the host if any of them is refused."""
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except (OSError, UnicodeError) as exc:  # UnicodeError: a label over 63 characters
            raise TargetRefused("dns", f"cannot resolve {host}: {exc}") from exc
        addresses = list(
            dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos)
        )
    for address in addresses:
        reason = refusal(address, allowed)
        if reason:
            raise TargetRefused(
                "blocked",
                f"{host} resolves to a non-public address ({reason}); set "
                "MEDIAHOOKS_ALLOW_PRIVATE_TARGETS to allow it in development",
            )
    return addresses
