"""The one live path into the timeline for packet-stream doors (RTMP, SRT, WHIP).

A door authenticates its publisher (`authorize`), opens a `Session` for the stream
(`LiveIngest.open`: the broadcast starts, `feeds`/`started`, a recording when the token records)
and feeds it the publisher's container bytes (FLV or MPEG-TS, or live WebM) as they arrive. A
thread demuxes them and writes MPEG-TS segments cut at keyframes (`remux`), or splits WebM into
its header and segments of clusters (`webm_pieces`); each is indexed here exactly as an HLS
segment is (same directory layout, `timelines.add_segment` and timing), so clips,
recordings, `feeds` hooks and expiry work the same whatever door the media came in by.
`Session.close` (the publisher left, failed or was refused) writes the last segment and ends
the broadcast.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import Literal

from mediahooks import admission, errors
from mediahooks.clock import now_ms
from mediahooks.config import Settings
from mediahooks.ingest.remux import Container, Piece, Pipe, Remuxer
from mediahooks.ingest.webm_pieces import WebmSplitter
from mediahooks.media.ingest import (
    STREAM_NAME,
    end_broadcast,
    split_long_recordings,
    start_broadcast,
)
from mediahooks.storage.uploads import SegmentUploads
from mediahooks.store import timelines, tokens
from mediahooks.store.db import Database
from mediahooks.store.outage import is_outage
from mediahooks.store.schema import DbRow

log = logging.getLogger("mediahooks.ingest")

# token: none, unknown, disabled or expired (401 where the door speaks HTTP); stream: not one the
# token may publish; access: not from the publisher's address or origin (both 403); spool:
# this node's spool of segments the bucket has not taken yet is past its bound (503: retry).
RefusalKind = Literal["token", "stream", "access", "live", "codec", "busy", "spool"]
# Without a new segment (a long keyframe interval), the broadcast is kept alive this often, well
# inside the sweeper's idle timeout.
KEEPALIVE_SECONDS = 2.0
# A live publisher's token is read again this often: disabled, expired or deleted, it stops the
# broadcast (the platform's way to stop a stream is to disable its token).
TOKEN_CHECK_SECONDS = 3.0


class Refused(errors.Refused):
    """A publisher turned away; `reason` says what to change, `kind` what was wrong."""

    def __init__(self, kind: RefusalKind, reason: str) -> None:
        super().__init__(reason)
        self.kind: RefusalKind = kind
        self.reason = reason


async def authorize(
    db: Database, token: str, stream: str, remote: str | None = None, origin: str | None = None
) -> DbRow:
    """The publish token's row, if it may publish ``stream`` now from ``remote`` (the
    publisher's IP address; a token that lists addresses admits no unknown one) and ``origin``
    (a browser's `Origin` header, where the protocol has one); else Refused."""
    if not STREAM_NAME.fullmatch(stream):
        raise Refused(
            "stream", f"{stream[:64]!r} is not a stream name: 1-128 letters, digits, '.', '_', '-'"
        )
    if not token:
        raise Refused("token", "no publish token: add ?token=<token> to the stream name")
    async with db.engine.connect() as conn:
        publisher = await tokens.by_token(conn, token)
    if publisher is None:
        raise Refused("token", "unknown publish token (deleted, or mistyped)")
    refusal = admission.check(tokens.rules(publisher), now_ms(), remote, origin)
    if refusal is not None:
        raise Refused("token" if refusal.status == 401 else "access", refusal.reason)
    if not tokens.allows(publisher, stream):
        raise Refused("stream", f"this publish token may not publish the stream {stream!r}")
    return publisher


class LiveIngest:
    """The process's live publishers: at most `max_publishers`, one per stream."""

    def __init__(self, db: Database, settings: Settings, uploads: SegmentUploads) -> None:
        self.db = db
        self.uploads = uploads
        self.root = settings.data_dir / "timelines"
        self.max_publishers = settings.max_publishers
        self.idle_ms = int(settings.idle_timeout * 1000)
        self._streams: set[tuple[str, str]] = set()  # (account, stream) live or opening here
        self._sessions: set[Session] = set()

    @property
    def publishers(self) -> int:
        return len(self._streams)

    def is_live(self, account_id: str, stream: str) -> bool:
        """Whether this process has ``stream`` live (or opening); safe from any thread."""
        return (account_id, stream) in self._streams

    async def open(
        self, publisher: DbRow, stream: str, container: Container, remote: str
    ) -> Session:
        """Start a broadcast of ``stream`` fed by the returned session.

        Refused("live") when the stream is already live (here, in another process, or over
        HLS): the live publisher is never kicked. Refused("busy") past the publisher limit,
        Refused("spool") past the spool's bound.
        """
        if (refusal := self.uploads.refusal()) is not None:
            raise Refused("spool", refusal)
        key = (publisher.account_id, stream)
        if key in self._streams:
            raise Refused("live", f"the stream {stream!r} is already live; stop that one first")
        if len(self._streams) >= self.max_publishers:
            raise Refused(
                "busy", f"this server takes {self.max_publishers} publishers at once; try later"
            )
        self._streams.add(key)  # held across the transaction: a second publisher waits out
        try:
            now = now_ms()
            async with self.db.transaction() as conn:
                current = await timelines.live(conn, publisher.account_id, stream)
                if current is not None:
                    if current.last_arrival_at >= now - self.idle_ms:
                        raise Refused(
                            "live", f"the stream {stream!r} is already live; stop that one first"
                        )
                    await end_broadcast(conn, current, now)  # a publisher long gone
                kind = "webm" if container == "webm" else "ts"  # what the thread writes
                broadcast = await start_broadcast(conn, publisher, stream, kind, now)
        except BaseException:
            self._streams.discard(key)
            raise
        session = Session(self, publisher, stream, broadcast, container, remote)
        self._sessions.add(session)
        log.info("live: %s started from %s (broadcast %s)", stream, remote, broadcast.id)
        return session

    async def close(self) -> None:
        """End every live broadcast of this process (the service is stopping)."""
        await asyncio.gather(*(s.close() for s in list(self._sessions)))

    def _closed(self, session: Session) -> None:
        self._sessions.discard(session)
        self._streams.discard((session.publisher.account_id, session.stream))


class Session:
    """One publisher's stream on its way into the timeline."""

    def __init__(
        self,
        ingest: LiveIngest,
        publisher: DbRow,
        stream: str,
        broadcast: DbRow,
        container: Container,
        remote: str,
    ) -> None:
        self.ingest = ingest
        self.publisher = publisher
        self.stream = stream
        self.broadcast = broadcast
        self.remote = remote
        self.segments = 0
        self._loop = asyncio.get_running_loop()
        self._pipe = Pipe(self._loop)
        self._pieces: asyncio.Queue[Piece | None] = asyncio.Queue()
        directory = ingest.root / publisher.account_id / stream / str(broadcast.id)
        self._remuxer: Remuxer | WebmSplitter = (
            WebmSplitter(self._pipe, directory, self._deliver)
            if container == "webm"
            else Remuxer(self._pipe, container, directory, self._deliver)
        )
        self._fed = False
        self._closing: asyncio.Task[None] | None = None
        self._revoked: str | None = None
        self._spilled: str | None = None  # the spool went past its bound
        self._indexer = asyncio.create_task(self._index(), name=f"live {stream}")
        self._watcher = asyncio.create_task(self._watch_token(), name=f"token of {stream}")
        self._thread = threading.Thread(
            target=self._remuxer.run, name=f"live {stream}", daemon=True
        )
        self._thread.start()

    @property
    def failed(self) -> str | None:
        """Why the media was refused or unreadable, or the token no longer admits the
        publisher, or the spool is past its bound; the door then disconnects it."""
        return self._revoked or self._spilled or self._remuxer.failed

    async def feed(self, data: bytes) -> None:
        """Container bytes as they arrive; waits while the demuxer is behind."""
        if data:
            self._fed = True
            await self._pipe.put(data)

    async def close(self) -> None:
        """The publisher left or failed: write the last segment, end the broadcast."""
        if self._closing is None:
            self._closing = asyncio.create_task(self._close())
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        self._watcher.cancel()
        self._pipe.close()
        try:
            await self._indexer  # ends once the thread has delivered its last segment
            await asyncio.to_thread(self._thread.join)
            async with self.ingest.db.transaction() as conn:
                current = await timelines.get(conn, self.broadcast.id, lock=True)
                if current is not None and current.ended_at is None:
                    await end_broadcast(conn, current, now_ms())
        finally:
            self.ingest._closed(self)
        if self.failed:
            log.warning("live: %s from %s refused: %s", self.stream, self.remote, self.failed)
        log.info("live: %s ended (%d segments)", self.stream, self.segments)

    async def _watch_token(self) -> None:
        publisher = self.publisher
        while self._revoked is None:
            await asyncio.sleep(TOKEN_CHECK_SECONDS)
            try:
                async with self.ingest.db.engine.connect() as conn:
                    row = await tokens.get(conn, publisher.account_id, publisher.id)
                    stop = await timelines.stop_requested(conn, self.broadcast.id)
            except Exception as exc:
                if not is_outage(exc):
                    log.exception("live: the token of %s could not be read", self.stream)
                continue  # the database is away: the publisher goes on meanwhile
            if stop:  # another process was asked to end it (a WHIP DELETE there)
                self._revoked = "the publisher ended the session"
            elif row is None:
                self._revoked = "the publish token was deleted"
            else:
                refusal = admission.standing(tokens.rules(row), now_ms())
                self._revoked = refusal.reason if refusal is not None else None

    def _deliver(self, piece: Piece | None) -> None:
        """From the remuxer's thread: hand a segment to the loop."""
        with contextlib.suppress(RuntimeError):  # the loop is gone: the process is ending
            self._loop.call_soon_threadsafe(self._pieces.put_nowait, piece)

    async def _index(self) -> None:
        while True:
            # Not wait_for: see `mediahooks.wakeups`.
            try:
                async with asyncio.timeout(KEEPALIVE_SECONDS):
                    piece = await self._pieces.get()
            except TimeoutError:
                if self._fed:
                    self._fed = False
                    await self._keep_alive()
                continue
            if piece is None:
                return
            try:
                await self._add(piece)
            except Exception:
                log.exception("live: segment %s of %s not indexed", piece.filename, self.stream)

    async def _add(self, piece: Piece) -> None:
        broadcast_id = self.broadcast.id
        # Queued for the bucket (its marker on disk) before the row is committed: a crash
        # between the two cannot leave a segment that never goes up.
        self.ingest.uploads.add(piece.path, piece.size)
        if piece.init:  # a WebM timeline's header
            async with self.ingest.db.transaction() as conn:
                await timelines.set_init(conn, broadcast_id, str(piece.path), now_ms())
            return
        async with self.ingest.db.transaction() as conn:
            await timelines.add_segment(
                conn, broadcast_id, piece.filename, str(piece.path), piece.size, now_ms()
            )
            await timelines.set_timing(
                conn, broadcast_id, [(piece.filename, piece.start_ms, piece.duration_ms)]
            )
            await split_long_recordings(conn, self.broadcast)
        self.segments += 1
        if self._spilled is None:
            # Past the bound, a live publisher is let go too: it reconnects once there is room.
            self._spilled = self.ingest.uploads.refusal()
        self._fed = False

    async def _keep_alive(self) -> None:
        try:
            async with self.ingest.db.transaction() as conn:
                await timelines.touch(conn, self.broadcast.id, now_ms())
        except Exception:
            log.exception("live: %s could not be kept alive", self.stream)
