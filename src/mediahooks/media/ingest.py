"""HLS ingest: a publisher PUTs its playlist and segments; we keep the segments as the stream's
timeline and time them from the playlist.

- A segment is stored as it arrives; the playlist that follows it gives its wall-clock start
  (`EXT-X-PROGRAM-DATE-TIME`, or its arrival time when the publisher sends none) and duration.
- The first file of a stream starts a broadcast (`feeds`/`started`, and a recording when the
  token says so); a file name seen before, or a new init segment, means the publisher
  restarted: a new broadcast. Silence longer than the idle timeout ends it (the sweeper),
  and so does `EXT-X-ENDLIST`, once every segment that final playlist lists has arrived
  (publishers upload on several connections at once, so the last segment may come after it;
  one that never comes leaves the end to the idle timeout).
- A date farther than `max_clock_skew` from the segment's arrival is the publisher's clock
  gone wrong: the arrival times the segment instead (`timeline.segment_start`), and it is logged.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncConnection

from mediahooks import admission, events
from mediahooks.assets import Status
from mediahooks.clock import iso, now_ms
from mediahooks.config import Settings
from mediahooks.errors import MediahooksError
from mediahooks.media import formats, hls
from mediahooks.media.hls import Entry
from mediahooks.storage.uploads import SegmentUploads
from mediahooks.store import assets, outbox, timelines, tokens
from mediahooks.store.db import Database
from mediahooks.store.schema import DbRow
from mediahooks.timeline import recording_stop, segment_start

FILENAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
STREAM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
SEGMENT_KINDS = {".ts": "ts", ".m4s": "fragment", ".mp4": "init"}
log = logging.getLogger("mediahooks.ingest")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# How long a final playlist's segments are waited for in memory; past it, the sweeper's idle
# timeout has long ended the broadcast anyway.
_FINAL_WAIT = 600.0


class IngestError(MediahooksError):
    """A segment or playlist the HLS ingest refuses; `status` is the platform's HTTP answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Ingest:
    def __init__(self, db: Database, settings: Settings, uploads: SegmentUploads) -> None:
        self.db = db
        self.uploads = uploads
        self.root = settings.data_dir / "timelines"
        self.limit = settings.max_segment_bytes
        self.max_skew_ms = round(settings.max_clock_skew * 1000)
        # Broadcast id -> (when, the entries of its final playlist whose segments had not yet
        # arrived). The broadcast ends when the last of them does.
        self._final: dict[int, tuple[float, dict[str, Entry]]] = {}

    async def authorize(
        self, token: str, stream: str, remote: str | None = None, origin: str | None = None
    ) -> DbRow:
        """The publish token's row, if it may publish ``stream`` now; else IngestError (401
        when the token is unknown, disabled or expired; 403 when it may not publish this
        stream, from ``remote`` (the publisher's IP address) or from ``origin`` (a browser's
        `Origin` header)).

        ``remote`` is also for the log: a refused token is most often a publisher
        misconfigured somewhere, and the operator needs to find which one.
        """
        if not STREAM_NAME.fullmatch(stream):  # nor is anything longer worth a line in the log
            raise IngestError(400, "stream names are 1-128 letters, digits, '.', '_' or '-'")
        async with self.db.engine.connect() as conn:
            publisher = await tokens.by_token(conn, token)
        where = remote or "an unknown address"
        if publisher is None:
            # Enough of what was sent to tell two wrong tokens apart, not enough to use one.
            log.warning(
                "refused a publisher at %s for stream %r: unknown publish token %r...",
                where,
                stream,
                token[:6],
            )
            raise IngestError(401, "unknown publish token")
        refusal = admission.check(tokens.rules(publisher), now_ms(), remote, origin)
        if refusal is not None:
            log.warning(
                "refused a publisher at %s for stream %r with publish token %s: %s",
                where,
                stream,
                publisher.id,
                refusal.reason,
            )
            raise IngestError(refusal.status, refusal.reason)
        if not tokens.allows(publisher, stream):
            raise IngestError(403, f"this token may not publish the stream {stream!r}")
        return publisher

    async def receive(
        self,
        token: str,
        stream: str,
        filename: str,
        body: AsyncIterator[bytes],
        remote: str | None = None,
        origin: str | None = None,
    ) -> None:
        if not FILENAME.fullmatch(filename):
            raise IngestError(400, f"{filename!r} is not an acceptable file name")
        suffix = Path(filename).suffix.lower()
        if suffix != ".m3u8" and suffix not in SEGMENT_KINDS:
            raise IngestError(
                400, "send an HLS playlist (.m3u8), MPEG-TS (.ts) or fMP4 (.mp4, .m4s) files"
            )
        publisher = await self.authorize(token, stream, remote, origin)
        if (refusal := self.uploads.refusal()) is not None:
            raise IngestError(503, refusal)
        staged = await self._stage(body)
        try:
            if suffix == ".m3u8":
                await self._playlist(publisher, stream, staged)
            else:
                await self._segment(publisher, stream, filename, SEGMENT_KINDS[suffix], staged)
        finally:
            staged.unlink(missing_ok=True)

    async def _stage(self, body: AsyncIterator[bytes]) -> Path:
        """Write the upload to a temporary file, refusing it past the size limit."""
        staging = self.root / ".staging"
        staging.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=staging)
        size = 0
        with os.fdopen(fd, "wb") as out:
            async for chunk in body:
                size += len(chunk)
                if size > self.limit:
                    out.close()
                    os.unlink(name)
                    raise IngestError(413, f"an upload may hold at most {self.limit} bytes")
                out.write(chunk)
        if size == 0:
            os.unlink(name)
            raise IngestError(400, "the upload is empty")
        return Path(name)

    async def _segment(
        self, publisher: DbRow, stream: str, filename: str, expected: str, staged: Path
    ) -> None:
        with staged.open("rb") as f:
            kind = formats.sniff(f.read(formats.HEAD_BYTES))
        if kind != expected:
            raise IngestError(400, f"{filename} is not an MPEG-TS segment or an fMP4 fragment")
        now = now_ms()
        async with self.db.transaction() as conn:
            current = await timelines.live(conn, publisher.account_id, stream)
            if kind == "init" and current is not None and current.init_path:
                if _same_file(current.init_path, staged):
                    return  # the same init segment sent again
                restarted = True  # a new init segment: the publisher restarted
            else:
                restarted = current is not None and await timelines.has_segment(
                    conn, current.id, filename
                )
            if current is not None and (restarted or current.token_id != publisher.id):
                await end_broadcast(conn, current, now)
                current = None
            if current is None:
                current = await start_broadcast(
                    conn, publisher, stream, "ts" if kind == "ts" else "fmp4", now
                )
            target = self.root / publisher.account_id / stream / str(current.id) / filename
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(staged, target)
            size = target.stat().st_size
            # Queued for the bucket (its marker on disk) before the row is committed: a crash
            # between the two cannot leave a segment that never goes up.
            self.uploads.add(target, size)
            if kind == "init":
                await timelines.set_init(conn, current.id, str(target), now)
            else:
                await timelines.add_segment(conn, current.id, filename, str(target), size, now)
                await self._after_final_playlist(conn, current, filename, now)

    async def _playlist(self, publisher: DbRow, stream: str, staged: Path) -> None:
        try:
            # A playlist is a few hundred bytes: reading it inline is cheaper than a thread hop.
            playlist = hls.parse_playlist(staged.read_text(errors="replace"))  # noqa: ASYNC240
        except hls.PlaylistError as exc:
            raise IngestError(400, f"not an HLS media playlist: {exc}") from exc
        now = now_ms()
        async with self.db.transaction() as conn:
            current = await timelines.live(conn, publisher.account_id, stream)
            if current is None:
                return  # nothing published yet, or already ended: nothing to time
            waiting = await timelines.untimed(conn, current.id)
            listed = {_segment_name(entry): entry for entry in playlist.entries}
            arrived = {name: entry for name, entry in listed.items() if name in waiting}
            await self._time(conn, current, arrived, waiting)
            await split_long_recordings(conn, current)
            if playlist.ended:
                missing = await timelines.missing(conn, current.id, listed)
                if not missing:
                    await end_broadcast(conn, current, now)
                    return
                self._forget_stale_final_playlists()
                self._final[current.id] = (time.monotonic(), {n: listed[n] for n in missing})
                log.info(
                    "stream %r: the final playlist came before %d of its segments; the "
                    "broadcast ends when they arrive",
                    stream,
                    len(missing),
                )

    async def _time(
        self,
        conn: AsyncConnection,
        broadcast: DbRow,
        entries: dict[str, Entry],
        arrivals: dict[str, int],
    ) -> None:
        """Time segments from their playlist entries (their arrival stands in for a date that
        is missing or too far off)."""
        timings = []
        distrusted: list[tuple[str, int, int]] = []
        for name, entry in entries.items():
            duration = round(entry.duration * 1000)
            start, set_aside = segment_start(
                entry.program_date_time, arrivals[name], duration, self.max_skew_ms
            )
            timings.append((name, start, duration))
            if set_aside and entry.program_date_time is not None:
                distrusted.append((name, entry.program_date_time, arrivals[name]))
        if distrusted:
            _log_distrusted(broadcast, distrusted, self.max_skew_ms)
        await timelines.set_timing(conn, broadcast.id, timings)

    async def _after_final_playlist(
        self, conn: AsyncConnection, broadcast: DbRow, filename: str, now: int
    ) -> None:
        """A segment that its broadcast's final playlist listed before it arrived: time it
        from that playlist, and end the broadcast when it was the last one missing."""
        final = self._final.get(broadcast.id)
        if final is None or filename not in final[1]:
            return
        pending = final[1]
        await self._time(conn, broadcast, {filename: pending.pop(filename)}, {filename: now})
        if not pending:
            del self._final[broadcast.id]
            await split_long_recordings(conn, broadcast)
            await end_broadcast(conn, broadcast, now)

    def _forget_stale_final_playlists(self) -> None:
        oldest = time.monotonic() - _FINAL_WAIT
        for broadcast_id in [b for b, (when, _) in self._final.items() if when < oldest]:
            del self._final[broadcast_id]


def _segment_name(entry: Entry) -> str:
    return entry.uri.rsplit("/", 1)[-1].split("?", 1)[0]


def _log_distrusted(
    broadcast: DbRow, distrusted: list[tuple[str, int, int]], max_skew_ms: int
) -> None:
    # One line per playlist, however many segments it times: a publisher with a wrong clock
    # sends one every second.
    name, date, arrived = distrusted[0]
    log.warning(
        "stream %r (account %s, token %s): EXT-X-PROGRAM-DATE-TIME of %s is %s but it arrived "
        "at %s, more than MEDIAHOOKS_MAX_CLOCK_SKEW (%g s) apart; %d segment(s) timed by their "
        "arrival instead",
        broadcast.stream_name,
        broadcast.account_id,
        broadcast.token_id,
        name,
        # The date came from a datetime, so it fits one (a timestamp of year 1 might not).
        (_EPOCH + timedelta(milliseconds=date)).isoformat(timespec="milliseconds"),
        iso(arrived),
        max_skew_ms / 1000,
        len(distrusted),
    )


def _same_file(a: str, b: Path) -> bool:
    try:
        return Path(a).read_bytes() == b.read_bytes()
    except OSError:
        return False


def _feed(broadcast: DbRow, ended: int | None) -> events.FeedsData:
    return events.FeedsData(
        feed_id=broadcast.feed_id,
        account_id=broadcast.account_id,
        name=broadcast.stream_name,
        stream_id=f"{broadcast.account_id}/{broadcast.stream_name}",
        started=broadcast.started_at,
        active=ended is None,
        ended=ended,
    )


async def start_broadcast(
    conn: AsyncConnection, publisher: DbRow, stream: str, kind: str, now: int
) -> DbRow:
    broadcast = await timelines.start(
        conn,
        account_id=publisher.account_id,
        stream_name=stream,
        token_id=publisher.id,
        feed_id=uuid.uuid4().hex,
        kind=kind,
        now=now,
    )
    hook = events.feeds_hook("started", _feed(broadcast, None), now)
    await outbox.emit(conn, publisher.account_id, hook)
    if publisher.record:
        await _new_recording(conn, broadcast, now)
    return broadcast


async def end_broadcast(conn: AsyncConnection, broadcast: DbRow, now: int) -> None:
    """End a broadcast: `feeds`/`ended`, and its open recording now knows where it stops."""
    ended = await timelines.end(conn, broadcast.id, now)
    await outbox.emit(conn, ended.account_id, events.feeds_hook("ended", _feed(ended, now), now))
    coverage = await timelines.coverage(conn, broadcast.id)
    for recording in await assets.open_recordings(conn, broadcast.id):
        if coverage is None:
            await assets.transition(
                conn, recording.id, Status.ERROR, error="the broadcast carried no media"
            )
        else:
            start = _recording_start(recording, broadcast, coverage[0])
            await assets.set_range(conn, recording.id, start, coverage[1])


async def split_long_recordings(conn: AsyncConnection, broadcast: DbRow) -> None:
    """A recording stops at 24 h; the broadcast goes on in the next one."""
    coverage = await timelines.coverage(conn, broadcast.id)
    if coverage is None:
        return
    for recording in await assets.open_recordings(conn, broadcast.id):
        start = _recording_start(recording, broadcast, coverage[0])
        stop = recording_stop(start, coverage[1], ended=False)
        if stop is not None:
            await assets.set_range(conn, recording.id, start, stop)
            await _new_recording(conn, broadcast, stop)


def _recording_start(recording: DbRow, broadcast: DbRow, covered_from: int) -> int:
    # The first recording of a broadcast was made when its first file arrived, before any
    # playlist said when that file's media began: it starts where the timeline starts.
    if recording.start_time == broadcast.started_at:
        return covered_from
    return int(recording.start_time)


async def _new_recording(conn: AsyncConnection, broadcast: DbRow, start: int) -> None:
    await assets.create(
        conn,
        assets.NewAsset(
            account_id=broadcast.account_id,
            type="recording",
            token_id=broadcast.token_id,
            stream_name=broadcast.stream_name,
            start_time=start,
            broadcast_id=broadcast.id,
            expiration=await assets.expiration_for(conn, broadcast.account_id, "recording"),
        ),
    )
