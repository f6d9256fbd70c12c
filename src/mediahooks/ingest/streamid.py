"""What an SRT caller publishes, and with which token: its `streamid`. Pure.

The platform's form is `<streamName>?t=<token>`, optionally followed by `&e` (the caller
encrypts with the token's passphrase), `&priority=N` and `&sourceId=ID`. Encoders get it
percent-encoded, as a whole (it travels inside an `srt://` URL's own query) or in parts, and
some hand it on still encoded; both are read here.

The token is the publish token's hex string, or the platform's "compressed" SRT token: the same
bytes in URL-safe base64 without padding (`Buffer.from(token, 'hex').toString('base64')` with
`+` → `-`, `/` → `_`, `=` dropped). Standard base64, padded or not, is read too, since people
paste it from other tools.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from urllib.parse import quote, unquote

from mediahooks.errors import Invalid

# The longest streamid SRT carries (SRTO_STREAMID).
MAX_LENGTH = 512
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")
_PRIORITY = re.compile(r"-?[0-9]{1,9}")
_SOURCE_ID = re.compile(r"[A-Za-z0-9._~-]{1,128}")


class StreamIdError(Invalid, ValueError):
    """The streamid cannot be read; the message says what a person should send instead."""


@dataclass(frozen=True)
class StreamId:
    stream: str
    token: str  # the publish token as its hex string ("" when none was given)
    encrypted: bool = False  # `&e`: the caller says it encrypts
    priority: int | None = None
    source_id: str | None = None


def parse(raw: str) -> StreamId:
    """The caller's streamid read; StreamIdError when it is not one."""
    if not raw:
        raise StreamIdError("no streamid: add ?streamid=<streamName>?t=<token> to the SRT URL")
    if len(raw) > MAX_LENGTH:
        raise StreamIdError(f"the streamid is longer than {MAX_LENGTH} characters")
    if "?" not in raw:
        raw = unquote(raw)  # the whole streamid percent-encoded, `?` included
    name, _, query = raw.partition("?")
    stream = unquote(name).strip("/")
    if not stream:
        raise StreamIdError("the streamid names no stream: send <streamName>?t=<token>")
    token, encrypted, priority, source_id = "", False, None, None
    for part in query.split("&") if query else []:
        key, has_value, value = part.partition("=")
        key, value = unquote(key), unquote(value)
        if key in ("t", "token"):
            token = decode_token(value)
        elif key == "e" and not has_value:
            encrypted = True
        elif key == "priority":
            if not _PRIORITY.fullmatch(value):
                raise StreamIdError(f"priority must be an integer, not {value[:32]!r}")
            priority = int(value)
        elif key == "sourceId":
            if not _SOURCE_ID.fullmatch(value):
                raise StreamIdError("sourceId must be 1-128 letters, digits, '.', '_', '~' or '-'")
            source_id = value
        # Unknown keys are kept out of the way rather than refused: encoders add their own.
    return StreamId(stream, token, encrypted, priority, source_id)


def decode_token(value: str) -> str:
    """The publish token's hex string from either of its SRT forms."""
    if not value:
        raise StreamIdError("the token (t=) is empty: send <streamName>?t=<token>")
    if _HEX.fullmatch(value):
        return value.lower()
    if not _BASE64.fullmatch(value):
        raise StreamIdError("the token (t=) is neither hex nor base64")
    text = value.rstrip("=").replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise StreamIdError("the token (t=) is neither hex nor base64") from None
    if not raw:
        raise StreamIdError("the token (t=) is empty: send <streamName>?t=<token>")
    return raw.hex()


def srt_token(token: str) -> str:
    """The platform's compressed SRT form of a publish token (its hex string)."""
    return base64.urlsafe_b64encode(bytes.fromhex(token)).decode().rstrip("=")


def compose(stream: str, token: str, *, encrypted: bool = False) -> str:
    """The streamid a caller sends for ``stream`` with ``token`` (hex), as the platform makes
    it (not yet percent-encoded: `quote_streamid` does that for a URL)."""
    out = f"{stream}?t={srt_token(token)}"
    return out + "&e" if encrypted else out


def quote_streamid(streamid: str) -> str:
    """The streamid percent-encoded whole, ready for `srt://HOST:PORT?streamid=`."""
    return quote(streamid, safe="")
