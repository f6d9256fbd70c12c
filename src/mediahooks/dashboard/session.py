"""Dashboard sessions and CSRF tokens (pure).

A session is a signed cookie, so any process of the service can read it and none has to store
it. Every visitor has one, signed in or not: its random nonce is what each form's CSRF token is
derived from, the sign-in form included. Signing in issues a new nonce, so a token or cookie
planted before sign-in is worth nothing after it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

COOKIE = "mediahooks_session"
TTL_SECONDS = 12 * 3600


@dataclass(frozen=True)
class Session:
    nonce: str
    account_id: str | None
    expires: int  # epoch seconds

    @property
    def signed_in(self) -> bool:
        return self.account_id is not None


def new(account_id: str | None, now: int, ttl: int = TTL_SECONDS) -> Session:
    return Session(secrets.token_urlsafe(18), account_id, now + ttl)


def encode(session: Session, key: bytes) -> str:
    payload = json.dumps(
        {"n": session.nonce, "a": session.account_id, "e": session.expires},
        separators=(",", ":"),
    ).encode()
    body = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    return f"{body}.{_mac(key, 'session:' + body)}"


def decode(value: str, key: bytes, now: int) -> Session | None:
    """The session in a cookie, or None when it is forged, malformed or expired."""
    body, _, mac = value.partition(".")
    if not body or not hmac.compare_digest(mac, _mac(key, "session:" + body)):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        session = Session(str(data["n"]), data["a"], int(data["e"]))
    except (ValueError, KeyError, TypeError):
        return None
    if session.account_id is not None and not isinstance(session.account_id, str):
        return None
    return session if session.expires > now else None


def csrf_token(session: Session, key: bytes) -> str:
    return _mac(key, "csrf:" + session.nonce)


def csrf_ok(session: Session, key: bytes, token: str) -> bool:
    return hmac.compare_digest(token.encode(), csrf_token(session, key).encode())


def _mac(key: bytes, message: str) -> str:
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()
