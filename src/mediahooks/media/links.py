"""Signed, expiring download links (pure): the link itself is the credential, so a receiver can
fetch a file without the API secret, and only until the link expires."""

from __future__ import annotations

import hashlib
import hmac


def signature(key: bytes, asset_id: str, expires_ms: int) -> str:
    return hmac.new(key, f"{asset_id}.{expires_ms}".encode(), hashlib.sha256).hexdigest()


def refusal(key: bytes, asset_id: str, expires_ms: int, sig: str, now_ms: int) -> str | None:
    """Why a link may not be used, or None."""
    # Compared as bytes: compare_digest refuses str with characters beyond ASCII.
    expected = signature(key, asset_id, expires_ms).encode()
    if not hmac.compare_digest(expected, sig.encode(errors="replace")):
        return "This download link is not valid."
    if expires_ms <= now_ms:
        return "This download link has expired: read the asset again for a new one."
    return None
