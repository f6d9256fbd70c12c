"""Backlog benchmark: a `mediahooks worker` draining 1,000,000 pending deliveries to a fast local
receiver, with its peak resident memory (RSS) beside the same process's RSS at idle and the
deliveries/s beside bench/delivery.py's ceiling (a bare aiohttp loop to the same receiver), in
the same run.

The backlog is what a long outage of the receivers leaves behind: E events x W webhooks, all
due, written straight into the database in bulk SQL (not through the API), before the worker
starts. The worker is its own process, so its RSS is the service's alone: sampled from
/proc/<pid>/status every 0.2 s (VmRSS), and its peak (VmHWM) read when the last delivery
arrived. The target is a peak under 256 MB.

Run: ``python bench/backlog.py [--events 100000] [--webhooks 10] [--databases sqlite postgresql]``
(bench/storage.py runs it too). Results are printed and written to
bench/results/backlog-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import create_engine, insert, text

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
sys.path.insert(0, str(BENCH_DIR.parent))
sys.path.insert(0, str(BENCH_DIR))

from tests.support.databases import fresh_database  # noqa: E402

import delivery  # noqa: E402
from delivery import start_worker  # noqa: E402
from delivery_kit import Endpoint, Receiver, sample_hook, stop  # noqa: E402
from delivery_report import Options  # noqa: E402
from mediahooks import events  # noqa: E402
from mediahooks.clock import now_ms  # noqa: E402
from mediahooks.config import Settings  # noqa: E402
from mediahooks.service import Service  # noqa: E402
from mediahooks.store import webhooks  # noqa: E402
from mediahooks.store.schema import deliveries  # noqa: E402
from mediahooks.store.schema import events as events_table  # noqa: E402

RSS_LIMIT_MB = 256
BATCH = 20_000  # rows per INSERT batch


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS (now) and VmHWM (the peak so far) of a process, in MB."""
    figures: dict[str, float] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                figures[name] = int(value.split()[0]) / 1024
    return figures


async def prepare(url: str, data_dir: Path, endpoint: Endpoint, count: int) -> str:
    """Migrate, make the account and ``count`` webhooks (through the service's own queries);
    the account's id."""
    service = Service(Settings(database_url=url, data_dir=data_dir, allow_private_targets="true"))
    await service.open(dispatch=False)
    try:
        async with service.db.transaction() as conn:
            for w in range(count):
                values = {"url": endpoint.url(f"/hook/{w}"), "is_media_hooks": True}
                await webhooks.create(conn, service.account_id, values)
        return service.account_id
    finally:
        await service.close()


def insert_backlog(url: str, account_id: str, event_count: int, webhook_ids: list[int]) -> float:
    """SQLite: E events and E x W pending deliveries, due now, in batches of multi-row INSERTs in
    one transaction; seconds it took."""
    began = time.perf_counter()
    engine = create_engine(url)
    now = now_ms()
    with engine.begin() as conn:
        for first in range(0, event_count, BATCH):
            rows = [
                event_row(account_id, sample_hook(index), now)
                for index in range(first, min(first + BATCH, event_count))
            ]
            conn.execute(insert(events_table), rows)
        keys = conn.execute(text("SELECT id, ordering_key FROM events ORDER BY id")).all()
        step = max(1, BATCH // len(webhook_ids))
        for first in range(0, len(keys), step):
            conn.execute(
                insert(deliveries),
                [
                    delivery_row(event_id, w, key, now)
                    for event_id, key in keys[first : first + step]
                    for w in webhook_ids
                ],
            )
    engine.dispose()
    return time.perf_counter() - began


async def insert_pg(url: str, account_id: str, event_count: int, webhook_ids: list[int]) -> float:
    """The same rows on PostgreSQL: COPY of the events, then one INSERT ... SELECT."""
    began = time.perf_counter()
    now = now_ms()
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            columns = ["msg_id", "account_id", "hook_type", "event", "ordering_key",
                       "stream_name", "body", "created_at", "headers"]  # fmt: skip
            for first in range(0, event_count, BATCH):
                rows = []
                for index in range(first, min(first + BATCH, event_count)):
                    row = event_row(account_id, sample_hook(index), now)
                    rows.append(tuple(row[c] for c in columns))
                await conn.copy_records_to_table("events", records=rows, columns=columns)
            await conn.execute(
                """
                INSERT INTO deliveries (event_id, webhook_id, ordering_key, status, tries,
                    attempt_count, next_attempt_at, created_at, updated_at)
                SELECT e.id, w, e.ordering_key, 'pending', 0, 0, $2, $2, $2
                FROM events e CROSS JOIN unnest($1::bigint[]) AS w
                ORDER BY e.id, w
                """,
                webhook_ids,
                now,
            )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return time.perf_counter() - began


def event_row(account_id: str, hook: events.Hook, now: int) -> dict[str, Any]:
    return {
        "msg_id": "msg_" + uuid.uuid4().hex,
        "account_id": account_id,
        "hook_type": hook.type,
        "event": hook.event,
        "ordering_key": hook.ordering_key,
        "stream_name": "bench-stream",
        "body": events.encode(hook),
        "created_at": now,
        "headers": None,
    }


def delivery_row(event_id: int, webhook_id: int, key: str, now: int) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "webhook_id": webhook_id,
        "ordering_key": key,
        "status": "pending",
        "tries": 0,
        "attempt_count": 0,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }


async def webhook_ids(url: str) -> list[int]:
    engine = create_engine(url) if url.startswith("sqlite") else None
    if engine is not None:
        with engine.connect() as conn:
            found = [r[0] for r in conn.execute(text("SELECT id FROM webhooks ORDER BY id"))]
        engine.dispose()
        return found
    conn = await asyncpg.connect(url)
    try:
        return [r["id"] for r in await conn.fetch("SELECT id FROM webhooks ORDER BY id")]
    finally:
        await conn.close()


async def idle_rss(url: str, workdir: Path) -> float:
    """The worker's RSS with nothing to do: started on the prepared database, 3 s after READY."""
    proc = await start_worker(url, workdir)
    try:
        await asyncio.sleep(3)
        return memory_mb(proc.pid)["VmRSS"]
    finally:
        await stop(proc)


async def drain(url: str, workdir: Path, endpoint: Endpoint, expected: int) -> dict:
    """Start the worker on the backlog; sample its RSS until every delivery arrived."""
    proc = await start_worker(url, workdir)
    began = time.time()
    samples: list[float] = []
    try:
        arrived = 0
        while arrived < expected:
            await asyncio.sleep(0.2)
            samples.append(memory_mb(proc.pid)["VmRSS"])
            if len(samples) % 5 == 0:
                arrived = await endpoint.count()
                if len(samples) % 150 == 0:
                    print(f"  {arrived:,} delivered, RSS {samples[-1]:.0f} MB", flush=True)
            if time.time() - began > 3600:
                raise RuntimeError(f"the backlog did not drain within an hour ({arrived:,})")
        seconds = max(r[2] for r in await endpoint.records()) - began
        peak = memory_mb(proc.pid)["VmHWM"]
    finally:
        await stop(proc)
    return {
        "seconds": seconds,
        "per_s": expected / seconds,
        "peak_rss_mb": peak,
        "max_sampled_rss_mb": max(samples),
    }


async def ceiling(receiver: Receiver) -> float:
    """bench/delivery.py's ceiling to the same receiver: deliveries/s."""
    opts = Options(
        events=2_000, webhooks=10, rate=0, duration=0, databases=(), repeats=1,
        latency_repeats=1, producers=1, workers=0, celery_concurrency=1, drain_timeout=120,
    )  # fmt: skip
    figures = await delivery.run_ceiling(opts, receiver)
    return figures.per_s


async def one(kind: str, args: argparse.Namespace, receiver: Receiver) -> dict[str, Any]:
    expected = args.events * args.webhooks
    with tempfile.TemporaryDirectory(prefix="mediahooks-backlog-") as tmp:
        workdir = Path(tmp)
        async with fresh_database(kind, workdir) as url:
            endpoint = await receiver.endpoint()
            account_id = await prepare(url, workdir / "data", endpoint, args.webhooks)
            idle = await idle_rss(url, workdir)
            ids = await webhook_ids(url)
            print(f"{kind}: writing {expected:,} pending deliveries ...", flush=True)
            if kind == "sqlite":
                took = await asyncio.to_thread(insert_backlog, url, account_id, args.events, ids)
            else:
                took = await insert_pg(url, account_id, args.events, ids)
            print(f"{kind}: written in {took:.0f} s; draining ...", flush=True)
            drained = await drain(url, workdir, endpoint, expected)
    return {"database": kind, "deliveries": expected, "idle_rss_mb": idle, **drained}


async def main(args: argparse.Namespace) -> dict[str, Any]:
    async with Receiver.running() as receiver:
        top = await ceiling(receiver)
        runs = [await one(kind, args, receiver) for kind in args.databases]
    for run in runs:
        verdict = "under" if run["peak_rss_mb"] < RSS_LIMIT_MB else "OVER"
        print(
            f"{run['database']}: {run['deliveries']:,} deliveries drained in "
            f"{run['seconds']:.0f} s, {run['per_s']:,.0f}/s (ceiling {top:,.0f}/s, "
            f"{run['per_s'] / top:.0%}); worker RSS idle {run['idle_rss_mb']:.0f} MB, "
            f"peak {run['peak_rss_mb']:.0f} MB ({verdict} {RSS_LIMIT_MB} MB)"
        )
    return {
        "ceiling_per_s": top,
        "runs": runs,
        "events": args.events,
        "webhooks": args.webhooks,
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
    }


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parse.add_argument("--events", type=int, default=100_000)
    parse.add_argument("--webhooks", type=int, default=10)
    parse.add_argument("--databases", nargs="+", default=["sqlite"], choices=delivery.DATABASES)
    return parse


def write(figures: dict[str, Any]) -> None:
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS_DIR / f"backlog-{stamp}.json").write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    write(asyncio.run(main(parser().parse_args())))
