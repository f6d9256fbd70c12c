"""HLS playlists parsed and rendered, and segment sniffing against garbage: the pure rules,
no files."""

from __future__ import annotations

import random

import pytest

from mediahooks.media.formats import HEAD_BYTES, sniff
from mediahooks.media.hls import (
    MAX_ENTRIES,
    Entry,
    Playlist,
    PlaylistError,
    parse_playlist,
    render_playlist,
)


def test_program_date_time_follows_on_by_cumulated_durations() -> None:
    text = "\n".join(
        [
            "#EXTM3U",
            "#EXT-X-TARGETDURATION:2",
            "#EXT-X-MEDIA-SEQUENCE:7",
            "#EXTINF:0.5,",
            "a.ts",
            "#EXTINF:1.5,",
            "#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:00.000Z",
            "b.ts",
            "#EXTINF:0.333333,",
            "c.ts",
            "#EXTINF:0.333333,",
            "d.ts",
            "#EXTINF:0.333334,",
            "e.ts",
            "#EXT-X-DISCONTINUITY",
            "#EXTINF:1.0,",
            "#EXT-X-PROGRAM-DATE-TIME:2026-01-01T01:00:00+01:00",
            "f.ts",
            "#EXTINF:1.0,",
            "g.ts",
        ]
    )
    playlist = parse_playlist(text)
    midnight = 1_767_225_600_000
    assert [entry.program_date_time for entry in playlist.entries] == [
        midnight - 500,  # before the first tag: extrapolated backward
        midnight,
        midnight + 1500,
        midnight + 1833,  # from the sum of the durations, not the sum of rounded steps
        midnight + 2167,
        midnight,  # its own tag again, in another time zone
        midnight + 1000,
    ]
    assert [entry.discontinuity for entry in playlist.entries] == [False] * 5 + [True, False]
    assert playlist.media_sequence == 7


def test_render_round_trip() -> None:
    playlist = Playlist(
        entries=[
            Entry("index0.m4s", 1.0, 1_767_225_600_000),
            Entry("index1.m4s", 0.966667, 1_767_225_601_000),
            Entry("index2.m4s", 2.0, 1_767_225_700_123, discontinuity=True),
        ],
        map_uri="init.mp4",
        media_sequence=12,
        target_duration=2.0,
        ended=True,
    )
    text = render_playlist(playlist)
    assert text.startswith("#EXTM3U\n#EXT-X-VERSION:7\n")
    assert '#EXT-X-MAP:URI="init.mp4"' in text
    assert "#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:01:40.123Z" in text
    assert parse_playlist(text) == playlist


def test_render_keeps_the_target_duration_valid() -> None:
    # RFC 8216: no EXTINF, rounded, may exceed the (integer) target duration.
    text = render_playlist(Playlist(entries=[Entry("a.ts", 2.6)], target_duration=1.0))
    assert "#EXT-X-TARGETDURATION:3\n" in text
    assert "#EXT-X-ENDLIST" not in text


@pytest.mark.parametrize("uri", ["a\nb.ts", "#a.ts", "", " a.ts"])
def test_render_refuses_uris_that_would_break_the_playlist(uri: str) -> None:
    with pytest.raises(PlaylistError, match="cannot be written"):
        render_playlist(Playlist(entries=[Entry(uri, 1.0)], target_duration=1))


HEAD = "#EXTM3U\n#EXT-X-TARGETDURATION:1\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "first line is not #EXTM3U"),
        ("<html><body>502 Bad Gateway</body></html>", "first line is not #EXTM3U"),
        ('{"segments": []}', "first line is not #EXTM3U"),
        ("#EXTINF:1.0,\na.ts\n", "first line is not #EXTM3U"),
        (HEAD + "#EXTINF:abc,\na.ts\n", r"line 3: EXTINF duration 'abc' is not a number"),
        (HEAD + "#EXTINF:-1,\na.ts\n", "'-1' is not a number of seconds"),
        (HEAD + "#EXTINF:nan,\na.ts\n", "'nan' is not a number of seconds"),
        (HEAD + "#EXTINF:inf,\na.ts\n", "'inf' is not a number of seconds"),
        (HEAD + "#EXTINF:1e3,\na.ts\n", "'1e3' is not a number of seconds"),
        (HEAD + "#EXTINF:86400.0,\na.ts\n", "86400.0 s is over 600 s"),
        (HEAD + "#EXTINF:1.0,\n", "line 3: EXTINF without a segment URI"),
        (HEAD + "#EXTINF:1.0,\n#EXTINF:1.0,\na.ts\n", "line 4: a second EXTINF"),
        (HEAD + "a.ts\n", "line 3: segment 'a.ts' has no EXTINF"),
        ("#EXTM3U\n#EXTINF:1.0,\na.ts\n", "EXT-X-TARGETDURATION is missing"),
        ("#EXTM3U\n#EXT-X-TARGETDURATION:x\n", "EXT-X-TARGETDURATION 'x' is not a number"),
        (HEAD + "#EXT-X-MEDIA-SEQUENCE:-3\n", "EXT-X-MEDIA-SEQUENCE '-3' is not a count"),
        (
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000\nlow/index.m3u8\n",
            "a master playlist",
        ),
        (HEAD + "#EXTINF:1.0,\n#EXT-X-BYTERANGE:1000@0\na.ts\n", "byte-range segments"),
        (HEAD + '#EXT-X-KEY:METHOD=AES-128,URI="k"\n', "encrypted segments"),
        (HEAD + '#EXT-X-MAP:URI="init.mp4",BYTERANGE="800@0"\n', "byte-range init"),
        (HEAD + "#EXT-X-MAP:URI=init.mp4\n", "EXT-X-MAP has no quoted URI"),
        (HEAD + '#EXT-X-MAP:URI="a.mp4"\n#EXT-X-MAP:URI="b.mp4"\n', "a second, different"),
        (
            HEAD + "#EXTINF:1.0,\n#EXT-X-PROGRAM-DATE-TIME:yesterday\na.ts\n",
            "line 4: EXT-X-PROGRAM-DATE-TIME 'yesterday' is not an ISO 8601 date",
        ),
    ],
)
def test_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(PlaylistError, match=message):
        parse_playlist(text)


def test_too_many_entries() -> None:
    body = "#EXTINF:1.0,\na.ts\n" * (MAX_ENTRIES + 1)
    with pytest.raises(PlaylistError, match=f"more than {MAX_ENTRIES} segments"):
        parse_playlist(HEAD + body)
    assert len(parse_playlist(HEAD + "#EXTINF:1.0,\na.ts\n" * MAX_ENTRIES).entries) == MAX_ENTRIES


def test_tolerated_variations() -> None:
    text = (
        "\ufeff#EXTM3U\r\n#EXT-X-VERSION:3\r\n#EXT-X-TARGETDURATION:1\r\n"
        "# a comment\r\n#EXT-X-INDEPENDENT-SEGMENTS\r\n#EXT-X-KEY:METHOD=NONE\r\n\r\n"
        "#EXTINF:1,title, with comma\r\n#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:00\r\n"
        "a.ts\r\n"
    )
    playlist = parse_playlist(text)
    assert playlist.entries == [Entry("a.ts", 1.0, 1_767_225_600_000)]  # no zone: UTC


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("empty", b""),
        ("text", b"hello, this is not a video\n" * 100),
        ("html", b"<!DOCTYPE html><html><body>404 Not Found</body></html>"),
        ("png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(2000)),
        ("zeros", bytes(4000)),
        ("one sync byte", b"\x47" + bytes(3000)),
        ("sync bytes off the 188 grid", (b"\x47" + bytes(186)) * 20),
        ("m2ts (192-byte packets)", (bytes(4) + b"\x47" + bytes(187)) * 20),
        ("box with a short size", b"\x00\x00\x00\x04moof" + bytes(2000)),
        ("box type not ASCII", b"\x00\x00\x00\x10\xff\xfe\x00\x01" + bytes(2000)),
        ("ftyp then mdat", b"\x00\x00\x00\x10ftypisom\x00\x00\x02\x00\x00\x00\x00\x08mdat"),
    ],
)
def test_sniff_garbage(name: str, body: bytes) -> None:
    assert sniff(body) is None, name


def test_sniff_random_bytes() -> None:
    generator = random.Random(7)
    for _ in range(2000):
        assert sniff(generator.randbytes(HEAD_BYTES)) is None
