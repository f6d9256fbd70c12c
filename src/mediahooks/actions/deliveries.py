"""A webhook's deliveries: the attempt log, one delivery with every attempt, sending one again
and recovering every failed one since a time."""

from __future__ import annotations

import json
from typing import Any

from mediahooks.clock import iso, now_ms
from mediahooks.errors import Conflict, NotFound
from mediahooks.service import Service
from mediahooks.store import attempt_log
from mediahooks.store.schema import DbRow


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


async def page(
    service: Service,
    webhook_id: int,
    statuses: list[str],
    before: int | None,
    count: int,
    descending: bool,
) -> list[DbRow]:
    """The webhook's deliveries (the caller has checked the webhook is the account's)."""
    async with service.db.engine.connect() as conn:
        return await attempt_log.page(conn, webhook_id, statuses, before, count, descending)


async def get(service: Service, webhook_id: int, delivery_id: int) -> tuple[DbRow, list[DbRow]]:
    """A delivery and its attempts, or NotFound."""
    async with service.db.engine.connect() as conn:
        found = await attempt_log.get(conn, webhook_id, delivery_id)
    if found is None:
        raise NotFound(f"Delivery {delivery_id} of webhook {webhook_id} not found.")
    return found


async def retry(service: Service, webhook_id: int, delivery_id: int) -> DbRow:
    """Queue a finished delivery again, now; Conflict while it is still pending."""
    async with service.db.transaction() as conn:
        requeued = await attempt_log.retry(conn, webhook_id, delivery_id, now_ms())
        found = await attempt_log.get(conn, webhook_id, delivery_id)
    if found is None:
        raise NotFound(f"Delivery {delivery_id} of webhook {webhook_id} not found.")
    delivery, _ = found
    if not requeued:
        raise Conflict(
            f"Delivery {delivery_id} is {delivery.status}; only succeeded or "
            "failed deliveries can be sent again."
        )
    return delivery


async def recover(service: Service, webhook_id: int, since_ms: int) -> int:
    """Queue again every failed delivery of the webhook created since ``since_ms``."""
    async with service.db.transaction() as conn:
        return await attempt_log.recover(conn, webhook_id, since_ms, now_ms())
