"""Clips and recordings: request a clip, list and read assets with their links, delete one, many
or all of a type, the retention rules, and the file a signed download link names."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.exc import IntegrityError

from mediahooks.actions import playlinks
from mediahooks.actions.asset_shapes import asset_json
from mediahooks.assets import DELETABLE, Status
from mediahooks.clock import iso, now_ms
from mediahooks.errors import Forbidden, NotFound, Refused
from mediahooks.media import clips, containers, files, links, removal
from mediahooks.media.sweeper import DEFAULT_TIMELINE_DAYS
from mediahooks.service import Service
from mediahooks.storage import profiles
from mediahooks.store import assets as store
from mediahooks.store import idempotency, keys, timelines
from mediahooks.store.schema import DbRow

AssetStatus = Literal["processing", "complete", "error", "deleting", "deleted"]
AssetType = Literal["clip", "recording", "timeline"]
DOWNLOAD_KEY = "downloads"
DAY_MS = 86_400_000


@dataclass(frozen=True)
class StorageWish:
    """Where a clip request asks its file to be kept: a profile, a storage type, and whether it
    overrides the profile's options (refused: change the profile instead)."""

    profile_id: str | None = None
    kind: str | None = None
    overrides: bool = False


class NotDeletable(Refused):
    """An asset that cannot be deleted in its state; ``reason`` is the short form lists give."""

    def __init__(self, asset_id: str, reason: str) -> None:
        super().__init__(f"Media asset {asset_id} {reason}.", {"mediaAssetId": [reason]})
        self.reason = reason


async def download_key(service: Service) -> bytes:
    async with service.db.transaction() as conn:
        return await keys.get_or_create(conn, DOWNLOAD_KEY)


def signed_links(service: Service, base_url: str, row: DbRow, key: bytes) -> dict[str, Any] | None:
    """Signed links to a complete asset's files, valid for the configured time."""
    if row.status != Status.COMPLETE.value or row.type == "timeline":
        return None
    expires = now_ms() + int(service.settings.download_ttl * 1000)
    query = f"expires={expires}&sig={links.signature(key, row.id, expires)}"
    base = base_url.rstrip("/")
    extension = containers.of_asset(json.loads(row.metadata)).name
    return {
        "downloadUrl": f"{base}/media/{row.id}.{extension}?{query}",
        "downloadExpiresOn": iso(expires),
        "posterUrl": f"{base}/media/{row.id}.jpg?{query}",
    }


async def download_links(service: Service, base_url: str, row: DbRow) -> dict[str, Any] | None:
    if row.status != Status.COMPLETE.value:
        return None
    return signed_links(service, base_url, row, await download_key(service))


async def request_clip(
    service: Service,
    account: str,
    clip: clips.ClipRequest,
    base_url: str,
    now: int,
    idempotency_key: str | None = None,
    storage: StorageWish | None = None,
) -> list[dict[str, Any]]:
    """One `processing` clip per broadcast the range touches, in the platform's shape, its file
    kept where ``storage`` says (`profiles.choose`); a key seen before answers what its first
    request answered."""
    hook_links = await playlinks.clip_links(service, base_url, account, clip.stream_name)
    try:
        async with service.db.transaction() as conn:
            if idempotency_key and (
                seen := await idempotency.recall(conn, account, idempotency_key)
            ):
                return list(seen)
            wish = storage or StorageWish()
            profile = await profiles.choose(
                conn, account, wish.profile_id, wish.kind, overrides=wish.overrides
            )
            rows = await clips.request(conn, account, clip, now, hook_links, profile)
            data = [
                asset_json(r, playback=hook_links(r.broadcast_id, r.start_time, r.stop_time))
                for r in rows
            ]
            if idempotency_key:
                await idempotency.remember(conn, account, idempotency_key, data)
    except IntegrityError:
        # A twin request with the same key committed first: its answer is ours.
        async with service.db.engine.connect() as conn:
            seen = await idempotency.recall(conn, account, idempotency_key or "")
        if seen is None:
            raise
        return list(seen)
    return data


async def page(
    service: Service, account: str, listing: store.Listing
) -> tuple[list[DbRow], dict[str, Any]]:
    """A page of assets, and the account's retention rules (a timeline's expiry needs them)."""
    async with service.db.engine.connect() as conn:
        return await store.page(conn, account, listing), await store.expiration_rules(conn, account)


def timeline_expiry(row: DbRow, rules: dict[str, Any]) -> int:
    """A timeline lasts until its newest segment expires."""
    return (
        int(row.last_at)
        + int(rules.get("timelines", {}).get("days", DEFAULT_TIMELINE_DAYS)) * DAY_MS
    )


async def get(service: Service, account: str, asset_id: str, *, deleted: bool = False) -> DbRow:
    """The account's asset, or NotFound; a deleted one only when ``deleted`` (v2 reads show
    them)."""
    async with service.db.engine.connect() as conn:
        row = await store.get(conn, account, asset_id)
    if row is None or (row.status == Status.DELETED.value and not deleted):
        raise NotFound(f"Media asset {asset_id} not found.")
    return row


async def delete(service: Service, account: str, asset_id: str) -> None:
    """Start removing a complete or errored asset; NotFound or NotDeletable otherwise."""
    row = await get(service, account, asset_id)
    if Status(row.status) not in DELETABLE:
        raise NotDeletable(
            asset_id, f"is {row.status}; only complete or error assets can be deleted"
        )
    await removal.remove(service.db, service.stores, row)


async def delete_many(service: Service, account: str, ids: list[str]) -> list[tuple[str, str]]:
    """Delete each asset that can be; (id, why not) for the others."""
    refused = []
    for asset_id in dict.fromkeys(ids):
        try:
            await delete(service, account, asset_id)
        except NotFound:
            refused.append((asset_id, "not found"))
        except NotDeletable as exc:
            refused.append((asset_id, exc.reason))
    return refused


async def delete_all(service: Service, account: str, asset_type: str) -> dict[str, Any]:
    """Every clip or recording that can be deleted, or every ended timeline."""
    if asset_type == "timeline":
        return await delete_timelines(service, account)
    async with service.db.engine.connect() as conn:
        ids = [row.id for row in await store.of_type(conn, account, asset_type)]
    refused = await delete_many(service, account, ids)
    errors = [{"id": asset_id, "error": reason} for asset_id, reason in refused]
    return {"itemsDeleted": len(ids) - len(refused), "errors": errors}


async def delete_timelines(service: Service, account: str) -> dict[str, Any]:
    """Forget every segment of the account's ended broadcasts (rows first, as expiry does: a
    clip being cut from them fails cleanly), then their files."""
    async with service.db.transaction() as conn:
        doomed = await timelines.ended_segments(conn, account)
        await timelines.forget_segments(conn, [s.id for s in doomed])
        live = await timelines.live_broadcasts(conn, account)
    await removal.delete_files([Path(s.path) for s in doomed])
    errors = [{"id": b.feed_id, "error": "is live; its timeline goes once it ends"} for b in live]
    return {"itemsDeleted": len({s.broadcast_id for s in doomed}), "errors": errors}


def rules_in_force(stored: dict[str, Any]) -> dict[str, Any]:
    """The retention rules that apply: timelines have a default (recordings and clips are kept
    until a rule or their own `expiration` says otherwise)."""
    return {"timelines": {"days": DEFAULT_TIMELINE_DAYS}} | stored


async def rules(service: Service, account: str) -> dict[str, Any]:
    async with service.db.engine.connect() as conn:
        return rules_in_force(await store.expiration_rules(conn, account))


async def set_rules(service: Service, account: str, stored: dict[str, Any]) -> dict[str, Any]:
    async with service.db.transaction() as conn:
        await store.set_expiration_rules(conn, account, stored)
    return rules_in_force(stored)


async def signed_file(
    service: Service, asset_id: str, expires: int, sig: str, index: int
) -> tuple[DbRow, str]:
    """The asset and where its file ``index`` of `files.files_of` is (the media, then the
    stills), if the signed link holds: Forbidden if not, NotFound when the file is gone."""
    async with service.db.transaction() as conn:
        key = await keys.get_or_create(conn, DOWNLOAD_KEY)
        row = await store.get_any(conn, asset_id)
    refusal = links.refusal(key, asset_id, expires, sig, now_ms())
    if refusal:
        raise Forbidden(refusal)
    if row is None or row.status != Status.COMPLETE.value or not row.file_path:
        raise NotFound("This media file is gone.")
    return row, files.files_of(row)[index]
