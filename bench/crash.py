"""Crash safety: committed events reach every webhook although the server is SIGKILLed.

    .venv/bin/python bench/crash.py [--events 5000] [--kills 5] [--database sqlite|postgresql]

Starts `mediahooks serve` on a fresh database, commits test events through the API while
killing the server at random moments (during production and during the delivery drain), then
waits until every committed event reached all webhooks. Exits 1 when any delivery is missing.
PostgreSQL runs on a throwaway database of the server in MEDIAHOOKS_TEST_POSTGRES_URL.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.crashkit import CrashConfig, CrashReport, run_crash  # noqa: E402
from tests.support.databases import fresh_database  # noqa: E402


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=5000, help="events to commit")
    parser.add_argument("--kills", type=int, default=5, help="SIGKILLs of the server")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--webhooks", type=int, default=3, help="webhooks (receiver paths)")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent producer POSTs")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    parser.add_argument("--drain-timeout", type=float, default=120, help="seconds to wait")
    parser.add_argument("--keep", action="store_true", help="keep the data dir and server log")
    return parser.parse_args()


async def main(args: argparse.Namespace) -> int:
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "big")
    data_dir = Path(tempfile.mkdtemp(prefix="mediahooks-crash-"))
    print(
        f"crash: {args.events} events, {args.webhooks} webhooks, {args.kills} kills, "
        f"{args.database}, seed {seed}",
        flush=True,
    )
    try:
        report = await crash(args, data_dir, seed)
    except BaseException:
        print(f"data and server log kept in {data_dir}", file=sys.stderr)
        raise
    print("\n".join(report.lines()))
    for path, msg_id in report.missing[:10]:
        print(f"  missing: {msg_id} at {path}")
    failed = bool(report.missing) or len(report.kills) < args.kills
    if args.keep or failed:
        print(f"data and server log kept in {data_dir}")
    else:
        shutil.rmtree(data_dir, ignore_errors=True)
    return 1 if failed else 0


async def crash(args: argparse.Namespace, data_dir: Path, seed: int) -> CrashReport:
    async with fresh_database(args.database, data_dir) as url:
        config = CrashConfig(
            database_url=url,
            data_dir=data_dir,
            events=args.events,
            kills=args.kills,
            webhooks=args.webhooks,
            concurrency=args.concurrency,
            drain_timeout=args.drain_timeout,
            seed=seed,
        )
        return await run_crash(config, say=lambda line: print("  " + line, flush=True))


if __name__ == "__main__":
    sys.exit(asyncio.run(main(arguments())))
