"""The live path's thread side, without a network or a database: container bytes through the
bounded pipe into PyAV, MPEG-TS segments out, cut at keyframes, timed, each playable alone."""

from __future__ import annotations

import asyncio
import io
import subprocess
from pathlib import Path

import av
import pytest

from mediahooks.clock import now_ms
from mediahooks.ingest.remux import Piece, Pipe, Remuxer
from support.mediakit import lavfi_input


def encode(tmp_path: Path, container: str, *args: str, seconds: float = 3) -> bytes:
    out = tmp_path / f"in.{container}"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", *lavfi_input("320x180"),
         "-t", f"{seconds:g}", *args, "-f", container, str(out)],
        check=True,
    )  # fmt: skip
    return out.read_bytes()


H264_AAC = ("-c:v", "libx264", "-preset", "ultrafast", "-g", "15", "-c:a", "aac")


async def remux(data: bytes, container: str, directory: Path) -> tuple[list[Piece], Remuxer]:
    pipe = Pipe(asyncio.get_running_loop(), max_chunks=8)
    pieces: list[Piece | None] = []
    remuxer = Remuxer(pipe, container, directory, pieces.append)  # type: ignore[arg-type]
    thread = asyncio.create_task(asyncio.to_thread(remuxer.run))
    for offset in range(0, len(data), 4096):
        await pipe.put(data[offset : offset + 4096])
    pipe.close()
    await thread
    assert pieces[-1] is None  # the end is always told
    return [p for p in pieces if p is not None], remuxer


@pytest.mark.parametrize("container", ["flv", "mpegts"])
async def test_segments_are_cut_at_keyframes_timed_and_play_alone(
    tmp_path: Path, container: str
) -> None:
    # A keyframe every half second (-g 15), B-frames on: segments of one second.
    data = encode(tmp_path, container, *H264_AAC)
    before = now_ms()
    pieces, remuxer = await remux(data, container, tmp_path / "out")
    assert remuxer.failed is None
    assert [p.filename for p in pieces] == ["index0.ts", "index1.ts", "index2.ts"]
    assert [p.duration_ms for p in pieces] == [1000, 1000, 1000]
    # One clock: each segment starts where the last ended, from when the bytes came in.
    assert before <= pieces[0].start_ms <= now_ms()
    assert [p.start_ms - pieces[0].start_ms for p in pieces] == [0, 1000, 2000]
    for piece in pieces:
        assert piece.path.stat().st_size == piece.size
        data = piece.path.read_bytes()
        with av.open(io.BytesIO(data), "r") as segment:
            assert {s.codec_context.name for s in segment.streams} == {"h264", "aac"}
            first = next(p for p in segment.demux(segment.streams.video[0]) if p.size)
            assert first.is_keyframe, piece.filename
        with av.open(io.BytesIO(data), "r") as segment:
            frames = sum(1 for _ in segment.decode(segment.streams.video[0]))
        assert frames == 30, piece.filename  # all decodable without the segment before


async def test_other_codecs_and_no_video_and_garbage_are_refused_with_the_reason(
    tmp_path: Path,
) -> None:
    x264 = ("-c:v", "libx264", "-preset", "ultrafast")
    cases = [
        ("flv", "the video codec is flv", encode(tmp_path, "flv", "-c:v", "flv", "-c:a", "aac")),
        (
            "mpegts",
            "the video codec is mpeg2video",
            encode(tmp_path, "mpegts", "-c:v", "mpeg2video"),
        ),
        ("flv", "the audio codec is mp3", encode(tmp_path, "flv", *x264, "-c:a", "libmp3lame")),
        ("flv", "the stream carries no video", encode(tmp_path, "flv", "-vn", "-c:a", "aac")),
        ("flv", "the FLV stream cannot be read", b"GET / HTTP/1.1\r\n\r\n" * 100),
    ]
    for container, reason, data in cases:
        pieces, remuxer = await remux(data, container, tmp_path / "refused")
        assert remuxer.failed is not None and reason in remuxer.failed, remuxer.failed
        assert pieces == []


async def test_the_pipe_makes_the_feeder_wait_while_the_reader_is_behind() -> None:
    pipe = Pipe(asyncio.get_running_loop(), max_chunks=2)
    await pipe.put(b"a")
    await pipe.put(b"b")
    third = asyncio.create_task(pipe.put(b"c"))
    await asyncio.sleep(0.05)
    assert not third.done()  # full: the door stops reading its socket
    assert await asyncio.to_thread(pipe.read, 10) == b"a"
    await asyncio.wait_for(third, 1)
    pipe.close()
    assert [await asyncio.to_thread(pipe.read, 10) for _ in range(3)] == [b"b", b"c", b""]
    await pipe.put(b"late")  # after the end: dropped, never waits
    assert await asyncio.to_thread(pipe.read, 10) == b""
