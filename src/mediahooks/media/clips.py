"""Clip requests: from a stream name and a time range to one `processing` asset per broadcast
the range touches, each committed with its hook."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from mediahooks.errors import Invalid
from mediahooks.store import assets, timelines, tokens
from mediahooks.store.schema import DbRow
from mediahooks.timeline import NO_TIMELINE, check_range, pieces


class ClipRefused(Invalid):
    """A clip request the timeline cannot serve, and the field to fix."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message, {field: [message]})
        self.field = field


@dataclass(frozen=True)
class ClipRequest:
    stream_name: str
    start_ms: int
    stop_ms: int
    token_id: int | None = None
    name: str | None = None
    expiration: int | None = None


# The `processing` hook's metadata of a clip of (broadcast, start, stop): its playback link.
HookMetadata = Callable[[int, int, int], dict[str, Any]]


async def request(
    conn: AsyncConnection,
    account_id: str,
    clip: ClipRequest,
    now: int,
    hook_metadata: HookMetadata | None = None,
    storage_profile_id: str | None = None,
) -> list[DbRow]:
    """One `processing` clip per broadcast the range touches; its file goes to the storage
    profile ``storage_profile_id`` (None: the service's own storage)."""
    reason = check_range(clip.start_ms, clip.stop_ms, now)
    if reason:
        raise ClipRefused(reason, "startTime" if "startTime" in reason else "stopTime")
    if clip.expiration is not None and clip.expiration <= now:
        raise ClipRefused("expiration must be in the future", "expiration")
    if clip.token_id is not None:
        token = await tokens.get(conn, account_id, clip.token_id)
        if token is None:
            raise ClipRefused(f"publish token {clip.token_id} does not exist", "tokenId")
        if not token.clip:
            raise ClipRefused(f"publish token {clip.token_id} does not allow clipping", "tokenId")
    spans = [
        span
        for span in await timelines.spans(conn, account_id, clip.stream_name)
        if clip.token_id in (None, span.token_id)
    ]
    # A deleted token's timelines stay clippable: the media was published while it was valid.
    refused = await tokens.without_clipping(conn, account_id, {s.token_id for s in spans})
    spans = [span for span in spans if span.token_id not in refused]
    found = pieces(spans, clip.start_ms, clip.stop_ms)
    if not found:
        raise ClipRefused(NO_TIMELINE, "startTime")
    expiration = clip.expiration or await assets.expiration_for(conn, account_id, "clip")
    return [
        await assets.create(
            conn,
            assets.NewAsset(
                account_id=account_id,
                type="clip",
                token_id=piece.token_id,
                stream_name=clip.stream_name,
                start_time=piece.start_ms,
                stop_time=piece.stop_ms,
                name=clip.name,
                expiration=expiration,
                broadcast_id=piece.broadcast_id,
                storage_profile_id=storage_profile_id,
            ),
            hook_metadata(piece.broadcast_id, piece.start_ms, piece.stop_ms)
            if hook_metadata
            else None,
        )
        for piece in found
    ]
