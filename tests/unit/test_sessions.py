"""Dashboard sessions and CSRF tokens: what a cookie or a form must carry to be believed."""

from __future__ import annotations

import base64
import json

import pytest

from mediahooks.dashboard import session
from mediahooks.dashboard.signin import local_target

KEY = b"k" * 32
NOW = 1_800_000_000


def test_a_session_survives_its_cookie_and_nothing_else_does() -> None:
    signed_in = session.new("dkxfvY", NOW)
    cookie = session.encode(signed_in, KEY)
    assert session.decode(cookie, KEY, NOW + 60) == signed_in
    assert session.decode(cookie, b"other key" * 4, NOW) is None
    assert session.decode(cookie, KEY, signed_in.expires) is None  # expired
    body, _, mac = cookie.partition(".")
    other = "1" if mac.endswith("0") else "0"  # a MAC one digit off, never the same one
    assert session.decode(f"{body}.{mac[:-1]}{other}", KEY, NOW) is None
    assert session.decode(body, KEY, NOW) is None


def forged(payload: object) -> str:
    """A cookie whose MAC is right but whose payload is not a session."""
    body = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    return f"{body}.{session._mac(KEY, 'session:' + body)}"


@pytest.mark.parametrize(
    "payload",
    [[], {"n": "x"}, {"n": "x", "a": 5, "e": NOW + 9}, {"n": "x", "a": None, "e": "soon"}],
)
def test_a_malformed_session_is_no_session(payload: object) -> None:
    assert session.decode(forged(payload), KEY, NOW) is None
    assert session.decode("not base64!.00", KEY, NOW) is None


def test_the_csrf_token_belongs_to_one_session() -> None:
    before, after = session.new(None, NOW), session.new("dkxfvY", NOW)
    token = session.csrf_token(before, KEY)
    assert session.csrf_ok(before, KEY, token)
    assert not session.csrf_ok(after, KEY, token)  # signing in starts a new nonce
    assert not session.csrf_ok(before, b"x" * 32, token)
    assert not session.csrf_ok(before, KEY, "")


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/assets?status=error", "/assets?status=error"),
        ("//evil.example/", "/streams"),
        ("/\\evil.example", "/streams"),
        ("https://evil.example/", "/streams"),
        ("", "/streams"),
    ],
)
def test_sign_in_only_leads_back_into_this_site(target: str, expected: str) -> None:
    assert local_target(target) == expected
