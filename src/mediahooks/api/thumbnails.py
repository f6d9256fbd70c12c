"""`POST /api/thumbnails`: a thumbnail of a live stream now, to its `thumbnail` webhooks."""

from __future__ import annotations

from collections import deque
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ConfigDict, Field, StrictStr

from mediahooks.actions.bodies import Body
from mediahooks.actions.paging import MAX_ID
from mediahooks.api.auth import Account, ServiceDep
from mediahooks.api.envelope import ApiError, ok
from mediahooks.clock import now_ms
from mediahooks.errors import Conflict, Invalid, NotFound
from mediahooks.media import thumbnails
from mediahooks.store import thumbnails as store
from mediahooks.store import timelines

router = APIRouter(prefix="/api/thumbnails", tags=["thumbnails"])

PER_MINUTE = 6  # the platform's limit, per stream


class ThumbnailRequest(Body):
    model_config = ConfigDict(extra="ignore")
    streamName: StrictStr = Field(..., min_length=1, max_length=128)
    tokenId: Annotated[int | None, Field(ge=1, le=MAX_ID)] = None


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


def _window(request: Request) -> Window:
    state = request.app.state
    if not hasattr(state, "thumbnail_window"):
        state.thumbnail_window = Window(PER_MINUTE, 60_000)
    window: Window = state.thumbnail_window
    return window


@router.post(
    "",
    summary="Take a thumbnail of a live stream now and send it to the thumbnail webhooks",
    description=(
        f"At most {PER_MINUTE} a minute per stream (429 past it). Answers `true`; the hook's "
        "message id and the webhooks it was queued for are in the `X-Mediahooks-Message-Id` "
        "and `X-Mediahooks-Webhook-Ids` headers."
    ),
)
async def take_thumbnail(
    body: ThumbnailRequest, request: Request, account: Account, service: ServiceDep
) -> JSONResponse:
    async with service.db.engine.connect() as conn:
        broadcast = await timelines.live(conn, account, body.streamName)
        path = await store.newest_segment(conn, broadcast.id) if broadcast else None
    if broadcast is None:
        raise NotFound(f"Stream {body.streamName} is not live: thumbnails are of live streams.")
    if body.tokenId is not None and body.tokenId != broadcast.token_id:
        reason = f"stream {body.streamName} is live with token {broadcast.token_id}"
        raise Invalid(f"tokenId {body.tokenId} does not match: {reason}.", {"tokenId": [reason]})
    if path is None:
        raise Conflict(f"Stream {body.streamName} has no picture yet; try again in a second.")
    wait = _window(request).admit(f"{account}/{body.streamName}", now_ms())
    if wait is not None:
        raise ApiError(
            429,
            f"At most {PER_MINUTE} thumbnails a minute per stream; "
            f"the next one can be asked for in {wait / 1000:.1f} s.",
        )
    emitted = await thumbnails.take(service.db, service.storage, broadcast, path)
    if emitted is None:
        raise Conflict(f"Stream {body.streamName} has no picture to take (no video?).")
    answer = ok(True)
    answer.headers["X-Mediahooks-Message-Id"] = emitted.msg_id
    answer.headers["X-Mediahooks-Webhook-Ids"] = ",".join(map(str, emitted.webhook_ids))
    return answer
