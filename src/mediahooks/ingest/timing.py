"""The pure decisions of the live path: where a segment is cut, and when its media happened.

- A segment starts on a video keyframe: the first keyframe at least the target length after
  the start of the segment it ends (so segments last about the target, longer with a sparse
  keyframe interval, never shorter except the last).
- A packet's wall-clock time is the arrival of the stream's first packet plus how far the
  stream's own timestamps have moved since: the publisher's clock paces the media, ours only
  anchors it, so network jitter never stretches or squeezes a segment.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from fractions import Fraction

TARGET_SECONDS = Fraction(1)
# A keyframe this much short of the target still cuts: MPEG-TS timestamps are rounded to 90 kHz,
# so a keyframe interval of exactly the target can measure a tick under it, and every other
# keyframe would be skipped (segments of twice the target). Less than a frame at 60 fps.
SLACK_SECONDS = Fraction(1, 100)


class Cuts:
    """Keyframe by keyframe, whether a video packet starts a new segment."""

    def __init__(self, target: Fraction = TARGET_SECONDS) -> None:
        if target <= 0:
            raise ValueError("a segment's target length must be positive")
        self.target = target
        self.start: Fraction | None = None  # media time of the open segment's first picture

    def starts(self, time: Fraction, keyframe: bool) -> bool:
        """Whether the video packet shown at ``time`` opens a segment. The first keyframe of the
        stream always does; nothing before it does (it cannot be decoded alone)."""
        if not keyframe:
            return False
        if self.start is not None and time - self.start < self.target - SLACK_SECONDS:
            return False
        self.start = time
        return True


@dataclass(frozen=True)
class WallClock:
    """Media time (seconds, the stream's own clock) to wall-clock epoch milliseconds."""

    first_time: Fraction  # media time of the first packet kept
    first_wall_ms: int  # when the bytes carrying it arrived

    def at(self, time: Fraction) -> int:
        return self.first_wall_ms + round((time - self.first_time) * 1000)


class Arrivals:
    """When each byte of the input arrived, for the few chunks read before the first packet:
    the demuxer reads ahead (probing codecs), so the moment a packet leaves it is later than
    the moment its bytes came in."""

    LIMIT = 4096  # chunks remembered; the first packet is always among the first few

    def __init__(self) -> None:
        self._offsets: list[int] = []
        self._times: list[int] = []

    def add(self, offset: int, arrived_ms: int) -> None:
        """The chunk starting at byte ``offset`` of the input arrived at ``arrived_ms``."""
        if len(self._offsets) < self.LIMIT:
            self._offsets.append(offset)
            self._times.append(arrived_ms)

    def at(self, position: int | None, fallback_ms: int) -> int:
        """Arrival of the byte at ``position``; ``fallback_ms`` when it is unknown."""
        if position is None or position < 0 or not self._offsets:
            return fallback_ms
        index = bisect.bisect_right(self._offsets, position) - 1
        if index < 0 or (index == len(self._offsets) - 1 and len(self._offsets) == self.LIMIT):
            return fallback_ms
        return self._times[index]

    def forget(self) -> None:
        self._offsets.clear()
        self._times.clear()
