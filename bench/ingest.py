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

How many such streams the service takes while its API stays fast is `ingest_capacity.py`'s.

Run: ``python bench/ingest.py [--streams 4] [--seconds 30] [--protocol rtmp|srt|whip|whip-vp8]``.
Results are printed and written to bench/results/ingest-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
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


def service_sender(
    protocol: Protocol, source: Path, api_url: str, port: int, stream: str, token: str
) -> subprocess.Popen[bytes]:
    """A publisher of ``stream`` to the service over ``protocol`` (WHIP's URL is the API's)."""
    to = protocol.service_url(port, stream, token)
    if protocol.whip:
        return whip_sender(source, api_url + to, token, protocol.video)
    return sender(source, protocol.container, to)


def stop(processes: list[subprocess.Popen[Any]]) -> None:
    """Ask them all to stop first, then wait: they wind down side by side."""
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait()


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
                processes.append(service_sender(protocol, source, url, port, name, token))
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
            stop([*processes, service])
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", choices=sorted(PROTOCOLS), default="rtmp")
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    prepare(PROTOCOLS[args.protocol])
    if PROTOCOLS[args.protocol].whip:
        report(run(PROTOCOLS["rtmp"], args.streams, args.seconds))
    report(run(PROTOCOLS[args.protocol], args.streams, args.seconds))


def prepare(protocol: Protocol) -> None:
    """Encode the sources a protocol's senders need, before anything is measured."""
    if protocol.whip:
        source_ts(source_file())
        source_vp8(source_file())


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
