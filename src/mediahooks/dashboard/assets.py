"""Assets: clips and recordings with filters and paging; one asset with its player and delete."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from mediahooks.actions import assets as actions
from mediahooks.actions import playlinks
from mediahooks.actions.assets import AssetStatus, AssetType
from mediahooks.assets import DELETABLE, Status
from mediahooks.dashboard.web import MemberDep, form, redirect, render
from mediahooks.errors import NotFound
from mediahooks.store import assets as store

router = APIRouter(include_in_schema=False)
STATUSES: tuple[AssetStatus, ...] = ("processing", "complete", "error", "deleting")
TYPES: tuple[AssetType, ...] = ("clip", "recording")
PAGE_SIZE = 25
AssetId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]


@router.get("/assets")
async def assets_page(
    seen: MemberDep,
    status: Annotated[list[AssetStatus] | None, Query()] = None,
    type: Annotated[list[AssetType] | None, Query()] = None,
    stream: Annotated[str, Query(max_length=128)] = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    order: Literal["newest", "oldest"] = "newest",
) -> Response:
    listing = store.Listing(
        statuses=list(status or STATUSES),
        types=list(type or TYPES),
        stream_name=stream.strip() or None,
        sort="created",
        descending=order == "newest",
        page=page,
        limit=PAGE_SIZE,
    )
    rows, _ = await actions.page(seen.service, seen.account, listing)
    return render(
        seen,
        "assets.html",
        rows=rows,
        more=len(rows) == PAGE_SIZE,  # a full page may have a next one
        page=page,
        chosen_statuses=set(status or []),
        chosen_types=set(type or []),
        statuses=STATUSES,
        types=TYPES,
        stream=stream,
        order=order,
    )


@router.get("/assets/{asset_id}")
async def asset_page(seen: MemberDep, asset_id: Annotated[str, Path(max_length=64)]) -> Response:
    try:
        row = await actions.get(seen.service, seen.account, asset_id)
    except NotFound:
        return render(seen, "missing.html", 404, what=f"Media asset {asset_id}")
    base = str(seen.request.base_url)
    links = await actions.download_links(seen.service, base, row)
    return render(
        seen,
        "asset.html",
        asset=row,
        links=links,
        playback=await playlinks.for_asset(seen.service, base, row),
        metadata=json.loads(row.metadata),
        deletable=Status(row.status) in DELETABLE,
    )


@router.post("/assets/{asset_id}/delete")
async def delete_asset(seen: MemberDep, asset_id: AssetId) -> Response:
    await form(seen)
    try:
        await actions.delete(seen.service, seen.account, asset_id)
    except NotFound:
        return redirect(seen, f"/assets/{asset_id}", "Not deleted (not found).", error=True)
    except actions.NotDeletable as exc:
        return redirect(seen, f"/assets/{asset_id}", f"Not deleted ({exc.reason}).", error=True)
    return redirect(seen, "/assets", "The asset is being deleted; its files go first.")
