"""Live-edge latency per ingest protocol: from a frame sent by the publisher to that frame being
playable by an HLS player of the service's live playlist, beside ffmpeg's own HLS packager
receiving the same frames over the same protocol, measured in the same run.

- The frames are 320x180 H.264 at 30 fps, a keyframe every second, no B-frames, encoded once
  before the run; each picture carries its own number as 16 black or white blocks, so the
  player side reads which frame it got whatever the servers did to the timestamps.
- One pacing thread writes each frame at its moment, at once, to two `ffmpeg -c copy` senders:
  one publishing to the service (`mediahooks serve`, SQLite), one to the baseline. The sending
  time of frame N is the moment it was written. For WHIP the service's publisher is an aiortc
  client in this process sending the same frames as they are (`whip_sender.py`), timed as it
  hands each to its sender; the baseline then gets them over RTMP (ffmpeg takes no WHIP).
- The baseline is `ffmpeg` receiving the protocol itself (`-listen 1`, or writing the HLS files
  directly for the HLS protocol) and packaging HLS with 1 s segments into a folder that
  `python -m http.server` serves: what a packager and a static server give with no service.
- A player per side polls its live playlist every 50 ms; each new segment is fetched and
  decoded, and its last frame's number says how long ago that frame was sent (the freshest
  frame of the segment: the best a player at the live edge can show) and its first frame's
  (the frame that waited longest).

Run: ``python bench/latency.py [--seconds 20] [--protocols hls,rtmp,srt,whip]``; `bench/playback.py`
runs it first.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import IO, Any
from urllib.parse import urljoin

import aiohttp
import av

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent / "src"))

from aiortc import RTCPeerConnection  # noqa: E402

import whip_sender  # noqa: E402
from mediahooks.media import hls  # noqa: E402

now = time.monotonic

SECRET = "bench-latency-secret"
FPS = 30
WIDTH, HEIGHT = 320, 180
BITS = 16
BLOCK = WIDTH // 8  # two rows of eight blocks across the top of the picture
POLL_SECONDS = 0.05
WARMUP_SECONDS = 4


@dataclass(frozen=True)
class Protocol:
    """Where a protocol's two senders go, and how each ffmpeg sender muxes."""

    name: str
    container: str
    service_url: Callable[[dict[str, Any]], str]  # from the service's ports, stream and token
    baseline_in: Callable[[int], str] | None  # the URL the baseline ffmpeg listens on
    # How the baseline ffmpeg is told to listen, and where its sender goes (default: baseline_in).
    listen_args: tuple[str, ...] = ("-listen", "1")
    baseline_out: Callable[[int], str] | None = None
    transport: int = socket.SOCK_STREAM  # the kind of the baseline's port
    # The service's publisher is an aiortc WHIP client in this process (the baseline, which
    # cannot take WHIP, gets the same frames over RTMP).
    whip: bool = False


PROTOCOLS = {
    "hls": Protocol(
        name="hls",
        container="hls",
        service_url=lambda s: f"{s['url']}/ingest/t/{s['token']}/{s['stream']}/index.m3u8",
        baseline_in=None,  # the sender writes the baseline's folder itself
    ),
    "rtmp": Protocol(
        name="rtmp",
        container="flv",
        service_url=lambda s: (
            f"rtmp://127.0.0.1:{s['rtmp_port']}/v2/pub/{s['stream']}?token={s['token']}"
        ),
        baseline_in=lambda port: f"rtmp://127.0.0.1:{port}/live/cam",
    ),
    "srt": Protocol(
        name="srt",
        container="mpegts",
        service_url=lambda s: (
            f"srt://127.0.0.1:{s['srt_port']}?streamid={s['stream']}%3Ft%3D{s['token']}"
        ),
        baseline_in=lambda port: f"srt://127.0.0.1:{port}?mode=listener",
        listen_args=(),
        baseline_out=lambda port: f"srt://127.0.0.1:{port}",
        transport=socket.SOCK_DGRAM,
    ),
    "whip": Protocol(
        name="whip",
        container="flv",
        service_url=lambda s: f"{s['url']}/api/whip/{s['stream']}",
        baseline_in=lambda port: f"rtmp://127.0.0.1:{port}/live/cam",
        whip=True,
    ),
}


@dataclass
class Side:
    """One player's findings: latency (s) of each segment's last and first frames."""

    last: list[float]
    first: list[float]

    def summary(self) -> str:
        if not self.last:
            return "no segment played"
        return (
            f"last frame median {statistics.median(self.last) * 1000:6.0f} ms, "
            f"first frame median {statistics.median(self.first) * 1000:6.0f} ms "
            f"({len(self.last)} segments)"
        )


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def encode_frames(seconds: float) -> list[bytes]:
    """Annex B access units, one per frame, each picture showing its own number."""
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height, codec.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    codec.time_base = Fraction(1, FPS)
    codec.framerate = Fraction(FPS)
    codec.options = {"preset": "veryfast", "tune": "zerolatency", "g": str(FPS),
                     "keyint_min": str(FPS), "bf": "0", "sc_threshold": "0"}  # fmt: skip
    units: list[bytes] = []
    for number in range(int(seconds * FPS)):
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        luma = bytearray(b"\x80" * (frame.planes[0].line_size * HEIGHT))
        stride = frame.planes[0].line_size
        for bit in range(BITS):
            value = 235 if number >> bit & 1 else 16
            x0, y0 = (bit % 8) * BLOCK, (bit // 8) * BLOCK
            for y in range(y0, y0 + BLOCK):
                luma[y * stride + x0 : y * stride + x0 + BLOCK] = bytes([value]) * BLOCK
        frame.planes[0].update(bytes(luma))
        for plane in frame.planes[1:]:
            plane.update(b"\x80" * (plane.line_size * plane.height))
        frame.pts = number
        units.extend(bytes(p) for p in codec.encode(frame))
    units.extend(bytes(p) for p in codec.encode(None))
    return units


def frame_number(frame: av.VideoFrame) -> int:
    plane = frame.planes[0]
    data, stride = bytes(plane), plane.line_size
    number = 0
    for bit in range(BITS):
        x = (bit % 8) * BLOCK + BLOCK // 2
        y = (bit // 8) * BLOCK + BLOCK // 2
        if data[y * stride + x] > 128:
            number |= 1 << bit
    return number


def segment_frames(data: bytes) -> tuple[int, int] | None:
    """The numbers of a segment's first and last pictures."""
    numbers: list[int] = []
    with av.open(io.BytesIO(data)) as container:
        for frame in container.decode(video=0):
            numbers.append(frame_number(frame))
    return (numbers[0], numbers[-1]) if numbers else None


def sender(container: str, url: str, extra: list[str]) -> subprocess.Popen[bytes]:
    """ffmpeg reading raw H.264 from its stdin as it comes, copying it to ``url``."""
    return subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-fflags", "+nobuffer+genpts",
         "-probesize", "32", "-analyzeduration", "0", "-f", "h264", "-framerate", str(FPS),
         "-i", "pipe:0", "-c", "copy", *extra, "-f", container, url],
        stdin=subprocess.PIPE,
    )  # fmt: skip


HLS_OUT = ["-hls_time", "1", "-hls_list_size", "6", "-hls_flags", "independent_segments"]


def pace(units: list[bytes], pipes: list[IO[bytes]], sent: dict[int, float]) -> None:
    """Write frame N to every pipe at its moment, and note when."""
    start = time.monotonic() + 0.2
    for number, unit in enumerate(units):
        delay = start + number / FPS - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        sent[number] = time.monotonic()
        for pipe in pipes:
            try:
                pipe.write(unit)
                pipe.flush()
            except (BrokenPipeError, ValueError):
                pass
    for pipe in pipes:
        with contextlib.suppress(BrokenPipeError):
            pipe.close()


async def play(
    url: str, sent: dict[int, float], side: Side, record_after: float, stop: asyncio.Event
) -> None:
    """A player at the live edge, as eager as a player can be."""
    seen: set[str] = set()
    async with aiohttp.ClientSession() as session:
        while not stop.is_set():
            try:
                async with session.get(url) as resp:
                    text = await resp.text() if resp.status == 200 else ""
            except aiohttp.ClientError:
                text = ""
            entries = hls.parse_playlist(text).entries if "#EXTM3U" in text else []
            for entry in entries:
                name = entry.uri.split("?", 1)[0]
                if name in seen:
                    continue
                seen.add(name)
                async with session.get(urljoin(url, entry.uri)) as seg:
                    data = await seg.read()
                arrived = time.monotonic()
                numbers = await asyncio.to_thread(segment_frames, data)
                if numbers is None or time.monotonic() < record_after:
                    continue
                first, last = numbers
                if first in sent and last in sent:
                    side.first.append(arrived - sent[first])
                    side.last.append(arrived - sent[last])
            await asyncio.sleep(POLL_SECONDS)


async def start_service(data: Path) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    rtmp_port, srt_port = free_port(), free_port(socket.SOCK_DGRAM)
    env = {
        **os.environ,
        "MEDIAHOOKS_DATA_DIR": str(data),
        "MEDIAHOOKS_API_SECRET": SECRET,
        "MEDIAHOOKS_LOG_LEVEL": "WARNING",
        "MEDIAHOOKS_RTMP_PORT": str(rtmp_port),
        "MEDIAHOOKS_SRT_PORT": str(srt_port),
        "MEDIAHOOKS_WEBRTC_ADDRESSES": "127.0.0.1",
        "MEDIAHOOKS_IDLE_TIMEOUT": "30",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "mediahooks", "serve", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=(data.parent / "service.log").open("w"),  # its banner; read it when it fails
        text=True,
    )
    assert process.stdout is not None
    url = ""
    for line in process.stdout:
        if line.startswith("READY "):
            url = line.split()[1]
            break
    if not url:
        raise SystemExit("the service did not start")
    return process, {"url": url, "rtmp_port": rtmp_port, "srt_port": srt_port}


async def measure(protocol: Protocol, units: list[bytes]) -> tuple[Side, Side]:
    """(service, baseline) for one protocol."""
    with tempfile.TemporaryDirectory(prefix="mediahooks-latency-") as tmp:
        work = Path(tmp)
        service, where = await start_service(work / "data")
        processes: list[subprocess.Popen[Any]] = [service]
        stop = asyncio.Event()
        try:
            auth = {"Authorization": f"Bearer {SECRET}"}
            async with aiohttp.ClientSession(headers=auth) as s:
                body = {"label": "bench", "streams": [{"streamName": "cam"}]}
                async with s.post(where["url"] + "/api/publish_token", json=body) as resp:
                    where["token"] = (await resp.json())["data"]["token"]
                link = {"streamName": "cam"}
                async with s.post(where["url"] + "/api/v3/playback/link", json=link) as resp:
                    live_url = (await resp.json())["data"]["playbackUrl"]
            where["stream"] = "cam"

            folder = work / "baseline"
            folder.mkdir()
            static_port = free_port()
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "http.server", str(static_port), "--bind", "127.0.0.1",
                 "--directory", str(folder)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))  # fmt: skip
            playlist = str(folder / "live.m3u8")
            if protocol.baseline_in is None:
                baseline_sender = sender("hls", playlist, HLS_OUT)
            else:
                port = free_port(protocol.transport)
                listen = protocol.baseline_in(port)
                processes.append(subprocess.Popen(
                    ["ffmpeg", "-hide_banner", "-loglevel", "fatal", "-nostdin",
                     "-fflags", "+nobuffer", *protocol.listen_args, "-i", listen, "-c", "copy",
                     *HLS_OUT, "-f", "hls", playlist],
                ))  # fmt: skip
                await asyncio.sleep(1)  # listening before the sender calls
                out = protocol.baseline_out(port) if protocol.baseline_out else listen
                baseline_sender = sender(protocol.container, out, [])
            processes.append(baseline_sender)
            assert baseline_sender.stdin
            sent: dict[int, float] = {}
            pipes = [baseline_sender.stdin]
            whip: RTCPeerConnection | None = None
            if protocol.whip:
                sent_here: dict[int, float] = {}
                timed = [(Fraction(n, FPS), unit) for n, unit in enumerate(units)]
                video = whip_sender.PacedVideo(timed, lambda n: sent_here.setdefault(n, now()))
                whip = await whip_sender.publish(protocol.service_url(where), where["token"], video)
            else:
                extra = [*HLS_OUT, "-method", "PUT"] if protocol.container == "hls" else []
                service_sender = sender(protocol.container, protocol.service_url(where), extra)
                processes.append(service_sender)
                assert service_sender.stdin
                pipes.append(service_sender.stdin)
                sent_here = sent
            pacing = threading.Thread(target=pace, args=(units, pipes, sent))
            pacing.start()
            ours, theirs = Side([], []), Side([], [])
            record_after = time.monotonic() + WARMUP_SECONDS
            static_url = f"http://127.0.0.1:{static_port}/live.m3u8"
            players = [
                asyncio.create_task(play(live_url, sent_here, ours, record_after, stop)),
                asyncio.create_task(play(static_url, sent, theirs, record_after, stop)),
            ]
            await asyncio.to_thread(pacing.join)
            if whip is not None:
                await whip.close()  # before its frames come round again
            await asyncio.sleep(2)  # the last segments
            stop.set()
            await asyncio.gather(*players)
            return ours, theirs
        finally:
            for process in reversed(processes):
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()


async def run(protocols: list[str], seconds: float) -> dict[str, tuple[Side, Side]]:
    if shutil.which("ffmpeg") is None:
        raise SystemExit("the latency bench needs the ffmpeg command")
    units = await asyncio.to_thread(encode_frames, seconds)
    print(f"Live-edge latency: frame sent -> frame playable over HLS ({seconds:.0f} s each)")
    results = {}
    for name in protocols:
        ours, theirs = await measure(PROTOCOLS[name], units)
        print(f"  {name:5} mediahooks    {ours.summary()}")
        print(f"  {name:5} ffmpeg+static {theirs.summary()}")
        if ours.last and theirs.last:
            ratio = statistics.median(ours.last) / statistics.median(theirs.last)
            print(f"  {name:5} ratio (last frame medians) {ratio:.2f}")
        results[name] = (ours, theirs)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--protocols", default=",".join(PROTOCOLS))
    args = parser.parse_args()
    asyncio.run(run(args.protocols.split(","), args.seconds))
