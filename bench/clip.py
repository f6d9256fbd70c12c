"""Clip cutting benchmark: `cutter.cut()` beside the ffmpeg command line doing the same remux.

The input is a timeline of 1 s HLS segments of 720p30 H.264 (about 3 Mb/s, a keyframe a second,
B-frames) and 48 kHz stereo AAC, synthesized once per run into a temporary folder with PyAV.
Each measurement makes one faststart MP4 out of the same 60 segments (by default):

- cut: `cut()` called in this process, from a 60 s range covering the segments exactly;
- ffmpeg: `ffmpeg -y -i "concat:a.ts|b.ts|..." -c copy -movflags +faststart out.mp4` (for fMP4,
  the init segment leads the list), process start included: it is what a worker shelling out to
  ffmpeg would pay.

Runs alternate between the two, after one warm-up each, and the medians are compared; the
target is cut within 1.2x ffmpeg's time.

Run: ``python bench/clip.py [--seconds 60] [--runs 7] [--kinds ts,fmp4]``.
Results are printed and written to bench/results/clip-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
sys.path.insert(0, str(BENCH_DIR.parent))

from tests.support.mediakit import Segments, make_segments  # noqa: E402

from mediahooks import server  # noqa: E402
from mediahooks.clock import iso, now_ms  # noqa: E402
from mediahooks.config import Settings  # noqa: E402
from mediahooks.media.cutter import cut  # noqa: E402
from mediahooks.media.publisher import publish  # noqa: E402
from mediahooks.media.segmenter import SegmentFile  # noqa: E402
from mediahooks.service import Service  # noqa: E402

TARGET_RATIO = 1.2
SECRET = "bench-secret"
WIDTH, HEIGHT, FPS = 1280, 720, 30
VIDEO_BITRATE = 3_000_000
GRAIN = 0.25  # a quarter of each picture is noise, so the encoder spends the bit rate


@dataclass(frozen=True)
class Figures:
    kind: str
    seconds: int
    input_bytes: int
    output_bytes: int
    cut_s: list[float]
    cut_with_poster_s: list[float]
    ffmpeg_s: list[float]
    # The same on the first segment alone: about each side's fixed cost (for ffmpeg, mostly its
    # process start), so that the difference shows the work that grows with the clip.
    cut_one_segment_s: list[float]
    ffmpeg_one_segment_s: list[float]

    @property
    def cut_median(self) -> float:
        return statistics.median(self.cut_s)

    @property
    def ffmpeg_median(self) -> float:
        return statistics.median(self.ffmpeg_s)

    @property
    def ratio(self) -> float:
        return self.cut_median / self.ffmpeg_median


def make_timeline(directory: Path, kind: str, seconds: int) -> Segments:
    started = time.perf_counter()
    # One segment more than needed: the hls muxer's last one may be short.
    segments = make_segments(
        directory / kind,
        seconds + 1,
        kind="fmp4" if kind == "fmp4" else "ts",
        width=WIDTH,
        height=HEIGHT,
        fps=FPS,
        bitrate=VIDEO_BITRATE,
        grain=GRAIN,
    )
    print(
        f"{kind}: {seconds + 1} s of {HEIGHT}p{FPS} made in {time.perf_counter() - started:.1f} s"
    )
    return Segments(segments[:seconds], segments.init_path, segments.playlist_path)


def time_cut(segments: Segments, out: Path, poster: Path | None = None) -> float:
    start_ms = segments[0].start_ms
    stop_ms = segments[-1].start_ms + segments[-1].duration_ms
    poster_path = str(poster) if poster else None
    started = time.perf_counter()
    cut(list(segments), start_ms, stop_ms, str(out), segments.init_path, poster_path)
    return time.perf_counter() - started


def time_ffmpeg(segments: Segments, out: Path) -> float:
    paths = ([segments.init_path] if segments.init_path else []) + [s.path for s in segments]
    command = ["ffmpeg", "-v", "error", "-y", "-i", "concat:" + "|".join(paths)]
    command += ["-c", "copy", "-movflags", "+faststart", str(out)]
    started = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - started


def fresh(path: Path, measure: Callable[[], float]) -> float:
    """One measurement writing a new file, as a worker does (no old file to replace)."""
    for stale in (path, path.with_suffix(".jpg")):
        stale.unlink(missing_ok=True)
    return measure()


def bench_kind(directory: Path, kind: str, seconds: int, runs: int) -> Figures:
    segments = make_timeline(directory, kind, seconds)
    ours, theirs = directory / f"{kind}-cut.mp4", directory / f"{kind}-ffmpeg.mp4"
    poster = ours.with_suffix(".jpg")
    fresh(ours, lambda: time_cut(segments, ours))  # warm-up: page cache, imports, codecs
    fresh(theirs, lambda: time_ffmpeg(segments, theirs))
    first = Segments(segments[:1], segments.init_path, segments.playlist_path)
    cut_s, poster_s, ffmpeg_s, cut_one_s, ffmpeg_one_s = [], [], [], [], []
    for _ in range(runs):
        cut_s.append(fresh(ours, lambda: time_cut(segments, ours)))
        ffmpeg_s.append(fresh(theirs, lambda: time_ffmpeg(segments, theirs)))
        poster_s.append(fresh(ours, lambda: time_cut(segments, ours, poster)))
        cut_one_s.append(fresh(ours, lambda: time_cut(first, ours)))
        ffmpeg_one_s.append(fresh(theirs, lambda: time_ffmpeg(first, theirs)))
    return Figures(
        kind=kind,
        seconds=seconds,
        input_bytes=sum(os.path.getsize(s.path) for s in segments),
        output_bytes=ours.stat().st_size,
        cut_s=cut_s,
        cut_with_poster_s=poster_s,
        ffmpeg_s=ffmpeg_s,
        cut_one_segment_s=cut_one_s,
        ffmpeg_one_segment_s=ffmpeg_one_s,
    )


def report(figures: Figures) -> None:
    verdict = "met" if figures.ratio <= TARGET_RATIO else "MISSED"
    megabytes = figures.input_bytes / 1e6
    print(f"\n{figures.kind}: a {figures.seconds} s clip from {megabytes:.1f} MB of segments")
    print(f"  cut()           median {figures.cut_median * 1000:7.1f} ms")
    print(f"  cut() + poster  median {statistics.median(figures.cut_with_poster_s) * 1000:7.1f} ms")
    print(f"  ffmpeg -c copy  median {figures.ffmpeg_median * 1000:7.1f} ms")
    print(f"  ratio cut/ffmpeg {figures.ratio:.2f} (target <= {TARGET_RATIO}: {verdict})")
    cut_one = statistics.median(figures.cut_one_segment_s)
    ffmpeg_one = statistics.median(figures.ffmpeg_one_segment_s)
    print(f"  on 1 segment:   cut() {cut_one * 1000:.1f} ms, ffmpeg {ffmpeg_one * 1000:.1f} ms")
    cut_work = figures.cut_median - cut_one
    ffmpeg_work = figures.ffmpeg_median - ffmpeg_one
    print(
        f"  the other {figures.seconds - 1} segments: cut() {cut_work * 1000:.1f} ms, "
        f"ffmpeg {ffmpeg_work * 1000:.1f} ms (medians' differences: noisy on a busy machine)"
    )


async def request_to_completed(segments: Segments, runs: int) -> list[float]:
    """Seconds from `POST /api/v3/media/assets` to the clip's `completed` hook, per run.

    The whole path: a real server (SQLite, its dispatcher and media worker), the timeline pushed
    over HTTP, and a receiver that notes when each clip's `completed` arrives.
    """
    with tempfile.TemporaryDirectory(prefix="mediahooks-clip-e2e-") as temporary:
        # The timeline is pushed at once, dated from a minute back: believe those dates.
        settings = Settings(
            data_dir=Path(temporary),
            api_secret=SECRET,
            allow_private_targets="true",
            max_clock_skew=3600,
            # It publishes over HLS only: no RTMP or SRT port to take from a running service.
            rtmp_port=None,
            srt_port=None,
        )
        service = Service(settings)
        await service.open()
        running = await server.start(service, "127.0.0.1", 0)
        completed: dict[str, asyncio.Future[float]] = {}

        async def hook(request: web.Request) -> web.Response:
            body = await request.json()
            if body["type"] == "media" and body["event"] == "completed":
                arrived = completed.setdefault(
                    body["data"]["mediaAssetId"], asyncio.get_running_loop().create_future()
                )
                if not arrived.done():
                    arrived.set_result(time.perf_counter())
            return web.Response(status=204)

        app = web.Application()
        app.router.add_post("/hook", hook)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        receiver = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
        try:
            async with aiohttp.ClientSession(
                running.url, headers={"Authorization": f"Bearer {SECRET}"}
            ) as api:
                return await _clip_runs(api, running.url, receiver, segments, runs, completed)
        finally:
            await runner.cleanup()
            await running.stop()
            await service.close()


async def _clip_runs(
    api: aiohttp.ClientSession,
    base_url: str,
    receiver: str,
    segments: Segments,
    runs: int,
    completed: dict[str, asyncio.Future[float]],
) -> list[float]:
    hook = {"url": receiver, "isFeedHooks": False, "isMediaHooks": True}
    await _ok(api.post("/api/webhooks", json=hook))
    token = await _ok(
        api.post(
            "/api/publish_token",
            json={"label": "bench", "streams": [{"streamName": "bench"}], "clip": True},
        )
    )
    files = [
        SegmentFile(Path(s.path).name, Path(s.path).read_bytes(), s.duration_ms / 1000)
        for s in segments
    ]
    if segments.init_path:
        init = Path(segments.init_path)
        files.insert(0, SegmentFile(init.name, init.read_bytes(), 0))
    length_ms = sum(s.duration_ms for s in segments)
    start_ms = now_ms() - length_ms - 2_000
    await publish(f"{base_url}/ingest/bench", token["token"], files, False, start_ms)
    clip = {
        "streamName": "bench",
        "startTime": iso(start_ms),
        "stopTime": iso(start_ms + length_ms),
    }
    times = []
    for _ in range(runs):
        sent = time.perf_counter()
        (asset,) = await _ok(api.post("/api/v3/media/assets", json=clip))
        arrived = completed.setdefault(asset["id"], asyncio.get_running_loop().create_future())
        times.append(await asyncio.wait_for(arrived, 60) - sent)
    return times


async def _ok(request: Any) -> Any:
    async with request as resp:
        body = await resp.json()
        if resp.status != 200:
            raise RuntimeError(f"{resp.status}: {body}")
        return body["data"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60, help="clip length (default 60)")
    parser.add_argument("--runs", type=int, default=7, help="measured runs each (default 7)")
    parser.add_argument("--kinds", default="ts,fmp4", help="segment kinds (default ts,fmp4)")
    options = parser.parse_args()
    kinds = [kind.strip() for kind in options.kinds.split(",") if kind.strip()]

    with tempfile.TemporaryDirectory(prefix="mediahooks-clip-bench-") as temporary:
        results = [bench_kind(Path(temporary), k, options.seconds, options.runs) for k in kinds]
    for figures in results:
        report(figures)

    print(f"\nrequest -> `completed` hook, {options.seconds} s clips through the whole service:")
    with tempfile.TemporaryDirectory(prefix="mediahooks-clip-bench-") as temporary:
        timeline = make_timeline(Path(temporary), "ts", options.seconds)
        e2e = asyncio.run(request_to_completed(timeline, options.runs))
    e2e_median = statistics.median(e2e)
    cut_alone = next(f.cut_median for f in results if f.kind == "ts") if "ts" in kinds else None
    print(
        f"  median {e2e_median * 1000:.0f} ms over {len(e2e)} clips "
        f"(min {min(e2e) * 1000:.0f}, max {max(e2e) * 1000:.0f})"
        + (f"; the cut alone: {cut_alone * 1000:.0f} ms" if cut_alone else "")
    )
    verdict = "met" if e2e_median < 1.0 else "MISSED"
    print(f"  target < 1000 ms (median): {verdict}")

    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"clip-{stamp}.json"
    document = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "target_ratio": TARGET_RATIO,
        "results": [asdict(f) | {"ratio": f.ratio} for f in results],
        "request_to_completed_s": e2e,
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nresults: {path.relative_to(BENCH_DIR.parent)}")


if __name__ == "__main__":
    main()
