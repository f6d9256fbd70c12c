"""Encoded frames out of an aiortc receiver, never decoded, with their losses known.

aiortc reassembles RTP into frames (`JitterBuffer`) and hands each to a decoder thread. A WHIP
publisher's H.264 or VP8 (and, with VP8, its Opus) is passed through instead: `tap` swaps the
receiver's buffer for one that tells, with every frame, the RTP sequence numbers it spans,
and its decoder queue for a sink that gets the encoded frames. A frame that does not follow
its predecessor packet for packet comes after a loss: it and everything up to the next keyframe
are dropped (`Continuity`), so a loss is a gap in the timeline, never a broken picture in a
segment.

The receiver's attribute names are aiortc's private ones, checked at `tap` so that an aiortc
that renamed them fails loudly at the first publisher, not silently.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from typing import Any

from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.utils import uint16_add

# H.264 NAL unit types (ITU-T H.264 table 7-1) that matter here.
_NAL_IDR = 5
_NAL_SPS = 7
_NAL_PPS = 8

_BUFFER = "_RTCRtpReceiver__jitter_buffer"
_QUEUE = "_RTCRtpReceiver__decoder_queue"


class Frame(JitterFrame):
    """An encoded frame and the RTP sequence numbers of its first and last packets."""

    def __init__(self, data: bytes, timestamp: int, first: int, last: int) -> None:
        super().__init__(data, timestamp)
        self.first = first
        self.last = last


class SpanningJitterBuffer(JitterBuffer):
    """aiortc's video jitter buffer, whose frames carry their sequence numbers, and which
    gives up on a lost packet after `max_wait` seconds.

    Same reassembly as aiortc's (`_remove_frame`, which this copies): a frame is handed out
    once the first packet of the next one is in, all packets between present. aiortc waits for
    a missing packet until the buffer is full (512 packets: many seconds of a low-rate stream,
    all that time without a frame); here, once no frame came out for `max_wait` while packets
    kept coming, the hole is skipped (`Continuity` then drops what depends on it) and a
    keyframe is asked for. Retransmissions (NACK) have that long to fill it.
    """

    def __init__(
        self,
        capacity: int,
        prefetch: int = 0,
        is_video: bool = False,
        max_wait: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(capacity, prefetch, is_video)
        self.max_wait = max_wait
        self.clock = clock
        self.skipped = 0  # holes given up on
        self._last_out = clock()

    def add(self, packet: Any) -> tuple[bool, JitterFrame | None]:
        pli, frame = super().add(packet)
        now = self.clock()
        if frame is not None:
            self._last_out = now
            return pli, frame
        if now - self._last_out < self.max_wait or self._origin is None:
            return pli, None
        hole = self._hole()
        if hole is None:
            return pli, None
        self.skipped += 1
        self.smart_remove(hole + 1)  # through the hole, and the rest of its frame
        self._last_out = now
        return True, self._remove_frame(packet.sequence_number)

    def _hole(self) -> int | None:
        """Slots from the origin to the first missing packet, if a later one is here."""
        assert self._origin is not None
        first_missing = None
        for count in range(self.capacity):
            present = self._packets[(self._origin + count) % self._capacity] is not None
            if not present and first_missing is None:
                first_missing = count
            elif present and first_missing is not None:
                return first_missing
        return None

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        assert self._origin is not None
        frame: Frame | None = None
        frames = 0
        packets: list[Any] = []
        remove = 0
        timestamp: int | None = None
        for count in range(self.capacity):
            pos = (self._origin + count) % self._capacity
            packet = self._packets[pos]
            if packet is None:
                break
            if timestamp is None:
                timestamp = packet.timestamp
            elif packet.timestamp != timestamp:
                if frame is None:
                    frame = Frame(
                        b"".join(p._data for p in packets),
                        timestamp,
                        packets[0].sequence_number,
                        packets[-1].sequence_number,
                    )
                    remove = count
                frames += 1
                if frames >= self._prefetch:
                    self.remove(remove)
                    return frame
                packets = []
                timestamp = packet.timestamp
            packets.append(packet)
        return None


class _Sink:
    """Stands in for the receiver's decoder queue: frames go to `on_frame`. The decoder
    thread (started later, with whatever queue the receiver then has) waits on the original
    queue, where only the end (None) is put: aiortc joins the thread when the receiver stops."""

    def __init__(self, original: queue.Queue[Any], on_frame: Callable[[Any], None]):
        self._original = original
        self._on_frame = on_frame

    def get(self) -> Any:
        return self._original.get()

    def put(self, task: tuple[Any, JitterFrame] | None) -> None:
        if task is None:
            self._original.put(None)
            self._on_frame(None)
            return
        _codec, frame = task
        self._on_frame(frame)


def tap(receiver: RTCRtpReceiver, on_frame: Callable[[Any], None], video: bool = True) -> None:
    """Route ``receiver``'s encoded frames to ``on_frame`` (None: the track ended): `Frame`s
    for video; for audio (Opus packets) aiortc's own `JitterFrame`s, from its own buffer.

    Call before media flows (right after the remote description is set)."""
    buffer = getattr(receiver, _BUFFER, None)
    original = getattr(receiver, _QUEUE, None)
    if not isinstance(buffer, JitterBuffer) or not isinstance(original, queue.Queue):
        raise RuntimeError("this aiortc's receiver has no jitter buffer or decoder queue to tap")
    if video:
        setattr(receiver, _BUFFER, SpanningJitterBuffer(capacity=buffer.capacity, is_video=True))
    setattr(receiver, _QUEUE, _Sink(original, on_frame))


def nal_types(data: bytes) -> list[int]:
    """The NAL unit types of an Annex B access unit (start codes 00 00 01 or 00 00 00 01)."""
    types = []
    start = data.find(b"\x00\x00\x01")
    while start != -1 and start + 3 < len(data):
        types.append(data[start + 3] & 0x1F)
        start = data.find(b"\x00\x00\x01", start + 3)
    return types


def is_keyframe(data: bytes) -> bool:
    """An H.264 access unit a decoder can start from: parameter sets and an IDR slice."""
    types = nal_types(data)
    return (
        data.startswith(b"\x00\x00")
        and _NAL_IDR in types
        and _NAL_SPS in types
        and _NAL_PPS in types
    )


class Continuity:
    """Which frames may go into a segment: from a keyframe on, while none is missing."""

    def __init__(self, keyframe: Callable[[bytes], bool] = is_keyframe) -> None:
        self._keyframe = keyframe
        self._last: int | None = None
        self._usable = False
        self.gaps = 0

    def accept(self, frame: Frame) -> bool:
        """Whether ``frame`` is usable; False also means a keyframe is needed (ask for one)."""
        follows = self._last is not None and frame.first == uint16_add(self._last, 1)
        self._last = frame.last
        if not follows and self._usable:
            self.gaps += 1
            self._usable = False
        if not self._usable and self._keyframe(frame.data):
            self._usable = True
        return self._usable
