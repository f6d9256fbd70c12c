"""Streams: live and ended broadcasts, a bar of what each still has to clip, and clip requests."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlencode

from fastapi import APIRouter
from fastapi.responses import Response

from mediahooks.actions import assets, playlinks
from mediahooks.clock import now_ms
from mediahooks.dashboard.web import MemberDep, form, one, problem, redirect, render
from mediahooks.errors import MediahooksError
from mediahooks.media import clips
from mediahooks.media.playback import Grant
from mediahooks.store import timelines, tokens
from mediahooks.timeline import MIN_CLIP_MS

router = APIRouter(include_in_schema=False)
PRESETS = (10, 30, 60)  # seconds for the "last N s" buttons
GO_LIVE_TOKENS = 50  # the newest publish tokens offered to "Go live from this browser"


@dataclass(frozen=True)
class Bar:
    """Where a broadcast's clippable part sits on its bar, in percent of the broadcast."""

    left: float
    width: float


def bar(started: int, ended: int, lo: int | None, hi: int | None) -> Bar | None:
    if lo is None or hi is None or ended <= started:
        return None
    span = ended - started
    left = max(0.0, min(100.0, (lo - started) * 100 / span))
    right = max(left, min(100.0, (hi - started) * 100 / span))
    return Bar(round(left, 2), round(right - left, 2))


@router.get("/streams")
async def streams_page(seen: MemberDep) -> Response:
    now = now_ms()
    async with seen.service.db.engine.connect() as conn:
        recent = await timelines.recent(conn, seen.account)
    # One signed grant per stream for the page's players: the live edge and range previews.
    key, base = await playlinks.key(seen.service), str(seen.request.base_url)
    expires = now + int(seen.service.settings.playback_ttl * 1000)
    rows = []
    for item in recent:
        b = item.broadcast
        end = b.ended_at or now
        grant = Grant(seen.account, b.stream_name, expires)
        rows.append(
            {
                "broadcast": b,
                "live": b.ended_at is None,
                "lo": item.lo,
                "hi": item.hi,
                "end": end,
                "bar": bar(b.started_at, end, item.lo, item.hi),
                "live_url": playlinks.live_url(base, key, grant)
                if b.ended_at is None and item.hi is not None
                else None,
                "range_url": playlinks.stream_base(base, seen.account, b.stream_name)
                + "/range.m3u8",
                "grant": urlencode(grant.query(key)),
                "clippable_s": 0
                if item.lo is None or item.hi is None
                else (item.hi - item.lo) // 1000,
            }
        )
    async with seen.service.db.engine.connect() as conn:
        publishers = await tokens.page(conn, seen.account, "AddedOn", True, 1, GO_LIVE_TOKENS)
    return render(
        seen,
        "streams.html",
        rows=rows,
        presets=PRESETS,
        min_clip_s=MIN_CLIP_MS // 1000,
        publishers=publishers,
    )


@router.post("/streams/clip")
async def request_clip(seen: MemberDep) -> Response:
    fields = await form(seen)
    stream = one(fields, "stream")
    now = now_ms()
    try:
        if one(fields, "last"):
            stop = now
            start = now - int(one(fields, "last")) * 1000
        else:
            origin = int(one(fields, "origin"))
            start = origin + int(float(one(fields, "from")) * 1000)
            stop = origin + int(float(one(fields, "to")) * 1000)
    except (ValueError, OverflowError):
        return redirect(seen, "/streams", "Pick a range on the timeline first.", error=True)
    clip = clips.ClipRequest(
        stream_name=stream, start_ms=start, stop_ms=stop, name=one(fields, "name")[:256] or None
    )
    base = str(seen.request.base_url)
    try:
        rows = await assets.request_clip(seen.service, seen.account, clip, base, now)
    except MediahooksError as exc:
        return redirect(seen, "/streams", f"The clip was refused: {problem(exc)}", error=True)
    if len(rows) == 1:
        return redirect(seen, f"/assets/{rows[0]['id']}", "Clip requested.")
    return redirect(
        seen,
        f"/assets?stream={quote(stream)}",
        f"The range spans {len(rows)} broadcasts: one clip each was requested.",
    )
