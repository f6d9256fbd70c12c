"""Watching a stream: who may (a signed link, a subscribe token, the account's public switch),
the live and range playlists of `/play`, and the media file a segment URL names.

The door reads the request (its query, the `Origin` header, a bearer token, the client's address
and user agent) and passes them here as plain values; it builds the HTTP answer of the result.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import PurePath

from mediahooks.actions import playlinks
from mediahooks.clock import now_ms
from mediahooks.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized, Unavailable
from mediahooks.media import containers, playback
from mediahooks.media.playback import Access, Grant, RangeRefused
from mediahooks.service import Service
from mediahooks.storage import Body, segments
from mediahooks.store import playback as store
from mediahooks.store import subscribe_tokens, tokens
from mediahooks.store.schema import DbRow

MEDIA_TYPES = {".ts": "video/mp2t", ".m4s": "video/iso.segment", ".mp4": "video/mp4"}


@dataclass(frozen=True)
class Link:
    """A signed playback link's values as the request carries them (any may be missing)."""

    expires: int | None = None
    sig: str | None = None
    lo: int | None = None
    hi: int | None = None


@dataclass(frozen=True)
class Viewer:
    """Who asks: the subscribe token in the query, the one sent as a bearer token, the page's
    origin (a browser's `Origin`), the client's address and user agent."""

    token: str | None = None
    bearer: str | None = None
    origin: str | None = None
    address: str = ""
    user_agent: str = ""

    @property
    def subscribe_token(self) -> str | None:
        """The subscribe token presented: the query's, else the bearer one."""
        return self.token or self.bearer or None


@dataclass(frozen=True)
class MediaFile:
    """A segment or init segment to answer: on this node's disk (``path``), or read from the
    bucket (``body``) when another node ingested the stream."""

    media_type: str
    path: str | None = None
    body: Body | None = None


async def grant(service: Service, account: str, stream: str, link: Link) -> Grant | None:
    """The signed grant the request carries, checked; None when it carries none."""
    if link.sig is None and link.expires is None:
        return None
    if link.sig is None or link.expires is None:
        raise Forbidden("A playback link needs both expires and sig: use it unchanged.")
    if (link.lo is None) != (link.hi is None):
        raise Forbidden("A playback link's lo and hi come together: use it unchanged.")
    presented = Grant(account, stream, link.expires, link.lo, link.hi)
    refusal = presented.refusal(await playlinks.key(service), link.sig, now_ms())
    if refusal:
        raise Forbidden(refusal)
    return presented


async def _token_expiry(
    service: Service, account: str, stream: str, token: str, origin: str | None
) -> int | None:
    """A subscribe token valid for the stream: returns when it expires (None: never)."""
    async with service.db.engine.connect() as conn:
        row = await subscribe_tokens.by_token(conn, account, token)
    if row is None or not row.is_active:
        raise Forbidden("Unknown or inactive subscribe token.")
    if row.expires_at is not None and row.expires_at <= now_ms():
        raise Forbidden("This subscribe token has expired.")
    if not tokens.allows(row, stream):
        raise Forbidden(f"This subscribe token does not allow the stream {stream!r}.")
    origins = json.loads(row.allowed_origins)
    if origin and origins and origin not in origins:
        raise Forbidden(f"This subscribe token may not be used from {origin}.")
    expires: int | None = row.expires_at
    return expires


async def _authorize(
    service: Service,
    account: str,
    stream: str,
    token_ids: set[int],
    presented: Grant | None,
    viewer: Viewer,
    lasts_ms: int,
) -> Grant:
    """Refuse the viewer, or return the grant its playlist's segment URLs carry."""
    async with service.db.engine.connect() as conn:
        public = await store.public(conn, account)
        if public is None:
            raise NotFound(f"No account {account!r}.")
        protected = await store.protected(conn, account, stream, token_ids)
    token = viewer.subscribe_token
    token_expires = None
    if presented is None and token is not None:
        token_expires = await _token_expiry(service, account, stream, token, viewer.origin)
    refused = playback.refusal(Access(protected, public, presented is not None, token is not None))
    if refused:
        raise refused
    if presented is not None:
        return presented
    expires = now_ms() + int(service.settings.playback_ttl * 1000) + lasts_ms
    if token_expires is not None:
        expires = min(expires, token_expires)
    return Grant(account, stream, expires)


def _playable(broadcast: DbRow) -> None:
    """HLS carries MPEG-TS and fMP4 timelines only: a WebM one (VP8 published over WHIP) is
    refused rather than answered with a playlist no player could play."""
    if not containers.timeline(broadcast.kind).hls:
        raise Conflict(
            f"Broadcast {broadcast.id} is VP8 in WebM (published from a browser over WHIP), "
            "which HLS cannot carry: request a clip (a WebM file) instead, or publish H.264."
        )


async def live_playlist(
    service: Service, account: str, stream: str, link: Link, viewer: Viewer, sid: str | None
) -> str:
    """The live edge of the stream's newest broadcast; the viewer is counted while it is live."""
    presented = await grant(service, account, stream, link)
    if presented is not None and presented.lo is not None:
        raise Forbidden("This playback link is for a past range, not the live stream.")
    async with service.db.engine.connect() as conn:
        latest = await store.latest(conn, account, stream)
    ids = set() if latest is None else {int(latest.token_id)}
    allowed = await _authorize(service, account, stream, ids, presented, viewer, 0)
    key = (account, stream)
    viewers = service.viewers
    if latest is None or latest.ended_at is not None:
        viewers.attempted(key)
    async with service.db.engine.connect() as conn:
        newest = (
            []
            if latest is None
            else await store.newest_segments(conn, latest.id, service.settings.live_window)
        )
    if latest is None or not newest:
        state = "has not started" if latest is None or latest.ended_at is None else "has ended"
        raise NotFound(f"The stream {stream!r} {state}: nothing to play yet.")
    _playable(latest)
    query = allowed.query(await playlinks.key(service))
    if latest.ended_at is None:
        session = playback.session_id(sid, viewer.address, viewer.user_agent)
        viewers.seen(key, session)
        query["sid"] = session
    return playback.live_playlist(
        latest.id,
        latest.kind == "fmp4",
        newest,
        query,
        latest.ended_at is not None,
        service.settings.live_window,
    )


async def range_playlist(
    service: Service,
    account: str,
    stream: str,
    start: str | None,
    stop: str | None,
    duration: str | None,
    broadcast: int | None,
    link: Link,
    viewer: Viewer,
) -> str:
    """A VOD playlist of a past range (from ``start`` to ``stop`` or for ``duration``); a range
    over a restart needs ``broadcast`` to say which broadcast."""
    presented = await grant(service, account, stream, link)
    try:
        start_ms, stop_ms = playback.parse_range(start, stop, duration, now_ms())
    except RangeRefused as exc:
        raise Invalid(exc.message, {exc.field: [exc.message]}) from exc
    if presented is not None and not presented.contains(start_ms, stop_ms):
        raise Forbidden("This playback link allows only the range it was made for.")
    async with service.db.engine.connect() as conn:
        found = await store.overlapping(conn, account, stream, start_ms, stop_ms)
        if broadcast is not None:
            found = {b: s for b, s in found.items() if b == broadcast}
        rows = await store.broadcasts_by_id(conn, list(found))
    token_ids = {int(r.token_id) for r in rows.values()}
    allowed = await _authorize(
        service, account, stream, token_ids, presented, viewer, stop_ms - start_ms
    )
    if not found:
        raise NotFound(f"No timeline of {stream!r} covers this range (anymore).")
    if len(found) > 1:
        ids = ", ".join(str(b) for b in found)
        raise Invalid(
            f"The range spans broadcasts {ids} (the stream restarted): add broadcast=<id>.",
            {"broadcast": [f"one of {ids}"]},
        )
    ((broadcast_id, overlapping),) = found.items()
    _playable(rows[broadcast_id])
    chosen = playback.range_segments(overlapping, start_ms, stop_ms)
    query = allowed.query(await playlinks.key(service))
    fmp4 = rows[broadcast_id].kind == "fmp4"
    return playback.range_playlist(broadcast_id, fmp4, chosen, query)


def covered(allowed: Grant, start_ms: int | None, duration_ms: int | None) -> bool:
    """Whether a segment's media is within what the grant allows."""
    # An untimed segment is in no playlist yet: nothing to refuse it by.
    return start_ms is None or allowed.covers(start_ms, start_ms + (duration_ms or 0))


async def media_file(
    service: Service,
    account: str,
    stream: str,
    broadcast_id: int,
    file_name: str,
    link: Link,
    sid: str | None,
) -> MediaFile:
    """The segment (or fMP4 init segment) a signed segment URL names; the viewer is counted
    while the broadcast is live."""
    allowed = await grant(service, account, stream, link)
    if allowed is None:
        raise Unauthorized("Segment URLs are signed: take them from a playlist of /play.")
    suffix = PurePath(file_name).suffix.lower()
    if suffix not in MEDIA_TYPES:
        raise NotFound("Segments end in .ts or .m4s; the init segment is init.mp4.")
    async with service.db.engine.connect() as conn:
        if suffix == ".mp4":
            row = await store.broadcast_of(conn, account, stream, broadcast_id)
            path, live = (row.init_path, row.ended_at is None) if row else (None, False)
        else:
            row = await store.segment_file(conn, account, stream, broadcast_id, file_name)
            if row is not None and not covered(allowed, row.start_ms, row.duration_ms):
                raise Forbidden("This playback link does not cover this segment.")
            path, live = (row.path, row.ended_at is None) if row else (None, False)
    if not path:
        raise NotFound("This segment is gone: it left the timeline.")
    if segments.here(path):
        found = MediaFile(MEDIA_TYPES[suffix], path=path)
    else:
        # Another node ingested the stream: the segment comes from the bucket, through here.
        try:
            body = await segments.read(service.storage, path)
        except FileNotFoundError as exc:
            if live and service.storage.kind != "local":  # its node has not uploaded it yet
                raise Unavailable("This segment is not in the media store yet; retry.") from exc
            raise NotFound("This segment is gone: it left the timeline.") from exc
        except Exception as exc:  # the bucket cannot be reached: nothing the viewer did wrong
            raise Unavailable("The media store cannot be reached; try again shortly.") from exc
        found = MediaFile(MEDIA_TYPES[suffix], body=body)
    if sid is not None and live:
        service.viewers.seen((account, stream), sid)
    return found


async def is_public(service: Service, account: str) -> bool:
    """Whether anyone may watch the account's unprotected streams."""
    async with service.db.engine.connect() as conn:
        return bool(await store.public(conn, account))


async def set_public(service: Service, account: str, public: bool) -> bool:
    async with service.db.transaction() as conn:
        await store.set_public(conn, account, public)
    return public
