"""Whether a publish token admits a publisher now, from where it connects (pure).

Every door asks the same question after finding the token: it must be active, not expired, and,
when its lists are set, used from an allowed address (`allowedIpAddresses`: IPv4 and IPv6
addresses and CIDR ranges, checked against the connection's remote address) and, where the
protocol carries one, from an allowed origin (`allowedOrigins`, checked against a browser's
`Origin` header). An empty list allows any. A publisher that sends no `Origin` is not a browser
page, the only thing an origin list can keep out: it is admitted, as over RTMP, which has none.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from mediahooks.clock import iso

RefusalKind = Literal["inactive", "expired", "address", "origin"]
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# An allowed origin: a host name (or `*.` and a domain, for any of its subdomains) or an IP
# literal, with an optional `http://`/`https://` and an optional port.
_ORIGIN = re.compile(
    r"(?:(?P<scheme>https?)://)?"
    r"(?P<wild>\*\.)?"
    r"(?P<host>[a-z0-9](?:[a-z0-9-]{0,62})(?:\.[a-z0-9](?:[a-z0-9-]{0,62}))*|\[[0-9a-f:.]+\])"
    r"(?::(?P<port>[0-9]{1,5}))?/?",
    re.IGNORECASE,
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Rules:
    """What a publish token says about who may use it."""

    is_active: bool
    expires_at: int | None  # epoch ms
    allowed_ip_addresses: tuple[str, ...]
    allowed_origins: tuple[str, ...]


@dataclass(frozen=True)
class Refusal:
    """Why a publisher is turned away; `status` is its HTTP status (401: the token is no longer
    good; 403: good, but not from here)."""

    kind: RefusalKind
    reason: str

    @property
    def status(self) -> int:
        return 401 if self.kind in ("inactive", "expired") else 403


def check(rules: Rules, now_ms: int, remote: str | None, origin: str | None) -> Refusal | None:
    """None when the token admits a publisher at ``remote`` (an IP address; None when the
    door does not know it) sending ``origin`` (None when it sent none)."""
    refusal = standing(rules, now_ms)
    if refusal is not None:
        return refusal
    if rules.allowed_ip_addresses and not address_allowed(rules.allowed_ip_addresses, remote):
        return Refusal(
            "address",
            f"this publish token may not publish from {remote or 'an unknown address'} "
            "(not in its allowedIpAddresses)",
        )
    allowed = rules.allowed_origins
    if allowed and origin is not None and not origin_allowed(allowed, origin):
        return Refusal(
            "origin",
            f"this publish token may not publish from the origin {origin[:256]!r} "
            "(not in its allowedOrigins)",
        )
    return None


def standing(rules: Rules, now_ms: int) -> Refusal | None:
    """None while the token itself is good (active, not expired): what a live publisher's
    token must stay for its broadcast to go on."""
    if not rules.is_active:
        return Refusal("inactive", "this publish token is disabled (isActive is false)")
    if rules.expires_at is not None and rules.expires_at <= now_ms:
        return Refusal("expired", f"this publish token expired at {iso(rules.expires_at)}")
    return None


def network_problem(entry: str) -> str | None:
    """Why ``entry`` is not an IP address or CIDR range, or None."""
    try:
        ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return f"{entry[:64]!r} is not an IPv4 or IPv6 address or CIDR range (e.g. 203.0.113.0/24)"
    return None


def origin_problem(entry: str) -> str | None:
    """Why ``entry`` is not an origin rule (`example.com`, `*.example.com`,
    `https://example.com:8443`), or None."""
    if not _ORIGIN.fullmatch(entry):
        return (
            f"{entry[:64]!r} is not an origin: a host name, '*.' and a domain, or either with "
            "http:// or https:// and a port"
        )
    return None


def address_allowed(entries: tuple[str, ...], remote: str | None) -> bool:
    address = _address(remote)
    if address is None:
        return False
    for entry in entries:
        try:
            network: IpNetwork = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            continue  # refused by the API; never matches
        if address.version == network.version and address in network:
            return True
    return False


def origin_allowed(entries: tuple[str, ...], origin: str) -> bool:
    """Whether the browser's ``origin`` (`scheme://host[:port]`) matches one of ``entries``."""
    try:
        parts = urlsplit(origin.strip())
        host, port = parts.hostname, parts.port or _DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:
        return False
    if not host or not parts.scheme:
        return False  # `null` (a sandboxed page or a file) matches no rule
    scheme, host = parts.scheme.lower(), host.lower()
    for entry in entries:
        rule = _ORIGIN.fullmatch(entry)
        if rule is None:
            continue
        want_host = rule["host"].lower().strip("[]")
        if rule["scheme"] and rule["scheme"].lower() != scheme:
            continue
        if rule["port"] and int(rule["port"]) != port:
            continue
        if rule["wild"] and host.endswith("." + want_host):
            return True
        if not rule["wild"] and host == want_host:
            return True
    return False


def _address(remote: str | None) -> IpAddress | None:
    """The remote's IP address; an IPv4 client of a dual-stack socket (`::ffff:a.b.c.d`) is
    its IPv4 address, which is what the token's owner knows it by."""
    if not remote:
        return None
    try:
        address = ipaddress.ip_address(remote.strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
