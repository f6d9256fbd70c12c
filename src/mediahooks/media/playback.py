"""HLS playback of stored timelines (pure): the live playlist at a broadcast's edge, VOD
playlists of any past range, the signed grants their segment URLs carry, and who may watch.

Playlists point at the segments as they were published (no re-encoding, no copy); URIs are
relative to the playlist (`<broadcastId>/<file>?<grant>`), so they work behind any host name.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

from mediahooks.errors import Invalid, Unauthorized
from mediahooks.media.hls import Entry, Playlist, render_playlist
from mediahooks.timeline import Segment

LIVE_WINDOW = 6  # segments in a live playlist: hls.js and ffmpeg start 3 from the end
SESSION_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
INIT_NAME = "init.mp4"


class RangeRefused(Invalid, ValueError):
    """A range a playlist cannot be made of; the message says how to fix the request."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


# --- signed grants -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Grant:
    """Leave to watch one stream until ``expires`` (epoch ms), optionally only the media
    between ``lo`` and ``hi`` (a clip's range). The signature is the credential, so a player
    needs no header and the server checks it without a database query."""

    account_id: str
    stream: str
    expires: int
    lo: int | None = None
    hi: int | None = None

    def _message(self) -> bytes:
        lo = "" if self.lo is None else str(self.lo)
        hi = "" if self.hi is None else str(self.hi)
        return f"play:{self.account_id}/{self.stream}:{lo}:{hi}:{self.expires}".encode()

    def signature(self, key: bytes) -> str:
        return hmac.new(key, self._message(), hashlib.sha256).hexdigest()

    def query(self, key: bytes) -> dict[str, str]:
        """The query parameters that carry the grant."""
        out = {"expires": str(self.expires)}
        if self.lo is not None and self.hi is not None:
            out.update(lo=str(self.lo), hi=str(self.hi))
        out["sig"] = self.signature(key)
        return out

    def refusal(self, key: bytes, sig: str, now_ms: int) -> str | None:
        """Why this grant, presented with ``sig``, may not be used; None when it may."""
        # Compared as bytes: compare_digest refuses str with characters beyond ASCII.
        if not hmac.compare_digest(self.signature(key).encode(), sig.encode(errors="replace")):
            return "This playback link is not valid (its signature does not match)."
        if self.expires <= now_ms:
            return "This playback link has expired: ask for a new one."
        return None

    def contains(self, start_ms: int, stop_ms: int) -> bool:
        """Whether the whole of [start, stop] is within what the grant allows."""
        if self.lo is None or self.hi is None:
            return True
        return self.lo <= start_ms and stop_ms <= self.hi

    def covers(self, start_ms: int, end_ms: int) -> bool:
        """Whether media from ``start_ms`` to ``end_ms`` overlaps what the grant allows."""
        if self.lo is None or self.hi is None:
            return True
        return start_ms < self.hi and end_ms > self.lo


# --- playlists ---------------------------------------------------------------------------------


def _uri(broadcast_id: int, filename: str, query: dict[str, str]) -> str:
    return f"{broadcast_id}/{filename}" + (f"?{urlencode(query)}" if query else "")


def _render(
    broadcast_id: int,
    fmp4: bool,
    segments: list[Segment],
    query: dict[str, str],
    media_sequence: int,
    ended: bool,
) -> str:
    entries = [
        Entry(_uri(broadcast_id, s.filename, query), s.duration_ms / 1000, s.start_ms)
        for s in segments
    ]
    playlist = Playlist(
        entries=entries,
        map_uri=_uri(broadcast_id, INIT_NAME, query) if fmp4 else None,
        media_sequence=media_sequence,
        target_duration=max((s.duration_ms / 1000 for s in segments), default=1.0),
        ended=ended,
    )
    return render_playlist(playlist)


def live_window(newest_first: list[Segment], window: int = LIVE_WINDOW) -> list[Segment]:
    """The last ``window`` segments in order, cut to the newest run without a gap in their
    numbers (each entry's media sequence number is the first's plus its position)."""
    chosen: list[Segment] = []
    for segment in newest_first[:window]:
        if chosen and (segment.seq is None or chosen[-1].seq != segment.seq + 1):
            break
        chosen.append(segment)
    return chosen[::-1]


def live_playlist(
    broadcast_id: int,
    fmp4: bool,
    newest_first: list[Segment],
    query: dict[str, str],
    ended: bool,
    window: int = LIVE_WINDOW,
) -> str:
    """The live edge: the last segments, EXT-X-MEDIA-SEQUENCE advancing as the stream goes on,
    EXT-X-ENDLIST once the broadcast ended."""
    segments = live_window(newest_first, window)
    # Segments stored before they were numbered (an upgrade mid-broadcast) count from 0.
    first = segments[0].seq if segments and segments[0].seq is not None else 0
    return _render(broadcast_id, fmp4, segments, query, first, ended)


def range_segments(overlapping: list[Segment], start_ms: int, stop_ms: int) -> list[Segment]:
    """The segments that best cover [start, stop]: each end snaps to the nearest segment
    boundary, so the playlist lasts the range within one segment (a keyframe interval, as
    publishers cut segments at keyframes). At least one segment is kept."""
    chosen = list(overlapping)
    if len(chosen) > 1 and start_ms - chosen[0].start_ms > chosen[0].end_ms - start_ms:
        chosen.pop(0)
    if len(chosen) > 1 and chosen[-1].end_ms - stop_ms > stop_ms - chosen[-1].start_ms:
        chosen.pop()
    return chosen


def range_playlist(
    broadcast_id: int, fmp4: bool, segments: list[Segment], query: dict[str, str]
) -> str:
    """A VOD playlist of the given segments, each dated (EXT-X-PROGRAM-DATE-TIME), ended."""
    first = segments[0].seq if segments and segments[0].seq is not None else 0
    return _render(broadcast_id, fmp4, segments, query, first, ended=True)


# --- requests ----------------------------------------------------------------------------------


def parse_time(value: str, field: str) -> int:
    """Epoch ms from an integer of milliseconds or an ISO 8601 date-time (UTC when no zone)."""
    text = value.strip()
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise RangeRefused(
            f"{field} must be epoch milliseconds or an ISO 8601 date-time, got {value!r}", field
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


MAX_RANGE_MS = 12 * 3_600_000  # a timeline is capped at 12 h


def parse_range(
    start: str | None, stop: str | None, duration: str | None, now_ms: int
) -> tuple[int, int]:
    """[start, stop] in epoch ms from `start` and either `stop` or `duration` (seconds)."""
    if start is None:
        raise RangeRefused("start is required (epoch ms or ISO 8601)", "start")
    lo = parse_time(start, "start")
    if stop is not None and duration is not None:
        raise RangeRefused("give stop or duration, not both", "stop")
    if stop is not None:
        hi = parse_time(stop, "stop")
    elif duration is not None:
        try:
            seconds = float(duration)
        except ValueError:
            raise RangeRefused(
                f"duration must be a number of seconds, got {duration!r}", "duration"
            ) from None
        if not 0 < seconds <= MAX_RANGE_MS / 1000:
            raise RangeRefused("duration must be more than 0 and at most 12 h", "duration")
        hi = lo + round(seconds * 1000)
    else:
        raise RangeRefused("give stop (epoch ms or ISO 8601) or duration (seconds)", "stop")
    if hi <= lo:
        raise RangeRefused("stop must be after start", "stop")
    if hi - lo > MAX_RANGE_MS:
        raise RangeRefused("a range lasts at most 12 h", "stop")
    if lo >= now_ms:
        raise RangeRefused("start must be in the past", "start")
    return lo, hi


def session_id(given: str | None, address: str, user_agent: str) -> str:
    """A viewer's session: the id the player carries in segment URLs, else one derived from
    its address and user agent (stable across playlist reloads, so a reload is no new viewer)."""
    if given and SESSION_ID.fullmatch(given):
        return given
    digest = hashlib.sha256(f"{address}\n{user_agent}".encode()).hexdigest()
    return digest[:16]


# --- access ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Access:
    """What is known about a playback request, for `refusal`."""

    protected: bool  # a publish token of the stream has subscribeRequiresAuth
    public: bool  # the account lets anyone watch its unprotected streams
    grant_ok: bool  # a valid signed playback link was presented
    token_ok: bool  # a valid subscribe token for the stream was presented


def refusal(access: Access) -> Unauthorized | None:
    """The error refusing a viewer (who lacks the credentials it takes), or None when they may
    watch."""
    if access.grant_ok or access.token_ok:
        return None
    if access.protected:
        return Unauthorized(
            "This stream requires a subscribe token: add ?token=<subscribe token> to the URL "
            "(or send 'Authorization: Bearer <subscribe token>'), or use a signed playback link."
        )
    if access.public:
        return None
    return Unauthorized(
        "Playback of this account is not public: use a signed playback link "
        "(POST /api/v3/playback/link) or a subscribe token, or let anyone watch with "
        'PUT /api/v3/account/playback {"public": true}.'
    )
