"""Webhooks: list, create, edit, the secret, test events, re-enabling; and each webhook's
deliveries, queue and history, with every attempt, retry and recover."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from pydantic import ValidationError

from mediahooks.actions import deliveries as delivery_actions
from mediahooks.actions import webhooks as actions
from mediahooks.actions.paging import MAX_ID
from mediahooks.clock import now_ms
from mediahooks.dashboard.web import MemberDep, Visitor, form, one, problem, redirect, render
from mediahooks.errors import MediahooksError, NotFound
from mediahooks.store.schema import DbRow

router = APIRouter(include_in_schema=False)
HOOK_TYPES = {
    "isMediaHooks": "Media (clips and recordings)",
    "isFeedHooks": "Feeds (streams start and end)",
    "isRecordingHooks": "Recording (deprecated by the platform)",
    "isThumbnailHooks": "Thumbnail",
    "isTranscoderHooks": "Transcoder",
    "isViewerConnectionHooks": "Viewer connection",
}
QUEUES = {"": "All", "pending": "Queue", "failed": "Failed", "succeeded": "Succeeded"}
PAGE_SIZE = 25
WebhookPath = Annotated[int, Path(ge=1, le=MAX_ID)]
DeliveryPath = Annotated[int, Path(ge=1, le=MAX_ID)]


def _fields(posted: dict[str, list[str]]) -> dict[str, Any]:
    """The API's webhook fields from a posted form: a checkbox is sent only when checked."""
    values: dict[str, Any] = {"url": one(posted, "url"), "filter": one(posted, "filter") or None}
    values.update({flag: flag in posted for flag in HOOK_TYPES})
    return values


@router.get("/webhooks")
async def webhooks_page(seen: MemberDep) -> Response:
    return await _list(seen)


async def _list(seen: Visitor, status_code: int = 200, **extra: Any) -> Response:
    rows = await actions.page(seen.service, seen.account, None, 100, False)
    return render(
        seen,
        "webhooks.html",
        status_code,
        rows=[actions.webhook_json(r) for r in rows],
        hook_types=HOOK_TYPES,
        **extra,
    )


@router.post("/webhooks")
async def create_webhook(seen: MemberDep) -> Response:
    posted = await form(seen)
    values = _fields(posted)
    try:
        row = await actions.create(seen.service, seen.account, actions.WebhookCreate(**values))
    except (ValidationError, MediahooksError) as exc:
        return await _list(seen, 400, error=problem(exc), entered=values)
    return redirect(seen, f"/webhooks/{row.id}", "Webhook created.")


async def _webhook(seen: Visitor, webhook_id: int) -> DbRow | None:
    return await actions.find(seen.service, seen.account, webhook_id)


@router.get("/webhooks/{webhook_id}")
async def webhook_page(
    seen: MemberDep,
    webhook_id: WebhookPath,
    queue: Literal["", "pending", "failed", "succeeded"] = "",
    before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Response:
    row = await _webhook(seen, webhook_id)
    if row is None:
        return render(seen, "missing.html", 404, what=f"Webhook {webhook_id}")
    return await _show(seen, row, queue, before)


async def _show(
    seen: Visitor,
    row: DbRow,
    queue: str,
    before: int | None,
    status_code: int = 200,
    **extra: Any,
) -> Response:
    deliveries = await delivery_actions.page(
        seen.service, row.id, [queue] if queue else [], before, PAGE_SIZE + 1, True
    )
    return render(
        seen,
        "webhook.html",
        status_code,
        webhook=actions.webhook_json(row),
        hook_types=HOOK_TYPES,
        deliveries=[delivery_actions.delivery_json(d) for d in deliveries[:PAGE_SIZE]],
        older=deliveries[PAGE_SIZE - 1].id if len(deliveries) > PAGE_SIZE else None,
        queue=queue,
        queues=QUEUES,
        today=datetime.now(UTC).strftime("%Y-%m-%dT00:00"),
        **extra,
    )


@router.post("/webhooks/{webhook_id}")
async def edit_webhook(seen: MemberDep, webhook_id: WebhookPath) -> Response:
    return await _update(seen, webhook_id, await form(seen), "Saved.")


@router.post("/webhooks/{webhook_id}/rotate")
async def rotate_secret(seen: MemberDep, webhook_id: WebhookPath) -> Response:
    await form(seen)
    hours = seen.service.settings.secret_grace / 3600
    notice = f"New secret made; the old one stays valid for {hours:g} h."
    return await _update(seen, webhook_id, None, notice, refreshSecret=True)


@router.post("/webhooks/{webhook_id}/enable")
async def re_enable(seen: MemberDep, webhook_id: WebhookPath) -> Response:
    await form(seen)
    notice = "Re-enabled: its queued deliveries go out now."
    return await _update(seen, webhook_id, None, notice, reEnable=True)


async def _update(
    seen: Visitor,
    webhook_id: int,
    posted: dict[str, list[str]] | None,
    notice: str,
    **flags: bool,
) -> Response:
    values = _fields(posted) if posted is not None else {}
    try:
        body = actions.WebhookUpdate.model_validate(values | flags)
        await actions.update(seen.service, seen.account, webhook_id, body)
    except (ValidationError, MediahooksError) as exc:
        row = await _webhook(seen, webhook_id)
        if row is None:
            return render(seen, "missing.html", 404, what=f"Webhook {webhook_id}")
        return await _show(seen, row, "", None, 400, error=problem(exc), entered=values)
    return redirect(seen, f"/webhooks/{webhook_id}", notice)


@router.post("/webhooks/{webhook_id}/test")
async def send_test(seen: MemberDep, webhook_id: WebhookPath) -> Response:
    hook_type = one(await form(seen), "hookType") or "Media"
    target = f"/webhooks/{webhook_id}"
    if await _webhook(seen, webhook_id) is None:
        return render(seen, "missing.html", 404, what=f"Webhook {webhook_id}")
    try:
        _, emitted = await actions.send_test(seen.service, seen.account, hook_type, only=webhook_id)
    except MediahooksError as exc:
        return redirect(seen, target, problem(exc), error=True)
    if not emitted.webhook_ids:
        message = f"This webhook does not take {hook_type} hooks: tick them in its settings first."
        return redirect(seen, target, message, error=True)
    return redirect(seen, target, f"A test {hook_type} event is on its way.")


@router.post("/webhooks/{webhook_id}/delete")
async def delete_webhook(seen: MemberDep, webhook_id: WebhookPath) -> Response:
    await form(seen)
    try:
        await actions.delete(seen.service, seen.account, webhook_id)
    except MediahooksError as exc:
        return redirect(seen, "/webhooks", problem(exc), error=True)
    return redirect(seen, "/webhooks", f"Webhook {webhook_id} deleted.")


@router.post("/webhooks/{webhook_id}/recover")
async def recover(seen: MemberDep, webhook_id: WebhookPath) -> Response:
    since = one(await form(seen), "since")
    target = f"/webhooks/{webhook_id}"
    try:
        since_ms = int(datetime.fromisoformat(since).replace(tzinfo=UTC).timestamp() * 1000)
    except ValueError:
        return redirect(seen, target, "Give the time to recover from.", error=True)
    if await _webhook(seen, webhook_id) is None:
        return render(seen, "missing.html", 404, what=f"Webhook {webhook_id}")
    count = await delivery_actions.recover(seen.service, webhook_id, since_ms)
    return redirect(seen, target, f"{count} failed deliver{'ies' if count != 1 else 'y'} queued.")


@router.get("/webhooks/{webhook_id}/deliveries/{delivery_id}")
async def delivery_page(
    seen: MemberDep, webhook_id: WebhookPath, delivery_id: DeliveryPath
) -> Response:
    row = await _webhook(seen, webhook_id)
    try:
        if row is None:
            raise NotFound(f"Webhook {webhook_id} not found.")
        delivery, attempts = await delivery_actions.get(seen.service, webhook_id, delivery_id)
    except NotFound:
        return render(seen, "missing.html", 404, what=f"Delivery {delivery_id}")
    return render(
        seen,
        "delivery.html",
        webhook=actions.webhook_json(row),
        delivery=delivery_actions.delivery_json(delivery),
        # A picture is described, not shown as bytes.
        body=delivery_actions.payload_json(bytes(delivery.body), delivery.headers)
        if delivery.headers
        else bytes(delivery.body),
        attempts=[delivery_actions.attempt_json(a) for a in attempts],
        retryable=delivery.status in ("succeeded", "failed"),
        now=now_ms(),
    )


@router.post("/webhooks/{webhook_id}/deliveries/{delivery_id}/retry")
async def retry(seen: MemberDep, webhook_id: WebhookPath, delivery_id: DeliveryPath) -> Response:
    await form(seen)
    target = f"/webhooks/{webhook_id}/deliveries/{delivery_id}"
    if await _webhook(seen, webhook_id) is None:
        return render(seen, "missing.html", 404, what=f"Webhook {webhook_id}")
    try:
        await delivery_actions.retry(seen.service, webhook_id, delivery_id)
    except MediahooksError as exc:
        return redirect(seen, target, problem(exc), error=True)
    return redirect(seen, target, "Queued again: it goes out now.")
