"""A thumbnail of a live stream on demand, to its `thumbnail` webhooks: the live broadcast, the
token it is live with, a picture to take, at most `PER_MINUTE` a minute per stream."""

from __future__ import annotations

from collections import deque

from mediahooks.clock import now_ms
from mediahooks.errors import Conflict, Invalid, NotFound, Refused
from mediahooks.media import thumbnails
from mediahooks.service import Service
from mediahooks.store import thumbnails as store
from mediahooks.store import timelines
from mediahooks.store.outbox import Emitted

PER_MINUTE = 6  # the platform's limit, per stream


class Window:
    """At most ``limit`` events per key in any ``span_ms`` (pure; one per API process)."""

    def __init__(self, limit: int, span_ms: int) -> None:
        self.limit, self.span_ms = limit, span_ms
        self._seen: dict[str, deque[int]] = {}

    def admit(self, key: str, now: int) -> int | None:
        """Count an event now; None when admitted, else the ms until one would be."""
        seen = self._seen.setdefault(key, deque())
        while seen and seen[0] <= now - self.span_ms:
            seen.popleft()
        if len(seen) >= self.limit:
            return seen[0] + self.span_ms - now
        seen.append(now)
        return None


def window() -> Window:
    return Window(PER_MINUTE, 60_000)


class TooSoon(Refused):
    """More thumbnails of one stream than the window admits; ``wait_ms`` until the next."""

    def __init__(self, wait_ms: int) -> None:
        super().__init__(
            f"At most {PER_MINUTE} thumbnails a minute per stream; "
            f"the next one can be asked for in {wait_ms / 1000:.1f} s."
        )
        self.wait_ms = wait_ms


async def take(
    service: Service, recent: Window, account: str, stream: str, token_id: int | None
) -> Emitted:
    """Take the stream's picture now and queue its hook; ``token_id``, when given, must be the
    token the stream is live with. ``recent`` counts this process's requests."""
    async with service.db.engine.connect() as conn:
        broadcast = await timelines.live(conn, account, stream)
        path = await store.newest_segment(conn, broadcast.id) if broadcast else None
    if broadcast is None:
        raise NotFound(f"Stream {stream} is not live: thumbnails are of live streams.")
    if token_id is not None and token_id != broadcast.token_id:
        reason = f"stream {stream} is live with token {broadcast.token_id}"
        raise Invalid(f"tokenId {token_id} does not match: {reason}.", {"tokenId": [reason]})
    if path is None:
        raise Conflict(f"Stream {stream} has no picture yet; try again in a second.")
    wait = recent.admit(f"{account}/{stream}", now_ms())
    if wait is not None:
        raise TooSoon(wait)
    emitted = await thumbnails.take(service.db, service.storage, broadcast, path)
    if emitted is None:
        raise Conflict(f"Stream {stream} has no picture to take (no video?).")
    return emitted
