"""Signed playback links: the same HMAC scheme as download links (`media.links`), with a key of
their own, made once and shared by every process through the database; the links of assets
and those asked for (`POST /api/v3/playback/link`)."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from mediahooks.clock import from_iso, iso, now_ms
from mediahooks.errors import Invalid
from mediahooks.media.playback import MAX_RANGE_MS, Grant
from mediahooks.service import Service
from mediahooks.store import keys
from mediahooks.store.db import Database
from mediahooks.store.schema import DbRow

KEY_NAME = "playback"
# The key never changes once made: each process reads it once, not per segment.
_keys: weakref.WeakKeyDictionary[Database, bytes] = weakref.WeakKeyDictionary()


async def key(service: Service) -> bytes:
    found = _keys.get(service.db)
    if found is None:
        async with service.db.transaction() as conn:
            found = await keys.get_or_create(conn, KEY_NAME)
        _keys[service.db] = found
    return found


def stream_base(base_url: str, account_id: str, stream: str) -> str:
    return f"{base_url.rstrip('/')}/play/{account_id}/{quote(stream, safe='')}"


def live_url(base_url: str, signing_key: bytes, grant: Grant) -> str:
    query = urlencode(grant.query(signing_key))
    return f"{stream_base(base_url, grant.account_id, grant.stream)}/live.m3u8?{query}"


def range_url(
    base_url: str, signing_key: bytes, grant: Grant, lo: int, hi: int, broadcast_id: int | None
) -> str:
    params = {"start": str(lo), "stop": str(hi)}
    if broadcast_id is not None:
        params["broadcast"] = str(broadcast_id)
    query = urlencode({**params, **grant.query(signing_key)})
    return f"{stream_base(base_url, grant.account_id, grant.stream)}/range.m3u8?{query}"


def asset_links(
    signing_key: bytes,
    base_url: str,
    ttl: float,
    account_id: str,
    stream: str,
    broadcast_id: int | None,
    lo: int,
    hi: int | None,
) -> dict[str, Any] | None:
    """`playbackUrl` (HLS of the asset's range, valid only for that range) and when it
    expires; None while the range's end is unknown (a recording still going on)."""
    if hi is None:
        return None
    grant = Grant(account_id, stream, now_ms() + int(ttl * 1000), lo, hi)
    return {
        "playbackUrl": range_url(base_url, signing_key, grant, lo, hi, broadcast_id),
        "playbackExpiresOn": iso(grant.expires),
    }


async def for_asset(service: Service, base_url: str, row: DbRow) -> dict[str, Any] | None:
    """The playback link of a clip or recording whose range is known."""
    if row.status not in ("processing", "complete"):
        return None
    return asset_links(
        await key(service),
        base_url,
        service.settings.playback_ttl,
        row.account_id,
        row.stream_name,
        row.broadcast_id,
        int(row.start_time),
        row.stop_time,
    )


async def clip_links(
    service: Service, base_url: str, account_id: str, stream: str
) -> Callable[[int, int, int], dict[str, Any]]:
    """Playback links of a clip request's pieces, (broadcast, start, stop) -> fields; the key
    is read first, outside the request's transaction."""
    signing_key, ttl = await key(service), service.settings.playback_ttl

    def links(broadcast_id: int, lo: int, hi: int) -> dict[str, Any]:
        found = asset_links(signing_key, base_url, ttl, account_id, stream, broadcast_id, lo, hi)
        assert found is not None  # a clip's range is always known
        return found

    return links


async def link(
    service: Service,
    base_url: str,
    account_id: str,
    stream: str,
    start: datetime | None,
    stop: datetime | None,
    ttl: int | None,
) -> dict[str, Any]:
    """A signed link to the live stream's playlist, or (with ``start`` and ``stop``) to a past
    range's, valid for ``ttl`` seconds (the configured time when None), and when it expires."""
    expires = now_ms() + int((ttl or service.settings.playback_ttl) * 1000)
    signing_key = await key(service)
    if start is None and stop is None:
        url = live_url(base_url, signing_key, Grant(account_id, stream, expires))
    elif start is None or stop is None:
        raise Invalid(
            "A range needs both startTime and stopTime; give neither for the live stream.",
            {"stopTime" if stop is None else "startTime": ["is required"]},
        )
    else:
        lo, hi = from_iso(start), from_iso(stop)
        if not 0 < hi - lo <= MAX_RANGE_MS:
            raise Invalid(
                "stopTime must be after startTime, by at most 12 h.",
                {"stopTime": ["after startTime, at most 12 h"]},
            )
        grant = Grant(account_id, stream, expires, lo, hi)
        url = range_url(base_url, signing_key, grant, lo, hi, None)
    return {"playbackUrl": url, "playbackExpiresOn": iso(expires)}
