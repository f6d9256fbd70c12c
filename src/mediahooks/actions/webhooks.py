"""Webhooks: create, read, list, update (a new secret, re-enabling), delete, and test events."""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import ConfigDict, Field, StrictBool, StrictStr, field_validator

from mediahooks import events, patterns
from mediahooks.actions.bodies import Body
from mediahooks.clock import iso, now_ms
from mediahooks.delivery import guard
from mediahooks.errors import Invalid, NotFound
from mediahooks.media import stills
from mediahooks.service import Service
from mediahooks.store import outbox
from mediahooks.store import webhooks as store
from mediahooks.store.outbox import Emitted
from mediahooks.store.schema import DbRow
from mediahooks.store.webhooks import FLAG_COLUMNS


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
    """A webhook as the platform shapes it (the dashboard shows the same)."""
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
        raise Invalid(f"url is not allowed: {exc}", {"url": [str(exc)]}) from exc
    except UnicodeError as exc:  # the resolver's IDNA codec: a label over 63 characters, ...
        reason = f"{host} is not a valid host name ({exc})"
        raise Invalid(f"url is not allowed: {reason}", {"url": [reason]}) from exc


async def find(service: Service, account: str, webhook_id: int) -> DbRow | None:
    async with service.db.engine.connect() as conn:
        return await store.get(conn, account, webhook_id)


async def get(service: Service, account: str, webhook_id: int) -> DbRow:
    """The account's webhook, or NotFound."""
    row = await find(service, account, webhook_id)
    if row is None:
        raise NotFound(f"Webhook {webhook_id} not found.")
    return row


async def page(
    service: Service, account: str, starting_id: int | None, count: int, descending: bool
) -> list[DbRow]:
    async with service.db.engine.connect() as conn:
        return await store.page(conn, account, starting_id, count, descending)


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
    if row is None:
        raise NotFound(f"Webhook {webhook_id} not found.")
    return row


async def delete(service: Service, account: str, webhook_id: int) -> DbRow:
    """Delete a webhook; returns it as it was."""
    async with service.db.transaction() as conn:
        row = await store.get(conn, account, webhook_id)
        if row is None or not await store.delete(conn, account, webhook_id):
            raise NotFound(f"Webhook {webhook_id} not found.")
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
        raise Invalid(
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
