"""Subscribe tokens, the platform's viewer tokens: create, list, read, update (streams added and
removed, a new token value on request), delete; their request bodies and the object answered."""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from typing import Annotated, Any

from pydantic import ConfigDict, Field, StrictBool, StrictStr

from mediahooks.actions.bodies import Body
from mediahooks.actions.token_fields import StreamRule
from mediahooks.clock import from_iso, iso, now_ms
from mediahooks.errors import Invalid, NotFound
from mediahooks.service import Service
from mediahooks.store import subscribe_tokens as store
from mediahooks.store.schema import DbRow

Origin = Annotated[str, Field(min_length=1, max_length=256)]


class SubscribeTokenCreate(Body):
    model_config = ConfigDict(extra="ignore")
    label: StrictStr = Field(..., min_length=1, max_length=256)
    streams: list[StreamRule] = Field(..., min_length=1, max_length=100)
    allowedOrigins: list[Origin] = Field(default_factory=list, max_length=100)
    expiresOn: datetime | None = None


class SubscribeTokenUpdate(Body):
    model_config = ConfigDict(extra="ignore")
    label: StrictStr | None = Field(None, min_length=1, max_length=256)
    isActive: StrictBool | None = None
    addTokenStreams: list[StreamRule] | None = Field(None, max_length=100)
    removeTokenStreams: list[StrictStr] | None = Field(None, max_length=100)
    allowedOrigins: list[Origin] | None = Field(None, max_length=100)
    expiresOn: datetime | None = None
    refreshToken: StrictBool = False


def token_object(row: DbRow) -> dict[str, Any]:
    """The token as the platform answers it."""
    return {
        "id": row.id,
        "label": row.label,
        "token": row.token,
        "addedOn": iso(row.created_at),
        "expiresOn": iso(row.expires_at),
        "isActive": bool(row.is_active),
        "streams": json.loads(row.streams),
        "allowedOrigins": json.loads(row.allowed_origins),
        "allowedIpAddresses": [],
    }


def _not_found(token_id: int) -> NotFound:
    return NotFound(f"Subscribe token {token_id} not found.")


def _future(moment: datetime | None) -> int | None:
    if moment is None:
        return None
    ms = from_iso(moment)
    if ms <= now_ms():
        raise Invalid("expiresOn must be in the future.", {"expiresOn": ["in the past"]})
    return ms


def streams_after(
    stored: list[dict[str, Any]], remove: list[str], add: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The token's stream rules once ``remove`` (stream names) are taken out and ``add`` put
    in; a token without a stream is refused."""
    streams = [rule for rule in stored if rule["streamName"] not in remove] + add
    if not streams:
        raise Invalid(
            "A subscribe token needs at least one stream: add one or delete the token.",
            {"removeTokenStreams": ["would leave no stream"]},
        )
    return streams


async def create(service: Service, account: str, body: SubscribeTokenCreate) -> DbRow:
    values = {
        "label": body.label,
        "streams": json.dumps([rule.model_dump() for rule in body.streams]),
        "allowed_origins": json.dumps(body.allowedOrigins),
        "expires_at": _future(body.expiresOn),
        "is_active": True,
    }
    async with service.db.transaction() as conn:
        return await store.create(conn, account, values)


async def page(
    service: Service, account: str, starting_id: int | None, count: int, descending: bool
) -> list[DbRow]:
    async with service.db.engine.connect() as conn:
        return await store.page(conn, account, starting_id, count, descending)


async def get(service: Service, account: str, token_id: int) -> DbRow:
    async with service.db.engine.connect() as conn:
        row = await store.get(conn, account, token_id)
    if row is None:
        raise _not_found(token_id)
    return row


async def update(
    service: Service, account: str, token_id: int, body: SubscribeTokenUpdate
) -> DbRow:
    """Lay the update over the stored token and write it."""
    async with service.db.transaction() as conn:
        current = await store.get(conn, account, token_id)
        if current is None:
            raise _not_found(token_id)
        streams = streams_after(
            json.loads(current.streams),
            body.removeTokenStreams or [],
            [rule.model_dump() for rule in body.addTokenStreams or []],
        )
        values: dict[str, Any] = {"streams": json.dumps(streams)}
        if body.label is not None:
            values["label"] = body.label
        if body.isActive is not None:
            values["is_active"] = body.isActive
        if body.allowedOrigins is not None:
            values["allowed_origins"] = json.dumps(body.allowedOrigins)
        if body.expiresOn is not None:
            values["expires_at"] = _future(body.expiresOn)
        if body.refreshToken:
            values["token"] = secrets.token_hex(32)
        row = await store.update_one(conn, account, token_id, values)
    if row is None:
        raise _not_found(token_id)
    return row


async def delete(service: Service, account: str, token_id: int) -> None:
    async with service.db.transaction() as conn:
        if not await store.delete(conn, account, token_id):
            raise _not_found(token_id)
