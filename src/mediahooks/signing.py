"""Both signature schemes, as the sender signs (pure, standard library only; receivers verify
with `receiver.verify`).

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
from collections.abc import Iterable

MILLICAST_HEADER = "X-Millicast-Signature"


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
