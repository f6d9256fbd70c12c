"""A live WebM byte stream split into its header and its clusters (pure).

FFmpeg's WebM muxer, writing live (`live=1`, nowhere to seek back to), writes the EBML header,
the Segment with an unknown size, its Info and Tracks, then one Cluster after another, each
whole and of known size. Concatenating the header and any run of those clusters is again a
valid WebM stream (the clusters' timecodes are absolute), which is how a WebM timeline is
stored: the header as its init segment, clusters grouped into segments. `Splitter` reads the
stream as it comes and hands out each part once it is whole, with what the cut needs: a
cluster's time and whether it opens on a video keyframe, and the wall-clock time of the
stream's timestamp 0 (its DateUTC), which the writer knows better than the arrival of bytes
held back by the muxer until a cluster is whole.
"""

from __future__ import annotations

from dataclasses import dataclass

EBML = 0x1A45DFA3
SEGMENT = 0x18538067
INFO = 0x1549A966
DATE_UTC = 0x4461
TRACKS = 0x1654AE6B
TRACK_ENTRY = 0xAE
TRACK_NUMBER = 0xD7
TRACK_TYPE = 0x83
CLUSTER = 0x1F43B675
TIMECODE = 0xE7
SIMPLE_BLOCK = 0xA3
BLOCK_GROUP = 0xA0
BLOCK = 0xA1
REFERENCE_BLOCK = 0xFB
VIDEO_TRACK_TYPE = 1
# DateUTC counts nanoseconds from 2001-01-01T00:00:00Z: that instant in epoch milliseconds.
_MATROSKA_EPOCH_MS = 978_307_200_000
# A size field with every value bit set means "unknown" (a live Segment).
_UNKNOWN = -1


class EbmlError(ValueError):
    """The bytes are not the live WebM stream expected."""


@dataclass(frozen=True)
class Cluster:
    data: bytes
    offset: int  # where it starts in the stream
    time_ms: int  # its first video block's time (the stream's own milliseconds)
    end_ms: int  # the time of its last block
    keyframe: bool  # its first video block is a keyframe: a segment may start here


def read_id(data: bytes | bytearray | memoryview, pos: int) -> tuple[int, int] | None:
    """The element ID at ``pos`` (marker bits kept, as IDs are written) and its length."""
    if pos >= len(data):
        return None
    length = _length(data[pos])
    if length > 4:
        raise EbmlError(f"bad element ID at byte {pos}")
    if pos + length > len(data):
        return None
    return int.from_bytes(data[pos : pos + length], "big"), length


def read_size(data: bytes | bytearray | memoryview, pos: int) -> tuple[int, int] | None:
    """The size at ``pos`` (marker bit removed; `_UNKNOWN` when all ones) and its length."""
    if pos >= len(data):
        return None
    length = _length(data[pos])
    if pos + length > len(data):
        return None
    value = int.from_bytes(data[pos : pos + length], "big") & ((1 << (7 * length)) - 1)
    return (_UNKNOWN if value == (1 << (7 * length)) - 1 else value), length


def _length(first: int) -> int:
    if not first:
        raise EbmlError("a variable-length number longer than 8 bytes")
    return 9 - first.bit_length()


def children(data: bytes | memoryview) -> list[tuple[int, memoryview]]:
    """The elements of a whole element's body, (ID, body) each."""
    view = memoryview(data)
    out = []
    pos = 0
    while pos < len(view):
        element = read_id(view, pos)
        size = read_size(view, pos + element[1]) if element else None
        if element is None or size is None or size[0] == _UNKNOWN:
            raise EbmlError("an element runs past its parent")
        start = pos + element[1] + size[1]
        out.append((element[0], view[start : start + size[0]]))
        pos = start + size[0]
    return out


class Splitter:
    """Feed the stream's bytes in order; `header` is set once the first cluster is whole,
    and `feed` returns each whole cluster."""

    def __init__(self) -> None:
        self.header: bytes | None = None
        self.video_track: int | None = None
        self.date_ms: int | None = None  # epoch ms of timestamp 0 (DateUTC), if given
        self._head = bytearray()  # the header while it grows
        self._buffer = bytearray()
        self._offset = 0  # stream offset of the buffer's first byte
        self._in_segment = False

    def feed(self, data: bytes) -> list[Cluster]:
        self._buffer += data
        clusters: list[Cluster] = []
        while True:
            element = read_id(self._buffer, 0)
            size = read_size(self._buffer, element[1]) if element else None
            if element is None or size is None:
                return clusters
            ident, head = element[0], element[1] + size[1]
            if not self._head and ident != EBML:
                raise EbmlError("the stream does not start with an EBML header")
            if ident == SEGMENT:
                if self._in_segment or size[0] != _UNKNOWN:
                    raise EbmlError("a WebM stream written live has one Segment of unknown size")
                self._in_segment = True
                self._head += self._take(head)  # its children follow, read one by one
                continue
            if size[0] == _UNKNOWN:
                raise EbmlError(f"element {ident:x} of unknown size")
            if len(self._buffer) < head + size[0]:
                return clusters
            offset = self._offset
            whole = self._take(head + size[0])
            if ident == CLUSTER:
                if self.header is None:
                    if self.video_track is None:
                        raise EbmlError("the stream has no video track")
                    self.header = bytes(self._head)
                clusters.append(self._cluster(whole, whole[head:], offset))
            elif self.header is None:
                if ident == TRACKS:
                    self.video_track = _video_track(whole[head:])
                elif ident == INFO:
                    self.date_ms = _date_ms(whole[head:])
                self._head += whole
            # Anything after the clusters began (the Cues and Tags of the end) is not media.

    def _take(self, count: int) -> bytes:
        taken = bytes(self._buffer[:count])
        del self._buffer[:count]
        self._offset += count
        return taken

    def _cluster(self, whole: bytes, body: bytes, offset: int) -> Cluster:
        time = 0
        video: tuple[int, bool] | None = None  # its first video block: (time, keyframe)
        last = 0
        for ident, value in children(body):
            if ident == TIMECODE:
                time = int.from_bytes(value, "big")
            elif ident in (SIMPLE_BLOCK, BLOCK_GROUP):
                track, relative, key = _block(ident, value)
                last = max(last, relative)
                if video is None and track == self.video_track:
                    video = (relative, key)
        # Audio at the keyframe's time may come before it: every audio block stands alone.
        start, keyframe = video if video is not None else (0, False)
        return Cluster(whole, offset, time + start, time + last, keyframe)


def _date_ms(info: bytes) -> int | None:
    for ident, value in children(info):
        if ident == DATE_UTC and len(value) == 8:
            nanoseconds = int.from_bytes(value, "big", signed=True)
            return _MATROSKA_EPOCH_MS + nanoseconds // 1_000_000
    return None


def _video_track(tracks: bytes) -> int | None:
    for ident, entry in children(tracks):
        if ident != TRACK_ENTRY:
            continue
        fields = dict(children(entry))
        if int.from_bytes(fields.get(TRACK_TYPE, b""), "big") == VIDEO_TRACK_TYPE:
            return int.from_bytes(fields.get(TRACK_NUMBER, b""), "big")
    return None


def _block(ident: int, value: memoryview) -> tuple[int, int, bool]:
    """A block's (track, time relative to its cluster, keyframe)."""
    if ident == BLOCK_GROUP:
        fields = dict(children(value))
        if BLOCK not in fields:
            raise EbmlError("a BlockGroup without a Block")
        track, relative, _ = _block(SIMPLE_BLOCK, fields[BLOCK])
        return track, relative, REFERENCE_BLOCK not in fields
    size = read_size(value, 0)
    if size is None or len(value) < size[1] + 3:
        raise EbmlError("a block shorter than its header")
    track, pos = size[0], size[1]
    relative = int.from_bytes(value[pos : pos + 2], "big", signed=True)
    return track, relative, bool(value[pos + 2] & 0x80)
