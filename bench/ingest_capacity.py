"""Ingest capacity benchmark: how many live 720p30 streams (`ingest.py`'s, over one protocol)
the service takes on this machine while its API answers with a p99 under 100 ms.

Streams are added in steps (`--steps`, the earlier ones keep running); at each step, after a warm-
up, a client measures the API for `--seconds`: ten `GET /api/v3/media/assets` a second and one clip
request (`POST /api/v3/media/assets`, a stream's last 10 s, so clips are really cut). A step passes
when the p99 is under 100 ms and every stream kept up: the media indexed for it during the window
covers at least `KEEP_UP` of the window (a stream the service cannot follow falls behind or loses
frames). A step that fails is measured once more before the run stops (a machine shared with other
work has bursts). The capacity is the last step passed. Beside it, in the same run: the API's p99
with no stream under the listings alone (the machine's own floor), and first `ingest.py`'s plain
measurement (`--streams` streams, no API load: the service's and ffmpeg's CPU per stream); each
side's CPU-bound ceiling is the machine's cores over its CPU per stream (ffmpeg has no API, so that
is the figure that compares; the senders share the machine, so a measured capacity is lower).

Run: ``python bench/ingest_capacity.py [--protocol rtmp|srt|whip|whip-vp8] [--steps 1,2,4,8,...]
[--seconds 15] [--streams 4]``. Results are printed and written to
bench/results/ingest-capacity-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import math
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cpu import Window, with_children
from ingest import (
    PROTOCOLS,
    WARMUP_SECONDS,
    Figures,
    Protocol,
    api,
    free_port,
    prepare,
    run,
    service_sender,
    source_file,
    start_service,
    stop,
    write,
)

P99_LIMIT_MS = 100.0
KEEP_UP = 0.85  # segments are about 1 s: one either side of a 15 s window is 7%
LISTS_PER_SECOND = 10
CLIP_SECONDS = 10  # each clip request: the stream's last 10 s (the shortest clip there is)


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
                    senders.append(service_sender(protocol, source, url, port, name, token))
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
            stop([*senders, service])
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
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--steps", default="1,2,4,8,12,16,24,32,40,48,56,64")
    args = parser.parse_args()
    prepare(PROTOCOLS[args.protocol])
    steps = sorted({int(n) for n in args.steps.split(",")})
    found = capacity(PROTOCOLS[args.protocol], steps, args.seconds, args.streams)
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


if __name__ == "__main__":
    main()
