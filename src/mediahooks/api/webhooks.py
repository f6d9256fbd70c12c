"""`/api/webhooks`: the platform's webhook management routes, field for field."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse
from pydantic import ConfigDict, Field, StrictBool, StrictStr, field_validator

from mediahooks import events, patterns
from mediahooks.api.auth import Account, ServiceDep
from mediahooks.api.bodies import Body
from mediahooks.api.envelope import ApiError, found, ok
from mediahooks.api.paging import MAX_ID, PagingDep
from mediahooks.clock import iso, now_ms
from mediahooks.delivery import guard
from mediahooks.media import stills
from mediahooks.service import Service
from mediahooks.store import outbox
from mediahooks.store import webhooks as store
from mediahooks.store.outbox import Emitted
from mediahooks.store.schema import DbRow
from mediahooks.store.webhooks import FLAG_COLUMNS

router = APIRouter(prefix="/api/webhooks", tags=["webhooks"])

WebhookId = Annotated[int, Path(ge=1, le=MAX_ID, description="The webhook's integer id.")]


class WebhookFields(Body):
    # The platform's older clients still send fields it dropped: ignore what we do not know.
    model_config = ConfigDict(extra="ignore")

    url: StrictStr | None = Field(None, min_length=1, max_length=2048)
    isFeedHooks: StrictBool | None = None
    isMediaHooks: StrictBool | None = None
    isRecordingHooks: StrictBool | None = Field(None, description="Deprecated by the platform.")
    isThumbnailHooks: StrictBool | None = None
    isTranscoderHooks: StrictBool | None = None
    isViewerConnectionHooks: StrictBool | None = None
    filter: StrictStr | None = Field(
        None,
        min_length=1,
        max_length=128,
        description="A regular expression searched in the stream name of each event.",
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None:
            guard.check_url(value)
        return value

    @field_validator("filter")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            reason = patterns.problem(value)  # the engine that runs filters
            if reason:
                raise ValueError(reason)
        return value

    def columns(self) -> dict[str, Any]:
        given = self.model_dump(exclude_unset=True, exclude={"refreshSecret", "reEnable"})
        return {FLAG_COLUMNS.get(name, name): value for name, value in given.items()}


class WebhookCreate(WebhookFields):
    url: StrictStr = Field(..., min_length=1, max_length=2048)
    isFeedHooks: StrictBool


class WebhookUpdate(WebhookFields):
    refreshSecret: StrictBool = Field(False, description="Make a new secret.")
    reEnable: StrictBool = Field(False, description="Lift a temporary disable.")


def webhook_json(row: DbRow) -> dict[str, Any]:
    out: dict[str, Any] = {"id": row.id, "url": row.url, "secret": row.secret}
    for field, column in FLAG_COLUMNS.items():
        out[field] = bool(getattr(row, column))
    out["filter"] = row.filter
    disabled = row.disabled_until is not None and row.disabled_until > now_ms()
    out["disabled"] = (
        {"until": iso(row.disabled_until), "reason": row.disabled_reason} if disabled else None
    )
    return out


async def check_target(service: Service, url: str) -> None:
    host, port = guard.check_url(url)
    try:
        await guard.resolve(host, port, service.settings.private_networks)
    except guard.TargetRefused as exc:
        raise ApiError(400, f"url is not allowed: {exc}", {"url": [str(exc)]}) from exc
    except UnicodeError as exc:  # the resolver's IDNA codec: a label over 63 characters, ...
        reason = f"{host} is not a valid host name ({exc})"
        raise ApiError(400, f"url is not allowed: {reason}", {"url": [reason]}) from exc


async def found_webhook(service: Service, account: str, webhook_id: int) -> DbRow:
    async with service.db.engine.connect() as conn:
        return found(await store.get(conn, account, webhook_id), f"Webhook {webhook_id}")


async def create(service: Service, account: str, body: WebhookCreate) -> DbRow:
    await check_target(service, body.url)
    async with service.db.transaction() as conn:
        # null for an optional field means "not given": the flag defaults to false.
        values = {k: v for k, v in body.columns().items() if v is not None}
        return await store.create(conn, account, values)


async def update(service: Service, account: str, webhook_id: int, body: WebhookUpdate) -> DbRow:
    # null leaves a field as it is, except `filter`, where null removes the filter.
    values = {k: v for k, v in body.columns().items() if v is not None or k == "filter"}
    if body.url is not None:
        await check_target(service, body.url)
    async with service.db.transaction() as conn:
        row = await store.update_one(
            conn,
            account,
            webhook_id,
            values,
            refresh_secret=body.refreshSecret,
            re_enable=body.reEnable,
            secret_grace_ms=int(service.settings.secret_grace * 1000),
        )
    return found(row, f"Webhook {webhook_id}")


async def delete(service: Service, account: str, webhook_id: int) -> DbRow:
    """Delete a webhook; returns it as it was."""
    async with service.db.transaction() as conn:
        row = await store.get(conn, account, webhook_id)
        if row is None or not await store.delete(conn, account, webhook_id):
            raise ApiError(404, f"Webhook {webhook_id} not found.")
    return row


# The path names of the platform's `WebhookType`, lowercased -> the hook type on the wire.
# `recording` is accepted too: the flag is `isRecordingHooks`.
TEST_TYPES: dict[str, str] = {
    "media": "media",
    "feeds": "feeds",
    "recordings": "recordings",
    "recording": "recordings",
    "thumbnail": "thumbnail",
    "viewerconnection": "viewerConnection",
    "transcoder": "transcoder",
}
TEST_TYPE_NAMES = "Media, Feeds, Recordings, Thumbnail, ViewerConnection or Transcoder"


async def send_test(
    service: Service, account: str, hook_type: str, only: int | None = None
) -> tuple[events.AnyHook, Emitted]:
    """A sample event of ``hook_type`` to every webhook of the account that takes it (or to
    webhook ``only``), through the same outbox as real events (filters aside: a test must
    reach its webhook). The `Thumbnail` test is a real JPEG test picture."""
    wire_type = TEST_TYPES.get(hook_type.lower())
    if wire_type is None:
        raise ApiError(
            400,
            f"webhookType must be {TEST_TYPE_NAMES}; not {hook_type!r}.",
            {"webhookType": [f"must be {TEST_TYPE_NAMES}"]},
        )
    now = now_ms()
    hook: events.AnyHook | None = events.sample(wire_type, account, now)
    if hook is None:  # the thumbnail: its picture is made off the event loop
        jpeg = await asyncio.get_running_loop().run_in_executor(None, stills.test_picture)
        hook = events.ImageHook(now, events.new_asset_id(), f"{account}/mediahooks-test", 0, jpeg)
    async with service.db.transaction() as conn:
        return hook, await outbox.emit(conn, account, hook, ignore_filters=True, only=only)


@router.post("", summary="Create a webhook")
async def create_webhook(
    body: WebhookCreate, account: Account, service: ServiceDep
) -> JSONResponse:
    return ok(webhook_json(await create(service, account, body)))


@router.get("/list", summary="List webhooks")
async def list_webhooks(
    account: Account,
    service: ServiceDep,
    paging: PagingDep,
) -> JSONResponse:
    async with service.db.engine.connect() as conn:
        rows = await store.page(conn, account, paging.starting_id, paging.count, paging.descending)
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
    _, emitted = await send_test(service, account, webhookType)
    answer = ok(True)
    answer.headers["X-Mediahooks-Message-Id"] = emitted.msg_id
    answer.headers["X-Mediahooks-Webhook-Ids"] = ",".join(map(str, emitted.webhook_ids))
    return answer


@router.get("/{id:int}", summary="Read a webhook")
async def read_webhook(id: WebhookId, account: Account, service: ServiceDep) -> JSONResponse:
    return ok(webhook_json(await found_webhook(service, account, id)))


@router.put("/{id:int}", summary="Update a webhook, rotate its secret or re-enable it")
async def update_webhook(
    id: WebhookId, body: WebhookUpdate, account: Account, service: ServiceDep
) -> JSONResponse:
    return ok(webhook_json(await update(service, account, id, body)))


@router.delete("/{id:int}", summary="Delete a webhook; answers the webhook deleted")
async def delete_webhook(id: WebhookId, account: Account, service: ServiceDep) -> JSONResponse:
    return ok(webhook_json(await delete(service, account, id)))
