"""`/api/webhooks/{id}/deliveries` and `/recover`: the attempt log and replay (beyond the
platform, which keeps neither)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse
from pydantic import ConfigDict

from mediahooks.actions import deliveries as actions
from mediahooks.actions import webhooks
from mediahooks.actions.bodies import Body
from mediahooks.actions.deliveries import attempt_json, delivery_json, payload_json
from mediahooks.actions.paging import MAX_ID
from mediahooks.api.auth import Account, ServiceDep
from mediahooks.api.envelope import ok
from mediahooks.api.webhooks import WebhookId
from mediahooks.clock import from_iso

router = APIRouter(prefix="/api/webhooks", tags=["deliveries"])

DeliveryId = Annotated[int, Path(ge=1, le=MAX_ID)]
DeliveryStatus = Literal["pending", "succeeded", "failed", "cancelled"]


class Recover(Body):
    model_config = ConfigDict(extra="ignore")
    since: datetime


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
    await webhooks.get(service, account, id)
    rows = await actions.page(service, id, list(status or []), startingId, itemCount, isDescending)
    return ok([delivery_json(r) for r in rows])


@router.get("/{id:int}/deliveries/{deliveryId:int}", summary="A delivery with every attempt")
async def read_delivery(
    id: WebhookId, deliveryId: DeliveryId, account: Account, service: ServiceDep
) -> JSONResponse:
    await webhooks.get(service, account, id)
    delivery, attempts = await actions.get(service, id, deliveryId)
    return ok(
        delivery_json(delivery)
        | {
            "payload": payload_json(bytes(delivery.body), delivery.headers),
            "attemptLog": [attempt_json(a) for a in attempts],
        }
    )


@router.post("/{id:int}/deliveries/{deliveryId:int}/retry", summary="Send a delivery again")
async def retry_delivery(
    id: WebhookId, deliveryId: DeliveryId, account: Account, service: ServiceDep
) -> JSONResponse:
    await webhooks.get(service, account, id)
    return ok(delivery_json(await actions.retry(service, id, deliveryId)))


@router.post("/{id:int}/recover", summary="Send again every failed delivery since a time")
async def recover_failed(
    id: WebhookId, body: Recover, account: Account, service: ServiceDep
) -> JSONResponse:
    await webhooks.get(service, account, id)
    return ok({"requeued": await actions.recover(service, id, from_iso(body.since))})
