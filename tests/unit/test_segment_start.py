"""When a segment began: the publisher's date, trusted only within the allowed skew."""

from __future__ import annotations

from datetime import UTC, datetime

from mediahooks.timeline import segment_start

YEAR_9999 = int(datetime(9999, 12, 31, tzinfo=UTC).timestamp() * 1000)


def test_the_publishers_date_wins_only_within_the_skew() -> None:
    # A segment of 1 s that arrived at 100 s began at 99 s by our clock.
    assert segment_start(None, 100_000, 1_000, 60_000) == (99_000, False)
    assert segment_start(98_500, 100_000, 1_000, 60_000) == (98_500, False)
    assert segment_start(99_000 + 60_000, 100_000, 1_000, 60_000) == (159_000, False)
    assert segment_start(99_000 - 60_000, 100_000, 1_000, 60_000) == (39_000, False)
    assert segment_start(99_000 + 60_001, 100_000, 1_000, 60_000) == (99_000, True)
    assert segment_start(99_000 - 60_001, 100_000, 1_000, 60_000) == (99_000, True)
    assert segment_start(YEAR_9999, 100_000, 1_000, 60_000) == (99_000, True)
