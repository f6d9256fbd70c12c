"""`/api/webhooks/{id}/deliveries` and `/recover`: the attempt log and replay (beyond the
platform, which keeps neither)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse
from pydantic import ConfigDict

from mediahooks.api.auth import Account, ServiceDep
from mediahooks.api.bodies import Body
from mediahooks.api.envelope import ApiError, found, ok
from mediahooks.api.paging import MAX_ID
from mediahooks.api.webhooks import WebhookId, found_webhook
from mediahooks.clock import from_iso, iso, now_ms
from mediahooks.service import Service
from mediahooks.store import attempt_log
from mediahooks.store.schema import DbRow

router = APIRouter(prefix="/api/webhooks", tags=["deliveries"])

DeliveryId = Annotated[int, Path(ge=1, le=MAX_ID)]
DeliveryStatus = Literal["pending", "succeeded", "failed", "cancelled"]


class Recover(Body):
    model_config = ConfigDict(extra="ignore")
    since: datetime


def delivery_json(row: DbRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "webhookId": row.webhook_id,
        "messageId": row.msg_id,
        "hookType": row.hook_type,
        "event": row.event,
        "orderingKey": row.ordering_key,
        "status": row.status,
        "attempts": row.attempt_count,
        "nextAttemptAt": iso(row.next_attempt_at) if row.status == "pending" else None,
        "lastStatusCode": row.last_status,
        "lastError": row.last_error,
        "createdAt": iso(row.created_at),
        "completedAt": iso(row.completed_at),
    }


def payload_json(body: bytes, headers: str | None) -> Any:
    """A JSON hook's body as JSON; for another body (a thumbnail's JPEG), what it is."""
    if not headers:
        return json.loads(body)
    sent: dict[str, str] = json.loads(headers)
    return {"contentType": sent.get("Content-Type"), "size": len(body), "headers": sent}


def attempt_json(row: DbRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "at": iso(row.started_at),
        "durationMs": row.duration_ms,
        "url": row.url,
        "statusCode": row.status_code,
        "errorKind": row.error_kind,
        "error": row.error_message,
        "requestHeaders": json.loads(row.request_headers),
        "responseHeaders": json.loads(row.response_headers or "{}"),
        "responseBody": row.response_body,
        "worker": row.worker,
    }


@router.get("/{id:int}/deliveries", summary="List a webhook's deliveries, newest first")
async def list_deliveries(
    id: WebhookId,
    account: Account,
    service: ServiceDep,
    status: Annotated[list[DeliveryStatus] | None, Query()] = None,
    startingId: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
    itemCount: Annotated[int, Query(ge=1, le=100)] = 25,
    isDescending: bool = True,
) -> JSONResponse:
    await found_webhook(service, account, id)
    async with service.db.engine.connect() as conn:
        rows = await attempt_log.page(
            conn, id, list(status or []), startingId, itemCount, isDescending
        )
    return ok([delivery_json(r) for r in rows])


@router.get("/{id:int}/deliveries/{deliveryId:int}", summary="A delivery with every attempt")
async def read_delivery(
    id: WebhookId, deliveryId: DeliveryId, account: Account, service: ServiceDep
) -> JSONResponse:
    await found_webhook(service, account, id)
    async with service.db.engine.connect() as conn:
        delivery, attempts = found(
            await attempt_log.get(conn, id, deliveryId), f"Delivery {deliveryId} of webhook {id}"
        )
    return ok(
        delivery_json(delivery)
        | {
            "payload": payload_json(bytes(delivery.body), delivery.headers),
            "attemptLog": [attempt_json(a) for a in attempts],
        }
    )


async def retry(service: Service, webhook_id: int, delivery_id: int) -> DbRow:
    """Queue a finished delivery again, now; 409 while it is still pending."""
    async with service.db.transaction() as conn:
        requeued = await attempt_log.retry(conn, webhook_id, delivery_id, now_ms())
        delivery, _ = found(
            await attempt_log.get(conn, webhook_id, delivery_id),
            f"Delivery {delivery_id} of webhook {webhook_id}",
        )
    if not requeued:
        raise ApiError(
            409,
            f"Delivery {delivery_id} is {delivery.status}; only succeeded or "
            "failed deliveries can be sent again.",
        )
    return delivery


async def recover(service: Service, webhook_id: int, since_ms: int) -> int:
    """Queue again every failed delivery of the webhook created since ``since_ms``."""
    async with service.db.transaction() as conn:
        return await attempt_log.recover(conn, webhook_id, since_ms, now_ms())


@router.post("/{id:int}/deliveries/{deliveryId:int}/retry", summary="Send a delivery again")
async def retry_delivery(
    id: WebhookId, deliveryId: DeliveryId, account: Account, service: ServiceDep
) -> JSONResponse:
    await found_webhook(service, account, id)
    return ok(delivery_json(await retry(service, id, deliveryId)))


@router.post("/{id:int}/recover", summary="Send again every failed delivery since a time")
async def recover_failed(
    id: WebhookId, body: Recover, account: Account, service: ServiceDep
) -> JSONResponse:
    await found_webhook(service, account, id)
    return ok({"requeued": await recover(service, id, from_iso(body.since))})
