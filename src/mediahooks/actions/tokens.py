"""Publish tokens: create, list, find by name, the live ones, disable, read, update (a new token
value on request), delete. Every change is told to the SRT door's copy at once."""

from __future__ import annotations

from mediahooks.actions import token_fields as fields
from mediahooks.errors import NotFound
from mediahooks.service import Service
from mediahooks.store import tokens as store
from mediahooks.store.schema import DbRow


def _not_found(token_id: int) -> NotFound:
    return NotFound(f"Publish token {token_id} not found.")


async def create(service: Service, account: str, body: fields.TokenCreate) -> DbRow:
    view = body.view()
    fields.check(view)
    async with service.db.transaction() as conn:
        row = await store.create(conn, account, fields.columns(view))
    service.known_tokens.learn(row)  # SRT callers with it are let in at once
    return row


async def page(
    service: Service,
    account: str,
    sort_by: store.SortBy,
    descending: bool,
    page: int,
    per_page: int,
    name: str | None = None,
    filter_by: store.FilterBy = "TokenOrStreamName",
) -> list[DbRow]:
    """A page of tokens (those whose label or a stream name holds ``name``, when given)."""
    async with service.db.engine.connect() as conn:
        if name is None:
            return await store.page(conn, account, sort_by, descending, page, per_page)
        return await store.page_by_name(
            conn, account, name, filter_by, sort_by, descending, page, per_page
        )


async def live_ids(service: Service, account: str, stream: str | None = None) -> list[int]:
    """The ids of the tokens publishing now (to ``stream``, when given)."""
    async with service.db.engine.connect() as conn:
        return await store.live_ids(conn, account, stream)


async def disable(service: Service, account: str, token_ids: list[int]) -> list[int]:
    """Set `isActive` false on each; the ids that were the account's."""
    async with service.db.transaction() as conn:
        return await store.set_active(conn, account, list(dict.fromkeys(token_ids)), False)


async def get(service: Service, account: str, token_id: int) -> DbRow:
    async with service.db.engine.connect() as conn:
        row = await store.get(conn, account, token_id)
    if row is None:
        raise _not_found(token_id)
    return row


async def update(service: Service, account: str, token_id: int, body: fields.TokenUpdate) -> DbRow:
    """Lay the update over the stored token, check the whole, write it."""
    async with service.db.transaction() as conn:
        current = await store.get(conn, account, token_id, lock=True)
        if current is None:
            raise _not_found(token_id)
        view = body.apply(fields.view_of(current))
        fields.check(view)
        values = fields.columns(view)
        if body.refreshToken:
            values["token"] = store.new_token()
        row = await store.update_one(conn, account, token_id, values)
    if row is None:
        raise _not_found(token_id)
    service.known_tokens.learn(row)
    return row


async def delete(service: Service, account: str, token_id: int) -> None:
    async with service.db.transaction() as conn:
        if not await store.delete(conn, account, token_id):
            raise _not_found(token_id)
