"""HLS media playlists (RFC 8216): read what a publisher's ffmpeg writes, write our own (pure).

Only media playlists, the segment list of one rendition, in the two shapes ffmpeg's hls muxer
produces: MPEG-TS segments, or fMP4 fragments behind one EXT-X-MAP init segment. Anything that
would make a segment mean something other than "the whole file at this URI" (byte ranges,
encryption) is refused rather than misread.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from mediahooks.errors import Invalid

# Bounds that no live stream comes near; beyond them the input is broken or hostile, and a
# parser that accepted it would hand the timeline index garbage or unbounded work.
MAX_ENTRIES = 10_000
MAX_SEGMENT_SECONDS = 600.0

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]*)?")
_INTEGER = re.compile(r"[0-9]+")
_ATTRIBUTE = re.compile(r'\s*([A-Z0-9-]+)=("[^"\r\n]*"|[^",]*)\s*(?:,|$)')
# Tags that only occur in a multivariant (master) playlist.
_MASTER_TAGS = ("#EXT-X-STREAM-INF", "#EXT-X-I-FRAME-STREAM-INF", "#EXT-X-MEDIA:")


class PlaylistError(Invalid, ValueError):
    """The text is not an HLS media playlist this service can use; the message says why."""


@dataclass(frozen=True)
class Entry:
    uri: str
    duration: float  # seconds, from EXTINF
    program_date_time: int | None = None  # wall-clock start, epoch ms
    discontinuity: bool = False


@dataclass(frozen=True)
class Playlist:
    entries: list[Entry] = field(default_factory=list)
    map_uri: str | None = None  # the fMP4 init segment
    media_sequence: int = 0
    target_duration: float = 0.0
    ended: bool = False


def parse_playlist(text: str) -> Playlist:
    """Parse a media playlist; raise PlaylistError naming the line at fault."""
    lines = text.removeprefix("\ufeff").splitlines()
    if not lines or lines[0].strip() != "#EXTM3U":
        raise PlaylistError("not an HLS playlist: the first line is not #EXTM3U")
    reader = _Reader()
    for number, raw in enumerate(lines[1:], start=2):
        line = raw.strip()
        if line.startswith("#"):
            reader.tag(line, number)
        elif line:
            reader.uri(line, number)
    return reader.finish()


def render_playlist(playlist: Playlist) -> str:
    """The playlist as ffmpeg's hls muxer would write it; `parse_playlist` reads it back equal
    (durations to the microsecond, dates to the millisecond, the target duration as an integer).
    """
    map_uri = playlist.map_uri
    if map_uri is not None:
        _check_uri(map_uri, quoted=True)
    # EXT-X-MAP needs version 6; ffmpeg writes 7 for fMP4. Decimal EXTINF durations need 3.
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{7 if map_uri is not None else 3}"]
    lines.append(f"#EXT-X-TARGETDURATION:{_target_duration(playlist)}")
    lines.append(f"#EXT-X-MEDIA-SEQUENCE:{playlist.media_sequence}")
    if map_uri is not None:
        lines.append(f'#EXT-X-MAP:URI="{map_uri}"')
    for entry in playlist.entries:
        _check_uri(entry.uri, quoted=False)
        if entry.discontinuity:
            lines.append("#EXT-X-DISCONTINUITY")
        lines.append(f"#EXTINF:{entry.duration:.6f},")
        if entry.program_date_time is not None:
            lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{_format_date(entry.program_date_time)}")
        lines.append(entry.uri)
    if playlist.ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


class _Reader:
    """Parser state: tags before a URI line describe the segment that URI names."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.map_uri: str | None = None
        self.media_sequence = 0
        self.target_duration: float | None = None
        self.ended = False
        self.duration: float | None = None  # the pending segment's EXTINF
        self.duration_line = 0
        self.date: int | None = None
        self.discontinuity = False

    def tag(self, line: str, number: int) -> None:
        name, _, value = line.partition(":")
        if name == "#EXTINF":
            if self.duration is not None:
                raise PlaylistError(f"line {number}: a second EXTINF before the segment's URI")
            self.duration = _duration(value.partition(",")[0], "EXTINF duration", number)
            self.duration_line = number
        elif name == "#EXT-X-PROGRAM-DATE-TIME":
            self.date = _parse_date(value, number)
        elif name == "#EXT-X-DISCONTINUITY":
            self.discontinuity = True
        elif name == "#EXT-X-MAP":
            self._map(value, number)
        elif name == "#EXT-X-MEDIA-SEQUENCE":
            if not _INTEGER.fullmatch(value):
                raise PlaylistError(f"line {number}: EXT-X-MEDIA-SEQUENCE {value!r} is not a count")
            self.media_sequence = int(value)
        elif name == "#EXT-X-TARGETDURATION":
            self.target_duration = _duration(value, "EXT-X-TARGETDURATION", number)
        elif name == "#EXT-X-ENDLIST":
            self.ended = True
        else:
            _check_supported(name, line, value, number)

    def uri(self, line: str, number: int) -> None:
        if self.duration is None:
            raise PlaylistError(f"line {number}: segment {line!r} has no EXTINF before it")
        if len(self.entries) == MAX_ENTRIES:
            raise PlaylistError(f"more than {MAX_ENTRIES} segments")
        self.entries.append(Entry(line, self.duration, self.date, self.discontinuity))
        self.duration, self.date, self.discontinuity = None, None, False

    def finish(self) -> Playlist:
        if self.duration is not None:
            raise PlaylistError(f"line {self.duration_line}: EXTINF without a segment URI after it")
        if self.target_duration is None:
            raise PlaylistError("EXT-X-TARGETDURATION is missing")
        return Playlist(
            entries=_fill_dates(self.entries),
            map_uri=self.map_uri,
            media_sequence=self.media_sequence,
            target_duration=self.target_duration,
            ended=self.ended,
        )

    def _map(self, value: str, number: int) -> None:
        attributes = _attributes(value, number)
        uri = attributes.get("URI", "")
        if not (len(uri) > 2 and uri.startswith('"') and uri.endswith('"')):
            raise PlaylistError(f"line {number}: EXT-X-MAP has no quoted URI")
        if "BYTERANGE" in attributes:
            raise PlaylistError(f"line {number}: byte-range init segments are not supported")
        uri = uri[1:-1]
        # ffmpeg writes one init segment per playlist; a second one would need per-entry maps.
        if self.map_uri is not None and uri != self.map_uri:
            raise PlaylistError(f"line {number}: a second, different EXT-X-MAP is not supported")
        self.map_uri = uri


def _check_supported(name: str, line: str, value: str, number: int) -> None:
    """Refuse the tags that change what a segment URI means; ignore the rest (RFC 8216 §6.3.1)."""
    if line.startswith(_MASTER_TAGS):
        raise PlaylistError(f"line {number}: a master playlist, not a media playlist")
    if name == "#EXT-X-BYTERANGE":
        raise PlaylistError(f"line {number}: byte-range segments are not supported")
    if name == "#EXT-X-KEY" and _attributes(value, number).get("METHOD") != "NONE":
        raise PlaylistError(f"line {number}: encrypted segments are not supported")


def _duration(text: str, what: str, number: int) -> float:
    text = text.strip()
    if not _DECIMAL.fullmatch(text):
        raise PlaylistError(f"line {number}: {what} {text!r} is not a number of seconds")
    seconds = float(text)
    if seconds > MAX_SEGMENT_SECONDS:
        raise PlaylistError(f"line {number}: {what} {text} s is over {MAX_SEGMENT_SECONDS:g} s")
    return seconds


def _parse_date(text: str, number: int) -> int:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise PlaylistError(
            f"line {number}: EXT-X-PROGRAM-DATE-TIME {text!r} is not an ISO 8601 date"
        ) from None
    if moment.tzinfo is None:
        # The RFC asks for a zone but does not demand one; a publisher's clock is read as UTC.
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def _format_date(epoch_ms: int) -> str:
    moment = _EPOCH + timedelta(milliseconds=epoch_ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _attributes(text: str, number: int) -> dict[str, str]:
    """An attribute list (RFC 8216 §4.2); quoted values keep their quotes."""
    attributes: dict[str, str] = {}
    position = 0
    while position < len(text):
        match = _ATTRIBUTE.match(text, position)
        if match is None or match.end() == position:
            raise PlaylistError(f"line {number}: malformed attribute list {text!r}")
        attributes[match.group(1)] = match.group(2).strip()
        position = match.end()
    return attributes


def _fill_dates(entries: list[Entry]) -> list[Entry]:
    """Give every entry a wall-clock start once any entry has one (RFC 8216bis §4.4.4.6).

    A date applies to its own segment; the segments after it follow on by their cumulated
    EXTINF durations, the ones before the first date precede it the same way.
    """
    first = next(
        (i for i, entry in enumerate(entries) if entry.program_date_time is not None), None
    )
    if first is None:
        return entries
    filled = list(entries)
    anchor, elapsed = 0, 0.0
    for i in range(first, len(filled)):
        entry = filled[i]
        if entry.program_date_time is not None:
            anchor, elapsed = entry.program_date_time, 0.0
        else:
            filled[i] = replace(entry, program_date_time=anchor + round(elapsed * 1000))
        elapsed += entry.duration
    anchor, elapsed = filled[first].program_date_time or 0, 0.0
    for i in range(first - 1, -1, -1):
        elapsed += filled[i].duration
        filled[i] = replace(filled[i], program_date_time=anchor - round(elapsed * 1000))
    return filled


def _target_duration(playlist: Playlist) -> int:
    # RFC 8216 §4.3.3.1: an integer no smaller than any EXTINF rounded to the nearest integer.
    longest = max((round(entry.duration) for entry in playlist.entries), default=0)
    return max(math.ceil(playlist.target_duration), longest)


def _check_uri(uri: str, quoted: bool) -> None:
    """A URI that would break the playlist's line (or quoted-string) structure when written."""
    if not uri.strip() or uri != uri.strip() or "\n" in uri or "\r" in uri or uri.startswith("#"):
        raise PlaylistError(f"segment URI {uri!r} cannot be written as a playlist line")
    if quoted and '"' in uri:
        raise PlaylistError(f"init segment URI {uri!r} contains a double quote")
