"""Playback benchmark: how many concurrent HLS viewers of one live stream the service serves
with its p99 latency under 100 ms, beside `python -m http.server` serving the same segment files
and a plain playlist file, measured in the same run.

- The service runs as `mediahooks serve` (SQLite, one process) in a subprocess; a synthetic
  320x180 stream with 1 s segments is published to it at the real pace from this process.
- The baseline is `python -m http.server` over the broadcast's own folder (the segments ingest
  stored), with a `live.m3u8` this script rewrites every half second from the service's live
  playlist: a static server fed by a packager, the usual way to serve HLS without a service.
- A viewer fetches the live playlist every segment duration and each segment it has not
  fetched yet, as a player at the live edge does. Viewers start spread over one second. Each
  step runs N viewers for a few seconds; N doubles until the p99 of all requests (playlists
  and segments, to the last byte) reaches 100 ms.

The load generator shares the machine with the servers: on a small machine it is part of what
is measured, equally for both.

Live-edge latency per ingest protocol comes first (`bench/latency.py`, which says how).

Run: ``python bench/playback.py [--step-seconds 6] [--max-viewers 1600] [--latency-seconds 20]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urljoin

import aiohttp

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent / "src"))

import latency  # noqa: E402
from mediahooks.clock import now_ms  # noqa: E402
from mediahooks.media import hls, publisher, synthetic  # noqa: E402

SECRET = "bench-playback-secret"
TARGET_P99 = 0.100
SEGMENT_SECONDS = 1.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def wait_up(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as s:
        while True:
            try:
                async with s.get(url) as resp:
                    if resp.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{url} did not come up")
            await asyncio.sleep(0.2)


async def viewer(
    session: aiohttp.ClientSession, url: str, until: float, delay: float, times: list[float]
) -> None:
    """A player at the live edge: the playlist every segment duration, each new segment."""
    await asyncio.sleep(delay)
    seen: set[str] = set()
    while time.monotonic() < until:
        began = time.monotonic()
        async with session.get(url) as resp:
            text = await resp.text()
        times.append(time.monotonic() - began)
        entries = hls.parse_playlist(text).entries if resp.status == 200 else []
        for entry in entries[-1:] if not seen else entries:
            name = entry.uri.split("?", 1)[0]
            if name in seen:
                continue
            seen.add(name)
            began = time.monotonic()
            async with session.get(urljoin(url, entry.uri)) as seg:
                await seg.read()
            times.append(time.monotonic() - began)
        await asyncio.sleep(max(0.0, SEGMENT_SECONDS - (time.monotonic() - began)))


async def step(url: str, viewers: int, seconds: float) -> tuple[float, int]:
    """p99 (s) and request count of ``viewers`` watching ``url`` for ``seconds``."""
    times: list[float] = []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        until = time.monotonic() + seconds
        await asyncio.gather(
            *(viewer(session, url, until, i / viewers, times) for i in range(viewers))
        )
    times.sort()
    return times[int(len(times) * 0.99) - 1] if times else float("inf"), len(times)


async def ramp(name: str, url: str, seconds: float, most: int) -> list[tuple[int, float, int]]:
    results = []
    viewers = 25
    while viewers <= most:
        p99, count = await step(url, viewers, seconds)
        rate = count / seconds
        print(f"  {name:12} {viewers:5} viewers  p99 {p99 * 1000:7.1f} ms  {rate:7.0f} req/s")
        results.append((viewers, p99, count))
        if p99 >= TARGET_P99:
            break
        viewers *= 2
    return results


def best(results: list[tuple[int, float, int]]) -> int:
    return max((n for n, p99, _ in results if p99 < TARGET_P99), default=0)


async def mirror(live_url: str, folder: Path, stop: asyncio.Event) -> None:
    """Keep `folder/live.m3u8` the service's live playlist, with plain file names."""
    async with aiohttp.ClientSession() as s:
        while not stop.is_set():
            async with s.get(live_url) as resp:
                text = await resp.text()
            if resp.status == 200:
                lines = [
                    line.split("?", 1)[0].rsplit("/", 1)[-1] if not line.startswith("#") else line
                    for line in text.splitlines()
                ]
                tmp = folder / "live.m3u8.tmp"
                tmp.write_text("\n".join(lines) + "\n")
                os.replace(tmp, folder / "live.m3u8")
            await asyncio.sleep(0.5)


async def main(args: argparse.Namespace) -> None:
    if args.latency_seconds > 0:
        await latency.run(list(latency.PROTOCOLS), args.latency_seconds)
    data = Path(tempfile.mkdtemp(prefix="bench-playback-"))
    port, static_port = free_port(), free_port()
    env = {
        **os.environ,
        "MEDIAHOOKS_API_SECRET": SECRET,
        "MEDIAHOOKS_LOG_LEVEL": "WARNING",
        "MEDIAHOOKS_IDLE_TIMEOUT": "30",
        "MEDIAHOOKS_RTMP_PORT": "off",
        "MEDIAHOOKS_SRT_PORT": "off",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "mediahooks", "serve", "--port", str(port), "--data-dir", str(data)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,  # its banner; a server that fails never comes up
    )
    static: subprocess.Popen[bytes] | None = None
    base = f"http://127.0.0.1:{port}"
    stop = asyncio.Event()
    try:
        await wait_up(base + "/healthz")
        auth = {"Authorization": f"Bearer {SECRET}"}
        async with aiohttp.ClientSession(headers=auth) as s:
            body = {"label": "bench", "streams": [{"streamName": "cam"}], "clip": True}
            async with s.post(base + "/api/publish_token", json=body) as resp:
                token = (await resp.json())["data"]["token"]
            async with s.post(base + "/api/v3/playback/link", json={"streamName": "cam"}) as resp:
                live_url = (await resp.json())["data"]["playbackUrl"]
        seconds = 30 + 2 * args.step_seconds * 8  # enough stream for every step
        made = synthetic.iter_segments(seconds, "ts", width=320, height=180, fps=30)
        segments = await asyncio.to_thread(list, made)
        publishing = asyncio.create_task(
            publisher.publish(
                f"{base}/ingest/cam", token, segments, realtime=True, start_ms=now_ms() - 8000
            )
        )
        await asyncio.sleep(3)
        folder = next((data / "timelines").glob("*/cam/*"))
        mirroring = asyncio.create_task(mirror(live_url, folder, stop))
        await asyncio.sleep(1)
        static = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(static_port), "--bind", "127.0.0.1",
             "--directory", str(folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        static_url = f"http://127.0.0.1:{static_port}/live.m3u8"
        await wait_up(static_url)
        print(f"HLS viewers of one live stream, p99 under {TARGET_P99 * 1000:.0f} ms")
        ours = await ramp("mediahooks", live_url, args.step_seconds, args.max_viewers)
        theirs = await ramp("http.server", static_url, args.step_seconds, args.max_viewers)
        a, b = best(ours), best(theirs)
        print(f"mediahooks: {a} viewers; http.server: {b} viewers; ratio {a / b if b else 0:.2f}")
        medians = [statistics.median([p for _, p, _ in r]) * 1000 for r in (ours, theirs)]
        print(f"(median of step p99s: {medians[0]:.1f} ms vs {medians[1]:.1f} ms)")
        publishing.cancel()
        stop.set()
        await asyncio.gather(publishing, mirroring, return_exceptions=True)
    finally:
        for proc in (server, static):
            if proc is not None:
                proc.terminate()
                proc.wait(10)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--step-seconds", type=float, default=6.0)
    parser.add_argument("--max-viewers", type=int, default=1600)
    parser.add_argument("--latency-seconds", type=float, default=20.0, help="0 skips it")
    asyncio.run(main(parser.parse_args()))
