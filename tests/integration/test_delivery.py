"""Delivery end to end: a real server, a real receiver, both databases.

The retry schedule is 0.2 s gaps (4 attempts in all) and the attempt timeout 2 s, from
`support.server.settings_for`.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError

from mediahooks.assets import Status
from mediahooks.clock import now_ms
from mediahooks.config import Settings
from mediahooks.delivery.dispatcher import GONE_REASON
from mediahooks.events import MediaData, media_hook, new_asset_id
from mediahooks.events import sample as sample_hook
from mediahooks.receiver import verify
from mediahooks.signing import MILLICAST_HEADER
from mediahooks.store import accounts, assets, claims, outbox, verdicts
from mediahooks.store import webhooks as webhooks_store
from mediahooks.store.db import DELIVERIES
from mediahooks.store.dialects import connect
from mediahooks.store.postgres import PostgresDatabase
from mediahooks.store.schema import attempts, deliveries, events
from mediahooks.store.schema import webhooks as webhooks_table
from support.receiver import Receiver
from support.server import Api, ApiFactory
from support.targets import EMBEDDING_URLS
from support.waiting import eventually


async def new_asset(api: Api, stream: str = "cam") -> str:
    async with api.service.db.transaction() as conn:
        row = await assets.create(
            conn,
            assets.NewAsset(
                account_id=api.service.account_id,
                type="clip",
                token_id=1,
                stream_name=stream,
                start_time=1_725_259_874_671,
            ),
        )
    return str(row.id)


async def move(api: Api, asset_id: str, *states: Status) -> None:
    for state in states:
        async with api.service.db.transaction() as conn:
            await assets.transition(conn, asset_id, state)


async def deliveries_of(api: Api, webhook_id: int, status: str | None = None) -> list[Any]:
    query = f"?itemCount=100{'&status=' + status if status else ''}"
    data: list[Any] = await api.ok("GET", f"/api/webhooks/{webhook_id}/deliveries{query}")
    return data


async def only_delivery(api: Api, webhook_id: int) -> dict[str, Any]:
    (listed,) = await deliveries_of(api, webhook_id)
    detail: dict[str, Any] = await api.ok(
        "GET", f"/api/webhooks/{webhook_id}/deliveries/{listed['id']}"
    )
    return detail


async def settled(api: Api, webhook_id: int, status: str, count: int = 1) -> None:
    async def check() -> bool:
        return len(await deliveries_of(api, webhook_id, status)) >= count

    await eventually(check)


def answers(*statuses: int, headers: dict[str, str] | None = None) -> Any:
    """A handler answering ``statuses`` in turn, then 200 forever."""
    queue = list(statuses)

    async def handler(_request: web.Request) -> web.Response:
        return web.Response(status=queue.pop(0) if queue else 200, headers=headers)

    return handler


async def test_an_assets_events_arrive_in_order_even_when_the_first_needs_retries(
    api: Api, receiver: Receiver
) -> None:
    url = receiver.url + "/ordered"
    await api.webhook(url)
    # The first attempt at `processing` fails: `completed` must wait for its retry.
    receiver.on("/ordered", answers(500, 500))
    asset = await new_asset(api)
    await move(api, asset, Status.COMPLETE, Status.DELETING, Status.DELETED)
    got = await receiver.wait_for(5, "/ordered")
    sequence = [r.json["event"] for r in got]
    assert sequence == ["processing", "processing", "processing", "completed", "deleted"]
    assert {r.json["data"]["mediaAssetId"] for r in got} == {asset}


async def test_one_assets_stuck_event_does_not_delay_other_assets(
    api: Api, receiver: Receiver
) -> None:
    await api.webhook(receiver.url + "/assets")
    stuck = asyncio.Event()

    async def handler(request: web.Request) -> web.Response:
        body = await request.json()
        if body["data"]["streamName"] == "stuck" and not stuck.is_set():
            return web.Response(status=503)
        return web.Response(text="ok")

    receiver.on("/assets", handler)
    blocked = await new_asset(api, "stuck")
    await move(api, blocked, Status.COMPLETE)
    others = [await new_asset(api, f"cam-{i}") for i in range(5)]

    def delivered() -> set[str]:
        return {
            r.json["data"]["mediaAssetId"]
            for r in receiver.at("/assets")
            if r.json["data"]["streamName"] != "stuck"
        }

    async def all_others_arrived() -> bool:
        return delivered() == set(others)

    await eventually(all_others_arrived)
    stuck.set()
    await settled(api, (await api.ok("GET", "/api/webhooks/list"))[0]["id"], "succeeded", 7)
    events_of_stuck = [
        r.json["event"] for r in receiver.at("/assets") if r.json["data"]["streamName"] == "stuck"
    ]
    assert events_of_stuck[-2:] == ["processing", "completed"]
    assert "completed" not in events_of_stuck[:-1]


async def test_retries_keep_the_webhook_id_and_re_sign(api: Api, receiver: Receiver) -> None:
    hook = await api.webhook(receiver.on("/flaky", answers(500, 500)))
    await api.ok("POST", "/api/webhooks/test/Media")
    got = await receiver.wait_for(3, "/flaky")
    assert len({r.headers["webhook-id"] for r in got}) == 1
    assert {r.body for r in got} == {got[0].body}
    for r in got:
        verify(r.body, r.headers, hook["secret"])
    await settled(api, hook["id"], "succeeded")
    detail = await only_delivery(api, hook["id"])
    assert [a["statusCode"] for a in detail["attemptLog"]] == [500, 500, 200]
    assert [a["errorKind"] for a in detail["attemptLog"]] == ["http", "http", None]


async def test_a_500_forever_fails_after_the_last_attempt_and_stays_replayable(
    api: Api, receiver: Receiver
) -> None:
    hook = await api.webhook(receiver.on("/down", answers(*[500] * 100)))
    await api.ok("POST", "/api/webhooks/test/Media")
    await settled(api, hook["id"], "failed")
    assert len(receiver.at("/down")) == 4  # one attempt + the three scheduled retries
    detail = await only_delivery(api, hook["id"])
    assert detail["status"] == "failed" and detail["attempts"] == 4
    receiver.on("/down", answers())
    await api.ok("POST", f"/api/webhooks/{hook['id']}/deliveries/{detail['id']}/retry")
    await settled(api, hook["id"], "succeeded")


async def test_a_timeout_is_recorded_as_such(api_factory: ApiFactory, receiver: Receiver) -> None:
    api = await api_factory(attempt_timeout=0.3, retry_schedule="0.1")

    async def slow(_request: web.Request) -> web.Response:
        await asyncio.sleep(1)
        return web.Response(text="late")

    hook = await api.webhook(receiver.on("/slow", slow))
    await api.ok("POST", "/api/webhooks/test/Media")
    await settled(api, hook["id"], "failed")
    detail = await only_delivery(api, hook["id"])
    assert [a["errorKind"] for a in detail["attemptLog"]] == ["timeout", "timeout"]
    assert all(a["statusCode"] is None for a in detail["attemptLog"])


async def test_a_refused_connection_is_recorded_as_connect(api: Api) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    hook = await api.webhook(f"http://127.0.0.1:{port}/nobody")
    await api.ok("POST", "/api/webhooks/test/Media")
    await settled(api, hook["id"], "failed")
    detail = await only_delivery(api, hook["id"])
    assert {a["errorKind"] for a in detail["attemptLog"]} == {"connect"}
    assert len(detail["attemptLog"]) == 4


async def test_retry_after_on_429_is_a_floor(api: Api, receiver: Receiver) -> None:
    hook = await api.webhook(receiver.on("/busy", answers(429, headers={"Retry-After": "1"})))
    await api.ok("POST", "/api/webhooks/test/Media")
    first, second = await receiver.wait_for(2, "/busy")
    # The schedule alone would retry after 0.2 s; Retry-After asks for 1 s.
    assert second.at - first.at >= 0.95
    await settled(api, hook["id"], "succeeded")


async def test_410_disables_the_webhook_and_re_enable_resumes_its_queue(
    api: Api, receiver: Receiver
) -> None:
    hook = await api.webhook(receiver.on("/gone", answers(410)))
    await api.ok("POST", "/api/webhooks/test/Media")
    await receiver.wait_for(1, "/gone")

    async def disabled() -> bool:
        return (await api.ok("GET", f"/api/webhooks/{hook['id']}"))["disabled"] is not None

    await eventually(disabled)
    state = await api.ok("GET", f"/api/webhooks/{hook['id']}")
    assert "410" in state["disabled"]["reason"] and state["disabled"]["until"]
    # Events keep queuing while it is disabled, none is sent.
    await api.ok("POST", "/api/webhooks/test/Media")
    await asyncio.sleep(0.6)
    assert len(receiver.at("/gone")) == 1
    assert len(await deliveries_of(api, hook["id"], "pending")) == 2
    await api.ok("PUT", f"/api/webhooks/{hook['id']}", {"reEnable": True})
    await settled(api, hook["id"], "succeeded", 2)
    assert (await api.ok("GET", f"/api/webhooks/{hook['id']}"))["disabled"] is None


async def test_redirects_are_not_followed(api: Api, receiver: Receiver) -> None:
    target = receiver.url + "/target"

    async def redirect(_request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": target})

    hook = await api.webhook(receiver.on("/moved", redirect))
    await api.ok("POST", "/api/webhooks/test/Media")
    await settled(api, hook["id"], "failed")
    assert receiver.at("/target") == []
    detail = await only_delivery(api, hook["id"])
    assert {a["errorKind"] for a in detail["attemptLog"]} == {"redirect"}
    # The whole sentence: where it pointed and what to do about it.
    assert detail["attemptLog"][0]["error"] == (
        f"answered 302 (Location: {target}); redirects are not followed: point the webhook at "
        "the final URL"
    )


async def test_a_redirect_without_location_or_with_a_huge_one_is_reported_whole(
    api: Api, receiver: Receiver
) -> None:
    huge = "https://example.com/" + "x" * 10_000

    async def moved(_request: web.Request) -> web.Response:
        return web.Response(status=308, headers={"Location": huge})

    async def nowhere(_request: web.Request) -> web.Response:
        return web.Response(status=301)

    long_hook = await api.webhook(receiver.on("/huge", moved))
    bare_hook = await api.webhook(receiver.on("/bare", nowhere))
    await api.ok("POST", "/api/webhooks/test/Media")
    for hook in (long_hook, bare_hook):
        await settled(api, hook["id"], "failed")
    long_error = (await only_delivery(api, long_hook["id"]))["attemptLog"][0]["error"]
    assert long_error.startswith(f"answered 308 (Location: {huge[:2048]}…); ")
    assert long_error.endswith("point the webhook at the final URL")
    bare_error = (await only_delivery(api, bare_hook["id"]))["attemptLog"][0]["error"]
    assert bare_error == (
        "answered 301 (no Location); redirects are not followed: point the webhook at the final URL"
    )


async def test_a_slow_endpoint_does_not_delay_a_healthy_one(
    api_factory: ApiFactory, receiver: Receiver
) -> None:
    api = await api_factory(attempt_timeout=5, per_webhook_concurrency=2)
    release = asyncio.Event()

    async def stalled(_request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(text="finally")

    await api.webhook(receiver.on("/stalled", stalled))
    await api.webhook(receiver.url + "/healthy")
    started = time.monotonic()
    for _ in range(20):
        await api.ok("POST", "/api/webhooks/test/Media")
    healthy = await receiver.wait_for(20, "/healthy", timeout=4)
    # All twenty reached the healthy endpoint while the stalled one still holds its first two.
    assert healthy[-1].at - started < 4
    assert len(receiver.at("/stalled")) == 2
    release.set()
    await receiver.wait_for(20, "/stalled")


async def test_the_filter_is_honoured(api: Api, receiver: Receiver) -> None:
    await api.webhook(receiver.url + "/cams", filter="^cam-")
    await api.webhook(receiver.url + "/all")
    for stream in ("cam-1", "studio", "cam-2", "xcam-3"):
        await new_asset(api, stream)
    everything = await receiver.wait_for(4, "/all")
    assert len(everything) == 4
    got = await receiver.wait_for(2, "/cams")
    await asyncio.sleep(0.3)
    assert sorted(r.json["data"]["streamName"] for r in receiver.at("/cams")) == ["cam-1", "cam-2"]
    assert len(got) == 2


async def test_feeds_and_media_flags_select_hook_types(api: Api, receiver: Receiver) -> None:
    await api.webhook(receiver.url + "/media-only")
    await api.ok(
        "POST",
        "/api/webhooks",
        {"url": receiver.url + "/feeds-only", "isFeedHooks": True, "isMediaHooks": False},
    )
    await api.ok("POST", "/api/webhooks/test/Feeds")
    await new_asset(api)
    (feed,) = await receiver.wait_for(1, "/feeds-only")
    (media,) = await receiver.wait_for(1, "/media-only")
    assert feed.json["type"] == "feeds" and media.json["type"] == "media"


async def test_sustained_failure_disables_and_re_enable_resumes(
    api_factory: ApiFactory, receiver: Receiver
) -> None:
    api = await api_factory(disable_after=0.3, retry_schedule="0.2,0.2,0.2,0.2,0.2")
    hook = await api.webhook(receiver.on("/sick", answers(*[500] * 100)))
    await api.ok("POST", "/api/webhooks/test/Media")

    async def disabled() -> bool:
        return (await api.ok("GET", f"/api/webhooks/{hook['id']}"))["disabled"] is not None

    await eventually(disabled)
    tries_when_disabled = len(receiver.at("/sick"))
    await asyncio.sleep(0.6)
    assert len(receiver.at("/sick")) == tries_when_disabled  # paused, not burning attempts
    receiver.on("/sick", answers())
    await api.ok("PUT", f"/api/webhooks/{hook['id']}", {"reEnable": True})
    await settled(api, hook["id"], "succeeded")


async def test_private_targets_are_blocked_again_at_send_time(
    api_factory: ApiFactory, receiver: Receiver
) -> None:
    # Saved while loopback was allowed; a server that no longer allows it refuses to send.
    lenient = await api_factory(dispatch=False)
    hook = await lenient.webhook(receiver.url + "/private")
    strict = await api_factory(allow_private_targets="", retry_schedule="0.1")
    await strict.ok("POST", "/api/webhooks/test/Media")
    await settled(strict, hook["id"], "failed")
    detail = await only_delivery(strict, hook["id"])
    assert {a["errorKind"] for a in detail["attemptLog"]} == {"blocked"}
    assert "MEDIAHOOKS_ALLOW_PRIVATE_TARGETS" in detail["attemptLog"][0]["error"]
    assert receiver.at("/private") == []


async def test_ipv6_forms_embedding_private_ipv4_are_blocked_at_send_time(
    api_factory: ApiFactory,
) -> None:
    # Saved while every address was allowed; the dispatcher's guard judges them again.
    lenient = await api_factory(dispatch=False)
    hooks = {(await lenient.webhook(url))["id"]: reason for url, reason in EMBEDDING_URLS}
    strict = await api_factory(allow_private_targets="", retry_schedule="0.1")
    await strict.ok("POST", "/api/webhooks/test/Media")
    for webhook_id, reason in hooks.items():
        await settled(strict, webhook_id, "failed")
        detail = await only_delivery(strict, webhook_id)
        assert {a["errorKind"] for a in detail["attemptLog"]} == {"blocked"}, detail
        assert reason in detail["attemptLog"][0]["error"], detail


async def test_secret_rotation_signs_with_both_keys_during_grace(
    api: Api, receiver: Receiver
) -> None:
    hook = await api.webhook(receiver.url + "/rotating")
    rotated = await api.ok("PUT", f"/api/webhooks/{hook['id']}", {"refreshSecret": True})
    assert rotated["secret"] != hook["secret"]
    await api.ok("POST", "/api/webhooks/test/Media")
    (got,) = await receiver.wait_for(1, "/rotating")
    assert len(got.headers["webhook-signature"].split()) == 2
    verify(got.body, got.headers, hook["secret"])
    verify(got.body, got.headers, rotated["secret"])
    verify(
        got.body,
        {MILLICAST_HEADER: got.headers["X-Millicast-Signature"]},
        rotated["secret"],
        platform=True,
    )


async def test_a_deleted_webhook_gets_nothing_more(api: Api, receiver: Receiver) -> None:
    hook = await api.webhook(receiver.on("/bye", answers(*[500] * 100)))
    await api.ok("POST", "/api/webhooks/test/Media")
    await receiver.wait_for(1, "/bye")
    await api.ok("DELETE", f"/api/webhooks/{hook['id']}")
    sent = len(receiver.at("/bye"))
    await asyncio.sleep(0.6)
    assert len(receiver.at("/bye")) <= sent + 1  # at most the attempt already in flight


async def test_a_state_change_and_its_event_commit_together_or_not_at_all(
    api: Api, receiver: Receiver
) -> None:
    await api.webhook(receiver.url + "/atomic")

    async def counts() -> tuple[int, int]:
        async with api.service.db.engine.connect() as conn:
            n_events = (await conn.execute(select(func.count()).select_from(events))).scalar_one()
            n_deliveries = (
                await conn.execute(select(func.count()).select_from(deliveries))
            ).scalar_one()
        return n_events, n_deliveries

    before = await counts()
    try:
        async with api.service.db.transaction() as conn:
            await assets.create(
                conn,
                assets.NewAsset(api.service.account_id, "clip", 1, "cam", 1_725_259_874_671),
            )
            raise RuntimeError("crash after the change, before the commit")
    except RuntimeError:
        pass
    assert await counts() == before
    await new_asset(api)
    assert await counts() == (before[0] + 1, before[1] + 1)
    await receiver.wait_for(1, "/atomic")


async def test_overlapping_transactions_fail_alone_and_return_after_their_commit(
    database_url: str,
) -> None:
    """On SQLite overlapping transactions share one commit (group commit); on both databases a
    failing one undoes only itself, and every caller continues only once its rows are in."""
    db = connect(Settings(database_url=database_url).sqlalchemy_url)
    await db.migrate()
    try:
        async with db.transaction() as conn:
            account_id, _ = await accounts.ensure(conn, None)

        async def one(index: int) -> None:
            hook = sample_hook("media", account_id, index)
            assert hook is not None
            async with db.transaction() as conn:
                emitted = await outbox.emit(conn, account_id, hook)
                await asyncio.sleep(0)  # let the others queue up behind this body
                if index % 3 == 0:  # the first of a group, and later ones
                    raise RuntimeError(f"body {index} fails after its insert")
            # Returned: a connection of its own sees the event.
            async with db.engine.connect() as conn:
                query = select(func.count()).where(events.c.msg_id == emitted.msg_id)
                assert (await conn.execute(query)).scalar_one() == 1

        results = await asyncio.gather(*(one(i) for i in range(12)), return_exceptions=True)
        failed = [r for r in results if r is not None]
        assert len(failed) == 4 and all(isinstance(r, RuntimeError) for r in failed), failed
        async with db.engine.connect() as conn:
            stored = (await conn.execute(select(func.count()).select_from(events))).scalar_one()
            queued = (await conn.execute(select(func.count()).select_from(deliveries))).scalar_one()
        assert (stored, queued) == (8, 0)  # no webhooks: events only
    finally:
        await db.close()


async def test_a_disk_full_in_one_body_fails_every_body_of_its_sqlite_commit(
    tmp_path: Path,
) -> None:
    """SQLite rolls the whole transaction back when the disk fills: the bodies that ran before
    the failing one, in the same shared commit, lost their rows too and are told so (none is
    told it committed), and the next transaction starts afresh."""
    db = connect(f"sqlite+aiosqlite:///{tmp_path / 'full.db'}")
    await db.migrate()
    try:
        async with db.transaction() as conn:
            account_id, _ = await accounts.ensure(conn, None)
            await conn.exec_driver_sql("CREATE TABLE filler (x BLOB)")
        queued = asyncio.Event()

        async def before() -> str:
            hook = sample_hook("media", account_id, 1)
            assert hook is not None
            async with db.transaction() as conn:
                emitted = await outbox.emit(conn, account_id, hook)
                await queued.wait()  # the failing body queues behind this one, in its group
            return emitted.msg_id

        async def filling() -> None:
            queued.set()
            async with db.transaction() as conn:
                pages = (await conn.exec_driver_sql("PRAGMA page_count")).scalar_one()
                await conn.exec_driver_sql(f"PRAGMA max_page_count = {pages}")
                try:
                    # An insert past the limit: SQLite rolls the whole transaction back.
                    await conn.exec_driver_sql("INSERT INTO filler VALUES (zeroblob(4000000))")
                finally:
                    await conn.exec_driver_sql("PRAGMA max_page_count = 1073741823")

        first = asyncio.create_task(before())
        await asyncio.sleep(0)  # the first body is running, waiting for the second to queue
        results = await asyncio.gather(first, filling(), return_exceptions=True)
        assert all(isinstance(r, OperationalError) and "full" in str(r) for r in results), results
        async with db.engine.connect() as conn:
            stored = (await conn.execute(select(func.count()).select_from(events))).scalar_one()
        assert stored == 0
        hook = sample_hook("media", account_id, 2)
        assert hook is not None
        async with db.transaction() as conn:
            await outbox.emit(conn, account_id, hook)
        async with db.engine.connect() as conn:
            stored = (await conn.execute(select(func.count()).select_from(events))).scalar_one()
        assert stored == 1
    finally:
        await db.close()


async def test_sqlite_waits_for_another_writer_without_blocking_the_loop(
    tmp_path: Path,
) -> None:
    """Another process holding SQLite's write lock makes a transaction wait asleep: the event
    loop keeps running meanwhile, and the transaction commits once the lock is free."""
    path = tmp_path / "busy.db"
    db = connect(f"sqlite+aiosqlite:///{path}")
    await db.migrate()
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")

        async def write() -> str:
            async with db.transaction() as conn:
                account_id, _ = await accounts.ensure(conn, None)
            return account_id

        writing = asyncio.create_task(write())
        for _ in range(5):  # the loop runs while the write waits for the lock
            await asyncio.sleep(0.01)
        assert not writing.done()
        other.execute("COMMIT")
        account_id = await asyncio.wait_for(writing, 10)
        row = other.execute("SELECT id FROM accounts").fetchone()
        assert row == (account_id,)
    finally:
        other.close()
        await db.close()


async def test_verdicts_keep_each_webhook_health(api_factory: ApiFactory) -> None:
    """A batch's failures start (or keep) a webhook's failing clock, a success clears it, a
    webhook failing past the limit is disabled, and a 410 disables it at once."""
    api = await api_factory(dispatch=False)
    ids = [(await api.webhook(f"http://127.0.0.1:9/{name}"))["id"] for name in "abcd"]
    sick, recovering, long_sick, gone = ids
    await api.ok("POST", "/api/webhooks/test/Media")
    db = api.service.db
    async with db.transaction() as conn:
        rows = (await conn.execute(select(deliveries.c.id, deliveries.c.webhook_id))).all()
        delivery_of = {webhook_id: delivery_id for delivery_id, webhook_id in rows}
        await conn.execute(
            webhooks_table.update()
            .where(webhooks_table.c.id.in_([recovering, long_sick]))
            .values(failing_since=1_000)
        )

    def result(webhook_id: int, ok: bool, disable_reason: str | None = None) -> verdicts.Result:
        return verdicts.Result(
            delivery_id=delivery_of[webhook_id],
            webhook_id=webhook_id,
            attempt={
                "delivery_id": delivery_of[webhook_id],
                "webhook_id": webhook_id,
                "started_at": 5_000,
                "duration_ms": 1,
                "url": "http://127.0.0.1:9/",
                "status_code": 200 if ok else 500,
                "error_kind": None if ok else "http",
                "error_message": None if ok else "answered 500",
                "request_headers": "{}",
                "response_headers": "{}",
                "response_body": "",
                "worker": "w",
            },
            status="succeeded" if ok else "pending",
            tries=1,
            next_attempt_at=6_000,
            last_status=200 if ok else 500,
            last_error=None if ok else "answered 500",
            webhook_ok=ok,
            disable_reason=disable_reason,
        )

    batch = [
        result(sick, False),
        result(recovering, True),
        result(long_sick, False),
        result(gone, False, GONE_REASON),
    ]
    async with db.statements() as conn:
        await verdicts.record(conn, "w", batch, 5_000, disable_for_ms=100, disable_after_ms=2_000)
    async with db.transaction() as conn:
        health = {
            r.id: r
            for r in await conn.execute(
                select(
                    webhooks_table.c.id,
                    webhooks_table.c.failing_since,
                    webhooks_table.c.disabled_until,
                    webhooks_table.c.disabled_reason,
                )
            )
        }
        (attempts_written,) = (await conn.execute(select(func.count()).select_from(attempts))).one()
    assert attempts_written == 4
    assert (health[sick].failing_since, health[sick].disabled_until) == (5_000, None)
    assert (health[recovering].failing_since, health[recovering].disabled_until) == (None, None)
    assert health[long_sick].failing_since == 1_000
    assert health[long_sick].disabled_until == 5_100
    assert "failed for too long" in health[long_sick].disabled_reason
    assert (health[gone].disabled_until, health[gone].disabled_reason) == (5_100, GONE_REASON)


async def test_emit_queues_an_event_for_exactly_its_subscribers(api_factory: ApiFactory) -> None:
    """Unfiltered subscribers, filters, test sends to one webhook (`only`) and sends that
    ignore filters: the deliveries written are the webhooks `emit` reports."""
    api = await api_factory(dispatch=False)
    plain = (await api.webhook("http://127.0.0.1:9/plain"))["id"]
    cams = (await api.webhook("http://127.0.0.1:9/cams", filter="^cam-"))["id"]
    await api.ok(
        "POST",
        "/api/webhooks",
        {"url": "http://127.0.0.1:9/feeds", "isFeedHooks": True, "isMediaHooks": False},
    )
    gone = (await api.webhook("http://127.0.0.1:9/gone"))["id"]
    await api.ok("DELETE", f"/api/webhooks/{gone}")
    db, account = api.service.db, api.service.account_id

    async def emit(stream: str, **options: Any) -> list[int]:
        data = MediaData(new_asset_id(), 0, stream, f"{account}/{stream}", 1, "clip", {})
        hook = media_hook("completed", data, 1)
        async with db.transaction() as conn:
            emitted = await outbox.emit(conn, account, hook, **options)
        async with db.engine.connect() as conn:
            query = select(deliveries.c.webhook_id).where(deliveries.c.event_id == emitted.event_id)
            written = sorted((await conn.execute(query)).scalars())
        assert written == emitted.webhook_ids
        return written

    assert await emit("cam-1") == [plain, cams]
    assert await emit("studio") == [plain]
    assert await emit("studio", ignore_filters=True) == [plain, cams]
    assert await emit("studio", only=cams) == []
    assert await emit("studio", only=cams, ignore_filters=True) == [cams]
    assert await emit("cam-2", only=gone) == []


async def test_a_claim_under_a_backlog_takes_the_oldest_heads_within_each_webhooks_room(
    api_factory: ApiFactory,
) -> None:
    """Three webhooks, 40 events each, and a chain of one asset's events: a claim takes what
    each webhook has room for, oldest first, and never a delivery behind a pending one."""
    api = await api_factory(dispatch=False)
    ids = [(await api.webhook(f"http://127.0.0.1:9/{n}"))["id"] for n in range(3)]
    db, account = api.service.db, api.service.account_id
    async with db.transaction() as conn:
        chained = sample_hook("media", account, 0)
        assert chained is not None
        for _ in range(3):  # three events of one asset: only the first is a head
            await outbox.emit(conn, account, chained)
        for index in range(1, 40):
            hook = sample_hook("media", account, index)
            assert hook is not None
            await outbox.emit(conn, account, hook)
    async with db.statements() as conn:
        if db.is_postgres:
            await claims.keep_statistics(conn)
        claimed = await claims.claim(conn, "w", now_ms(), 100, 5, 10_000, {ids[0]: 2})
    per_webhook = {w: [c.id for c in claimed if c.webhook_id == w] for w in ids}
    assert [len(per_webhook[w]) for w in ids] == [3, 5, 5]
    async with db.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(deliveries.c.id, deliveries.c.webhook_id).order_by(deliveries.c.id)
            )
        ).all()
    for webhook_id in ids:
        own = [r.id for r in rows if r.webhook_id == webhook_id]
        # The chain's first delivery, then the oldest others: the chain's later two are skipped.
        expected = [own[0], *own[3 : 3 + len(per_webhook[webhook_id]) - 1]]
        assert per_webhook[webhook_id] == expected


async def test_postgresql_statistics_are_kept_fresh_for_the_claim(
    api_factory: ApiFactory,
) -> None:
    api = await api_factory(dispatch=False)
    db, account = api.service.db, api.service.account_id
    if not db.is_postgres:
        pytest.skip("SQLite keeps no statistics; its claim does not depend on them")
    await api.webhook("http://127.0.0.1:9/stats")
    async with db.transaction() as conn:
        for index in range(300):
            hook = sample_hook("media", account, index)
            assert hook is not None
            await outbox.emit(conn, account, hook)

    async def analyzed() -> bool:
        # A server's activity counters reach the statistics views within a second or so.
        async with db.statements() as conn:
            return await claims.keep_statistics(conn)

    await eventually(analyzed)
    async with db.statements() as conn:
        assert not await claims.keep_statistics(conn)  # fresh now: nothing to do
        known = await conn.execute(
            text("SELECT reltuples FROM pg_class WHERE oid = 'deliveries'::regclass")
        )
        assert known.scalar_one() == 300


async def test_postgresql_commits_wake_other_processes_once_and_this_one_at_once(
    database_url: str,
) -> None:
    """Two `Database`s stand for two processes: each commit that queues deliveries wakes its
    own process's dispatchers at the commit, and the other process through a NOTIFY (it has no
    other way to learn here: nothing polls). A process ignores its own NOTIFYs."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has no other processes to tell: a second one polls")
    url = Settings(database_url=database_url).sqlalchemy_url
    here, there = connect(url), connect(url)
    assert isinstance(here, PostgresDatabase) and isinstance(there, PostgresDatabase)
    await here.migrate()
    listening = [asyncio.Event(), asyncio.Event()]
    listeners = [
        asyncio.create_task(db.listen(ready.set))
        for db, ready in zip((here, there), listening, strict=True)
    ]
    try:
        await asyncio.wait_for(asyncio.gather(*(ready.wait() for ready in listening)), 10)
        woken: dict[str, int] = {"here": 0, "there": 0}
        here.on_commit_wake(DELIVERIES, lambda: woken.__setitem__("here", woken["here"] + 1))
        there.on_commit_wake(DELIVERIES, lambda: woken.__setitem__("there", woken["there"] + 1))
        async with here.transaction() as conn:
            account_id, _ = await accounts.ensure(conn, None)
            await webhooks_store.create(
                conn, account_id, {"url": "http://127.0.0.1:9/", "is_media_hooks": True}
            )
        for index in range(5):
            hook = sample_hook("media", account_id, index)
            assert hook is not None
            async with here.transaction() as conn:
                await outbox.emit(conn, account_id, hook)
            assert woken["here"] == index + 1  # woken by the commit itself

        async def heard() -> bool:
            return woken["there"] > 0

        await eventually(heard)
        await asyncio.sleep(0.2)  # room for this process's own NOTIFYs to come back
        assert woken["here"] == 5
    finally:
        for listener in listeners:
            listener.cancel()
        await there.close()
        await here.close()


async def test_a_transaction_cancelled_mid_statement_is_rolled_back_and_says_so(
    database_url: str,
) -> None:
    """Shutting down cancels work in the middle of a statement: the caller sees the
    cancellation (not a complaint about the connection), nothing of it is kept, and the
    database goes on working."""
    db = connect(Settings(database_url=database_url).sqlalchemy_url)
    await db.migrate()
    try:
        async with db.transaction() as conn:
            account_id, _ = await accounts.ensure(conn, None)
        started = asyncio.Event()

        async def interrupted() -> None:
            hook = sample_hook("media", account_id, 0)
            assert hook is not None
            async with db.transaction() as conn:
                await outbox.emit(conn, account_id, hook)
                started.set()
                if db.is_postgres:
                    await conn.execute(text("SELECT pg_sleep(10)"))
                else:
                    await asyncio.sleep(10)

        task = asyncio.create_task(interrupted())
        await started.wait()
        await asyncio.sleep(0.2)
        task.cancel()
        try:
            await task
            raise AssertionError("the transaction was not cancelled")
        except asyncio.CancelledError:
            pass
        async with db.transaction() as conn:
            count = (await conn.execute(select(func.count()).select_from(events))).scalar_one()
        assert count == 0
    finally:
        await db.close()
