"""Who a publish token admits: the rules themselves (active, expiry, allowed addresses and
origins), and what the API takes as addresses and origins."""

from __future__ import annotations

from typing import Any

import pytest

from mediahooks import admission
from mediahooks.admission import Rules

OPEN = Rules(is_active=True, expires_at=None, allowed_ip_addresses=(), allowed_origins=())


def rules(**fields: Any) -> Rules:
    return Rules(**{**OPEN.__dict__, **fields})


def test_an_open_token_admits_anyone_from_anywhere() -> None:
    assert admission.check(OPEN, 1000, None, None) is None
    assert admission.check(OPEN, 1000, "203.0.113.9", "https://anywhere.example") is None


def test_inactive_and_expired_are_401_with_the_reason() -> None:
    inactive = admission.check(rules(is_active=False), 1000, "127.0.0.1", None)
    assert inactive is not None and inactive.status == 401 and "disabled" in inactive.reason
    expired = admission.check(rules(expires_at=1000), 1000, "127.0.0.1", None)
    assert expired is not None and expired.status == 401
    assert "expired at 1970-01-01T00:00:01.000Z" in expired.reason
    assert admission.check(rules(expires_at=1001), 1000, "127.0.0.1", None) is None


@pytest.mark.parametrize(
    ("allowed", "remote", "admitted"),
    [
        (("127.0.0.1",), "127.0.0.1", True),
        (("127.0.0.1",), "127.0.0.2", False),
        (("10.0.0.0/8",), "10.255.1.2", True),
        (("10.0.0.0/8",), "11.0.0.1", False),
        (("10.1.2.3/8",), "10.9.9.9", True),  # host bits in a range are ignored
        (("::1",), "::1", True),
        (("fd00::/8",), "fd12:3456::1", True),
        (("fd00::/8",), "::1", False),
        (("2001:db8::/32",), "2001:db8:0:0:0:0:0:7", True),
        (("2001:db8::/32",), "[2001:db8::7]", True),
        (("fe80::/10",), "fe80::1%eth0", True),  # a zone names the interface, not the address
        (("127.0.0.0/8",), "::ffff:127.0.0.1", True),  # IPv4 on a dual-stack socket
        (("::1",), "127.0.0.1", False),
        (("127.0.0.1", "::1"), "::1", True),
        (("127.0.0.1",), None, False),  # an unknown address is no allowed one
        (("127.0.0.1",), "not an address", False),
    ],
)
def test_allowed_ip_addresses(allowed: tuple[str, ...], remote: str | None, admitted: bool) -> None:
    refusal = admission.check(rules(allowed_ip_addresses=allowed), 0, remote, None)
    assert (refusal is None) == admitted
    if refusal is not None:
        assert refusal.status == 403 and "allowedIpAddresses" in refusal.reason


@pytest.mark.parametrize(
    ("allowed", "origin", "admitted"),
    [
        (("studio.example.com",), "https://studio.example.com", True),
        (("studio.example.com",), "http://studio.example.com:8080", True),
        (("studio.example.com",), "https://evil.example.com", False),
        (("studio.example.com",), "https://studio.example.com.evil.net", False),
        (("STUDIO.example.com",), "https://studio.EXAMPLE.com", True),
        (("*.example.com",), "https://a.b.example.com", True),
        (("*.example.com",), "https://example.com", False),  # subdomains only
        (("*.example.com",), "https://notexample.com", False),
        (("https://studio.example.com",), "http://studio.example.com", False),
        (("https://studio.example.com",), "https://studio.example.com:443", True),
        (("https://studio.example.com:8443",), "https://studio.example.com", False),
        (("https://studio.example.com:8443",), "https://studio.example.com:8443", True),
        (("http://[::1]:8080",), "http://[::1]:8080", True),
        (("studio.example.com",), "null", False),  # a sandboxed page or a file
        (("studio.example.com",), None, True),  # no Origin: not a browser page
    ],
)
def test_allowed_origins(allowed: tuple[str, ...], origin: str | None, admitted: bool) -> None:
    refusal = admission.check(rules(allowed_origins=allowed), 0, "127.0.0.1", origin)
    assert (refusal is None) == admitted
    if refusal is not None:
        assert refusal.status == 403 and "allowedOrigins" in refusal.reason


def test_what_the_api_takes_as_addresses_and_origins() -> None:
    for good in ("203.0.113.7", "203.0.113.0/24", "::1", "2001:db8::/32", "10.1.2.3/8"):
        assert admission.network_problem(good) is None, good
    for bad in ("203.0.113.256", "::1/129", "localhost", "10.0.0.0/33", ""):
        assert admission.network_problem(bad) is not None, bad
    for good in ("example.com", "*.example.com", "https://a.example.com:8443", "localhost:3000"):
        assert admission.origin_problem(good) is None, good
    for bad in ("*", "https://", "ftp://example.com", "example.com/path", "*.*.example.com"):
        assert admission.origin_problem(bad) is not None, bad
