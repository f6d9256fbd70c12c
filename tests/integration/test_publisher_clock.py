"""A publisher's clock is not believed blindly: EXT-X-PROGRAM-DATE-TIME far from when a segment
arrived (MEDIAHOOKS_MAX_CLOCK_SKEW) gives way to the arrival time, and says so in the log. Real
streams pushed over HTTP to a real server, both databases."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from mediahooks.clock import now_ms
from mediahooks.media.sweeper import forget_expired_segments
from mediahooks.store.schema import segments
from support.media import push, token
from support.server import Api, ApiFactory
from support.waiting import eventually

DAY_MS = 86_400_000
YEAR_9999 = int(datetime(9999, 12, 31, tzinfo=UTC).timestamp() * 1000)
YEAR_2000 = int(datetime(2000, 1, 1, tzinfo=UTC).timestamp() * 1000)
SECONDS = 12


async def segment_starts(api: Api) -> list[int]:
    async with api.service.db.engine.connect() as conn:
        rows = await conn.execute(select(segments.c.start_ms).order_by(segments.c.id))
        return [row.start_ms for row in rows]


async def push_dated(api: Api, tok: dict[str, object], stream: str, start_ms: int) -> None:
    """Publish a stream whose playlists date its first segment ``start_ms``."""
    await push(api, tok, stream, SECONDS, ago=(now_ms() - start_ms) / 1000 - SECONDS)


@pytest.mark.parametrize("dated", [YEAR_9999, YEAR_2000], ids=["year-9999", "year-2000"])
async def test_a_wrong_clock_is_replaced_by_the_arrival_time_and_logged(
    api_factory: ApiFactory, caplog: pytest.LogCaptureFixture, dated: int
) -> None:
    api = await api_factory()
    await api.ok("PUT", "/api/v3/account/media/expiration", {"timelines": {"days": 1}})
    tok = await token(api, "clockless", record=True)
    caplog.set_level(logging.WARNING, "mediahooks.ingest")
    before = now_ms()
    await push_dated(api, tok, "clockless", dated)
    after = now_ms()

    # Every segment is timed by its arrival: within the push, not in year 9999 or 2000.
    starts = await segment_starts(api)
    assert len(starts) == SECONDS
    assert all(before - 2_000 <= s <= after for s in starts), (before, starts, after)

    # Said in the log, once per playlist, with the stream and the date it did not believe.
    warnings = [r.getMessage() for r in caplog.records if r.name == "mediahooks.ingest"]
    assert warnings, caplog.text
    assert all("'clockless'" in w and "MEDIAHOOKS_MAX_CLOCK_SKEW" in w for w in warnings)
    assert str(datetime.fromtimestamp(dated / 1000, UTC).year) in warnings[0]

    # One recording, of the present, complete: no future one, no empty 24 h ones.
    async def recorded() -> bool:
        done = await api.ok("GET", "/api/v3/media/assets?type=recording&status=complete")
        return len(done) == 1

    await eventually(recorded, timeout=60)
    recordings = await api.ok("GET", "/api/v3/media/assets?type=recording")
    assert len(recordings) == 1
    (recording,) = recordings
    assert recording["startTime"] < recording["stopTime"]
    assert recording["stopTime"][:4] == recording["startTime"][:4] == str(datetime.now(UTC).year)

    # And it expires with the retention, like any other (a year-9999 segment never would).
    await forget_expired_segments(api.service.db, now_ms() + 2 * DAY_MS)
    assert await segment_starts(api) == []


async def test_a_clock_within_the_skew_is_believed(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    tok = await token(api, "cam")
    caplog.set_level(logging.WARNING, "mediahooks.ingest")
    start = await push(api, tok, "cam", SECONDS, ago=30)  # 42 s behind at the first segment
    starts = await segment_starts(api)
    assert starts[0] == start
    assert starts == sorted(starts) and starts[-1] - start == pytest.approx(11_000, abs=100)
    assert [r for r in caplog.records if r.name == "mediahooks.ingest"] == []


async def test_the_skew_is_a_setting(api_factory: ApiFactory) -> None:
    api = await api_factory(max_clock_skew=5)
    tok = await token(api, "cam")
    before = now_ms()
    await push(api, tok, "cam", SECONDS, ago=30)
    assert all(s >= before - 2_000 for s in await segment_starts(api))
