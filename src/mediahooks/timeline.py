"""Timeline arithmetic: which broadcasts cover a time range, and the rules of a clip (pure);
the timed segments that playlists are made of.

A broadcast's coverage runs from its first segment's start to its last segment's end; a clip
range that a restart splits becomes one piece per broadcast it touches.
"""

from __future__ import annotations

from dataclasses import dataclass

SECOND = 1000
MIN_CLIP_MS = 10 * SECOND
MAX_CLIP_MS = 8 * 3600 * SECOND
MAX_RECORDING_MS = 24 * 3600 * SECOND
MAX_TIMELINE_MS = 12 * 3600 * SECOND
# Shorter leftovers of a range split by a restart are not worth a clip of their own.
MIN_PIECE_MS = 1 * SECOND
NO_TIMELINE = (
    "No timelines found matching clipping requirements. The stream must have been live, with "
    "a token that allows clipping, over the requested range."
)


@dataclass(frozen=True)
class Span:
    broadcast_id: int
    token_id: int
    start_ms: int
    stop_ms: int


def segment_start(
    program_date_time: int | None, arrived_ms: int, duration_ms: int, max_skew_ms: int
) -> tuple[int, bool]:
    """When a segment's media began, and whether the publisher's date was set aside.

    A segment arrives once it is whole, so its arrival minus its duration is when it began by
    our clock. The publisher's EXT-X-PROGRAM-DATE-TIME is more precise and wins while it is
    within ``max_skew_ms`` of that; farther, the publisher's clock is wrong (or lying: a date
    in year 9999 would never expire and would make a new recording at every playlist), so our
    clock decides.
    """
    ours = arrived_ms - duration_ms
    if program_date_time is None:
        return ours, False
    if abs(program_date_time - ours) > max_skew_ms:
        return ours, True
    return program_date_time, False


def check_range(start_ms: int, stop_ms: int, now_ms: int) -> str | None:
    """Why a clip range is unacceptable, or None."""
    if start_ms >= now_ms:
        return "startTime must be in the past"
    if stop_ms > now_ms + SECOND:
        return "stopTime must not be in the future"
    if stop_ms <= start_ms:
        return "stopTime must be after startTime"
    length = stop_ms - start_ms
    if length < MIN_CLIP_MS:
        return f"a clip lasts at least 10 s; this range lasts {length / 1000:g} s"
    if length > MAX_CLIP_MS:
        return f"a clip lasts at most 8 h; this range lasts {length / 3_600_000:.2f} h"
    return None


def pieces(spans: list[Span], start_ms: int, stop_ms: int) -> list[Span]:
    """The parts of [start, stop] each broadcast covers, in time order."""
    out = []
    for span in sorted(spans, key=lambda s: s.start_ms):
        lo, hi = max(span.start_ms, start_ms), min(span.stop_ms, stop_ms)
        if hi - lo >= MIN_PIECE_MS:
            out.append(Span(span.broadcast_id, span.token_id, lo, hi))
    return out


def recording_stop(start_ms: int, covered_until_ms: int, ended: bool) -> int | None:
    """Where a recording starting at ``start_ms`` stops: at 24 h, or at the end of its broadcast.

    None while it goes on.
    """
    if covered_until_ms - start_ms >= MAX_RECORDING_MS:
        return start_ms + MAX_RECORDING_MS
    return covered_until_ms if ended else None


@dataclass(frozen=True)
class Segment:
    """A timed segment as playlists need it."""

    filename: str
    start_ms: int
    duration_ms: int
    seq: int | None

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.duration_ms
