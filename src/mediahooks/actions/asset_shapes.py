"""Clips and recordings as the platform shapes them (v3 `media/assets` and v2 `record_files`):
what the API answers and what a clip request's idempotency key remembers."""

from __future__ import annotations

import json
from typing import Any

from mediahooks.clock import iso
from mediahooks.media import stills
from mediahooks.storage import profiles
from mediahooks.store.schema import DbRow

# Files stay in the service's own storage: the platform's name for its own is `dolbyStorage`
# (the one value of its enum that means that), and `path` is only given for external storage.
STORAGE: dict[str, Any] = {"type": "dolbyStorage", "path": None}


def asset_json(
    row: DbRow,
    download: dict[str, Any] | None = None,
    playback: dict[str, Any] | None = None,
    expiration: int | None = None,
) -> dict[str, Any]:
    """An asset (or a timeline, whose ``expiration`` the caller computes) as the platform
    shapes it; its `metadata.thumbnails` are the signed links to its stills."""
    out: dict[str, Any] = {
        "id": row.id,
        "type": row.type,
        "feed": {"tokenId": row.token_id, "streamName": row.stream_name},
        "startTime": iso(row.start_time),
        "stopTime": iso(row.stop_time),
        "name": row.name,
        "storage": storage_json(row),
        "status": row.status,
        "error": row.error,
        "created": iso(row.created_at),
        "expiration": iso(row.expiration if expiration is None else expiration),
        "removed": iso(row.removed_at),
        "metadata": metadata_json(json.loads(row.metadata), download),
    }
    if download is not None:
        out["download"] = download
    if playback is not None:
        # HLS of the asset's range, playable at once, while the MP4 is still being cut.
        out.update(playback)
    return out


def storage_json(row: DbRow) -> dict[str, Any]:
    """The platform's storage object: the service's own storage, and where in it a file kept in
    a bucket is (`s3://bucket/prefix/media/...`)."""
    out = dict(STORAGE)
    path = row._mapping.get("file_path")  # a timeline's row has none
    if row._mapping.get("storage_profile_id"):
        out["type"] = profiles.TYPE  # the account's own bucket, as the platform says it
    if path and path.startswith("s3://"):
        out["path"] = path
    return out


def metadata_json(stored: dict[str, Any], download: dict[str, Any] | None) -> dict[str, Any]:
    """The platform's `metadata`: `tracks` and `thumbnails` (signed links to the stills, once
    the asset is complete) always there; integers where it has integers. Assets cut before
    this shape (a float `duration`, one `size`, a poster alone) read the same way."""
    out = dict(stored)
    if "size" in out and "sizes" not in out:
        out["sizes"] = {str(out.get("format") or "file"): out.pop("size")}
    if isinstance(out.get("duration"), float):
        out["duration"] = round(out["duration"])
    tracks = [dict(t) for t in out.get("tracks", [])]
    for track in tracks:
        if isinstance(track.get("framerate"), float):
            track["framerate"] = round(track["framerate"])
    out["tracks"] = tracks
    out["thumbnails"] = []
    if download is not None:
        poster, _, query = download["posterUrl"].partition("?")
        count = stills.ASSET_STILLS if "thumbnails" in out.get("sizes", {}) else 1
        base = poster.removesuffix(".jpg")
        out["thumbnails"] = [download["posterUrl"]] + [
            f"{base}/{index}.jpg?{query}" for index in range(1, count)
        ]
    return out


V2_STATUS = {
    "processing": "InProgress",
    "complete": "Complete",
    "error": "Error",
    "deleting": "Deleting",
    "deleted": "Deleted",
}


def record_file_json(row: DbRow, download: dict[str, Any] | None) -> dict[str, Any]:
    """An asset in the shape of the platform's v2 `record_files` answers."""
    out: dict[str, Any] = {
        "id": row.id,
        "status": V2_STATUS[row.status],
        "itemType": "FullRecording" if row.type == "recording" else "Clip",
        "tokenId": row.token_id,
        "streamName": row.stream_name,
        "recordedOn": iso(row.start_time),
        "stoppedOn": iso(row.stop_time),
        "removedOn": iso(row.removed_at),
        "metadata": metadata_json(json.loads(row.metadata), download),
        "error": row.error,
        "storage": {"storageType": "DolbyStorage", "storagePath": None},
    }
    if download is not None:
        out["download"] = download
    return out
