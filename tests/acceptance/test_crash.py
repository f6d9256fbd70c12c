"""Crash safety at CI size: the server is SIGKILLed while events are committed and delivered,
and every event the API confirmed still reaches every webhook (bench/crash.py is the big run).
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from support.crashkit import CrashConfig, run_crash

pytestmark = pytest.mark.slow


async def test_committed_events_survive_sigkills(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = CrashConfig(
        database_url=database_url,
        data_dir=tmp_path / "data",
        events=300,
        kills=3,
        webhooks=3,
        # A short timeout makes the leases of a killed server run out after 7 s.
        attempt_timeout=2,
        retry_schedule="0.2,0.5,0.5,1,1,2",
        poll_interval=0.2,
        produce_timeout=20,
        drain_timeout=30,
        seed=random.randrange(2**32),
    )
    log: list[str] = []
    async with asyncio.timeout(55):
        report = await run_crash(config, say=log.append)
    with capsys.disabled():
        print(
            f"\n  crash[{database_url.split(':')[0]}] seed {config.seed}: "
            f"{report.delivered}/{report.expected} delivered, {report.duplicates} duplicates, "
            f"{len(report.kills)} kills, {report.seconds:.1f} s"
        )

    story = "\n".join(log + report.lines())
    assert not report.missing, f"committed events never delivered: {report.missing[:5]}\n{story}"
    assert report.committed == config.events, story
    assert [k.phase for k in report.kills].count("production") >= 1, story
    assert [k.phase for k in report.kills].count("drain") >= 1, story
    assert any(k.in_flight for k in report.kills), f"no kill hit a delivery in flight\n{story}"
