"""Live ingest benchmark: the CPU each live 720p30 stream costs the service, beside ffmpeg
receiving the same streams, and the delay from a frame sent to it being clippable.

The input is a 720p30 H.264 stream (about 2.5 Mb/s, a keyframe every 2 s, no B-frames) with
48 kHz stereo AAC, encoded once into a cached file. For each of `--streams` streams, one
`ffmpeg -re -stream_loop -1 -i file -c copy -f <container>` sends it to the service (a real
`mediahooks serve` process) and another sends it to the baseline, one receiving ffmpeg per
stream doing the same job without a database:
`ffmpeg -listen 1 -i <url> -c copy -f segment -segment_time 2 out%05d.ts` (for SRT, ffmpeg's
own listener, `srt://...?mode=listener`, one per stream since it takes one caller).
Both sides run at once, so they see the same machine; the CPU of each (from /proc, children
included) over the measured window is divided by the streams and the seconds.

The delay is read from the service's own index: each time a segment becomes clippable, how long
after the wall-clock time of its last frame (the frame that waited least) and its first (the one
that waited most). A protocol is a parameter (`--protocol rtmp|srt|whip`). SRT's receiver holds
each packet for its latency (120 ms by default, the larger of the two sides' settings) before the
application gets it, in the service and in the baseline alike: that delay is SRT's, not ours. For
WHIP each sender is an aiortc publisher (`whip_sender.py`) sending the same H.264 without
re-encoding and a silent Opus track (which the service re-encodes to AAC); `whip-vp8` sends the
same picture encoded once in VP8 (the service keeps VP8 and Opus as they are, in WebM). A WHIP
run measures RTMP first, in the same invocation, so the two figures come from the same machine
state.

Capacity (`--capacity`): how many such streams the service takes on this machine while its API
answers with a p99 under 100 ms. Streams are added in steps (`--steps`, the earlier ones keep
running); at each step, after a warm-up, a client measures the API for `--seconds`: ten
`GET /api/v3/media/assets` a second and one clip request (`POST /api/v3/media/assets`, a
stream's last 10 s, so clips are really cut). A step passes when the p99 is under 100 ms
and every stream kept up: the media indexed for it during the window covers at least
`KEEP_UP` of the window (a stream the service cannot follow falls behind or loses frames).
A step that fails is measured once more before the run stops (a machine shared with other
work has bursts). The capacity is the last step passed. Beside it, in the same run: the API's
p99 with no stream under the listings alone (the machine's own floor), and first the plain
measurement above (`--streams` streams, no API load: the service's and ffmpeg's CPU per
stream); each side's CPU-bound ceiling is the machine's cores over its CPU per stream (ffmpeg
has no API, so that is the figure that compares; the senders share the machine, so a measured
capacity is lower).

Run: ``python bench/ingest.py [--streams 4] [--seconds 30] [--protocol rtmp|srt|whip|whip-vp8]``,
or
``python bench/ingest.py --capacity [--steps 1,2,4,8,...] [--seconds 15] [--streams 4]``.
Results are printed and written to bench/results/ingest-<timestamp>.json
(ingest-capacity-<timestamp>.json).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cpu import Window, with_children

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
SECRET = "bench-secret"
WARMUP_SECONDS = 4
P99_LIMIT_MS = 100.0
KEEP_UP = 0.85  # segments are about 1 s: one either side of a 15 s window is 7%
LISTS_PER_SECOND = 10
CLIP_SECONDS = 10  # each clip request: the stream's last 10 s (the shortest clip there is)


@dataclass(frozen=True)
class Protocol:
    """How a protocol's senders and the baseline's receiver are told where to go."""

    name: str
    container: str  # what the sending ffmpeg muxes into
    service_url: Callable[[int, str, str], str]  # (port, stream, token)
    baseline_url: Callable[[int, str], str]  # (port, stream): where the baseline's sender goes
    baseline_input: Callable[[int, str], list[str]]  # the baseline receiver's input options
    port_setting: str  # the MEDIAHOOKS_* variable of the service's port
    transport: int  # socket.SOCK_STREAM or SOCK_DGRAM: which kind of free port to find
    whip: bool = False  # the service's senders are WHIP publishers (the URL is the API's)
    video: str = "h264"  # what a WHIP sender sends: the H.264 file as is, or it in VP8


PROTOCOLS = {
    "rtmp": Protocol(
        name="rtmp",
        container="flv",
        service_url=lambda port, stream, token: (
            f"rtmp://127.0.0.1:{port}/v2/pub/{stream}?token={token}"
        ),
        baseline_url=lambda port, stream: f"rtmp://127.0.0.1:{port}/live/{stream}",
        baseline_input=lambda port, stream: [
            "-listen",
            "1",
            "-i",
            f"rtmp://127.0.0.1:{port}/live/{stream}",
        ],
        port_setting="MEDIAHOOKS_RTMP_PORT",
        transport=socket.SOCK_STREAM,
    ),
    "srt": Protocol(
        name="srt",
        container="mpegts",
        service_url=lambda port, stream, token: (
            f"srt://127.0.0.1:{port}?streamid={quote(f'{stream}?t={token}', safe='')}"
        ),
        baseline_url=lambda port, stream: f"srt://127.0.0.1:{port}",
        baseline_input=lambda port, stream: ["-i", f"srt://127.0.0.1:{port}?mode=listener"],
        port_setting="MEDIAHOOKS_SRT_PORT",
        transport=socket.SOCK_DGRAM,
    ),
}
# ffmpeg takes no WHIP: the baseline of WHIP's senders is ffmpeg over RTMP.
PROTOCOLS["whip"] = replace(
    PROTOCOLS["rtmp"],
    name="whip",
    service_url=lambda port, stream, token: f"/api/whip/{stream}",
    whip=True,
)
PROTOCOLS["whip-vp8"] = replace(PROTOCOLS["whip"], name="whip-vp8", video="vp8")
# The service's doors other than the one measured stay shut (their default ports may be taken).
DOOR_SETTINGS = ("MEDIAHOOKS_RTMP_PORT", "MEDIAHOOKS_SRT_PORT")


@dataclass
class Figures:
    protocol: str
    streams: int
    seconds: float
    service_cpu_percent_per_stream: float
    baseline_cpu_percent_per_stream: float
    ratio: float
    machine_cpu_percent: float
    segments_measured: int
    delay_after_last_frame_ms_median: float
    delay_after_first_frame_ms_median: float


def source_file() -> Path:
    """The 720p30 stream to send, encoded once (noise keeps the encoder spending its rate)."""
    path = Path(tempfile.gettempdir()) / "mediahooks-bench" / "live-720p30-2500k.mp4"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    print("encoding the 720p30 source once...", file=sys.stderr)
    subprocess.run(
        [
            "ffmpeg", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
            "-t", "30", "-vf", "noise=alls=12:allf=t",
            "-c:v", "libx264", "-preset", "veryfast", "-b:v", "2500k", "-maxrate", "2500k",
            "-bufsize", "5000k", "-g", "60", "-bf", "0", "-c:a", "aac", "-b:a", "128k",
            "-ac", "2", str(path) + ".part.mp4",
        ],
        check=True,
    )  # fmt: skip
    os.replace(str(path) + ".part.mp4", path)
    return path


def source_ts(source: Path) -> Path:
    """The same stream as MPEG-TS: H.264 in Annex B, with its parameter sets at each
    keyframe, as an encoder hands it to a WebRTC sender."""
    path = source.with_suffix(".ts")
    if not path.exists():
        subprocess.run(
            ["ffmpeg", "-loglevel", "error", "-y", "-i", str(source), "-c", "copy",
             "-f", "mpegts", str(path) + ".part"],
            check=True,
        )  # fmt: skip
        os.replace(str(path) + ".part", path)
    return path


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def api(url: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """A call to the service's API (GET without a body, else POST); its `data`."""
    request = urllib.request.Request(
        url + path,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {SECRET}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())["data"]


def start_service(
    data_dir: Path, protocol: Protocol, port: int
) -> tuple[subprocess.Popen[str], str]:
    env = {
        **os.environ,
        "MEDIAHOOKS_DATA_DIR": str(data_dir),
        "MEDIAHOOKS_API_SECRET": SECRET,
        "MEDIAHOOKS_LOG_LEVEL": "WARNING",
        **dict.fromkeys(DOOR_SETTINGS, "off"),
        "MEDIAHOOKS_WEBRTC_ADDRESSES": "127.0.0.1",
        protocol.port_setting: str(port),
    }
    command = [sys.executable, "-m", "mediahooks", "serve", "--port", "0"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("READY "):
            return process, line.split()[1]
    raise SystemExit("the service did not start")


def sender(source: Path, container: str, url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-stream_loop", "-1",
         "-i", str(source), "-c", "copy", "-f", container, url],
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def source_vp8(source: Path) -> Path:
    """The same picture in VP8 (WebM, video only; a keyframe every 2 s), encoded once: what a
    browser sends by default."""
    path = source.with_suffix(".vp8.webm")
    if not path.exists():
        print("encoding the VP8 source once...", file=sys.stderr)
        subprocess.run(
            ["ffmpeg", "-loglevel", "error", "-y", "-i", str(source), "-an", "-c:v", "libvpx",
             "-deadline", "realtime", "-cpu-used", "8", "-b:v", "2500k", "-g", "60",
             "-f", "webm", str(path) + ".part"],
            check=True,
        )  # fmt: skip
        os.replace(str(path) + ".part", path)
    return path


def whip_sender(source: Path, url: str, token: str, video: str) -> subprocess.Popen[bytes]:
    media = source_vp8(source) if video == "vp8" else source_ts(source)
    return subprocess.Popen(
        [sys.executable, str(BENCH_DIR / "whip_sender.py"), url, token, str(media)],
        stdin=subprocess.DEVNULL,
    )


def baseline_receiver(source: list[str], directory: Path) -> subprocess.Popen[bytes]:
    directory.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        ["ffmpeg", "-nostdin", "-loglevel", "error", *source,
         "-c", "copy", "-f", "segment", "-segment_time", "2", str(directory / "out%05d.ts")],
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


class Delays:
    """Watches the service's index: when each segment becomes clippable, how long after its
    last and first frames' wall-clock times."""

    def __init__(self, database: Path) -> None:
        self.database = database
        self.seen: set[int] = set()
        self.after_last: list[float] = []
        self.after_first: list[float] = []

    def poll(self, record: bool) -> None:
        with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True) as conn:
            rows = conn.execute(
                "select id, start_ms, duration_ms from segments where start_ms is not null"
            ).fetchall()
        now = time.time() * 1000
        for segment_id, start, duration in rows:
            if segment_id in self.seen:
                continue
            self.seen.add(segment_id)
            if record:
                self.after_last.append(now - (start + duration))
                self.after_first.append(now - start)


def run(protocol: Protocol, streams: int, seconds: float) -> Figures:
    source = source_file()
    with tempfile.TemporaryDirectory(prefix="mediahooks-ingest-") as tmp:
        work = Path(tmp)
        port = free_port(protocol.transport)
        service, url = start_service(work / "data", protocol, port)
        processes: list[subprocess.Popen[Any]] = []
        try:
            names = [f"s{n}" for n in range(streams)]
            token = api(url, "/api/publish_token", {
                "label": "bench", "streams": [{"streamName": n} for n in names], "clip": True,
            })["token"]  # fmt: skip
            baseline_ports = [free_port(protocol.transport) for _ in names]
            receivers = [
                baseline_receiver(protocol.baseline_input(p, n), work / "baseline" / n)
                for p, n in zip(baseline_ports, names, strict=True)
            ]
            processes += receivers
            time.sleep(0.5)  # the listeners are up
            for name, baseline_port in zip(names, baseline_ports, strict=True):
                if protocol.whip:
                    whip_url = url + protocol.service_url(port, name, token)
                    processes.append(whip_sender(source, whip_url, token, protocol.video))
                else:
                    processes.append(
                        sender(source, protocol.container, protocol.service_url(port, name, token))
                    )
                processes.append(
                    sender(source, protocol.container, protocol.baseline_url(baseline_port, name))
                )
            delays = Delays(work / "data" / "mediahooks.db")
            time.sleep(1)
            end_warmup = time.monotonic() + WARMUP_SECONDS
            while time.monotonic() < end_warmup:
                delays.poll(record=False)
                time.sleep(0.02)
            window = Window({
                "service": with_children(service.pid),
                "baseline": with_children(*(r.pid for r in receivers)),
            })  # fmt: skip
            window.start()
            started = time.monotonic()
            while time.monotonic() - started < seconds:
                delays.poll(record=True)
                time.sleep(0.02)
            used = window.stop()
            elapsed = time.monotonic() - started
            dead = [p.args[-1] for p in processes if p.poll() is not None]
            if dead:
                raise SystemExit(f"a sender or receiver stopped early: {dead}")
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait()
            service.terminate()
            service.wait()
    service_pct = used["service"] / elapsed / streams * 100
    baseline_pct = used["baseline"] / elapsed / streams * 100
    return Figures(
        protocol=protocol.name,
        streams=streams,
        seconds=round(elapsed, 1),
        service_cpu_percent_per_stream=round(service_pct, 2),
        baseline_cpu_percent_per_stream=round(baseline_pct, 2),
        ratio=round(service_pct / baseline_pct, 2) if baseline_pct else float("inf"),
        machine_cpu_percent=round(used["machine"] / elapsed * 100, 1),
        segments_measured=len(delays.after_last),
        delay_after_last_frame_ms_median=round(statistics.median(delays.after_last or [0])),
        delay_after_first_frame_ms_median=round(statistics.median(delays.after_first or [0])),
    )


@dataclass
class Step:
    streams: int
    seconds: float
    requests: int
    errors: int
    p50_ms: float
    p99_ms: float
    clip_p99_ms: float  # the clip requests' alone (they write, and start a cut)
    slowest_keeping_up: float  # the least media indexed for a stream over the window, / window
    service_cpu_percent: float  # of a core, the API load's share included
    machine_cpu_percent: float
    passed: bool


@dataclass
class Capacity:
    protocol: str
    capacity_streams: int
    api_alone_p99_ms: float  # the listings with no stream: the machine's own floor
    steps: list[Step]
    cpu: Figures  # the plain run (no API load) just before: service and ffmpeg per stream
    service_cpu_bound_streams: float
    baseline_cpu_bound_streams: float


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile; a request that failed counts as infinitely slow."""
    ordered = sorted(values)
    if not ordered:
        return float("inf")
    return ordered[min(len(ordered), max(1, math.ceil(len(ordered) * pct / 100))) - 1]


class ApiLoad:
    """A client in its own thread: ten listings and one clip request a second, each timed."""

    def __init__(self, url: str, names: list[str]) -> None:
        self.url = url
        self.names = names
        self.latencies: list[float] = []
        self.clip_latencies: list[float] = []
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        tick, n = time.monotonic(), 0
        while not self._stop.is_set():
            if self.names and n % LISTS_PER_SECOND == 0:
                now = datetime.now(UTC)
                start = now.timestamp() - CLIP_SECONDS - 1
                stream = self.names[(n // LISTS_PER_SECOND) % len(self.names)]
                self._timed("/api/v3/media/assets", self.clip_latencies, {
                    "streamName": stream,
                    "startTime": datetime.fromtimestamp(start, UTC).isoformat(),
                    "stopTime": datetime.fromtimestamp(start + CLIP_SECONDS, UTC).isoformat(),
                })  # fmt: skip
            self._timed("/api/v3/media/assets?limit=25&desc=true&sort=startTime", [], None)
            n += 1
            tick += 1 / LISTS_PER_SECOND
            self._stop.wait(max(0.0, tick - time.monotonic()))

    def _timed(self, path: str, kind: list[float], body: dict[str, Any] | None) -> None:
        began = time.perf_counter()
        try:
            api(self.url, path, body)
        except OSError as exc:  # urllib's HTTPError and URLError included
            if not self.errors:
                detail = exc.read().decode() if isinstance(exc, urllib.error.HTTPError) else ""
                print(f"  {path} failed: {exc} {detail}", file=sys.stderr)
            self.errors += 1
            took = float("inf")
        else:
            took = (time.perf_counter() - began) * 1000
        self.latencies.append(took)
        kind.append(took)


def media_indexed(database: Path, since_ms: int, until_ms: int) -> dict[str, int]:
    """Per stream, the milliseconds of media in segments indexed between the two times."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "select b.stream_name, sum(s.duration_ms) from segments s"
            " join broadcasts b on b.id = s.broadcast_id"
            " where s.arrived_at >= ? and s.arrived_at < ? group by b.stream_name",
            (since_ms, until_ms),
        ).fetchall()
    return {name: int(total or 0) for name, total in rows}


def capacity(protocol: Protocol, steps: list[int], seconds: float, streams: int) -> Capacity:
    cpu = run(protocol, streams, seconds)
    source = source_file()
    cores = os.cpu_count() or 1
    results: list[Step] = []
    with tempfile.TemporaryDirectory(prefix="mediahooks-capacity-") as tmp:
        work = Path(tmp)
        port = free_port(protocol.transport)
        service, url = start_service(work / "data", protocol, port)
        senders: list[subprocess.Popen[Any]] = []
        try:
            names = [f"s{n}" for n in range(max(steps))]
            token = api(url, "/api/publish_token", {
                "label": "bench", "streams": [{"streamName": n} for n in names], "clip": True,
            })["token"]  # fmt: skip
            alone = measure_step(url, service.pid, work, [], seconds)
            print(f"  no stream: API p99 {alone.p99_ms:.0f} ms (listings only)", file=sys.stderr)
            for count in steps:
                for name in names[len(senders) : count]:
                    to = protocol.service_url(port, name, token)
                    if protocol.whip:
                        senders.append(whip_sender(source, url + to, token, protocol.video))
                    else:
                        senders.append(sender(source, protocol.container, to))
                # The first step waits until the streams hold a whole clip.
                time.sleep(1 + WARMUP_SECONDS + (CLIP_SECONDS + 2 if count == steps[0] else 0))
                step = measure_step(url, service.pid, work, names[:count], seconds)
                if not step.passed:  # once more: the machine may be shared, its load in bursts
                    step = measure_step(url, service.pid, work, names[:count], seconds)
                results.append(step)
                print(
                    f"  {step.streams:3d} streams: API p99 {step.p99_ms:.0f} ms "
                    f"(p50 {step.p50_ms:.0f}, clips' p99 {step.clip_p99_ms:.0f}; "
                    f"{step.requests} requests, {step.errors} failed), "
                    f"slowest stream kept {step.slowest_keeping_up:.0%} of real time, "
                    f"service {step.service_cpu_percent}% of a core (with the API load), "
                    f"machine {step.machine_cpu_percent}%",
                    file=sys.stderr,
                )
                if not step.passed:
                    break
                if any(p.poll() is not None for p in senders):
                    raise SystemExit("a sender stopped early")
        finally:
            for process in senders:
                process.terminate()
            for process in senders:
                process.wait()
            service.terminate()
            service.wait()
    passed = [s for s in results if s.passed]
    service_pct, baseline_pct = (
        cpu.service_cpu_percent_per_stream,
        cpu.baseline_cpu_percent_per_stream,
    )
    return Capacity(
        protocol=protocol.name,
        capacity_streams=passed[-1].streams if passed else 0,
        api_alone_p99_ms=alone.p99_ms,
        steps=results,
        cpu=cpu,
        service_cpu_bound_streams=round(cores * 100 / service_pct, 1) if service_pct else 0,
        baseline_cpu_bound_streams=round(cores * 100 / baseline_pct, 1) if baseline_pct else 0,
    )


def measure_step(url: str, service_pid: int, work: Path, names: list[str], seconds: float) -> Step:
    load = ApiLoad(url, names)
    window = Window({"service": with_children(service_pid)})
    since = int(time.time() * 1000)
    window.start()
    started = time.monotonic()
    load.start()
    time.sleep(seconds)
    load.stop()
    used = window.stop()
    elapsed = time.monotonic() - started
    until = int(time.time() * 1000)
    indexed = media_indexed(work / "data" / "mediahooks.db", since, until)
    slowest = min((indexed.get(n, 0) for n in names), default=0) / (until - since)
    p99 = percentile(load.latencies, 99)
    return Step(
        streams=len(names),
        seconds=round(elapsed, 1),
        requests=len(load.latencies),
        errors=load.errors,
        p50_ms=round(percentile(load.latencies, 50), 1),
        p99_ms=round(p99, 1),
        clip_p99_ms=round(percentile(load.clip_latencies, 99), 1),
        slowest_keeping_up=round(slowest, 3),
        service_cpu_percent=round(used["service"] / elapsed * 100, 1),
        machine_cpu_percent=round(used["machine"] / elapsed * 100, 1),
        passed=p99 < P99_LIMIT_MS and slowest >= KEEP_UP and bool(names),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", choices=sorted(PROTOCOLS), default="rtmp")
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--capacity", action="store_true", help="step streams up (see above)")
    parser.add_argument("--steps", default="1,2,4,8,12,16,24,32,40,48,56,64")
    args = parser.parse_args()
    if PROTOCOLS[args.protocol].whip:
        source_ts(source_file())
        source_vp8(source_file())
    if args.capacity:
        steps = sorted({int(n) for n in args.steps.split(",")})
        found = capacity(PROTOCOLS[args.protocol], steps, args.seconds or 15, args.streams)
        print(
            f"{found.protocol}: the service takes {found.capacity_streams} live 720p30 streams "
            f"with the API's p99 under {P99_LIMIT_MS:.0f} ms (steps {steps}; the API alone: "
            f"p99 {found.api_alone_p99_ms:.0f} ms)\n"
            f"  CPU per stream ({found.cpu.streams} streams, no API load, same run): service "
            f"{found.cpu.service_cpu_percent_per_stream}% of a core, ffmpeg -c copy -f segment "
            f"{found.cpu.baseline_cpu_percent_per_stream}% (ratio {found.cpu.ratio}x)\n"
            f"  CPU-bound ceiling on {os.cpu_count()} cores: service "
            f"{found.service_cpu_bound_streams} streams, ffmpeg {found.baseline_cpu_bound_streams}"
        )
        write("ingest-capacity", asdict(found))
        return
    seconds = args.seconds or 30
    if PROTOCOLS[args.protocol].whip:
        report(run(PROTOCOLS["rtmp"], args.streams, seconds))
    report(run(PROTOCOLS[args.protocol], args.streams, seconds))


def report(figures: Figures) -> None:
    print(
        f"{figures.protocol}: {figures.streams} live 720p30 streams for {figures.seconds} s\n"
        f"  CPU per stream: service {figures.service_cpu_percent_per_stream}% of a core, "
        f"ffmpeg -c copy -f segment {figures.baseline_cpu_percent_per_stream}% "
        f"(ratio {figures.ratio}x); machine {figures.machine_cpu_percent}%\n"
        f"  clippable after (median of {figures.segments_measured} segments): "
        f"{figures.delay_after_last_frame_ms_median} ms after a segment's last frame, "
        f"{figures.delay_after_first_frame_ms_median} ms after its first"
    )
    write("ingest", asdict(figures))


def write(name: str, figures: dict[str, Any]) -> None:
    """Into bench/results/<name>-<timestamp>.json, with the machine they were measured on."""
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    record = {**figures, "machine": platform.machine(), "cpus": os.cpu_count()}
    (RESULTS_DIR / f"{name}-{stamp}.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
