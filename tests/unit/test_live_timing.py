"""The live path's pure decisions: where segments are cut, and when their media happened."""

from __future__ import annotations

from fractions import Fraction

import pytest

from mediahooks.ingest.timing import Arrivals, Cuts, WallClock


def test_segments_start_at_the_first_keyframe_past_the_target() -> None:
    cuts = Cuts(Fraction(1))
    # A keyframe every half second (15 frames at 30 fps): every other one opens a segment.
    frames = [(Fraction(n, 30), n % 15 == 0) for n in range(91)]
    starts = [time for time, key in frames if cuts.starts(time, key)]
    assert starts == [0, 1, 2, 3]


def test_a_sparse_keyframe_interval_makes_longer_segments_never_a_cut_without_one() -> None:
    cuts = Cuts(Fraction(1))
    # Keyframes at 0, 2.5 and 5 s: segments of 2.5 s, none cut between keyframes.
    frames = [(Fraction(n, 10), n % 25 == 0) for n in range(51)]
    assert [t for t, key in frames if cuts.starts(t, key)] == [0, Fraction(5, 2), 5]


def test_a_keyframe_interval_rounded_a_tick_short_of_the_target_still_cuts() -> None:
    """What ffmpeg's MPEG-TS muxer gives a 30 fps stream with a keyframe a second: 1.4 s, then
    2.39998888... (the timestamps rounded to 90 kHz drift a tick a second)."""
    cuts = Cuts(Fraction(1))
    tick = Fraction(1, 90_000)
    keyframes = [Fraction(7, 5) + n - n * tick for n in range(5)]
    assert [t for t in keyframes if cuts.starts(t, True)] == keyframes
    assert not cuts.starts(keyframes[-1] + Fraction(98, 100), True)  # well short: no cut


def test_nothing_starts_before_the_first_keyframe() -> None:
    cuts = Cuts(Fraction(2))
    assert not cuts.starts(Fraction(0), keyframe=False)
    assert not cuts.starts(Fraction(1, 30), keyframe=False)
    assert cuts.starts(Fraction(2, 30), keyframe=True)  # joins mid-GOP: the first keyframe
    assert not cuts.starts(Fraction(2), keyframe=True)  # 1.93 s later: not yet
    assert cuts.starts(Fraction(3), keyframe=True)


def test_the_target_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Cuts(Fraction(0))


def test_media_time_is_mapped_through_the_first_packets_arrival() -> None:
    # The stream's clock starts at 12.5 s (an encoder that ran before publishing); its first
    # packet arrived at wall-clock 1_000_000 ms.
    clock = WallClock(first_time=Fraction(25, 2), first_wall_ms=1_000_000)
    assert clock.at(Fraction(25, 2)) == 1_000_000
    assert clock.at(Fraction(14)) == 1_001_500
    assert clock.at(Fraction(1, 3) + Fraction(25, 2)) == 1_000_333  # to the nearest ms


def test_a_packets_arrival_is_that_of_the_chunk_holding_its_first_byte() -> None:
    arrivals = Arrivals()
    arrivals.add(0, 100)
    arrivals.add(4096, 140)
    arrivals.add(9000, 180)
    assert arrivals.at(0, fallback_ms=999) == 100
    assert arrivals.at(4095, fallback_ms=999) == 100
    assert arrivals.at(4096, fallback_ms=999) == 140
    assert arrivals.at(20_000, fallback_ms=999) == 180
    # Unknown positions (the demuxer did not say) fall back.
    assert arrivals.at(None, fallback_ms=999) == 999
    assert arrivals.at(-1, fallback_ms=999) == 999
    arrivals.forget()
    assert arrivals.at(0, fallback_ms=999) == 999


def test_arrivals_past_what_is_remembered_fall_back() -> None:
    arrivals = Arrivals()
    for n in range(Arrivals.LIMIT + 10):
        arrivals.add(n * 10, n)
    # Bytes beyond the last chunk remembered may be much later: not guessed.
    assert arrivals.at(Arrivals.LIMIT * 10 + 50, fallback_ms=-5) == -5
    assert arrivals.at(35, fallback_ms=-5) == 3
