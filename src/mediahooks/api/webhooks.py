"""`/api/webhooks`: the platform's webhook management routes, field for field
(the use cases are `actions.webhooks`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from mediahooks.actions import webhooks as actions
from mediahooks.actions.paging import MAX_ID
from mediahooks.actions.webhooks import TEST_TYPE_NAMES, WebhookCreate, WebhookUpdate, webhook_json
from mediahooks.api.auth import Account, ServiceDep
from mediahooks.api.envelope import ok
from mediahooks.api.paging import PagingDep

router = APIRouter(prefix="/api/webhooks", tags=["webhooks"])

WebhookId = Annotated[int, Path(ge=1, le=MAX_ID, description="The webhook's integer id.")]


@router.post("", summary="Create a webhook")
async def create_webhook(
    body: WebhookCreate, account: Account, service: ServiceDep
) -> JSONResponse:
    return ok(webhook_json(await actions.create(service, account, body)))


@router.get("/list", summary="List webhooks")
async def list_webhooks(
    account: Account,
    service: ServiceDep,
    paging: PagingDep,
) -> JSONResponse:
    rows = await actions.page(service, account, paging.starting_id, paging.count, paging.descending)
    return ok([webhook_json(r) for r in rows])


@router.post(
    "/test/{webhookType}",
    summary="Send a sample event to every webhook of a hook type",
    description=(
        "Answers `true`, as the platform does. The event's message id (its `webhook-id`) and "
        "the webhooks it was queued for are in the `X-Mediahooks-Message-Id` and "
        "`X-Mediahooks-Webhook-Ids` headers."
    ),
)
async def test_webhooks(
    webhookType: Annotated[str, Path(max_length=64, description=TEST_TYPE_NAMES)],
    account: Account,
    service: ServiceDep,
) -> JSONResponse:
    _, emitted = await actions.send_test(service, account, webhookType)
    answer = ok(True)
    answer.headers["X-Mediahooks-Message-Id"] = emitted.msg_id
    answer.headers["X-Mediahooks-Webhook-Ids"] = ",".join(map(str, emitted.webhook_ids))
    return answer


@router.get("/{id:int}", summary="Read a webhook")
async def read_webhook(id: WebhookId, account: Account, service: ServiceDep) -> JSONResponse:
    return ok(webhook_json(await actions.get(service, account, id)))


@router.put("/{id:int}", summary="Update a webhook, rotate its secret or re-enable it")
async def update_webhook(
    id: WebhookId, body: WebhookUpdate, account: Account, service: ServiceDep
) -> JSONResponse:
    return ok(webhook_json(await actions.update(service, account, id, body)))


@router.delete("/{id:int}", summary="Delete a webhook; answers the webhook deleted")
async def delete_webhook(id: WebhookId, account: Account, service: ServiceDep) -> JSONResponse:
    return ok(webhook_json(await actions.delete(service, account, id)))
