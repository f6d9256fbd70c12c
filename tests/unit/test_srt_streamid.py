"""The SRT streamid as callers send it: the platform's form, raw or percent-encoded, with the
token as hex or in the platform's compressed base64."""

from __future__ import annotations

import base64
from urllib.parse import quote

import pytest

from mediahooks.ingest.streamid import (
    StreamId,
    StreamIdError,
    compose,
    decode_token,
    parse,
    quote_streamid,
    srt_token,
)

TOKEN = "e9d0c1edf727c3c714b4b3ae76458203d53fe806e549ebdfe39b097d58190b24"
# What the platform's documentation computes for it: base64 of the bytes, '+' -> '-',
# '/' -> '_', no padding.
COMPRESSED = "6dDB7fcnw8cUtLOudkWCA9U_6AblSevf45sJfVgZCyQ"


def test_the_platforms_compressed_token_is_url_safe_base64_without_padding() -> None:
    assert srt_token(TOKEN) == COMPRESSED
    assert decode_token(COMPRESSED) == TOKEN


def test_standard_base64_padded_or_not_and_hex_in_any_case_read_the_same() -> None:
    standard = base64.b64encode(bytes.fromhex(TOKEN)).decode()
    assert "=" in standard and "/" in standard
    assert decode_token(standard) == TOKEN
    assert decode_token(standard.rstrip("=")) == TOKEN
    assert decode_token(TOKEN.upper()) == TOKEN


@pytest.mark.parametrize(
    "raw",
    [
        f"cam?t={COMPRESSED}",
        f"cam?t={TOKEN}",
        quote(f"cam?t={COMPRESSED}", safe=""),  # the whole streamid encoded
        f"cam?t={quote(COMPRESSED, safe='')}",  # only the value encoded
        f"cam%3Ft%3D{TOKEN}",
        f"/cam?token={TOKEN}",  # RTMP's key name, a leading slash
    ],
)
def test_raw_and_percent_encoded_forms(raw: str) -> None:
    assert parse(raw) == StreamId("cam", TOKEN)


def test_encryption_priority_and_source_id() -> None:
    found = parse(f"cam?t={COMPRESSED}&e&priority=-2&sourceId=left.1&x=unknown")
    assert found == StreamId("cam", TOKEN, encrypted=True, priority=-2, source_id="left.1")
    assert parse(quote(f"cam?t={TOKEN}&e&priority=3", safe="")).priority == 3


def test_compose_is_what_parse_reads() -> None:
    sid = compose("cam", TOKEN, encrypted=True)
    assert sid == f"cam?t={COMPRESSED}&e"
    assert parse(quote_streamid(sid)) == StreamId("cam", TOKEN, encrypted=True)
    assert "?" not in quote_streamid(sid) and "&" not in quote_streamid(sid)


def test_a_streamid_without_a_token_names_the_stream() -> None:
    assert parse("cam") == StreamId("cam", "")


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("", "no streamid"),
        ("?t=" + TOKEN, "names no stream"),
        ("cam?t=", "empty"),
        ("cam?t=not*base64", "neither hex nor base64"),
        ("cam?t=abcde", "neither hex nor base64"),  # a base64 character too many
        ("cam?t=" + TOKEN + "&priority=high", "priority must be an integer"),
        ("cam?t=" + TOKEN + "&sourceId=a b", "sourceId"),
        ("c" * 600, "longer than 512"),
    ],
)
def test_what_is_not_a_streamid_says_why(raw: str, says: str) -> None:
    with pytest.raises(StreamIdError, match=says):
        parse(raw)
