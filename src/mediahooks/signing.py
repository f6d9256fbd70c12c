"""Both signature schemes, sign and verify (pure, standard library only).

- The platform's ``X-Millicast-Signature: sha1=<hex HMAC-SHA1(key, body)>``.
- Standard Webhooks v1: ``webhook-signature: v1,<base64 HMAC-SHA256(key, "{id}.{ts}.{body}")>``.

Both use the same key: the webhook's secret, base64-decoded (``whsec_<secret>`` in Standard
Webhooks terms).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import secrets
import time
from collections.abc import Iterable, Mapping

MILLICAST_HEADER = "X-Millicast-Signature"
DEFAULT_TOLERANCE = 5 * 60


class VerificationError(Exception):
    """The request is not a genuine, fresh hook."""


class MissingHeaders(VerificationError):
    pass


class BadSignature(VerificationError):
    pass


class StaleTimestamp(VerificationError):
    """The timestamp is outside the tolerance: too old (a replay) or in the future."""


def new_secret() -> str:
    """A webhook secret: 32 random bytes, base64, as the platform hands them out."""
    return base64.b64encode(secrets.token_bytes(32)).decode()


@functools.lru_cache(maxsize=4096)
def key_of(secret: str) -> bytes:
    """The HMAC key of a secret given as base64 or as ``whsec_<base64>``.

    Cached: every attempt signs with its webhook's keys, and decoding them is a measurable part
    of signing."""
    raw = secret.removeprefix("whsec_")
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a webhook secret must be base64 (optionally prefixed whsec_)") from exc


def millicast_signature(secret: str, body: bytes) -> str:
    return "sha1=" + hmac.digest(key_of(secret), body, "sha1").hex()


def standard_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.digest(key_of(secret), signed, "sha256")
    return "v1," + base64.b64encode(digest).decode()


def sign(secrets_: Iterable[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Headers for one attempt. The first secret is the current one; others are still in grace."""
    keys = list(secrets_)
    return {
        MILLICAST_HEADER: millicast_signature(keys[0], body),
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(standard_signature(k, msg_id, timestamp, body) for k in keys),
    }


def verify(
    body: bytes,
    headers: Mapping[str, str],
    secrets_: str | Iterable[str],
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> str:
    """Check a Standard Webhooks signature; return the ``webhook-id``.

    Accepts when any signature in the header matches any of the given secrets (rotation), and
    the timestamp is within ``tolerance`` seconds of ``now`` either way.
    """
    h = {k.lower(): v for k, v in headers.items()}
    msg_id, ts_text, sig_header = (
        h.get("webhook-id"),
        h.get("webhook-timestamp"),
        h.get("webhook-signature"),
    )
    if not msg_id or not ts_text or not sig_header:
        raise MissingHeaders("webhook-id, webhook-timestamp and webhook-signature are required")
    try:
        timestamp = int(ts_text)
    except ValueError as exc:
        raise StaleTimestamp(f"webhook-timestamp is not an integer: {ts_text!r}") from exc
    current = time.time() if now is None else now
    if timestamp < current - tolerance:
        raise StaleTimestamp("webhook-timestamp is too old")
    if timestamp > current + tolerance:
        raise StaleTimestamp("webhook-timestamp is in the future")
    keys = [secrets_] if isinstance(secrets_, str) else list(secrets_)
    offered = [part.removeprefix("v1,") for part in sig_header.split() if part.startswith("v1,")]
    for key in keys:
        expected = standard_signature(key, msg_id, timestamp, body).removeprefix("v1,")
        if any(hmac.compare_digest(expected, sig) for sig in offered):
            return msg_id
    raise BadSignature("no signature matches")


def verify_millicast(body: bytes, header: str | None, secret: str) -> None:
    """Check the platform's signature. It has no timestamp, so it cannot detect a replay."""
    if not header:
        raise MissingHeaders(f"{MILLICAST_HEADER} is required")
    if not hmac.compare_digest(millicast_signature(secret, body), header.strip().lower()):
        raise BadSignature(f"{MILLICAST_HEADER} does not match")
