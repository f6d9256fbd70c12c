"""Delivery history past its retention: finished deliveries, their attempts and the events left
without deliveries are forgotten; pending work never is, however old.

Deliveries are real (a real receiver answers 200, 500 or 429) and so are the sweeps; the
retention is a cutoff taken between emits rather than days waited out.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web
from prometheus_client import REGISTRY
from sqlalchemy import select

from mediahooks.clock import now_ms
from mediahooks.events import FeedsData, MediaData, feeds_hook, media_hook, new_asset_id
from mediahooks.media import sweeper
from mediahooks.store import outbox
from mediahooks.store.schema import attempts, deliveries, events
from support.receiver import Receiver
from support.server import Api, ApiFactory
from support.waiting import eventually


async def answer_500(_request: web.Request) -> web.Response:
    return web.Response(status=500)


async def answer_later(_request: web.Request) -> web.Response:
    return web.Response(status=429, headers={"Retry-After": "3600"})


async def emit(api: Api, stream: str, hook_type: str = "media") -> int:
    account = api.service.account_id
    if hook_type == "feeds":
        feed = FeedsData(new_asset_id(), account, stream, f"{account}/{stream}", 1, active=True)
        hook = feeds_hook("started", feed, 1)
    else:
        data = MediaData(new_asset_id(), 0, stream, f"{account}/{stream}", 1, "clip", {})
        hook = media_hook("completed", data, 1)
    async with api.service.db.transaction() as conn:
        return (await outbox.emit(conn, account, hook)).event_id


async def rows(api: Api) -> dict[str, Any]:
    """What is left: event ids, deliveries as (event, webhook, status), attempts per delivery."""
    async with api.service.db.engine.connect() as conn:
        kept_events = set((await conn.execute(select(events.c.id))).scalars())
        query = select(deliveries.c.id, deliveries.c.event_id, deliveries.c.webhook_id)
        kept = (await conn.execute(query)).all()
        logged = set((await conn.execute(select(attempts.c.delivery_id))).scalars())
    return {
        "events": kept_events,
        "deliveries": {(e, w) for _, e, w in kept},
        "orphaned attempts": logged - {d for d, _, _ in kept},
    }


async def settled(api: Api, count: int) -> None:
    """Every delivery has been attempted: the pending one has its 429 on record."""

    async def done() -> bool:
        async with api.service.db.engine.connect() as conn:
            tried = select(deliveries.c.id).where(deliveries.c.attempt_count > 0)
            finished = tried.where(deliveries.c.status != "pending")
            return len((await conn.execute(tried)).all()) == count and (
                len((await conn.execute(finished)).all()) == count - 1
            )

    await eventually(done)


async def event_msg_id(api: Api, event_id: int) -> str:
    async with api.service.db.engine.connect() as conn:
        return str(await conn.scalar(select(events.c.msg_id).where(events.c.id == event_id)))


def forgotten(kind: str) -> float:
    return REGISTRY.get_sample_value("mediahooks_history_forgotten_total", {"kind": kind}) or 0.0


async def test_finished_history_is_forgotten_and_pending_work_is_kept(
    api_factory: ApiFactory, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # history_days=0: the sweeper keeps everything; the test forgets with cutoffs of its own.
    api = await api_factory(retry_schedule="0.1", history_days=0)
    ok = (await api.webhook(receiver.url + "/ok"))["id"]
    broken = (await api.webhook(receiver.on("/broken", answer_500)))["id"]
    later = (await api.webhook(receiver.on("/later", answer_later), filter="^stuck"))["id"]
    # Old: an event no webhook takes, one still pending for `later`, one all finished.
    nobody = await emit(api, "feeds", hook_type="feeds")
    stuck = await emit(api, "stuck-1")
    done = await emit(api, "cam")
    await settled(api, 5)
    await asyncio.sleep(0.01)
    cutoff = now_ms()
    await asyncio.sleep(0.01)
    young = await emit(api, "cam")
    # An old delivery resent after the cutoff has fresh history: it is kept, and so its event.
    resent = await api.ok("GET", f"/api/webhooks/{broken}/deliveries?isDescending=false")
    assert resent[1]["messageId"] == await event_msg_id(api, done)
    await api.ok("POST", f"/api/webhooks/{broken}/deliveries/{resent[1]['id']}/retry")
    await settled(api, 7)
    before = {kind: forgotten(kind) for kind in ("deliveries", "events")}

    # One delivery per transaction and two transactions per sweep: the work is bounded, and the
    # next sweep goes on where this one stopped.
    monkeypatch.setattr(sweeper, "HISTORY_BATCH", 1)
    monkeypatch.setattr(sweeper, "HISTORY_BATCHES_PER_SWEEP", 2)
    await sweeper.forget_old_history(api.service.db, cutoff)
    assert len((await rows(api))["deliveries"]) == 7 - 2
    for _ in range(3):
        await sweeper.forget_old_history(api.service.db, cutoff)

    assert await rows(api) == {
        "events": {stuck, done, young},
        "deliveries": {(stuck, later), (done, broken), (young, ok), (young, broken)},
        "orphaned attempts": set(),
    }
    assert forgotten("deliveries") - before["deliveries"] == 3
    assert forgotten("events") - before["events"] == 1
    assert nobody not in (await rows(api))["events"]
    # The API knows only what is kept; the pending delivery is still replayable.
    listed = await api.ok("GET", f"/api/webhooks/{ok}/deliveries")
    assert len(listed) == 1
    (pending,) = await api.ok("GET", f"/api/webhooks/{later}/deliveries")
    detail = await api.ok("GET", f"/api/webhooks/{later}/deliveries/{pending['id']}")
    assert [a["statusCode"] for a in detail["attemptLog"]] == [429]


async def test_the_sweeper_forgets_deliveries_once_past_the_retention(
    api_factory: ApiFactory, receiver: Receiver
) -> None:
    retention_s = 2.0
    api = await api_factory(history_days=retention_s / 86_400, sweep_interval=0.2)
    webhook = (await api.webhook(receiver.url + "/kept-a-while"))["id"]
    emitted = now_ms()  # the event's clock starts at or after this
    await api.ok("POST", "/api/webhooks/test/Media")
    await receiver.wait_for(1, "/kept-a-while")

    async def listed() -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = await api.ok("GET", f"/api/webhooks/{webhook}/deliveries")
        return data

    async def succeeded() -> bool:
        return [d["status"] for d in await listed()] == ["succeeded"]

    await eventually(succeeded)
    (delivery,) = await listed()

    async def gone() -> bool:
        return await listed() == []

    await eventually(gone)
    assert now_ms() - emitted >= retention_s * 1000  # not before its time
    status, body = await api.call("GET", f"/api/webhooks/{webhook}/deliveries/{delivery['id']}")
    assert status == 404 and body["status"] == "fail", body
    assert (await rows(api))["events"] == set()
