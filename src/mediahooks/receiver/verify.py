"""Is this request a genuine, fresh hook? Both signature schemes, checked the way a receiver
must: over the raw body bytes, in constant time, with a timestamp tolerance (standard library
only).

Standard Webhooks headers are checked by default. ``platform=True`` also accepts a request that
carries only the platform's ``X-Millicast-Signature``: that header has no timestamp and no
message id, so a captured request can be replayed at any time and nothing tells two deliveries
of one event apart. Turn it on only for hooks that come straight from the platform.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from mediahooks import signing
from mediahooks.signing import MILLICAST_HEADER

__all__ = [
    "DEFAULT_TOLERANCE",
    "BadSignature",
    "InvalidTimestamp",
    "MissingHeaders",
    "StaleTimestamp",
    "TimestampInFuture",
    "TimestampTooOld",
    "VerificationError",
    "Verified",
    "keys_of",
    "verify",
]

DEFAULT_TOLERANCE = 5 * 60  # seconds either way, as Standard Webhooks suggests
Scheme = Literal["standard", "platform"]
Secrets = str | Iterable[str]
"""One secret, or several during a rotation; each base64 or ``whsec_<base64>``."""

# Epoch seconds as ASCII digits only: int() alone would also take " 17", "1_7" and other scripts'
# digits, none of which a sender writes.
_SECONDS = re.compile(r"[0-9]{1,12}", re.ASCII)
_STANDARD_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


class VerificationError(Exception):
    """The request is not a genuine, fresh hook."""


class MissingHeaders(VerificationError):
    pass


class BadSignature(VerificationError):
    pass


class StaleTimestamp(VerificationError):
    """The timestamp is outside the tolerance: too old (a replay) or in the future."""


class TimestampTooOld(StaleTimestamp):
    """Older than the tolerance: most likely a captured request sent again."""


class TimestampInFuture(StaleTimestamp):
    """Newer than the tolerance allows: a clock is wrong, or the request was made up."""


class InvalidTimestamp(StaleTimestamp):
    """``webhook-timestamp`` is not epoch seconds."""


@dataclass(frozen=True)
class Verified:
    """What a verified request proved. ``webhook_id`` and ``timestamp`` are None for a request
    accepted on ``X-Millicast-Signature`` alone (platform mode)."""

    scheme: Scheme
    webhook_id: str | None
    timestamp: int | None


def keys_of(secrets: Secrets) -> list[bytes]:
    """The HMAC keys of one secret or several (rotation), each base64 or ``whsec_<base64>``.

    Raises ValueError for a secret that is not base64, so a misconfiguration shows at start
    rather than as every request refused.
    """
    given = [secrets] if isinstance(secrets, str) else list(secrets)
    if not given:
        raise ValueError("at least one webhook secret is required")
    keys = [signing.key_of(s.strip()) for s in given]
    if not all(keys):
        raise ValueError("a webhook secret may not be empty")
    return keys


def verify(
    body: bytes | str,
    headers: Mapping[str, str],
    secrets: Secrets,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    platform: bool = False,
    now: float | None = None,
) -> Verified:
    """Check a request's signature against one secret or several; raise a VerificationError.

    ``body`` must be the raw bytes as received (a ``str`` is taken as its UTF-8 bytes).
    Header names are matched case-insensitively.
    """
    raw = body.encode() if isinstance(body, str) else bytes(body)
    keys = keys_of(secrets)
    lowered = {k.lower(): v for k, v in headers.items()}
    if platform and not any(lowered.get(h) for h in _STANDARD_HEADERS):
        return _verify_platform(raw, lowered.get(MILLICAST_HEADER.lower()), keys)
    return _verify_standard(raw, lowered, keys, tolerance, time.time() if now is None else now)


def _verify_standard(
    body: bytes, headers: dict[str, str], keys: list[bytes], tolerance: float, now: float
) -> Verified:
    msg_id, ts_text, sig_header = (headers.get(h, "") for h in _STANDARD_HEADERS)
    if not (msg_id and ts_text and sig_header):
        raise MissingHeaders("webhook-id, webhook-timestamp and webhook-signature are required")
    if not _SECONDS.fullmatch(ts_text):
        raise InvalidTimestamp(f"webhook-timestamp is not epoch seconds: {ts_text[:32]!r}")
    timestamp = int(ts_text)
    if timestamp < now - tolerance:
        raise TimestampTooOld(
            f"webhook-timestamp is {now - timestamp:.0f} s old (tolerance {tolerance:g} s)"
        )
    if timestamp > now + tolerance:
        raise TimestampInFuture(
            f"webhook-timestamp is {timestamp - now:.0f} s ahead (tolerance {tolerance:g} s)"
        )
    offered = _v1_signatures(sig_header)
    # The signed content uses the normalised number, as every Standard Webhooks verifier does.
    signed = f"{msg_id}.{timestamp}.".encode() + body
    for key in keys:
        expected = hmac.new(key, signed, hashlib.sha256).digest()
        # Every comparison runs, so the time taken says nothing about which one matched.
        if sum(hmac.compare_digest(expected, sig) for sig in offered):
            return Verified("standard", msg_id, timestamp)
    raise BadSignature("no signature in webhook-signature matches a secret")


def _v1_signatures(header: str) -> list[bytes]:
    """The ``v1`` signatures of a ``webhook-signature`` header, decoded.

    The list is separated by single spaces and each entry is ``<version>,<base64>``. A header
    with a malformed entry is refused whole rather than searched for one good entry, so nothing
    passes here that the reference verifiers refuse.
    """
    found: list[bytes] = []
    for entry in header.split(" "):
        version, comma, signature = entry.partition(",")
        if not comma or not version or "," in signature:
            raise BadSignature(f"malformed webhook-signature entry {entry[:16]!r}")
        if version != "v1":
            continue  # a scheme from a later version of the spec: not ours to judge
        try:
            found.append(base64.b64decode(signature, validate=True))
        except (binascii.Error, ValueError) as exc:
            raise BadSignature("a v1 signature is not base64") from exc
    if not found:
        raise BadSignature("webhook-signature has no v1 signature")
    return found


def _verify_platform(body: bytes, header: str | None, keys: list[bytes]) -> Verified:
    if not header:
        raise MissingHeaders(
            f"{MILLICAST_HEADER} or the webhook-id, webhook-timestamp and webhook-signature "
            "headers are required"
        )
    offered = header.strip().lower().encode()
    matched = 0
    for key in keys:
        expected = b"sha1=" + hmac.new(key, body, hashlib.sha1).hexdigest().encode()
        matched += hmac.compare_digest(expected, offered)
    if not matched:
        raise BadSignature(f"{MILLICAST_HEADER} does not match a secret")
    return Verified("platform", None, None)
