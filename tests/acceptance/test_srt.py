"""SRT publishing end to end: real callers (the ffmpeg command line and GStreamer's srtsink)
send MPEG-TS to the server's SRT door on 127.0.0.1, routed by their streamid; clips and
recordings are cut from what they sent, hooks reach a real receiver, files are read back with
PyAV and ffprobe. Both databases."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import signal
import socket
import struct
import time
from pathlib import Path
from urllib.parse import quote

import av
import pytest

from mediahooks.clock import iso
from mediahooks.ingest.streamid import srt_token
from support.live import (
    BOTH,
    GOP,
    Publisher,
    broadcasts_of,
    coverage,
    feeds_of,
    probe,
    recorded,
    refusals,
    segments_of,
    srt_ffmpeg,
    srt_url,
    subscribe,
)
from support.media import fetch, hooks_for, token
from support.receiver import Receiver
from support.server import Api, ApiFactory
from support.waiting import eventually

pytestmark = pytest.mark.slow

PASSPHRASE = "correct horse battery"  # printable, spaces refused: see below
SECRET = "correct-horse-battery"


def gstreamer(port: int, streamid: str, seconds: float, passphrase: str | None = None) -> list[str]:
    """GStreamer's own SRT caller (srtsink), the streamid given raw as its property."""
    frames, audio_buffers = int(seconds * 30), int(seconds * 48000 / 1024)
    secret = [f"passphrase={passphrase}", "pbkeylen=16"] if passphrase else []
    return [
        "gst-launch-1.0", "-q",
        "videotestsrc", "is-live=true", f"num-buffers={frames}", "!",
        "video/x-raw,width=640,height=360,framerate=30/1", "!",
        "x264enc", "key-int-max=30", "bframes=0", "tune=zerolatency", "speed-preset=ultrafast", "!",
        "h264parse", "!", "mpegtsmux", "name=mux", "alignment=7", "!",
        "srtsink", f"uri=srt://127.0.0.1:{port}", "mode=caller", f"streamid={streamid}",
        "wait-for-connection=false", *secret,
        "audiotestsrc", "is-live=true", f"num-buffers={audio_buffers}",
        "samplesperbuffer=1024", "!",
        "audioconvert", "!", "audio/x-raw,rate=48000,channels=2", "!",
        "avenc_aac", "!", "aacparse", "!", "mux.",
    ]  # fmt: skip


async def test_two_callers_at_once_ffmpeg_and_gstreamer_a_clip_a_recording_and_feeds(
    api: Api, receiver: Receiver, tmp_path: Path
) -> None:
    """ffmpeg sends the platform's streamid (compressed token, percent-encoded whole);
    GStreamer sends the hex token raw. A clip of one, a recording of the other."""
    await subscribe(api, receiver)
    clipper = await token(api, "left")
    recorder = await token(api, "right", record=True)
    assert api.service.srt is not None
    left = await Publisher.start(
        srt_ffmpeg(srt_url(api, f"left?t={srt_token(clipper['token'])}"), 12)
    )
    right = await Publisher.start(
        gstreamer(api.service.srt.port, f"right?t={recorder['token']}", 12)
    )
    assert (await left.finish())[0] == 0
    code, err = await right.finish()
    assert code == 0, err

    lo, hi = await coverage(api, "left")
    assert 11_000 <= hi - lo <= 13_000
    body = {"streamName": "left", "startTime": iso(lo + 1_000), "stopTime": iso(lo + 11_000)}
    (clip,) = await api.ok("POST", "/api/v3/media/assets", body)
    assert await hooks_for(receiver, "/media", clip["id"], 2) == ["processing", "completed"]
    clip = await api.ok("GET", f"/api/v3/media/assets/{clip['id']}")
    status, data, _ = await fetch(clip["download"]["downloadUrl"])
    assert status == 200
    with av.open(io.BytesIO(data), "r") as container:  # PyAV reads what was cut, frame by frame
        video = container.streams.video[0]
        assert (video.codec_context.name, video.width, video.height) == ("h264", 640, 360)
        assert container.streams.audio[0].codec_context.name == "aac"
        frames = sum(1 for _ in container.decode(video=0))
    assert 10 * 30 - 3 <= frames <= (10 + GOP) * 30 + 3  # the start snaps back to a keyframe

    duration, codecs = await probe(await recorded(api, receiver, recorder), tmp_path)
    assert codecs == BOTH
    assert abs(duration - 12) <= GOP + 0.5

    async def ended() -> bool:
        return all(feeds_of(receiver, s) == ["started", "ended"] for s in ("left", "right"))

    await eventually(ended)


async def test_a_passphrase_token_takes_callers_encrypting_with_it_and_no_others(
    api: Api, receiver: Receiver, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "mediahooks.srt")
    await subscribe(api, receiver)
    tok = await api.ok(
        "POST",
        "/api/publish_token",
        {"label": "enc", "streams": [{"streamName": "enc"}], "record": True,
         "srtPassphrase": SECRET},
    )  # fmt: skip
    assert tok["srtPassphrase"] == SECRET and tok["displaySrtPassphrase"] is True
    given = tok["publish"]["srt"]
    assert given["streamId"] == f"enc?t={srt_token(tok['token'])}&e"
    assert given["passphrase"] == SECRET

    wrong = await Publisher.start(
        srt_ffmpeg(srt_url(api, given["streamId"], "not-the-passphrase"), 3)
    )
    missing = await Publisher.start(srt_ffmpeg(given["url"], 3))
    assert (await wrong.finish(20))[0] != 0
    assert (await missing.finish(20))[0] != 0

    async def both_logged() -> bool:
        said = [r for r in refusals(caplog) if "'enc'" in r and "passphrase" in r]
        return len(said) >= 2

    await eventually(both_logged, timeout=10)
    assert await broadcasts_of(api, "enc") == []

    right = await Publisher.start(srt_ffmpeg(srt_url(api, given["streamId"], SECRET), 4))
    code, err = await right.finish()
    assert code == 0, err
    duration, codecs = await probe(await recorded(api, receiver, tok), tmp_path)
    assert codecs == BOTH and abs(duration - 4) <= GOP + 0.5

    # A passphrase on a token without one is refused too (libsrt enforces both ways).
    plain = await token(api, "plain")
    sid = f"plain?t={plain['token']}"
    code, _ = await (await Publisher.start(srt_ffmpeg(srt_url(api, sid, SECRET), 3))).finish(20)
    assert code != 0
    assert await broadcasts_of(api, "plain") == []


async def test_wrong_token_stream_and_streamid_are_refused_with_the_reason(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "mediahooks.srt")
    tok = await token(api, "cam")
    attempts = {
        "token": "cam?t=" + "ab" * 32,
        "stream": f"other?t={tok['token']}",
        "missing": "cam",
        "name": f"bad name?t={tok['token']}",
        "malformed": "cam?t=%%%",
    }
    publishers = {
        k: await Publisher.start(srt_ffmpeg(srt_url(api, s), 3)) for k, s in attempts.items()
    }
    results = {k: await p.finish(timeout=20) for k, p in publishers.items()}
    assert all(code != 0 for code, _ in results.values()), results
    said = refusals(caplog)
    assert any("unknown publish token" in r and "'cam'" in r and "127.0.0.1:" in r for r in said)
    assert any("may not publish the stream 'other'" in r for r in said)
    assert any("no publish token" in r for r in said)
    assert any("is not a stream name" in r for r in said)
    assert any("neither hex nor base64" in r for r in said)
    assert await broadcasts_of(api, "cam") == [] and await broadcasts_of(api, "other") == []


async def test_a_token_deleted_after_the_copy_was_made_is_refused_by_the_database(
    api_factory: ApiFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """The listen callback decides from an in-memory copy of the tokens (read again only
    hourly here); the database has the last word after the handshake."""
    caplog.set_level(logging.INFO, "mediahooks.srt")
    api = await api_factory(srt_token_refresh=3600)
    tok = await token(api, "cam")
    await api.ok("DELETE", f"/api/publish_token/{tok['id']}")
    assert api.service.known_tokens.get(tok["token"]) is not None  # the copy still has it
    code, _ = await (
        await Publisher.start(srt_ffmpeg(srt_url(api, f"cam?t={tok['token']}"), 3))
    ).finish(20)
    assert code != 0
    assert any("unknown publish token" in r and "'cam'" in r for r in refusals(caplog))
    assert await broadcasts_of(api, "cam") == []


def induction(socket_id: int) -> bytes:
    """The first packet of an SRT caller's handshake (a control packet, type 0: handshake;
    INDUCTION, version 4): what a half-open caller sends before it goes silent."""
    header = struct.pack("!IIII", 0x8000_0000, 0, 0, 0)
    body = struct.pack("!IHHIIIiII", 4, 0, 2, 1234, 1500, 8192, 1, socket_id, 0) + bytes(16)
    return header + body


async def test_a_stream_already_live_is_refused_and_the_live_one_goes_on(
    api: Api, receiver: Receiver, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "mediahooks.srt")
    await subscribe(api, receiver)
    tok = await token(api, "cam", record=True)
    url = srt_url(api, f"cam?t={srt_token(tok['token'])}")
    live = await Publisher.start(srt_ffmpeg(url, 8))

    async def segmented() -> bool:
        return await segments_of(api, "cam") >= 2

    await eventually(segmented)
    # Garbage, and a handshake begun and never finished, on the same port.
    assert api.service.srt is not None
    door = ("127.0.0.1", api.service.srt.port)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.settimeout(5)
        for _ in range(50):
            udp.sendto(os.urandom(1316), door)
        udp.sendto(b"GET / HTTP/1.1\r\n\r\n", door)
        udp.sendto(induction(0x1234), door)
        answer, _ = udp.recvfrom(2048)  # the listener answers the induction, then waits
        assert answer[0] & 0x80 and len(answer) >= 64
    code, _ = await (await Publisher.start(srt_ffmpeg(url, 3))).finish(timeout=20)
    assert code != 0
    assert any("already live" in r and "'cam'" in r for r in refusals(caplog))
    assert (await live.finish())[0] == 0
    duration, codecs = await probe(await recorded(api, receiver, tok), tmp_path)
    assert codecs == BOTH and abs(duration - 8) <= GOP + 0.5
    assert len(await broadcasts_of(api, "cam")) == 1
    assert feeds_of(receiver, "cam") == ["started", "ended"]


async def test_three_callers_at_once(api: Api, receiver: Receiver, tmp_path: Path) -> None:
    await subscribe(api, receiver)
    toks = {s: await token(api, s, record=True) for s in ("a", "b", "c")}
    callers = [
        await Publisher.start(srt_ffmpeg(srt_url(api, f"{s}?t={srt_token(t['token'])}"), 5))
        for s, t in toks.items()
    ]
    results = await asyncio.gather(*(c.finish() for c in callers))
    assert all(code == 0 for code, _ in results), results
    for tok in toks.values():
        duration, codecs = await probe(await recorded(api, receiver, tok), tmp_path)
        assert codecs == BOTH and abs(duration - 5) <= GOP + 0.5
    assert all(feeds_of(receiver, s) == ["started", "ended"] for s in toks)


async def test_the_token_answer_and_its_passphrase_field(api: Api) -> None:
    tok = await token(api, "cam")
    assert tok["srtPassphrase"] is None and tok["displaySrtPassphrase"] is False
    given = tok["publish"]["srt"]
    assert api.service.srt is not None
    server = f"srt://127.0.0.1:{api.service.srt.port}"
    assert given["server"] == server and given["streamId"] == f"cam?t={srt_token(tok['token'])}"
    assert given["url"] == f"{server}?streamid={quote(given['streamId'], safe='')}"
    assert "passphrase" not in given
    path = f"/api/publish_token/{tok['id']}"
    made = await api.ok("PUT", path, {"displaySrtPassphrase": True})
    assert made["displaySrtPassphrase"] is True and len(made["srtPassphrase"]) >= 10
    assert made["publish"]["srt"]["streamId"].endswith("&e")
    kept = await api.ok("PUT", path, {"displaySrtPassphrase": True, "label": "x"})
    assert kept["srtPassphrase"] == made["srtPassphrase"]
    changed = await api.ok("PUT", path, {"srtPassphrase": SECRET})
    assert changed["srtPassphrase"] == SECRET
    assert (await api.ok("PUT", path, {"srtPassphrase": None}))["srtPassphrase"] is None
    await api.ok("PUT", path, {"srtPassphrase": SECRET})
    assert (await api.ok("PUT", path, {"displaySrtPassphrase": False}))["srtPassphrase"] is None
    for bad in ("short", "x" * 80, PASSPHRASE, 12345):
        status, body = await api.call("PUT", path, {"srtPassphrase": bad})
        assert status == 400 and "srtPassphrase" in str(body["data"]["errors"]), body
    status, body = await api.call(
        "PUT", path, {"srtPassphrase": SECRET, "displaySrtPassphrase": False}
    )
    assert status == 400 and "displaySrtPassphrase" in body["data"]["message"] + str(body)


async def test_a_caller_killed_mid_stream_ends_its_broadcast_with_what_it_sent(
    api: Api, receiver: Receiver, tmp_path: Path
) -> None:
    """A killed caller says nothing: libsrt notices its silence (5 s) and the broadcast ends
    with everything up to its last keyframe."""
    await subscribe(api, receiver)
    tok = await token(api, "cam", record=True)
    caller = await Publisher.start(srt_ffmpeg(srt_url(api, f"cam?t={tok['token']}"), 60))

    async def segmented() -> bool:
        return await segments_of(api, "cam") >= 4

    await eventually(segmented, timeout=30)
    caller.process.send_signal(signal.SIGKILL)
    killed = time.time() * 1000
    await caller.process.wait()

    async def ended() -> bool:
        return feeds_of(receiver, "cam") == ["started", "ended"]

    await eventually(ended, timeout=15)
    lo, _ = await coverage(api, "cam")
    duration, codecs = await probe(await recorded(api, receiver, tok), tmp_path)
    assert codecs == BOTH
    sent = (killed - lo) / 1000
    assert sent - 2 * GOP - 0.5 <= duration <= sent + 0.5


async def test_callers_past_the_publisher_limit_are_refused(
    api_factory: ApiFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "mediahooks.srt")
    api = await api_factory(max_publishers=1)
    tok = await token(api, "one", "two")
    live = await Publisher.start(srt_ffmpeg(srt_url(api, f"one?t={tok['token']}"), 6))

    async def segmented() -> bool:
        return await segments_of(api, "one") >= 1

    await eventually(segmented)
    code, _ = await (
        await Publisher.start(srt_ffmpeg(srt_url(api, f"two?t={tok['token']}"), 3))
    ).finish(20)
    assert code != 0
    assert any("1 publishers at once" in r and "'two'" in r for r in refusals(caplog))
    assert (await live.finish())[0] == 0
    assert await broadcasts_of(api, "two") == []


async def test_srt_off_leaves_the_door_shut_and_the_answer_without_it(
    api_factory: ApiFactory,
) -> None:
    api = await api_factory(srt_port="off")
    assert api.service.srt is None
    tok = await token(api, "cam")
    assert "srt" not in tok["publish"] and "rtmp" in tok["publish"]
