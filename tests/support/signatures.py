"""Signatures: the platform's test vector (reference §2), its signer and verifier as its docs
describe them (written apart from ours), and the check that a hook we sent verifies under both
schemes."""

from __future__ import annotations

import base64
import hashlib
import hmac

from standardwebhooks.webhooks import Webhook as StandardWebhook

from mediahooks.receiver import verify
from mediahooks.signing import MILLICAST_HEADER

from .receiver import Received

# Reference §2: the exact bytes the platform's test vector signs.
VECTOR_BODY = (
    b'{"type":"media","event":"completed","timestamp":1725260343575,"data":{"mediaAssetId":'
    b'"e0ca421e3ee748629d073b6991d4d93d","tokenId":1187282,"streamName":"test-record-clip",'
    b'"streamId":"dkxfvY/test-record-clip","startTime":1725259874671,"metadata":{},"type":'
    b'"clip","expiration":1733900336143}}'
)

# Its secret, and the signature it gives those bytes.
VECTOR_SECRET = "ZXhhbXBsZS13ZWJob29rLXNlY3JldC1ieXRlcy0wMDA="
VECTOR_SIGNATURE = "sha1=dc7a5a797047d488eac1b296f8916fcdd973d695"


def platform_sign(secret: str, body: bytes) -> str:
    """The platform's signer as its docs describe it (Node's sample, in Python): HMAC-SHA1 of
    the raw body with the base64-decoded secret, lowercase hex, prefixed ``sha1=``."""
    key = base64.b64decode(secret)
    return "sha1=" + hmac.new(key, body, hashlib.sha1).hexdigest()


def assert_signed(got: Received, secret: str, message_id: str) -> None:
    """Both signature schemes verify, the second one with an off-the-shelf verifier."""
    verify(
        got.body,
        {MILLICAST_HEADER: got.headers["X-Millicast-Signature"]},
        secret,
        platform=True,
    )
    assert got.headers["webhook-id"] == message_id
    assert verify(got.body, got.headers, secret).webhook_id == message_id
    StandardWebhook("whsec_" + secret).verify(got.body, got.headers)


def platform_verify(secret: str, raw_body: bytes, header: str) -> bool:
    """The receiver algorithm exactly as the platform documents it, written independently of
    ours: sign the raw body, compare in constant time."""
    return hmac.compare_digest(platform_sign(secret, raw_body), header)
