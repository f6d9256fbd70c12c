"""Webhook delivery benchmark: mediahooks on SQLite and PostgreSQL beside two baselines.

Every system posts to the same receiver (bench/receiver.py, its own process), which stamps each
request's arrival with `time.time()`; all figures are wall-clock differences on this machine.

- ceiling: a bare aiohttp client loop (no persistence, no signing) with the dispatcher's
  default concurrency limit: the most this receiver takes from one Python process.
- mediahooks: a Service with its dispatcher in this process, a fresh database per run; events
  committed one transaction each through `outbox.emit`, as the API does.
- mediahooks postgresql + N worker: the same producers, with the dispatching done by N
  `mediahooks worker` processes (the scaled-out configuration; `--workers`).
- celery: one Celery task per delivery on Redis (bench/celery_baseline.py), a real prefork worker.

Two measurements each: throughput (a burst of N events x M webhooks, deliveries/s from the first
commit or enqueue to the last arrival) and latency at an offered, paced event rate (p50/p99 of
arrival minus commit or enqueue time). Each burst also reports the CPU it cost per delivery: the
system's processes (producers included), its database or broker server, the receiver, and every
core's busy time (bench/cpu.py).

Run: ``python bench/delivery.py [--events N] [--webhooks M] [--rate R] [--databases ...]``.
Results are printed and written to bench/results/delivery-<timestamp>.json.

The service under test reads its usual ``MEDIAHOOKS_*`` variables (e.g.
``MEDIAHOOKS_PER_WEBHOOK_CONCURRENCY``), so a setting can be tried without editing code.
``MEDIAHOOKS_TEST_POSTGRES_URL`` names the PostgreSQL server for the throwaway databases and
``MEDIAHOOKS_BENCH_CELERY_BROKER`` the Redis database of the Celery baseline (flushed at the end).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

import mediahooks
from mediahooks import events
from mediahooks.config import Settings
from mediahooks.service import Service
from mediahooks.store import outbox, webhooks

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support.databases import POSTGRES_URL, fresh_database

from cpu import Window, named
from delivery_celery import CeleryWorker, run_celery, run_celery_warm_up
from delivery_kit import (
    BENCH_DIR,
    Endpoint,
    Receiver,
    cpu_window,
    paced,
    sample_hook,
    stop,
    with_cpu,
)
from delivery_report import Figures, Options, Sent, describe, report, summarize

DATABASES = ("sqlite", "postgresql")


# --- baseline: the ceiling --------------------------------------------------------------------


async def run_ceiling(opts: Options, receiver: Receiver) -> Figures:
    endpoint = await receiver.endpoint()
    concurrency = Settings().concurrency
    bodies = [events.encode(sample_hook(i)) for i in range(opts.events)]
    jobs = iter(
        (endpoint.url(f"/hook/{w}"), "msg_" + uuid.uuid4().hex, body)
        for body in bodies
        for w in range(opts.webhooks)
    )
    sent: Sent = {}
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=15)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def worker() -> None:
            # Workers share one iterator: each request is taken by exactly one of them.
            for url, msg_id, body in jobs:
                sent[msg_id] = time.time()
                headers = {"Content-Type": "application/json", "webhook-id": msg_id}
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.post(url, data=body, headers=headers) as resp:
                        await resp.read()

        window = cpu_window(lambda: {os.getpid()}, None, receiver)
        window.start()
        started = time.time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    await endpoint.wait_for(opts.deliveries, opts.drain_timeout)
    used = window.stop()
    records = await endpoint.records()
    return with_cpu(
        summarize("ceiling", "throughput", opts.deliveries, started, sent, records), used
    )


# --- our system -------------------------------------------------------------------------------


@asynccontextmanager
async def open_service(kind: str, workers: int = 0) -> AsyncIterator[tuple[Service, set[int]]]:
    """A service on a fresh database, and the pids of its worker processes: with ``workers``,
    its dispatching is done by that many `mediahooks worker` processes instead of this one (the
    scaled-out configuration)."""
    with tempfile.TemporaryDirectory(prefix="mediahooks-bench-") as tmp:
        workdir = Path(tmp)
        async with fresh_database(kind, workdir) as url:
            settings = Settings(
                database_url=url, data_dir=workdir / "data", allow_private_targets="true"
            )
            service = Service(settings)
            await service.open(dispatch=not workers)
            procs: list[asyncio.subprocess.Process] = []
            try:
                for _ in range(workers):
                    procs.append(await start_worker(url, workdir))
                yield service, {proc.pid for proc in procs}
            finally:
                for proc in procs:
                    await stop(proc)
                await service.close()


async def start_worker(url: str, workdir: Path) -> asyncio.subprocess.Process:
    env = dict(
        os.environ,
        MEDIAHOOKS_DATABASE_URL=url,
        MEDIAHOOKS_ALLOW_PRIVATE_TARGETS="true",
        # As in this process, where no logging is set up: no line per attempt.
        MEDIAHOOKS_LOG_LEVEL="WARNING",
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mediahooks", "worker", "--data-dir", str(workdir / "worker"),
        stdout=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    while line := await asyncio.wait_for(proc.stdout.readline(), 30):
        if line.startswith(b"READY worker"):
            return proc
    await stop(proc)
    raise RuntimeError("the mediahooks worker did not start")


async def create_webhooks(service: Service, endpoint: Endpoint, count: int) -> None:
    async with service.db.transaction() as conn:
        for w in range(count):
            values = {"url": endpoint.url(f"/hook/{w}"), "is_media_hooks": True}
            await webhooks.create(conn, service.account_id, values)


async def emit_one(service: Service, index: int, sent: Sent) -> None:
    """One event, one transaction, as the API path does it; stamps the commit."""
    async with service.db.transaction() as conn:
        emitted = await outbox.emit(conn, service.account_id, sample_hook(index))
    sent[emitted.msg_id] = time.time()


async def run_mediahooks(
    kind: str, mode: str, opts: Options, receiver: Receiver, workers: int = 0
) -> Figures:
    endpoint = await receiver.endpoint()
    async with open_service(kind, workers) as (service, worker_pids):
        await create_webhooks(service, endpoint, opts.webhooks)
        # Warm up connections (database pool, HTTP keep-alive) outside the measured window.
        warm: Sent = {}
        await asyncio.gather(*(emit_one(service, i, warm) for i in range(10)))
        if not await endpoint.wait_for(10 * opts.webhooks, opts.drain_timeout):
            raise RuntimeError(f"mediahooks ({kind}) did not deliver the warm-up events")
        await endpoint.start_window()
        system = f"mediahooks {kind}" + (f" + {workers} worker" if workers else "")
        if mode == "throughput":
            store = named("postgres") if kind == "postgresql" else None
            window = cpu_window(lambda: {os.getpid(), *worker_pids}, store, receiver)
            return await _mediahooks_burst(service, system, opts, endpoint, window)
        return await _mediahooks_paced(service, system, opts, endpoint)


async def _mediahooks_burst(
    service: Service, system: str, opts: Options, endpoint: Endpoint, window: Window
) -> Figures:
    sent: Sent = {}
    indexes = iter(range(opts.events))

    async def producer() -> None:
        for i in indexes:
            await emit_one(service, i, sent)

    window.start()
    started = time.time()
    await asyncio.gather(*(producer() for _ in range(opts.producers)))
    await endpoint.wait_for(opts.deliveries, opts.drain_timeout)
    used = window.stop()
    records = await endpoint.records()
    # Our M deliveries of one event share its message id, so one commit stamp covers them all.
    return with_cpu(summarize(system, "throughput", opts.deliveries, started, sent, records), used)


async def _mediahooks_paced(
    service: Service, system: str, opts: Options, endpoint: Endpoint
) -> Figures:
    sent: Sent = {}
    indexes = iter(range(opts.paced_events))
    started = time.time()
    await paced(opts.paced_events, opts.rate, lambda: emit_one(service, next(indexes), sent))
    expected = opts.paced_events * opts.webhooks
    await endpoint.wait_for(expected, opts.drain_timeout)
    records = await endpoint.records()
    return summarize(system, "latency", expected, started, sent, records, opts.rate)


# --- the run ----------------------------------------------------------------------------------


async def environment(opts: Options) -> dict[str, Any]:
    """What the figures depend on besides our code: the machine, its load, the servers."""
    env: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_average_at_start": os.getloadavg()[0],
        "cpu_busy_at_start": cpu_busy(),
        "source": _source_state(),
        "ceiling_concurrency": Settings().concurrency,
        "mediahooks_producers": opts.producers,
        "celery": f"prefork pool, --concurrency {opts.celery_concurrency}, Redis broker, "
        "requests.post per task, acks early (Celery default)",
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if "postgresql" in opts.databases:
        admin = await asyncpg.connect(POSTGRES_URL, timeout=10)
        try:
            rows = await admin.fetch(
                "SELECT name, setting FROM pg_settings WHERE name = ANY($1::text[])",
                ["autovacuum", "fsync", "synchronous_commit", "shared_buffers", "server_version"],
            )
        finally:
            await admin.close()
        env["postgresql"] = {r["name"]: r["setting"] for r in rows}
    return env


def cpu_busy(seconds: float = 1.0) -> float | None:
    """The share of all CPUs busy over ``seconds``, from /proc/stat (None elsewhere)."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields) - idle, sum(fields)

    try:
        busy0, total0 = sample()
        time.sleep(seconds)
        busy1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return (busy1 - busy0) / max(1, total1 - total0)


def _source_state() -> str:
    """The commit measured, and whether src/ had uncommitted changes."""
    root = BENCH_DIR.parent
    imported = Path(mediahooks.__file__).resolve().parent
    if not imported.is_relative_to(root / "src"):
        return f"mediahooks imported from {imported}"
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"{head or 'unknown'}{' + uncommitted changes in src/' if dirty else ''}"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def measure(opts: Options) -> list[Figures]:
    runs: list[Figures] = []

    async def series(label: str, times: int, run: Callable[[], Awaitable[Figures]]) -> None:
        for i in range(times):
            figures = await run()
            runs.append(figures)
            log(f"{f'  {label} #{i + 1}':<38} {describe(figures)}")
            if not figures.complete:
                # A run cut by the drain timeout only bounds the figure; more would only wait.
                log(f"  {label}: incomplete, not repeated")
                return

    async with Receiver.running() as receiver:
        await series("ceiling throughput", opts.repeats, lambda: run_ceiling(opts, receiver))
        configurations = [(kind, 0) for kind in opts.databases]
        if "postgresql" in opts.databases and opts.workers:
            configurations.append(("postgresql", opts.workers))
        for kind, workers in configurations:
            label = f"mediahooks {kind}" + (f" + {workers} worker" if workers else "")
            for mode, times in (("throughput", opts.repeats), ("latency", opts.latency_repeats)):
                run = functools.partial(run_mediahooks, kind, mode, opts, receiver, workers)
                await series(f"{label} {mode}", times, run)
        with CeleryWorker(opts.celery_concurrency) as worker:
            await run_celery_warm_up(worker, receiver)
            for mode, times in (("throughput", opts.repeats), ("latency", opts.latency_repeats)):
                run = functools.partial(run_celery, worker, mode, opts, receiver)
                await series(f"celery {mode}", times, run)
    return runs


async def _main(opts: Options) -> tuple[dict[str, Any], list[Figures]]:
    env = await environment(opts)
    runs = await measure(opts)
    env["cpu_busy_at_end"] = cpu_busy()
    return env, runs


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--events", type=int, default=2000, help="events per throughput run")
    add("--webhooks", type=int, default=3, help="webhooks each event goes to")
    add("--rate", type=float, default=500, help="offered events/s in the latency runs")
    add("--duration", type=float, default=10, help="seconds of each latency run")
    add("--databases", default=",".join(DATABASES), help="comma-separated: sqlite,postgresql")
    add("--repeats", type=int, default=3, help="throughput runs per system (median quoted)")
    add("--latency-repeats", type=int, default=1, help="latency runs per system")
    add("--producers", type=int, default=4, help="concurrent transactions in the burst")
    add(
        "--workers",
        type=int,
        default=1,
        help="PostgreSQL scaled out: also measure with dispatching in this many `mediahooks "
        "worker` processes (0: skip)",
    )
    add("--celery-concurrency", type=int, default=2 * (os.cpu_count() or 1), help="2 x CPUs")
    add("--drain-timeout", type=float, default=30, help="max seconds to wait for arrivals")
    a = parser.parse_args(argv)
    databases = tuple(d.strip() for d in a.databases.split(",") if d.strip())
    if unknown := set(databases) - set(DATABASES):
        parser.error(f"unknown databases: {', '.join(sorted(unknown))}")
    for name in ("events", "webhooks", "repeats", "latency_repeats", "producers"):
        if getattr(a, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if a.workers < 0:
        parser.error("--workers must be 0 or more")
    if a.rate <= 0 or a.duration <= 0:
        parser.error("--rate and --duration must be positive")
    return Options(
        events=a.events,
        webhooks=a.webhooks,
        rate=a.rate,
        duration=a.duration,
        databases=databases,
        repeats=a.repeats,
        latency_repeats=a.latency_repeats,
        producers=a.producers,
        workers=a.workers,
        celery_concurrency=a.celery_concurrency,
        drain_timeout=a.drain_timeout,
    )


def main(argv: list[str] | None = None) -> None:
    opts = parse_args(argv)
    log("measuring (figures per run):")
    env, runs = asyncio.run(_main(opts))
    report(opts, env, runs)


if __name__ == "__main__":
    main()
