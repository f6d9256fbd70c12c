"""The stream publisher: real media out of PyAV, pushed over real HTTP.

The segments are opened and decoded with PyAV as a player would; the pushes are received by a
real aiohttp server on an ephemeral port that records each request.
"""

from __future__ import annotations

import asyncio
import io
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import pytest
from aiohttp import web

from mediahooks.clock import now_ms
from mediahooks.media.hls import Playlist, parse_playlist
from mediahooks.media.publisher import PublishError, PublishReport, publish
from mediahooks.media.segmenter import Cutter, SegmentKind, starts_segment
from mediahooks.media.synthetic import SegmentFile, iter_file_segments, iter_segments

SMALL = {"width": 160, "height": 96, "fps": 15}
START_MS = 1_700_000_000_000


# --- the media -------------------------------------------------------------------------------


@dataclass
class Probe:
    """What a player finds in some bytes of media."""

    codecs: set[str]
    video_times: list[Fraction]  # presentation times of the video packets, in order
    first_video_key: bool
    decoded_frames: int
    audio_seconds: float


def probe(data: bytes) -> Probe:
    with av.open(io.BytesIO(data), "r") as container:
        codecs = {stream.codec_context.name for stream in container.streams}
        video_times: list[Fraction] = []
        first_key, frames, audio = False, 0, 0.0
        for packet in container.demux():
            if packet.pts is None:
                continue  # the flush packets at the end
            if packet.stream.type == "video":
                if not video_times:
                    first_key = packet.is_keyframe
                video_times.append(packet.pts * packet.time_base)
                frames += len(packet.decode())
            elif packet.stream.type == "audio":
                audio += packet.duration * packet.time_base if packet.duration else 0
        return Probe(codecs, video_times, first_key, frames, float(audio))


def span(times: list[Fraction], fps: int) -> float:
    return float(times[-1] - times[0] + Fraction(1, fps))


def test_segment_starts_follow_the_segment_length() -> None:
    starts = [n for n in range(60) if starts_segment(n, 25, Fraction(3, 10))]
    # 0.3 s at 25 fps is 7.5 frames: each segment starts on the first frame at or after k*0.3 s.
    assert starts == [0, 8, 15, 23, 30, 38, 45, 53]


def test_audio_joins_its_segment_even_when_it_comes_late() -> None:
    cutter: Cutter[str] = Cutter(Fraction(1))
    assert cutter.add_video("v0", Fraction(0), keyframe=True) == []
    assert cutter.add_audio("a-priming", Fraction(-2, 100)) == []
    assert cutter.add_video("v-key-not-due", Fraction(1, 2), keyframe=True) == []
    assert cutter.add_video("v1", Fraction(1), keyframe=True) == []
    # Audio before the cut still belongs to segment 0, which waits for it...
    assert cutter.add_audio("a0", Fraction(98, 100)) == []
    # ...until audio past the cut shows that nothing more of it can come.
    [first] = cutter.add_audio("a1", Fraction(101, 100))
    assert (first.start, first.end) == (Fraction(0), Fraction(1))
    assert first.items == ["v0", "v-key-not-due", "a-priming", "a0"]
    cutter.add_video("v2", Fraction(2), keyframe=True)
    cutter.add_audio("a2", Fraction(199, 100))
    second, third = cutter.finish(Fraction(3))
    assert (second.items, third.items) == (["v1", "a1", "a2"], ["v2"])
    assert (third.start, third.end) == (Fraction(2), Fraction(3))


def test_ts_segments_each_play_alone_and_follow_on() -> None:
    segments = list(iter_segments(3, "ts", **SMALL))

    assert [s.name for s in segments] == ["index0.ts", "index1.ts", "index2.ts"]
    starts = []
    for segment in segments:
        found = probe(segment.data)
        assert found.codecs == {"h264", "aac"}
        assert found.first_video_key, segment.name
        assert found.decoded_frames == SMALL["fps"], segment.name  # decodable on its own
        assert segment.duration == pytest.approx(1.0)
        assert span(found.video_times, SMALL["fps"]) == pytest.approx(1.0)
        assert found.audio_seconds == pytest.approx(1.0, abs=0.05)
        starts.append(found.video_times[0])
    # One timeline across the files: each starts where the one before ended.
    assert [float(t - starts[0]) for t in starts] == [0.0, 1.0, 2.0]


def test_fmp4_segments_follow_their_init_segment() -> None:
    segments = list(iter_segments(3, "fmp4", **SMALL))

    assert [s.name for s in segments] == ["init.mp4", "index0.m4s", "index1.m4s", "index2.m4s"]
    init, media = segments[0], segments[1:]
    assert init.duration == 0 and init.is_init
    assert init.data[4:8] == b"ftyp"
    for segment in media:
        assert segment.data[4:8] == b"moof"
        found = probe(init.data + segment.data)
        assert found.codecs == {"h264", "aac"}
        assert found.first_video_key, segment.name
        assert found.decoded_frames == SMALL["fps"], segment.name
        assert segment.duration == pytest.approx(1.0)
    whole = probe(init.data + b"".join(s.data for s in media))
    assert whole.decoded_frames == 3 * SMALL["fps"]
    assert span(whole.video_times, SMALL["fps"]) == pytest.approx(3.0)
    assert whole.audio_seconds == pytest.approx(3.0, abs=0.05)


@pytest.mark.parametrize(("kind", "length"), [("ts", 0.5), ("fmp4", 2.0)])
def test_other_segment_lengths(kind: SegmentKind, length: float) -> None:
    produced = list(iter_segments(4, kind, segment_seconds=length, **SMALL))
    init = produced[0].data if kind == "fmp4" else b""
    segments = [s for s in produced if not s.is_init]

    assert len(segments) == round(4 / length)
    assert sum(s.duration for s in segments) == pytest.approx(4.0)
    for segment in segments:
        found = probe(init + segment.data)
        assert found.first_video_key
        # A segment starts on the first picture at or after its time: within a picture of it.
        assert segment.duration == pytest.approx(length, abs=1 / SMALL["fps"])
        assert span(found.video_times, SMALL["fps"]) == pytest.approx(segment.duration)


def test_a_file_is_re_encoded_into_segments(tmp_path: Path) -> None:
    # A file with video and audio: our own fMP4 output, joined, is an MP4 file.
    source = tmp_path / "source.mp4"
    source.write_bytes(b"".join(s.data for s in iter_segments(2.4, "fmp4", **SMALL)))

    segments = list(iter_file_segments(source, "ts"))

    assert [s.name for s in segments] == ["index0.ts", "index1.ts", "index2.ts"]
    assert [s.duration for s in segments] == pytest.approx([1.0, 1.0, 0.4])
    for segment in segments:
        found = probe(segment.data)
        assert found.codecs == {"h264", "aac"}
        assert found.first_video_key


def test_a_file_without_audio_gets_silence_and_can_loop(tmp_path: Path) -> None:
    source = tmp_path / "silent.mp4"
    with av.open(str(source), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height = 96, 64
        for index in range(12):  # 1.2 s
            frame = av.VideoFrame(96, 64, "yuv420p")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))

    segments = list(iter_file_segments(source, "fmp4", loop=True, seconds=3))

    init, media = segments[0], segments[1:]
    assert sum(s.duration for s in media) == pytest.approx(3.0)
    whole = probe(init.data + b"".join(s.data for s in media))
    assert whole.codecs == {"h264", "aac"}
    assert whole.decoded_frames == 30
    assert whole.audio_seconds == pytest.approx(3.0, abs=0.05)


# --- the publishing --------------------------------------------------------------------------


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic()

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    def playlist(self) -> Playlist:
        return parse_playlist(self.body.decode())


Answer = Callable[[web.Request], Awaitable[web.Response]]


@dataclass
class Ingest:
    """A stand-in ingest endpoint: records every request, answers 201 unless told otherwise."""

    url: str = ""
    requests: list[Request] = field(default_factory=list)
    answer: Answer | None = None
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append(
            Request(request.method, request.path, dict(request.headers), body, time.monotonic())
        )
        self.arrived.set()
        if self.answer is not None:
            return await self.answer(request)
        return web.Response(status=201)

    def playlists(self) -> list[Playlist]:
        return [r.playlist() for r in self.requests if r.name == "index.m3u8"]


@pytest.fixture
async def ingest() -> AsyncIterator[Ingest]:
    endpoint = Ingest()
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", endpoint.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    endpoint.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield endpoint
    await runner.cleanup()


def fake_segments(count: int, duration: float = 1.0) -> list[SegmentFile]:
    # The publisher does not look inside the files: any bytes will do where media is not tested.
    return [SegmentFile(f"index{i}.ts", b"segment %d" % i, duration) for i in range(count)]


async def test_ts_stream_is_pushed_segment_then_playlist(ingest: Ingest) -> None:
    segments = list(iter_segments(3, "ts", **SMALL))

    report = await publish(f"{ingest.url}/ingest/cam1", "tok", segments, False, START_MS)

    names = [r.name for r in ingest.requests]
    assert names == [
        "index0.ts",
        "index.m3u8",
        "index1.ts",
        "index.m3u8",
        "index2.ts",
        "index.m3u8",
        "index.m3u8",
    ]
    assert {r.method for r in ingest.requests} == {"PUT"}
    assert {r.path.rsplit("/", 1)[0] for r in ingest.requests} == {"/ingest/cam1"}
    assert {r.headers["Authorization"] for r in ingest.requests} == {"Bearer tok"}
    assert [r.headers["Content-Type"] for r in ingest.requests[:2]] == [
        "video/mp2t",
        "application/vnd.apple.mpegurl",
    ]
    assert [r.body for r in ingest.requests if r.name.endswith(".ts")] == [s.data for s in segments]
    playlists = ingest.playlists()
    assert [p.ended for p in playlists] == [False, False, False, True]
    last = playlists[-1]
    assert last.map_uri is None and last.media_sequence == 0
    assert [e.uri for e in last.entries] == ["index0.ts", "index1.ts", "index2.ts"]
    assert [e.program_date_time for e in last.entries] == [
        START_MS,
        START_MS + 1000,
        START_MS + 2000,
    ]
    assert [e.duration for e in last.entries] == pytest.approx([1.0, 1.0, 1.0])
    playlist_bytes = sum(len(r.body) for r in ingest.requests if r.name == "index.m3u8")
    assert report == PublishReport(
        segments=3,
        bytes=sum(len(s.data) for s in segments) + playlist_bytes,
        first_ms=START_MS,
        last_ms=START_MS + 3000,
    )


async def test_fmp4_stream_with_the_token_in_the_path(ingest: Ingest) -> None:
    segments = list(iter_segments(2, "fmp4", **SMALL))

    await publish(f"{ingest.url}/ingest/t/tok/cam1", "tok", segments, False, START_MS)

    assert [r.name for r in ingest.requests] == [
        "init.mp4",
        "index0.m4s",
        "index.m3u8",
        "index1.m4s",
        "index.m3u8",
        "index.m3u8",
    ]
    assert {r.path.rsplit("/", 1)[0] for r in ingest.requests} == {"/ingest/t/tok/cam1"}
    assert not any("Authorization" in r.headers for r in ingest.requests)
    assert ingest.requests[0].headers["Content-Type"] == "video/mp4"
    assert ingest.requests[0].body == segments[0].data
    playlists = ingest.playlists()
    assert {p.map_uri for p in playlists} == {"init.mp4"}
    assert [e.program_date_time for e in playlists[-1].entries] == [START_MS, START_MS + 1000]
    assert playlists[-1].ended


async def test_the_playlist_slides_over_the_last_six_segments(ingest: Ingest) -> None:
    async def produced() -> AsyncIterator[SegmentFile]:
        for segment in fake_segments(9, duration=2.0):
            yield segment

    seen: list[PublishReport] = []
    report = await publish(
        f"{ingest.url}/ingest/cam1", None, produced(), False, START_MS, seen.append
    )

    last = ingest.playlists()[-1]
    assert last.media_sequence == 3
    assert [e.uri for e in last.entries] == [f"index{i}.ts" for i in range(3, 9)]
    assert [e.program_date_time for e in last.entries] == [START_MS + 2000 * i for i in range(3, 9)]
    assert last.target_duration == 2
    assert not any("Authorization" in r.headers for r in ingest.requests)
    assert [r.segments for r in seen] == list(range(1, 10))
    assert report.last_ms == START_MS + 18_000


async def test_realtime_sends_each_segment_once_it_has_happened(ingest: Ingest) -> None:
    started = time.monotonic()

    report = await publish(
        f"{ingest.url}/ingest/cam1", "tok", iter_segments(3, "ts", **SMALL), True
    )

    assert time.monotonic() - started >= 2.5
    assert report.segments == 3
    assert report.first_ms is not None and report.last_ms is not None
    assert report.last_ms - report.first_ms == 3000
    assert report.last_ms <= now_ms()


async def test_a_refusal_raises_with_the_servers_message(ingest: Ingest) -> None:
    async def refuse(request: web.Request) -> web.Response:
        body = {"status": "fail", "data": {"message": "unknown publish token"}}
        return web.json_response(body, status=401)

    ingest.answer = refuse

    with pytest.raises(PublishError) as caught:
        await publish(f"{ingest.url}/ingest/cam1", "bad", fake_segments(3), False, START_MS)

    assert caught.value.status == 401
    assert caught.value.message == "unknown publish token"
    assert len(ingest.requests) == 1


async def test_a_server_error_and_no_server_raise_too(ingest: Ingest) -> None:
    async def crash(request: web.Request) -> web.Response:
        return web.Response(status=503, text="down for maintenance")

    ingest.answer = crash
    with pytest.raises(PublishError) as caught:
        await publish(f"{ingest.url}/ingest/cam1", "tok", fake_segments(1), False)
    assert (caught.value.status, caught.value.message) == (503, "down for maintenance")

    with pytest.raises(PublishError) as caught:
        await publish("http://127.0.0.1:9/ingest/cam1", "tok", fake_segments(1), False)
    assert caught.value.status is None


async def test_a_stopped_publisher_ends_the_stream(ingest: Ingest) -> None:
    async def endless() -> AsyncIterator[SegmentFile]:
        index = 0
        while True:
            yield SegmentFile(f"index{index}.ts", b"data", 0.2)
            index += 1

    task = asyncio.create_task(publish(f"{ingest.url}/ingest/cam1", "tok", endless(), True))
    while len(ingest.playlists()) < 2:
        await asyncio.wait_for(ingest.arrived.wait(), 5)
        ingest.arrived.clear()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    last = ingest.requests[-1]
    assert last.name == "index.m3u8" and last.playlist().ended


async def test_a_publisher_stopped_while_encoding_ends_the_stream(ingest: Ingest) -> None:
    def slow() -> Iterator[SegmentFile]:
        for index in range(3):
            time.sleep(0.3)  # encoding, in a worker thread
            yield SegmentFile(f"index{index}.ts", b"data", 1.0)

    task = asyncio.create_task(publish(f"{ingest.url}/ingest/cam1", "tok", slow(), False))
    await asyncio.wait_for(ingest.arrived.wait(), 5)
    while not ingest.playlists():
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert [r.name for r in ingest.requests] == ["index0.ts", "index.m3u8", "index.m3u8"]
    assert ingest.requests[-1].playlist().ended


# --- the command -----------------------------------------------------------------------------


async def test_publish_command_backdates_a_fast_stream(ingest: Ingest) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mediahooks",
        "publish",
        "--server",
        ingest.url,
        "--token",
        "tok",
        "--seconds",
        "3",
        "--segment-type",
        "fmp4",
        "--fast",
        "cam1",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "200"},
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)

    assert process.returncode == 0, output.decode()
    assert [r.name for r in ingest.requests][:2] == ["init.mp4", "index0.m4s"]
    assert {r.headers["Authorization"] for r in ingest.requests} == {"Bearer tok"}
    last = ingest.playlists()[-1]
    assert last.ended and len(last.entries) == 3
    # The whole stream lies in the past: it ended a second before it was sent.
    first_ms = last.entries[0].program_date_time
    assert first_ms is not None and first_ms + 3000 <= now_ms() - 1000
    assert "3 segments" in output.decode()
